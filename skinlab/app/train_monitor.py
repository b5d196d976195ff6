"""Watching background runs from the Train page: which run to show, its progress as text,
its final metrics, and the runs table.

Everything here reads the run folders (:mod:`skinlab.core.runs`, :mod:`skinlab.jobs.manager`); no
process handle is ever kept, so a reloaded page or a second tab sees the same run.

Example::

    summaries = manager.list_summaries()
    view = load_run(run_to_show(summaries, chosen=None))
    for fraction, text in progress_lines(view.status): ...

Why one module: which run the Train page watches, its progress text and the runs table are
read together on every refresh.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pandas as pd

from skinlab.app.curves import best_epoch
from skinlab.app.train_form import describe_config
from skinlab.core import runs
from skinlab.core.atomic import RunFileError
from skinlab.core.config import RunConfig
from skinlab.core.confine import confine_run
from skinlab.core.errors import SkinlabError
from skinlab.core.record import read_run
from skinlab.data.discovery import Dataset
from skinlab.jobs import manager
from skinlab.jobs.repeats import start_repeats
from skinlab.train.features import FEATURES_PHASE
from skinlab.train.preflight import preflight

#: States in which a run is still going (or about to).
LIVE = ("queued", *manager.ACTIVE)
#: Seconds between two looks of the Train page's live panels: while a run is starting (no
#: curve point yet) the user watches for its first sign of life, and each second counts
#: (issue 12: click to first point <= 5 s); once it moves, a point per 1.5 s is live enough
#: and costs the training less CPU; with nothing going, only to notice a run started elsewhere.
STARTING_REFRESH_SECONDS, LIVE_REFRESH_SECONDS, IDLE_REFRESH_SECONDS = 0.5, 1.5, 5.0
#: Colours of the state badges (st.badge colour names).
BadgeColour = Literal["gray", "blue", "orange", "violet", "green", "red"]
STATE_COLOURS: dict[str, BadgeColour] = {
    "queued": "gray",
    "running": "blue",
    "stopping": "orange",
    "stopped": "violet",
    "finished": "green",
    "failed": "red",
    "broken": "red",
}


@dataclass(frozen=True)
class RunView:
    """What the page shows of one run, read from its folder at one moment."""

    run_id: str
    name: str
    status: runs.RunStatus
    config: RunConfig
    history: pd.DataFrame
    metrics: dict[str, float | None] | None
    can_predict: bool
    can_resume: bool = False

    @property
    def live(self) -> bool:
        return self.status.state in LIVE


def run_to_show(summaries: list[runs.RunSummary], chosen: str | None) -> str | None:
    """The run the page shows: the ``chosen`` id while it exists, else the newest run still
    going, else the newest run; ``None`` when there are none. ``summaries`` are newest first
    (:func:`skinlab.jobs.manager.list_summaries`)."""
    ids = [s.run_id for s in summaries]
    if chosen in ids:
        return chosen
    live = [s.run_id for s in summaries if s.state in LIVE]
    return next(iter(live or ids), None)


def is_starting(status: runs.RunStatus) -> bool:
    """Whether a run is running but has nothing on its curves yet (no batch of its first
    epoch has finished)."""
    return (
        status.state == "running"
        and status.running_loss is None
        and status.epoch <= 1
        and not status.batch
    )


def refresh_seconds(summaries: list[runs.RunSummary]) -> float:
    """How often the Train page should look at the runs (:data:`STARTING_REFRESH_SECONDS`,
    :data:`LIVE_REFRESH_SECONDS` or :data:`IDLE_REFRESH_SECONDS`), given
    :func:`skinlab.jobs.manager.list_summaries`."""
    live = [s.run_id for s in summaries if s.state in LIVE]
    if not live:
        return IDLE_REFRESH_SECONDS
    for run_id in live:
        try:
            if is_starting(runs.read_status(runs.resolve_run(run_id))):
                return STARTING_REFRESH_SECONDS
        except SkinlabError:
            continue  # its panel says what is wrong with it
    return LIVE_REFRESH_SECONDS


def load_run(run_id: str) -> RunView:
    """Read a run's status, config, history and final metrics.

    Raises:
        RunNotFoundError, RunFileError: the run is gone or its files are unreadable.
        PathNotAllowedError: ``run_id`` leads outside the models folder.
    """
    paths = confine_run(run_id)
    record = read_run(paths, status=manager.observe(paths))
    for name in (runs.CONFIG, runs.HISTORY, runs.METRICS):
        if name in record.unreadable:
            raise RunFileError(record.problems[record.unreadable.index(name)])
    status, config = record.status, record.config
    assert status is not None and config is not None  # observe and config raised, or read
    return RunView(
        run_id=paths.run_id,
        name=config.name or paths.run_id,
        status=status,
        config=config,
        history=record.history,
        metrics=final_metrics(record.metrics),
        can_predict=status.state in ("finished", "stopped") and paths.manifest.exists(),
        can_resume=status.state in ("stopped", "failed") and manager.can_resume(paths),
    )


def final_metrics(metrics: dict[str, Any] | None) -> dict[str, float | None] | None:
    """The headline validation scores of ``metrics.json``: balanced accuracy, macro-F1 and
    melanoma sensitivity (``None`` where not measured); ``None`` without a validation part."""
    validation = (metrics or {}).get("validation") if isinstance(metrics, dict) else None
    if not isinstance(validation, dict):
        return None
    melanoma = validation.get("melanoma") or {}
    return {
        "Balanced accuracy": validation.get("balanced_accuracy"),
        "Macro-F1": validation.get("macro_f1"),
        "Melanoma sensitivity": melanoma.get("sensitivity"),
    }


def format_duration(seconds: float | None) -> str:
    """``5`` -> ``"5 s"``, ``125`` -> ``"2 min 05 s"``, ``7260`` -> ``"2 h 01 min"``;
    ``"–"`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def progress_lines(status: runs.RunStatus) -> list[tuple[float, str]]:
    """The progress bars of a live run as ``(fraction 0..1, text)``: epochs (with the ETA)
    and batches of the current epoch (with images per second). Empty for a run that is not
    training (queued, or already ended)."""
    if status.state not in manager.ACTIVE:
        return []
    if status.phase == "evaluate":
        return [(1.0, "Training done: evaluating the best epoch on validation and test…")]
    if status.phase == FEATURES_PHASE:
        done = _fraction(status.batch, status.total_batches)
        return [(done, "Computing the frozen backbone's features once, so the head trains fast…")]
    if not status.epoch:
        return [(0.0, "Starting: loading the images and building the model…")]
    total = max(status.total_epochs, 1)
    phase = "" if status.phase == "train" else f" ({status.phase})"
    epochs = f"Epoch {status.epoch} of {status.total_epochs}{phase}"
    if status.eta_seconds is not None:
        eta = status.eta_seconds
        epochs += " · almost done" if eta < 1 else f" · about {format_duration(eta)} left"
    done = (status.epoch - 1 + _fraction(status.batch, status.total_batches)) / total
    batches = f"Batch {status.batch} of {status.total_batches or '?'}"
    if status.images_per_second:
        batches += f" · {status.images_per_second:.0f} images/s"
    return [
        (min(max(done, 0.0), 1.0), epochs),
        (_fraction(status.batch, status.total_batches), batches),
    ]


def _fraction(done: int, total: int) -> float:
    return min(done / total, 1.0) if total else 0.0


def _latest(history: pd.DataFrame) -> dict[str, float | None]:
    """The last finished epoch's loss, accuracies and learning rate (``None`` where missing)."""
    if history.empty:
        return {}
    row = history.iloc[-1]
    return {
        column: None if pd.isna(row[column]) else float(row[column])
        for column in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")
    }


def runs_table(summaries: list[runs.RunSummary]) -> pd.DataFrame:
    """The queue/history table: one row per run (newest first) with its state, progress,
    config summary and best validation scores."""
    rows = []
    for summary in summaries:
        try:
            config = describe_config(runs.read_config(runs.resolve_run(summary.run_id)))
        except Exception:  # a broken run still gets its row (its error says why)
            config = "–"
        created = summary.created
        epoch, total = summary.epoch, summary.total_epochs
        rows.append(
            {
                "run": summary.name or summary.run_id,
                "state": summary.state,
                "epochs": f"{epoch or 0}/{total}" if total else "–",
                "config": config,
                "best val accuracy": summary.best_val_accuracy,
                "balanced accuracy": summary.balanced_accuracy,
                "created": datetime.fromtimestamp(created, UTC) if created else None,
                "error": summary.error or "",
                "run id": summary.run_id,
            }
        )
    return pd.DataFrame(rows)


def launch(config: RunConfig, dataset: Dataset, repeats: int = 1) -> runs.RunPaths:
    """Run the pre-flight (:func:`skinlab.train.preflight.preflight`), then start ``config`` as a
    background run, or as ``repeats`` runs with seeds ``seed``, ``seed + 1``, ... in one
    group (:func:`skinlab.jobs.repeats.start_repeats`; they queue behind each other).

    Returns at once with the (first) run's paths (the running run's, when the same config is
    already going).

    Raises:
        DatasetLayoutError: the dataset cannot be trained on.
        WeightsUnavailableError: ImageNet weights asked for but not available (offline).
        SkinlabError: not enough free disk space.
    """
    preflight(config, dataset)
    return start_repeats(config, repeats)[0]


def latest_metrics(history: pd.DataFrame) -> list[tuple[str, str]]:
    """The four headline numbers of the last finished epoch as ``(label, text)``: training
    and validation accuracy, validation loss, and the epoch's learning rate."""
    last = _latest(history)
    if not last:
        return []

    def text(key: str, spec: str) -> str:
        value = last.get(key)
        return "–" if value is None else format(value, spec)

    return [
        (f"Training accuracy (epoch {last['epoch']:.0f})", text("accuracy", ".1%")),
        ("Validation accuracy", text("val_accuracy", ".1%")),
        ("Validation loss", text("val_loss", ".3f")),
        ("Learning rate", text("learning_rate", ".3g")),
    ]


def just_ended(seen: MutableMapping[Any, Any], view: RunView) -> bool:
    """True the first time ``view`` is seen ended after having been seen live, so a page can
    refresh what depends on finished runs; ``seen`` (session state) remembers the states."""
    states = seen.setdefault("train_seen_states", {})
    before, states[view.run_id] = states.get(view.run_id), view.status.state
    return before in LIVE and not view.live


def run_labels(summaries: list[runs.RunSummary]) -> dict[str, str]:
    """``{run id: "name · state"}`` for a run picker, newest first."""
    return {s.run_id: f"{s.name or s.run_id} · {s.state}" for s in summaries}


def ending_note(view: RunView) -> str | None:
    """How an ended run ended, when the state alone does not say: stopped on request, or
    finished before its last epoch (early stopping or the time budget)."""
    status, done = view.status, len(view.history)
    if status.state == "stopped" and not status.error:
        return (
            f"Stopped on request after {done} of {status.total_epochs} epochs; the best "
            "epoch's weights were kept and evaluated. Resume continues from the last epoch."
        )
    if status.state == "finished" and 0 < done < status.total_epochs:
        return (
            f"Finished early, after {done} of {status.total_epochs} epochs (early stopping or "
            "the time budget)."
        )
    return None


def scores_heading(view: RunView) -> str:
    """The heading of the final scores, naming the epoch whose weights were kept."""
    best = best_epoch(view.history, "val_loss") or best_epoch(view.history, "loss")
    kept = f"weights of epoch {best}, the lowest validation loss" if best else "best weights"
    return f"**Final validation scores** ({kept})"
