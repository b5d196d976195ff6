"""Section "training": skinlab's training path against the notebook's, same model, side by side.

Each side trains in its own fresh process (so neither inherits the other's warm caches, and
each gets its own peak-memory figure): skinlab through ``python -m skinlab train --preset
notebook`` (in-memory decoded images, one fused augmentation warp, mixed precision where it
measures faster), the baseline through :mod:`skinlab.bench.notebook`. Throughput is the
median over the epochs after the first (the first is the warm-up: tracing, decoding), and
both report validation accuracy after the same number of epochs, so speed is never bought
with accuracy.

The seed CNN runs on the whole Train split (a class-balanced subset in ``--quick``);
MobileNetV2 (trained from random init: no weights can be downloaded here) on a subset, and
not at all in ``--quick``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

from skinlab.bench.core import BenchContext, Row, Section, run_measured
from skinlab.bench.workspace import link_images, train_rows
from skinlab.core import runs
from skinlab.core.record import read_run

#: Images per class in the subsets (the seed CNN in --quick, MobileNetV2 always).
QUICK_PER_CLASS = 40
MOBILENET_PER_CLASS = 24


def run(ctx: BenchContext) -> Section:
    section = Section("Training throughput (notebook preset, 180 px, batch 32)")
    plans = [
        ("seed CNN", "custom", None if not ctx.quick else QUICK_PER_CLASS, 3 if ctx.quick else 5)
    ]
    if not ctx.quick:
        plans.append(("MobileNetV2", "mobilenetv2", MOBILENET_PER_CLASS, 3))
    for title, backbone, per_class, epochs in plans:
        root = _subset(ctx, per_class) if per_class else ctx.data_root
        ctx.log(f"training: {title}, {epochs} epochs, skinlab then the notebook's way")
        ours = _skinlab(ctx, root, backbone, epochs)
        base = _notebook(root, backbone, epochs)
        key = "train" if backbone == "custom" else f"train_{backbone}"
        section.rows += [
            Row(
                f"{title}: images/s",
                ours["ips"],
                base["ips"],
                "img/s",
                False,
                note=f"median of epochs 2-{epochs}; skinlab trained in {ours['precision']}",
            ),
            Row(
                f"{title}: s/epoch",
                ours["epoch_s"],
                base["epoch_s"],
                "s",
                True,
                note="incl. validation",
            ),
            Row(
                f"{title}: val accuracy after {epochs} epochs",
                ours["val_acc"],
                base["val_acc"],
                "",
                False,
                note="must match within noise",
            ),
            Row(f"{title}: peak RSS of the training process", ours["rss"], base["rss"], "MB"),
        ]
        section.ratios[f"{key}_speedup"] = ours["ips"] / base["ips"]
        section.raw[key] = {"skinlab": ours, "notebook": base, "images_root": str(root)}
    section.raw["train_accuracy_delta"] = (
        section.raw["train"]["skinlab"]["val_acc"] - section.raw["train"]["notebook"]["val_acc"]
    )
    return section


def _subset(ctx: BenchContext, per_class: int) -> Path:
    """A dataset of hard links to the first ``per_class`` Train images of each class."""
    root = ctx.workdir / f"subset{per_class}"
    if not root.exists():
        link_images(train_rows(ctx.data_root).groupby("label").head(per_class), root)
    return root


def _skinlab(ctx: BenchContext, root: Path, backbone: str, epochs: int) -> dict:
    models = ctx.workdir / "models"
    env = {**os.environ, "SKINLAB_MODELS_DIR": str(models), "TF_CPP_MIN_LOG_LEVEL": "2"}
    child = run_measured(
        [
            sys.executable,
            "-m",
            "skinlab",
            "train",
            "--data",
            str(root),
            "--preset",
            "notebook",
            "--backbone",
            backbone,
            "--epochs",
            str(epochs),
            "--image-size",
            "180",
        ],
        env=env,
    )
    if child.returncode:
        raise RuntimeError(f"skinlab training failed: {child.stderr[-1500:]}")
    paths = runs.RunPaths(Path(child.stdout.strip().splitlines()[-1]))
    record = read_run(paths)
    history, metrics = record.history, record.metrics
    n_train = runs.read_manifest(paths).train_images
    epoch_s = statistics.median(history["epoch_time"].iloc[1:])
    return {
        "ips": n_train / epoch_s,
        "epoch_s": epoch_s,
        "epoch_seconds": history["epoch_time"].tolist(),
        "val_acc": float(history["val_accuracy"].iloc[-1]),
        "train_images": n_train,
        "precision": metrics.get("training_precision", {}).get("policy", "float32"),
        "precision_reason": metrics.get("training_precision", {}).get("reason", ""),
        "rss": child.peak_rss_mb,
        "process_seconds": child.seconds,
    }


def _notebook(root: Path, backbone: str, epochs: int) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    child = run_measured(
        [
            sys.executable,
            "-m",
            "skinlab.bench.notebook",
            "--train-dir",
            str(root / "Train"),
            "--backbone",
            backbone,
            "--epochs",
            str(epochs),
        ],
        env=env,
    )
    if child.returncode:
        raise RuntimeError(f"notebook baseline failed: {child.stderr[-1500:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    epoch_s = statistics.median(result["epoch_seconds"][1:])
    return {
        "ips": result["train_images"] / epoch_s,
        "epoch_s": epoch_s,
        "epoch_seconds": result["epoch_seconds"],
        "val_acc": result["val_accuracy"][-1],
        "train_images": result["train_images"],
        "rss": child.peak_rss_mb,
        "process_seconds": child.seconds,
    }
