"""One typed reader of a run folder: everything a table, a page, the command line or a bench
knows of a run, read once into a :class:`RunRecord`.

The run's files are named and parsed in :mod:`skinlab.core.runs` (status, config, history,
manifest); this module puts them together and turns what cannot be read into sentences, so a
reader never meets a half-parsed dict. Each file is read once: the record's runs-table row
(:func:`skinlab.core.runs.summarise`) is made from the same reads.

Example::

    record = read_run("20261127-174611")          # an id, a prefix or a folder
    record.summary.state, record.summary.label    # 'finished', 'cpu-best (c3f9e3)'
    record.section("validation")["balanced_accuracy"]
    record.problems                               # () when every file was readable
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from skinlab.core import runs
from skinlab.core.atomic import read_json
from skinlab.core.config import RunConfig
from skinlab.core.errors import SkinlabError
from skinlab.core.manifest import Manifest


@dataclass(frozen=True)
class RunRecord:
    """What could be read of one run folder at one moment.

    Attributes:
        paths: the run's files.
        summary: its row of a runs table (:func:`skinlab.core.runs.run_summary`).
        history: ``history.csv`` (empty before the first epoch, or when unreadable).
        metrics: ``metrics.json`` (``{}`` until the run is evaluated, or when unreadable).
        manifest: ``manifest.json`` (``None`` until a model is saved, or when unreadable).
        status: ``status.json``, or the state a caller observed (``None`` when unreadable).
        config: ``config.json`` (``None`` when unreadable).
        problems: one sentence per file that exists but could not be read.
        unreadable: the names of those files (``"history.csv"``, ...).
    """

    paths: runs.RunPaths
    summary: runs.RunSummary
    history: pd.DataFrame
    metrics: dict[str, Any]
    manifest: Manifest | None
    problems: tuple[str, ...] = ()
    status: runs.RunStatus | None = None
    config: RunConfig | None = None
    unreadable: tuple[str, ...] = ()

    @property
    def run_id(self) -> str:
        return self.paths.run_id

    @property
    def label(self) -> str:
        return self.summary.label

    def section(self, key: str) -> dict[str, Any] | None:
        """A part of ``metrics.json`` (``"validation"``, ``"test"``, ``"calibration"``), or
        ``None`` when the run has none."""
        value = self.metrics.get(key)
        return value if isinstance(value, dict) else None


def read_run(ref: str | Path | runs.RunPaths, *, status: runs.RunStatus | None = None) -> RunRecord:
    """Read a run (id, prefix, folder or paths); unreadable files become ``problems``.

    Args:
        status: the state the caller observed (:func:`skinlab.jobs.manager.observe`: a dead
            run shows as failed); default: ``status.json`` as it is.

    Raises:
        RunNotFoundError: no such run (deleted meanwhile, for instance).
    """
    paths = ref if isinstance(ref, runs.RunPaths) else runs.resolve_run(ref)
    problems: dict[str, str] = {}  # file name -> the sentence why it could not be read
    config = _attempt(problems, runs.CONFIG, runs.read_config, paths)
    if status is None:
        status = _attempt(problems, runs.STATUS, runs.read_status, paths)
    history = _attempt(problems, runs.HISTORY, runs.read_history, paths)
    metrics = _attempt(problems, runs.METRICS, _read_metrics, paths)
    manifest = (
        _attempt(problems, runs.MANIFEST, runs.read_manifest, paths)
        if paths.manifest.exists()
        else None
    )
    # The row is what runs.run_summary would make of the same files: the first file that
    # failed (in its reading order) marks the run broken.
    broken = next(iter(problems.values()), None)
    summary = runs.summarise(paths, config, status, history, metrics, error=broken)
    if metrics is not None and not isinstance(metrics, dict):
        problems[runs.METRICS] = f"{paths.metrics} does not hold a JSON object; it was ignored."
    return RunRecord(
        paths=paths,
        summary=summary,
        history=pd.DataFrame(columns=list(runs.HISTORY_COLUMNS)) if history is None else history,
        metrics=metrics if isinstance(metrics, dict) else {},
        manifest=manifest,
        config=config,
        status=status,
        problems=tuple(problems.values()),
        unreadable=tuple(problems),
    )


def _attempt(problems: dict[str, str], name: str, read: Any, paths: runs.RunPaths) -> Any:
    """``read(paths)``, or ``None`` with the reason recorded under the file's ``name``."""
    try:
        return read(paths)
    except SkinlabError as exc:
        problems[name] = str(exc)
        return None


def _read_metrics(paths: runs.RunPaths) -> Any:
    """``metrics.json`` as parsed (``{}`` until the run is evaluated)."""
    return read_json(paths.metrics, default={})
