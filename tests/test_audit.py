"""The data audit finds exactly the planted duplicates, conflicts, leaks and broken files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import image_bytes

from skinlab.data.audit import audit_dataset, leaked_or_conflicting_paths
from skinlab.data.discovery import discover


def _copy(root: Path, src: str, dst: str) -> None:
    (root / dst).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / src, root / dst)


@pytest.fixture
def planted(make_dataset_folder) -> Path:
    """A tiny dataset with known problems.

    Unique images: Train melanoma 4, nevus 3, dermatofibroma 1; Test melanoma 1, nevus 1.
    Planted: a same-label copy inside Train (img_002), a Train->Test leak with the same
    label (img_000), a label conflict inside Train (img_001), a Test copy that is both a
    leak and a conflict (img_003), a grey PNG, an empty and a truncated file.
    """
    root = make_dataset_folder(
        {
            "Train": {"melanoma": 4, "nevus": 3, "dermatofibroma": 1},
            "Test": {"melanoma": 1, "nevus": 1},
        }
    )
    _copy(root, "Train/melanoma/img_002.jpg", "Train/melanoma/img_002_copy.jpg")
    _copy(root, "Train/melanoma/img_000.jpg", "Test/melanoma/leaked.jpg")
    _copy(root, "Train/melanoma/img_001.jpg", "Train/nevus/relabelled.jpg")
    _copy(root, "Train/melanoma/img_003.jpg", "Test/nevus/leaked_relabelled.jpg")
    (root / "Train/nevus/grey.png").write_bytes(
        image_bytes(mode="L", size=(40, 20), fmt="PNG", seed=99)
    )
    (root / "Train/nevus/empty.jpg").write_bytes(b"")
    (root / "Test/nevus/empty.jpg").write_bytes(b"")  # identical bytes, yet not a duplicate
    whole = image_bytes(seed=123)
    (root / "Train/melanoma/truncated.jpg").write_bytes(whole[: len(whole) // 2])
    return root


def _relpaths(groups) -> set[tuple[str, ...]]:
    return {tuple(f.relpath for f in g.files) for g in groups}


def test_exact_duplicates_are_exactly_the_planted_copies(planted) -> None:
    report = audit_dataset(discover(planted))

    assert _relpaths(report.exact_duplicates) == {
        ("Train/melanoma/img_000.jpg", "Test/melanoma/leaked.jpg"),
        ("Train/melanoma/img_001.jpg", "Train/nevus/relabelled.jpg"),
        ("Train/melanoma/img_002.jpg", "Train/melanoma/img_002_copy.jpg"),
        ("Train/melanoma/img_003.jpg", "Test/nevus/leaked_relabelled.jpg"),
    }


def test_label_conflicts_are_duplicates_filed_under_two_classes(planted) -> None:
    report = audit_dataset(discover(planted))

    assert _relpaths(report.label_conflicts) == {
        ("Train/melanoma/img_001.jpg", "Train/nevus/relabelled.jpg"),
        ("Train/melanoma/img_003.jpg", "Test/nevus/leaked_relabelled.jpg"),
    }
    assert {g.labels for g in report.label_conflicts} == {("melanoma", "nevus")}


def test_cross_split_leaks_are_duplicates_in_two_splits(planted) -> None:
    report = audit_dataset(discover(planted))

    assert _relpaths(report.cross_split_leaks) == {
        ("Train/melanoma/img_000.jpg", "Test/melanoma/leaked.jpg"),
        ("Train/melanoma/img_003.jpg", "Test/nevus/leaked_relabelled.jpg"),
    }
    assert {g.splits for g in report.cross_split_leaks} == {("Train", "Test")}


def test_clean_test_score_leaves_out_leaked_and_conflicting_test_images(planted) -> None:
    report = audit_dataset(discover(planted))

    assert leaked_or_conflicting_paths(report) == {
        "Test/melanoma/leaked.jpg",
        "Test/nevus/leaked_relabelled.jpg",
    }


def test_empty_and_truncated_files_are_listed_with_reasons(planted) -> None:
    report = audit_dataset(discover(planted))

    reasons = {u.relpath: u.reason for u in report.unreadable}
    assert set(reasons) == {
        "Train/nevus/empty.jpg",
        "Test/nevus/empty.jpg",
        "Train/melanoma/truncated.jpg",
    }
    assert "empty" in reasons["Train/nevus/empty.jpg"]
    assert "truncated" in reasons["Train/melanoma/truncated.jpg"]
    assert {(u.split, u.label) for u in report.unreadable} == {
        ("Train", "nevus"),
        ("Test", "nevus"),
        ("Train", "melanoma"),
    }


def test_counts_cover_every_class_and_imbalance_ignores_absent_classes(planted) -> None:
    report = audit_dataset(discover(planted))

    assert report.counts == {
        "Train": {"dermatofibroma": 1, "melanoma": 5, "nevus": 5},
        "Test": {"dermatofibroma": 0, "melanoma": 2, "nevus": 2},
    }
    train, test = report.imbalance["Train"], report.imbalance["Test"]
    assert (train.ratio, train.largest, train.smallest) == (5.0, "melanoma", "dermatofibroma")
    assert (test.ratio, test.largest, test.smallest) == (1.0, "melanoma", "melanoma")


def test_stats_describe_readable_images_only(planted) -> None:
    stats = audit_dataset(discover(planted)).stats

    assert stats["images"] == 15
    assert stats["width"] == {"min": 32.0, "median": 32.0, "max": 40.0}
    assert stats["height"] == {"min": 20.0, "median": 24.0, "max": 24.0}
    assert stats["aspect_ratio"]["max"] == pytest.approx(2.0)
    assert stats["distinct_sizes"] == 2
    assert stats["modes"] == {"RGB": 14, "L": 1}
    assert stats["formats"] == {"JPEG": 14, "PNG": 1}
    assert 0 < stats["file_size"]["min"] <= stats["file_size"]["max"]
    assert stats["file_size"]["total"] >= 15 * stats["file_size"]["min"]


def test_clean_dataset_reports_no_problems(make_dataset_folder) -> None:
    report = audit_dataset(discover(make_dataset_folder({"Train": {"melanoma": 3, "nevus": 2}})))

    assert not report.exact_duplicates
    assert not report.label_conflicts
    assert not report.cross_split_leaks
    assert not report.unreadable
    assert leaked_or_conflicting_paths(report) == set()
    assert report.imbalance["Train"].ratio == 1.5


def test_report_dict_is_json_serialisable_with_every_section(planted) -> None:
    data = json.loads(json.dumps(audit_dataset(discover(planted)).to_dict()))

    for key in (
        "counts",
        "imbalance",
        "unreadable",
        "exact_duplicates",
        "label_conflicts",
        "cross_split_leaks",
        "stats",
        "notes",
    ):
        assert key in data
    assert {tuple(c["labels"]) for c in data["label_conflicts"]} == {("melanoma", "nevus")}
    assert {tuple(c["splits"]) for c in data["cross_split_leaks"]} == {("Train", "Test")}
    assert data["exact_duplicates"][0]["files"][0].keys() == {"relpath", "split", "label"}


def test_discovery_notes_are_carried_into_the_report(planted) -> None:
    (planted / "Train" / "nevus" / "readme.txt").write_text("not an image")

    report = audit_dataset(discover(planted))

    assert any(n.path.endswith("readme.txt") for n in report.notes)
    assert any(n["path"].endswith("readme.txt") for n in report.to_dict()["notes"])


def test_summary_names_each_problem_in_a_few_lines(planted) -> None:
    text = audit_dataset(discover(planted)).summary()

    assert "Exact duplicate groups: 4" in text
    assert "Label conflicts (one image, several labels): 2" in text
    assert "Cross-split leaks (one image, several splits): 2" in text
    assert "Unreadable files: 3" in text
    assert "Train/melanoma/img_000.jpg = Test/melanoma/leaked.jpg" in text
    assert len(text.splitlines()) < 40
