"""Dataset discovery: a dataset folder becomes one tidy table of images.

A dataset is a root folder holding split folders (``Train``, ``Test``, optionally
``Val``; matched case-insensitively, ``valid``/``validation`` mean ``Val``), each holding
one folder per class. A root that holds the splits one or two levels down (the Kaggle
zip's ``Skin cancer ISIC The International Skin Imaging Collaboration/Train/...``) is
followed automatically.

:func:`discover` never crashes on odd content: hidden files, non-image files, files
outside class folders and unknown or misspelled class folders are skipped or reported in
:attr:`Dataset.notes`, and unreadable images stay in the table with their ``error``.

Example::

    ds = discover("data/isic")
    ds.table.groupby(["split", "label"]).size()
    ds.images("Train")            # readable Train rows only

Why one module: walking a dataset folder, sniffing and hashing each file and the table they
make are one pass over the disk.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from skinlab.core.classes import closest_isic_class, is_isic_class, normalise_class_name
from skinlab.core.confine import walk_roots, within
from skinlab.core.errors import DatasetLayoutError, InvalidImageError
from skinlab.data.images import IMAGE_SUFFIXES, open_image_file, probe_file

#: Canonical split names, in display order.
SPLITS: tuple[str, ...] = ("Train", "Val", "Test")

_SPLIT_ALIASES = {
    "train": "Train",
    "training": "Train",
    "val": "Val",
    "valid": "Val",
    "validation": "Val",
    "test": "Test",
    "testing": "Test",
}

#: Columns of :attr:`Dataset.table`, in order.
COLUMNS: tuple[str, ...] = (
    "path",
    "relpath",
    "split",
    "label",
    "file_size",
    "width",
    "height",
    "mode",
    "format",
    "content_hash",
    "error",
)

_MAX_SEARCH_DEPTH = 2
_HASH_CHUNK = 2**20
#: Why a wrapper, split, class folder or file was skipped for leading outside.
_OUTSIDE = (
    "a symbolic link leading outside the folders this app may read (and outside the "
    "dataset); skipped, never read"
)


@dataclass(frozen=True)
class Note:
    """Something discovery skipped or wants the user to know, with the reason."""

    path: str
    reason: str


@dataclass
class Dataset:
    """A discovered dataset.

    Attributes:
        root: the folder that directly holds the split folders.
        table: one row per image file (columns :data:`COLUMNS`); ``error`` is ``None``
            for readable images and a one-sentence reason otherwise.
        class_names: every class seen in any split, sorted (Keras' order).
        notes: files and folders skipped or suspicious, each with a reason.
    """

    root: Path
    table: pd.DataFrame
    class_names: tuple[str, ...]
    notes: list[Note] = field(default_factory=list)

    @property
    def splits(self) -> tuple[str, ...]:
        """Splits holding at least one image file, in :data:`SPLITS` order."""
        present = set(self.table["split"])
        return tuple(s for s in SPLITS if s in present)

    def images(self, split: str | None = None) -> pd.DataFrame:
        """Readable images, optionally of one split."""
        ok = self.table[self.table["error"].isna()]
        return ok if split is None else ok[ok["split"] == split]

    @property
    def unreadable(self) -> pd.DataFrame:
        """Rows whose image could not be decoded, with the reason in ``error``."""
        return self.table[self.table["error"].notna()]

    def counts(self) -> pd.DataFrame:
        """Readable images per class (rows, in :attr:`class_names` order) and split (columns)."""
        ok = self.images()
        counts = ok.groupby(["label", "split"]).size().unstack("split", fill_value=0)
        counts = counts.reindex(index=list(self.class_names), fill_value=0)
        return counts.reindex(
            columns=[s for s in SPLITS if s in counts.columns], fill_value=0
        ).astype(int)


def canonical_split(name: str) -> str | None:
    """``"train"``/``"TRAIN"`` -> ``"Train"``; ``None`` when ``name`` is not a split name."""
    return _SPLIT_ALIASES.get(name.strip().lower())


def is_hidden(name: str) -> bool:
    """Files and folders every scan skips: dotfiles, macOS ``__MACOSX`` and ``Thumbs.db``."""
    return name.startswith(".") or name.startswith("__MACOSX") or name == "Thumbs.db"


def _split_dirs(
    folder: Path, roots: Sequence[Path], notes: list[Note] | None = None
) -> dict[str, Path]:
    found: dict[str, Path] = {}
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return found
    for entry in entries:
        split = canonical_split(entry.name)
        if split and entry.is_dir() and split not in found and _inside(entry, roots, notes):
            found[split] = entry
    return found


def _inside(entry: Path, roots: Sequence[Path], notes: list[Note] | None = None) -> bool:
    """True when ``entry`` resolves inside ``roots`` (:func:`confine.walk_roots`); otherwise
    a link leads elsewhere: noted (when ``notes`` is given) and never read."""
    if within(entry, roots) is not None:
        return True
    if notes is not None:
        notes.append(Note(str(entry), _OUTSIDE))
    return False


def resolve_root(path: str | Path) -> Path:
    """Return the folder that directly holds the split folders.

    Follows single wrapper folders (as in the Kaggle zip) up to two levels down.

    Raises:
        DatasetLayoutError: the path is missing, not a folder, or holds no split folder.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetLayoutError(f"The folder {root} does not exist; check the path.")
    if not root.is_dir():
        raise DatasetLayoutError(f"{root} is a file, not a folder; give the dataset's folder.")
    roots = walk_roots(root)
    frontier = [root]
    for _ in range(_MAX_SEARCH_DEPTH + 1):
        with_splits = [f for f in frontier if _split_dirs(f, roots)]
        if len(with_splits) == 1:
            return with_splits[0]
        if len(with_splits) > 1:
            names = ", ".join(str(f) for f in with_splits[:3])
            raise DatasetLayoutError(
                f"{root} holds several datasets ({names}); choose one of those folders."
            )
        frontier = [
            child
            for f in frontier
            for child in sorted(f.iterdir())
            if child.is_dir() and not is_hidden(child.name) and _inside(child, roots)
        ]
    raise DatasetLayoutError(
        f"No Train or Test folder was found in {root}; a dataset must look like "
        "<root>/Train/<class name>/*.jpg (and optionally <root>/Test/...)."
    )


def _hash_and_probe(path: Path) -> dict:
    """File size, content hash and header facts of one dataset file, or its ``error``.

    Only a regular file of at most :data:`~skinlab.data.images.MAX_FILE_BYTES` is read (a
    FIFO, a device or a 3 GB sparse file is an error row, unread), hashed in 1 MiB chunks,
    and then verified from the same open file."""
    row: dict = {"file_size": 0, "width": None, "height": None, "mode": None, "format": None}
    try:
        with open_image_file(path) as handle:
            digest = hashlib.blake2b(digest_size=16)
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
                row["file_size"] += len(chunk)
            row["content_hash"] = digest.hexdigest()
            probe = probe_file(handle, path.name, verify=True)
    except InvalidImageError as exc:
        row.update(content_hash=row.get("content_hash"), error=str(exc))
        return row
    row.update(
        width=probe.width, height=probe.height, mode=probe.mode, format=probe.format, error=None
    )
    return row


def _class_label(folder: str, notes: list[Note], where: Path) -> str:
    """Canonical label for a class folder, noting misspellings and case mismatches."""
    key = normalise_class_name(folder)
    if is_isic_class(key):
        return key
    guess = closest_isic_class(folder)
    if guess:
        notes.append(
            Note(
                str(where),
                f"class folder '{folder}' looks like a misspelling of '{guess}'; "
                f"its images are kept under '{folder}'. Rename the folder to merge them.",
            )
        )
    return folder


def discover(path: str | Path, *, workers: int | None = None) -> Dataset:
    """Scan a dataset folder into a :class:`Dataset`.

    Args:
        path: the dataset root, or a folder that wraps it (see :func:`resolve_root`).
        workers: threads for hashing and decoding (default: CPU count).

    Raises:
        DatasetLayoutError: no split folders, or no image at all in any split.
    """
    try:
        root = resolve_root(path)
        notes: list[Note] = []
        files = _list_files(root, notes)
    except OSError as exc:  # the folder vanished or changed rights while being scanned
        raise DatasetLayoutError(
            f"{path} could not be scanned ({exc.strerror or exc}); it was moved, deleted or "
            "made unreadable while being read, so check it and reload."
        ) from exc
    if not files:
        raise DatasetLayoutError(
            f"{root} has split folders but no images in class folders; expected "
            "<root>/Train/<class name>/*.jpg."
        )
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        probed = list(pool.map(_hash_and_probe, [f for f, _, _ in files]))
    rows = [
        {
            "path": str(f),
            "relpath": f.relative_to(root).as_posix(),
            "split": s,
            "label": lab,
            **info,
        }
        for (f, s, lab), info in zip(files, probed, strict=True)
    ]
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["width"] = table["width"].astype("Int64")
    table["height"] = table["height"].astype("Int64")
    class_names = tuple(sorted(set(table["label"])))
    _note_class_gaps(table, class_names, notes)
    return Dataset(root=root, table=table, class_names=class_names, notes=notes)


def _list_files(root: Path, notes: list[Note]) -> list[tuple[Path, str, str]]:
    """``(file, split, label)`` of every image file in the class folders of ``root``."""
    files: list[tuple[Path, str, str]] = []
    roots = walk_roots(root)
    splits = _split_dirs(root, roots, notes)
    for split, split_dir in sorted(splits.items(), key=lambda kv: SPLITS.index(kv[0])):
        before = len(files)
        for entry in sorted(split_dir.iterdir()):
            if is_hidden(entry.name) or _undecodable(entry, notes):
                continue
            if not _inside(entry, roots, notes):
                continue
            if not entry.is_dir():
                notes.append(Note(str(entry), "file outside any class folder; skipped"))
                continue
            label = _class_label(entry.name, notes, entry)
            in_class = len(files)
            for dirpath, dirnames, filenames in os.walk(entry, onerror=_noter(notes)):
                dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
                for name in sorted(filenames):
                    file = Path(dirpath) / name
                    if is_hidden(name) or _undecodable(file, notes):
                        continue
                    if file.is_symlink() and not _inside(file, roots, notes):
                        continue
                    if file.suffix.lower() not in IMAGE_SUFFIXES:
                        notes.append(
                            Note(
                                str(file),
                                f"not an image file ({file.suffix or 'no extension'}); skipped",
                            )
                        )
                        continue
                    files.append((file, split, label))
            if len(files) == in_class:
                notes.append(Note(str(entry), f"class folder '{entry.name}' holds no images"))
        if len(files) == before:
            notes.append(Note(str(split_dir), f"the {split} folder holds no images"))
    return files


def _undecodable(path: Path, notes: list[Note]) -> bool:
    """Whether ``path``'s name holds a byte that is not UTF-8 (noted, with each such byte
    shown as U+FFFD): every table and page carries a dataset's paths as text, which pandas,
    Arrow and Streamlit send as UTF-8 only, so one such name would fail every page."""
    raw = os.fsencode(path)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        shown = raw.decode("utf-8", "replace")
        notes.append(
            Note(shown, "name is not valid UTF-8 (shown with \ufffd); rename it to use it")
        )
        return True
    return False


def _noter(notes: list[Note]):
    """An ``os.walk`` error handler that notes a folder it cannot list (else it is silent)."""

    def note(error: OSError) -> None:
        reason = error.strerror or str(error)
        notes.append(Note(str(error.filename), f"folder could not be listed ({reason}); skipped"))

    return note


def _note_class_gaps(table: pd.DataFrame, class_names: tuple[str, ...], notes: list[Note]) -> None:
    for split in SPLITS:
        present = set(table.loc[table["split"] == split, "label"])
        if not present:
            continue
        for missing in sorted(set(class_names) - present):
            notes.append(Note(split, f"class '{missing}' has no images in {split}"))


def fingerprint(path: str | Path) -> str:
    """A cheap token that changes whenever any file under ``path`` is added, removed,
    resized or touched: caches key on it so a changed dataset is rescanned.

    Stats every file (no reads), about 5 ms per thousand files.
    """
    root = Path(path)
    digest = hashlib.blake2b(digest_size=16)
    for dirpath, dirnames, filenames in os.walk(root):
        # Hidden entries are not part of the dataset (discover skips them), and skinlab's
        # own .skinlab folder changes with every review decision: no rescan for those.
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        for name in sorted(f for f in filenames if not is_hidden(f)):
            try:
                st = os.stat(os.path.join(dirpath, name))
            except OSError:
                continue
            # The name as its bytes: one that is not UTF-8 holds a lone surrogate (PEP 383),
            # which encode() refuses.
            digest.update(os.fsencode(os.path.join(dirpath, name)))
            digest.update(f"\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()
