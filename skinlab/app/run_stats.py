"""Uncertainty of saved runs' scores, for the Runs page and ``python -m skinlab paired``:
bootstrap intervals of each run's scores and the paired comparison of two runs, both
computed from the runs' ``predictions.csv`` (so runs trained before issue 15 get them too).

Example::

    records = compare.load_runs(["run-a", "run-b"])
    intervals_table(records, "Test")              # "0.61 (0.52–0.70)" per score and run
    paired_runs(records[0], records[1], "Test")["verdict"]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from skinlab.app.compare import RunRecord, colours, read_predictions
from skinlab.core.errors import SkinlabError
from skinlab.evaluate.intervals import SCORES, intervals_from_predictions, paired_from_predictions


class PairingError(SkinlabError):
    """Two runs cannot be compared image by image (no shared scored images)."""


def split_predictions(record: RunRecord, split: str) -> pd.DataFrame:
    """The rows of ``split`` in the run's ``predictions.csv`` (empty when not evaluated).

    Raises:
        RunFileError: the file is malformed.
    """
    frame = read_predictions(record)
    return frame[frame["split"] == split].reset_index(drop=True)


def run_intervals(record: RunRecord, split: str) -> dict[str, Any] | None:
    """:func:`skinlab.evaluate.intervals.intervals_from_predictions` of the run on ``split``, over
    the model's classes; None when the run has no readable predictions there (the
    confusion tab says why a ``predictions.csv`` cannot be read) or they name more classes
    than a model can have."""
    try:
        frame = split_predictions(record, split)
    except SkinlabError:
        return None
    if frame.empty:
        return None
    names = list(record.manifest.class_names) if record.manifest else None
    # A manifest that does not fit: the table's own classes (if no more than a model has).
    for classes in (names, None) if names else (None,):
        try:
            return intervals_from_predictions(frame, classes)
        except ValueError:
            continue
    return None  # more classes than a model can have


def _cell(interval: dict[str, float | None]) -> str:
    if interval["estimate"] is None:
        return "–"
    return f"{interval['estimate']:.3f} ({interval['low']:.3f}–{interval['high']:.3f})"


def intervals_table(records: Sequence[RunRecord], split: str) -> pd.DataFrame:
    """One row per evaluated run: each score with its 95 % bootstrap interval, as text."""
    rows = []
    for record in records:
        found = run_intervals(record, split)
        if found is None:
            continue
        row = {"Run": record.label, "Images": found["n"]}
        row.update({title: _cell(found[key]) for key, title in SCORES.items()})
        rows.append(row)
    return pd.DataFrame(rows).set_index("Run") if rows else pd.DataFrame()


def recall_intervals_figure(records: Sequence[RunRecord], split: str) -> go.Figure:
    """Per-class recall of each run with its 95 % bootstrap interval as an error bar."""
    fig = go.Figure()
    colour = colours(records)
    for record in records:
        found = run_intervals(record, split)
        if found is None:
            continue
        recall = {k: v for k, v in found["per_class_recall"].items() if v["estimate"] is not None}
        names = list(recall)
        fig.add_trace(
            go.Scatter(
                x=names,
                y=[recall[n]["estimate"] for n in names],
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [recall[n]["high"] - recall[n]["estimate"] for n in names],
                    "arrayminus": [recall[n]["estimate"] - recall[n]["low"] for n in names],
                },
                mode="markers",
                name=record.label,
                marker={"color": colour[record.label], "size": 9},
            )
        )
    fig.update_layout(
        height=380,
        yaxis={"range": [0, 1.05], "title": "recall (95% interval)"},
        margin={"t": 30},
        legend={"orientation": "h", "y": 1.1},
        scattermode="group",
    )
    return fig


def paired_runs(a: RunRecord, b: RunRecord, split: str) -> dict[str, Any]:
    """:func:`skinlab.evaluate.intervals.paired_from_predictions` of two runs on ``split``, with the
    runs' labels in the verdict.

    Raises:
        PairingError: either run has no predictions on ``split`` or they share no image.
        RunFileError: a ``predictions.csv`` is malformed.
    """
    frame_a, frame_b = split_predictions(a, split), split_predictions(b, split)
    missing = [r.label for r, f in ((a, frame_a), (b, frame_b)) if f.empty]
    if missing:
        raise PairingError(f"{' and '.join(missing)} has no {split} predictions to compare.")
    try:
        result = paired_from_predictions(frame_a, frame_b, names=(a.label, b.label))
    except ValueError as exc:
        raise PairingError(
            f"{a.label} and {b.label} were not scored on the same {split} images, so they "
            "cannot be compared image by image."
        ) from exc
    return {"run_a": a.run_id, "run_b": b.run_id, "split": split, **result}


def paired_table(result: dict[str, Any]) -> pd.DataFrame:
    """The differences (A minus B) of :func:`paired_runs` with their intervals, as text."""
    rows = [
        {
            "Score": title,
            "A minus B": f"{d['estimate']:+.3f}" if d["estimate"] is not None else "–",
            "95% interval": (
                f"{d['low']:+.3f} to {d['high']:+.3f}" if d["estimate"] is not None else "–"
            ),
        }
        for key, title in SCORES.items()
        for d in [result["difference"][key]]
    ]
    return pd.DataFrame(rows).set_index("Score")
