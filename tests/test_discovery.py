"""Discovery: any reasonable dataset folder becomes a tidy table, odd content is reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import SHARED_ISIC, image_bytes

from skinlab.core.classes import ISIC_CLASS_NAMES
from skinlab.core.errors import DatasetLayoutError
from skinlab.data.discovery import COLUMNS, discover, fingerprint, resolve_root


def test_table_has_one_row_per_image_with_every_column(make_dataset_folder) -> None:
    root = make_dataset_folder(
        {"Train": {"melanoma": 3, "nevus": 2}, "Test": {"melanoma": 1, "nevus": 1}}
    )
    ds = discover(root)
    assert tuple(ds.table.columns) == COLUMNS
    assert len(ds.table) == 7
    assert ds.class_names == ("melanoma", "nevus")
    assert ds.splits == ("Train", "Test")
    assert ds.counts().loc["melanoma", "Train"] == 3
    row = ds.table.iloc[0]
    assert (row["width"], row["height"], row["mode"], row["format"]) == (32, 24, "RGB", "JPEG")
    assert len(row.content_hash) == 32 and row.error is None


def test_split_folders_match_case_insensitively(make_dataset_folder) -> None:
    root = make_dataset_folder(
        {"train": {"nevus": 1}, "TEST": {"nevus": 1}, "validation": {"nevus": 1}}
    )
    assert set(discover(root).table["split"]) == {"Train", "Test", "Val"}


def test_kaggle_zip_layout_with_splits_one_level_down_is_followed(make_dataset_folder) -> None:
    root = make_dataset_folder({"Train": {"melanoma": 1}}, root_name="outer/Skin cancer ISIC")
    outer = root.parent
    assert resolve_root(outer) == root
    assert len(discover(outer).table) == 1


def test_class_folder_case_and_underscores_map_to_isic_names(make_dataset_folder) -> None:
    root = make_dataset_folder({"Train": {"Basal_Cell_Carcinoma": 1, "Melanoma": 1}})
    assert discover(root).class_names == ("basal cell carcinoma", "melanoma")


def test_misspelled_class_folder_is_kept_and_reported(make_dataset_folder) -> None:
    root = make_dataset_folder({"Train": {"melonoma": 2, "nevus": 1}})
    ds = discover(root)
    assert "melonoma" in ds.class_names
    assert any("misspelling of 'melanoma'" in n.reason for n in ds.notes)


def test_other_class_sets_still_work(make_dataset_folder) -> None:
    ds = discover(make_dataset_folder({"Train": {"cats": 1, "dogs": 1}}))
    assert ds.class_names == ("cats", "dogs")


def test_hidden_non_image_and_loose_files_are_skipped_with_reasons(make_dataset_folder) -> None:
    root = make_dataset_folder({"Train": {"nevus": 1}})
    (root / "Train" / "nevus" / ".DS_Store").write_bytes(b"junk")
    (root / "Train" / "nevus" / "._img_000.jpg").write_bytes(b"apple double")
    (root / "Train" / "nevus" / "notes.txt").write_text("hello")
    (root / "Train" / "loose.jpg").write_bytes(image_bytes())
    (root / "Train" / ".hidden_class").mkdir()
    (root / "Train" / ".hidden_class" / "x.jpg").write_bytes(image_bytes())
    ds = discover(root)
    assert len(ds.table) == 1
    reasons = {Path(n.path).name: n.reason for n in ds.notes}
    assert "not an image" in reasons["notes.txt"]
    assert "outside any class folder" in reasons["loose.jpg"]
    assert ".DS_Store" not in reasons


def test_unreadable_images_stay_in_table_with_reason(make_dataset_folder) -> None:
    root = make_dataset_folder({"Train": {"nevus": 2}})
    (root / "Train" / "nevus" / "empty.jpg").write_bytes(b"")
    good = image_bytes(size=(200, 200))
    (root / "Train" / "nevus" / "cut.jpg").write_bytes(good[: len(good) // 2])
    ds = discover(root)
    bad = ds.unreadable.set_index("relpath")["error"]
    assert "empty.jpg is empty" in bad["Train/nevus/empty.jpg"]
    assert "cut.jpg is truncated" in bad["Train/nevus/cut.jpg"]
    assert len(ds.images("Train")) == 2
    assert ds.counts().loc["nevus", "Train"] == 2


def test_empty_split_is_reported(make_dataset_folder) -> None:
    root = make_dataset_folder({"Train": {"nevus": 1}})
    (root / "Test").mkdir()
    ds = discover(root)
    assert any("Test folder holds no images" in n.reason for n in ds.notes)


def test_class_missing_from_a_split_is_reported(make_dataset_folder) -> None:
    root = make_dataset_folder({"Train": {"nevus": 1, "melanoma": 1}, "Test": {"nevus": 1}})
    assert any("'melanoma' has no images in Test" in n.reason for n in discover(root).notes)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_text("x"), "is a file"),
        (lambda p: (p / "images").mkdir(parents=True), "No Train or Test folder"),
        (lambda p: (p / "Train").mkdir(parents=True), "no images"),
    ],
)
def test_wrong_folders_raise_layout_error_with_clear_sentence(tmp_path, setup, message) -> None:
    target = tmp_path / "dataset"
    setup(target)
    with pytest.raises(DatasetLayoutError, match=message):
        discover(target)


def test_two_datasets_side_by_side_ask_the_user_to_choose(make_dataset_folder) -> None:
    a = make_dataset_folder({"Train": {"nevus": 1}}, root_name="both/a")
    make_dataset_folder({"Train": {"nevus": 1}}, root_name="both/b", seed=1)
    with pytest.raises(DatasetLayoutError, match="several datasets"):
        resolve_root(a.parent)


def test_fingerprint_changes_when_a_file_is_added(make_dataset_folder) -> None:
    root = make_dataset_folder({"Train": {"nevus": 1}})
    before = fingerprint(root)
    assert fingerprint(root) == before
    (root / "Train" / "nevus" / "new.jpg").write_bytes(image_bytes(seed=99))
    assert fingerprint(root) != before


@pytest.mark.skipif(not SHARED_ISIC.exists(), reason="real ISIC images not available here")
def test_real_isic_train_split_has_nine_classes_and_no_unreadable_files() -> None:
    ds = discover(SHARED_ISIC)
    assert ds.class_names == ISIC_CLASS_NAMES
    assert len(ds.images("Train")) == 2241
    assert ds.unreadable.empty
