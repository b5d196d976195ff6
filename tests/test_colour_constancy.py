"""Shades of Gray colour constancy: a layer of the model, at training and prediction alike."""

from __future__ import annotations

import numpy as np
import pytest

from skinlab.core.config import RunConfig
from skinlab.model.colour import ShadesOfGray, colour_constancy_layer
from skinlab.model.modelio import build_for_config


def _skin(size: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(40, 200, (1, size, size, 3)).astype("float32")


def test_the_same_image_under_two_colour_casts_comes_out_the_same():
    image = _skin()
    reddish = np.clip(image * np.array([1.3, 0.9, 0.7], "float32"), 0, 255)
    bluish = np.clip(image * np.array([0.8, 0.95, 1.25], "float32"), 0, 255)
    layer = ShadesOfGray()
    a, b = np.asarray(layer(reddish)), np.asarray(layer(bluish))
    # Before: the casts differ by ~30 % per channel; after: by under 2 grey levels.
    assert np.abs(reddish - bluish).mean() > 30
    assert np.abs(a - b).mean() < 2.0


def test_a_grey_image_is_unchanged_and_a_black_frame_does_not_move_the_estimate():
    grey = np.full((1, 16, 16, 3), 120.0, "float32")
    np.testing.assert_allclose(np.asarray(ShadesOfGray()(grey)), grey, atol=0.1)
    image = _skin(32) * np.array([1.2, 1.0, 0.8], "float32")
    framed = np.pad(image, ((0, 0), (6, 6), (6, 6), (0, 0)))  # the same picture in a black frame
    out, out_framed = np.asarray(ShadesOfGray()(image)), np.asarray(ShadesOfGray()(framed))
    # A black frame lowers every channel's p-mean alike: the per-channel gains keep their ratio.
    ratio = out.mean(axis=(0, 1, 2)) / out_framed[:, 6:-6, 6:-6].mean(axis=(0, 1, 2))
    assert np.ptp(ratio) < 0.005


def test_output_stays_in_the_pixel_range():
    saturated = np.zeros((2, 8, 8, 3), "float32")
    saturated[..., 0] = 255.0
    out = np.asarray(ShadesOfGray()(saturated))
    assert out.min() >= 0.0 and out.max() <= 255.0


def test_unknown_method_is_refused_with_the_choices():
    assert colour_constancy_layer("none") is None
    with pytest.raises(ValueError, match="shades_of_gray"):
        colour_constancy_layer("retinex")
    with pytest.raises(ValueError, match="colour_constancy"):
        RunConfig(colour_constancy="retinex")


def test_a_run_with_colour_constancy_predicts_through_it():
    config = RunConfig(
        backbone="skinlab_cnn",
        image_size=32,
        augmentation="none",
        colour_constancy="shades_of_gray",
    )
    model = build_for_config(config, num_classes=3)
    assert model.get_layer("colour_constancy") is not None
    image = _skin(32)
    cast = np.clip(image * np.array([1.3, 0.9, 0.7], "float32"), 0, 255)
    # Prediction (training=False) sees the corrected image: two casts, nearly one answer.
    a, b = model.predict(image, verbose=0), model.predict(cast, verbose=0)
    plain = build_for_config(config.replace(colour_constancy="none"), num_classes=3)
    plain.set_weights(model.get_weights())
    pa, pb = plain.predict(image, verbose=0), plain.predict(cast, verbose=0)
    assert np.abs(a - b).max() < np.abs(pa - pb).max()
