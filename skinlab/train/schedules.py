"""The one-cycle learning-rate schedule: a linear warm-up, then cosine decay to zero.

Training from scratch with AdamW at a high peak rate (3e-3) diverges in the first steps
without a warm-up, and the cosine tail lets the last epochs settle; this is the schedule of
the GPU experiment behind ``RunConfig(schedule="one_cycle")``. It is per step, like Keras'
``CosineDecay``, and serialisable, so a saved model's optimizer reloads.

Under a time budget the schedule is *fitted* to the minutes: the total number of steps is a
variable that :class:`skinlab.train.budget.TimeBudget` lowers (or raises back, never past the
configured epochs) as it learns how long an epoch takes, so a run on a busy machine takes
fewer epochs and still anneals to zero by its last one, instead of being cut at a high rate.

A resumed run (:func:`skinlab.train.training.train` with ``resume=True``) compiles a fresh
optimizer: the schedule then spans the remaining epochs only, warming up again from zero
over their first 10 %, as ``cosine`` restarts its decay.

Example::

    lr = OneCycle(3e-3, total_steps=25 * 60)
    optimizer = keras.optimizers.AdamW(learning_rate=lr, weight_decay=0.05)
"""

from __future__ import annotations

import math

import keras
from keras import ops

#: Share of the steps spent warming up. Fixed: the experiment used it, and one more field
#: on the form would be a knob nobody has a reason to turn.
WARMUP_FRACTION = 0.1


@keras.saving.register_keras_serializable(package="skinlab")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Rise linearly from 0 to ``peak`` over the first ``warmup_fraction`` of ``total_steps``,
    then fall along a half cosine to 0 at ``total_steps`` (and stay there after).

    Args:
        peak: the highest learning rate, reached at the end of the warm-up.
        total_steps: the optimizer steps of the whole schedule (at least 1).
        warmup_fraction: share of the steps spent warming up, in ``[0, 1)``.

    Raises:
        ValueError: a non-positive ``peak`` or ``total_steps``, or a bad fraction.
    """

    def __init__(
        self, peak: float, total_steps: int, warmup_fraction: float = WARMUP_FRACTION
    ) -> None:
        if peak <= 0 or total_steps < 1 or not 0 <= warmup_fraction < 1:
            raise ValueError(
                "OneCycle needs a positive peak, at least one step and a warm-up fraction "
                f"in [0, 1); got {peak}, {total_steps}, {warmup_fraction}."
            )
        self.peak = float(peak)
        self.warmup_fraction = float(warmup_fraction)
        # A variable, not a number: a traced train step reads its current value, so
        # fit_total_steps takes effect without retracing.
        self._total = keras.Variable(
            float(total_steps), trainable=False, dtype="float32", name="one_cycle_total_steps"
        )

    @property
    def total_steps(self) -> int:
        return int(round(float(keras.ops.convert_to_numpy(self._total))))

    def fit_total_steps(self, total_steps: int) -> None:
        """Make the schedule end at ``total_steps`` (at least 1) from now on."""
        self._total.assign(float(max(int(total_steps), 1)))

    def __call__(self, step):
        step = ops.cast(step, "float32")
        total = ops.convert_to_tensor(self._total)
        warmup = ops.maximum(self.warmup_fraction * total, 1.0)
        # Step 0 already trains, so the warm-up starts one step in rather than at 0.
        rising = self.peak * ops.minimum((step + 1.0) / warmup, 1.0)
        progress = ops.clip((step - warmup) / ops.maximum(total - warmup, 1.0), 0.0, 1.0)
        falling = 0.5 * self.peak * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < warmup, rising, falling)

    def get_config(self) -> dict:
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_fraction": self.warmup_fraction,
        }
