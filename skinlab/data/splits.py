"""Leakage-free, stratified, seeded train/validation split.

Copies of one image (rows sharing a ``content_hash``) always land on the same side:
the split is drawn over *hash groups*, not rows, so validation can never score an
image the model trained on. Within each class the groups are shuffled with the seed
and the first ``val_fraction`` of them go to validation.

:func:`fold_split` does the same for k-fold cross-validation: fold k of k hash-grouped,
stratified folds is the validation side.

Example::

    train, val = train_val_split(dataset.images("Train"), val_fraction=0.2, seed=42)
    train, val = fold_split(dataset.images("Train"), folds=5, fold=2, seed=42)
"""

from __future__ import annotations

import math
import warnings
from numbers import Real

import numpy as np
import pandas as pd

#: Columns :func:`train_val_split` needs; ``error`` is used when present.
REQUIRED_COLUMNS: tuple[str, ...] = ("relpath", "label", "content_hash")

#: Upper bound (exclusive) on ``val_fraction``: beyond it too little is left to train on.
MAX_VAL_FRACTION = 0.9


def train_val_split(
    table: pd.DataFrame, val_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``table`` into ``(train, val)`` by class, keeping duplicates together.

    Contract:

    * Rows with an ``error`` (unreadable images) are dropped; every other row lands in
      exactly one of the two frames, which keep the input's columns, are sorted by
      ``relpath`` and have a fresh ``0..n-1`` index.
    * Rows with the same ``content_hash`` land on the same side. A group whose copies
      carry several labels counts for its most frequent label (ties: alphabetically
      first); a row without a hash is a group of its own.
    * Per class, ``round(groups * val_fraction)`` groups go to validation, but at least
      one when the class has two or more groups and ``val_fraction > 0``, and never all
      of them. With few duplicates that is ``val_fraction`` of the class's images.
    * The result depends only on the rows and ``seed``, not on the row order: the same
      seed gives the same split; different seeds give different ones.

    Args:
        table: image rows, usually ``dataset.images("Train")``; needs the columns
            :data:`REQUIRED_COLUMNS`.
        val_fraction: share of each class to hold out, in ``[0, 0.9)``; 0 gives an
            empty validation frame.
        seed: seeds the shuffle.

    Raises:
        ValueError: ``val_fraction`` is out of range or ``table`` lacks a needed column.
    """
    _check_fraction(val_fraction)
    rows, group = _rows_and_groups(table)
    val_groups = _pick_val_groups(group, rows["label"], val_fraction, seed)
    in_val = group.isin(val_groups)
    return rows[~in_val].reset_index(drop=True), rows[in_val].reset_index(drop=True)


def fold_split(
    table: pd.DataFrame, folds: int, fold: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``table`` into ``(train, val)`` where ``val`` is fold ``fold`` of ``folds``.

    The folds come from scikit-learn's ``StratifiedGroupKFold`` (shuffled with ``seed``)
    over the same hash groups as :func:`train_val_split`: copies of one image share a
    fold, every readable row is in exactly one fold, and each fold's class mix is as close
    to the whole table's as the groups allow. Frames are sorted by ``relpath`` with a fresh
    index, like :func:`train_val_split`'s.

    Args:
        table: image rows with the columns :data:`REQUIRED_COLUMNS`.
        folds: number of folds, at least 2.
        fold: the held-out fold, ``1..folds``.
        seed: seeds the fold assignment; the same seed gives the same folds.

    Raises:
        ValueError: a bad ``folds``/``fold``, a missing column, or fewer hash groups than
            folds.
    """
    assignment = fold_assignment(table, folds, seed)
    if not 1 <= fold <= folds:
        raise ValueError(f"fold must be from 1 to {folds}, not {fold}.")
    rows, _ = _rows_and_groups(table)
    in_val = assignment.to_numpy() == fold
    return rows[~in_val].reset_index(drop=True), rows[in_val].reset_index(drop=True)


def fold_assignment(table: pd.DataFrame, folds: int, seed: int) -> pd.Series:
    """The 1-based fold of every readable row of ``table`` (in ``relpath`` order, index
    ``0..n-1``), as :func:`fold_split` uses it. Raises as :func:`fold_split` does."""
    from sklearn.model_selection import StratifiedGroupKFold

    if folds < 2:
        raise ValueError(f"Cross-validation needs at least 2 folds, not {folds}.")
    rows, group = _rows_and_groups(table)
    if group.nunique() < folds:
        raise ValueError(
            f"{folds} folds need at least {folds} distinct images; the table has {group.nunique()}."
        )
    result = np.zeros(len(rows), dtype=int)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # "The least populated class has only 1 member": that class cannot be in every fold,
        # which is expected of a rare class, not an error.
        warnings.simplefilter("ignore", UserWarning)
        for k, (_, held_out) in enumerate(splitter.split(rows, rows["label"], group), start=1):
            result[held_out] = k
    return pd.Series(result, name="fold")


def _rows_and_groups(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Readable rows sorted by ``relpath`` and each row's hash group."""
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(
            f"The table lacks the column(s) {', '.join(missing)}; pass a table from "
            "skinlab.data.discovery.discover()."
        )
    rows = table if "error" not in table.columns else table[table["error"].isna()]
    rows = rows.sort_values("relpath", kind="stable").reset_index(drop=True)
    return rows, rows["content_hash"].fillna("row:" + rows["relpath"].astype(str))


def _check_fraction(val_fraction: float) -> None:
    ok = (
        isinstance(val_fraction, Real)
        and not isinstance(val_fraction, bool)
        and 0 <= val_fraction < MAX_VAL_FRACTION
    )  # NaN fails the range test too
    if not ok:
        raise ValueError(
            f"val_fraction must be a number from 0 up to (not including) {MAX_VAL_FRACTION}, "
            f"got {val_fraction!r}; 0.2 holds out a fifth of each class for validation."
        )


def _pick_val_groups(
    group: pd.Series, label: pd.Series, val_fraction: float, seed: int
) -> set[str]:
    """Hash groups that go to validation, chosen per class (the group's main label)."""
    if val_fraction == 0 or group.empty:
        return set()
    sizes = pd.DataFrame({"group": group, "label": label}).value_counts().reset_index(name="n")
    sizes = sizes.sort_values(["group", "n", "label"], ascending=[True, False, True])
    main_label = sizes.drop_duplicates("group").sort_values(["label", "group"])
    rng = np.random.default_rng(seed)
    chosen: set[str] = set()
    for _, members in main_label.groupby("label", sort=True):
        keys = members["group"].to_numpy()
        if len(keys) < 2:
            continue  # a lone group trains; a class absent from training is worse
        n_val = min(max(1, math.floor(len(keys) * val_fraction + 0.5)), len(keys) - 1)
        chosen.update(keys[rng.permutation(len(keys))[:n_val]])
    return chosen
