"""Leakage-free, stratified, seeded train/validation split.

Copies of one image (rows sharing a ``content_hash``) always land on the same side:
the split is drawn over *hash groups*, not rows, so validation can never score an
image the model trained on. Within each class the groups are shuffled with the seed
and the first ``val_fraction`` of them go to validation.

Example::

    train, val = train_val_split(dataset.images("Train"), val_fraction=0.2, seed=42)
"""

from __future__ import annotations

import math
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
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(
            f"The table lacks the column(s) {', '.join(missing)}; pass a table from "
            "skinlab.discovery.discover()."
        )
    rows = table if "error" not in table.columns else table[table["error"].isna()]
    rows = rows.sort_values("relpath", kind="stable").reset_index(drop=True)
    group = rows["content_hash"].fillna("row:" + rows["relpath"].astype(str))
    val_groups = _pick_val_groups(group, rows["label"], val_fraction, seed)
    in_val = group.isin(val_groups)
    return rows[~in_val].reset_index(drop=True), rows[in_val].reset_index(drop=True)


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
