"""Gallery and colour helpers: samples, thumbnails, duplicate listings, sizes and colours."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import image_bytes
from PIL import Image

from skinlab.app import charts, colours, gallery
from skinlab.core.errors import InvalidImageError
from skinlab.data.audit import audit_dataset
from skinlab.data.discovery import discover


@pytest.fixture
def dataset(make_dataset_folder):
    """Train melanoma 5, nevus 3 (+ a broken file); Test nevus 2, dermatofibroma 1 only in Test;
    a label conflict (melanoma img_000 copied to nevus) and a leak (nevus img_001 to Test)."""
    root = make_dataset_folder(
        {"Train": {"melanoma": 5, "nevus": 3}, "Test": {"nevus": 2, "dermatofibroma": 1}}
    )
    shutil.copyfile(root / "Train/melanoma/img_000.jpg", root / "Train/nevus/relabelled.jpg")
    shutil.copyfile(root / "Train/nevus/img_001.jpg", root / "Test/nevus/leaked.jpg")
    (root / "Train/nevus/broken.jpg").write_bytes(b"not a jpeg")
    return discover(root)


def test_sample_draws_only_readable_images_of_the_chosen_class_and_split(dataset) -> None:
    rows = gallery.sample_images(dataset.table, label="nevus", split="Train", n=10)

    assert set(rows["label"]) == {"nevus"} and set(rows["split"]) == {"Train"}
    assert len(rows) == 4  # three images and the relabelled copy; the broken file never
    assert rows["error"].isna().all()


def test_sample_is_the_same_for_a_seed_and_reshuffles_with_another(dataset) -> None:
    draw = [
        list(gallery.sample_images(dataset.table, label="melanoma", n=3, seed=s)["path"])
        for s in (1, 1, 2)
    ]
    assert draw[0] == draw[1]
    assert draw[0] != draw[2]


def test_one_per_class_prefers_train_and_falls_back_to_test(dataset) -> None:
    rows = gallery.one_per_class(dataset.table, dataset.class_names)

    assert list(rows["label"]) == ["dermatofibroma", "melanoma", "nevus"]
    assert list(rows["split"]) == ["Test", "Train", "Train"]


def test_sample_per_class_caps_each_class(dataset) -> None:
    rows = gallery.sample_per_class(dataset.table, 2)

    assert rows["label"].value_counts().to_dict() == {
        "dermatofibroma": 1,
        "melanoma": 2,
        "nevus": 2,
    }


def test_thumbnail_is_a_square_jpeg_that_keeps_the_aspect_ratio(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    path.write_bytes(image_bytes(size=(400, 200), fmt="PNG", colour=(200, 30, 30)))

    thumb = Image.open(io.BytesIO(gallery.thumbnail(path, size=100)))

    assert thumb.format == "JPEG" and thumb.size == (100, 100)
    pixels = np.asarray(thumb).astype(int)
    # The 400x200 image fills rows 25-74; the bands above and below are background.
    assert np.abs(pixels[50, 50] - (200, 30, 30)).max() < 12
    assert np.abs(pixels[5, 50] - gallery.THUMB_BACKGROUND).max() < 12
    assert np.abs(pixels[95, 50] - gallery.THUMB_BACKGROUND).max() < 12


def test_thumbnail_of_a_broken_file_raises_a_one_sentence_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"not a jpeg")

    with pytest.raises(InvalidImageError, match="broken.jpg"):
        gallery.thumbnail(path)


def test_caption_names_the_file_its_pixels_and_its_size(dataset) -> None:
    row = dataset.images().iloc[0]

    size = gallery.human_size(row["file_size"])
    assert gallery.caption(row) == f"{Path(row['path']).name} · 32×24 · {size}"
    assert [gallery.human_size(n) for n in (900, 12_544, 3 * 2**20)] == [
        "900 B",
        "12.2 KB",
        "3.0 MB",
    ]


def test_duplicate_members_lists_every_copy_with_its_folder(dataset) -> None:
    report = audit_dataset(dataset)
    found = gallery.problem_groups(report)
    members = gallery.duplicate_members(dataset.root, found["Label conflicts"])

    assert [len(found[k]) for k in gallery.PROBLEM_KINDS] == [1, 1, 2]
    assert list(members["relpath"]) == [
        "Train/melanoma/img_000.jpg",
        "Train/nevus/relabelled.jpg",
    ]
    assert list(members["folder"]) == ["Train/melanoma", "Train/nevus"]
    assert set(members["labels"]) == {"melanoma ≠ nevus"}
    assert Path(members["path"].iloc[1]).is_file()


def test_imbalance_sentence_names_largest_and_smallest_class(dataset) -> None:
    sentences = gallery.imbalance_sentences(audit_dataset(dataset))

    assert sentences[0] == (
        "**Train**: the largest class, melanoma (5), has 1.2× the images of the smallest, "
        "nevus (4)."
    )


def test_balanced_split_is_called_balanced(make_dataset_folder) -> None:
    root = make_dataset_folder(
        {"Train": {"melanoma": 2, "nevus": 1}, "Test": {"melanoma": 2, "nevus": 2}}
    )

    sentences = gallery.imbalance_sentences(audit_dataset(discover(root)))

    assert sentences[1] == "**Test**: balanced, 2 images in each class."


def test_size_frame_and_common_sizes_describe_readable_images(make_dataset_folder) -> None:
    root = make_dataset_folder({"Train": {"nevus": 2}})
    (root / "Train/nevus/tall.png").write_bytes(image_bytes(size=(20, 40), fmt="PNG"))
    table = discover(root).table

    sizes = gallery.size_frame(table)
    common = gallery.common_sizes(table)

    assert sorted(sizes["aspect_ratio"].round(2)) == [0.5, 1.33, 1.33]
    assert common.to_dict("records") == [
        {"size": "32×24", "images": 2},
        {"size": "20×40", "images": 1},
    ]
    assert len(charts.image_size_figure(sizes).data) == 3


def test_colour_profile_measures_each_class_colour(tmp_path: Path) -> None:
    for label, colour in (("melanoma", (200, 40, 40)), ("nevus", (40, 40, 200))):
        folder = tmp_path / "Train" / label
        folder.mkdir(parents=True)
        for i in range(2):
            (folder / f"{i}.png").write_bytes(image_bytes(size=(30, 20), fmt="PNG", colour=colour))
    table = discover(tmp_path).table

    profile = colours.colour_profile(gallery.sample_per_class(table, 5))

    means = profile.means.set_index("class")
    assert means.loc["melanoma", ["r", "g", "b"]].tolist() == [200, 40, 40]
    assert means.loc["nevus", "hex"] == "#2828c8" and means.loc["nevus", "images"] == 2
    shares = profile.histograms.groupby(["class", "channel"])["fraction"].sum()
    assert np.allclose(shares, 1.0)
    assert profile.mean_images["nevus"].shape == (colours.COLOUR_SIZE, colours.COLOUR_SIZE, 3)
    assert charts.mean_colour_figure(profile.means).data[0].marker.color.tolist() == [
        "#c82828",
        "#2828c8",
    ]
    assert len(charts.colour_histogram_figure(profile.histograms).data) == 6  # 3 per class


def test_counts_table_shows_percent_of_each_split(dataset) -> None:
    table = charts.class_counts_table(dataset.counts(), percent=True)

    assert table["Train"].to_dict() == {"dermatofibroma": 0.0, "melanoma": 55.6, "nevus": 44.4}
    assert table["Test"].sum() == pytest.approx(100.0)
