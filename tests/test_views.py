"""Test-time views: the 8 exact symmetries first, then the same of 45/22.5/67.5-degree turns."""

from __future__ import annotations

import numpy as np
import pytest

from skinlab.evaluate import scoring
from skinlab.model.views import EXACT_TTA, MAX_TTA, tta_batch


def _images(n: int = 2, size: int = 17) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (n, size, size, 3)).astype("float32")


def test_the_first_eight_views_are_the_eight_distinct_exact_symmetries() -> None:
    images = _images()
    out = tta_batch(images, EXACT_TTA).reshape(2, EXACT_TTA, 17, 17, 3)
    np.testing.assert_array_equal(out[:, 0], images)  # the image itself first
    flat = {out[0, v].tobytes() for v in range(EXACT_TTA)}
    assert len(flat) == EXACT_TTA  # all different
    for v in range(EXACT_TTA):  # only pixels moved: same multiset of values
        np.testing.assert_array_equal(np.sort(out[0, v], axis=None), np.sort(images[0], axis=None))


def test_views_nine_to_sixteen_are_the_symmetries_of_the_image_turned_45_degrees() -> None:
    from scipy import ndimage

    images = _images()
    out = tta_batch(images, 16).reshape(2, 16, 17, 17, 3)
    turned = ndimage.rotate(images[1], 45, axes=(1, 0), reshape=False, order=1, mode="reflect")
    np.testing.assert_allclose(out[1, 8], turned, rtol=1e-6)
    np.testing.assert_allclose(out[1, 9], turned[:, ::-1], rtol=1e-6)
    # A prefix is a prefix: 12 views are the first 12 of 32.
    np.testing.assert_array_equal(
        tta_batch(images, 12).reshape(2, 12, 17, 17, 3),
        tta_batch(images, 32).reshape(2, 32, 17, 17, 3)[:, :12],
    )


def test_a_turned_view_keeps_a_centred_disc_and_fills_its_corners_with_skin() -> None:
    # A round lesion on even skin: any turn leaves it where it was, and reflection fills
    # the corners with skin, not black.
    size = 33
    yy, xx = np.mgrid[:size, :size]
    disc = np.hypot(yy - 16, xx - 16) < 8
    image = np.where(disc[..., None], 40.0, 200.0).astype("float32")[None].repeat(3, axis=3)
    for turned in tta_batch(image, MAX_TTA)[EXACT_TTA:]:
        assert turned.dtype == np.float32
        dark = turned[..., 0] < 120
        assert abs(dark.sum() - disc.sum()) < 0.1 * disc.sum()  # the same disc...
        assert np.allclose([yy[dark].mean(), xx[dark].mean()], 16, atol=0.5)  # ...in place
        assert turned[0, 0].min() > 150  # corners are skin


@pytest.mark.parametrize("bad", [0, MAX_TTA + 1])
def test_a_view_count_out_of_range_is_a_clear_error(bad) -> None:
    with pytest.raises(ValueError, match=f"1 to {MAX_TTA} views"):
        tta_batch(_images(), bad)


def test_the_config_and_the_command_line_allow_exactly_the_views_that_exist() -> None:
    from skinlab.core import config

    assert config.MAX_TTA == MAX_TTA == 32
    config.RunConfig(data_root="x", tta=MAX_TTA)
    with pytest.raises(ValueError, match="tta"):
        config.RunConfig(data_root="x", tta=MAX_TTA + 1)


class _MeanColour:
    """A stand-in model: logits from each view's mean colour (turns change them slightly)."""

    output_shape = (None, 3)

    def predict(self, batch: np.ndarray, batch_size: int, verbose: int) -> np.ndarray:
        return batch.mean(axis=(1, 2)) / 50.0


def test_scoring_many_views_in_small_chunks_gives_the_same_probabilities(
    monkeypatch, tmp_path
) -> None:
    import pandas as pd
    from PIL import Image

    rows = []
    for i, image in enumerate(_images(5, 24).astype("uint8")):
        path = tmp_path / f"{i}.png"
        Image.fromarray(image).save(path)
        rows.append({"path": str(path), "label": "a"})
    table = pd.DataFrame(rows)
    whole = scoring.predict_probabilities(_MeanColour(), table, 24, tta=MAX_TTA)
    monkeypatch.setattr(scoring, "_VIEWS_AT_ONCE", 2 * MAX_TTA)  # two images per chunk
    chunked = scoring.predict_probabilities(_MeanColour(), table, 24, tta=MAX_TTA)
    assert whole.shape == (5, 3)
    np.testing.assert_allclose(chunked, whole, rtol=1e-6)
