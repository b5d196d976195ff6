"""Label-smoothed cross-entropy on class-index labels."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from skinlab.train.losses import SmoothedCrossentropy


def _loss(loss: keras.losses.Loss, labels, logits) -> float:
    return float(
        keras.ops.convert_to_numpy(loss(np.asarray(labels), np.asarray(logits, "float32")))
    )


LABELS = [0, 2, 1]
LOGITS = np.random.default_rng(0).normal(size=(3, 4)) * 3


def test_no_smoothing_is_sparse_categorical_crossentropy() -> None:
    sparse = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert _loss(SmoothedCrossentropy(0.0), LABELS, LOGITS) == pytest.approx(
        _loss(sparse, LABELS, LOGITS), rel=1e-6
    )


def test_smoothing_changes_the_loss_and_a_certain_right_answer_is_no_longer_free() -> None:
    assert _loss(SmoothedCrossentropy(0.1), LABELS, LOGITS) != pytest.approx(
        _loss(SmoothedCrossentropy(0.0), LABELS, LOGITS), rel=1e-3
    )
    certain = np.eye(4)[LABELS] * 50.0  # a huge logit on the right class
    assert _loss(SmoothedCrossentropy(0.0), LABELS, certain) < 1e-6
    assert _loss(SmoothedCrossentropy(0.1), LABELS, certain) > 1.0
    # Labels shaped (N, 1), as Keras sometimes passes them, mean the same.
    assert _loss(SmoothedCrossentropy(0.1), np.reshape(LABELS, (3, 1)), LOGITS) == pytest.approx(
        _loss(SmoothedCrossentropy(0.1), LABELS, LOGITS)
    )


def test_smoothed_loss_round_trips_through_keras_serialisation() -> None:
    loss = SmoothedCrossentropy(0.2)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(again, SmoothedCrossentropy) and again.label_smoothing == 0.2
