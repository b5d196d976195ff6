"""What a run's data options do, shown before training: augmented samples and the class
counts before and after imbalance treatment.

Both mirror training exactly: the preview calls the same augmentation block the model
holds (:func:`skinlab.model.augment.augmentation_layers`), and the counts come from the same
hash-grouped split and rebalancing (:func:`skinlab.train.imbalance.counts_after`) on the
training side of the Train split.

Example::

    picks = pick_samples(dataset.images("Train"), n=4)
    views = augmented_views(decode_samples(picks["path"]), "strong", strength=1.0, seed=0)
    frame = balance_counts(dataset.images("Train"), "oversample", val_fraction=0.2, seed=123)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from keras import ops

from skinlab.core.classes import class_info
from skinlab.data.pipeline import decode_table, label_indices
from skinlab.data.splits import train_val_split
from skinlab.model.augment import augmentation_layers
from skinlab.model.colour import colour_constancy_layer
from skinlab.train.imbalance import counts_after

#: Side of the decoded preview images; augmentation ranges are relative, so the size only
#: sets how sharp the thumbnails are.
PREVIEW_SIZE = 128

_BEFORE_COLOUR = "#9e9e9e"
_AFTER_COLOUR = "#1f77b4"


def _readable(table: pd.DataFrame) -> pd.DataFrame:
    return table if "error" not in table.columns else table[table["error"].isna()]


def pick_samples(table: pd.DataFrame, n: int = 4) -> pd.DataFrame:
    """``n`` readable rows of ``table`` to preview, one per class first (classes and files in
    name order, so the same table gives the same samples); fewer when the table is smaller.
    A ``caption`` column holds each class's display name."""
    rows = _readable(table).sort_values(["label", "relpath"], kind="stable")
    first = rows.groupby("label", sort=True).head(1)
    picks = pd.concat([first, rows.drop(first.index)]).head(n)
    return picks.assign(caption=[class_info(label).display_name for label in picks["label"]])


def decode_samples(paths: Sequence[str], size: int = PREVIEW_SIZE) -> np.ndarray:
    """The images at ``paths`` as ``uint8 (len(paths), size, size, 3)``, decoded as training
    decodes them.

    Raises:
        InvalidImageError: a file can no longer be decoded.
    """
    return decode_table(pd.DataFrame({"path": list(paths)}), size)


def augmented_views(
    images: np.ndarray,
    preset: str,
    strength: float,
    seed: int,
    views: int = 2,
    *,
    frame: float = 0.0,
    colour_constancy: str = "none",
) -> list[np.ndarray]:
    """``views`` augmented versions of the batch ``images``, as training would see them.

    Each view is the model's colour constancy (``RunConfig.colour_constancy``) followed by
    its augmentation block (with ``frame`` randomisation) called with ``training=True``; the
    same arguments give the same views. Empty when neither changes the images, or for no
    images.

    Raises:
        ValueError: unknown preset or colour constancy, or a negative strength.
    """
    block = augmentation_layers(preset, strength, seed, frame=frame)
    constancy = colour_constancy_layer(colour_constancy)
    if (block is None and constancy is None) or len(images) == 0:
        return []
    batch = images.astype("float32")
    if constancy is not None:
        batch = constancy(batch)
    out = [batch if block is None else block(batch, training=True) for _ in range(views)]
    return [np.clip(ops.convert_to_numpy(view), 0, 255).astype(np.uint8) for view in out]


def balance_counts(
    train_table: pd.DataFrame, strategy: str, val_fraction: float, seed: int
) -> pd.DataFrame:
    """Training images per class before and after ``strategy``, as a run would see them.

    The Train split is split into training and validation like training does (same
    fraction and seed), and only the training side is counted and rebalanced.

    Returns:
        One row per class (name order): ``class``, ``display_name``, ``risk_tier``,
        ``before`` and ``after``; for class weights "after" is the effective (weighted)
        count. Empty when there are no readable images.

    Raises:
        ValueError: unknown strategy or a ``val_fraction`` out of range.
    """
    rows = _readable(train_table)
    columns = ["class", "display_name", "risk_tier", "before", "after"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    class_names = sorted(set(rows["label"]))  # training's rule: the classes Train has
    train, _ = train_val_split(rows, val_fraction, seed)
    if train.empty:
        return pd.DataFrame(columns=columns)
    counts = counts_after(label_indices(train, class_names), strategy, len(class_names), seed)
    infos = [class_info(name) for name in class_names]
    return pd.DataFrame(
        {
            "class": class_names,
            "display_name": [i.display_name for i in infos],
            "risk_tier": [i.risk_tier for i in infos],
            "before": counts["before"].astype(int),
            "after": np.round(counts["after"], 1),
        },
        columns=columns,
    )


_BALANCE_NOTES = {
    "none": "The classes stay as they are: the model sees the common classes far more often.",
    "class_weights": "Every image is kept, and each class's loss is weighted so that all "
    "classes count equally (bars: images × weight).",
    "oversample": "Rare classes are repeated until each has as many images as the largest; "
    "augmentation makes every repeat a new variant.",
    "balanced_sampling": "Each epoch draws as many images as there are, every class equally "
    "often, afresh each epoch (bars: expected draws per epoch); rare images repeat, common "
    "ones take turns.",
    "logit_adjustment": "Every image is seen once per epoch, as it is; the loss adds each "
    "class's share of the images to its score, so the model has to beat a common class's "
    "head start and answers as if the classes were balanced.",
}


def balance_note(strategy: str) -> str:
    """One sentence on what ``strategy`` does to the counts."""
    return _BALANCE_NOTES[strategy]


def balance_figure(frame: pd.DataFrame, strategy: str) -> go.Figure:
    """Grouped bars of :func:`balance_counts`: each class before and after treatment."""
    weighted = strategy == "class_weights"
    drawn = strategy == "balanced_sampling"
    fig = go.Figure(
        [
            go.Bar(
                x=frame["display_name"],
                y=frame["before"],
                name="before",
                marker_color=_BEFORE_COLOUR,
            ),
            go.Bar(
                x=frame["display_name"],
                y=frame["after"],
                name="after (effective, weighted)"
                if weighted
                else "after (expected per epoch)"
                if drawn
                else "after",
                marker_color=_AFTER_COLOUR,
            ),
        ]
    )
    fig.update_layout(
        barmode="group",
        yaxis_title="training images" + (" (weighted)" if weighted else ""),
        height=320,
        margin={"t": 30, "b": 10},
        legend={"orientation": "h", "y": 1.12},
    )
    fig.update_xaxes(tickangle=-35)
    return fig
