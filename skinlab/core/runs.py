"""The run directory: the one place that knows what a training run writes, and where.

Each run is a folder ``models_dir()/<run_id>`` written by one training process and read,
while it is being written, by any number of app sessions. Every write goes through
:mod:`skinlab.core.atomic`, so readers never see a partial file and a killed run leaves every
file parseable. :func:`new_run` writes a run's first ``status.json``; every later change is
a step of the state machine in :mod:`skinlab.core.lifecycle`. Reading a run writes nothing.

Example::

    paths = new_run(RunConfig(backbone="custom"))     # state "queued"
    lifecycle.change(paths, "running", epoch=1)        # a step of the state machine
    append_history(paths, {"epoch": 1, "loss": 0.9, "phase": "train"})
    run_summary(paths)["state"]                        # 'running'

Why one module: it is the one place that knows the run folder's files: paths, status,
config, history, manifest, predictions, ids and lookups; a reader of the format finds all of
it here.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import re
import reprlib
import secrets
import stat
import time
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pandas as pd

from skinlab.core import disk
from skinlab.core.atomic import (
    RunFileError,
    open_regular,
    read_bounded,
    read_json,
    write_json,
    write_text,
)
from skinlab.core.config import RunConfig
from skinlab.core.errors import SkinlabError
from skinlab.core.manifest import MAX_CLASSES, Manifest
from skinlab.core.paths import models_dir

CONFIG = "config.json"
STATUS = "status.json"
HISTORY = "history.csv"
WEIGHTS = "best.weights.h5"
LAST_WEIGHTS = "last.weights.h5"
REQUEST = "request.json"
MANIFEST = "manifest.json"
METRICS = "metrics.json"
PREDICTIONS = "predictions.csv"
EXPORT = "model.keras"
LOG = "train.log"
TENSORBOARD = "tensorboard"
STOP_REQUEST = "STOP"

HISTORY_COLUMNS = (
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "epoch_time",
    "phase",
)
STATES = ("queued", "running", "stopping", "stopped", "finished", "failed")

#: Largest ``history.csv`` read (about 100 bytes an epoch: room for 100,000 epochs).
MAX_HISTORY_BYTES = 16 * 2**20
#: Largest ``predictions.csv`` read (about 200 bytes an image: room for 300,000 images).
MAX_PREDICTIONS_BYTES = 64 * 2**20
#: Most rows and columns read from ``history.csv`` (a row an epoch: the longest preset
#: trains 150) and ``predictions.csv`` (a row an image, a column a class): pandas' cost grows
#: with them, not with bytes alone (a 15 MB header of 1.9 M columns took 192 s and 5.9 GB).
MAX_HISTORY_ROWS = 10_000
MAX_HISTORY_COLUMNS = len(HISTORY_COLUMNS)
MAX_PREDICTIONS_ROWS = 300_000
MAX_PREDICTIONS_COLUMNS = 16 + MAX_CLASSES
#: The columns every ``predictions.csv`` has (then ``correct`` and ``p_<class>`` per class).
PREDICTION_COLUMNS = ("path", "split", "true", "predicted", "confidence")

_ID_TIME = "%Y%m%d-%H%M%S"


class RunNotFoundError(SkinlabError):
    """A run reference (id, id prefix or folder) does not name exactly one run."""


def _file(name: str) -> property:
    return property(lambda self: self.root / name, doc=f"``<run folder>/{name}``")


@dataclass(frozen=True)
class RunPaths:
    """The files of the run folder ``root``; only paths, nothing is read or created."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def run_id(self) -> str:
        return self.root.name

    config = _file(CONFIG)
    status = _file(STATUS)
    history = _file(HISTORY)
    weights = _file(WEIGHTS)
    manifest = _file(MANIFEST)
    metrics = _file(METRICS)
    predictions = _file(PREDICTIONS)
    export = _file(EXPORT)
    log = _file(LOG)
    tensorboard = _file(TENSORBOARD)
    stop_request = _file(STOP_REQUEST)
    last_weights = _file(LAST_WEIGHTS)
    request = _file(REQUEST)


@dataclass(frozen=True)
class RunStatus:
    """A run's live state, as saved in ``status.json``.

    Attributes:
        state: one of :data:`STATES`.
        epoch: current epoch, 1-based and counted across phases (0 before the first).
        total_epochs: epochs of all phases together.
        batch, total_batches: progress within the current epoch.
        images_per_second: training throughput, when measured.
        eta_seconds: estimated time to the end of training, when known.
        heartbeat: ``time.time()`` of the last write; a stale heartbeat means a dead writer.
        started, finished: ``time.time()`` when training started and ended.
        error: one sentence for a failed run.
        pid: process id of the training process.
        supervisor_pid: process id of the supervisor that waits on it (background runs),
            which records how the training process ended.
        phase: name of the training phase (``"train"`` for the first).
        pid_start, supervisor_start: start times of those processes
            (:func:`skinlab.core.processes.start_time`); with them a pid names one process, not
            whatever reuses the number later. ``None`` (older files) counts as not ours.
        running_loss, running_accuracy: training loss and accuracy averaged over the
            batches of the current epoch so far (``None`` between epochs): the live curve
            shows them as the epoch in progress from its first batch on, never as an epoch.
    """

    state: str
    epoch: int = 0
    total_epochs: int = 0
    batch: int = 0
    total_batches: int = 0
    images_per_second: float | None = None
    eta_seconds: float | None = None
    heartbeat: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    pid: int | None = None
    supervisor_pid: int | None = None
    phase: str = "train"
    pid_start: int | None = None
    supervisor_start: int | None = None
    running_loss: float | None = None
    running_accuracy: float | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}; got '{self.state}'.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunStatus:
        """Build from a dict, ignoring unknown keys (files written by newer versions).

        Raises:
            ValueError: a known key holds a value of the wrong type (``"pid": "abc"``) or
                ``state`` is not one of :data:`STATES`.
        """
        # Strings, not types: this module has ``from __future__ import annotations``.
        types = {f.name: cast(str, f.type) for f in fields(cls)}
        return cls(**{k: _typed(k, types[k], v) for k, v in data.items() if k in types})


def new_run(config: RunConfig, *, root: Path | None = None) -> RunPaths:
    """Create a run folder for ``config`` with status ``queued`` and return its paths.

    The id is ``<UTC yyyymmdd-HHMMSS>-<backbone>-<6 hex>``; folders are created
    exclusively, so runs started in the same second by different processes never share one.
    """
    parent = Path(root) if root is not None else models_dir()
    parent.mkdir(parents=True, exist_ok=True)
    backbone = re.sub(r"[^A-Za-z0-9_]+", "_", config.backbone) or "model"
    stamp = datetime.now(UTC).strftime(_ID_TIME)
    for _ in range(100):
        folder = parent / f"{stamp}-{backbone}-{secrets.token_hex(3)}"
        try:
            os.mkdir(folder)
        except FileExistsError:
            continue
        paths = RunPaths(folder)
        # Status first: list_runs only shows folders that have a config, so a listed run
        # always has a status too.
        write_status(paths, RunStatus("queued", total_epochs=config.total_epochs))
        write_text(paths.config, config.to_json() + "\n", parent)
        return paths
    raise FileExistsError(f"Could not create a unique run folder in {parent}; try again.")


def _typed(name: str, annotation: str, value: Any) -> Any:
    """``value`` checked against a :class:`RunStatus` annotation (``"int | None"``)."""
    kind, optional = annotation.removesuffix(" | None"), annotation.endswith(" | None")
    if value is None and optional:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "int" and number and isinstance(value, int):
        return value
    if kind == "float" and number:
        return float(value)
    if kind == "str" and isinstance(value, str):
        return value
    wanted = {"int": "a whole number", "float": "a number", "str": "text"}[kind]
    raise ValueError(f"its {name} is {reprlib.repr(value)}, not {wanted}")


def write_status(paths: RunPaths, status: RunStatus) -> None:
    """Atomically replace the run's ``status.json``: the raw write under
    :func:`skinlab.core.lifecycle.change` (and :func:`new_run`'s first status), which checks
    the step against the state machine; tests call it to forge a state.

    The writer also records the start time of the processes it can vouch for when the
    status names them without one: itself as ``pid`` and its parent as ``supervisor_pid``.
    That is how the training process of a background run, which knows only the pids, keeps
    the identity :mod:`skinlab.jobs.manager` checks before it trusts or signals one. A
    process that writes itself as the trainer of an active run also holds the run folder
    open (:func:`skinlab.core.processes.hold`), which no file can forge for another process.

    The file is written inside the run folder's own models folder, never through a link
    (:func:`skinlab.core.atomic.atomic_path` with that folder as the root).
    """
    from skinlab.core import processes

    if status.pid == os.getpid():
        if status.pid_start is None:
            status = dataclasses.replace(status, pid_start=processes.start_time(status.pid))
        processes.hold(paths.root, status.state in ("queued", "running", "stopping"))
    if status.supervisor_start is None and status.supervisor_pid == os.getppid():
        start = processes.start_time(status.supervisor_pid)
        status = dataclasses.replace(status, supervisor_start=start)
    write_json(paths.status, status.to_dict(), paths.root.parent)


def read_status(paths: RunPaths) -> RunStatus:
    """The run's status.

    Raises:
        RunFileError: ``status.json`` is missing or malformed.
    """
    data = _read_required(paths, paths.status)
    try:
        return RunStatus.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise RunFileError(
            f"{paths.status} does not hold a valid run status ({str(exc).rstrip('.')}); "
            "delete the run or restore the file."
        ) from exc


def read_config(paths: RunPaths) -> RunConfig:
    """The run's configuration.

    Raises:
        RunFileError: ``config.json`` is missing, malformed or holds invalid values.
    """
    data = _read_required(paths, paths.config)
    try:
        return RunConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise RunFileError(f"{paths.config} does not hold a valid run config ({exc}).") from exc


def append_history(paths: RunPaths, row: dict[str, Any]) -> None:
    """Add one epoch to ``history.csv``, rewriting the whole file atomically.

    Keys outside :data:`HISTORY_COLUMNS` are dropped and missing ones left empty. Rows
    already in the file are kept (re-aligned to the current columns). The old rows are read
    without following a link (one to a file outside would copy it into the run).

    Raises:
        UnsafeFileError: the history or the run folder is a link or a special file, or the
            history is larger than :data:`MAX_HISTORY_BYTES`.
    """
    try:
        raw = disk.read_bytes(paths.history, paths.root.parent, MAX_HISTORY_BYTES)
        text = raw.decode("utf-8", errors="replace")
    except FileNotFoundError:
        text = ""
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    out = io.StringIO()
    writer = csv.DictWriter(out, HISTORY_COLUMNS, restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows([*rows, {k: "" if v is None else v for k, v in row.items()}])
    write_text(paths.history, out.getvalue(), paths.root.parent)


def read_history(paths: RunPaths) -> pd.DataFrame:
    """``history.csv`` as a frame with exactly :data:`HISTORY_COLUMNS` (empty when missing).

    Raises:
        RunFileError: the file cannot be parsed as CSV, or has more lines or columns than
            skinlab writes (:func:`read_table`).
    """
    frame = read_table(
        paths.history, MAX_HISTORY_BYTES, columns=MAX_HISTORY_COLUMNS, rows=MAX_HISTORY_ROWS
    )
    if frame is None:
        frame = pd.DataFrame(columns=list(HISTORY_COLUMNS))
    frame = frame.reindex(columns=list(HISTORY_COLUMNS))
    for column in HISTORY_COLUMNS[:-1]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    # An epoch is a count: a row without a finite one ("inf", text, nothing) is not an epoch
    # skinlab wrote, and would break every axis and "best epoch" drawn from it.
    frame = frame[frame["epoch"].abs() < float("inf")].reset_index(drop=True)
    frame["phase"] = frame["phase"].astype("string")
    return frame


def read_predictions(paths: RunPaths) -> pd.DataFrame:
    """``predictions.csv``: one row per evaluated image (empty before evaluation), with at
    least :data:`PREDICTION_COLUMNS`, ``confidence`` numeric.

    Raises:
        RunFileError: the file is not a predictions table, or has more lines or columns
            than skinlab writes (:func:`read_table`).
    """
    path = paths.predictions
    frame = read_table(
        path, MAX_PREDICTIONS_BYTES, columns=MAX_PREDICTIONS_COLUMNS, rows=MAX_PREDICTIONS_ROWS
    )
    if frame is None:
        return pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    missing = [c for c in PREDICTION_COLUMNS if c not in frame]
    if missing:
        raise RunFileError(f"{path} lacks the columns {', '.join(missing)}; retrain the run.")
    frame["confidence"] = pd.to_numeric(frame["confidence"], errors="coerce")
    return frame


def read_table(path: Path, max_bytes: int, *, columns: int, rows: int) -> pd.DataFrame | None:
    """The CSV file ``path`` as pandas reads it, or ``None`` when there is none.

    What pandas would build is bounded before it parses anything: the header line's columns
    and the file's lines are counted in the bytes (a quoted comma or line break, which
    skinlab never writes, only counts against the file). A longer data line is a parse
    error the moment pandas meets it.

    Raises:
        RunFileError: ``path`` is not a regular file, is larger than ``max_bytes``, has more
            than ``columns`` columns or ``rows`` lines, or is not CSV.
    """
    try:
        raw = read_bounded(path, max_bytes)
    except FileNotFoundError:
        return None
    newline = re.search(rb"[\r\n]", raw)
    found = raw.count(b",", 0, newline.start() if newline else len(raw)) + 1
    lines = max(raw.count(b"\n"), raw.count(b"\r"))  # \r\n, \n or a lone \r ends a line
    for count, most, what in ((found, columns, "columns"), (lines - 1, rows, "rows")):
        if count > most:
            raise RunFileError(
                f"{path} has {count:,} {what}, more than the {most:,} skinlab writes there; "
                "delete the run or restore the file."
            )
    try:
        return pd.read_csv(io.BytesIO(raw))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RunFileError(
            f"{path} is not a table skinlab could have written (its lines do not parse as CSV); "
            "delete the run or restore the file."
        ) from exc


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of the file at ``path`` (read in 1 MiB chunks).

    Raises:
        RunFileError: ``path`` is not a regular file (a FIFO or a link to a device would
            never end).
    """
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(paths: RunPaths, manifest: Manifest) -> None:
    """Atomically write ``manifest.json`` (what travels with the weights)."""
    write_json(paths.manifest, manifest.to_dict())


class ManifestError(RunFileError):
    """``manifest.json`` is valid JSON but cannot describe a model (edited by hand, or
    written by another program)."""


def read_manifest(paths: RunPaths) -> Manifest:
    """The run's manifest.

    Raises:
        RunFileError: ``manifest.json`` is missing (the run has not saved a model) or
            malformed.
        ManifestError: it is JSON, but not a manifest a model can be loaded with.
    """
    data = _read_required(paths, paths.manifest)
    try:
        return Manifest.from_dict(data)
    except ValueError as exc:
        raise ManifestError(
            f"Run {paths.run_id}'s manifest {exc}; it was edited by hand or written by "
            "another program, so restore it or retrain the run."
        ) from exc


def request_stop(paths: RunPaths) -> None:
    """Ask the training process of ``paths`` to stop after its current batch."""
    write_text(paths.stop_request, "", paths.root.parent)


def list_runs(root: Path | None = None) -> list[RunPaths]:
    """Run folders under ``root`` (default :func:`models_dir`), newest first.

    Hidden folders (temporary ones included) and folders without ``config.json`` are skipped,
    and so are links: a run is a real folder directly inside ``root``, so what skinlab writes
    for it stays there (a link to an outside folder holding a "running" status would have the
    scheduler rewrite that folder's files). So is a name that is not UTF-8 or holds a line
    break: a run id keys widgets, tables and links, and one such name crashed every page.
    """
    parent = Path(root) if root is not None else models_dir()
    if not parent.is_dir():
        return []
    runs = [
        RunPaths(parent / entry.name)
        for entry in os.scandir(parent)
        if not entry.name.startswith(".")
        and entry.name.isprintable()  # no line break, no undecodable byte (a lone surrogate)
        and entry.is_dir(follow_symlinks=False)
        and _is_plain_file(parent / entry.name / CONFIG)
    ]
    # Ids have one-second resolution; the config's mtime orders runs made in the same second.
    return sorted(runs, key=lambda p: (_created(p) or 0.0, _mtime(p.config) or 0.0), reverse=True)


@dataclass(frozen=True)
class RunSummary:
    """One row of a runs table, read from a run folder at one moment (:func:`run_summary`).

    Attributes:
        run_id: the folder's name.
        name: the run's display name (its id when unnamed); ``None`` when the config is
            unreadable.
        backbone: the config's backbone; ``None`` when the config is unreadable.
        state: one of :data:`STATES`, or ``"broken"`` when a file is missing or malformed.
        epoch, total_epochs: progress, from ``status.json``.
        best_val_accuracy: the best validation accuracy in ``history.csv``.
        balanced_accuracy: the validation section of ``metrics.json``, once evaluated.
        created: ``time.time()`` style, from the run id (else the config's mtime).
        error: one sentence for a failed or broken run.
    """

    run_id: str
    name: str | None = None
    backbone: str | None = None
    state: str = "broken"
    epoch: int | None = None
    total_epochs: int | None = None
    best_val_accuracy: float | None = None
    balanced_accuracy: float | None = None
    created: float | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        """A short, unique label: the run's name with the end of its id, or the id alone."""
        name = self.name
        return f"{name} ({self.run_id[-6:]})" if name and name != self.run_id else self.run_id

    def to_dict(self) -> dict[str, Any]:
        """The row as ``runs list --json`` prints it."""
        return dataclasses.asdict(self)


def run_summary(paths: RunPaths, *, scores: bool = True) -> RunSummary:
    """One row for a runs table; never raises. A run whose files are missing or malformed
    gets state ``"broken"`` and the reason in ``error``.

    Args:
        scores: read ``history.csv`` and ``metrics.json`` for the row's scores; a picker
            that needs only the state and the model (the sidebar's, drawn on every page for
            every run) passes ``False`` and gets ``None`` scores, and a damaged history or
            metrics file then does not mark the run broken.
    """
    read: dict[str, Any] = {}
    try:
        read["config"] = read_config(paths)
        read["status"] = read_status(paths)
        if scores:
            read["history"] = read_history(paths)
            read["metrics"] = read_json(paths.metrics, default={})
        if paths.manifest.exists():
            read_manifest(paths)  # a run whose model cannot even be described is broken
    except SkinlabError as exc:
        return summarise(paths, **read, error=str(exc))
    except Exception as exc:  # a runs table must list every folder, however broken
        detail = " ".join(str(exc).split()).rstrip(".")
        return summarise(
            paths,
            **read,
            error=f"Run {paths.run_id} could not be read ({type(exc).__name__}: {detail}); "
            "delete the run or restore its files.",
        )
    return summarise(paths, **read)


def summarise(
    paths: RunPaths,
    config: RunConfig | None = None,
    status: RunStatus | None = None,
    history: pd.DataFrame | None = None,
    metrics: Any = None,
    *,
    error: str | None = None,
) -> RunSummary:
    """The runs-table row of what was read of a run folder (``None``: not read, or not
    readable); ``error`` marks the run broken and says why. :func:`run_summary` reads the
    files for it; :func:`skinlab.core.record.read_run` passes the files it read once."""
    val_accuracy = None if history is None else history["val_accuracy"].max()
    validation = metrics.get("validation") if isinstance(metrics, dict) else None
    balanced = validation.get("balanced_accuracy") if isinstance(validation, dict) else None
    balanced = None if isinstance(balanced, bool) else balanced
    return RunSummary(
        run_id=paths.run_id,
        name=None if config is None else config.name or paths.run_id,
        backbone=None if config is None else config.backbone,
        state="broken" if error or status is None else status.state,
        epoch=None if status is None else status.epoch,
        total_epochs=None if status is None else status.total_epochs,
        best_val_accuracy=None
        if val_accuracy is None or pd.isna(val_accuracy)
        else float(val_accuracy),
        balanced_accuracy=float(balanced) if isinstance(balanced, int | float) else None,
        created=_created(paths),
        error=error or (None if status is None else status.error),
    )


def resolve_run(ref: str | Path, *, root: Path | None = None) -> RunPaths:
    """The run named by ``ref``: a run folder path, a run id, or a unique id prefix.

    Ids and prefixes are looked up under ``root`` (default :func:`models_dir`).

    Raises:
        RunNotFoundError: no run, or more than one, matches ``ref``.
    """
    text = str(ref).strip()
    if not text:
        raise RunNotFoundError("No run was given; pass a run id, an id prefix or a run folder.")
    as_path = Path(text).expanduser()
    if isinstance(ref, Path) or as_path.is_absolute() or len(as_path.parts) > 1:
        if (as_path / CONFIG).is_file():
            return RunPaths(as_path)
        raise RunNotFoundError(f"{as_path} is not a run folder (it has no {CONFIG}).")
    parent = Path(root) if root is not None else models_dir()
    # An id names a real folder of the models folder, as list_runs lists them: a link planted
    # there (issue 29) is not a run.
    if not (parent / text).is_symlink() and (parent / text / CONFIG).is_file():
        return RunPaths(parent / text)
    matches = [p for p in list_runs(parent) if p.run_id.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunNotFoundError(f"No run in {parent} matches '{text}'; list runs to see their ids.")
    shown = ", ".join(p.run_id for p in matches[:3]) + (", ..." if len(matches) > 3 else "")
    raise RunNotFoundError(
        f"'{text}' matches {len(matches)} runs ({shown}); give more of the run id."
    )


def _read_required(paths: RunPaths, path: Path) -> dict[str, Any]:
    data = read_json(path)
    if data is None:
        raise RunFileError(
            f"Run {paths.run_id} has no {path.name} yet; wait for it or pick another run."
        )
    if not isinstance(data, dict):
        raise RunFileError(f"{path} does not hold a JSON object; delete the run or restore it.")
    return data


def _is_plain_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _created(paths: RunPaths) -> float | None:
    """Creation time from the run id, else the config's modification time."""
    try:
        return datetime.strptime(paths.run_id[:15], _ID_TIME).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return _mtime(paths.config)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None
