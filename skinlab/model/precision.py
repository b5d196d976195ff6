"""Mixed precision, decided per machine by measuring rather than by rule.

``mixed_bfloat16`` (weights in float32, arithmetic in bfloat16) can train a small CNN about
twice as fast on CPUs with bfloat16 instructions (AVX-512-BF16, AMX) and slower on CPUs
without them; ``mixed_float16`` is the usual choice on NVIDIA GPUs. With
``RunConfig.precision == "auto"``, :func:`choose_precision`:

* on a CPU without bfloat16 instructions picks ``float32`` straight away;
* otherwise (bfloat16 CPU, or a GPU) times a few training steps of the run's own model in
  ``float32`` and in the mixed policy, keeps the mixed one only if it is at least
  :data:`MIN_GAIN` faster, and remembers the answer for this machine, TensorFlow version and
  model shape in ``<models>/.cache/precision.json`` (so the probe costs seconds once).

Accuracy stays equal because only the arithmetic changes: variables, the optimizer and the
logits layer stay float32 (``backbones.build_model`` pins the logits layer), and
:mod:`skinlab.train.training` rebuilds the trained model in float32 for evaluation and export, so
predictions never depend on how the run was trained.

Example::

    decision = choose_precision(config)      # Decision("mixed_bfloat16", "measured 1.8x ...")
    with dtype_policy(decision.policy):
        model = build_for_config(config, 9)
"""

from __future__ import annotations

import contextlib
import hashlib
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from skinlab.core import atomic
from skinlab.core.config import PRECISIONS
from skinlab.core.paths import models_dir

#: A mixed policy must be at least this much faster (step time ratio) to be chosen.
MIN_GAIN = 1.10

#: CPU flags that mean bfloat16 arithmetic runs in hardware.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")

#: Training steps timed per policy by the probe (after two warm-up steps).
PROBE_STEPS = 6


@dataclass(frozen=True)
class Decision:
    """The dtype policy a run trains with, and why (shown in the run's manifest and log)."""

    policy: str
    reason: str


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where that file does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_model() -> str:
    """The CPU's model name, for humans and as part of the probe cache key."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def has_bf16_cpu() -> bool:
    """True when the CPU has bfloat16 instructions (AVX-512-BF16 or AMX)."""
    return any(flag in cpu_flags() for flag in BF16_FLAGS)


def mixed_candidate() -> tuple[str | None, str]:
    """The mixed policy worth probing on this machine, or ``None`` with the reason why not."""
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16", "a GPU is present"
    if has_bf16_cpu():
        return "mixed_bfloat16", "the CPU has bfloat16 instructions"
    return None, "this CPU has no bfloat16 instructions, so mixed precision would be slower"


@contextlib.contextmanager
def dtype_policy(policy: str) -> Iterator[None]:
    """Build layers under Keras dtype ``policy``; the previous global policy comes back after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


#: Training steps below which "auto" does not probe (see :func:`choose_precision`).
MIN_PROBE_STEPS = 1000


def choose_precision(
    requested: str,
    key: str,
    build: Callable[[], keras.Model],
    input_shape: tuple[int, ...],
    *,
    cache_file: Path | None = None,
    total_steps: int | None = None,
) -> Decision:
    """Decide the dtype policy of a run.

    Args:
        requested: ``RunConfig.precision``; anything but ``"auto"`` is used as given.
        key: what makes two runs' probes interchangeable (backbone, size, batch, augmentation).
        build: builds the run's model, uncompiled, under the current global dtype policy.
        input_shape: one training batch's image shape ``(batch, height, width, 3)``.
        cache_file: where probe results are remembered (default
            ``<models>/.cache/precision.json``).
        total_steps: the run's training steps, if known. A run shorter than
            :data:`MIN_PROBE_STEPS` trains in float32 without a probe, unless a probe of the
            same shape was remembered: probing costs two model builds and traces (~10 s on
            2 cores), more than mixed precision could save on it, and it was most of the wait
            before a one-minute run's first batch.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got '{requested}'.")
    if requested != "auto":
        return Decision(requested, "chosen in the run's options")
    candidate, why = mixed_candidate()
    if candidate is None:
        return Decision("float32", why)
    cache_file = cache_file or models_dir() / ".cache" / "precision.json"
    full_key = _machine_key(candidate, key)
    try:
        remembered = atomic.read_json(cache_file, default={}) or {}
    except atomic.RunFileError:
        remembered = {}  # a damaged memo is only a lost measurement: probe again
    if isinstance(remembered, dict) and isinstance(remembered.get(full_key), dict):
        entry = remembered[full_key]
        return Decision(entry["policy"], entry["reason"] + " (measured earlier on this machine)")
    if total_steps is not None and total_steps < MIN_PROBE_STEPS:
        return Decision("float32", f"a short run ({total_steps} steps) is not worth a probe")
    base = _step_seconds(build, input_shape, "float32")
    mixed = _step_seconds(build, input_shape, candidate)
    gain = base / mixed
    if gain >= MIN_GAIN:
        decision = Decision(candidate, f"{why}; measured {gain:.1f}x faster than float32")
    else:
        decision = Decision("float32", f"{why}, but {candidate} measured {gain:.2f}x of float32")
    with contextlib.suppress(OSError):  # a read-only models folder only loses the memo
        atomic.write_json(cache_file, {**remembered, full_key: decision.__dict__})
    return decision


def _machine_key(candidate: str, key: str) -> str:
    gpus = ",".join(d.name for d in tf.config.list_physical_devices("GPU"))
    raw = f"{cpu_model()}|{sorted(cpu_flags())}|{gpus}|tf{tf.__version__}|{candidate}|{key}"
    return hashlib.blake2b(raw.encode(), digest_size=12).hexdigest() + f" {key}"


def _step_seconds(build: Callable[[], keras.Model], shape: tuple[int, ...], policy: str) -> float:
    """Median seconds of one training step of the model built under ``policy``."""
    with dtype_policy(policy):
        model = build()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, shape).astype(np.float32)
    y = rng.integers(0, model.output_shape[-1], shape[0]).astype(np.int32)
    for _ in range(2):  # tracing and oneDNN's first-call setup are not the steady state
        model.train_on_batch(x, y)
    times = []
    for _ in range(PROBE_STEPS):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
