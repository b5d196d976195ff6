"""Hostile dataset folders: unreadable files and folders, a class folder that is a file, an
empty class, and a dataset that disappears while the app shows it. Each becomes a note, a
row with its reason or one sentence, never an exception."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from skinlab.core.errors import ArchiveError, DatasetLayoutError, InvalidImageError
from skinlab.data import importer
from skinlab.data.audit import audit_dataset
from skinlab.data.discovery import discover
from skinlab.data.images import decode_image

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
LAYOUT = {"Train": {"melanoma": 3, "nevus": 2}, "Test": {"melanoma": 1, "nevus": 1}}


def _deny_reading(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make files called ``name`` unreadable, as ``chmod 000`` would for a normal user.

    Tests run as root here, where ``chmod`` does not stop reads, so every way skinlab opens
    a file (``Path.read_bytes``, ``open``, ``os.open``) is patched to refuse that name.
    """

    def refuse(path) -> None:
        if Path(os.fsdecode(path)).name == name:
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))

    read_bytes, real_open, os_open = Path.read_bytes, open, os.open
    monkeypatch.setattr(Path, "read_bytes", lambda self: refuse(self) or read_bytes(self))
    monkeypatch.setattr("builtins.open", lambda f, *a, **k: refuse(f) or real_open(f, *a, **k))
    monkeypatch.setattr(os, "open", lambda f, *a, **k: refuse(f) or os_open(f, *a, **k))


def test_unreadable_image_is_a_row_with_its_reason_and_the_rest_is_scanned(
    make_dataset_folder, monkeypatch
) -> None:
    root = make_dataset_folder(LAYOUT)
    shutil.copy(root / "Train/nevus/img_000.jpg", root / "Train/nevus/locked.jpg")
    _deny_reading(monkeypatch, "locked.jpg")

    dataset = discover(root)

    assert dataset.unreadable["error"].tolist() == [
        "locked.jpg could not be read (Permission denied)."
    ]
    assert dataset.counts().loc["nevus", "Train"] == 2
    assert [u.relpath for u in audit_dataset(dataset).unreadable] == ["Train/nevus/locked.jpg"]
    with pytest.raises(InvalidImageError, match="locked.jpg could not be read") as info:
        decode_image(root / "Train/nevus/locked.jpg")
    assert info.value.reason == "unreadable"


def test_folder_with_an_unreadable_file_is_not_imported_and_says_which(
    make_dataset_folder, monkeypatch, tmp_path
) -> None:
    root = make_dataset_folder(LAYOUT)
    (root / "Train/nevus/locked.jpg").write_bytes((root / "Train/nevus/img_000.jpg").read_bytes())
    data = tmp_path / "data"
    data.mkdir()
    _deny_reading(monkeypatch, "locked.jpg")

    with pytest.raises(ArchiveError) as info:
        importer.import_dataset(root, data_root=data)

    assert str(info.value).startswith("'Train/nevus/locked.jpg' in ds could not be read")
    assert "free up disk space" not in str(info.value)  # not blamed on the destination
    assert os.listdir(data) == []


def test_unlistable_class_subfolder_is_noted_and_skipped(make_dataset_folder, monkeypatch):
    root = make_dataset_folder(LAYOUT)
    hidden = root / "Train/nevus/more"
    hidden.mkdir()
    (hidden / "x.jpg").write_bytes((root / "Train/nevus/img_000.jpg").read_bytes())
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(os.fsdecode(path)) == hidden:
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    dataset = discover(root)
    assert dataset.counts().loc["nevus", "Train"] == 2
    assert any(
        n.path == str(hidden) and "could not be listed (Permission denied)" in n.reason
        for n in dataset.notes
    )


def test_class_folder_that_is_a_file_is_noted_and_skipped(make_dataset_folder) -> None:
    root = make_dataset_folder(LAYOUT)
    (root / "Train/dermatofibroma").write_bytes(b"not a folder")
    dataset = discover(root)
    assert dataset.class_names == ("melanoma", "nevus")
    assert any(
        n.path.endswith("dermatofibroma") and "outside any class folder" in n.reason
        for n in dataset.notes
    )


def test_class_folder_without_images_is_noted(make_dataset_folder) -> None:
    root = make_dataset_folder(LAYOUT)
    (root / "Train/vascular lesion").mkdir()
    (root / "Train/dermatofibroma").mkdir()
    (root / "Train/dermatofibroma/readme.txt").write_text("images to come")
    notes = {n.reason for n in discover(root).notes}
    assert "class folder 'vascular lesion' holds no images" in notes
    assert "class folder 'dermatofibroma' holds no images" in notes


def test_dataset_vanishing_during_the_scan_is_one_sentence(make_dataset_folder, monkeypatch):
    root = make_dataset_folder(LAYOUT)
    real_iterdir = Path.iterdir

    def vanishing(self):
        if self.name == "Test":  # listed a moment ago, gone now
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", vanishing)
    with pytest.raises(DatasetLayoutError) as info:
        discover(root)
    assert str(info.value) == (
        f"{root} could not be scanned (No such file or directory); it was moved, deleted or "
        "made unreadable while being read, so check it and reload."
    )


@pytest.mark.parametrize("tab", ["Distribution", "Gallery", "Audit"])
def test_dataset_deleted_while_open_shows_one_sentence_on_rerun(make_dataset_folder, tab):
    root = make_dataset_folder(LAYOUT, root_name=f"vanishing-{tab}")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["dataset"] = str(root)
    at.session_state["explore_tab"] = tab
    at.run()
    assert not at.exception and not at.error
    assert at.metric[1].value == "7"

    shutil.rmtree(root)
    at.run()

    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [f"The folder {root} does not exist; check the path."]
    assert not at.metric  # no stale numbers from the cache
