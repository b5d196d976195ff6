"""The rows a run trains and validates on, rebuilt from its config: one rule for everyone.

Training (:func:`skinlab.train.training.prepare_data`), scoring a run on its own validation
images (:mod:`skinlab.evaluate.scoring`) and refitting its familiarity gate
(:mod:`skinlab.evaluate.familiarity_fit`) must all see the same split; they all call
:func:`split_for_run`, which sits below both the training and the evaluation layer.

Contract: the dataset version ``config.data_version`` of ``config.data_root`` is discovered,
its readable Train rows gain a ``collection`` column (:func:`skinlab.data.collections.collection_of`,
the dataset folder's name where a file's name says nothing) and are split into training and validation rows (fold ``config.cv_fold``
of ``config.cv_folds`` when set, else the hash-grouped ``val_fraction`` split, both seeded by
``config.seed``); the Test split is never touched. No rebalancing happens here. The rows of
``config.extra_data`` (:func:`skinlab.data.extra_collections.add_extra_rows`) are then added to
the training side only: validation and the folds are the primary dataset's alone, so internal
scores stay comparable, and an extra image tied to a validation image (or to its lesion) is
left out. :attr:`RunSplit.extra` counts what each extra path added and left out.

Example::

    rows = split_for_run(config)
    rows.train, rows.val, rows.class_names
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from skinlab.core.config import RunConfig
from skinlab.core.errors import DatasetLayoutError
from skinlab.data.collections import collection_of
from skinlab.data.discovery import Dataset
from skinlab.data.extra_collections import ExtraCount, add_extra_rows
from skinlab.data.overrides import load_version
from skinlab.data.splits import fold_split, train_val_split


@dataclass(frozen=True)
class RunSplit:
    """A run's dataset and its training and validation rows (before any rebalancing), and
    one :class:`~skinlab.data.extra_collections.ExtraCount` per ``extra_data`` path."""

    dataset: Dataset
    class_names: list[str]
    train: pd.DataFrame
    val: pd.DataFrame
    extra: tuple[ExtraCount, ...] = ()


def split_for_run(config: RunConfig) -> RunSplit:
    """The training and validation rows of ``config`` (see the module contract).

    Raises:
        DatasetLayoutError: no Train images, fewer than two classes, folds that cannot
            be made, or an extra path that cannot be read.
        OverridesError: the dataset has no version ``config.data_version``.
    """
    dataset = load_version(config.data_root, config.data_version)
    train_table = dataset.images("Train")
    if train_table.empty:
        raise DatasetLayoutError(f"{dataset.root} has no readable Train images to learn from.")
    train_table = with_collections(train_table, dataset.root.name)
    class_names = sorted(set(train_table["label"]))
    if len(class_names) < 2:
        raise DatasetLayoutError("Training needs at least two classes in the Train split.")
    if config.cv_folds:
        try:
            train, val = fold_split(train_table, config.cv_folds, config.cv_fold, config.seed)
        except ValueError as exc:
            raise DatasetLayoutError(f"Cross-validation cannot split Train: {exc}") from exc
    else:
        train, val = train_val_split(train_table, config.val_fraction, config.seed)
    train, extra = add_extra_rows(train, val, class_names, config.extra_data, dataset.root)
    return RunSplit(dataset=dataset, class_names=class_names, train=train, val=val, extra=extra)


def with_collections(table: pd.DataFrame, default: str) -> pd.DataFrame:
    """``table`` with a ``collection`` column for each row (kept where it already has one)."""
    if "collection" in table.columns:
        return table
    names = [
        collection_of(
            str(row.relpath),
            default,
            width=None if pd.isna(row.width) else int(row.width),
            height=None if pd.isna(row.height) else int(row.height),
        )
        for row in table.itertuples()
    ]
    return table.assign(collection=names)
