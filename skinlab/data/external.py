"""External sets: a collection of images a run did not train on, in any of four layouts,
read into one table like discovery's, for scoring a run on another collection.

Layouts, tried in this order:

* :data:`HAM_METADATA` and :data:`ISIC_GROUND_TRUTH`: a label CSV in the folder (or the CSV
  itself as the path) beside its images, in the folder or any subfolder (HAM10000's own
  ``HAM10000_images_part_1/`` and ``_part_2/``, an ``images/`` folder); image files are found
  by name, ``<image id>.jpg`` (any image suffix, any case). See
  :mod:`skinlab.data.ground_truth` for the two CSVs.
* :data:`TEST_SPLIT`: a dataset root with a ``Test/`` folder (found as
  :func:`skinlab.data.discovery.resolve_root` finds it); only ``Test/<class>/`` is read.
* :data:`CLASS_FOLDERS`: a folder of class folders, ``<path>/<class>/*.jpg``.

Contract:

* :attr:`ExternalSet.table` has discovery's columns (:data:`COLUMNS`; ``split`` is
  :data:`EXTERNAL`) plus ``image_id`` (the ISIC id, ``ISIC_0024310``, when the name or the CSV
  has one, else the CSV's id, else ``None``), ``lesion_id`` (``None`` where unknown) and
  ``collection`` (:func:`skinlab.data.collections.collection_of`, the folder's name as default).
* Each file is probed and hashed as discovery does, after a size check
  (:data:`skinlab.data.images.MAX_FILE_BYTES`) and only if it is a regular file; an unreadable
  image stays in the table with its ``error``.
* Rows that cannot become images (no class, no file, a link that leads out of the folder) are
  counted in :attr:`ExternalSet.skipped` under their reason, never an error.
* A folder that matches no layout raises :class:`~skinlab.core.errors.DatasetLayoutError`
  naming the four.

Example::

    external = read_external("/data/ham10000-external")
    external.layout                     # "HAM10000 metadata"
    external.table.groupby("label").size()
    external.skipped                    # {"no class (UNK)": 3, "image file missing": 1}

Why one module: the four layouts share one walk of the folder, one probe of each file and one
table; each layout is a few lines on top of them.
"""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from skinlab.core.classes import is_isic_class, normalise_class_name
from skinlab.core.errors import DatasetLayoutError
from skinlab.data import discovery
from skinlab.data.collections import class_for_code, collection_of, isic_id
from skinlab.data.ground_truth import HAM_METADATA as HAM_METADATA
from skinlab.data.ground_truth import ISIC_GROUND_TRUTH as ISIC_GROUND_TRUTH
from skinlab.data.ground_truth import find_label_file, match_images, read_label_file
from skinlab.data.images import IMAGE_SUFFIXES, MAX_FILE_BYTES

CLASS_FOLDERS = "class folders"
TEST_SPLIT = "Test split"
#: The ``split`` of every external row.
EXTERNAL = "External"
#: Columns of :attr:`ExternalSet.table`, in order.
COLUMNS: tuple[str, ...] = (*discovery.COLUMNS, "image_id", "lesion_id", "collection")
#: The skip reasons this module gives (the label files add theirs).
OUTSIDE = "link leads out of the folder"

_LAYOUTS_TEXT = (
    "a folder of class folders (<class>/*.jpg), a dataset with a Test/ folder, HAM10000's "
    "images with HAM10000_metadata.csv, or an ISIC ground-truth CSV (image, MEL, NV, ...) "
    "beside its images"
)


@dataclass(frozen=True)
class ExternalSet:
    """An external set as :func:`read_external` read it.

    Attributes:
        root: the folder its ``relpath`` values are relative to.
        layout: :data:`CLASS_FOLDERS`, :data:`TEST_SPLIT`, :data:`HAM_METADATA` or
            :data:`ISIC_GROUND_TRUTH`.
        table: one row per image file (:data:`COLUMNS`).
        skipped: ``{reason: count}`` of the rows or files left out of ``table``.
        notes: sentences about what was read (an image name found twice, ...).
    """

    root: Path
    layout: str
    table: pd.DataFrame
    skipped: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def images(self) -> pd.DataFrame:
        """The readable rows."""
        return self.table[self.table["error"].isna()]

    @property
    def class_names(self) -> tuple[str, ...]:
        """Every class of the table, sorted."""
        return tuple(sorted(set(self.table["label"])))


@dataclass(frozen=True)
class _Entry:
    path: Path
    label: str
    image_id: str | None = None
    lesion_id: str | None = None


def read_external(path: str | Path) -> ExternalSet:
    """Read the external set at ``path`` (a folder, or a label CSV) in whichever layout it has.

    Raises:
        DatasetLayoutError: ``path`` does not exist, matches none of the four layouts, holds
            several label CSVs, or its label CSV cannot be read.
    """
    given = Path(path).expanduser()
    if not given.exists():
        raise DatasetLayoutError(f"The folder {given} does not exist; check the path.")
    try:
        return _read(given)
    except OSError as exc:  # a folder without read rights, or one changed while being read
        raise DatasetLayoutError(
            f"{given} could not be read ({exc.strerror or exc}); check that it is readable."
        ) from exc


def _read(given: Path) -> ExternalSet:
    folder = given.parent if given.is_file() else given
    name = Path(os.path.abspath(folder)).name
    label_file = given if given.is_file() else _label_file(folder)
    if label_file is not None:
        return _from_label_file(folder, label_file, name)
    test = _test_folder(folder)
    if test is not None:
        return _build(test.parent, TEST_SPLIT, _class_folder_entries(test), name)
    entries = _class_folder_entries(folder)
    if entries:
        return _build(folder, CLASS_FOLDERS, entries, name)
    raise DatasetLayoutError(f"{given} matches none of the layouts skinlab reads: {_LAYOUTS_TEXT}.")


def _label_file(folder: Path) -> Path | None:
    """The one label CSV directly in ``folder`` (HAM10000's own name wins), or ``None``."""
    return find_label_file(folder, "give the one to use as the path")


def _test_folder(folder: Path) -> Path | None:
    """The ``Test`` folder of the dataset at or just inside ``folder``, or ``None``."""
    try:
        root = discovery.resolve_root(folder)
    except DatasetLayoutError:
        return None
    for child in sorted(root.iterdir()):
        if discovery.canonical_split(child.name) == "Test" and child.is_dir():
            return child
    raise DatasetLayoutError(
        f"{root} is a dataset without a Test folder, and only its Test images can be an "
        f"external set; point at {_LAYOUTS_TEXT}."
    )


def _class_folder_entries(folder: Path) -> list[_Entry]:
    entries = []
    for child in sorted(folder.iterdir()):
        if child.is_dir() and not discovery.is_hidden(child.name):
            label = _folder_label(child.name)
            entries += [_Entry(f, label, _isic_name(f.name)) for f in _image_files(child)]
    return entries


def _folder_label(name: str) -> str:
    """A class folder's class: an ISIC class name normalised, a code mapped, else the name."""
    key = normalise_class_name(name)
    return key if is_isic_class(key) else class_for_code(name) or name


def _image_files(folder: Path) -> list[Path]:
    """Every image file under ``folder`` (links to folders are not followed), sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not discovery.is_hidden(d))
        found += [
            Path(dirpath) / n
            for n in sorted(filenames)
            if not discovery.is_hidden(n) and Path(n).suffix.lower() in IMAGE_SUFFIXES
        ]
    return found


def _isic_name(text: str) -> str | None:
    number = isic_id(text)
    return None if number is None else f"ISIC_{number:07d}"


def _from_label_file(folder: Path, csv_path: Path, name: str) -> ExternalSet:
    if not _inside(csv_path, folder):
        raise DatasetLayoutError(
            f"{csv_path} is a link that leads out of {folder}; copy the file into the folder."
        )
    labels = read_label_file(csv_path)
    index, notes = _index_by_name(folder)
    matched, skipped = match_images(labels, index)
    entries = [
        _Entry(
            file,
            row.label,
            _isic_name(row.image_id) or _isic_name(file.name) or row.image_id,
            row.lesion_id,
        )
        for row, file in matched
    ]
    return _build(folder, labels.kind, entries, name, skipped=skipped, notes=notes)


def _index_by_name(folder: Path) -> tuple[dict[str, Path], tuple[str, ...]]:
    """``{file name without suffix, lower case: file}`` of the images under ``folder``."""
    index: dict[str, Path] = {}
    twice = []
    for file in _image_files(folder):
        key = file.stem.lower()
        if key in index:
            twice.append(file.relative_to(folder).as_posix())
        else:
            index[key] = file
    notes: tuple[str, ...] = ()
    if twice:
        notes = (
            f"{len(twice)} image names occur more than once (first: {twice[0]}); the first "
            "file of each name was read.",
        )
    return index, notes


def _inside(file: Path, folder: Path) -> bool:
    """True when ``file``, links followed, lies in ``folder``, links followed."""
    return Path(os.path.realpath(file)).is_relative_to(os.path.realpath(folder))


def _build(
    root: Path,
    layout: str,
    entries: list[_Entry],
    name: str,
    *,
    skipped: dict[str, int] | None = None,
    notes: tuple[str, ...] = (),
) -> ExternalSet:
    """The set of ``entries`` (links out of ``root`` skipped), each file probed."""
    skipped = dict(skipped or {})
    inside = [e for e in entries if _inside(e.path, root)]
    if len(inside) < len(entries):
        skipped[OUTSIDE] = len(entries) - len(inside)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        probed = list(pool.map(_probe, [e.path for e in inside]))
    rows = [
        {
            "path": str(e.path),
            "relpath": e.path.relative_to(root).as_posix(),
            "split": EXTERNAL,
            "label": e.label,
            **info,
            "image_id": e.image_id,
            "lesion_id": e.lesion_id,
            "collection": collection_of(
                e.image_id or e.path.name, name, width=info["width"], height=info["height"]
            ),
        }
        for e, info in zip(inside, probed, strict=True)
    ]
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["width"] = table["width"].astype("Int64")
    table["height"] = table["height"].astype("Int64")
    return ExternalSet(root, layout, table, skipped, notes)


def _probe(path: Path) -> dict:
    """Discovery's row of facts about ``path``, refusing before any read a file that is not
    regular or is over :data:`~skinlab.data.images.MAX_FILE_BYTES`."""
    try:
        info = os.stat(path)
    except OSError as exc:
        return _unreadable(f"{path.name} could not be read ({exc.strerror or exc}).")
    if not stat.S_ISREG(info.st_mode):
        return _unreadable(f"{path.name} is not a regular file (a pipe, a device or a folder).")
    if info.st_size > MAX_FILE_BYTES:
        return _unreadable(
            f"{path.name} is {info.st_size / 2**20:.0f} MB; images over "
            f"{MAX_FILE_BYTES // 2**20} MB are refused, resize it first.",
            info.st_size,
        )
    return discovery._hash_and_probe(path)


def _unreadable(error: str, size: int = 0) -> dict:
    blank = dict.fromkeys(("width", "height", "mode", "format", "content_hash"))
    return {**blank, "file_size": size, "error": error}
