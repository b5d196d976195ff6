"""Benchmark section "load": several app sessions predicting at once on one cached model.

Streamlit runs each session's script in its own thread of one server process, and every
session gets the same :class:`~skinlab.predict.predictor.Predictor` from
:func:`~skinlab.predict.predictor.load_predictor`. This section trains the "quick" preset for one
epoch in its work folder, then lets 1, 4 and 8 sessions (threads) predict Test images end
to end, the Predict page's way (bytes -> decode -> calibrated prediction with OOD and
quality checks), all at the same moment. It reports, per concurrency, predictions per
second and the p50/p95 latency of one prediction, and how much resident memory grew.
The baseline of each row is the one-session figure, so a ratio above 1 is gained
throughput (or a latency lower than one session's, which concurrency cannot give).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from skinlab.bench.core import BenchContext, Row, Section, peak_rss_mb, percentile
from skinlab.bench.workspace import link_images, sample_rows, train_in, train_rows

CONCURRENCY = (1, 4, 8)
#: Predictions per concurrency level (shared out between the sessions).
CALLS, QUICK_CALLS = 2000, 200
#: Training images for the model (its accuracy is irrelevant here).
TRAIN_IMAGES, QUICK_TRAIN_IMAGES = 600, 200


def run(ctx: BenchContext) -> Section:
    from skinlab.core.config import preset
    from skinlab.predict.predictor import load_predictor

    train = train_rows(ctx.data_root, QUICK_TRAIN_IMAGES if ctx.quick else TRAIN_IMAGES)
    data_root = link_images(train, ctx.workdir / "data")
    ctx.log(f"[bench] load: training the quick preset for 1 epoch on {len(train)} images")
    paths = train_in(ctx.workdir, preset("quick", data_root=str(data_root), epochs=1))
    samples = sample_rows(ctx.data_root, train)
    images = [(Path(p).name, Path(p).read_bytes()) for p in samples["path"].iloc[:64]]
    calls = QUICK_CALLS if ctx.quick else CALLS

    def predict(i: int) -> None:  # what one session's rerun does with one upload
        result = load_predictor(paths).predict_sources([images[i % len(images)]])[0]
        assert hasattr(result, "top_class"), result

    _sessions(predict, 1, 2 * len(images))  # warm-up: load, trace, allocator arenas
    rss_before = _rss_mb()
    figures = {}
    for sessions in CONCURRENCY:
        ctx.log(f"[bench] load: {calls} predictions from {sessions} concurrent session(s)")
        seconds, latencies = _sessions(predict, sessions, calls)
        figures[sessions] = {
            "predictions_per_s": calls / seconds,
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
        }
    rss_growth = _rss_mb() - rss_before
    return Section(
        "Load (concurrent sessions, shared cached model)",
        rows=_rows(figures, rss_growth),
        ratios={
            "load_throughput_4_vs_1": figures[4]["predictions_per_s"]
            / figures[1]["predictions_per_s"]
        },
        raw={
            "calls_per_level": calls,
            "by_sessions": {str(k): v for k, v in figures.items()},
            "rss_growth_mb": rss_growth,
            "peak_rss_mb": peak_rss_mb(),
            "predictor_loads": len({id(load_predictor(paths)) for _ in range(3)}),
            "image_size": 64,
            "backbone": "skinlab_cnn",
        },
    )


def _rows(figures: dict[int, dict[str, float]], rss_growth: float) -> list[Row]:
    """Throughput and latency per concurrency level against one session alone."""
    one = figures[1]
    rows = []
    for sessions, f in figures.items():
        base = None if sessions == 1 else one  # the baseline is one session alone
        label = f"{sessions} session{'s' if sessions > 1 else ''}"
        rows += [
            Row(
                f"{label}: predictions/s",
                f["predictions_per_s"],
                base["predictions_per_s"] if base else None,
                "pred/s",
                lower_is_better=False,
                note="baseline: 1 session" if base else "",
            ),
            Row(f"{label}: p50 latency", f["p50_ms"], base["p50_ms"] if base else None, "ms"),
            Row(f"{label}: p95 latency", f["p95_ms"], base["p95_ms"] if base else None, "ms"),
        ]
    rows.append(
        Row(
            "resident memory growth over all levels",
            rss_growth,
            unit="MB",
            note="after a warm-up; one model shared by all sessions",
        )
    )
    return rows


def _sessions(predict, sessions: int, calls: int) -> tuple[float, list[float]]:
    """Wall seconds and per-call latencies (ms) of ``calls`` predictions shared between
    ``sessions`` threads that all start at the same moment."""
    start = threading.Barrier(sessions + 1)
    latencies: list[float] = []  # list.append is atomic under the GIL
    errors: list[BaseException] = []

    def session(first: int) -> None:
        start.wait()
        try:
            for i in range(first, calls, sessions):
                began = time.perf_counter()
                predict(i)
                latencies.append((time.perf_counter() - began) * 1000)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(sessions)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - began, latencies


def _rss_mb() -> float:
    """Resident memory now (not the peak), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")  # no /proc (macOS)
