"""Hostile dataset archives, imported from a path and as an app upload: each is refused with
one sentence naming the problem, and nothing is written anywhere (no dataset, no staging
folder, no file outside, no upload left in the temporary folder)."""

from __future__ import annotations

import functools
import io
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import image_bytes

from skinlab.app import uploads
from skinlab.core.errors import ArchiveError
from skinlab.data import importer


def _layout() -> dict[str, bytes]:
    return {f"Train/{c}/{c}{i}.jpg": image_bytes(size=(8, 8), seed=i) for c in "ab" for i in (1, 2)}


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _with_symlink() -> bytes:
    buf = io.BytesIO(_zip(_layout()))
    with zipfile.ZipFile(buf, "a") as archive:
        link = zipfile.ZipInfo("Train/a/link.jpg")
        link.create_system = 3  # Unix, so the mode bits below mean "symbolic link"
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    return buf.getvalue()


def _encrypted() -> bytes:
    data = bytearray(_zip(_layout()))
    data[data.find(b"PK\x01\x02") + 8] |= 0x1  # the "encrypted" flag of the first member
    return bytes(data)


#: case -> (archive bytes, import_dataset keyword arguments, words the refusal must hold)
CASES: dict[str, tuple[Callable[[], bytes], dict, str]] = {
    "zip-slip": (lambda: _zip({**_layout(), "../evil.jpg": image_bytes()}), {}, "outside"),
    "deep-zip-slip": (
        lambda: _zip({**_layout(), "Train/a/../../../evil.jpg": image_bytes()}),
        {},
        "outside",
    ),
    "absolute-path": (lambda: _zip({**_layout(), "/tmp/evil.jpg": image_bytes()}), {}, "absolute"),
    "drive-letter": (lambda: _zip({**_layout(), "C:\\evil.jpg": image_bytes()}), {}, "absolute"),
    "symlink-member": (_with_symlink, {}, "symbolic link"),
    # 8 MiB of zeros deflate to ~8 KB: cheap to build, and over the compression-ratio limit.
    "zip-bomb": (lambda: _zip({**_layout(), "Train/a/bomb.jpg": bytes(8 * 2**20)}), {}, "zip bomb"),
    # 64 members of exactly 1 MiB of zeros: none is over the per-member ratio check's size,
    # together they are ~1,000 times their ~64 KB (512 of them imported as 513 MB).
    "many-small-members-bomb": (
        lambda: _zip({**_layout(), **{f"Train/a/z{i}.jpg": bytes(2**20) for i in range(64)}}),
        {},
        "zip bomb: its 68 files unpack to 64.0 MB",
    ),
    "too-many-files": (lambda: _zip(_layout()), {"max_files": 3}, "more than the 3 files limit"),
    "too-many-bytes": (lambda: _zip(_layout()), {"max_bytes": 1000}, "over the 1000 bytes limit"),
    "nested-zip": (
        lambda: _zip({**_layout(), "Train/a/inner.zip": _zip(_layout())}),
        {},
        "nested archives",
    ),
    "no-split-folder": (lambda: _zip({"photos/a.jpg": image_bytes()}), {}, "not a dataset"),
    "no-class-folder": (lambda: _zip({"Train/a.jpg": image_bytes()}), {}, "not a dataset"),
    "no-decodable-image": (lambda: _zip({"Train/a/a.jpg": b"text"}), {}, "could be decoded"),
    "encrypted": (_encrypted, {}, "password-protected"),
    "not-a-zip": (lambda: b"<html>a login page saved as .zip</html>", {}, "not a readable zip"),
    "name-too-long": (
        lambda: _zip({**_layout(), f"Train/a/{'x' * 300}.jpg": image_bytes()}),
        {},
        "File name too long",
    ),
    "file-named-like-a-folder": (
        lambda: _zip({"Train/b": b"x", **_layout()}),
        {},
        "cannot be written as a file",
    ),
    # issue 29: a line break or CR in a name forges lines wherever the name is shown.
    "newline-in-a-name": (
        lambda: _zip({**_layout(), "Train/a/x\nforged line.jpg": image_bytes()}),
        {},
        "'Train/a/x\\nforged line.jpg'); rename it",
    ),
    "carriage-return-in-a-folder-name": (
        lambda: _zip({**_layout(), "Train/a\rb/x.jpg": image_bytes()}),
        {},
        "line break or another control character",
    ),
    # issue 29: files and folders count, not only bytes (4 files in 3 folders, 2 already there).
    "data-folder-file-budget": (
        lambda: _zip(_layout()),
        {"data_files": 8},
        "would bring the data folder",
    ),
}


def _snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A data folder holding one dataset, and a private temporary folder for uploads."""
    data = tmp_path / "work" / "data"
    (data / "existing" / "Train").mkdir(parents=True)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("SKINLAB_DATA_DIR", str(data))
    return {"root": tmp_path, "data": data, "temp": temp}


@pytest.mark.parametrize("via", ["path", "upload"])
@pytest.mark.parametrize("case", list(CASES))
def test_hostile_archive_is_refused_and_nothing_is_written(case, via, sandbox, monkeypatch):
    build, limits, words = CASES[case]
    archive = sandbox["root"] / "src" / f"{case}.zip"
    archive.parent.mkdir()
    archive.write_bytes(build())
    before = _snapshot(sandbox["root"])

    with pytest.raises(ArchiveError) as info:
        if via == "path":
            importer.import_dataset(archive, **limits)
        else:  # what the Explore page does with an uploaded file
            limited = functools.partial(importer.import_dataset, **limits)
            monkeypatch.setattr(uploads, "import_dataset", limited)
            uploads.import_upload(archive.name, archive.read_bytes())

    message = str(info.value)
    assert words in message
    assert f"{case}.zip" in message or "'Train/" in message  # names the archive or member
    assert message.endswith(".") and "\n" not in message
    assert not re.search(r"[.!?]\s+[A-Z]", message), message
    assert _snapshot(sandbox["root"]) == before  # no dataset, staging, escapee or upload copy
    assert not any(sandbox["temp"].iterdir())


def test_refused_archive_leaves_an_existing_dataset_of_that_name_alone(sandbox) -> None:
    archive = sandbox["root"] / "existing.zip"
    archive.write_bytes(_zip(_layout()))
    (sandbox["data"] / "existing" / "Train" / "keep.txt").write_text("mine")
    with pytest.raises(ArchiveError, match="already exists"):
        importer.import_dataset(archive)
    assert (sandbox["data"] / "existing" / "Train" / "keep.txt").read_text() == "mine"
    assert os.listdir(sandbox["data"]) == ["existing"]


@pytest.mark.parametrize("via", ["path", "upload"])
def test_repeated_imports_stop_at_the_data_folder_budget(via, sandbox, monkeypatch) -> None:
    archive = sandbox["root"] / "small.zip"
    archive.write_bytes(_zip(_layout()))
    budget = int(2.5 * sum(len(data) for data in _layout().values()))  # room for two copies
    limited = functools.partial(importer.import_dataset, data_budget=budget)
    monkeypatch.setattr(uploads, "import_dataset", limited)

    def bring(name: str) -> Path:
        if via == "path":
            return limited(archive, name=name)
        return uploads.import_upload(archive.name, archive.read_bytes(), name=name)

    bring("one"), bring("two")
    before = _snapshot(sandbox["root"])
    with pytest.raises(ArchiveError) as info:
        bring("three")
    assert "would bring the data folder" in str(info.value) and "budget" in str(info.value)
    assert _snapshot(sandbox["root"]) == before
    assert not any(sandbox["temp"].iterdir())


def test_import_keeps_a_free_space_margin(sandbox, monkeypatch) -> None:
    archive = sandbox["root"] / "small.zip"
    archive.write_bytes(_zip(_layout()))
    free = importer.FREE_SPACE_MARGIN  # the ~20 KB of files fit, the margin would not stay
    monkeypatch.setattr(
        importer.shutil, "disk_usage", lambda _: importer.shutil._ntuple_diskusage(free, 0, free)
    )
    with pytest.raises(ArchiveError, match="1.0 GB must stay free"):
        importer.import_dataset(archive)
    assert sorted(os.listdir(sandbox["data"])) == ["existing"]


def test_upload_name_with_a_null_byte_is_imported_under_a_clean_name(sandbox) -> None:
    root = uploads.import_upload("my\0set.zip", _zip(_layout()))
    assert root == sandbox["data"] / "myset"
    assert not any(sandbox["temp"].iterdir())


def test_empty_members_count_against_the_data_folders_file_budget(sandbox) -> None:
    # 2,000 empty members cost ~20 KB zipped and nothing in bytes, but 2,000 files.
    archive = sandbox["root"] / "empty.zip"
    archive.write_bytes(_zip({**_layout(), **{f"Train/a/e{i}.jpg": b"" for i in range(2000)}}))
    importer.import_dataset(archive, name="first", data_files=3000)
    with pytest.raises(ArchiveError, match=r"2,007 files and folders\) would bring the data"):
        importer.import_dataset(archive, name="second", data_files=3000)
    assert sorted(os.listdir(sandbox["data"])) == ["existing", "first"]
