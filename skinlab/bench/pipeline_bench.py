"""Benchmark section "pipeline": images per second the input pipeline delivers.

skinlab: :func:`~skinlab.data.pipeline.make_dataset` with its default memory cache (every image
decoded once, up front, then gathered from one ``uint8`` array), shuffled, 180 px, batch 32.
Baseline: the seed notebook's ``keras.utils.image_dataset_from_directory`` on the same
folder, same size, batch and shuffle, with no ``.cache()`` (so every epoch decodes again)
and no prefetch added (Keras already ends that dataset with an AUTOTUNE prefetch).

Each repetition builds the dataset and iterates all its batches for :data:`EPOCHS` epochs,
so skinlab's headline figure includes its up-front decode; a second row shows the later
epochs alone, which is what every further epoch of a training run costs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import keras
import tensorflow as tf

from skinlab.bench.core import BenchContext, Row, Section
from skinlab.bench.workspace import link_images, train_rows
from skinlab.data.pipeline import PipelineSpec, make_dataset

SIZE = 180
BATCH = 32
EPOCHS = 3
QUICK_IMAGES = 500


def run(ctx: BenchContext) -> Section:
    train = train_rows(ctx.data_root, QUICK_IMAGES if ctx.quick else None)
    # Both read the same folder: the readable Train images (a subset when quick), linked.
    folder = link_images(train, ctx.workdir / "data") / "Train"
    class_names = sorted(set(train["label"]))
    n = len(train)

    def ours():
        spec = PipelineSpec(image_size=SIZE, batch_size=BATCH, shuffle=True)
        return make_dataset(train, class_names, spec)

    def notebook():
        return keras.utils.image_dataset_from_directory(
            folder, image_size=(SIZE, SIZE), batch_size=BATCH, shuffle=True, seed=123, verbose=False
        )

    ctx.log(f"[bench] pipeline: {n} images, {EPOCHS} epochs, {ctx.reps} reps each")
    ours_s = _epoch_seconds(ours, ctx.reps)
    base_s = _epoch_seconds(notebook, ctx.reps)
    rates = {}
    for name, runs in (("skinlab", ours_s), ("baseline", base_s)):
        rates[name] = (
            EPOCHS * n / statistics.median(sum(r) for r in runs),
            (EPOCHS - 1) * n / statistics.median(sum(r[1:]) for r in runs),
        )
    return Section(
        "Input pipeline (tf.data)",
        rows=[
            Row(
                f"images/s over {EPOCHS} epochs, {SIZE} px, batch {BATCH}",
                rates["skinlab"][0],
                rates["baseline"][0],
                "img/s",
                lower_is_better=False,
                note="skinlab: memory cache, its decode included; baseline: "
                "image_dataset_from_directory, no cache (Keras' own prefetch only)",
            ),
            Row(
                f"images/s in epochs 2-{EPOCHS}",
                rates["skinlab"][1],
                rates["baseline"][1],
                "img/s",
                lower_is_better=False,
                note="what every further epoch of a training run costs",
            ),
        ],
        ratios={"pipeline_speedup": rates["skinlab"][0] / rates["baseline"][0]},
        raw={
            "images": n,
            "epochs": EPOCHS,
            "skinlab_epoch_seconds": ours_s,
            "baseline_epoch_seconds": base_s,
        },
    )


def _epoch_seconds(build: Callable[[], tf.data.Dataset], reps: int) -> list[list[float]]:
    """Per repetition (after one warm-up), the seconds of each epoch; the first epoch
    includes building the dataset (for skinlab, decoding every image)."""
    runs = []
    for _ in range(reps + 1):
        seconds, start = [], time.perf_counter()
        dataset = build()
        for _ in range(EPOCHS):
            for _ in dataset:
                pass
            seconds.append(time.perf_counter() - start)
            start = time.perf_counter()
        runs.append(seconds)
    return runs[1:]
