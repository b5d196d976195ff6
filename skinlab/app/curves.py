"""Learning curves: the figures that make overfitting visible, and the rule that says so.

The notebook's lesson is overfitting, so the gap between training and validation curves is
shaded, and :func:`overfitting_signal` says in one sentence when the gap widens.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from skinlab.core.runs import RunStatus

_TRAIN_COLOUR = "#1f77b4"
_VAL_COLOUR = "#d62728"
#: Up to this many epochs every epoch gets its tick; Plotly's own choice for a short run
#: is 0.2 or 0.5 apart (epoch 1.2, 1.4, ...), which no epoch is.
_EVERY_EPOCH_UP_TO = 12


def _line(x, y, name: str, colour: str | None = None, **extra) -> go.Scatter:
    line = {"color": colour} if colour else None
    return go.Scatter(x=x, y=y, name=name, mode="lines+markers", line=line, **extra)


def _epoch_axis(fig: go.Figure, epochs: pd.Series) -> None:
    """Whole-number epoch ticks: one per epoch for short runs, Plotly's spacing (whole
    numbers only) for longer ones."""
    last = int(epochs.max()) if len(epochs) and pd.notna(epochs.max()) else 0
    if last <= _EVERY_EPOCH_UP_TO:
        fig.update_xaxes(tick0=1, dtick=1)
    fig.update_xaxes(tickformat="d", title_text="epoch")


def learning_curve_figure(
    history: pd.DataFrame,
    metric: str = "accuracy",
    *,
    title: str | None = None,
    in_progress: tuple[float, float] | None = None,
) -> go.Figure:
    """Train vs validation ``metric`` per epoch, with the gap between them shaded.

    Args:
        history: rows of ``history.csv`` (columns ``epoch``, ``<metric>``, ``val_<metric>``).
        metric: ``"accuracy"`` or ``"loss"``.
        in_progress: ``(x, value)`` for the epoch still running: its running training
            ``metric`` so far, at ``x`` = finished epochs + the share of this epoch's
            batches done (:func:`in_progress_point`). Drawn as one hollow marker, never
            joined to the line: it is not an epoch.
    """
    fig = go.Figure()
    train = history[metric] if metric in history else pd.Series(dtype=float)
    val = history.get(f"val_{metric}")
    epochs = history["epoch"] if "epoch" in history else pd.Series(dtype=int)
    if val is not None and val.notna().any():
        # Fill between the two curves: draw validation, then train filled "tonexty".
        fig.add_trace(_line(epochs, val, f"validation {metric}", _VAL_COLOUR))
        fig.add_trace(
            _line(
                epochs,
                train,
                f"training {metric}",
                _TRAIN_COLOUR,
                fill="tonexty",
                fillcolor="rgba(214, 39, 40, 0.12)",
                hovertemplate="epoch %{x}<br>training %{y:.3f}<extra></extra>",
            )
        )
    else:
        fig.add_trace(_line(epochs, train, f"training {metric}", _TRAIN_COLOUR))
    if in_progress is not None:
        x, value = in_progress
        fig.add_trace(
            go.Scatter(
                x=[x],
                y=[value],
                mode="markers",
                name="epoch in progress",
                marker={"color": _TRAIN_COLOUR, "size": 10, "symbol": "circle-open"},
                hovertemplate="epoch in progress<br>training so far %{y:.3f}<extra></extra>",
            )
        )
        epochs = pd.concat([epochs, pd.Series([math.ceil(x)])], ignore_index=True)
    _epoch_axis(fig, epochs)
    fig.update_layout(
        title=title or metric.capitalize(),
        yaxis_title=metric,
        height=320,
        margin={"t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.25},
        hovermode="x unified",
    )
    return fig


def in_progress_point(status: RunStatus, metric: str) -> tuple[float, float] | None:
    """Where a live run's current epoch stands on the curve of ``metric``: ``(finished
    epochs + share of batches done, running training value)``, or ``None`` between epochs
    and once the run has ended."""
    value = status.running_loss if metric == "loss" else status.running_accuracy
    if value is None or status.state not in ("running", "stopping") or not status.total_batches:
        return None
    done = min(status.batch / status.total_batches, 1.0)
    return max(status.epoch - 1, 0) + done, value


def band_figure(bands: dict[str, pd.DataFrame], *, title: str, yaxis: str) -> go.Figure:
    """Seed repeats: per entry of ``bands`` (``{"validation": frame, ...}``, frames from
    :func:`skinlab.jobs.repeats.epoch_bands`), the mean over the runs as a line and mean ± sd
    shaded around it: how far runs that differ only in their seed land apart."""
    fig = go.Figure()
    colours = {"training": _TRAIN_COLOUR, "validation": _VAL_COLOUR}
    epochs = []
    for label, band in bands.items():
        if band.empty:
            continue
        colour = colours.get(label.split()[0], _TRAIN_COLOUR)
        spread = band["sd"].fillna(0.0)
        fig.add_trace(
            go.Scatter(
                x=pd.concat([band["epoch"], band["epoch"][::-1]]),
                y=pd.concat([band["mean"] + spread, (band["mean"] - spread)[::-1]]),
                fill="toself",
                fillcolor=_rgba(colour, 0.18),
                line={"width": 0},
                name=f"{label} mean ± sd",
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            _line(
                band["epoch"],
                band["mean"],
                f"{label} mean",
                colour,
                customdata=band[["sd", "n"]].to_numpy(),
                hovertemplate="epoch %{x}<br>mean %{y:.3f} ± %{customdata[0]:.3f}"
                " (n=%{customdata[1]})<extra></extra>",
            )
        )
        epochs.append(band["epoch"])
    _epoch_axis(fig, pd.concat(epochs) if epochs else pd.Series(dtype=int))
    fig.update_layout(
        title=title,
        yaxis_title=yaxis,
        height=320,
        margin={"t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def _rgba(hex_colour: str, alpha: float) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def compare_curves_figure(
    histories: dict[str, pd.DataFrame], metric: str = "val_accuracy"
) -> go.Figure:
    """One line per run (``{run label: history}``) for ``metric``, for comparing runs."""
    fig = go.Figure()
    shown = {k: h for k, h in histories.items() if metric in h and h[metric].notna().any()}
    for label, history in shown.items():
        fig.add_trace(_line(history["epoch"], history[metric], label))
    epochs = [h["epoch"] for h in shown.values()]
    _epoch_axis(fig, pd.concat(epochs) if epochs else pd.Series(dtype=int))
    fig.update_layout(
        yaxis_title=metric,
        height=360,
        margin={"t": 30, "b": 10},
        hovermode="x unified",
    )
    return fig


def overfitting_signal(
    history: pd.DataFrame, *, window: int = 3, threshold: float = 0.1
) -> str | None:
    """A sentence when the train/validation accuracy gap is wide and widening, else ``None``.

    The gap is training accuracy minus validation accuracy; it "widens" when its mean over
    the last ``window`` epochs exceeds ``threshold`` and grew compared with the window before.
    """
    if "val_accuracy" not in history or len(history) < 2 * window:
        return None
    gap = (history["accuracy"] - history["val_accuracy"]).dropna()
    if len(gap) < 2 * window:
        return None
    recent, before = gap.iloc[-window:].mean(), gap.iloc[-2 * window : -window].mean()
    if recent > threshold and recent > before + 0.02:
        return (
            f"Overfitting: training accuracy is now {recent:.0%} above validation accuracy and the "
            "gap is widening; try stronger augmentation, more dropout, or stop earlier."
        )
    return None


def best_epoch(history: pd.DataFrame, metric: str = "val_loss", mode: str = "min") -> int | None:
    """The epoch with the best ``metric`` (None when the metric is missing)."""
    if metric not in history or history[metric].notna().sum() == 0:
        return None
    row = history[metric].idxmin() if mode == "min" else history[metric].idxmax()
    return int(history.loc[row, "epoch"])
