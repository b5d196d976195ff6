"""Frame randomisation: a dark circular frame drawn on some training images, cropped from others."""

from __future__ import annotations

import numpy as np
import pytest

from skinlab.core.config import RunConfig
from skinlab.model.augment import augmentation_layers
from skinlab.model.frames import RandomFrame


def _bright(n: int = 64, size: int = 32) -> np.ndarray:
    return np.full((n, size, size, 3), 200.0, "float32")


def test_prediction_passes_images_untouched():
    images = _bright(4)
    np.testing.assert_array_equal(np.asarray(RandomFrame(1.0, seed=1)(images)), images)


def test_about_half_the_changed_images_get_a_dark_frame_and_keep_a_bright_centre():
    out = np.asarray(RandomFrame(1.0, seed=3)(_bright(200), training=True))
    corners = out[:, :3, :3].mean(axis=(1, 2, 3))
    centres = out[:, 14:18, 14:18].mean(axis=(1, 2, 3))
    framed = corners < 60
    assert 0.35 < framed.mean() < 0.65
    assert (centres > 190).all()


def test_rate_zero_changes_nothing_and_rate_half_leaves_about_half_alone():
    images = np.random.default_rng(0).uniform(0, 255, (300, 16, 16, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(RandomFrame(0.0)(images, training=True)), images)
    out = np.asarray(RandomFrame(0.5, seed=2)(images, training=True))
    unchanged = (out == images).all(axis=(1, 2, 3)).mean()
    assert 0.4 < unchanged < 0.6


def test_a_cropped_image_is_the_centre_scaled_up():
    image = np.zeros((1, 40, 40, 3), "float32")
    image[:, 10:30, 10:30] = 255.0  # a bright square in the middle, dark all round
    layer = RandomFrame(1.0, seed=0)
    cropped = np.asarray(layer._crop(image, 1))
    # Zoomed in, the bright square covers more of the picture than before.
    assert (cropped > 128).mean() > (image > 128).mean()


def test_frame_rate_is_checked_and_goes_into_the_augmentation_block():
    with pytest.raises(ValueError, match="frame"):
        RandomFrame(1.5)
    with pytest.raises(ValueError, match="frame_randomisation"):
        RunConfig(frame_randomisation=-0.1)
    block = augmentation_layers("dermoscopy", seed=5, frame=0.5)
    names = [layer.name for layer in block.layers]
    assert names.index("frame") == names.index("geometry") + 1
    seeds = [layer.seed for layer in block.layers]
    assert len(set(seeds)) == len(seeds)
    (only,) = augmentation_layers("none", frame=0.3).layers
    assert isinstance(only, RandomFrame) and only.rate == pytest.approx(0.3)


def test_random_resized_crops_widen_the_zoom_in_and_stretch_the_aspect():
    from skinlab.model.augment import CROP_ASPECT

    geometry = {
        layer.name: layer for layer in augmentation_layers("dermoscopy", crop_area=0.36).layers
    }["geometry"]
    assert geometry.zoom[0] == pytest.approx(0.6 - 1)  # sqrt(0.36) of the side at most
    assert geometry.zoom[1] == pytest.approx(1 / 0.75 - 1)  # the preset's zoom-out is kept
    assert geometry.aspect == pytest.approx(CROP_ASPECT)
    (alone,) = augmentation_layers("none", crop_area=0.5).layers
    assert not alone.flip and alone.aspect == pytest.approx(CROP_ASPECT)
    with pytest.raises(ValueError, match="crop_area"):
        RunConfig(crop_area=0.0)


def test_a_stretched_crop_changes_the_shape_of_a_circle():
    from skinlab.model.geometry import RandomGeometry

    size = 48
    yy, xx = np.mgrid[:size, :size]
    disc = ((yy - 23.5) ** 2 + (xx - 23.5) ** 2 < 12**2).astype("float32")
    images = np.repeat(disc[None, :, :, None], 64, axis=0).repeat(3, axis=3) * 255
    out = np.asarray(RandomGeometry(flip=False, aspect=0.6, seed=0)(images, training=True))
    widths = (out[:, size // 2, :, 0] > 128).sum(axis=1)
    heights = (out[:, :, size // 2, 0] > 128).sum(axis=1)
    # Unstretched, width equals height; stretched, they differ by several pixels somewhere.
    assert np.abs(widths - heights).max() >= 4
    # The area is kept: the disc's pixel count moves by far less than its aspect.
    areas = (out[..., 0] > 128).sum(axis=(1, 2))
    assert np.abs(areas / (disc > 0).sum() - 1).max() < 0.15
