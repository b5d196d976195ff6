"""Learning-rate range test (Smith 2015; fastai's ``lr_find``): which learning rate to use.

A fresh model trains for about 100 steps while the learning rate grows exponentially from
1e-7 to 10. The loss, smoothed (exponential average with bias correction, ``beta=0.98`` as
in fastai), first stays flat (too small to learn), then falls (useful), then explodes (too
large). The test stops once the smoothed loss passes 4× its minimum. The suggestion is the
learning rate where the smoothed loss falls fastest against ``log10(lr)`` before its
minimum (fastai's "steep"), or, when there is no such descent, a tenth of the learning rate
at the minimum (fastai's "minimum"); :attr:`LRFindResult.method` says which.

Nothing is saved: no run folder, no weights. The model starts from the config's own
initialisation (ImageNet weights included), so the answer is for this recipe.

Example::

    result = lr_range_test(preset("quick", data_root="data/isic"))
    result.suggestion, result.method
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from skinlab.core.config import RunConfig
from skinlab.core.errors import SkinlabError

START_LR, END_LR, STEPS = 1e-7, 10.0, 100
#: Smoothing of the loss (fastai's value): about the last 50 steps count.
BETA = 0.98
#: Stop when the smoothed loss exceeds this multiple of its minimum (fastai's value).
DIVERGENCE_FACTOR = 4.0

METHODS = {
    "steepest": "steepest descent of the smoothed loss",
    "minimum/10": "a tenth of the learning rate at the smoothed loss's minimum",
}


@dataclass(frozen=True)
class LRFindResult:
    """The recorded curve and the suggestion.

    Attributes:
        learning_rates: the learning rate of each recorded step (geometric, increasing).
        losses: the smoothed training loss after each of those steps.
        suggestion: the learning rate to use, inside ``[start_lr, end_lr]``.
        method: ``"steepest"`` or ``"minimum/10"`` (:data:`METHODS`).
        min_loss_lr: the learning rate at the smoothed loss's minimum.
        diverged_lr: the learning rate whose step made the loss diverge (the test stopped
            there), or ``None`` when it ran all its steps.
        start_lr, end_lr, steps: the planned range and number of steps.
    """

    learning_rates: tuple[float, ...]
    losses: tuple[float, ...]
    suggestion: float
    method: str
    min_loss_lr: float
    diverged_lr: float | None
    start_lr: float = START_LR
    end_lr: float = END_LR
    steps: int = STEPS

    def to_dict(self) -> dict[str, Any]:
        return {
            "suggestion": self.suggestion,
            "method": self.method,
            "method_text": METHODS[self.method],
            "min_loss_lr": self.min_loss_lr,
            "diverged_lr": self.diverged_lr,
            "start_lr": self.start_lr,
            "end_lr": self.end_lr,
            "steps": self.steps,
            "learning_rates": list(self.learning_rates),
            "losses": list(self.losses),
        }


def lr_schedule(start: float = START_LR, end: float = END_LR, steps: int = STEPS) -> np.ndarray:
    """``steps`` learning rates growing geometrically from ``start`` to ``end`` (both kept).

    Raises:
        ValueError: not ``0 < start < end``, or fewer than 2 steps.
    """
    if not 0 < start < end or steps < 2:
        raise ValueError(
            f"The range test needs 0 < start < end and 2 or more steps, not {start}, {end}, "
            f"{steps}."
        )
    return start * (end / start) ** (np.arange(steps) / (steps - 1))


def range_test(
    step: Callable[[float], float],
    learning_rates: Sequence[float] | np.ndarray,
    *,
    beta: float = BETA,
    divergence: float = DIVERGENCE_FACTOR,
) -> LRFindResult:
    """Call ``step(lr)`` (one training step at ``lr``, returning its loss) for each learning
    rate until the smoothed loss diverges, and suggest a learning rate.

    The step that diverges (smoothed loss above ``divergence`` × its minimum, or a
    non-finite loss) is not recorded; its learning rate is :attr:`LRFindResult.diverged_lr`.

    Raises:
        ValueError: the very first step's loss is not finite (nothing to learn from).
    """
    lrs: list[float] = []
    losses: list[float] = []
    average, diverged = 0.0, None
    for i, lr in enumerate(learning_rates):
        loss = float(step(float(lr)))
        if not math.isfinite(loss):
            diverged = float(lr)
            break
        average = beta * average + (1 - beta) * loss
        smoothed = average / (1 - beta ** (i + 1))
        if losses and smoothed > divergence * min(losses):
            diverged = float(lr)
            break
        lrs.append(float(lr))
        losses.append(smoothed)
    if not losses:
        raise ValueError("The first training step's loss was not a number; check the data.")
    suggestion, method = suggest(lrs, losses)
    return LRFindResult(
        learning_rates=tuple(lrs),
        losses=tuple(losses),
        suggestion=suggestion,
        method=method,
        min_loss_lr=lrs[int(np.argmin(losses))],
        diverged_lr=diverged,
        start_lr=float(learning_rates[0]),
        end_lr=float(learning_rates[-1]),
        steps=len(learning_rates),
    )


def suggest(learning_rates: Sequence[float], losses: Sequence[float]) -> tuple[float, str]:
    """``(learning rate, method)`` from a recorded curve (see the module docstring).

    Only the descent up to the minimum is considered, so the suggestion is always below
    the learning rate where the loss turned up.
    """
    lrs, loss = np.asarray(learning_rates, float), np.asarray(losses, float)
    low = int(np.argmin(loss))
    if low >= 2:  # np.gradient needs 2 points; a slope over 3 is less noisy
        slopes = np.gradient(loss[: low + 1], np.log10(lrs[: low + 1]))
        steepest = int(np.argmin(slopes))
        if slopes[steepest] < 0:
            return float(lrs[steepest]), "steepest"
    return float(max(lrs[low] / 10, lrs[0])), "minimum/10"


def lr_range_test(
    config: RunConfig,
    steps: int = STEPS,
    *,
    start_lr: float = START_LR,
    end_lr: float = END_LR,
    progress: Callable[[float, str], None] | None = None,
) -> LRFindResult:
    """Run the range test for ``config``'s model, optimizer, loss and Train images.

    The validation part is left out (as in training); the schedule is replaced by the
    test's own, and the imbalance treatment's class weights are left out (the test is
    about the loss's shape against the learning rate, not its level).

    Raises:
        DatasetLayoutError, WeightsUnavailableError: as :func:`skinlab.train.preflight.preflight`.
        SkinlabError: a bad range or step count, or the first step's loss is not a number.
    """
    import keras

    from skinlab.data.pipeline import PipelineSpec, make_dataset
    from skinlab.model.modelio import build_for_config
    from skinlab.train.preflight import preflight
    from skinlab.train.training import _compile, prepare_data

    try:
        lrs = lr_schedule(start_lr, end_lr, steps)
    except ValueError as exc:
        raise SkinlabError(str(exc)) from exc
    preflight(config)
    keras.utils.set_random_seed(config.seed)
    data = prepare_data(config)
    spec = PipelineSpec(
        image_size=config.image_size, batch_size=config.batch_size, shuffle=True, seed=config.seed
    )
    batches = iter(make_dataset(data.train, data.class_names, spec).repeat())
    model = build_for_config(config, len(data.class_names))
    _compile(model, config.replace(schedule="constant"), start_lr, steps, data.logit_offsets)

    def step(lr: float) -> float:
        model.optimizer.learning_rate.assign(lr)
        images, labels = next(batches)
        loss = model.train_on_batch(images, labels, return_dict=True)["loss"]
        if progress:
            progress(min(len(done) / steps, 1.0), f"learning rate {lr:.1e}")
        done.append(lr)
        return float(loss)

    done: list[float] = []
    try:
        result = range_test(step, lrs)
    except ValueError as exc:
        raise SkinlabError(str(exc)) from exc
    if progress:
        progress(1.0, "range test done")
    return result
