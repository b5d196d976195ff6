"""A wall-clock budget for a run: stop gracefully once the time is spent.

Comparing recipes fairly on a laptop means giving each the same minutes, not the same
epochs. The budget is kept at epoch boundaries: after each epoch, training stops when the
next epoch (timed like the slowest recent one) would not fit. An epoch still running when the
budget is spent is cut after its current batch, and a cut epoch is dropped (see
:func:`skinlab.train.callbacks.epoch_was_cut`), so the first epoch is never cut: a run always
keeps at least one whole epoch.

With a schedule that can be fitted (:class:`skinlab.train.schedules.OneCycle`), the budget also
*plans*: after each epoch it works out how many epochs fit in the minutes left (timed like the
median of the recent epochs) and moves the schedule's end there, so the learning rate reaches
zero on the last epoch that fits rather than the run being cut at a high rate. The plan never
goes past the configured epochs.

Example::

    model.fit(train, epochs=100, callbacks=[TimeBudget(minutes=10)])
    TimeBudget(minutes=14, schedule=one_cycle, steps_per_epoch=56, last_epoch=150)
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Protocol

import keras


class FittableSchedule(Protocol):
    """A learning-rate schedule whose end can be moved while training runs."""

    def fit_total_steps(self, total_steps: int) -> None: ...


#: Recent epochs whose median times the plan (the first, which pays for tracing, excluded).
_PLAN_WINDOW = 5


class TimeBudget(keras.callbacks.Callback):
    """Set ``model.stop_training`` when the next epoch would not fit in ``minutes``.

    Args:
        minutes: the budget; ``0`` or less disables the callback.
        started: a ``time.time()`` to count from (to share one budget across phases: one
            instance is passed to every phase's ``fit``).
    """

    def __init__(self, minutes: float, started: float | None = None) -> None:
        super().__init__()
        self.seconds = minutes * 60.0
        self.started = started
        self.exhausted = False
        self.epochs_done = 0
        #: The epoch (1-based, absolute) the current plan ends at; ``None`` while not planning.
        self.planned_last_epoch: int | None = None
        self._epoch_started = 0.0
        self._last_epoch = 0.0
        self._durations: list[float] = []
        self._schedule: FittableSchedule | None = None
        self._steps = 0
        self._first_epoch = 0
        self._last_allowed = 0
        self._on_replan: Callable[[int], None] | None = None

    def plan(
        self,
        schedule: FittableSchedule,
        *,
        steps_per_epoch: int,
        first_epoch: int,
        last_epoch: int,
        on_replan: Callable[[int], None] | None = None,
    ) -> None:
        """Fit ``schedule`` (which starts at ``first_epoch``) to the budget, up to ``last_epoch``.

        Call before each phase's ``fit``; a phase without a fittable schedule calls nothing
        and is only stopped at the boundary. ``on_replan`` hears each new last epoch (to keep
        the progress and the ETA people see on the plan).
        """
        self._on_replan = on_replan
        self._schedule = schedule
        self._steps = steps_per_epoch
        self._first_epoch = first_epoch
        self._last_allowed = last_epoch
        self.planned_last_epoch = last_epoch if self.seconds > 0 else None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.started is None:
            self.started = time.time()

    def _elapsed(self) -> float:
        return time.time() - (self.started or time.time())

    def _stop(self) -> None:
        self.exhausted = True
        self.model.stop_training = True

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_started = time.time()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.seconds > 0 and self.epochs_done and self._elapsed() >= self.seconds:
            self._stop()  # this epoch outran its estimate: cut it (it is dropped)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.seconds <= 0 or self.model.stop_training:
            return
        self.epochs_done += 1
        took = time.time() - self._epoch_started
        # The first epoch pays for tracing; after it, the larger of the last two epochs.
        estimate = took if self.epochs_done == 1 else max(took, self._last_epoch)
        self._last_epoch = took
        if self.epochs_done > 1:
            self._durations = [*self._durations, took][-_PLAN_WINDOW:]
        if self._elapsed() + estimate > self.seconds:
            self._stop()
            return
        if self._schedule is not None:
            self._replan(epoch + 1)

    def _replan(self, done: int) -> None:
        """Move the schedule's end to the last epoch that fits, and stop there."""
        per_epoch = statistics.median(self._durations) if self._durations else self._last_epoch
        fits = done + math.floor(max(self.seconds - self._elapsed(), 0.0) / max(per_epoch, 1e-9))
        last = max(min(fits, self._last_allowed), done)
        if last != self.planned_last_epoch:
            self.planned_last_epoch = last
            assert self._schedule is not None  # _replan runs only while planning
            self._schedule.fit_total_steps((last - self._first_epoch) * self._steps)
            if self._on_replan is not None:
                self._on_replan(last)
        if done >= last:
            self._stop()
