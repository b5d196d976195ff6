"""Benchmark section "predict": how fast a trained seed CNN answers, skinlab's way vs Keras'.

A run of the seed notebook's CNN (``custom``, 180 px) is trained for one epoch in the
section's work folder (on at most :data:`QUICK_IMAGES` images when quick): its accuracy is
irrelevant, its architecture is what costs time. Then, with the model warm:

* one image: :meth:`Predictor.logits` on one preprocessed array, and the end-to-end
  :meth:`Predictor.predict_images` on a decoded image (resize, calibrated softmax, OOD and
  quality checks), each against ``model.predict(x, verbose=0)`` on the same image;
* a batch of 32: images per second of both;
* the TFLite export (:mod:`skinlab.predict.export`) with a warm interpreter, one image;
* the peak memory one 79 MP upload adds to the idle app (:mod:`~skinlab.bench.upload_memory`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from skinlab.bench.core import BenchContext, Row, Section, median_seconds, percentile, timed
from skinlab.bench.upload_memory import TARGET_MB, upload_peak_mb
from skinlab.bench.workspace import link_images, sample_rows, train_in, train_rows
from skinlab.core.config import RunConfig
from skinlab.data.images import decode_image, load_rgb_array
from skinlab.predict.export import _interpreter, export_run
from skinlab.predict.predictor import load_predictor

SIZE = 180
BATCH = 32
CALLS = 200
QUICK_CALLS = 50
QUICK_IMAGES = 200
#: ``predict_speedup`` the single-image path should reach.
TARGET = 10.0


def run(ctx: BenchContext) -> Section:
    train = train_rows(ctx.data_root, QUICK_IMAGES if ctx.quick else None)
    data_root = link_images(train, ctx.workdir / "data")
    ctx.log(f"[bench] predict: training the seed CNN for 1 epoch on {len(train)} images")
    config = RunConfig(
        data_root=str(data_root), backbone="custom", image_size=SIZE, batch_size=BATCH, epochs=1
    )
    paths = train_in(ctx.workdir, config)
    predictor = load_predictor(paths)
    ctx.log("[bench] predict: exporting to TFLite")
    tflite = export_run(paths, "tflite") / "model.tflite"
    model = predictor.loaded.model
    sample = sample_rows(ctx.data_root, train)["path"].iloc[0]
    image = decode_image(sample)
    x = load_rgb_array(sample, SIZE)[None].astype(np.float32)
    batch = np.repeat(x, BATCH, axis=0)
    interpreter = _interpreter(tflite)
    source = interpreter.get_input_details()[0]["index"]
    target = interpreter.get_output_details()[0]["index"]

    def tflite_one() -> np.ndarray:
        interpreter.set_tensor(source, x)
        interpreter.invoke()
        return interpreter.get_tensor(target)

    calls = QUICK_CALLS if ctx.quick else CALLS
    ctx.log(f"[bench] predict: {calls} single-image calls per path")
    ms = {
        "logits": _latencies_ms(lambda: predictor.logits(x), calls),
        "end_to_end": _latencies_ms(lambda: predictor.predict_images([("x", image)]), calls),
        "keras_predict": _latencies_ms(lambda: model.predict(x, verbose=0), calls),
        "tflite": _latencies_ms(tflite_one, calls),
    }
    p50 = {k: percentile(v, 50) for k, v in ms.items()}
    p95 = {k: percentile(v, 95) for k, v in ms.items()}
    ours_batch = BATCH / median_seconds(lambda: predictor.logits(batch), reps=ctx.reps * 3)
    keras_batch = BATCH / median_seconds(lambda: model.predict(batch, verbose=0), reps=ctx.reps * 3)
    drift = float(np.abs(tflite_one() - predictor.logits(x)).max())
    ctx.log("[bench] predict: peak memory of one 79 MP upload, in a child process")
    idle_mb, peak_mb = upload_peak_mb(paths.root, ctx.workdir)
    raw = {
        "calls": calls,
        "train_images": len(train),
        "p50_ms": p50,
        "p95_ms": p95,
        "batch_images_per_s": {"skinlab": ours_batch, "keras_predict": keras_batch},
        "tflite_max_abs_logit_difference": drift,
        "target_predict_speedup": TARGET,
        "upload_79mp_mb": {"idle": idle_mb, "peak": peak_mb, "target_above_idle": TARGET_MB},
    }
    return _section(raw)


def _section(raw: dict) -> Section:
    """The section's table from its raw figures."""
    p50, p95 = raw["p50_ms"], raw["p95_ms"]
    ours_batch = raw["batch_images_per_s"]["skinlab"]
    keras_batch = raw["batch_images_per_s"]["keras_predict"]
    drift = raw["tflite_max_abs_logit_difference"]
    idle_mb, peak_mb = raw["upload_79mp_mb"]["idle"], raw["upload_79mp_mb"]["peak"]
    keras_note = "baseline: model.predict(x, verbose=0)"
    return Section(
        "Prediction (seed CNN, 180 px)",
        rows=[
            Row(
                "one image, logits, p50", p50["logits"], p50["keras_predict"], "ms", note=keras_note
            ),
            Row(
                "one image, logits, p95", p95["logits"], p95["keras_predict"], "ms", note=keras_note
            ),
            Row(
                "one image, end to end, p50",
                p50["end_to_end"],
                p50["keras_predict"],
                "ms",
                note="decoded image -> calibrated Prediction (resize, OOD, quality) vs "
                "model.predict logits only",
            ),
            Row(
                f"batch of {BATCH}",
                ours_batch,
                keras_batch,
                "img/s",
                lower_is_better=False,
                note="Predictor.logits vs model.predict",
            ),
            Row(
                "one image, TFLite export, p50",
                p50["tflite"],
                p50["keras_predict"],
                "ms",
                note=f"warm interpreter; max |logit difference| vs Keras {drift:.1e}",
            ),
            Row(
                "one 79 MP PNG upload, predicted + explained, peak RSS above idle",
                peak_mb - idle_mb,
                unit="MB",
                note=f"fresh process, VmHWM; idle app {idle_mb:.0f} MB; target <= {TARGET_MB} MB",
            ),
        ],
        ratios={"predict_speedup": p50["keras_predict"] / p50["logits"]},
        raw=raw,
    )


def _latencies_ms(fn: Callable[[], object], calls: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    return [timed(fn)[0] * 1000 for _ in range(calls)]
