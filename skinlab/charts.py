"""Plotly figures the pages render; built here so pages stay thin and figures are testable.

Every class-coloured chart uses :data:`skinlab.classes.TIER_COLOURS`, so risk tiers look
the same everywhere.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from skinlab.classes import TIER_COLOURS, class_info


def class_counts_frame(counts: pd.DataFrame) -> pd.DataFrame:
    """Long table (class, display name, tier, split, count, percent) from
    :meth:`skinlab.discovery.Dataset.counts`."""
    rows = []
    for split in counts.columns:
        total = int(counts[split].sum()) or 1
        for label, n in counts[split].items():
            info = class_info(label)
            rows.append(
                {
                    "class": label,
                    "display_name": info.display_name,
                    "risk_tier": info.risk_tier,
                    "split": split,
                    "count": int(n),
                    "percent": 100.0 * int(n) / total,
                }
            )
    return pd.DataFrame(rows)


def class_counts_figure(counts: pd.DataFrame, *, percent: bool = False) -> go.Figure:
    """Bar chart of images per class, one panel per split, bars coloured by risk tier."""
    frame = class_counts_frame(counts)
    value = "percent" if percent else "count"
    fig = px.bar(
        frame,
        x="display_name",
        y=value,
        color="risk_tier",
        facet_col="split",
        color_discrete_map=TIER_COLOURS,
        hover_data={"count": True, "percent": ":.1f", "display_name": False},
        labels={"display_name": "class", "count": "images", "percent": "% of split"},
    )
    fig.update_layout(legend_title_text="risk tier", margin={"t": 40, "b": 10}, height=420)
    fig.update_xaxes(tickangle=-35, title_text="")
    return fig
