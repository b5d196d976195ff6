"""Comparing training runs: the table, figures and example images of the Runs page.

Everything here reads run folders, never a live training process, through the one typed
reader (:func:`skinlab.core.record.read_run`): loading a run never raises for a malformed
file, it keeps what it could read and says what it could not in ``RunRecord.problems``, so
one damaged run cannot take a comparison down.

Example::

    records = load_runs([s.run_id for s in manager.list_summaries()[:2]])
    metrics_table(records, "Test")                     # one row per run
    confusion_figure(*confusion(records[0], "Test"), normalise=True)
    examples(records[0], "Test", true="melanoma")      # melanomas it got wrong

Why one module: the Runs page's table, figures and example images all read the same
``RunRecord``, and the shape check of ``load_run`` runs every builder once so a foreign
``metrics.json`` fails in one place.
"""

from __future__ import annotations

import dataclasses
import html
import io
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from pandas.io.formats.style import Styler
from PIL import Image

from skinlab.app import curves
from skinlab.core import runs
from skinlab.core.atomic import RunFileError, open_regular
from skinlab.core.confine import confine_run, within
from skinlab.core.errors import InvalidImageError, SkinlabError
from skinlab.core.manifest import MAX_CLASSES
from skinlab.core.record import RunRecord, read_run
from skinlab.data.images import decode_image
from skinlab.data.overrides import RAW
from skinlab.evaluate.calibration import separation_note

#: Splits the evaluation sections can show; Test first because it is never trained on.
SPLITS: tuple[str, ...] = ("Test", "Val")
_SECTIONS = {"Val": "validation", "Test": "test"}
_PALETTE = px.colors.qualitative.Plotly
#: Most bins a reliability table may have (skinlab's have 10 or 15).
_MAX_BINS = 100
#: The numeric columns of :func:`metrics_table`, and whether higher is better.
METRIC_COLUMNS: dict[str, bool] = {
    "Accuracy": True,
    "Balanced accuracy": True,
    "Macro F1": True,
    "Melanoma sensitivity": True,
    "ECE": False,
    "Clean test balanced accuracy": True,
    "Best val accuracy": True,
}


def split_metrics(record: RunRecord, split: str) -> dict[str, Any] | None:
    """The metrics of ``split`` ("Val" or "Test"), or ``None`` when not evaluated."""
    return record.section(_SECTIONS[split])


def separation_notes(records: list[RunRecord]) -> list[tuple[RunRecord, str]]:
    """The runs whose validation split was (nearly) perfectly separated, so calibration
    had nothing to learn from, each with the sentence that says so."""
    notes = ((r, separation_note(r.section("calibration"))) for r in records)
    return [(r, note) for r, note in notes if note]


def load_run(ref: str | Path) -> RunRecord:
    """Read a run (id, prefix or folder) for comparison (:func:`skinlab.core.record.read_run`);
    metrics of a shape the page cannot draw become one more problem.

    Raises:
        RunNotFoundError: no such run (deleted meanwhile, for instance).
    """
    record = read_run(ref)
    shape = _metrics_problem(record)
    if shape:
        record = dataclasses.replace(record, metrics={}, problems=(*record.problems, shape))
    return record


def _metrics_problem(record: RunRecord) -> str | None:
    """Why the run's metrics cannot be shown (they are valid JSON of another shape), or None.

    Everything the page builds from them is built once here, so a hand-edited or foreign
    ``metrics.json`` becomes one sentence instead of an exception halfway through the page.
    """
    try:
        _check_sizes(record.metrics)
        for split in SPLITS:
            metrics_table([record], split)
            per_class_recall([record], split)
            matrix = confusion(record, split)
            if matrix is not None and matrix[0].shape != (len(matrix[1]),) * 2:
                raise ValueError("its confusion matrix does not match its class list")
        reliability_figure([record])
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        return f"{record.paths.metrics} is not in the shape skinlab writes ({exc}); its scores are left out."
    return None


def _check_sizes(metrics: dict[str, Any]) -> None:
    """Refuse metrics whose per-class parts are larger than any model's, before anything is
    built from them: the page's work grows with what the file claims (a bar per class, a
    confusion matrix of the class count squared cells; 1,000 classes took 457 s).

    Raises:
        ValueError: the reason, as the end of a sentence; TypeError: a part is not a list.
    """
    for split in SPLITS:
        scores = metrics.get(_SECTIONS[split])
        if not isinstance(scores, dict):
            continue
        side = len(scores.get("class_names") or ())
        for part in ("class_names", "per_class"):
            if len(scores.get(part) or ()) > MAX_CLASSES:
                raise ValueError(f"its {split} {part} has more than {MAX_CLASSES} classes")
        matrix = scores.get("confusion_matrix")
        if matrix is not None and (len(matrix) != side or any(len(r) != side for r in matrix)):
            raise ValueError(f"its {split} confusion matrix is not one row and column a class")
    calibration = found if isinstance(found := metrics.get("calibration"), dict) else {}
    for when in ("before", "after"):
        if len(calibration.get(f"reliability_{when}") or ()) > _MAX_BINS:
            raise ValueError(f"its reliability table has more than {_MAX_BINS} bins")


def load_runs(run_ids: Iterable[str]) -> list[RunRecord]:
    """:func:`load_run` for each id, skipping runs that no longer exist."""
    records = []
    for run_id in run_ids:
        try:
            records.append(load_run(run_id))
        except runs.RunNotFoundError:
            continue
    return records


def default_selection(summaries: Sequence[runs.RunSummary], limit: int = 3) -> list[str]:
    """The newest finished runs (``summaries`` newest first), else the newest readable one."""
    finished = [s.run_id for s in summaries if s.state == "finished"]
    readable = [s.run_id for s in summaries if s.state != "broken"]
    return finished[:limit] or readable[:1]


def metrics_table(records: Sequence[RunRecord], split: str) -> pd.DataFrame:
    """One row per run (indexed by label): scores on ``split`` and what the run was.

    Scores are NaN where a run has none yet. ECE is the validation ECE after temperature
    scaling. The clean-test score leaves out the Test images the audit found leaked or
    conflicting (``Excluded from clean test`` says how many; with none excluded it is the
    Test score).
    """
    rows = []
    for record in records:
        scores = split_metrics(record, split) or {}
        test = split_metrics(record, "Test") or {}
        clean = found if isinstance(found := test.get("clean"), dict) else {}
        if not clean and test.get("excluded") == 0:
            clean = test  # nothing was excluded: the clean test set is the whole test set
        summary = record.summary
        rows.append(
            {
                "Run": record.label,
                "State": summary.state,
                "Accuracy": scores.get("accuracy"),
                "Balanced accuracy": scores.get("balanced_accuracy"),
                "Macro F1": scores.get("macro_f1"),
                "Melanoma sensitivity": (scores.get("melanoma") or {}).get("sensitivity"),
                "ECE": (record.section("calibration") or {}).get("ece_after"),
                "Clean test balanced accuracy": clean.get("balanced_accuracy"),
                "Excluded from clean test": test.get("excluded"),
                "Best val accuracy": summary.best_val_accuracy,
                "Backbone": summary.backbone,
                "Image size": record.manifest.image_size if record.manifest else None,
                # The dataset version it trained on (issue 17): "raw" is the folder as it is.
                "Data version": record.manifest.data_version if record.manifest else RAW,
                "Epochs": f"{summary.epoch or 0}/{summary.total_epochs or '?'}",
                "Best epoch": record.metrics.get("best_epoch") or curves.best_epoch(record.history),
            }
        )
    table = pd.DataFrame(rows).set_index("Run") if rows else pd.DataFrame()
    for column in table.columns.intersection(list(METRIC_COLUMNS)):
        table[column] = pd.to_numeric(table[column], errors="coerce").astype(float)
    for column in table.columns.intersection(
        ["Image size", "Best epoch", "Excluded from clean test"]
    ):
        table[column] = pd.to_numeric(table[column], errors="coerce").astype("Int64")
    return table


def best_in_column(table: pd.DataFrame) -> dict[str, str]:
    """``{metric column: label of the best run}`` for the columns where runs differ."""
    best = {}
    for column, higher in METRIC_COLUMNS.items():
        values = table[column].dropna() if column in table else pd.Series(dtype=float)
        if values.nunique() > 1:
            best[column] = str(values.idxmax() if higher else values.idxmin())
    return best


def styled_metrics(table: pd.DataFrame) -> Styler:
    """:func:`metrics_table` for display: three decimals, "–" for missing, best shaded."""
    best = best_in_column(table)

    def shade(column: pd.Series) -> list[str]:
        winner = best.get(str(column.name))
        return ["background-color: #d5f5e3" if row == winner else "" for row in column.index]

    scores = [c for c in METRIC_COLUMNS if c in table]
    return table.style.apply(shade).format(precision=3, na_rep="–", subset=scores)


def colours(records: Sequence[RunRecord]) -> dict[str, str]:
    """One colour per run label, in the order of ``records``, shared by every figure."""
    return {r.label: _PALETTE[i % len(_PALETTE)] for i, r in enumerate(records)}


def curves_figure(
    records: Sequence[RunRecord], metric: str = "accuracy", *, include_train: bool = False
) -> go.Figure:
    """Validation ``metric`` per epoch, one colour per run; training curves dotted."""
    histories = {r.label: r.history for r in records}
    fig = curves.compare_curves_figure(histories, f"val_{metric}")
    if include_train:
        for trace in curves.compare_curves_figure(histories, metric).data:
            fig.add_trace(trace.update(name=f"{trace.name} (train)", line={"dash": "dot"}))
    colour = colours(records)
    for trace in fig.data:
        trace.update(line={"color": colour[trace.name.removesuffix(" (train)")]})
    fig.update_layout(
        title=f"{'Validation and training' if include_train else 'Validation'} {metric}",
        yaxis_title=metric,
        legend={"orientation": "h", "y": -0.25},
    )
    last = max(
        (int(r.history["epoch"].max()) for r in records if r.history["epoch"].notna().any()),
        default=1,
    )
    fig.update_xaxes(dtick=max(1, -(-last // 10)))  # whole epochs, at most ~10 ticks
    return fig


def per_class_recall(records: Sequence[RunRecord], split: str) -> pd.DataFrame:
    """Long frame ``[Run, Class, Recall, Support]`` of every evaluated run on ``split``."""
    rows = [
        {"Run": r.label, "Class": name, "Recall": s.get("recall"), "Support": s.get("support")}
        for r in records
        for name, s in ((split_metrics(r, split) or {}).get("per_class") or {}).items()
    ]
    return pd.DataFrame(rows, columns=["Run", "Class", "Recall", "Support"])


def recall_figure(frame: pd.DataFrame, colour: dict[str, str] | None = None) -> go.Figure:
    """Per-class recall bars grouped by run (a frame from :func:`per_class_recall`);
    ``colour`` maps run labels to colours (:func:`colours`)."""
    fig = px.bar(
        frame,
        x="Class",
        y="Recall",
        color="Run",
        barmode="group",
        hover_data={"Support": True},
        range_y=[0, 1],
        color_discrete_sequence=_PALETTE,
        color_discrete_map=colour or {},
    )
    # Plotly Express writes each run's label into its hover text, which no escaping of the
    # data reaches: the hover names the trace instead (its name is escaped where drawn).
    fig.update_traces(
        hovertemplate="Run=%{fullData.name}<br>Class=%{x}<br>Recall=%{y}<br>"
        "Support=%{customdata[0]}<extra></extra>"
    )
    classes = list(dict.fromkeys(frame["Class"]))
    fig.update_xaxes(title=None, tickvals=classes, ticktext=[_wrap(c) for c in classes])
    fig.update_layout(
        height=400,
        margin={"t": 60},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "title": None},
    )
    return fig


def _wrap(name: str) -> str:
    # One word per line keeps nine class names readable without tilting them.
    return name.replace(" ", "<br>")


def confusion(record: RunRecord, split: str) -> tuple[np.ndarray, list[str]] | None:
    """``(counts, class names)`` of ``split``, rows true and columns predicted, or ``None``."""
    scores = split_metrics(record, split)
    if not scores or "confusion_matrix" not in scores:
        return None
    return np.asarray(scores["confusion_matrix"], dtype=float), list(scores["class_names"])


def confusion_figure(
    counts: np.ndarray, class_names: Sequence[str], *, normalise: bool = False, title: str = ""
) -> go.Figure:
    """Confusion-matrix heatmap (rows true, columns predicted), counts or row shares.

    Each cell also carries an invisible marker: Streamlit reports clicks on scatter
    points but not on heatmap cells (streamlit#8760), so clicking a cell selects the
    marker, whose ``x``/``y`` are the predicted and true class (see :func:`clicked_cell`).
    """
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    shown = shares if normalise else counts
    text = [[f"{v:.0%}" if normalise else f"{v:.0f}" for v in row] for row in shown]
    names = list(class_names)
    fig = go.Figure(
        go.Heatmap(
            z=shown,
            x=names,
            y=names,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1 if normalise else None,
            showscale=False,
            hoverinfo="skip",
        )
    )
    true, predicted = np.meshgrid(np.arange(len(names)), np.arange(len(names)), indexing="ij")
    fig.add_trace(
        go.Scatter(
            x=[names[j] for j in predicted.ravel()],
            y=[names[i] for i in true.ravel()],
            customdata=np.stack([counts.ravel(), shares.ravel()], axis=-1),
            mode="markers",
            marker={"symbol": "square-open", "size": 30, "opacity": 0, "color": "#c0392b"},
            selected={"marker": {"opacity": 1}},
            unselected={"marker": {"opacity": 0}},
            hovertemplate=(
                "true %{y}<br>predicted %{x}<br>%{customdata[0]:.0f} images "
                "(%{customdata[1]:.0%} of the true class)<extra></extra>"
            ),
            showlegend=False,
        )
    )
    fig.update_layout(
        title=title,
        height=520,
        margin={"t": 40, "l": 10, "r": 10, "b": 10},
        xaxis={
            "title": "predicted",
            "tickvals": names,
            "ticktext": [_wrap(n) for n in names],
            "tickangle": 0,
            "tickfont": {"size": 11},
        },
        yaxis={"title": "true", "autorange": "reversed"},
        hovermode="closest",
        hoverdistance=-1,  # the nearest cell answers anywhere in the plot
        clickmode="event+select",
    )
    return fig


def clicked_cell(event: Any) -> tuple[str, str] | None:
    """``(true, predicted)`` of the cell clicked in :func:`confusion_figure`, if any.

    ``event`` is what ``st.plotly_chart(..., on_select="rerun")`` returns (or a dict). The
    figure is drawn through :func:`skinlab.app.ui.plain_figure`, so the browser sends the
    class names back escaped (``&lt;b&gt;``): they are unescaped to the names the run uses.
    """
    selection = event.get("selection") if hasattr(event, "get") else None
    points = (selection or {}).get("points") or []
    for point in points:
        if "x" in point and "y" in point:
            return html.unescape(str(point["y"])), html.unescape(str(point["x"]))
    return None


def _with_gaps(table: Sequence[dict]) -> list[dict | None]:
    """The non-empty bins of a reliability table in order, with ``None`` wherever empty bins
    separate two of them (leading and trailing empty bins are dropped)."""
    path: list[dict | None] = []
    for row in table:
        if row.get("count"):
            path.append(row)
        elif path and path[-1] is not None:
            path.append(None)
    return path[:-1] if path and path[-1] is None else path


def reliability_figure(records: Sequence[RunRecord]) -> go.Figure:
    """Reliability diagram of each run before (dashed) and after (solid) temperature scaling.

    Points are the non-empty confidence bins of ``metrics.json`` (sized by how many images
    they hold); a line joins only neighbouring non-empty bins, so it never crosses an empty
    one. The diagonal is perfect calibration. The legend gives each curve's ECE and the
    fitted temperature. Runs without calibration are left out.
    """
    fig = go.Figure(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfect calibration",
            line={"color": "#7f8c8d", "dash": "dot"},
        )
    )
    colour = colours(records)
    for record in records:
        calibration = record.section("calibration") or {}
        for when, dash in (("before", "dash"), ("after", "solid")):
            table = calibration.get(f"reliability_{when}") or []
            bins = [b for b in table if b.get("count")]
            if not bins:
                continue
            # An empty bin becomes a gap (None), so no line is drawn through it: on a small
            # validation set most bins are empty, and joining across them zig-zagged.
            path = _with_gaps(table)
            facts = (
                [f"ECE {calibration[f'ece_{when}']:.3f}"] if f"ece_{when}" in calibration else []
            )
            if when == "after" and "temperature" in calibration:
                facts.insert(0, f"T={calibration['temperature']:.2f}")
            biggest = max(b["count"] for b in bins)
            fig.add_trace(
                go.Scatter(
                    x=[b and b["confidence"] for b in path],
                    y=[b and b["accuracy"] for b in path],
                    customdata=[b and b["count"] for b in path],
                    mode="lines+markers",
                    connectgaps=False,
                    name=f"{record.label} {when}" + (f" ({', '.join(facts)})" if facts else ""),
                    line={"color": colour[record.label], "dash": dash},
                    marker={
                        "size": [b and 5 + 13 * (b["count"] / biggest) ** 0.5 or 0 for b in path]
                    },
                    hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>"
                    "%{customdata} images<extra></extra>",
                )
            )
    fig.update_layout(
        xaxis={"title": "mean confidence", "range": [0, 1]},
        yaxis={"title": "accuracy", "range": [0, 1]},
        height=480,
        margin={"t": 30},
        legend={"orientation": "h", "yanchor": "top", "y": -0.3},
    )
    return fig


def read_predictions(record: RunRecord) -> pd.DataFrame:
    """``predictions.csv`` of a run (:func:`skinlab.core.runs.read_predictions`).

    Raises:
        RunFileError: the file is not a predictions table.
    """
    return runs.read_predictions(record.paths)


def image_root(record: RunRecord) -> Path | None:
    """The dataset folder the run was evaluated on (where its prediction paths point)."""
    root = record.manifest.data_root if record.manifest else None
    if not root:
        try:
            root = runs.read_config(record.paths).data_root
        except SkinlabError:
            return None
    return Path(root)


def examples(
    record: RunRecord, split: str, *, true: str | None = None, predicted: str | None = None
) -> pd.DataFrame:
    """Images of ``split`` for one confusion-matrix cell, most confident first.

    ``true`` / ``predicted`` filter the classes (``None``: any). Only mistakes are listed,
    except for a diagonal cell (``true == predicted``), which lists the correct ones.
    Columns: ``path`` (in the dataset), ``image`` (absolute path), ``true``, ``predicted``,
    ``confidence``.

    Raises:
        RunFileError: ``predictions.csv`` is malformed.
    """
    frame = read_predictions(record)
    rows = frame[frame["split"] == split]
    if true:
        rows = rows[rows["true"] == true]
    if predicted:
        rows = rows[rows["predicted"] == predicted]
    if not (true and true == predicted):
        rows = rows[rows["true"] != rows["predicted"]]
    rows = rows.sort_values("confidence", ascending=False, kind="stable")
    root = image_root(record) or Path()
    out = rows[["path", "true", "predicted", "confidence"]].reset_index(drop=True)
    out.insert(1, "image", [str(root / p) for p in out["path"]])
    return out


def thumbnail(path: str | Path, size: int = 160) -> Image.Image | None:
    """A small RGB copy of the image at ``path``, or ``None`` when it cannot be read or is not
    a regular file (a ``predictions.csv`` row can name a pipe, whose read never ends)."""
    try:
        with open_regular(Path(path)) as handle:
            image = decode_image(handle, draft_size=(size, size))
    except (InvalidImageError, RunFileError, OSError):
        return None
    image.thumbnail((size, size))
    return image


def gallery(frame: pd.DataFrame, limit: int = 24) -> tuple[list[Image.Image], list[str], int]:
    """Thumbnails and captions of the first ``limit`` rows of :func:`examples`, and how many
    of those images could not be read (moved or deleted since the run).

    ``predictions.csv`` and the manifest's ``data_root`` are files anyone with the models
    folder can edit, so an image outside the app's folders (an absolute or ``../`` path, a
    link) counts as unreadable: it is never opened.
    """
    images, captions = [], []
    for row in frame.head(limit).itertuples():
        allowed = within(row.image)
        image = thumbnail(allowed) if allowed is not None else None
        if image is not None:
            images.append(image)
            captions.append(f"{row.true} → {row.predicted} ({row.confidence:.0%})")
    return images, captions, min(limit, len(frame)) - len(images)


def export_bundle(run_id: str) -> bytes:
    """Zip of the run's Keras export bundle (:func:`skinlab.predict.export.export_run`), whose
    files sit under a ``<run id>-keras/`` folder.

    Raises:
        PathNotAllowedError: the run folder leads outside the models folder (a link).
        SkinlabError: as :func:`skinlab.predict.export.export_run` (no saved model, ...).
    """
    # Imported here: the export module loads TensorFlow, which only a download needs.
    from skinlab.predict.export import export_run

    folder = Path(export_run(confine_run(run_id), "keras"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, Path(f"{run_id}-keras") / file.relative_to(folder))
    return buffer.getvalue()
