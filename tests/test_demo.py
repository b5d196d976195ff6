"""The synthetic demo dataset: layout, imbalance, determinism, atomic commit, learnability."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skinlab.core.classes import ISIC_CLASS_NAMES
from skinlab.data import demo
from skinlab.data.audit import audit_dataset
from skinlab.data.demo import (
    DEMO_DIRNAME,
    DEMO_LABEL,
    MARKER_NAME,
    demo_root,
    draw_lesion,
    ensure_demo_dataset,
    generate_demo_dataset,
    is_demo_dataset,
    planted_problems,
)
from skinlab.data.discovery import discover
from skinlab.data.images import decode_image, load_rgb_array


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    return generate_demo_dataset(tmp_path_factory.mktemp("data") / DEMO_DIRNAME, scale=0.5)


@pytest.fixture(scope="module")
def dataset(demo_dir):
    return discover(demo_dir)


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _hidden_siblings(folder: Path) -> list[Path]:
    return [p for p in folder.parent.iterdir() if p.name.startswith(".")]


def test_train_and_test_hold_the_nine_isic_class_folders(demo_dir):
    for split in ("Train", "Test"):
        folders = sorted(p.name for p in (demo_dir / split).iterdir())
        assert folders == sorted(ISIC_CLASS_NAMES)


def test_train_counts_follow_the_isic_imbalance(dataset):
    train = dataset.counts()["Train"]
    assert train["pigmented benign keratosis"] > train["seborrheic keratosis"]
    assert train["melanoma"] > train["dermatofibroma"]
    assert train["basal cell carcinoma"] > train["actinic keratosis"]
    assert train["squamous cell carcinoma"] > train["vascular lesion"]
    assert train.idxmax() in {"pigmented benign keratosis", "melanoma"}
    assert train.idxmin() == "seborrheic keratosis"


def test_test_split_has_the_same_count_for_every_class(dataset):
    assert dataset.counts()["Test"].nunique() == 1


def test_every_image_decodes_and_discovery_finds_nine_classes(demo_dir, dataset):
    assert dataset.class_names == ISIC_CLASS_NAMES
    assert dataset.unreadable.empty
    assert dataset.notes == []
    for path in dataset.table["path"][::7]:
        assert decode_image(path).mode == "RGB"


def test_image_sizes_and_aspect_ratios_vary(dataset):
    table = dataset.table
    assert table["width"].between(96, 256).all() and table["height"].between(96, 256).all()
    assert table["width"].nunique() > 10
    ratios = table["width"] / table["height"]
    assert (ratios > 1.2).any() and (ratios < 0.8).any() and (ratios == 1).any()


def test_images_are_mostly_jpeg_with_a_few_png(dataset):
    formats = dataset.table["format"].value_counts()
    assert formats["JPEG"] > 5 * formats["PNG"] > 0


def test_marker_labels_the_folder_as_synthetic_demo_data(demo_dir):
    assert DEMO_LABEL in (demo_dir / MARKER_NAME).read_text(encoding="utf-8")
    assert is_demo_dataset(demo_dir)
    assert is_demo_dataset(demo_dir.parent)  # a wrapper folder resolves to the demo root


def test_ordinary_dataset_or_missing_folder_is_not_the_demo(tmp_path):
    (tmp_path / "real" / "Train" / "nevus").mkdir(parents=True)
    assert not is_demo_dataset(tmp_path / "real")
    assert not is_demo_dataset(tmp_path / "missing")


def test_same_seed_gives_byte_identical_files(tmp_path):
    first = _hashes(generate_demo_dataset(tmp_path / "a", seed=3, scale=0.1))
    second = _hashes(generate_demo_dataset(tmp_path / "b", seed=3, scale=0.1))
    assert first == second


def test_different_seed_gives_different_images(tmp_path):
    first = _hashes(generate_demo_dataset(tmp_path / "a", seed=1, scale=0.1))
    second = _hashes(generate_demo_dataset(tmp_path / "b", seed=2, scale=0.1))
    images = [name for name in first if name != MARKER_NAME]
    assert all(first[name] != second.get(name) for name in images)


def test_nearest_centroid_on_16px_colour_beats_chance_by_far(dataset):
    def features(split):
        rows = dataset.images(split)
        x = np.stack([load_rgb_array(p, 16).ravel() / 255.0 for p in rows["path"]])
        return x, rows["label"].map(dataset.class_names.index).to_numpy()

    x_train, y_train = features("Train")
    x_test, y_test = features("Test")
    centroids = np.stack([x_train[y_train == k].mean(axis=0) for k in range(9)])
    predicted = ((x_test[:, None, :] - centroids[None]) ** 2).sum(axis=-1).argmin(axis=1)
    assert (predicted == y_test).mean() >= 0.45  # chance is 1/9


@pytest.mark.parametrize("label", ISIC_CLASS_NAMES)
def test_draw_lesion_is_an_rgb_image_of_the_requested_size_and_repeatable(label):
    image = draw_lesion(label, np.random.default_rng(5), (200, 150))
    again = draw_lesion(label, np.random.default_rng(5), (200, 150))
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (200, 150)
    assert image.tobytes() == again.tobytes()


def test_draw_lesion_rejects_a_class_it_does_not_know():
    with pytest.raises(ValueError, match="not an ISIC class"):
        draw_lesion("freckle", np.random.default_rng(0), (64, 64))


def test_scale_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="positive"):
        generate_demo_dataset(tmp_path / "demo", scale=0)


def test_generate_refuses_to_overwrite_a_folder_that_is_not_a_demo(tmp_path):
    precious = tmp_path / "mine" / "Train" / "nevus" / "photo.jpg"
    precious.parent.mkdir(parents=True)
    precious.write_bytes(b"not ours")
    with pytest.raises(FileExistsError, match="not a skinlab demo"):
        generate_demo_dataset(tmp_path / "mine", scale=0.1)
    assert precious.read_bytes() == b"not ours"


def test_generate_replaces_a_demo_drawn_with_other_parameters(tmp_path):
    out = generate_demo_dataset(tmp_path / "demo", seed=1, scale=0.1)
    generate_demo_dataset(out, seed=2, scale=0.1)
    assert "seed: 2" in (out / MARKER_NAME).read_text(encoding="utf-8")
    assert _hashes(out) == _hashes(generate_demo_dataset(tmp_path / "fresh", seed=2, scale=0.1))
    assert _hidden_siblings(out) == []


def test_losing_a_generation_race_keeps_the_winners_copy(tmp_path, monkeypatch):
    out = tmp_path / "demo"
    write_images = demo._write_images
    rival_ran = []

    def write_then_let_a_rival_commit_first(root, seed, scale):
        write_images(root, seed, scale)
        if not rival_ran:
            rival_ran.append(True)
            generate_demo_dataset(out, seed=seed, scale=scale)

    monkeypatch.setattr(demo, "_write_images", write_then_let_a_rival_commit_first)
    assert generate_demo_dataset(out, scale=0.1) == out
    assert rival_ran and (out / MARKER_NAME).is_file()
    assert _hashes(out) == _hashes(generate_demo_dataset(tmp_path / "fresh", scale=0.1))
    assert _hidden_siblings(out) == []


def test_a_failed_generation_leaves_nothing_under_the_final_name(tmp_path, monkeypatch):
    def crash(*_):
        raise OSError("disk full")

    monkeypatch.setattr(demo, "draw_lesion", crash)
    with pytest.raises(OSError, match="disk full"):
        generate_demo_dataset(tmp_path / "demo", scale=0.1)
    assert list(tmp_path.iterdir()) == []


def test_ensure_regenerates_after_a_killed_generation(tmp_path, monkeypatch):
    monkeypatch.setenv("SKINLAB_DATA_DIR", str(tmp_path))
    root = demo_root()
    assert root == tmp_path / DEMO_DIRNAME
    # What a killed run can leave: its temporary folder, and a root without the marker.
    leftover = tmp_path / f".{DEMO_DIRNAME}.tmp-dead"
    (leftover / "Train" / "nevus").mkdir(parents=True)
    an_hour_ago = time.time() - 3600
    os.utime(leftover, (an_hour_ago, an_hour_ago))
    (root / "Train" / "nevus").mkdir(parents=True)
    (root / "Train" / "nevus" / "half.jpg").write_bytes(b"\xff\xd8")

    assert ensure_demo_dataset() == root
    assert is_demo_dataset(root) and not leftover.exists()
    assert not (root / "Train" / "nevus" / "half.jpg").exists()
    assert discover(root).unreadable.empty
    marker_written = (root / MARKER_NAME).stat().st_mtime_ns
    assert ensure_demo_dataset() == root  # complete now: nothing is redrawn
    assert (root / MARKER_NAME).stat().st_mtime_ns == marker_written


def test_planted_duplicates_and_conflicts_are_exactly_what_the_audit_finds(demo_dir, dataset):
    planted = planted_problems(scale=0.5)
    report = audit_dataset(dataset)
    found = {frozenset(f.relpath for f in g.files) for g in report.exact_duplicates}
    assert found == {frozenset(g) for g in (*planted.exact_duplicates, *planted.label_conflicts)}
    conflicts = {frozenset(f.relpath for f in g.files) for g in report.label_conflicts}
    assert conflicts == {frozenset(g) for g in planted.label_conflicts}
    assert not report.cross_split_leaks  # the Test score stays clean


def test_planted_near_duplicates_differ_in_bytes_but_not_in_picture(demo_dir):
    planted = planted_problems(scale=0.5)
    assert planted.near_duplicates
    for source, copy in planted.near_duplicates:
        assert (demo_dir / source).read_bytes() != (demo_dir / copy).read_bytes()
        a = load_rgb_array(demo_dir / source, 32).astype(float)
        b = load_rgb_array(demo_dir / copy, 32).astype(float)
        assert np.abs(a - b).mean() < 12


def test_planted_mislabels_sit_in_another_class_folder_and_are_the_only_extras(demo_dir):
    planted = planted_problems(scale=0.5)
    assert planted.mislabelled
    for relpath, drawn in planted.mislabelled.items():
        assert (demo_dir / relpath).is_file()
        assert relpath.split("/")[1] != drawn
    again = planted_problems(scale=0.5)
    assert again == planted  # a pure function of seed and scale


def test_imbalance_is_strongest_inside_the_confusable_pairs(dataset):
    train = dataset.counts()["Train"]
    assert train["pigmented benign keratosis"] > 4 * train["seborrheic keratosis"]
    assert train["squamous cell carcinoma"] > train["actinic keratosis"]
