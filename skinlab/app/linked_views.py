"""Linked views of a dataset (Altair): click a class bar or brush the image-size or
brightness histogram, and every chart highlights the images inside all the selections.

Altair's selections are declarative: one spec holds three selection parameters and each
chart's highlighted layer filters on all of them, so the charts follow each other in the
browser without a round trip (Plotly cannot link separate figures that way). The page
also gets the selections back (``st.altair_chart(on_select="rerun")``) and
:func:`selected` turns them into the rows under the gallery.

Example::

    frame = image_frame(dataset.table)
    event = st.altair_chart(linked_chart(frame), on_select="rerun", key="linked")
    rows = selected(frame, event.selection)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from skinlab.app.gallery import sample_per_class
from skinlab.data.near_duplicates import tiny_images

#: Names of the selection parameters (also the keys of the selection the page gets back).
CLASSES, SIZE, BRIGHTNESS = "classes", "size", "brightness"
#: Images per class measured (decoding every image of a big dataset would take minutes).
PER_CLASS = 150
_HIGHLIGHT, _BACKGROUND = "#2e86c1", "#d5d8dc"


def image_frame(table: pd.DataFrame, per_class: int = PER_CLASS, seed: int = 0) -> pd.DataFrame:
    """Up to ``per_class`` readable images of each class of a scan's ``table`` with what
    the charts show: ``relpath, path, content_hash, split, label, width`` (pixels) and
    ``brightness`` (mean grey level of a thumbnail, 0-255)."""
    readable = table[table["error"].isna()]
    rows = sample_per_class(readable, per_class, seed=seed).reset_index(drop=True)
    pixels = tiny_images(list(rows["path"])).astype(np.float32)
    means = pixels.reshape(len(rows), -1, 3).mean(axis=1) if len(rows) else np.zeros((0, 3))
    frame = rows[["relpath", "path", "content_hash", "split", "label"]].copy()
    frame["width"] = rows["width"].astype(float)
    frame["brightness"] = means.mean(axis=1).round(1)
    return frame


def linked_chart(frame: pd.DataFrame) -> alt.VConcatChart:
    """Class bars above the width and brightness histograms, linked by three selections."""
    data = frame[["label", "width", "brightness"]]
    classes = alt.selection_point(name=CLASSES, fields=["label"])
    size = alt.selection_interval(name=SIZE, encodings=["x"])
    bright = alt.selection_interval(name=BRIGHTNESS, encodings=["x"])
    chosen = [classes, size, bright]

    def layered(x: alt.X, y: alt.Y, own: Any, title: str) -> alt.LayerChart | alt.FacetChart:
        base = alt.Chart(data).encode(x=x, y=y)
        background = base.mark_bar(color=_BACKGROUND).add_params(own)
        highlight = base.mark_bar(color=_HIGHLIGHT)
        for selection in chosen:
            highlight = highlight.transform_filter(selection)
        return alt.layer(background, highlight).properties(title=title, height=160)

    bars = layered(
        alt.X("label:N", title=None, sort="-y"),
        alt.Y("count():Q", title="images"),
        classes,
        "Click a class (shift-click for more)",
    ).properties(width=560)
    width = layered(
        alt.X("width:Q", bin=alt.Bin(maxbins=30), title="image width (px)"),
        alt.Y("count():Q", title="images"),
        size,
        "Drag across widths",
    )
    brightness = layered(
        alt.X("brightness:Q", bin=alt.Bin(maxbins=30), title="mean brightness (0-255)"),
        alt.Y("count():Q", title="images"),
        bright,
        "Drag across brightness",
    )
    return alt.vconcat(bars, alt.hconcat(width, brightness))


def selected(frame: pd.DataFrame, selection: Mapping[str, Any] | None) -> pd.DataFrame:
    """The rows of ``frame`` inside every selection of ``selection`` (the ``selection`` of
    ``st.altair_chart``'s result: ``{"classes": [{"label": ...}], "size": {"width": [lo,
    hi]}, ...}``); an empty or missing selection keeps every row."""
    selection = selection or {}
    keep = pd.Series(True, index=frame.index)
    labels = {p.get("label") for p in selection.get(CLASSES) or [] if isinstance(p, Mapping)}
    if labels:
        keep &= frame["label"].isin(labels)
    for name, field in ((SIZE, "width"), (BRIGHTNESS, "brightness")):
        bounds = (selection.get(name) or {}).get(field)
        if bounds and len(bounds) == 2:
            low, high = sorted(float(b) for b in bounds)
            keep &= frame[field].between(low, high)
    return frame[keep]


def describe(selection: Mapping[str, Any] | None) -> str:
    """``"melanoma, nevus · width 100-180 px"`` for the selection, or ``"all images"``."""
    selection = selection or {}
    parts = []
    labels = [p.get("label") for p in selection.get(CLASSES) or [] if isinstance(p, Mapping)]
    if labels:
        parts.append(", ".join(str(label) for label in labels))
    for name, field, unit in ((SIZE, "width", " px"), (BRIGHTNESS, "brightness", "")):
        bounds = (selection.get(name) or {}).get(field)
        if bounds and len(bounds) == 2:
            low, high = sorted(float(b) for b in bounds)
            parts.append(f"{field} {low:.0f}-{high:.0f}{unit}")
    return " · ".join(parts) or "all images"
