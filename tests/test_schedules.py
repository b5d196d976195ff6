"""The one-cycle schedule: warm-up to the peak, cosine down to zero, serialisable."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from skinlab.train.schedules import OneCycle


def _lr(schedule: OneCycle, step: int) -> float:
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_one_cycle_warms_up_over_a_tenth_then_decays_to_zero() -> None:
    schedule = OneCycle(3e-3, total_steps=1000)
    assert _lr(schedule, 0) == pytest.approx(3e-3 / 100)  # the first step of 100 warm-up
    assert _lr(schedule, 49) == pytest.approx(1.5e-3)
    assert _lr(schedule, 99) == pytest.approx(3e-3)  # the peak, at the end of the warm-up
    assert _lr(schedule, 100) == pytest.approx(3e-3)
    assert _lr(schedule, 550) == pytest.approx(1.5e-3, rel=1e-3)  # halfway down the cosine
    assert _lr(schedule, 1000) == pytest.approx(0, abs=1e-9)
    assert _lr(schedule, 5000) == pytest.approx(0, abs=1e-9)
    rates = [_lr(schedule, s) for s in range(0, 1000, 10)]
    assert max(rates) == pytest.approx(3e-3)
    assert np.all(np.diff(rates[:10]) > 0) and np.all(np.diff(rates[10:]) < 0)


def test_one_cycle_round_trips_through_keras_serialisation() -> None:
    schedule = OneCycle(1e-3, total_steps=40, warmup_fraction=0.25)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(again, OneCycle) and again.get_config() == schedule.get_config()
    assert _lr(again, 9) == pytest.approx(1e-3)


def test_one_cycle_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="positive peak"):
        OneCycle(0.0, total_steps=10)
    with pytest.raises(ValueError, match="warm-up fraction"):
        OneCycle(1e-3, total_steps=10, warmup_fraction=1.0)


def test_fitting_the_total_steps_ends_the_cycle_sooner_without_a_retrace() -> None:
    schedule = OneCycle(1e-3, total_steps=1000)
    rate = tf.function(lambda step: schedule(step))
    assert float(rate(tf.constant(500))) > 1e-4
    schedule.fit_total_steps(500)
    assert schedule.total_steps == 500
    assert float(rate(tf.constant(500))) == pytest.approx(0, abs=1e-9)
    assert float(rate(tf.constant(275))) == pytest.approx(0.5e-3, rel=1e-3)  # halfway down
    assert rate.experimental_get_tracing_count() == 1
    schedule.fit_total_steps(0)  # never below one step
    assert schedule.total_steps == 1
