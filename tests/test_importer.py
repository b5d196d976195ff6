"""Importing zips and folders into the data folder: safe, all-or-nothing, wrappers stripped."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import struct
import sys
import types
import zipfile
from pathlib import Path

import pytest
from helpers import SHARED_ISIC, image_bytes

from skinlab.core.classes import ISIC_CLASS_NAMES
from skinlab.core.errors import ArchiveError, DownloadError
from skinlab.data import importer
from skinlab.data.discovery import discover
from skinlab.data.importer import download_dataset, import_dataset, sanitize_name

KAGGLE_TOP = "Skin cancer ISIC The International Skin Imaging Collaboration"
CLASSES = ("melanoma", "nevus")


def _jpeg(seed: int = 0) -> bytes:
    return image_bytes(size=(8, 8), seed=seed)


def _layout(prefix: str = "") -> dict[str, bytes]:
    """Member name -> bytes of a tiny dataset with Train and Test, under ``prefix``."""
    files = {}
    for split in ("Train", "Test"):
        for i, label in enumerate(CLASSES):
            for n in range(2):
                files[f"{prefix}{split}/{label}/ISIC_{i}{n}.jpg"] = _jpeg(len(files))
    return files


def _zip(path: Path, members: dict[str, bytes], **kwargs) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, **kwargs) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _tree(folder: Path, members: dict[str, bytes]) -> Path:
    for name, data in members.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    (root / "demo").mkdir()
    return root


def _refused(source: Path, data_root: Path, match: str, **kwargs) -> ArchiveError:
    """Import ``source``, expect a refusal matching ``match``, and check nothing was written."""
    before = set(os.listdir(data_root))
    with pytest.raises(ArchiveError, match=match) as info:
        import_dataset(source, data_root=data_root, **kwargs)
    assert set(os.listdir(data_root)) == before
    return info.value


def test_kaggle_zip_imports_with_wrapper_folder_stripped(tmp_path, data_root):
    members = _layout(f"{KAGGLE_TOP}/")
    members["__MACOSX/._x.jpg"] = b"junk"
    members[f"{KAGGLE_TOP}/Train/.DS_Store"] = b"junk"
    archive = _zip(tmp_path / f"{KAGGLE_TOP}.zip", members)

    root = import_dataset(archive, data_root=data_root)

    assert root == data_root / "skin-cancer-isic-the-international-skin-imaging-collaboration"
    assert (root / "Train").is_dir() and (root / "Test").is_dir()
    dataset = discover(root)
    assert dataset.splits == ("Train", "Test")
    assert dataset.class_names == CLASSES
    assert len(dataset.images()) == 8
    assert not list(root.rglob(".*")) and not (root / "__MACOSX").exists()
    assert set(os.listdir(data_root)) == {"demo", root.name}


@pytest.mark.skipif(not SHARED_ISIC.exists(), reason="real ISIC images not available here")
def test_real_isic_train_split_zipped_kaggle_style_imports_all_images(tmp_path, data_root):
    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(SHARED_ISIC.rglob("*.jpg")):
            zf.write(file, f"{KAGGLE_TOP}/{file.relative_to(SHARED_ISIC).as_posix()}")
    dataset = discover(import_dataset(archive, name="isic", data_root=data_root))
    assert dataset.class_names == ISIC_CLASS_NAMES
    assert len(dataset.images("Train")) == 2241


def test_zip_without_wrapper_imports_under_given_name(tmp_path, data_root):
    archive = _zip(tmp_path / "archive.zip", _layout())
    root = import_dataset(archive, name="My ISIC 2024!", data_root=data_root)
    assert root == data_root / "my-isic-2024"
    assert discover(root).class_names == CLASSES


def test_data_root_defaults_to_skinlab_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SKINLAB_DATA_DIR", str(tmp_path / "elsewhere"))
    root = import_dataset(_zip(tmp_path / "isic.zip", _layout()))
    assert root == tmp_path / "elsewhere" / "isic"


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("../evil.jpg", "outside"),
        ("Train/../../evil.jpg", "outside"),
        ("/etc/evil.jpg", "absolute path"),
        ("C:\\Windows\\evil.jpg", "absolute path"),
    ],
)
def test_member_escaping_the_archive_is_refused(tmp_path, data_root, member, reason):
    archive = _zip(tmp_path / "evil.zip", {**_layout(), member: _jpeg()})
    error = _refused(archive, data_root, reason)
    assert "evil.zip" in str(error)


def test_symlink_member_is_refused(tmp_path, data_root):
    archive = _zip(tmp_path / "link.zip", _layout())
    with zipfile.ZipFile(archive, "a") as zf:
        info = zipfile.ZipInfo("Train/nevus/link.jpg")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    _refused(archive, data_root, "symbolic link")


def test_password_protected_archive_is_refused(tmp_path, data_root):
    archive = _zip(tmp_path / "locked.zip", _layout())
    data = bytearray(archive.read_bytes())
    data[data.find(b"PK\x01\x02") + 8] |= 0x1  # the "encrypted" flag of the first member
    archive.write_bytes(bytes(data))
    _refused(archive, data_root, "password-protected")


def test_highly_compressed_member_is_refused_as_zip_bomb(tmp_path, data_root):
    archive = _zip(tmp_path / "bomb.zip", {**_layout(), "Train/nevus/bomb.jpg": bytes(8 * 2**20)})
    _refused(archive, data_root, "zip bomb")


def test_archive_over_size_limit_is_refused(tmp_path, data_root):
    archive = _zip(tmp_path / "big.zip", {**_layout(), "Train/nevus/big.jpg": bytes(100_000)})
    _refused(archive, data_root, "over the 97.7 KB limit", max_bytes=100_000)


def test_member_whose_header_understates_its_size_is_refused(tmp_path, data_root):
    member = "Train/nevus/liar.jpg"
    archive = _zip(tmp_path / "liar.zip", {**_layout(), member: bytes(500_000)})
    _set_declared_size(archive, member, 10)
    with zipfile.ZipFile(archive) as zf:
        assert zf.getinfo(member).file_size == 10
    _refused(archive, data_root, "corrupt", max_bytes=50_000)


def _set_declared_size(path: Path, member: str, size: int) -> None:
    """Rewrite the uncompressed size in both headers of ``member``, as a forged zip would."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        struct.pack_into("<I", data, zf.getinfo(member).header_offset + 22, size)
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        name_length = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46 : pos + 46 + name_length] == member.encode():
            struct.pack_into("<I", data, pos + 24, size)
        pos = data.find(b"PK\x01\x02", pos + 4)
    path.write_bytes(bytes(data))


def test_archive_with_too_many_files_is_refused(tmp_path, data_root):
    archive = _zip(tmp_path / "many.zip", _layout())
    _refused(archive, data_root, "more than the 3 files limit", max_files=3)


def test_nested_archive_is_refused(tmp_path, data_root):
    inner = _zip(tmp_path / "inner.zip", _layout()).read_bytes()
    archive = _zip(tmp_path / "outer.zip", {**_layout(), "Train/nevus/inner.zip": inner})
    _refused(archive, data_root, "nested archives")


@pytest.mark.parametrize(
    "members",
    [
        {"photos/a.jpg": _jpeg(), "photos/b.jpg": _jpeg()},
        {"Train/a.jpg": _jpeg()},
        {"a/b/c/Train/nevus/a.jpg": _jpeg()},
    ],
    ids=["no-split-folder", "no-class-folder", "too-deep"],
)
def test_archive_without_dataset_layout_is_refused(tmp_path, data_root, members):
    _refused(_zip(tmp_path / "photos.zip", members), data_root, "not a dataset")


def test_archive_whose_images_do_not_decode_is_refused(tmp_path, data_root):
    archive = _zip(tmp_path / "broken.zip", {"Train/nevus/a.jpg": b"not a jpeg"})
    _refused(archive, data_root, "could be decoded")


def test_file_that_is_not_a_zip_is_refused(tmp_path, data_root):
    fake = tmp_path / "dataset.zip"
    fake.write_bytes(b"this is not a zip file" * 10)
    _refused(fake, data_root, "not a readable zip")


def test_truncated_zip_is_refused(tmp_path, data_root):
    archive = _zip(tmp_path / "cut.zip", _layout())
    archive.write_bytes(archive.read_bytes()[:300])
    _refused(archive, data_root, "not a readable zip")


def test_missing_source_is_refused(tmp_path, data_root):
    _refused(tmp_path / "nowhere.zip", data_root, "does not exist")


def test_existing_name_is_refused_with_a_free_suggestion(tmp_path, data_root):
    (data_root / "demo-2").mkdir()
    archive = _zip(tmp_path / "archive.zip", _layout())
    error = _refused(archive, data_root, "already exists", name="demo")
    assert "'demo-3'" in str(error)
    assert not list((data_root / "demo").iterdir())


def test_import_refused_when_disk_has_no_room(tmp_path, data_root, monkeypatch):
    archive = _zip(tmp_path / "archive.zip", _layout())
    monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(1, 1, 10))
    _refused(archive, data_root, "only 10 bytes is free")


def test_disk_full_during_extraction_is_refused_and_cleaned_up(tmp_path, data_root, monkeypatch):
    def full(src, dst, budget):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(importer, "_copy_limited", full)
    archive = _zip(tmp_path / "archive.zip", _layout())
    _refused(archive, data_root, "No space left on device.*free up disk space")


def test_folder_imports_without_following_symlinks(tmp_path, data_root):
    source = _tree(tmp_path / "download" / "wrapper", _layout())
    outside = _tree(tmp_path / "outside", {"secret.jpg": _jpeg(), "leak/a.jpg": _jpeg()})
    (source / "Train" / "nevus" / "linked.jpg").symlink_to(outside / "secret.jpg")
    (source / "Train" / "leak").symlink_to(outside / "leak", target_is_directory=True)
    (source / "Test" / ".hidden.jpg").write_bytes(_jpeg())

    root = import_dataset(tmp_path / "download", name="isic", data_root=data_root)

    assert root == data_root / "isic"
    assert not [p for p in root.rglob("*") if p.is_symlink()]
    assert not (root / "Train" / "nevus" / "linked.jpg").exists()
    assert not (root / "Train" / "leak").exists()
    assert not (root / "Test" / ".hidden.jpg").exists()
    assert len(discover(root).images()) == 8
    assert (source / "Train" / "nevus" / "ISIC_10.jpg").exists(), "the source is left as it was"


def test_folder_whose_root_is_a_symlink_outside_is_refused(tmp_path, data_root):
    real = _tree(tmp_path / "real", _layout())
    (tmp_path / "download").mkdir()
    (tmp_path / "download" / "wrapper").symlink_to(real, target_is_directory=True)
    _refused(tmp_path / "download", data_root, "symbolic link leading outside")


def test_folder_without_layout_is_refused(tmp_path, data_root):
    folder = _tree(tmp_path / "photos", {"a.jpg": _jpeg()})
    _refused(folder, data_root, "No Train or Test folder")


def test_progress_fractions_increase_and_end_at_one(tmp_path, data_root):
    calls: list[tuple[float, str]] = []
    archive = _zip(tmp_path / "archive.zip", _layout())
    import_dataset(archive, data_root=data_root, progress=lambda f, m: calls.append((f, m)))
    fractions = [f for f, _ in calls]
    assert len(fractions) >= 3
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(a < b for a, b in zip(fractions, fractions[1:], strict=False))
    assert all(isinstance(m, str) and m for _, m in calls)


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        (KAGGLE_TOP, "skin-cancer-isic-the-international-skin-imaging-collaboration"),
        ("Mélanome 2024!", "melanome-2024"),
        ("a/../b", "a-b"),
        ("--isic_v2--", "isic_v2"),
        ("x" * 100, "x" * 64),
    ],
)
def test_sanitize_name_makes_safe_folder_names(raw, safe):
    assert sanitize_name(raw) == safe


@pytest.mark.parametrize(
    ("raw", "reason"), [(".hidden", "dot"), ("!!!", "no letters"), ("", "no letters")]
)
def test_sanitize_name_refuses_hidden_or_empty_names(raw, reason):
    with pytest.raises(ArchiveError, match=reason):
        sanitize_name(raw)


def _fake_kagglehub(monkeypatch, download) -> list[str]:
    calls: list[str] = []

    def dataset_download(handle: str) -> str:
        calls.append(handle)
        return download()

    monkeypatch.setitem(
        sys.modules, "kagglehub", types.SimpleNamespace(dataset_download=dataset_download)
    )
    return calls


def test_download_offline_says_to_download_by_hand(data_root, monkeypatch):
    def offline():
        raise ConnectionError("Failed to resolve 'www.kaggle.com'")

    _fake_kagglehub(monkeypatch, offline)
    before = set(os.listdir(data_root))
    with pytest.raises(DownloadError) as info:
        download_dataset(data_root=data_root)
    message = str(info.value)
    assert "https://www.kaggle.com/datasets/nodoubttome/skin-cancer9-classesisic" in message
    assert "python -m skinlab data import <zip or folder>" in message
    assert set(os.listdir(data_root)) == before


def test_download_imports_the_downloaded_folder(tmp_path, data_root, monkeypatch):
    cache = _tree(tmp_path / "cache" / "versions" / "1", _layout(f"{KAGGLE_TOP}/"))
    calls = _fake_kagglehub(monkeypatch, lambda: str(cache))
    root = download_dataset(data_root=data_root)
    assert calls == ["nodoubttome/skin-cancer9-classesisic"]
    assert root == data_root / "isic"
    assert discover(root).splits == ("Train", "Test")


def test_download_refuses_a_taken_name_before_downloading(data_root, monkeypatch):
    calls = _fake_kagglehub(monkeypatch, lambda: pytest.fail("downloaded anyway"))
    with pytest.raises(ArchiveError, match="already exists"):
        download_dataset(name="demo", data_root=data_root)
    assert calls == []


def test_ham10000_downloads_in_its_kaggle_layout_and_imports_as_class_folders(
    tmp_path, data_root, monkeypatch
):
    from skinlab.data.importer import KAGGLE_DATASETS

    cache = tmp_path / "cache" / "versions" / "2"
    rows = [("HAM_0000001", "ISIC_0024306", "nv"), ("HAM_0000002", "ISIC_0024307", "mel")]
    lines = ["lesion_id,image_id,dx,dx_type,age,sex,localization\n"]
    for n, (lesion, image, dx) in enumerate(rows):
        part = cache / f"HAM10000_images_part_{n + 1}"
        part.mkdir(parents=True)
        (part / f"{image}.jpg").write_bytes(image_bytes(seed=n))
        lines.append(f"{lesion},{image},{dx},histo,50.0,male,back\n")
    (cache / "HAM10000_metadata.csv").write_text("".join(lines))
    calls = _fake_kagglehub(monkeypatch, lambda: str(cache))
    root = download_dataset("ham10000", data_root=data_root)
    assert calls == [KAGGLE_DATASETS["ham10000"][0]]
    assert root == data_root / "ham10000"
    assert sorted(discover(root).images("Train")["label"]) == ["melanoma", "nevus"]
    with pytest.raises(ValueError, match="isic, ham10000"):
        download_dataset("mnist", data_root=data_root)
