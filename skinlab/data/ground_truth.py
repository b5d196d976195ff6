"""The diagnosis files of HAM10000 and the ISIC challenges: one CSV becomes a list of
``(image id, class, lesion id)`` rows.

Two kinds are read:

* :data:`HAM_METADATA`: HAM10000's ``HAM10000_metadata.csv``, columns ``lesion_id, image_id,
  dx, ...``; ``dx`` is a code (``mel``, ``nv``, ``akiec``, ...).
* :data:`ISIC_GROUND_TRUTH`: an ISIC challenge ground-truth CSV (ISIC 2018 Task 3, ISIC 2019):
  a column ``image`` and one one-hot column per code (``MEL, NV, BCC, AK`` or ``AKIEC, BKL, DF,
  VASC, SCC, UNK``); ISIC 2019's ``score_weight`` column is not a diagnosis.

Contract:

* Codes become classes through :func:`skinlab.data.collections.class_for_code`; a row that
  names no class (``UNK``, a code skinlab does not know, a one-hot row without a 1 or with
  several), has no image id, or repeats an image id already read is counted in
  :attr:`LabelFile.skipped` under its reason and left out, never an error.
* The file is read once, at most :data:`MAX_CSV_BYTES`, from a regular file only (no FIFO or
  device), as UTF-8 (a byte-order mark is allowed); what does not parse raises
  :class:`~skinlab.core.errors.DatasetLayoutError` with one sentence.

Example::

    kind = label_file_kind(Path("HAM10000_metadata.csv"))     # "HAM10000 metadata"
    labels = read_label_file(Path("HAM10000_metadata.csv"), kind)
    labels.diagnoses[0]     # Diagnosis("ISIC_0024310", "melanoma", "HAM_0003350")
    labels.skipped          # {"no class (UNK)": 3}
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from skinlab.core.atomic import open_regular
from skinlab.core.errors import DatasetLayoutError, SkinlabError
from skinlab.data.collections import DX_CODES, class_for_code

HAM_METADATA = "HAM10000 metadata"
ISIC_GROUND_TRUTH = "ISIC ground truth"
#: The name HAM10000 gives its metadata file (preferred when a folder holds several CSVs).
HAM_METADATA_NAME = "ham10000_metadata.csv"
#: Largest label file read: ISIC 2019's 25,331-row ground truth is 1.2 MB, HAM10000's 0.6 MB.
MAX_CSV_BYTES = 32 * 2**20
#: Enough of a file to hold its header line.
_HEADER_BYTES = 64 * 2**10
#: Columns of a ground-truth CSV that are not diagnoses.
_NOT_CODES = frozenset({"image", "score_weight", "lesion_id"})
#: The code of the ISIC challenges' "none of the others" column.
UNKNOWN_CODE = "unk"


@dataclass(frozen=True)
class Diagnosis:
    """One image of a label file: its id (the file name without extension), its class and
    its lesion's id (``None`` when the file has none)."""

    image_id: str
    label: str
    lesion_id: str | None = None


@dataclass(frozen=True)
class LabelFile:
    """What :func:`read_label_file` made of one CSV.

    Attributes:
        path: the CSV.
        kind: :data:`HAM_METADATA` or :data:`ISIC_GROUND_TRUTH`.
        diagnoses: the rows that name a class, in file order, each image once.
        skipped: ``{reason: rows}`` of the rows left out (see the module contract).
    """

    path: Path
    kind: str
    diagnoses: tuple[Diagnosis, ...]
    skipped: dict[str, int] = field(default_factory=dict)


def label_file_kind(path: Path) -> str | None:
    """:data:`HAM_METADATA`, :data:`ISIC_GROUND_TRUTH` or ``None`` from the header of the CSV
    ``path``; a file that cannot be read or parsed is ``None``."""
    try:
        with open_regular(path) as handle:
            head = handle.read(_HEADER_BYTES)
        line = head.decode("utf-8-sig", errors="replace").splitlines()[:1]
        header = [c.strip().lower() for c in next(csv.reader(line), [])]
    except (OSError, SkinlabError, csv.Error):
        return None
    return _kind(header)


def _kind(header: list[str]) -> str | None:
    if {"image_id", "dx"} <= set(header):
        return HAM_METADATA
    codes = [c for c in header[1:] if c not in _NOT_CODES]
    if header[:1] == ["image"] and any(c in DX_CODES or c == UNKNOWN_CODE for c in codes):
        return ISIC_GROUND_TRUTH
    return None


def read_label_file(path: Path, kind: str | None = None) -> LabelFile:
    """Read the label file ``path`` of ``kind`` (default: :func:`label_file_kind`).

    Raises:
        DatasetLayoutError: the file cannot be read, is over :data:`MAX_CSV_BYTES`, is not
            UTF-8 CSV, or is neither kind.
    """
    rows = _read_rows(path)
    header = [c.strip().lower() for c in rows[0]] if rows else []
    kind = kind or _kind(header)
    if kind is None or _kind(header) != kind:
        raise DatasetLayoutError(
            f"{path} is neither HAM10000's metadata (lesion_id, image_id, dx) nor an ISIC "
            "ground-truth CSV (image, MEL, NV, ...); point at the CSV that lists the diagnoses."
        )
    parse = _ham_row if kind == HAM_METADATA else _ground_truth_row
    diagnoses: list[Diagnosis] = []
    skipped: dict[str, int] = {}
    seen: set[str] = set()
    for row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        found = parse(header, row)
        if isinstance(found, Diagnosis) and found.image_id.lower() in seen:
            found = "image listed twice"
        if isinstance(found, str):
            skipped[found] = skipped.get(found, 0) + 1
            continue
        seen.add(found.image_id.lower())
        diagnoses.append(found)
    return LabelFile(path, kind, tuple(diagnoses), skipped)


def _read_rows(path: Path) -> list[list[str]]:
    try:
        with open_regular(path) as handle:
            data = handle.read(MAX_CSV_BYTES + 1)
    except (OSError, SkinlabError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a file"
        raise DatasetLayoutError(
            f"{path} cannot be read ({reason}); check that it is a readable CSV file."
        ) from exc
    if len(data) > MAX_CSV_BYTES:
        raise DatasetLayoutError(
            f"{path} is larger than {MAX_CSV_BYTES // 2**20} MB, far more than a label file "
            "holds; point at the folder of the right CSV."
        )
    try:
        return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DatasetLayoutError(
            f"{path} is not a readable UTF-8 CSV file ({exc}); save it again as UTF-8 CSV."
        ) from exc


def _cell(header: list[str], row: list[str], column: str) -> str:
    index = header.index(column) if column in header else len(row)
    return row[index].strip() if index < len(row) else ""


def _no_class(what: str) -> str:
    """The skip reason of a row that names no class: ``no class (UNK)``."""
    return f"no class ({what})"


def _ham_row(header: list[str], row: list[str]) -> Diagnosis | str:
    """The row's :class:`Diagnosis`, or the reason it is skipped."""
    image, code = _cell(header, row, "image_id"), _cell(header, row, "dx")
    if not image:
        return "no image id"
    label = class_for_code(code)
    if label is None:
        return _no_class(code.upper() or "empty")
    return Diagnosis(image, label, _cell(header, row, "lesion_id") or None)


def _ground_truth_row(header: list[str], row: list[str]) -> Diagnosis | str:
    """The row's :class:`Diagnosis`, or the reason it is skipped."""
    image = _cell(header, row, "image")
    if not image:
        return "no image id"
    marked = [
        code
        for code, value in zip(header[1:], row[1:], strict=False)
        if code not in _NOT_CODES and _is_one(value)
    ]
    if len(marked) != 1:
        return _no_class("none marked" if not marked else "several marked")
    label = class_for_code(marked[0])
    return Diagnosis(image, label) if label is not None else _no_class(marked[0].upper())


def _is_one(value: str) -> bool:
    try:
        return float(value) > 0.5  # "1", "1.0"; the challenges mark nothing else
    except ValueError:
        return False


def label_files(folder: Path) -> list[Path]:
    """The label CSVs (HAM10000 metadata or ISIC ground truth) directly in ``folder``,
    HAM10000's own file name first; hidden files and links are left out, never followed."""
    found = [
        p
        for p in sorted(folder.iterdir())
        if p.suffix.lower() == ".csv"
        and not p.name.startswith(".")
        and not p.is_symlink()
        and p.is_file()
        and label_file_kind(p) is not None
    ]
    return sorted(found, key=lambda p: p.name.lower() != HAM_METADATA_NAME)


def find_label_file(folder: Path, what_to_do: str) -> Path | None:
    """The one label CSV directly in ``folder`` (HAM10000's own name wins), or ``None``.

    Raises:
        DatasetLayoutError: several label CSVs and none named as HAM10000's; the sentence
            ends with ``what_to_do`` ("give the one to use as the path").
    """
    found = label_files(folder)
    named = [p for p in found if p.name.lower() == HAM_METADATA_NAME]
    if len(found) > 1 and len(named) != 1:
        names = ", ".join(p.name for p in found[:4])
        raise DatasetLayoutError(f"{folder} holds several label files ({names}); {what_to_do}.")
    return found[0] if found else None


#: The reason a label file's row is skipped when no image file has its id.
MISSING = "image file missing"


def match_images(
    labels: LabelFile, files_by_id: dict[str, Path]
) -> tuple[list[tuple[Diagnosis, Path]], dict[str, int]]:
    """Each labelled row of ``labels`` with its image file (looked up by lower-case image
    id in ``files_by_id``), and ``{reason: rows}`` skipped: the label file's own skips plus
    :data:`MISSING` for rows whose image is not there."""
    matched = [
        (row, files_by_id[row.image_id.lower()])
        for row in labels.diagnoses
        if row.image_id.lower() in files_by_id
    ]
    missing = len(labels.diagnoses) - len(matched)
    return matched, {**labels.skipped, **({MISSING: missing} if missing else {})}
