"""Grad-CAM on every registered backbone, a sanity check that it finds what the model learnt,
and the colour overlay."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from skinlab.model.augment import augmentation_layers
from skinlab.model.backbones import BACKBONES, build_model
from skinlab.predict.gradcam import colormap, feature_forward, gradcam, overlay

SIZE = 64


def _model(
    name: str, num_classes: int = 9, augmentation: str = "strong", seed: int = 3
) -> keras.Model:
    keras.utils.set_random_seed(seed)
    # Strong augmentation inside the model: Grad-CAM must switch it off.
    return build_model(
        name,
        num_classes=num_classes,
        image_size=SIZE,
        augmentation=augmentation_layers(augmentation, seed=seed) if augmentation else None,
    )


@pytest.fixture(scope="module")
def registry_model():
    """``registry_model(name)``: one random-init model per backbone for the read-only tests."""
    cache: dict[str, keras.Model] = {}

    def get(name: str) -> keras.Model:
        if name not in cache:
            cache[name] = _model(name)
        return cache[name]

    yield get
    cache.clear()


def _random_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, SIZE, SIZE, 3)).astype(np.float32)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_manual_forward_pass_reproduces_the_models_logits(name: str, registry_model) -> None:
    model = registry_model(name)
    images = _random_images(2)
    features, logits = feature_forward(model, tf.constant(images))
    expected = model(images, training=False).numpy()
    assert features.shape.rank == 4 and features.shape[0] == 2
    # Random-init logits can be tiny (1e-12), so the tolerance scales with them.
    np.testing.assert_allclose(
        logits.numpy(), expected, rtol=1e-5, atol=1e-6 * float(np.abs(expected).max())
    )


@pytest.mark.parametrize("name", list(BACKBONES))
def test_heatmap_of_every_backbone_is_image_sized_normalised_and_not_constant(
    name: str, registry_model
) -> None:
    model = registry_model(name)
    image = _random_images(1)[0]
    heatmap = gradcam(model, image)
    assert heatmap.shape == (SIZE, SIZE) and heatmap.dtype == np.float32
    assert np.isfinite(heatmap).all()
    assert heatmap.min() >= 0.0 and heatmap.max() == pytest.approx(1.0)
    assert heatmap.std() > 1e-3, "a constant map explains nothing"
    # Augmentation off: the same image gives the same map every time.
    np.testing.assert_array_equal(gradcam(model, image), heatmap)


def test_default_class_is_the_top_scoring_one_and_uint8_images_work(registry_model) -> None:
    model = registry_model("skinlab_cnn")
    image = _random_images(1, seed=5)[0].round().astype(np.uint8)
    top = int(np.argmax(model(image[None].astype(np.float32), training=False)))
    np.testing.assert_allclose(gradcam(model, image), gradcam(model, image, top))


def test_map_without_positive_evidence_is_all_zeros_not_nan() -> None:
    model = _model("custom")
    logits = model.get_layer("logits")
    logits.set_weights([np.zeros_like(w) for w in logits.get_weights()])
    heatmap = gradcam(model, _random_images(1)[0])
    assert heatmap.shape == (SIZE, SIZE)
    assert not heatmap.any()


def test_wrong_image_size_and_class_index_are_refused() -> None:
    model = _model("custom")
    with pytest.raises(ValueError, match="shape"):
        gradcam(model, np.zeros((SIZE + 1, SIZE, 3), np.float32))
    with pytest.raises(ValueError, match="class_index"):
        gradcam(model, _random_images(1)[0], class_index=9)


#: Square colours of the toy task: the class is the colour, the position is random.
_COLOURS = np.array([[230, 40, 40], [40, 230, 40], [40, 40, 230]], np.float32)


def _coloured_squares(n: int, rng: np.random.Generator, side: int):
    """Dim noise with one bright square whose colour (red, green, blue) is the class."""
    images = rng.uniform(0, 90, (n, SIZE, SIZE, 3)).astype(np.float32)
    labels = rng.integers(0, len(_COLOURS), n)
    corners = rng.integers(0, SIZE - side + 1, (n, 2))
    for image, label, (top, left) in zip(images, labels, corners, strict=True):
        image[top : top + side, left : left + side] = _COLOURS[label]
    return images, labels, corners


def test_heatmap_peaks_on_the_square_that_decides_the_class() -> None:
    # The notebook CNN learns the toy task; Grad-CAM must then point at the square, wherever
    # it is. (A task where the square's *position* is the class is a poor check: with the
    # notebook CNN's Flatten head, spatially averaged gradients can be negative everywhere
    # and some maps come out all zero, a known limit of Grad-CAM on non-pooled heads.)
    side = 16
    rng = np.random.default_rng(0)
    model = _model("custom", num_classes=len(_COLOURS), augmentation="", seed=0)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    images, labels, _ = _coloured_squares(256, rng, side)
    history = model.fit(images, labels, epochs=5, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.75
    tests, test_labels, corners = _coloured_squares(8, rng, side)
    margin = 2
    for image, label, (top, left) in zip(tests, test_labels, corners, strict=True):
        heatmap = gradcam(model, image, int(label))
        row, col = np.unravel_index(int(heatmap.argmax()), heatmap.shape)
        assert top - margin <= row < top + side + margin
        assert left - margin <= col < left + side + margin
        inside = heatmap[top : top + side, left : left + side]
        outside = (heatmap.sum() - inside.sum()) / (heatmap.size - inside.size)
        assert inside.mean() > 1.5 * outside


def test_overlay_has_the_original_size_and_blends_by_opacity() -> None:
    rng = np.random.default_rng(2)
    original = Image.fromarray(rng.integers(0, 255, (70, 100, 3), dtype=np.uint8))
    heatmap = rng.random((SIZE, SIZE)).astype(np.float32)
    for opacity in (0.0, 0.4, 1.0):
        assert overlay(original, heatmap, opacity).size == original.size
    unchanged = overlay(original, heatmap, 0.0)
    assert unchanged.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(unchanged), np.asarray(original))
    assert not np.array_equal(np.asarray(overlay(original, heatmap, 1.0)), np.asarray(original))
    from_array = overlay(np.asarray(original), heatmap, 0.4)
    np.testing.assert_array_equal(np.asarray(from_array), np.asarray(overlay(original, heatmap)))
    with pytest.raises(ValueError, match="opacity"):
        overlay(original, heatmap, 1.5)


def test_colormap_runs_from_dark_through_blue_and_green_to_red() -> None:
    low, cool, middle, high = colormap(np.array([0.0, 0.15, 0.5, 1.0])).astype(int)
    assert low.sum() < 150  # near black: cold regions darken the overlay
    assert cool[2] > max(cool[0], cool[1])
    assert middle[1] > 200
    assert high[0] > 2 * max(high[1], high[2])
    assert colormap(np.zeros((3, 4))).shape == (3, 4, 3)
