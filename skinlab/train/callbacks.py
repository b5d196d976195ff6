"""RunMonitor: the Keras callback that makes a training run observable from outside.

The app never talks to the training process; it reads the run folder. This callback is
what keeps that folder live: ``status.json`` (progress, speed, ETA, heartbeat) and one
``history.csv`` row per epoch. It is also how the outside world stops a run: the app
creates the run's ``STOP`` file (:func:`skinlab.core.runs.request_stop`) and training ends
after the current batch.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import suppress
from typing import Any

import keras

from skinlab.core.atomic import RunFileError
from skinlab.core.lifecycle import TransitionRefused, change
from skinlab.core.runs import RunPaths, RunStatus, append_history, read_status

_ACCURACY_KEYS = ("accuracy", "sparse_categorical_accuracy", "categorical_accuracy", "acc")


class RunMonitor(keras.callbacks.Callback):
    """Writes a run's live status and history, honours stop requests, stops on NaN loss.

    * ``status.json`` is rewritten at most every ``status_interval`` seconds during an
      epoch and always at the start and end of training and of each epoch. It holds the
      epoch (1-based, counted across phases), the batch of the epoch, images per second,
      an ETA, a heartbeat, the pid and the state: ``"running"``; ``"stopping"`` once a stop
      was requested (the trainer writes the final ``"stopped"``); ``"failed"`` with
      ``error`` set when the loss became NaN or infinite.
    * From the first batch of each epoch on, the status also holds the epoch's running
      training loss and accuracy, so the live curve moves before the first epoch ends.
    * ``history.csv`` gets one row per epoch: loss, accuracy, val_loss, val_accuracy, the
      learning rate the epoch started with, the epoch's wall time and the phase.
    * When the run's ``STOP`` file exists, or the loss is not finite, training stops after
      the current batch (Keras still evaluates and ends that epoch). A non-finite loss
      also sets :attr:`failure` to one sentence for the user.
    * An epoch cut short that way (by a stop, the time budget or a failure) is *not* an
      epoch: it gets no history row, so curves and headlines only ever show whole epochs
      (:func:`epoch_was_cut`; :class:`~skinlab.train.checkpoint.BestWeights` skips it too).

    Use one monitor per ``fit`` call (per phase). Its writes of ``status.json`` are steps
    of the run's state machine (:func:`skinlab.core.lifecycle.change`).

    Args:
        paths: the run folder.
        total_epochs: epochs of all phases together.
        steps_per_epoch: training batches per epoch.
        batch_size: images per batch (for images per second).
        phase: phase name written to the status and history.
        initial_epoch: epochs finished by earlier phases; the first epoch of this ``fit``
            is reported as ``initial_epoch + 1`` whether or not ``fit`` got
            ``initial_epoch`` too.
        status_interval: least seconds between two status writes within an epoch.

    Attributes:
        failure: ``None``, or why training failed.
        stop_requested: whether a ``STOP`` file ended training.
        status: the last status written.

    Example::

        monitor = RunMonitor(paths, total_epochs=20, steps_per_epoch=len(train_ds),
                             batch_size=32)
        model.fit(train_ds, validation_data=val_ds, epochs=20, callbacks=[monitor])
        if monitor.failure:
            print(monitor.failure)
    """

    def __init__(
        self,
        paths: RunPaths,
        *,
        total_epochs: int,
        steps_per_epoch: int,
        batch_size: int,
        phase: str = "train",
        initial_epoch: int = 0,
        status_interval: float = 1.0,
    ) -> None:
        super().__init__()
        self.paths = paths
        self.total_epochs = total_epochs
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = batch_size
        self.phase = phase
        self.initial_epoch = initial_epoch
        self.status_interval = status_interval
        self.failure: str | None = None
        self.stop_requested = False
        self.status: RunStatus | None = None
        self._epoch = initial_epoch
        self._batch = 0
        self._seconds_per_batch: float | None = None
        self._last_epoch_time: float | None = None
        self._epochs_timed: list[float] = []
        self._running: tuple[float | None, float | None] = (None, None)
        self._last_write = -math.inf
        self._supervisor_pid: int | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        try:
            prior = read_status(self.paths)  # set by an earlier phase or the supervisor
        except RunFileError:
            prior = None
        self._started = (prior.started if prior else None) or time.time()
        self._supervisor_pid = prior.supervisor_pid if prior else None
        self._epoch = self.initial_epoch
        self._write()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        # Counted here rather than taken from Keras, whose numbering depends on whether
        # fit() was given initial_epoch.
        self._epoch += 1
        self._batch = 0
        self._running = (None, None)
        self._epoch_start = self._first_batch_end = time.monotonic()
        self._learning_rate = self._current_learning_rate()
        self._write()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.monotonic()
        if self._batch == 0:
            # The first batch pays for tracing and the input pipeline's warm-up.
            self._first_batch_end, self._first_batch = now, batch + 1
        elif now > self._first_batch_end:
            self._seconds_per_batch = (now - self._first_batch_end) / (
                batch + 1 - self._first_batch
            )
        self._batch = batch + 1
        logs = logs or {}
        loss = _as_float(logs.get("loss"))
        self._running = (loss, _as_float(_first(logs, _ACCURACY_KEYS)))
        if loss is not None and not math.isfinite(loss):
            kind = "NaN" if math.isnan(loss) else "infinite"
            self.failure = (
                f"Loss became {kind} at epoch {self._epoch}, batch {self._batch}; "
                "lower the learning rate."
            )
            self.model.stop_training = True
            self._write()
        elif not self.stop_requested and self.paths.stop_request.exists():
            self.stop_requested = True
            self.model.stop_training = True
            self._write()
        elif self._batch == 1 or now - self._last_write >= self.status_interval:
            self._write()  # the first batch at once: the live curve starts from it

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        self._running = (None, None)  # the epoch is a history row now, or dropped
        if epoch_was_cut(self, self._batch):
            self._write()  # the status keeps the batch it stopped at; the history stays whole
            return
        elapsed = time.monotonic() - self._epoch_start
        if self._epoch > self.initial_epoch + 1:
            # The first epoch of a fit also pays for tracing: it would make the ETA jump.
            self._epochs_timed.append(elapsed)
        self._last_epoch_time = elapsed
        row = {
            "epoch": self._epoch,
            "loss": logs.get("loss"),
            "accuracy": _first(logs, _ACCURACY_KEYS),
            "val_loss": logs.get("val_loss"),
            "val_accuracy": _first(logs, tuple(f"val_{key}" for key in _ACCURACY_KEYS)),
            "learning_rate": self._learning_rate,
            "epoch_time": round(self._last_epoch_time, 3),
            "phase": self.phase,
        }
        append_history(self.paths, row)
        self._write()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._write()

    def _write(self) -> None:
        self._last_write = time.monotonic()
        # A stop request counts from the moment its file exists, not from the next batch
        # end: otherwise a write in between would overwrite the "stopping" that the stop
        # command just wrote with "running".
        stopping = self.stop_requested or self.paths.stop_request.exists()
        state = "failed" if self.failure else "stopping" if stopping else "running"
        spb = self._seconds_per_batch
        with suppress(TransitionRefused):  # a second stop ended the run: its state stands
            self.status = change(
                self.paths,
                state,
                epoch=self._epoch,
                total_epochs=self.total_epochs,
                batch=self._batch,
                total_batches=self.steps_per_epoch,
                images_per_second=self.batch_size / spb if spb else None,
                eta_seconds=self._eta(),
                started=self._started,
                finished=time.time() if self.failure else None,
                error=self.failure,
                pid=os.getpid(),
                pid_start=None,  # filled in by the write: this very process's start time
                supervisor_pid=self._supervisor_pid,
                phase=self.phase,
                running_loss=self._running[0],
                running_accuracy=self._running[1],
            )

    def _eta(self) -> float | None:
        """Seconds to the end of the last epoch, from this epoch's batch speed and the
        median time of the whole epochs after the first (which include validation; the
        first also pays for tracing, and counting it made the ETA jump 30 s -> 3 min -> 30 s).
        Before any such epoch, the first epoch's batches stand in, plus 10 % for validation."""
        spb = self._seconds_per_batch
        if spb is None:
            return None
        per_epoch = (
            float(sorted(self._epochs_timed)[len(self._epochs_timed) // 2])
            if self._epochs_timed
            else 1.1 * self.steps_per_epoch * spb
        )
        left_in_epoch = max(self.steps_per_epoch - self._batch, 0) * spb
        return left_in_epoch + max(self.total_epochs - self._epoch, 0) * per_epoch

    def _current_learning_rate(self) -> float | None:
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return None
        # For a LearningRateSchedule, Keras 3 evaluates it at the current iteration here.
        # It is float32: 7 significant digits keep all of it and write 0.01, not 0.0099999998.
        rate = optimizer.learning_rate
        # Under tf.distribute it is a MirroredVariable, which float() does not accept.
        value = float(rate.numpy()) if hasattr(rate, "numpy") else float(rate)
        return float(f"{value:.7g}")


def epoch_was_cut(callback: keras.callbacks.Callback, batches: int) -> bool:
    """Whether the epoch ending now ran fewer than its batches (``batches`` were seen):
    training was stopped mid-epoch, and Keras ends such an epoch like a whole one."""
    steps = (callback.params or {}).get("steps")
    return bool(steps and batches < steps)


def _as_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _first(logs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((logs[key] for key in keys if key in logs), None)
