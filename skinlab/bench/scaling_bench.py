"""Benchmark section "scaling": does scan + audit stay linear as a dataset grows?

Times :func:`~skinlab.data.discovery.discover` + :func:`~skinlab.data.audit.audit_dataset` on 1x, 4x
and 16x copies of the Train split (quick: 1x, 2x, 4x of at most 500 images; each the median
of rounds that visit every size in turn), and fits the exponent ``k`` of
``time ~ images ** k`` as the least-squares slope of log time against log images. Linear is 1;
the target is at most 1.2.

Copies are hard links named ``c03_<name>``, so every copy is a distinct path with the same
bytes: from 2x on, every image is an exact duplicate, the audit's heaviest case.
"""

from __future__ import annotations

import math
import statistics
from functools import partial
from pathlib import Path

from skinlab.bench.core import BenchContext, Row, Section, timed
from skinlab.bench.workspace import link_images, train_rows
from skinlab.data.audit import AuditReport, audit_dataset
from skinlab.data.discovery import discover

FACTORS = (1, 4, 16)
QUICK_FACTORS = (1, 2, 4)
QUICK_IMAGES = 500
#: Timed rounds at least: the fit is sensitive to one slow repetition.
MIN_REPS = 5
#: The exponent a linear audit stays under (constant overheads and one sort add a little).
TARGET = 1.2


def run(ctx: BenchContext) -> Section:
    train = train_rows(ctx.data_root, QUICK_IMAGES if ctx.quick else None)
    factors = QUICK_FACTORS if ctx.quick else FACTORS
    roots = {}
    for factor in factors:
        roots[factor] = ctx.workdir / f"x{factor}"
        for copy in range(factor):
            link_images(train, roots[factor], prefix=f"c{copy:02d}_")
    reps = max(ctx.reps, MIN_REPS)
    sizes = [len(train) * factor for factor in factors]
    ctx.log(f"[bench] scaling: scan + audit of {sizes} images, {reps} rounds")
    # Rounds visit every size in turn, so a burst of load from elsewhere on the machine
    # lands on all sizes alike instead of bending the fit.
    times: dict[int, list[float]] = {factor: [] for factor in factors}
    for round_ in range(reps + 1):  # the first round is a warm-up (file cache, imports)
        for factor in factors:
            took, _ = timed(partial(_scan_and_audit, roots[factor]))
            if round_:
                times[factor].append(took)
    seconds = [statistics.median(times[factor]) for factor in factors]
    rows = [
        Row(
            f"scan + audit, {factor}x ({images} images)",
            s,
            unit="s",
            note=f"{images / s:,.0f} images/s",
        )
        for factor, images, s in zip(factors, sizes, seconds, strict=True)
    ]
    exponent = fit_exponent(sizes, seconds)
    rows.append(
        Row(
            "scaling exponent k (time ~ images^k)",
            exponent,
            unit="",
            note=f"least-squares slope of log time vs log images; target <= {TARGET}",
        )
    )
    return Section(
        "Scan + audit scaling",
        rows=rows,
        ratios={"audit_scaling_exponent": exponent},
        raw={"images": sizes, "seconds": seconds, "factors": list(factors), "rounds": reps},
    )


def _scan_and_audit(root: Path) -> AuditReport:
    return audit_dataset(discover(root))


def fit_exponent(sizes: list[int], seconds: list[float]) -> float:
    """Least-squares slope of ``log(seconds)`` against ``log(sizes)``.

    Raises:
        statistics.StatisticsError: fewer than two distinct sizes (a ``ValueError``).
    """
    xs, ys = [math.log(n) for n in sizes], [math.log(s) for s in seconds]
    return statistics.linear_regression(xs, ys).slope
