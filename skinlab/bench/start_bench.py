"""Benchmark section "start": how long a new user waits for a run to show life.

What the Train page does on "Start training" with the "quick" preset (the one-minute demo
model): :func:`skinlab.manager.start_run` in a fresh models folder, then the page reads the
run's ``status.json``. Two moments are timed from the call, each the median of a few starts:

* the first live curve point: the status carries the first batch's running loss
  (:class:`skinlab.callbacks.RunMonitor` writes it at once), which the page draws as the
  epoch in progress; add up to one refresh of the page's live fragment to what a user sees;
* the first whole epoch in ``history.csv``.

Each start trains in its own background processes, as the page's do, and is force-stopped
once its first epoch is in; the first start on a machine also fills the OS file cache.
Before these figures, a first run on a new machine spent ~13 s probing mixed precision
before its first batch (now skipped for short runs, :data:`skinlab.precision.MIN_PROBE_STEPS`).
"""

from __future__ import annotations

import statistics
import time

from skinlab import manager, runs
from skinlab.bench.core import BenchContext, Row, Section
from skinlab.bench.workspace import environ
from skinlab.config import preset

#: What the first live curve point should take at most (issue 12), in seconds.
TARGET_S = 5.0
#: Timed starts (after one untimed warm-up start), in full and in ``--quick``.
STARTS, QUICK_STARTS = 3, 2
_POLL_S = 0.02
_DEADLINE_S = 300.0


def _one_start(ctx: BenchContext, seed: int) -> tuple[float, float]:
    config = preset("quick", data_root=str(ctx.data_root), seed=seed)
    began = time.perf_counter()
    paths = manager.start_run(config, key=f"bench-start-{seed}")
    first_point = first_epoch = None
    try:
        while first_epoch is None:
            elapsed = time.perf_counter() - began
            if elapsed > _DEADLINE_S:
                raise RuntimeError(f"no epoch after {_DEADLINE_S:.0f} s: {manager.read_log(paths)}")
            status = manager.refresh(paths)
            if status.state == "failed":
                raise RuntimeError(f"the run failed: {status.error}")
            if first_point is None and (status.running_loss is not None or paths.history.exists()):
                first_point = elapsed
            if paths.history.exists() and not runs.read_history(paths).empty:
                first_epoch = elapsed
            time.sleep(_POLL_S)
    finally:
        if manager.refresh(paths).state in manager.ACTIVE:
            manager.stop_run(paths.run_id, force=True)
    return first_point or first_epoch, first_epoch


def run(ctx: BenchContext) -> Section:
    starts = QUICK_STARTS if ctx.quick else STARTS
    points, epochs = [], []
    with environ(SKINLAB_MODELS_DIR=ctx.workdir / "models"):
        for seed in range(starts + 1):  # the first start warms the file cache: not counted
            point, epoch = _one_start(ctx, seed)
            ctx.log(f"[bench] start: first point {point:.1f} s, first epoch {epoch:.1f} s")
            if seed:
                points.append(point)
                epochs.append(epoch)
    point, epoch = statistics.median(points), statistics.median(epochs)
    rows = [
        Row(
            "click -> first live curve point (quick preset)",
            point,
            TARGET_S,
            unit="s",
            note=f"target <= {TARGET_S:.0f} s; median of {starts} starts",
        ),
        Row("click -> first whole epoch (quick preset)", epoch, unit="s"),
    ]
    return Section(
        "Starting a run: the wait before the live curve moves",
        rows=rows,
        ratios={"first_point_vs_target": TARGET_S / point},
        raw={"first_point_s": points, "first_epoch_s": epochs},
    )
