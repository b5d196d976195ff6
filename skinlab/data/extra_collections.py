"""Extra training collections (``RunConfig.extra_data``): the trainable rows of another
collection, added to a run's training side only.

A model trained on one archive learns the archive; training on several at once is the direct
fix. The run's own dataset still gives every validation row (and every cross-validation
fold), so its internal scores stay comparable with runs trained on it alone.

Contract:

* :func:`read_extra` reads one extra path: a skinlab dataset folder (one with a ``Train``
  split, found as :func:`skinlab.data.discovery.resolve_root` finds it) gives its readable
  Train rows (discovery), with lesion ids from a HAM10000 or ISIC ground-truth CSV directly in
  it when there is one (an imported HAM10000 keeps its metadata CSV there); any other folder
  is read by :func:`skinlab.data.external.read_external` (class folders, a Test split, HAM10000's
  images with their metadata CSV, an ISIC ground-truth CSV beside its images), every readable
  labelled row. Its ``table`` has :data:`skinlab.data.external.COLUMNS`: discovery's plus
  ``image_id``, ``lesion_id`` and ``collection`` (read_external's, or
  :func:`skinlab.data.collections.collection_of` with the folder's name as default).
* :func:`add_extra_rows` adds the rows of each extra path to the training rows, leaving out,
  counted per reason in its :class:`ExtraCount`: rows of a class the run's dataset lacks;
  rows :func:`skinlab.data.overlap.drop_training_overlap` ties to a validation row (same ISIC
  id, same bytes, near duplicate, same lesion id); and every row of a lesion one of those
  left-out rows belongs to, so no lesion is on both sides. Validation is never changed.
* An added row's ``split`` is ``Train`` and its ``relpath`` ``<folder name>/<path inside
  it>``: it names where the file came from and never a file of the run's own dataset folder,
  which holds no such folder.

Example::

    train, counts = add_extra_rows(train, val, class_names, ["/data/ham10000-train"])
    counts[0].sentence()
    # "extra data ham10000-train (HAM10000 metadata): 6,640 images added to training ..."
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from skinlab.core.errors import DatasetLayoutError
from skinlab.data import discovery
from skinlab.data.collections import collection_of, isic_id
from skinlab.data.external import COLUMNS, read_external
from skinlab.data.ground_truth import label_files, read_label_file
from skinlab.data.overlap import RULES, drop_training_overlap

#: The layout :func:`read_extra` names for a skinlab dataset folder's Train split.
TRAIN_SPLIT = "Train split"
#: Reasons an extra row is left out besides :data:`skinlab.data.overlap.RULES`.
UNREADABLE = "unreadable image"
OTHER_CLASS = "class the run's dataset lacks"
SAME_LESION_AS_DROPPED = "same lesion as a left-out image"
#: The preset meant for several collections (it cannot name their paths itself).
MULTI_COLLECTION = "multi-collection"


@dataclass(frozen=True)
class ExtraCollection:
    """One extra path as :func:`read_extra` read it.

    Attributes:
        path: the path as given.
        name: its folder's name (the prefix of its rows' ``relpath``).
        layout: :data:`TRAIN_SPLIT` or an external set's layout.
        table: its readable labelled rows (:data:`skinlab.data.external.COLUMNS`).
        skipped: ``{reason: rows}`` left out while reading (no class, no file, unreadable).
    """

    path: str
    name: str
    layout: str
    table: pd.DataFrame
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ExtraCount:
    """What one extra path added to a run's training rows and what it left out.

    Attributes:
        path: the path as given.
        layout: as :attr:`ExtraCollection.layout`.
        added: ``{collection: rows}`` added to the training side.
        dropped: ``{reason: rows}`` left out (reading's skips, :data:`OTHER_CLASS`, each rule
            of :data:`skinlab.data.overlap.RULES`, :data:`SAME_LESION_AS_DROPPED`); only
            reasons that left something out.
    """

    path: str
    layout: str
    added: dict[str, int]
    dropped: dict[str, int]

    @property
    def n_added(self) -> int:
        return sum(self.added.values())

    def sentence(self) -> str:
        """One line for the run's log: what was added, by collection, and what was left out."""
        name = Path(os.path.abspath(self.path)).name
        where = ", ".join(f"{c} {n:,}" for c, n in sorted(self.added.items()))
        text = f"extra data {name} ({self.layout}): {self.n_added:,} images added to training"
        text += f" ({where})" if where else ""
        if self.dropped:
            text += "; left out: " + ", ".join(f"{n:,} {r}" for r, n in self.dropped.items())
        return text + "."


def read_extra(path: str | Path) -> ExtraCollection:
    """The trainable rows of the extra collection at ``path`` (see the module contract).

    Raises:
        DatasetLayoutError: ``path`` does not exist, or is neither a dataset folder nor a
            layout an external set can have.
    """
    given = Path(path).expanduser()
    name = Path(os.path.abspath(given.parent if given.is_file() else given)).name
    root = _train_root(given)
    if root is None:
        external = read_external(given)
        layout, every, skipped = external.layout, external.table, dict(external.skipped)
    else:
        every = discovery.discover(root).table
        every = _with_ids(every[every["split"] == "Train"], root, name)
        layout, skipped = TRAIN_SPLIT, {}
    table = every[every["error"].isna()].reset_index(drop=True)
    if len(table) < len(every):
        skipped[UNREADABLE] = len(every) - len(table)
    return ExtraCollection(str(path), name, layout, table, skipped)


def _train_root(path: Path) -> Path | None:
    """The dataset root at or just inside ``path`` when it has a Train split, else ``None``."""
    if not path.is_dir():
        return None
    try:
        root = discovery.resolve_root(path)
    except DatasetLayoutError:
        return None
    has_train = any(
        discovery.canonical_split(child.name) == "Train" and child.is_dir()
        for child in root.iterdir()
    )
    return root if has_train else None


def _with_ids(table: pd.DataFrame, root: Path, name: str) -> pd.DataFrame:
    """A discovery table with ``image_id``, ``lesion_id`` (from a label CSV in ``root``) and
    ``collection`` columns, in :data:`~skinlab.data.external.COLUMNS` order."""
    stems = [Path(p).stem for p in table["relpath"]]
    numbers = [isic_id(s) for s in stems]
    lesions = lesion_ids(root)
    collections = [
        collection_of(
            s,
            name,
            width=None if pd.isna(w) else int(w),
            height=None if pd.isna(h) else int(h),
        )
        for s, w, h in zip(stems, table["width"], table["height"], strict=True)
    ]
    return table.assign(
        image_id=[None if n is None else f"ISIC_{n:07d}" for n in numbers],
        lesion_id=[lesions.get(s.lower()) for s in stems],
        collection=collections,
    )[list(COLUMNS)]


def lesion_ids(root: Path) -> dict[str, str]:
    """``{image id, lower case: lesion id}`` from the HAM10000 metadata CSV (or another label
    CSV with lesion ids) directly in ``root``; empty when there is none or it cannot be read."""
    for csv_path in label_files(root):
        try:
            labels = read_label_file(csv_path)
        except DatasetLayoutError:
            continue
        found = {d.image_id.lower(): d.lesion_id for d in labels.diagnoses if d.lesion_id}
        if found:
            return found
    return {}


def multi_collection_warning(preset_name: str | None, extra_data: tuple[str, ...]) -> str | None:
    """The warning for preset :data:`MULTI_COLLECTION` chosen with no ``extra_data`` (a run's
    ``RunConfig.extra_data``): such a run still trains, on its one dataset, so this is a
    warning, never a refusal."""
    if preset_name != MULTI_COLLECTION or extra_data:
        return None
    return (
        "multi-collection trains on two or more collections: add one with --data A --data B "
        "or 'Also train on'; without one this run trains on its one dataset only."
    )


def check_extra_paths(own_root: str | Path, paths: tuple[str, ...] | list[str]) -> None:
    """Refuse, before any image is read, an extra path that does not exist or is the run's
    own dataset folder (``own_root``).

    Raises:
        DatasetLayoutError: one sentence naming the path.
    """
    own = os.path.realpath(Path(own_root).expanduser())
    for path in paths:
        given = Path(path).expanduser()
        if not given.exists():
            raise DatasetLayoutError(
                f"The extra training data {given} does not exist; check the path."
            )
        if own in (os.path.realpath(given), os.path.realpath(_train_root(given) or given)):
            raise DatasetLayoutError(
                f"{given} is the dataset the run trains on already; give another collection "
                "as extra training data."
            )


def add_extra_rows(
    train: pd.DataFrame,
    val: pd.DataFrame,
    class_names: list[str],
    paths: tuple[str, ...] | list[str],
    own_root: Path | None = None,
) -> tuple[pd.DataFrame, tuple[ExtraCount, ...]]:
    """``train`` with the rows of every extra path in ``paths`` appended (see the module
    contract), and one :class:`ExtraCount` per path.

    Args:
        train, val: the run's own training and validation rows (discovery columns and
            ``collection``).
        class_names: the run's classes; rows of other classes are left out.
        paths: the extra paths, in order.
        own_root: the run's dataset folder: the lesion ids of ``val`` are read from a label
            CSV there (:func:`lesion_ids`), so an extra image of a validation lesion is left out.

    Raises:
        DatasetLayoutError: a path cannot be read (see :func:`read_extra`) or is the run's
            own dataset (:func:`check_extra_paths`).
    """
    if not paths:
        return train, ()
    if own_root is not None:
        check_extra_paths(own_root, paths)
        if "lesion_id" not in val:
            lesions = lesion_ids(own_root)
            stems = [Path(r).stem.lower() for r in val["relpath"]]
            val = val.assign(lesion_id=[lesions.get(s) for s in stems])
    tables, counts = [train], []
    for path in paths:
        rows, count = _trainable(read_extra(path), val, class_names)
        tables.append(rows)
        counts.append(count)
    combined = pd.concat([t for t in tables if not t.empty] or [train], ignore_index=True)
    return combined, tuple(counts)


def _trainable(
    extra: ExtraCollection, val: pd.DataFrame, class_names: list[str]
) -> tuple[pd.DataFrame, ExtraCount]:
    """The rows of ``extra`` that may train, and their count."""
    dropped = dict(extra.skipped)
    table = extra.table
    known = table["label"].isin(class_names)
    dropped[OTHER_CLASS] = int((~known).sum())
    table = table[known].reset_index(drop=True)
    kept, excluded = drop_training_overlap(table, val)
    dropped.update(excluded)
    # The lesions of the rows left out: their other images go too, so one lesion is never
    # on both sides of the split.
    gone = set(table.loc[~table["path"].isin(kept["path"]), "lesion_id"].dropna())
    same_lesion = kept["lesion_id"].isin(gone)
    dropped[SAME_LESION_AS_DROPPED] = int(same_lesion.sum())
    kept = kept[~same_lesion]
    kept = kept.assign(relpath=[f"{extra.name}/{r}" for r in kept["relpath"]], split="Train")
    added = {str(c): int(n) for c, n in kept["collection"].value_counts().items()}
    order = [*extra.skipped, OTHER_CLASS, *RULES, SAME_LESION_AS_DROPPED]
    count = ExtraCount(
        extra.path, extra.layout, added, {r: dropped[r] for r in order if dropped.get(r)}
    )
    return kept.reset_index(drop=True), count
