from __future__ import annotations

import keras
import numpy as np
import pytest

from skinlab.model.geometry import RandomGeometry


def _images(n: int = 16, size: int = 24) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (n, size, size, 3)).astype("float32")


def _numpy(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


def test_inference_passes_images_through_untouched():
    x = _images()
    layer = RandomGeometry(flip=True, rotation=0.5, zoom=0.3, translation=0.2, seed=1)
    np.testing.assert_array_equal(_numpy(layer(x, training=False)), x)


def test_no_flip_and_zero_ranges_is_the_identity_warp_in_training():
    x = _images()
    out = _numpy(RandomGeometry(flip=False, seed=1)(x, training=True))
    np.testing.assert_allclose(out, x, atol=1e-3)


def test_flips_alone_give_exactly_one_of_the_four_flips_of_each_image():
    x = _images(n=32)
    out = _numpy(RandomGeometry(flip=True, seed=3)(x, training=True))
    seen = set()
    for original, flipped in zip(x, out, strict=True):
        candidates = {
            "none": original,
            "h": original[:, ::-1],
            "v": original[::-1, :],
            "hv": original[::-1, ::-1],
        }
        matches = [k for k, c in candidates.items() if np.allclose(flipped, c, atol=1e-3)]
        assert len(matches) >= 1
        seen.add(matches[0])
    assert len(seen) == 4  # 32 images: every flip combination shows up


def test_transforms_stay_within_the_requested_ranges():
    layer = RandomGeometry(flip=False, rotation=0.1, zoom=0.2, translation=0.0, seed=5)
    transforms = _numpy(layer._transforms((500, 64, 64, 3)))
    a0, a1 = transforms[:, 0], transforms[:, 1]
    scale = np.hypot(a0, a1)
    angle = np.degrees(np.arctan2(-a1, a0))
    assert scale.min() >= 0.8 - 1e-6 and scale.max() <= 1.2 + 1e-6
    assert np.abs(angle).max() <= 36 + 1e-3  # 0.1 of a full turn
    assert np.abs(angle).max() > 30  # and the range is actually used
    np.testing.assert_allclose(transforms[:, 6:], 0)


def test_a_zoom_range_draws_scales_only_from_that_range():
    layer = RandomGeometry(flip=False, zoom=(-0.1, 0.3), seed=5)
    scale = np.hypot(*_numpy(layer._transforms((500, 64, 64, 3)))[:, :2].T)
    assert scale.min() >= 0.9 - 1e-6 and scale.max() <= 1.3 + 1e-6
    assert scale.min() < 0.95 and scale.max() > 1.25
    again = RandomGeometry.from_config(layer.get_config())
    assert again.zoom == (-0.1, 0.3)
    with pytest.raises(ValueError, match="zoom below 1"):
        RandomGeometry(zoom=(0.3, -0.1))


def test_warp_keeps_centre_pixel_for_pure_rotation_and_zoom():
    # Rotation and zoom are about the image centre: the centre pixel maps to itself.
    layer = RandomGeometry(flip=False, rotation=0.5, zoom=0.5, seed=2)
    t = _numpy(layer._transforms((50, 33, 33, 3)))
    c = 16.0
    np.testing.assert_allclose(t[:, 0] * c + t[:, 1] * c + t[:, 2], c, atol=1e-4)
    np.testing.assert_allclose(t[:, 3] * c + t[:, 4] * c + t[:, 5], c, atol=1e-4)


def test_layer_computes_in_float32_under_a_mixed_precision_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        layer = RandomGeometry(rotation=0.1, seed=0)
    finally:
        keras.config.set_dtype_policy(previous)
    assert layer.compute_dtype == "float32"
    assert _numpy(layer(_images(), training=True)).dtype == np.float32


def test_config_round_trips_and_bad_ranges_are_refused():
    layer = RandomGeometry(flip=False, rotation=0.2, zoom=0.1, translation=0.05, seed=9)
    again = RandomGeometry.from_config(layer.get_config())
    assert (again.flip, again.rotation, again.zoom, again.translation, again.seed) == (
        False,
        0.2,
        0.1,
        0.05,
        9,
    )
    with pytest.raises(ValueError, match="zoom below 1"):
        RandomGeometry(zoom=1.0)
    with pytest.raises(ValueError):
        RandomGeometry(rotation=-0.1)
