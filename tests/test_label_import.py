"""Importing a HAM10000 or ISIC challenge folder: converted to Train/<class>/, its CSV kept so
lesion ids stay known, rows of no class counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import image_bytes

from skinlab.core.errors import ArchiveError
from skinlab.data.discovery import discover
from skinlab.data.extra_collections import lesion_ids, read_extra
from skinlab.data.importer import import_dataset

HAM_ROWS = (
    ("HAM_1", "ISIC_0024306", "nv"),
    ("HAM_1", "ISIC_0024307", "nv"),
    ("HAM_2", "ISIC_0024308", "mel"),
    ("HAM_3", "ISIC_0024309", "akiec"),
    ("HAM_4", "ISIC_0024310", "xyz"),  # a code skinlab does not know
    ("HAM_5", "ISIC_0024311", "bkl"),  # listed, but its image is missing
)


def _ham(folder: Path) -> Path:
    """HAM10000's layout: images in two part folders, the metadata CSV at the top."""
    lines = ["lesion_id,image_id,dx,dx_type,age,sex,localization\n"]
    for n, (lesion, image_id, dx) in enumerate(HAM_ROWS):
        lines.append(f"{lesion},{image_id},{dx},histo,40.0,female,back\n")
        if dx != "bkl":
            part = folder / f"HAM10000_images_part_{1 + n % 2}"
            part.mkdir(parents=True, exist_ok=True)
            (part / f"{image_id}.jpg").write_bytes(image_bytes(seed=n))
    (folder / "HAM10000_metadata.csv").write_text("".join(lines))
    return folder


def test_a_ham_folder_is_imported_as_train_class_folders_with_its_metadata(
    tmp_path: Path,
) -> None:
    messages: list[str] = []
    root = import_dataset(
        _ham(tmp_path / "HAM10000"),
        data_root=tmp_path / "data",
        progress=lambda fraction, message: messages.append(message),
    )
    assert root == tmp_path / "data" / "ham10000"
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == [
        "HAM10000_metadata.csv",
        "Train/actinic keratosis/ISIC_0024309.jpg",
        "Train/melanoma/ISIC_0024308.jpg",
        "Train/nevus/ISIC_0024306.jpg",
        "Train/nevus/ISIC_0024307.jpg",
    ]
    # The last message counts what was left out and why.
    assert "4 images in 3 classes; 2 rows left out" in messages[-1]
    assert "no class (XYZ) 1" in messages[-1] and "image file missing 1" in messages[-1]
    # Explore, audit and training read it as any dataset; its lesions stay known.
    assert discover(root).counts()["Train"].to_dict() == {
        "actinic keratosis": 1,
        "melanoma": 1,
        "nevus": 2,
    }
    assert lesion_ids(root)["isic_0024307"] == "HAM_1"
    assert set(read_extra(root).table["lesion_id"]) == {"HAM_1", "HAM_2", "HAM_3"}


def test_an_isic_ground_truth_folder_is_imported_by_its_one_hot_columns(tmp_path: Path) -> None:
    source = tmp_path / "ISIC_2019_Training"
    (source / "images").mkdir(parents=True)
    rows = ["image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK\n"]
    for n, marked in enumerate(("MEL", "NV", "UNK")):
        image_id = f"ISIC_{n:07d}"
        (source / "images" / f"{image_id}.jpg").write_bytes(image_bytes(seed=n))
        cells = ["1.0" if c == marked else "0.0" for c in rows[0].strip().split(",")[1:]]
        rows.append(",".join([image_id, *cells]) + "\n")
    (source / "ISIC_2019_Training_GroundTruth.csv").write_text("".join(rows))
    root = import_dataset(source, name="isic2019", data_root=tmp_path / "data")
    assert (root / "ISIC_2019_Training_GroundTruth.csv").is_file()
    assert sorted(p.parent.name for p in (root / "Train").rglob("*.jpg")) == [
        "melanoma",
        "nevus",
    ]


def test_a_ham_folder_whose_images_are_all_missing_is_refused_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    source = tmp_path / "ham"
    source.mkdir()
    (source / "HAM10000_metadata.csv").write_text("lesion_id,image_id,dx\nHAM_1,ISIC_0024306,nv\n")
    with pytest.raises(ArchiveError, match="names no image"):
        import_dataset(source, data_root=tmp_path / "data")
    assert not (tmp_path / "data" / "ham").exists()


def test_a_linked_image_of_a_ham_folder_is_never_followed(tmp_path: Path) -> None:
    source = _ham(tmp_path / "ham")
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(image_bytes(seed=99))
    linked = source / "HAM10000_images_part_1" / "ISIC_0024306.jpg"
    linked.unlink()
    linked.symlink_to(outside)
    root = import_dataset(source, data_root=tmp_path / "data")
    assert not (root / "Train" / "nevus" / "ISIC_0024306.jpg").exists()
    assert (root / "Train" / "nevus" / "ISIC_0024307.jpg").is_file()
