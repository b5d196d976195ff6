"""The tf.data pipeline: decodes like the safe decoder, caches, shuffles per epoch, and
never trains on a silently shrunken dataset."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from helpers import image_bytes
from PIL import Image

from skinlab.core.errors import InvalidImageError
from skinlab.data.discovery import discover
from skinlab.data.images import load_rgb_array
from skinlab.data.pipeline import PipelineSpec, decode_table, label_indices, make_dataset

SIZE = 8


@pytest.fixture
def mixed(tmp_path: Path) -> pd.DataFrame:
    """Discovery table of 6 images in two classes, each a different decoding case; one is
    unreadable."""
    root = tmp_path / "mixed"
    melanoma, nevus = root / "Train" / "melanoma", root / "Train" / "nevus"
    melanoma.mkdir(parents=True)
    nevus.mkdir(parents=True)
    (melanoma / "a_rgb.jpg").write_bytes(image_bytes("RGB", (12, 10), seed=1))
    (melanoma / "b_alpha.png").write_bytes(image_bytes("RGBA", (10, 10), "PNG", (0, 0, 255, 0)))
    (melanoma / "c_cmyk.jpg").write_bytes(image_bytes("CMYK", (10, 14), seed=2))
    (nevus / "d_exif.jpg").write_bytes(_exif_rotated_jpeg())
    (nevus / "e_grey.png").write_bytes(image_bytes("L", (9, 9), "PNG", seed=3))
    (nevus / "f_broken.jpg").write_bytes(image_bytes(seed=4)[:200])
    table = discover(root).table
    assert table["error"].notna().sum() == 1
    return table


@pytest.fixture
def numbered(tmp_path: Path) -> pd.DataFrame:
    """Discovery table of 24 single-colour PNGs; image ``i`` has red value ``10 * i``."""
    folder = tmp_path / "numbered" / "Train" / "nevus"
    folder.mkdir(parents=True)
    for i in range(24):
        Image.new("RGB", (6, 6), (10 * i, 0, 0)).save(folder / f"{i:02d}.png")
    return discover(tmp_path / "numbered").table


def _exif_rotated_jpeg() -> bytes:
    """16 wide x 8 high, black left half, white right half, EXIF orientation 6 (shown
    rotated 90 degrees clockwise: black on top)."""
    pixels = np.zeros((8, 16, 3), np.uint8)
    pixels[:, 8:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


def _collect(dataset: tf.data.Dataset) -> tuple[np.ndarray, ...]:
    """One epoch, batches concatenated per component."""
    parts = list(zip(*(tuple(t.numpy() for t in batch) for batch in dataset), strict=True))
    return tuple(np.concatenate(p) for p in parts)


def _ids(dataset: tf.data.Dataset) -> list[int]:
    """Image numbers of one epoch of the ``numbered`` dataset, read from the pixels."""
    images = _collect(dataset)[0]
    return [round(float(v)) // 10 for v in images[:, 0, 0, 0]]


CACHES = ["memory", None, "file"]


def _spec(cache: str | None, tmp_path: Path, **kwargs) -> PipelineSpec:
    where = str(tmp_path / "cache" / "train") if cache == "file" else cache
    return PipelineSpec(image_size=kwargs.pop("image_size", SIZE), cache=where, **kwargs)


@pytest.mark.parametrize("cache", CACHES)
def test_batches_are_float32_rgb_in_0_255_decoded_like_the_safe_decoder(
    mixed: pd.DataFrame, cache: str | None, tmp_path: Path
) -> None:
    dataset = make_dataset(mixed, ["melanoma", "nevus"], _spec(cache, tmp_path, batch_size=2))
    first = next(iter(dataset))
    assert first[0].dtype == tf.float32 and first[0].shape == (2, SIZE, SIZE, 3)
    assert first[1].dtype == tf.int32 and first[1].shape == (2,)
    images, labels = _collect(dataset)
    readable = mixed[mixed["error"].isna()]
    expected = np.stack([load_rgb_array(p, SIZE) for p in readable["path"]])
    assert images.min() >= 0 and images.max() <= 255
    np.testing.assert_array_equal(images, expected.astype(np.float32))
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1])


@pytest.mark.parametrize("cache", CACHES)
def test_unreadable_rows_are_left_out(
    mixed: pd.DataFrame, cache: str | None, tmp_path: Path
) -> None:
    images, _ = _collect(make_dataset(mixed, ["melanoma", "nevus"], _spec(cache, tmp_path)))
    assert len(images) == 5


def test_int_size_is_square_and_pair_is_height_by_width(mixed: pd.DataFrame) -> None:
    square = next(iter(make_dataset(mixed, ["melanoma", "nevus"], PipelineSpec(image_size=5))))
    wide = next(iter(make_dataset(mixed, ["melanoma", "nevus"], PipelineSpec(image_size=(4, 7)))))
    assert square[0].shape[1:] == (5, 5, 3)
    assert wide[0].shape[1:] == (4, 7, 3)


def test_labels_follow_class_names_order(mixed: pd.DataFrame) -> None:
    _, labels = _collect(make_dataset(mixed, ["nevus", "melanoma"], PipelineSpec(SIZE)))
    np.testing.assert_array_equal(labels, [1, 1, 1, 0, 0])
    table = pd.DataFrame({"label": ["b", "a", "b"]})
    np.testing.assert_array_equal(label_indices(table, ["a", "b"]), [1, 0, 1])
    assert label_indices(table, ["a", "b"]).dtype == np.int32


def test_label_missing_from_class_names_is_rejected_by_name(mixed: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="nevus"):
        label_indices(mixed, ["melanoma"])
    with pytest.raises(ValueError, match="nevus"):
        make_dataset(mixed, ["melanoma"])


@pytest.mark.parametrize("cache", ["memory", None])
def test_exif_rotated_jpeg_comes_out_rotated_like_decode_image(
    mixed: pd.DataFrame, cache: str | None
) -> None:
    row = mixed[mixed["relpath"].str.endswith("d_exif.jpg")]
    spec = PipelineSpec(image_size=(16, 8), cache=cache)
    image = _collect(make_dataset(row, ["melanoma", "nevus"], spec))[0][0]
    np.testing.assert_array_equal(image, load_rgb_array(row["path"].iloc[0], (16, 8)))
    assert image[:6].mean() < 40 and image[10:].mean() > 215  # black on top: rotated


def test_file_cache_serves_later_epochs_after_the_sources_are_deleted(
    numbered: pd.DataFrame, tmp_path: Path
) -> None:
    spec = _spec("file", tmp_path, batch_size=5)
    dataset = make_dataset(numbered, ["nevus"], spec)
    first = _collect(dataset)[0]
    for path in numbered["path"]:
        Path(path).unlink()
    np.testing.assert_array_equal(_collect(dataset)[0], first)
    # A new pipeline over the same files and size reuses the cache too...
    np.testing.assert_array_equal(_collect(make_dataset(numbered, ["nevus"], spec))[0], first)
    # ...but a different size never reads it, so the missing files are reported.
    other = make_dataset(numbered, ["nevus"], _spec("file", tmp_path, image_size=4))
    with pytest.raises(tf.errors.OpError, match="could not be read"):
        _collect(other)


@pytest.mark.parametrize("cache", CACHES)
def test_shuffle_is_deterministic_for_a_seed_and_differs_between_epochs(
    numbered: pd.DataFrame, cache: str | None, tmp_path: Path
) -> None:
    spec = _spec(cache, tmp_path, batch_size=5, shuffle=True, seed=3)
    one, two = make_dataset(numbered, ["nevus"], spec), make_dataset(numbered, ["nevus"], spec)
    epochs_one = [_ids(one), _ids(one)]
    epochs_two = [_ids(two), _ids(two)]
    assert epochs_one == epochs_two
    assert epochs_one[0] != epochs_one[1]
    assert sorted(epochs_one[0]) == list(range(24)) and epochs_one[0] != list(range(24))
    other_seed = make_dataset(numbered, ["nevus"], _spec(None, tmp_path, shuffle=True, seed=4))
    assert _ids(other_seed) != epochs_one[0]


@pytest.mark.parametrize("cache", CACHES)
def test_sample_weights_travel_with_their_images(
    numbered: pd.DataFrame, cache: str | None, tmp_path: Path
) -> None:
    weights = np.arange(24, dtype=np.float64) / 2
    spec = _spec(cache, tmp_path, batch_size=5, shuffle=True)
    dataset = make_dataset(numbered, ["nevus"], spec, sample_weights=weights)
    images, labels, got = _collect(dataset)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got * 2, np.round(images[:, 0, 0, 0] / 10))
    np.testing.assert_array_equal(labels, np.zeros(24))


def test_sample_weights_skip_unreadable_rows_and_must_match_the_table(
    mixed: pd.DataFrame,
) -> None:
    weights = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])  # the last row is the broken file
    _, _, got = _collect(make_dataset(mixed, ["melanoma", "nevus"], sample_weights=weights))
    np.testing.assert_array_equal(got, [1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="one weight per row"):
        make_dataset(mixed, ["melanoma", "nevus"], sample_weights=weights[:5])


def test_balanced_draws_pick_classes_evenly_afresh_each_epoch_in_as_many_steps(
    numbered: pd.DataFrame,
) -> None:
    from skinlab.train.imbalance import balanced_probabilities

    table = numbered.assign(label=["nevus"] * 20 + ["melanoma"] * 3 + ["vascular lesion"])
    names = ["melanoma", "nevus", "vascular lesion"]
    draws = balanced_probabilities(label_indices(table, names))
    spec = PipelineSpec(SIZE, batch_size=5, shuffle=True, seed=3)
    dataset = make_dataset(table, names, spec, draw_probabilities=draws)
    plain = make_dataset(table, names, spec)
    assert int(dataset.cardinality()) == int(plain.cardinality()) == 5
    epochs = [_collect(dataset) for _ in range(40)]
    assert all(len(labels) == 24 for _, labels in epochs)
    for images, labels in epochs:  # each label still travels with its own image
        ids = np.round(images[:, 0, 0, 0] / 10).astype(int)
        np.testing.assert_array_equal(labels, label_indices(table.iloc[ids], names))
    shares = np.bincount(np.concatenate([labels for _, labels in epochs]), minlength=3) / 960
    assert shares == pytest.approx([1 / 3] * 3, abs=0.05)  # not 20/24 nevus as drawn plainly
    assert not np.array_equal(epochs[0][1], epochs[1][1])
    again = _collect(make_dataset(table, names, spec, draw_probabilities=draws))
    np.testing.assert_array_equal(again[0], epochs[0][0])  # the same seed, the same epochs


def test_draws_need_one_probability_per_row_and_the_memory_cache(
    numbered: pd.DataFrame, tmp_path: Path
) -> None:
    draws = np.full(24, 1 / 24)
    with pytest.raises(ValueError, match="one probability per row"):
        make_dataset(numbered, ["nevus"], PipelineSpec(SIZE), draw_probabilities=draws[:3])
    with pytest.raises(ValueError, match="memory"):
        make_dataset(numbered, ["nevus"], _spec(None, tmp_path), draw_probabilities=draws)


def test_drop_remainder_gives_only_full_batches(mixed: pd.DataFrame) -> None:
    spec = PipelineSpec(SIZE, batch_size=2, drop_remainder=True)
    sizes = [int(b[0].shape[0]) for b in make_dataset(mixed, ["melanoma", "nevus"], spec)]
    assert sizes == [2, 2]


def test_table_without_readable_images_is_rejected(mixed: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no readable images"):
        make_dataset(mixed[mixed["error"].notna()], ["melanoma", "nevus"])


def test_file_broken_since_discovery_fails_the_memory_pipeline_naming_it(
    numbered: pd.DataFrame,
) -> None:
    broken = numbered["path"].iloc[7]
    Path(broken).write_bytes(b"")
    with pytest.raises(InvalidImageError, match=re.escape(broken)):
        make_dataset(numbered, ["nevus"])


@pytest.mark.parametrize("cache", [None, "file"])
def test_file_broken_since_discovery_fails_the_stream_and_leaves_no_partial_cache(
    numbered: pd.DataFrame, cache: str | None, tmp_path: Path
) -> None:
    broken = Path(numbered["path"].iloc[20])
    original = broken.read_bytes()
    broken.write_bytes(original[:30])
    spec = _spec(cache, tmp_path, batch_size=4)
    with pytest.raises(tf.errors.OpError, match=f"InvalidImageError: {re.escape(str(broken))} "):
        _collect(make_dataset(numbered, ["nevus"], spec))
    broken.write_bytes(original)  # same content, so the same cache name as before
    assert sorted(_ids(make_dataset(numbered, ["nevus"], spec))) == list(range(24))


def test_decode_table_returns_uint8_rows_in_order_and_names_bad_files(
    mixed: pd.DataFrame,
) -> None:
    readable = mixed[mixed["error"].isna()]
    images = decode_table(readable, (6, 9), workers=2)
    assert images.dtype == np.uint8 and images.shape == (5, 6, 9, 3)
    np.testing.assert_array_equal(images[2], load_rgb_array(readable["path"].iloc[2], (6, 9)))
    broken = mixed["path"].iloc[-1]
    with pytest.raises(InvalidImageError, match=re.escape(broken)):
        decode_table(mixed, SIZE)
