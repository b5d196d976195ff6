"""Benchmark section "recipe": the ``cpu-best`` preset against the one it replaced.

Issue 14 asks two things of a new ``cpu-best``: more accuracy, and a CPU that trains it fast
enough to afford the epochs that accuracy needs. This section trains both recipes on the same
data, one after the other in this process, each under the same wall-clock budget, and
reports for each: training images per second (all epochs' images over the training time),
epochs reached, validation balanced accuracy, and balanced accuracy per training minute.

:data:`BASELINE` is ``cpu-best`` as it was on 2026-11-27 (0.415 accuracy, 0.461 balanced on
the held-out ISIC images); the current preset comes from :data:`skinlab.core.config.PRESETS`.
One split is no way to choose a recipe (``python -m skinlab cv`` is): this section is about
speed, with accuracy beside it so speed is never bought with it.
"""

from __future__ import annotations

import time

from skinlab.bench.core import BenchContext, Row, Section
from skinlab.bench.workspace import train_in
from skinlab.core import runs
from skinlab.core.config import PRESETS, RunConfig
from skinlab.core.record import read_run

#: ``cpu-best`` before issue 14.
BASELINE = {
    "backbone": "skinlab_cnn",
    "weights": "none",
    "image_size": 128,
    "batch_size": 32,
    "epochs": 25,
    "optimizer": "adam",
    "learning_rate": 2e-3,
    "schedule": "cosine",
    "dropout": 0.3,
    "augmentation": "strong",
    "imbalance": "class_weights",
    "patience": 0,
}
#: Minutes each recipe may train: the preset's own 15 in full, 1.5 in --quick.
FULL_MINUTES, QUICK_MINUTES = 15.0, 1.5


def _train(ctx: BenchContext, name: str, overrides: dict, minutes: float) -> dict:
    config = RunConfig(
        **{**overrides, "data_root": str(ctx.data_root), "time_budget_minutes": minutes}
    )
    ctx.log(f"[bench] recipe: {name}, up to {minutes:g} min")
    began = time.perf_counter()
    paths = train_in(ctx.workdir / name, config)
    seconds = time.perf_counter() - began
    record = read_run(paths)
    history, metrics = record.history, record.metrics
    trained_s = float(history["epoch_time"].sum())
    images = len(history) * _train_images(paths)
    balanced = (metrics.get("validation") or {}).get("balanced_accuracy")
    return {
        "epochs": len(history),
        "seconds": seconds,
        "train_seconds": trained_s,
        "images_per_second": images / trained_s if trained_s else None,
        "balanced_accuracy": balanced,
        "balanced_per_minute": balanced / (trained_s / 60) if balanced and trained_s else None,
    }


def _train_images(paths: runs.RunPaths) -> int:
    """Images one epoch trains on (after rebalancing); 0 before a model is saved."""
    if not paths.manifest.exists():
        return 0
    return int(sum(runs.read_manifest(paths).train_counts_after_rebalancing.values()))


def run(ctx: BenchContext) -> Section:
    minutes = QUICK_MINUTES if ctx.quick else FULL_MINUTES
    old = _train(ctx, "before", BASELINE, minutes)
    new = _train(ctx, "cpu-best", PRESETS["cpu-best"], minutes)
    rows = [
        Row("images/s (training, incl. validation)", new["images_per_second"],
            old["images_per_second"], "img/s", False, note="baseline: cpu-best of 2026-11-27"),
        Row("epochs in the budget", new["epochs"], old["epochs"], "", False,
            note=f"{minutes:g} min each"),
        Row("validation balanced accuracy", new["balanced_accuracy"], old["balanced_accuracy"],
            "", False, note="one split: a speed check, not a recipe choice"),
        Row("balanced accuracy per training minute", new["balanced_per_minute"],
            old["balanced_per_minute"], "/min", False),
    ]  # fmt: skip
    ratios = {}
    if new["images_per_second"] and old["images_per_second"]:
        ratios["recipe_speedup"] = new["images_per_second"] / old["images_per_second"]
    if new["balanced_per_minute"] and old["balanced_per_minute"]:
        ratios["accuracy_per_minute_gain"] = new["balanced_per_minute"] / old["balanced_per_minute"]
    return Section(
        "cpu-best against the cpu-best it replaced (same data, same minutes)",
        rows=rows,
        ratios=ratios,
        raw={"before": old, "cpu-best": new},
    )
