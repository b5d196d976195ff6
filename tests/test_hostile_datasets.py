"""Hostile dataset folders: unreadable files and folders, a class folder that is a file, an
empty class, and a dataset that disappears while the app shows it. Each becomes a note, a
row with its reason or one sentence, never an exception."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from skinlab.core.confine import within
from skinlab.core.errors import ArchiveError, DatasetLayoutError, InvalidImageError
from skinlab.data import discovery, importer
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
        "locked.jpg could not be read (Permission denied); check that the file exists and is "
        "readable."
    ]
    assert dataset.counts().loc["nevus", "Train"] == 2
    assert [u.relpath for u in audit_dataset(dataset).unreadable] == ["Train/nevus/locked.jpg"]
    error = _decoder_error(root / "Train/nevus/locked.jpg")
    assert str(error).startswith("locked.jpg could not be read") and error.reason == "unreadable"


def _decoder_error(path: Path) -> InvalidImageError:
    with pytest.raises(InvalidImageError) as info:
        decode_image(path)
    return info.value


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


# --- issue 29 (2): every level of a dataset walk stays inside the allowed folders ------------


@pytest.fixture
def outside(make_dataset_folder, tmp_path) -> Iterator[Path]:
    """A dataset *outside* every allowed folder (the system temp, not pytest's), removed after."""
    folder = Path(tempfile.mkdtemp(prefix="skinlab-outside-"))
    assert within(folder) is None
    shutil.copytree(make_dataset_folder(LAYOUT, root_name="elsewhere"), folder / "ds")
    yield folder / "ds"
    shutil.rmtree(folder)


def _leaked(dataset, outside: Path) -> list[str]:
    return [p for p in dataset.table["path"] if Path(os.path.realpath(p)).is_relative_to(outside)]


def test_a_wrapper_folder_linking_outside_is_not_followed(tmp_path, outside) -> None:
    root = tmp_path / "linked-wrapper"
    root.mkdir()
    (root / "wrapper").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DatasetLayoutError, match="No Train or Test folder"):
        discover(root)


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("Val", "Test"),  # a split folder
        ("Train/melanoma-extra", "Train/melanoma"),  # a class folder
        ("Train/nevus/planted.jpg", "Train/nevus/img_000.jpg"),  # one image
    ],
)
def test_a_split_class_or_file_linking_outside_is_skipped_with_a_note(
    make_dataset_folder, outside, link, target
) -> None:
    root = make_dataset_folder(LAYOUT)
    (root / link).symlink_to(outside / target)

    dataset = discover(root)

    assert _leaked(dataset, outside) == []
    assert len(dataset.table) == 7  # exactly the dataset's own images
    assert any(n.path == str(root / link) and "outside" in n.reason for n in dataset.notes)


def test_a_link_staying_inside_the_dataset_is_still_followed(make_dataset_folder) -> None:
    root = make_dataset_folder(LAYOUT)
    (root / "Train/nevus/again.jpg").symlink_to(root / "Train/nevus/img_000.jpg")
    assert len(discover(root).table) == 8


# --- issue 29 (3): only regular files of a bounded size are read, in chunks ----------------


@pytest.fixture
def no_whole_file_reads(monkeypatch) -> list[Path]:
    """Fails any ``Path.read_bytes`` (how the scan read files whole, a FIFO or /dev/zero too)."""
    seen: list[Path] = []

    def refuse(self: Path) -> bytes:
        seen.append(self)
        raise AssertionError(f"{self} was read whole")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    return seen


def _error_of(dataset, name: str) -> str:
    return dataset.table.set_index("relpath").loc[f"Train/nevus/{name}", "error"]


def test_a_fifo_named_jpg_is_an_error_row_and_the_scan_does_not_wait_for_it(
    make_dataset_folder,
) -> None:
    root = make_dataset_folder(LAYOUT)
    fifo = root / "Train/nevus/pipe.jpg"
    os.mkfifo(fifo)
    found: list = []
    scan = threading.Thread(target=lambda: found.append(discover(root)), daemon=True)
    scan.start()
    scan.join(timeout=120)  # generous: the property is "never waits for a writer"
    hung = scan.is_alive()
    if hung:  # let the blocked reader see end-of-file, so the thread ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert not hung, "the scan waited for a writer on the FIFO"
    error = _error_of(found[0], "pipe.jpg")
    assert error.startswith("pipe.jpg is not a regular file") and error.count(". ") == 0
    assert found[0].counts().loc["nevus", "Train"] == 2


def test_a_jpg_linked_to_dev_zero_is_refused_unread(
    make_dataset_folder, monkeypatch, no_whole_file_reads
) -> None:
    root = make_dataset_folder(LAYOUT)
    (root / "Train/nevus/zero.jpg").symlink_to("/dev/zero")
    # /dev allowed, so the regular-file check (not the link confinement) is what refuses it.
    monkeypatch.setenv("SKINLAB_EXTRA_DIRS", f"{os.environ['SKINLAB_EXTRA_DIRS']}{os.pathsep}/dev")

    dataset = discover(root)

    assert _error_of(dataset, "zero.jpg").startswith("zero.jpg is not a regular file")
    assert no_whole_file_reads == []
    assert _decoder_error(root / "Train/nevus/zero.jpg").reason == "not_a_file"


def test_a_3gb_sparse_jpg_is_refused_by_its_size_before_any_read(
    make_dataset_folder, monkeypatch, no_whole_file_reads
) -> None:
    root = make_dataset_folder(LAYOUT)
    sparse = root / "Train/nevus/huge.jpg"
    with open(sparse, "wb") as handle:
        handle.truncate(3 * 2**30)
    chunks: list[int] = []
    real_update = hashlib.blake2b
    monkeypatch.setattr(
        discovery.hashlib, "blake2b", lambda **kw: _CountingHash(real_update(**kw), chunks)
    )

    dataset = discover(root)

    assert _error_of(dataset, "huge.jpg") == (
        "huge.jpg is 3072 MB; images over 50 MB are refused, resize it first."
    )
    assert no_whole_file_reads == []
    assert max(chunks) <= 2**20  # every image hashed in chunks of at most 1 MiB
    assert dataset.counts().loc["nevus", "Train"] == 2


class _CountingHash:
    """A hash that records the size of every chunk it is fed."""

    def __init__(self, inner, chunks: list[int]) -> None:
        self._inner, self._chunks = inner, chunks

    def update(self, data: bytes) -> None:
        self._chunks.append(len(data))
        self._inner.update(data)

    def hexdigest(self) -> str:
        return self._inner.hexdigest()


@pytest.mark.parametrize("tab", ["Gallery", "Audit", "Review"])
def test_explore_shows_a_dataset_holding_a_fifo_and_a_dev_zero_link(make_dataset_folder, tab):
    root = make_dataset_folder(LAYOUT, root_name=f"special-{tab}")
    os.mkfifo(root / "Train/nevus/pipe.jpg")
    (root / "Train/nevus/zero.jpg").symlink_to("/dev/zero")
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["dataset"] = str(root)
    at.session_state["explore_tab"] = tab
    at.run()
    assert not at.exception, at.exception
    assert at.metric[1].value == "7"  # the readable images; the FIFO was never opened for reading
