"""Benchmark section "start": how long a new user waits for a run to show life.

What the Train page does: drawn with no run going, it starts a warm standby
(:func:`skinlab.jobs.manager.ensure_standby`: TensorFlow is imported while the user picks the
settings); "Start training" with the "quick" preset (the one-minute demo model) calls
:func:`skinlab.jobs.manager.start_run`; then the page's live panel looks at the run every
:func:`skinlab.app.train_monitor.refresh_seconds` and draws the first batch's running loss as the
epoch in progress. Timed from the call, each the median of a few starts in a fresh models
folder:

* the first live curve point *as the page shows it*: the bench looks at the run on the
  page's own rhythm (a look at the click, then one per refresh interval), reading it as the
  panel does (:func:`skinlab.app.train_monitor.load_run`, the figure built), so what is measured
  includes the wait for the page's next look (the browser's drawing, tens of ms, is not);
* the same with standbys off (``SKINLAB_STANDBY=0``), which is also what a click in the
  first seconds after the page opened gets (the standby is not ready yet);
* how long the standby takes to be ready after the page is drawn;
* the first whole epoch in ``history.csv`` (warm standby).

Each start trains in its own background processes, as the page's do, and is force-stopped
once its first epoch is in; the first start on a machine also fills the OS file cache.
Before these figures, a first run on a new machine spent ~13 s probing mixed precision
before its first batch (now skipped for short runs, :data:`skinlab.model.precision.MIN_PROBE_STEPS`).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from skinlab.app import curves, train_monitor
from skinlab.bench.core import BenchContext, Row, Section
from skinlab.bench.workspace import environ
from skinlab.core import runs
from skinlab.core.config import preset
from skinlab.jobs import manager, standby

#: What the first live curve point should take at most (issue 12), in seconds.
TARGET_S = 5.0
#: Timed starts of each kind (after one untimed start), in full and in ``--quick``.
STARTS, QUICK_STARTS = 3, 2
_POLL_S = 0.02
_DEADLINE_S = 300.0


@dataclass(frozen=True)
class _Start:
    point: float  # click -> the page shows the first curve point
    epoch: float  # click -> the first whole epoch is in the history
    ready: float | None  # page drawn -> standby ready (None: standbys off)


def _shows_a_point(run_id: str) -> bool:
    """Whether the Train page's panel, drawn now, would show a curve point."""
    view = train_monitor.load_run(run_id)
    point = curves.in_progress_point(view.status, "loss")
    curves.learning_curve_figure(view.history, "loss", in_progress=point)
    return point is not None or not view.history.empty


def _one_start(ctx: BenchContext, seed: int, models: Path, warm: bool) -> _Start:
    ready = None
    if warm:
        drawn = time.perf_counter()
        manager.ensure_standby(models)  # the page, drawn with no run going
        while not standby.ready(models):
            if time.perf_counter() - drawn > _DEADLINE_S:
                raise RuntimeError(f"the standby was not ready after {_DEADLINE_S:.0f} s")
            time.sleep(_POLL_S)
        ready = time.perf_counter() - drawn
    config = preset("quick", data_root=str(ctx.data_root), seed=seed)
    began = time.perf_counter()
    paths = manager.start_run(config, key=f"bench-start-{seed}-{warm}", root=models)
    first_point = first_epoch = None
    next_look = began  # the click's own rerun draws the panel at once
    try:
        while first_epoch is None:
            now = time.perf_counter()
            if now - began > _DEADLINE_S:
                raise RuntimeError(f"no epoch after {_DEADLINE_S:.0f} s: {manager.read_log(paths)}")
            status = manager.refresh(paths)
            if status.state == "failed":
                raise RuntimeError(f"the run failed: {status.error}")
            if first_point is None and now >= next_look:
                if _shows_a_point(paths.run_id):
                    first_point = time.perf_counter() - began
                summaries = manager.list_summaries()
                next_look = now + train_monitor.refresh_seconds(summaries)
            if paths.history.exists() and not runs.read_history(paths).empty:
                first_epoch = time.perf_counter() - began
            time.sleep(_POLL_S)
    finally:
        if manager.refresh(paths).state in manager.ACTIVE:
            manager.stop_run(paths.run_id, force=True)
    return _Start(first_point or first_epoch, first_epoch, ready)


def _starts(ctx: BenchContext, count: int, models: Path) -> tuple[list[_Start], list[_Start]]:
    """``count`` timed starts with a warm standby and as many without, taken in turns so
    that both meet the same load; after one untimed start that fills the file cache."""
    warm: list[_Start] = []
    cold: list[_Start] = []
    for turn in range(2 * count + 1):
        with_standby = turn % 2 == 0
        with environ(SKINLAB_STANDBY="1" if with_standby else "0"):
            start = _one_start(ctx, turn, models, with_standby)
        kind = "warm standby" if with_standby else "no standby"
        ctx.log(
            f"[bench] start ({kind}): first point shown {start.point:.1f} s, "
            f"first epoch {start.epoch:.1f} s"
        )
        if turn:
            (warm if with_standby else cold).append(start)
    return warm, cold


def run(ctx: BenchContext) -> Section:
    count = QUICK_STARTS if ctx.quick else STARTS
    models = ctx.workdir / "models"
    with environ(SKINLAB_MODELS_DIR=models):
        try:
            warm, cold = _starts(ctx, count, models)
        finally:
            with manager.scheduler_lock(models):
                standby.discard(models)
    point = statistics.median(s.point for s in warm)
    note = f"median of {count} starts"
    rows = [
        Row(
            "click -> first live curve point shown (quick preset, warm standby)",
            point,
            TARGET_S,
            unit="s",
            note=f"target <= {TARGET_S:.0f} s; {note}; includes the page's refresh",
        ),
        Row(
            "same without a standby (SKINLAB_STANDBY=0, or a click before it is ready)",
            statistics.median(s.point for s in cold),
            unit="s",
            note=note,
        ),
        Row(
            "Train page drawn -> standby ready",
            statistics.median(cast(float, s.ready) for s in warm),  # timed with a standby
            unit="s",
            note=note,
        ),
        Row(
            "click -> first whole epoch (warm standby)",
            statistics.median(s.epoch for s in warm),
            unit="s",
        ),
    ]
    return Section(
        "Starting a run: the wait before the live curve moves",
        rows=rows,
        ratios={"first_point_vs_target": TARGET_S / point},
        raw={
            "first_point_s": [s.point for s in warm],
            "first_epoch_s": [s.epoch for s in warm],
            "cold_first_point_s": [s.point for s in cold],
            "standby_ready_s": [s.ready for s in warm],
        },
    )
