"""Plotly figures the pages render; built here so pages stay thin and figures are testable.

Every class-coloured chart uses :data:`skinlab.core.classes.TIER_COLOURS`, so risk tiers look
the same everywhere.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from skinlab.core.classes import RISK_TIERS, TIER_COLOURS, class_info


def class_counts_frame(counts: pd.DataFrame) -> pd.DataFrame:
    """Long table (class, display name, tier, description, split, count, percent) from
    :meth:`skinlab.data.discovery.Dataset.counts`."""
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
                    "description": info.description,
                    "split": split,
                    "count": int(n),
                    "percent": 100.0 * int(n) / total,
                }
            )
    return pd.DataFrame(rows)


def class_counts_figure(counts: pd.DataFrame, *, percent: bool = False) -> go.Figure:
    """Bar chart of images per class, one panel per split, bars coloured by risk tier and
    grouped by tier (malignant first)."""
    frame = class_counts_frame(counts)
    value = "percent" if percent else "count"
    fig = px.bar(
        frame,
        x="display_name",
        y=value,
        color="risk_tier",
        facet_col="split",
        color_discrete_map=TIER_COLOURS,
        category_orders={"risk_tier": [t for t in RISK_TIERS if t in set(frame["risk_tier"])]},
        hover_data={
            "count": True,
            "percent": ":.1f",
            "display_name": False,
            "description": True,
        },
        labels={"display_name": "class", "count": "images", "percent": "% of split"},
    )
    fig.update_layout(legend_title_text="risk tier", margin={"t": 40, "b": 10}, height=420)
    fig.update_xaxes(tickangle=-35, title_text="")
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    return fig


def class_counts_table(counts: pd.DataFrame, *, percent: bool = False) -> pd.DataFrame:
    """``counts`` as shown beside the chart: images, or percent of each split (one decimal)."""
    if not percent:
        return counts
    totals = counts.sum().where(counts.sum() > 0)
    return (100 * counts / totals).round(1)


def image_size_figure(sizes: pd.DataFrame) -> go.Figure:
    """Histograms of width, height (pixels) and aspect ratio (width / height), side by side,
    from :func:`skinlab.app.gallery.size_frame`."""
    panels = (
        ("width", "width (px)"),
        ("height", "height (px)"),
        ("aspect_ratio", "width / height"),
    )
    fig = make_subplots(rows=1, cols=3, subplot_titles=[title for _, title in panels])
    for col, (column, title) in enumerate(panels, 1):
        values = sizes[column].dropna()
        start, size, end = _bins(values)
        fig.add_trace(
            go.Histogram(
                x=values,
                name=title,
                marker_color="#5d6d7e",
                xbins={"start": start, "end": end, "size": size},
            ),
            row=1,
            col=col,
        )
        # Half a bin of room on each side: autorange ended exactly at the last bin's edge,
        # and the rightmost bar was cut off at the plot's border.
        fig.update_xaxes(range=[start - size / 2, end + size / 2], row=1, col=col)
        fig.update_yaxes(title_text="images" if col == 1 else None, row=1, col=col)
    fig.update_layout(showlegend=False, height=300, margin={"t": 40, "b": 10}, bargap=0.05)
    return fig


def _bins(values: pd.Series, count: int = 40) -> tuple[float, float, float]:
    """``(start, size, end)`` of ``count`` equal bins centred on the smallest and on the
    largest value, so both extremes sit inside a bin, never on an edge (Plotly puts a
    value on an edge in the bin above, which made a sliver of a bar past the last one)."""
    low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    size = (high - low) / (count - 1) or 1.0
    return low - size / 2, size, high + size / 2


def mean_colour_figure(means: pd.DataFrame) -> go.Figure:
    """One bar per class, as tall as its mean brightness and painted its mean colour, from
    :attr:`skinlab.app.colours.ColourProfile.means`."""
    fig = go.Figure(
        go.Bar(
            x=means["display_name"],
            y=means["brightness"],
            marker_color=means["hex"],
            marker_line={"color": "#444", "width": 1},
            customdata=means[["r", "g", "b", "images"]].to_numpy(),
            text=means["hex"],
            textposition="outside",
            hovertemplate=(
                "%{x}<br>mean RGB %{customdata[0]:.0f}, %{customdata[1]:.0f}, "
                "%{customdata[2]:.0f}<br>from %{customdata[3]} images<extra></extra>"
            ),
        )
    )
    fig.update_layout(
        height=340,
        margin={"t": 20, "b": 10},
        yaxis={"title": "mean brightness (0-255)", "range": [0, 280]},
    )
    fig.update_xaxes(tickangle=-35)
    return fig


_CHANNEL_COLOURS = {"red": "#c0392b", "green": "#27ae60", "blue": "#2e86c1"}


def colour_histogram_figure(histograms: pd.DataFrame) -> go.Figure:
    """Red, green and blue histograms, one small panel per class, from
    :attr:`skinlab.app.colours.ColourProfile.histograms`."""
    classes = histograms["display_name"].drop_duplicates()
    wrap = 3
    fig = px.line(
        histograms,
        x="level",
        y="fraction",
        color="channel",
        facet_col="display_name",
        facet_col_wrap=wrap,
        facet_row_spacing=0.08,
        color_discrete_map=_CHANNEL_COLOURS,
        labels={"level": "intensity", "fraction": "share of pixels"},
    )
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    rows = -(-len(classes) // wrap)
    fig.update_layout(height=180 * rows + 60, margin={"t": 30, "b": 10}, legend_title_text="")
    fig.update_yaxes(matches=None, showticklabels=False, title_text="")
    return fig
