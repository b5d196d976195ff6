"""Section "frozen": a frozen MobileNetV2 head trained on cached features against the backbone
run every epoch (:mod:`skinlab.train.features`), through :func:`skinlab.train.training.train` both ways.

Both runs have the same seed, epochs and data, with no augmentation, so they train the same
head on the same batches: validation accuracy must agree within noise. Epoch times come from
the runs' histories (the time :class:`~skinlab.train.callbacks.RunMonitor` records, checkpointing
included); the cached run's first epoch also pays for the feature pass (from its
``metrics.json``). One more pair with "light" augmentation compares cached augmented views
with fresh augmentation every epoch.

This machine is offline: when the ImageNet weights are not in Keras' cache, a temporary cache
holds random weights in their place (same network, so the same speed; the accuracy is then
that of random features) and a row note says so.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

from skinlab.bench.core import BenchContext, Row, Section
from skinlab.bench.workspace import environ, link_images, train_rows
from skinlab.core import runs
from skinlab.core.config import RunConfig
from skinlab.core.record import read_run
from skinlab.model.weights import imagenet_weights_filename, keras_cache_dir, write_stand_in_weights
from skinlab.train.training import train

BACKBONE = "mobilenetv2"


def run(ctx: BenchContext) -> Section:
    size, epochs, images = (96, 3, 300) if ctx.quick else (128, 5, None)
    views = 4
    results, stand_in = _train_pairs(ctx, _data(ctx, images), size, epochs, views)
    return _section(results, stand_in, size, epochs, views, quick=ctx.quick)


def _train_pairs(
    ctx: BenchContext, root: Path, size: int, epochs: int, views: int
) -> tuple[dict, bool]:
    """Train each pair (cached features or not), without augmentation and, unless quick,
    with light augmentation; returns the figures per (augmentation, cache) and whether the
    weights were random stand-ins."""
    with (
        _imagenet_weights(ctx, size) as stand_in,
        environ(SKINLAB_MODELS_DIR=ctx.workdir / "models"),
    ):
        base = RunConfig(
            data_root=str(root),
            backbone=BACKBONE,
            weights="imagenet",
            image_size=size,
            batch_size=32,
            epochs=epochs,
            augmentation="none",
            precision="float32",  # the same arithmetic both ways: only the cache differs
            seed=123,
        )
        pairs = {"none": base}
        if not ctx.quick:  # the quick version keeps under a minute
            pairs["light"] = base.replace(augmentation="light", augmented_views=views)
        results = {}
        for augmentation, config in pairs.items():
            for cache in ("auto", "off"):
                ctx.log(f"frozen: augmentation {augmentation}, feature cache {cache}")
                results[augmentation, cache] = _train(config.replace(feature_cache=cache))
    return results, stand_in


def _section(
    results: dict, stand_in: bool, size: int, epochs: int, views: int, *, quick: bool
) -> Section:
    """The section's table from the runs' figures."""
    section = Section(f"Frozen-backbone training (MobileNetV2 {size} px, {epochs} epochs)")
    cached, plain = results["none", "auto"], results["none", "off"]
    note = (
        "random stand-in weights (ImageNet's are not cached here, offline): accuracy is "
        "that of random features"
        if stand_in
        else ""
    )
    per_epoch = f"median of epochs 2-{epochs} from the run history, checkpoint saves included"
    section.rows = [
        Row(
            "first epoch (cached: + feature pass)",
            cached["first_epoch"],
            plain["first_epoch"],
            "s",
            note=f"{cached['train_images']} training images",
        ),
        Row("epoch after the first", cached["epoch"], plain["epoch"], "s", note=per_epoch),
        Row("whole train() call", cached["wall"], plain["wall"], "s", note="incl. evaluation"),
        Row(
            "validation accuracy",
            cached["val_accuracy"],
            plain["val_accuracy"],
            "",
            lower_is_better=False,
            note=note or "same seed; must agree within noise",
        ),
    ]
    section.ratios = {
        "frozen_epoch_speedup": plain["epoch"] / cached["epoch"],
        "frozen_accuracy_delta": cached["val_accuracy"] - plain["val_accuracy"],
    }
    section.raw = {f"{aug}_{cache}": result for (aug, cache), result in results.items()} | {
        "image_size": size,
        "epochs": epochs,
        "stand_in_weights": stand_in,
    }
    if quick:
        return section
    section.rows += _light_rows(results, views, note)
    return section


def _light_rows(results: dict, views: int, note: str) -> list[Row]:
    """The rows of the pair trained with light augmentation (cached views or fresh)."""
    aug_cached, aug_plain = results["light", "auto"], results["light", "off"]
    return [
        Row(
            f"light augmentation, {views} cached views: epoch after the first",
            aug_cached["epoch"],
            aug_plain["epoch"],
            "s",
            note="baseline: fresh augmentation every epoch",
        ),
        Row(
            f"light augmentation, {views} cached views: feature pass",
            aug_cached["feature_pass"],
            None,
            "s",
        ),
        Row(
            f"light augmentation, {views} cached views: validation accuracy",
            aug_cached["val_accuracy"],
            aug_plain["val_accuracy"],
            "",
            lower_is_better=False,
            note=note or "views differ from fresh draws, so only close, not equal",
        ),
    ]


def _data(ctx: BenchContext, images: int | None) -> Path:
    """The Train split, or a random subset of ``images`` of it (hard links)."""
    if images is None:
        return ctx.data_root
    return link_images(train_rows(ctx.data_root, images), ctx.workdir / "frozen-data")


def _train(config: RunConfig) -> dict:
    started = time.perf_counter()
    result = train(config)
    wall = time.perf_counter() - started
    record = read_run(result.paths)
    history, metrics = record.history, record.metrics
    feature_pass = metrics.get("feature_cache", {}).get("seconds", 0.0)
    seconds = history["epoch_time"].tolist()
    return {
        "first_epoch": feature_pass + seconds[0],
        "epoch": statistics.median(seconds[1:]),
        "feature_pass": feature_pass,
        "epoch_seconds": seconds,
        "wall": wall,
        "val_accuracy": float(metrics["validation"]["accuracy"]),
        "train_images": runs.read_manifest(result.paths).train_images,
        "feature_cache": metrics.get("feature_cache"),
    }


@contextlib.contextmanager
def _imagenet_weights(ctx: BenchContext, size: int) -> Iterator[bool]:
    """Yield False when Keras has MobileNetV2's ImageNet weights cached; otherwise point Keras
    at a temporary cache holding random stand-ins, yield True, and restore Keras afterwards."""
    if (keras_cache_dir() / imagenet_weights_filename(BACKBONE, size)).is_file():
        yield False
        return
    # Keras reads KERAS_HOME once, at import, into this private setting.
    import keras.src.backend.config as keras_config

    home = ctx.workdir / "keras-home"
    before = keras_config._KERAS_DIR
    with environ(KERAS_HOME=home):
        keras_config._KERAS_DIR = str(home)
        try:
            write_stand_in_weights(BACKBONE, size)
            yield True
        finally:
            keras_config._KERAS_DIR = before
