"""A wall-clock budget for a run: stop gracefully once the time is spent.

Comparing recipes fairly on a laptop means giving each the same minutes, not the same
epochs. The check runs after every batch, so a run overshoots by at most one batch (plus
the validation pass of the epoch it was in).

Example::

    model.fit(train, epochs=100, callbacks=[TimeBudget(minutes=10)])
"""

from __future__ import annotations

import time

import keras


class TimeBudget(keras.callbacks.Callback):
    """Set ``model.stop_training`` once ``minutes`` have passed since training began.

    Args:
        minutes: the budget; ``0`` or less disables the callback.
        started: a ``time.time()`` to count from (to share one budget across phases).
    """

    def __init__(self, minutes: float, started: float | None = None) -> None:
        super().__init__()
        self.seconds = minutes * 60.0
        self.started = started
        self.exhausted = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.started is None:
            self.started = time.time()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.seconds > 0 and time.time() - (self.started or time.time()) >= self.seconds:
            self.exhausted = True
            self.model.stop_training = True
