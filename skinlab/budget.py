"""A wall-clock budget for a run: stop gracefully once the time is spent.

Comparing recipes fairly on a laptop means giving each the same minutes, not the same
epochs. The budget is kept at epoch boundaries: after each epoch, training stops when the
next epoch (timed like the slowest recent one) would not fit. An epoch still running when the
budget is spent is cut after its current batch, and a cut epoch is dropped (see
:func:`skinlab.callbacks.epoch_was_cut`), so the first epoch is never cut: a run always
keeps at least one whole epoch.

Example::

    model.fit(train, epochs=100, callbacks=[TimeBudget(minutes=10)])
"""

from __future__ import annotations

import time

import keras


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
        self._epoch_started = 0.0
        self._last_epoch = 0.0

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
        if self._elapsed() + estimate > self.seconds:
            self._stop()
