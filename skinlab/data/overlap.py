"""Overlap with the training data: the images of an external set a run has already seen.

An external score means something only on images the model never trained on, and public
collections share images: HAM10000's are in the ISIC archive under the same ids, ISIC 2019
holds HAM10000 and older archive images, datasets copy each other re-saved or resized.
:func:`drop_training_overlap` leaves out every external image that one of :data:`RULES`
ties to the training table, in that order, each image counted under the first rule that
catches it:

* ``same ISIC id``: the ISIC id (``image_id`` or the file name) is a training image's;
* ``same bytes``: its ``content_hash`` is a training image's (a copy under another name);
* ``near duplicate``: a re-saved, resized or brightened copy of a training image
  (:mod:`skinlab.data.near_duplicates`, both tables' readable images);
* ``same lesion id``: another image of a lesion the training table holds (only when both
  tables have a ``lesion_id`` column).

Example::

    kept, excluded = drop_training_overlap(external.images(), dataset.images("Train"))
    excluded   # {"same ISIC id": 3, "same bytes": 1, "near duplicate": 2, "same lesion id": 0}
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from skinlab.data.collections import isic_id
from skinlab.data.near_duplicates import near_duplicate_pairs, tiny_images

SAME_ID = "same ISIC id"
SAME_BYTES = "same bytes"
NEAR_DUPLICATE = "near duplicate"
SAME_LESION = "same lesion id"
#: The rules, in the order they are applied.
RULES: tuple[str, ...] = (SAME_ID, SAME_BYTES, NEAR_DUPLICATE, SAME_LESION)


def drop_training_overlap(
    external: pd.DataFrame, training: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, int]]:
    """``external`` without the images it shares with ``training``, and how many each rule
    left out (every rule of :data:`RULES`, zero included).

    Args:
        external: rows with ``path``, ``relpath``, ``content_hash`` and ``error``, and
            optionally ``image_id`` and ``lesion_id`` (an external set's table).
        training: the same columns (a discovery table, optionally with ``lesion_id``).

    Returns:
        The kept rows (a new index from 0) and ``{rule: count}``.
    """
    checks: dict[str, Callable[[pd.DataFrame, pd.DataFrame], pd.Series]] = {
        SAME_ID: _same_isic_id,
        SAME_BYTES: _same_bytes,
        NEAR_DUPLICATE: _near_duplicates,
        SAME_LESION: _same_lesion,
    }
    caught = pd.Series(None, index=external.index, dtype=object)
    for rule in RULES:
        open_rows = external[caught.isna()]
        if open_rows.empty or training.empty:
            break
        hit = checks[rule](open_rows, training)
        caught[hit[hit].index] = rule
    excluded = {rule: int((caught == rule).sum()) for rule in RULES}
    return external[caught.isna()].reset_index(drop=True), excluded


def _isic_numbers(table: pd.DataFrame) -> pd.Series:
    """The ISIC id number of each row, from ``image_id`` where it has one, else ``relpath``."""
    names = table["relpath"].astype(str)
    if "image_id" in table:
        names = table["image_id"].where(table["image_id"].notna(), names).astype(str)
    return names.map(isic_id)


def _same_isic_id(external: pd.DataFrame, training: pd.DataFrame) -> pd.Series:
    known = set(_isic_numbers(training).dropna())
    numbers = _isic_numbers(external)
    return numbers.notna() & numbers.isin(known)


def _same_bytes(external: pd.DataFrame, training: pd.DataFrame) -> pd.Series:
    known = set(training["content_hash"].dropna())
    return external["content_hash"].notna() & external["content_hash"].isin(known)


def _near_duplicates(external: pd.DataFrame, training: pd.DataFrame) -> pd.Series:
    """Readable external images that are near copies of a readable training image."""
    ours = external[external["error"].isna()]
    theirs = training[training["error"].isna()] if "error" in training else training
    hit = pd.Series(False, index=external.index)
    if ours.empty or theirs.empty:
        return hit
    thumbs = tiny_images([*ours["path"], *theirs["path"]])
    n = len(ours)
    # The pairs come out with i < j, and the external rows come first.
    caught = {i for i, j, _ in near_duplicate_pairs(thumbs) if i < n <= j}
    hit[ours.index[sorted(caught)]] = True
    return hit


def _same_lesion(external: pd.DataFrame, training: pd.DataFrame) -> pd.Series:
    if "lesion_id" not in external or "lesion_id" not in training:
        return pd.Series(False, index=external.index)
    known = set(training["lesion_id"].dropna())
    return external["lesion_id"].notna() & external["lesion_id"].isin(known)
