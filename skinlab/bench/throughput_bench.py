"""Benchmark section "throughput": where a from-scratch training step's time goes on this CPU.

Issue 14's engineering question: 150 epochs of ~1,800 images in 15 minutes needs ~300
images/s of training. This section times ``model.fit`` steps on images already in memory
(decoding is the ``pipeline`` section's business) for each candidate of the choice:
network (the all-3x3 ``plain_cnn`` of the GPU study, the separable ``skinlab_cnn``),
resolution, augmentation on or off, and mixed bfloat16. The baseline of every row is the
network, size and augmentation of ``cpu-best`` before issue 14 (``skinlab_cnn``, 128 px,
"strong"); the ratio says how many times faster a candidate trains.

Measured on the 2-core machine of 2026-11-27 (images/s): skinlab_cnn 128 px 150-210,
96 px 376, 64 px 676; plain_cnn 128 px 28, 96 px 53, 64 px 75 (161 in bfloat16, where the
separable network gains nothing from it); augmentation costs ~40 % at 128 px on skinlab_cnn
and nothing measurable on plain_cnn, whose 3x3 convolutions dominate.
"""

from __future__ import annotations

import time

from skinlab.bench.core import BenchContext, Row, Section

#: (backbone, image size, augmentation, precision policy): the first is the baseline, the
#: second cpu-best's choice.
CANDIDATES: tuple[tuple[str, int, str, str], ...] = (
    ("skinlab_cnn", 128, "strong", "float32"),
    ("skinlab_cnn", 96, "dermoscopy", "float32"),
    ("skinlab_cnn", 128, "none", "float32"),
    ("skinlab_cnn", 128, "dermoscopy", "float32"),
    ("skinlab_cnn", 64, "dermoscopy", "float32"),
    ("skinlab_cnn", 96, "dermoscopy", "mixed_bfloat16"),
    ("plain_cnn", 128, "dermoscopy", "float32"),
    ("plain_cnn", 64, "dermoscopy", "float32"),
    ("plain_cnn", 64, "dermoscopy", "mixed_bfloat16"),
)
#: The candidates timed by ``--quick``: the baseline and cpu-best's choice.
QUICK = CANDIDATES[:2]
BATCH = 32


def images_per_second(
    backbone: str, size: int, augmentation: str, policy: str, *, steps: int
) -> float:
    """Training images per second of ``steps`` batches of 32, after two warm-up batches."""
    import keras
    import numpy as np
    import tensorflow as tf

    from skinlab.model.augment import augmentation_layers
    from skinlab.model.backbones import build_model

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        augment = None if augmentation == "none" else augmentation_layers(augmentation, 1.0, 0)
        model = build_model(
            backbone, num_classes=9, image_size=size, dropout=0.3, augmentation=augment
        )
        model.compile(
            optimizer=keras.optimizers.AdamW(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 255, (BATCH * steps, size, size, 3)).astype("float32")
        y = rng.integers(0, 9, BATCH * steps)
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).cache()
        model.fit(data.take(2), epochs=1, verbose=0)  # trace and warm up
        began = time.perf_counter()
        model.fit(data, epochs=1, verbose=0)
        return BATCH * steps / (time.perf_counter() - began)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def run(ctx: BenchContext) -> Section:
    candidates = QUICK if ctx.quick else CANDIDATES
    steps = 4 if ctx.quick else 12
    measured = {}
    for candidate in candidates:
        ctx.log(f"[bench] throughput: {' '.join(map(str, candidate))}")
        measured[candidate] = images_per_second(*candidate, steps=steps)
    baseline = measured[candidates[0]]
    rows = [
        Row(
            f"{backbone} {size} px, {augmentation} augmentation, {policy}",
            rate,
            baseline,
            "img/s",
            lower_is_better=False,
            note="baseline: skinlab_cnn 128 px strong float32 (cpu-best before issue 14)",
        )
        for (backbone, size, augmentation, policy), rate in measured.items()
    ]
    cpu_best = measured[candidates[1]]  # cpu-best's network, size and augmentation
    return Section(
        "Training steps: images/s by network, size, augmentation and precision",
        rows=rows,
        ratios={"cpu_best_step_speedup": cpu_best / baseline},
        raw={" ".join(map(str, k)): v for k, v in measured.items()},
    )
