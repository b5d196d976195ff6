"""What every benchmark section shares: the context it runs in, timing, and its result.

A section is a function ``run(ctx: BenchContext) -> Section`` (one module per section in
:mod:`skinlab.bench`). It measures each figure next to its baseline *in the same process run*,
as the median of several repetitions after a warm-up, and reports the ratio, so a figure is
never compared with one taken on another day or another machine.

Example::

    def run(ctx: BenchContext) -> Section:
        ours = median_seconds(lambda: fast(ctx.data_root), reps=ctx.reps)
        base = median_seconds(lambda: slow(ctx.data_root), reps=ctx.reps)
        return Section(
            "Input pipeline",
            rows=[Row("decode 3 epochs", ours, base, "s", lower_is_better=True)],
            ratios={"pipeline_speedup": base / ours},
        )
"""

from __future__ import annotations

import math
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BenchContext:
    """Where and how big a benchmark run is.

    Attributes:
        data_root: a dataset folder with ``Train/<class>/`` (the demo when none is given).
        workdir: an empty temporary folder the section may fill (runs, copies, caches).
        quick: the reduced version (``--quick``): fewer images, epochs and repetitions.
        reps: repetitions per timed figure (after one warm-up).
        log: prints one progress line (to stderr, so ``--json`` stays clean).
    """

    data_root: Path
    workdir: Path
    quick: bool = False
    reps: int = 5
    log: Callable[[str], None] = print


@dataclass(frozen=True)
class Row:
    """One figure beside its baseline.

    Attributes:
        figure: what was measured, e.g. ``"seed CNN 180 px: images/s"``.
        skinlab: skinlab's value.
        baseline: the baseline's value (``None`` when the figure has no baseline).
        unit: ``"s"``, ``"ms"``, ``"img/s"``, ``"MB"``, ...
        lower_is_better: True for times and memory, False for throughputs and accuracies.
        note: one short remark (what the baseline is, what was skipped and why).
    """

    figure: str
    skinlab: float | None
    baseline: float | None = None
    unit: str = ""
    lower_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """How many times better skinlab is (>1 = better), or ``None`` without a baseline."""
        if self.skinlab is None or self.baseline is None or not self.skinlab or not self.baseline:
            return None
        return (
            self.baseline / self.skinlab if self.lower_is_better else self.skinlab / self.baseline
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "skinlab": self.skinlab,
            "baseline": self.baseline,
            "unit": self.unit,
            "ratio": self.ratio,
            "note": self.note,
        }


@dataclass
class Section:
    """A section's result: its rows, the headline ratios, and raw figures for the JSON."""

    title: str
    rows: list[Row] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """``(seconds, result)`` of one call of ``fn``."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def repeat_seconds(fn: Callable[[], Any], *, reps: int, warmup: int = 1) -> list[float]:
    """Seconds of each of ``reps`` calls of ``fn``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    return [timed(fn)[0] for _ in range(reps)]


def median_seconds(fn: Callable[[], Any], *, reps: int, warmup: int = 1) -> float:
    """Median seconds of ``reps`` calls of ``fn`` after ``warmup`` untimed calls."""
    return statistics.median(repeat_seconds(fn, reps=reps, warmup=warmup))


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, linear between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory so far, in MB, of this process (or of its finished children)."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


@dataclass(frozen=True)
class ChildRun:
    """What a measured child process did: exit code, output, wall time and peak memory."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float


def run_measured(args: list[str], *, env: dict[str, str] | None = None) -> ChildRun:
    """Run ``args`` to completion and measure that one child's wall time and peak RSS.

    The peak is the child's ``VmHWM`` (high-water resident memory of its own address space),
    polled every 50 ms: ``ru_maxrss`` would be wrong, since Linux carries the parent's
    resident size at fork into the child's figure. A spike shorter than the polling interval
    just before exit can be missed.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(args, stdout=out, stderr=err, env=env, text=True)
        peak_kb = 0
        while process.poll() is None:
            peak_kb = max(peak_kb, _vm_hwm_kb(process.pid))
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return ChildRun(process.returncode, out.read(), err.read(), seconds, peak_kb / 1024)


def _vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass  # the process just ended, or this is not Linux
    return 0
