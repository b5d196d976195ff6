"""Tests of skinlab.train.callbacks.RunMonitor on a tiny Dense model and random data."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import pytest

from skinlab.core.runs import HISTORY_COLUMNS, RunPaths, RunStatus, read_history, read_status
from skinlab.core.runs import write_status as write_run_status
from skinlab.train.callbacks import RunMonitor
from skinlab.train.checkpoint import BestWeights

BATCH = 8
STEPS = 4  # 32 samples / 8


@pytest.fixture
def paths(tmp_path: Path) -> RunPaths:
    paths = RunPaths(tmp_path / "20250101-120000-custom-abcdef")
    paths.root.mkdir()
    write_run_status(paths, RunStatus("queued"))
    return paths


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(BATCH * STEPS, 4)).astype("float32"), rng.integers(0, 3, BATCH * STEPS)


def _model(learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 0.01):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _fit(model: keras.Model, callbacks: list, x=None, y=None, **kwargs) -> None:
    if x is None:
        x, y = _data()
    kwargs.setdefault("epochs", 3)
    model.fit(
        x,
        y,
        batch_size=BATCH,
        validation_data=_data(1),
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
        **kwargs,
    )


class _CountBatches(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self.batches += 1


def test_monitor_writes_one_history_row_per_epoch_and_a_final_status(paths: RunPaths) -> None:
    monitor = RunMonitor(paths, total_epochs=3, steps_per_epoch=STEPS, batch_size=BATCH)
    _fit(_model(), [monitor])
    history = read_history(paths)
    assert list(history.columns) == list(HISTORY_COLUMNS)
    assert history["epoch"].tolist() == [1, 2, 3]
    assert history["phase"].tolist() == ["train"] * 3
    assert history["learning_rate"].tolist() == pytest.approx([0.01] * 3)
    assert not history[list(HISTORY_COLUMNS[:-1])].isna().any().any()
    assert (history["epoch_time"] > 0).all()

    status = read_status(paths)
    assert (status.state, status.epoch, status.total_epochs) == ("running", 3, 3)
    assert (status.batch, status.total_batches) == (STEPS, STEPS)
    assert status.pid == os.getpid() and status.error is None
    assert status.images_per_second > 0 and status.eta_seconds == 0
    assert status.started <= status.heartbeat
    assert monitor.failure is None and not monitor.stop_requested


# Throttled: after the first batch (always written: the live curve starts there) nothing
# more for an hour.
@pytest.mark.parametrize(("interval", "batch_seen"), [(0.0, 2), (3600.0, 1)])
def test_status_is_live_within_an_epoch_but_throttled(
    paths: RunPaths, interval: float, batch_seen: int
) -> None:
    seen: list[RunStatus] = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs=None) -> None:
            if len(seen) == 0 and batch == 1 and monitor.status.epoch == 2:
                seen.append(read_status(paths))

    monitor = RunMonitor(
        paths, total_epochs=3, steps_per_epoch=STEPS, batch_size=BATCH, status_interval=interval
    )
    _fit(_model(), [monitor, Spy()])
    assert (seen[0].state, seen[0].epoch, seen[0].batch) == ("running", 2, batch_seen)


def test_a_second_phase_continues_the_epoch_count_and_keeps_the_start_time(
    paths: RunPaths,
) -> None:
    model = _model()
    _fit(model, [RunMonitor(paths, total_epochs=5, steps_per_epoch=STEPS, batch_size=BATCH)])
    started = read_status(paths).started
    fine_tune = RunMonitor(
        paths,
        total_epochs=5,
        steps_per_epoch=STEPS,
        batch_size=BATCH,
        phase="fine_tune",
        initial_epoch=3,
    )
    _fit(model, [fine_tune], epochs=5, initial_epoch=3)
    history = read_history(paths)
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert history["phase"].tolist() == ["train"] * 3 + ["fine_tune"] * 2
    status = read_status(paths)
    assert (status.epoch, status.phase, status.started) == (5, "fine_tune", started)


def test_history_records_the_scheduled_learning_rate_of_each_epoch(paths: RunPaths) -> None:
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    monitor = RunMonitor(paths, total_epochs=2, steps_per_epoch=STEPS, batch_size=BATCH)
    _fit(_model(schedule), [monitor], epochs=2)
    assert read_history(paths)["learning_rate"].tolist() == pytest.approx([0.1, 0.1 * 0.5**STEPS])


def test_a_stop_request_stops_training_after_the_current_batch_and_the_cut_epoch_is_not_recorded(
    paths: RunPaths,
) -> None:
    class StopAfterSecondBatch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs=None) -> None:
            if batch == 1:
                paths.stop_request.touch()  # as the app's Stop button would

    monitor = RunMonitor(paths, total_epochs=3, steps_per_epoch=STEPS, batch_size=BATCH)
    counter = _CountBatches()
    _fit(_model(), [StopAfterSecondBatch(), monitor, counter])
    assert counter.batches == 2
    assert monitor.stop_requested and monitor.failure is None
    status = read_status(paths)
    assert (status.state, status.epoch, status.batch) == ("stopping", 1, 2)
    # Two of four batches are no epoch: no history row, so no curve point, no headline.
    assert read_history(paths).empty


def test_a_stop_mid_epoch_keeps_the_whole_epochs_before_it(paths: RunPaths) -> None:
    class StopInSecondEpoch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs=None) -> None:
            if self.model.optimizer.iterations.numpy() == STEPS + 1:
                paths.stop_request.touch()

    best = BestWeights(paths.weights, last_path=paths.last_weights)
    saved = []

    class WatchSaves(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs=None) -> None:
            saved.append(paths.last_weights.stat().st_mtime_ns)

    monitor = RunMonitor(paths, total_epochs=3, steps_per_epoch=STEPS, batch_size=BATCH)
    _fit(_model(), [StopInSecondEpoch(), best, monitor, WatchSaves()])
    assert read_history(paths)["epoch"].tolist() == [1]
    assert best.best_epoch == 1 and saved[0] == saved[1]  # epoch 2's cut weights not saved


def test_the_eta_ignores_the_first_epochs_tracing_time(monkeypatch, paths: RunPaths) -> None:
    import time as real_time

    from skinlab.train import callbacks

    class Clock:  # the monitor's clock: 10 s for the first (traced) batch, 0.1 s for others
        now = 0.0

        def monotonic(self) -> float:
            return self.now

        def time(self) -> float:
            return real_time.time()

    clock = Clock()
    monkeypatch.setattr(callbacks, "time", clock)

    class Tick(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs=None) -> None:
            clock.now += 10.0 if self.model.optimizer.iterations.numpy() == 1 else 0.1

    etas = []

    class ReadEta(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs=None) -> None:
            etas.append(monitor._eta())

    monitor = RunMonitor(paths, total_epochs=6, steps_per_epoch=STEPS, batch_size=BATCH)
    _fit(_model(), [Tick(), monitor, ReadEta()], epochs=6)
    later = [eta for eta in etas[1:] if eta is not None]
    # Five epochs of 4 x 0.1 s are left after the first; counted at the first epoch's 10.3 s,
    # the ETA was ~50 s.
    assert later and all(eta < 5.0 for eta in later), etas


def test_a_status_written_after_a_stop_request_says_stopping_even_before_it_is_honoured(
    paths: RunPaths,
) -> None:
    # The stop command writes "stopping"; a status write by the trainer between that and
    # its next batch end must not turn it back into "running".
    seen = []

    class StopAtEpochEnd(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs=None) -> None:
            paths.stop_request.touch()

    class ReadStatus(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs=None) -> None:
            seen.append((monitor.stop_requested, read_status(paths).state))

    monitor = RunMonitor(paths, total_epochs=3, steps_per_epoch=STEPS, batch_size=BATCH)
    _fit(_model(), [StopAtEpochEnd(), monitor, ReadStatus()])
    assert seen[0] == (False, "stopping")
    assert read_status(paths).state == "stopping"


def test_a_nan_loss_stops_training_with_a_clear_failure(paths: RunPaths) -> None:
    x, y = _data()
    x[2 * BATCH : 3 * BATCH] = np.nan  # the third batch of the first epoch
    monitor = RunMonitor(paths, total_epochs=3, steps_per_epoch=STEPS, batch_size=BATCH)
    counter = _CountBatches()
    _fit(_model(), [monitor, counter], x, y)
    assert monitor.failure == "Loss became NaN at epoch 1, batch 3; lower the learning rate."
    assert counter.batches == 3
    status = read_status(paths)
    assert status.state == "failed" and status.error == monitor.failure
    assert status.finished is not None


def test_a_huge_learning_rate_is_reported_as_a_failure(paths: RunPaths) -> None:
    monitor = RunMonitor(paths, total_epochs=3, steps_per_epoch=STEPS, batch_size=BATCH)
    x, y = _data()
    _fit(_model(1e30), [monitor], x * 1e10, y)
    assert monitor.failure is not None
    assert (
        monitor.failure.startswith("Loss became") and "lower the learning rate" in monitor.failure
    )
    assert read_status(paths).state == "failed"


class _Clock:
    """A fake ``time.time`` that a callback moves on by one second per batch."""

    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now


def _ticking_clock(monkeypatch, seconds_per_batch: float) -> keras.callbacks.Callback:
    """Give :mod:`skinlab.train.budget` a fake clock; the returned callback moves it per batch."""
    from skinlab.train import budget as budget_module

    clock = _Clock()
    monkeypatch.setattr(budget_module, "time", clock)

    class Tick(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs=None) -> None:
            clock.now += seconds_per_batch

    return Tick()


def test_the_time_budget_stops_at_the_epoch_boundary_the_next_epoch_would_not_fit(
    monkeypatch, paths: RunPaths
) -> None:
    from skinlab.train.budget import TimeBudget

    tick = _ticking_clock(monkeypatch, 1.0)

    counter = _CountBatches()
    budget = TimeBudget(minutes=10.5 / 60)  # 10.5 s; an epoch is 4 batches = 4 s
    monitor = RunMonitor(paths, total_epochs=9, steps_per_epoch=STEPS, batch_size=BATCH)
    _fit(_model(), [tick, budget, monitor, counter], epochs=9)
    # After 2 epochs (8 s), a third (4 s more) would end at 12 s > 10.5 s: stop there,
    # rather than cut epoch 3 after its third batch and throw it away.
    assert budget.exhausted and counter.batches == 2 * STEPS
    assert read_history(paths)["epoch"].tolist() == [1, 2]


def test_the_time_budget_never_cuts_the_first_epoch(monkeypatch, paths: RunPaths) -> None:
    from skinlab.train.budget import TimeBudget

    tick = _ticking_clock(monkeypatch, 100.0)  # every batch alone outruns the budget

    budget = TimeBudget(minutes=1 / 60)
    monitor = RunMonitor(paths, total_epochs=9, steps_per_epoch=STEPS, batch_size=BATCH)
    _fit(_model(), [tick, budget, monitor], epochs=9)
    assert budget.exhausted and read_history(paths)["epoch"].tolist() == [1]


def test_the_time_budget_fits_the_one_cycle_schedule_to_the_epochs_that_fit(
    monkeypatch, paths: RunPaths
) -> None:
    from skinlab.train.budget import TimeBudget
    from skinlab.train.schedules import OneCycle

    tick = _ticking_clock(monkeypatch, 1.0)

    rates: list[float] = []

    class Rate(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch: int, logs=None) -> None:
            optimizer = self.model.optimizer
            rates.append(float(keras.ops.convert_to_numpy(optimizer.learning_rate)))

    schedule = OneCycle(0.01, total_steps=20 * STEPS)  # planned for 20 epochs
    counter = _CountBatches()
    budget = TimeBudget(minutes=26.5 / 60)  # 26.5 s; an epoch is 4 batches = 4 s: 6 fit
    heard: list[int] = []
    budget.plan(
        schedule, steps_per_epoch=STEPS, first_epoch=0, last_epoch=20, on_replan=heard.append
    )
    monitor = RunMonitor(paths, total_epochs=20, steps_per_epoch=STEPS, batch_size=BATCH)
    _fit(_model(schedule), [Rate(), tick, budget, monitor, counter], epochs=20)
    # Six whole epochs, and the schedule was moved to end with the sixth: the last batch
    # trains at a rate near zero instead of the 20-epoch cycle's near-peak rate.
    assert read_history(paths)["epoch"].tolist() == [1, 2, 3, 4, 5, 6]
    assert budget.planned_last_epoch == 6 and schedule.total_steps == 6 * STEPS
    assert rates[-1] < 0.1 * max(rates)
    assert heard and heard[-1] == 6 and heard == sorted(heard, reverse=True)
    # Without the plan, the same budget ends the run at the rate of step 24 of 80: near the peak.
    assert float(keras.ops.convert_to_numpy(OneCycle(0.01, 20 * STEPS)(23))) > 0.8 * 0.01


def test_the_plan_never_goes_past_the_configured_epochs(monkeypatch, paths: RunPaths) -> None:
    from skinlab.train.budget import TimeBudget
    from skinlab.train.schedules import OneCycle

    tick = _ticking_clock(monkeypatch, 1.0)
    schedule = OneCycle(0.01, total_steps=3 * STEPS)
    budget = TimeBudget(minutes=60)  # far more time than 3 epochs need
    budget.plan(schedule, steps_per_epoch=STEPS, first_epoch=0, last_epoch=3)
    counter = _CountBatches()
    _fit(_model(schedule), [tick, budget, counter], epochs=3)
    assert counter.batches == 3 * STEPS and schedule.total_steps == 3 * STEPS
