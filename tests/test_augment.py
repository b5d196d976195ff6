from __future__ import annotations

import keras
import numpy as np
import pytest

from skinlab.core.config import AUGMENTATIONS
from skinlab.model.augment import augmentation_layers
from skinlab.model.geometry import RandomGeometry

PRESETS = [p for p in AUGMENTATIONS if p != "none"]


def _images(n: int = 4, size: int = 32) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (n, size, size, 3)).astype("float32")


def test_none_preset_means_no_augmentation_block():
    assert augmentation_layers("none") is None


@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_is_a_block_named_augmentation_with_distinct_seeds(preset):
    block = augmentation_layers(preset, seed=7)
    assert isinstance(block, keras.Sequential)
    assert block.name == "augmentation"
    seeds = [layer.seed for layer in block.layers]
    assert len(set(seeds)) == len(seeds)
    assert min(seeds) == 7


def test_notebook_preset_is_the_seed_notebooks_augmentation_as_one_warp():
    (geometry,) = augmentation_layers("notebook").layers
    assert isinstance(geometry, RandomGeometry)
    assert (geometry.flip, geometry.rotation, geometry.zoom, geometry.translation) == (
        True,
        0.2,
        0.2,
        0.0,
    )


def test_strength_scales_ranges_and_caps_fractions():
    layers = {layer.name: layer for layer in augmentation_layers("light", strength=2.0).layers}
    assert layers["geometry"].rotation == pytest.approx(0.2)
    assert layers["geometry"].zoom == pytest.approx(0.2)
    # RandomContrast draws from [1 - lower, 1 + upper]: both sides, not only "more contrast".
    assert layers["contrast"].factor == pytest.approx((0.2, 0.2))
    capped = {layer.name: layer for layer in augmentation_layers("strong", strength=10.0).layers}
    assert capped["contrast"].factor == pytest.approx((1.0, 1.0))
    assert capped["geometry"].zoom == pytest.approx(0.9)
    assert capped["geometry"].rotation == pytest.approx(0.5)
    assert capped["geometry"].translation == pytest.approx(0.9)


def test_light_and_strong_change_colour_in_the_0_255_range():
    for preset in ("light", "strong"):
        contrast = {layer.name: layer for layer in augmentation_layers(preset).layers}["contrast"]
        assert tuple(contrast.value_range) == (0, 255)
    brightness = {layer.name: layer for layer in augmentation_layers("strong").layers}
    assert tuple(brightness["brightness"].value_range) == (0, 255)


@pytest.mark.parametrize("preset", PRESETS)
def test_augmentation_is_identity_at_inference_and_changes_images_in_training(preset):
    block = augmentation_layers(preset, seed=1)
    x = _images()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(block(x, training=False)), x)
    trained = keras.ops.convert_to_numpy(block(x, training=True))
    assert trained.shape == x.shape
    assert not np.allclose(trained, x)
    assert trained.min() >= -1e-3 and trained.max() <= 255 + 1e-3


def test_dermoscopy_preset_turns_fully_at_any_strength_and_zooms_as_the_experiment():
    for strength in (1.0, 0.5):
        layers = {layer.name: layer for layer in augmentation_layers("dermoscopy", strength).layers}
        assert layers["geometry"].rotation == 0.5  # any angle: a lesion has no "up"
    layers = {layer.name: layer for layer in augmentation_layers("dermoscopy").layers}
    geometry = layers["geometry"]
    assert geometry.flip and geometry.translation == pytest.approx(0.1)
    # Keras zooms by the inverse scale: the image is shown at 0.75 to 1.1 times its size.
    low, high = geometry.zoom
    assert 1 / (1 + high) == pytest.approx(0.75) and 1 / (1 + low) == pytest.approx(1.1)
    assert layers["contrast"].factor == pytest.approx((0.2, 0.2))
    assert layers["brightness"].factor == pytest.approx((-0.2, 0.2))
    assert layers["saturation"].factor == pytest.approx(0.2)


def test_dermoscopy_zoom_out_fills_the_gaps_by_reflection_not_black():
    x = _images(n=8) * 0.5 + 100  # no pixel near 0, so a black fill would show
    zoomed_out = RandomGeometry(flip=False, zoom=(0.33, 0.33), seed=1)(x, training=True)
    out = keras.ops.convert_to_numpy(zoomed_out)
    assert out.min() > 90  # the corners are mirrored image, not a constant fill
    # The image is smaller: its middle 24 pixels now hold the whole 32-pixel picture.
    assert not np.allclose(out, x)


def test_saturation_keeps_grey_grey_stays_in_0_255_and_changes_colour():
    from skinlab.model.augment import RandomSaturation

    grey = np.repeat(_images()[..., :1], 3, axis=-1)
    layer = RandomSaturation(0.2, seed=3)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(grey, training=True)), grey, atol=1e-3
    )
    vivid = np.zeros((64, 4, 4, 3), "float32")
    vivid[..., 0] = 255
    out = keras.ops.convert_to_numpy(layer(vivid, training=True))
    assert out.min() >= 0 and out.max() <= 255
    assert not np.allclose(out, vivid)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert (again.factor, again.seed) == (0.2, 3)


def test_unknown_preset_and_negative_strength_are_rejected():
    with pytest.raises(ValueError, match="augmentation must be one of"):
        augmentation_layers("extreme")
    with pytest.raises(ValueError, match="negative"):
        augmentation_layers("light", strength=-1)
