"""Importing a dataset (a zip archive or a folder) into the data folder, safely.

Contract:

* The source is a ``.zip`` (such as Kaggle's "Skin cancer ISIC The International Skin
  Imaging Collaboration") or a folder in the ``<root>/<Split>/<class>/<image>`` layout,
  with the root up to two wrapper folders down (the rule of
  :func:`~skinlab.data.discovery.resolve_root`).
* A folder in HAM10000's or an ISIC challenge's layout (images beside their diagnosis CSV,
  no split folders) is converted: ``Train/<class>/<image id>.jpg`` and the CSV at the top, so
  lesion ids stay known (:mod:`skinlab.data.label_import`); rows that map to no class are left
  out and counted in the last progress message.
* ``data_root/<name>`` becomes the dataset root itself: wrapper folders are stripped,
  so it holds ``Train/`` and ``Test/`` directly.
* Hidden files, ``__MACOSX`` and ``Thumbs.db`` are skipped; so are symbolic links and
  other non-regular files of a folder (never followed).
* All or nothing: files go to ``data_root/.importing-<random>/`` and are renamed into
  place only once the layout is checked and one image decodes; that folder is always
  removed. Every refusal is an :class:`~skinlab.core.errors.ArchiveError` with one sentence.
* Refused: members escaping the archive (``../``, absolute paths, drive letters),
  symbolic-link members, nested archives, encrypted members, names holding a line break or
  another control character, more than ``max_files`` files and folders or ``max_bytes``
  bytes, a member *or the whole archive* compressed over :data:`MAX_COMPRESSION_RATIO` times
  (zip bombs: many small members add up), a data folder that would grow past ``data_budget``
  bytes or ``data_files`` files and folders (every dataset in it counted, so repeated
  imports cannot fill the disk, nor its inodes with empty files), a disk that would keep
  less than :data:`FREE_SPACE_MARGIN` free, no dataset layout, member names the file system
  cannot hold (too long, a file named like a folder), a source file that cannot be read
  (named in the message), and a name already taken (never overwritten nor silently renamed;
  the message suggests a free ``<name>-2``). Sizes are checked on the headers *and* while
  writing: headers can lie.

Example::

    root = import_dataset("~/Downloads/archive.zip", name="isic")  # data/isic/Train/...

Why one module: an import is one transaction (check the archive's members and sizes, unpack
into a hidden folder, find the dataset root, rename into place), and its safety checks only
make sense read together.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, BinaryIO

from skinlab.core.errors import ArchiveError, DatasetLayoutError, DownloadError, InvalidImageError
from skinlab.core.paths import data_dir
from skinlab.data.discovery import (
    canonical_split,
    is_hidden,  # one rule for what import and discovery skip
    resolve_root,
)
from skinlab.data.images import IMAGE_SUFFIXES, probe_image
from skinlab.data.label_import import LabelledFolder, plan_labelled_folder

#: Largest total uncompressed size imported; generous for dermoscopy datasets.
DEFAULT_MAX_BYTES = 20 * 2**30
#: Most files imported (the ISIC zip holds 2,357 images).
DEFAULT_MAX_FILES = 200_000
#: Largest total size of everything in the data folder once an import is done.
DEFAULT_DATA_BUDGET = 40 * 2**30
#: Most files and folders in the data folder once an import is done (every dataset counted):
#: bytes alone let a 5 MB zip of 50,000 empty members add 100,000 files and folders.
DEFAULT_DATA_FILES = 2 * DEFAULT_MAX_FILES
#: Free space an import must leave on the data folder's disk.
FREE_SPACE_MARGIN = 2**30
#: Members above 1 MiB, or archives above 1 MiB in all, that compress more than this are
#: zip bombs (JPEGs and PNGs barely compress; even uncompressed BMPs stay far below).
MAX_COMPRESSION_RATIO = 200
_RATIO_MIN_BYTES = 2**20
_ARCHIVE_SUFFIXES = frozenset({".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar"})
_MAX_NAME_LENGTH = 64
#: Characters no member name may hold: a line break or CR would forge lines in every list,
#: log and CSV that shows the name.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BLOCK = 4096  # smallest space a file takes on disk, for the free-space estimate
_CHUNK = 2**20
#: Errors that mean a member's *name* cannot be a file here (too long, a file where a
#: folder must be, ...), as opposed to the disk being full or read-only.
_BAD_NAME_ERRNOS = frozenset(
    {errno.ENAMETOOLONG, errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.EILSEQ, errno.EINVAL}
)

#: The datasets ``data download`` fetches with kagglehub: source name -> (Kaggle handle, title).
#: HAM10000's Kaggle copy holds HAM10000_images_part_1/ and _part_2/ beside its metadata CSV,
#: which the import converts to Train/<class>/ (see skinlab.data.label_import).
KAGGLE_DATASETS: dict[str, tuple[str, str]] = {
    "isic": ("nodoubttome/skin-cancer9-classesisic", "the ISIC 9-class dataset"),
    "ham10000": ("kmader/skin-cancer-mnist-ham10000", "HAM10000 (CC BY-NC-SA 4.0)"),
}
KAGGLE_DATASET = KAGGLE_DATASETS["isic"][0]

ProgressCallback = Callable[[float, str], None]


@dataclass(frozen=True)
class _Limits:
    """What one import may write: see :func:`import_dataset`'s arguments."""

    max_bytes: int
    max_files: int
    data_budget: int
    data_files: int


@dataclass(frozen=True)
class _Entry:
    """One file to import: where it goes (relative to the dataset) and how to read it."""

    parts: tuple[str, ...]
    size: int
    open: Callable[[], IO[bytes]]

    @property
    def name(self) -> str:
        return "/".join(self.parts)


class _Progress:
    """Forwards strictly increasing fractions, at most one per percent, to ``callback``."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._last = -1.0

    def __call__(self, fraction: float, message: str) -> None:
        fraction = min(fraction, 1.0)
        if self._callback is None or fraction <= self._last:
            return
        if fraction >= self._last + 0.01 or fraction == 1.0:
            self._last = fraction
            self._callback(fraction, message)


def sanitize_name(name: str) -> str:
    """Turn ``name`` into a safe folder name: lower case ``[a-z0-9_-]``, at most 64 characters.

    Accents are dropped, every other run of characters becomes ``-``, and leading or
    trailing ``-``/``_`` are stripped:
    ``"Skin cancer ISIC The International Skin Imaging Collaboration"`` ->
    ``"skin-cancer-isic-the-international-skin-imaging-collaboration"``.

    Raises:
        ArchiveError: the name starts with a dot or has nothing left once made safe.
    """
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().strip()
    if text.startswith("."):
        raise ArchiveError(
            f"The name '{name}' starts with a dot, which would hide the dataset; choose a name without one."
        )
    safe = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")[:_MAX_NAME_LENGTH].strip("-_")
    if not safe:
        raise ArchiveError(
            f"The name '{name}' has no letters or digits to make a folder name from; choose a name such as 'isic'."
        )
    return safe


def import_dataset(
    source: str | Path,
    *,
    name: str | None = None,
    data_root: Path | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
    data_budget: int = DEFAULT_DATA_BUDGET,
    data_files: int = DEFAULT_DATA_FILES,
    progress: ProgressCallback | None = None,
) -> Path:
    """Import a zip archive or a dataset folder into ``data_root/<name>``.

    Args:
        source: a ``.zip`` file or a folder in the dataset layout (see the module doc).
        name: the new folder's name, passed through :func:`sanitize_name`; default the
            zip's stem or the folder's name.
        data_root: where datasets live (default :func:`skinlab.core.paths.data_dir`); created
            when missing.
        max_bytes, max_files: refuse sources that unpack to more bytes, or to more files
            and folders.
        data_budget, data_files: refuse a source that would bring everything in
            ``data_root`` (the datasets already there included) over this many bytes, or
            over this many files and folders.
        progress: called with a fraction (strictly increasing, ending at 1.0) and a
            short message.

    Returns:
        The new dataset root, which directly holds the split folders.

    Raises:
        ArchiveError: the source is missing, unsafe, too big or not a dataset, the disk
            is full, or the name is taken; nothing is left in ``data_root``.
    """
    source = Path(source).expanduser()
    label = source.name or str(source)
    default_name = source.resolve().name if source.is_dir() else source.stem
    target = _free_target(
        data_root or data_dir(), sanitize_name(default_name if name is None else name)
    )
    report = _Progress(progress)
    report(0.0, f"Checking {label}")
    limits = _Limits(max_bytes, max_files, data_budget, data_files)
    if source.is_dir():
        entries, note = _folder_source(source, label)
        return _install(entries, label, target, limits, report, note=note)
    if not source.is_file():
        raise ArchiveError(f"{source} does not exist; check the path to the zip file or folder.")
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ArchiveError(
            f"{label} is not a readable zip archive; re-download it, or unpack it yourself "
            "and import the folder."
        ) from exc
    with archive:
        entries = _zip_entries(archive, label)
        packed = sum(info.compress_size for info in archive.infolist())
        return _install(entries, label, target, limits, report, packed=packed)


def download_dataset(
    source: str = "isic",
    *,
    name: str | None = None,
    data_root: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download dataset ``source`` (a key of :data:`KAGGLE_DATASETS`) with ``kagglehub`` and
    import it as ``name`` (default: ``source``).

    Returns:
        The new dataset root, as :func:`import_dataset`.

    Raises:
        ValueError: an unknown ``source``.
        DownloadError: kagglehub is missing, offline, lacks credentials or fails otherwise.
        ArchiveError: as :func:`import_dataset` (a taken name is refused before downloading).
    """
    if source not in KAGGLE_DATASETS:
        raise ValueError(f"Unknown dataset '{source}'; choose one of {', '.join(KAGGLE_DATASETS)}.")
    handle, title = KAGGLE_DATASETS[source]
    name = name or source
    _free_target(data_root or data_dir(), sanitize_name(name))
    report = _Progress(progress)
    report(0.0, f"Downloading {title} from Kaggle")
    try:
        import kagglehub

        folder = kagglehub.dataset_download(handle)
    except Exception as exc:  # noqa: BLE001 - offline, no credentials, API change: one remedy
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise DownloadError(
            f"Could not download {title} from Kaggle ({reason}); download the zip by hand "
            f"from https://www.kaggle.com/datasets/{handle} and run "
            "`python -m skinlab data import <zip or folder>`."
        ) from exc
    return import_dataset(folder, name=name, data_root=data_root, progress=report)


def _free_target(data_root: Path, name: str) -> Path:
    target = Path(data_root).expanduser() / name
    if target.exists() or target.is_symlink():
        n = 2
        while (target.parent / f"{name}-{n}").exists():
            n += 1
        raise ArchiveError(
            f"A dataset named '{name}' already exists in {target.parent}; choose another name "
            f"(for example '{name}-{n}') or delete the old folder first."
        )
    return target


def _safe_parts(raw: str, label: str) -> tuple[str, ...] | None:
    """Path parts of an archive member; ``None`` for hidden members; raises when unsafe."""
    path = raw.replace("\\", "/")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise ArchiveError(
            f"{label} is unsafe: the member '{raw}' has an absolute path; nothing was imported."
        )
    parts = tuple(p for p in path.split("/") if p not in ("", "."))
    if ".." in parts:
        raise ArchiveError(
            f"{label} is unsafe: the member '{raw}' points outside the archive folder (../); "
            "nothing was imported."
        )
    return None if not parts or any(is_hidden(p) for p in parts) else parts


def _zip_entries(archive: zipfile.ZipFile, label: str) -> list[_Entry]:
    entries: list[_Entry] = []
    seen: set[tuple[str, ...]] = set()
    for info in archive.infolist():
        parts = _safe_parts(info.filename, label)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ArchiveError(
                f"{label} is unsafe: the member '{info.filename}' is a symbolic link, which could "
                "point outside the data folder; nothing was imported."
            )
        if parts is None or info.is_dir():
            continue
        if info.flag_bits & 0x1:
            raise ArchiveError(
                f"{label} is password-protected ('{info.filename}'); unpack it yourself and import the folder."
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_MIN_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise ArchiveError(
                f"{label} looks like a zip bomb: '{info.filename}' is compressed {ratio:,.0f} "
                f"times (over {MAX_COMPRESSION_RATIO}); nothing was imported."
            )
        if parts in seen:
            raise ArchiveError(
                f"{label} lists '{info.filename}' twice; re-create the archive without duplicates."
            )
        seen.add(parts)
        entries.append(_Entry(parts, info.file_size, partial(archive.open, info)))
    return entries


def _folder_entries(source: Path) -> list[_Entry]:
    try:
        root = resolve_root(source)
    except DatasetLayoutError as exc:
        raise ArchiveError(str(exc)) from exc
    if not root.resolve().is_relative_to(source.resolve()):
        raise ArchiveError(
            f"{root} is a symbolic link leading outside {source}; import the folder it points to."
        )
    entries: list[_Entry] = []
    # followlinks=False: symlinked folders are listed in dirnames but never entered.
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        for filename in sorted(filenames):
            path = Path(dirpath, filename)
            if is_hidden(filename) or path.is_symlink() or not path.is_file():
                continue  # symbolic links, pipes and devices are never followed nor read
            size = path.stat().st_size
            entries.append(
                _Entry(path.relative_to(root).parts, size, partial(_open_nofollow, path))
            )
    return entries


def _folder_source(source: Path, label: str) -> tuple[list[_Entry], str]:
    """The files of a dataset folder, or those of a HAM10000 / ISIC challenge folder laid out
    as a dataset, with what the conversion left out for the last progress message."""
    try:
        resolve_root(source)
    except DatasetLayoutError:
        try:
            plan = plan_labelled_folder(source)
        except (DatasetLayoutError, OSError) as exc:
            raise ArchiveError(str(exc)) from exc
        if plan is not None:
            return _labelled_entries(plan, label), f"; {plan.summary()}"
    return _folder_entries(source), ""


def _labelled_entries(plan: LabelledFolder, label: str) -> list[_Entry]:
    if not plan.files:
        raise ArchiveError(
            f"{label}'s {plan.csv.name} names no image of a class skinlab knows that is in the "
            f"folder ({plan.summary()}); put the images beside the CSV."
        )
    files = [*plan.files, ((plan.csv.name,), plan.csv)]
    return [
        _Entry(parts, path.stat().st_size, partial(_open_nofollow, path)) for parts, path in files
    ]


def _open_nofollow(path: Path) -> BinaryIO:
    """Open a listed file, refusing it if it was swapped for a symbolic link since."""
    return os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")


def _check(entries: list[_Entry], label: str, limits: _Limits, packed: int | None) -> int:
    """Refuse nested archives, sources over the limits or without a layout; return the size.

    ``packed`` is a zip's compressed size (``None`` for a folder)."""
    for entry in entries:
        if Path(entry.parts[-1]).suffix.lower() in _ARCHIVE_SUFFIXES:
            raise ArchiveError(
                f"{label} holds another archive ('{entry.name}'), and nested archives are refused; "
                "unpack it and import the folder."
            )
    for entry in entries:
        if any(_CONTROL.search(part) for part in entry.parts):
            shown = entry.name.encode("unicode_escape").decode("ascii")[:80]
            raise ArchiveError(
                f"{label} holds a file whose name has a line break or another control "
                f"character ('{shown}'); rename it and import again."
            )
    if (count := _count(entries)) > limits.max_files:
        raise ArchiveError(
            f"{label} holds {count:,} files and folders, more than the {limits.max_files:,} "
            "files limit; import a smaller dataset."
        )
    total = sum(entry.size for entry in entries)
    if packed is not None and total > _ratio_limit(packed):
        raise ArchiveError(
            f"{label} looks like a zip bomb: its {len(entries):,} files unpack to "
            f"{_human(total)}, {total / max(packed, 1):,.0f} times its compressed size (over "
            f"{MAX_COMPRESSION_RATIO}); nothing was imported."
        )
    if total > limits.max_bytes:
        raise ArchiveError(
            f"{label} would unpack to {_human(total)}, over the {_human(limits.max_bytes)} "
            "limit; import a smaller dataset."
        )
    if not any(_in_layout(entry.parts) for entry in entries):
        raise ArchiveError(
            f"{label} is not a dataset: no Train or Test folder holding class folders of images "
            "was found within two folders of its top; expected <root>/Train/<class name>/*.jpg."
        )
    return total


def _ratio_limit(packed: int) -> int:
    """Most bytes a zip of ``packed`` compressed bytes may unpack to."""
    return max(packed * MAX_COMPRESSION_RATIO, _RATIO_MIN_BYTES)


def _count(entries: list[_Entry]) -> int:
    """Files and folders ``entries`` create: an empty file costs an inode all the same."""
    folders = {entry.parts[:i] for entry in entries for i in range(1, len(entry.parts))}
    return len(entries) + len(folders)


def _folder_size(folder: Path) -> tuple[int, int]:
    """Bytes of the regular files under ``folder`` (links not followed) and how many files
    and folders it holds, staging folders of imports still running included, so two
    imports at once count each other."""
    total = count = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        count += len(dirnames) + len(filenames)
        for filename in filenames:
            try:
                info = os.lstat(os.path.join(dirpath, filename))
            except OSError:
                continue  # removed meanwhile
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total, count


def _write_limit(
    total: int, label: str, data_root: Path, limits: _Limits, entries: list[_Entry]
) -> int:
    """Refuse an import the data folder's budgets or disk cannot take; return the bytes the
    import may write (its headers are checked again against this while writing)."""
    used, files = _folder_size(data_root)
    if files + (count := _count(entries)) > limits.data_files:
        raise ArchiveError(
            f"{label} ({count:,} files and folders) would bring the data folder {data_root} to "
            f"{files + count:,} files and folders, over its {limits.data_files:,} budget; "
            "delete datasets you no longer need, or import a smaller one."
        )
    n_files = len(entries)
    if used + total > limits.data_budget:
        raise ArchiveError(
            f"{label} ({_human(total)}) would bring the data folder {data_root} to "
            f"{_human(used + total)}, over its {_human(limits.data_budget)} budget; delete "
            "datasets you no longer need, or import a smaller one."
        )
    needed = total + _BLOCK * n_files
    free = shutil.disk_usage(data_root).free
    if needed + FREE_SPACE_MARGIN > free:
        raise ArchiveError(
            f"{label} needs about {_human(needed)} and {_human(FREE_SPACE_MARGIN)} must stay "
            f"free, but only {_human(free)} is free in {data_root}; free up space or point "
            "SKINLAB_DATA_DIR at a bigger disk."
        )
    return min(limits.max_bytes, limits.data_budget - used)


def _in_layout(parts: tuple[str, ...]) -> bool:
    """True for ``[wrapper/[wrapper/]]<Split>/<class>/.../<image>``."""
    if Path(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
        return False
    return any(len(parts) >= i + 3 and canonical_split(parts[i]) for i in range(3))


def _install(
    entries: list[_Entry],
    label: str,
    target: Path,
    limits: _Limits,
    report: _Progress,
    *,
    packed: int | None = None,
    note: str = "",
) -> Path:
    total = _check(entries, label, limits, packed)
    data_root = target.parent
    data_root.mkdir(parents=True, exist_ok=True)
    limit = _write_limit(total, label, data_root, limits, entries)
    if packed is not None:
        limit = min(limit, _ratio_limit(packed))
    needed = total + _BLOCK * len(entries)
    temp = Path(tempfile.mkdtemp(prefix=".importing-", dir=data_root))
    try:
        staging = temp / "dataset"
        _extract(entries, staging, label, limit, report)
        report(0.96, "Checking the dataset layout")
        root = _validated_root(staging, label)
        os.rename(root, target)
    except OSError as exc:
        raise ArchiveError(
            f"Importing {label} failed while writing to {data_root} ({exc.strerror or exc}); "
            f"free up disk space (it needs about {_human(needed)}) or check the folder's permissions."
        ) from exc
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    report(1.0, f"Imported {label} as '{target.name}'{note}")
    return target


def _extract(
    entries: list[_Entry], staging: Path, label: str, max_bytes: int, report: _Progress
) -> None:
    units = sum(entry.size for entry in entries) + len(entries)
    written = done = 0
    for count, entry in enumerate(entries, 1):
        dest = staging.joinpath(*entry.parts)
        try:
            with _open_source(entry, label) as src, _create(dest, entry, label) as dst:
                size = _copy_limited(src, dst, max_bytes - written)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise ArchiveError(
                f"{label} is corrupt or unreadable at '{entry.name}' ({exc}); re-download it."
            ) from exc
        written += size
        # Headers can lie; the limit holds on the bytes actually written.
        if written > max_bytes:
            raise ArchiveError(
                f"{label} unpacks to more than the {_human(max_bytes)} limit (its headers "
                "understate the size, as zip bombs do); nothing was imported."
            )
        done += size + 1
        report(0.95 * min(done / units, 1.0), f"Importing file {count:,} of {len(entries):,}")


def _open_source(entry: _Entry, label: str) -> IO[bytes]:
    """Open a member or file to import; a file that cannot be read is named, not a crash."""
    try:
        return entry.open()
    except OSError as exc:
        raise ArchiveError(
            f"'{entry.name}' in {label} could not be read ({exc.strerror or exc}); fix its "
            "permissions or remove it, then import again."
        ) from exc


def _create(dest: Path, entry: _Entry, label: str) -> BinaryIO:
    """Create ``dest``; a member name the file system refuses is the archive's fault."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return open(dest, "xb")
    except OSError as exc:
        if exc.errno not in _BAD_NAME_ERRNOS:
            raise  # disk full, read-only folder: _install says so
        raise ArchiveError(
            f"{label} holds a member that cannot be written as a file ('{entry.name[:80]}': "
            f"{exc.strerror}); re-create the archive with shorter names and no file named "
            "like a folder."
        ) from exc


def _copy_limited(src: IO[bytes], dst: BinaryIO, budget: int) -> int:
    """Copy ``src`` to ``dst``; stop once more than ``budget`` bytes went; return bytes copied."""
    copied = 0
    while copied <= budget and (chunk := src.read(min(_CHUNK, budget - copied + 1))):
        dst.write(chunk)
        copied += len(chunk)
    return copied


def _validated_root(staging: Path, label: str) -> Path:
    try:
        root = resolve_root(staging)
    except DatasetLayoutError as exc:
        raise ArchiveError(
            f"{label} does not hold exactly one dataset folder with Train/Test split folders; "
            "import the dataset folder itself."
        ) from exc
    for split_dir in root.iterdir():
        if not (split_dir.is_dir() and canonical_split(split_dir.name)):
            continue
        for file in split_dir.rglob("*"):
            if file.parent == split_dir or file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                probe_image(file, verify=True)
                return root
            except InvalidImageError:
                continue
    raise ArchiveError(f"None of the images in {label} could be decoded; re-download it.")


def _human(n: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
