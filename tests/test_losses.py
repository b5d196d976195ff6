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


def test_logit_offsets_shift_the_logits_inside_the_loss_only() -> None:
    offsets = np.log([0.6, 0.2, 0.15, 0.05])
    sparse = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    adjusted = SmoothedCrossentropy(0.0, offsets)
    assert _loss(adjusted, LABELS, LOGITS) == pytest.approx(
        _loss(sparse, LABELS, LOGITS + offsets), rel=1e-6
    )
    # Offsets equal for every class change nothing (the softmax does not see them).
    assert _loss(SmoothedCrossentropy(0.1, [-2.0] * 4), LABELS, LOGITS) == pytest.approx(
        _loss(SmoothedCrossentropy(0.1), LABELS, LOGITS), rel=1e-6
    )
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(adjusted))
    assert again.logit_offsets == pytest.approx(offsets.tolist())


def _learned_bias(loss: keras.losses.Loss, labels: np.ndarray) -> np.ndarray:
    """Class probabilities a bias-only classifier learns from ``labels`` under ``loss``."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss)
    model.fit(np.zeros((len(labels), 1), "float32"), labels, epochs=60, batch_size=60, verbose=0)
    logits = keras.ops.convert_to_numpy(model(np.zeros((1, 1), "float32")))[0]
    return np.exp(logits) / np.exp(logits).sum()


def test_logit_adjustment_makes_a_blind_model_answer_the_balanced_prior() -> None:
    # With nothing to see, a classifier's best answer is the class mix it trained on; with
    # the log prior in the loss, its own logits answer as if the classes were balanced.
    labels = np.array([0] * 42 + [1] * 12 + [2] * 6)
    prior = np.bincount(labels) / len(labels)
    plain = _learned_bias(SmoothedCrossentropy(0.0), labels)
    adjusted = _learned_bias(SmoothedCrossentropy(0.0, np.log(prior)), labels)
    assert plain == pytest.approx(prior, abs=0.03)
    assert adjusted == pytest.approx([1 / 3] * 3, abs=0.03)


def test_group_offsets_shift_each_rows_logits_by_its_groups_row() -> None:
    from skinlab.train.losses import GroupedAccuracy, encode_groups

    table = [
        [0.0] * 4,
        np.log([0.6, 0.2, 0.15, 0.05]).tolist(),
        np.log([0.1, 0.1, 0.1, 0.7]).tolist(),
    ]
    groups = np.array([1, 2, 0])
    codes = encode_groups(LABELS, groups, 4)
    sparse = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    shifted = LOGITS + np.asarray(table, "float32")[groups]
    grouped = SmoothedCrossentropy(0.0, group_offsets=table)
    assert _loss(grouped, codes, LOGITS) == pytest.approx(_loss(sparse, LABELS, shifted), rel=1e-6)
    # Group 0 is a plain label: validation labels need no encoding.
    assert _loss(grouped, LABELS, LOGITS) == pytest.approx(_loss(sparse, LABELS, LOGITS), rel=1e-6)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(grouped))
    np.testing.assert_allclose(again.group_offsets, table)
    accuracy = GroupedAccuracy(4)
    accuracy.update_state(codes, LOGITS)
    plain = keras.metrics.SparseCategoricalAccuracy()
    plain.update_state(LABELS, LOGITS)
    assert float(accuracy.result()) == pytest.approx(float(plain.result()))


def test_collection_adjustment_keeps_a_model_from_learning_the_collection_as_the_class() -> None:
    # The only input is which collection an image came from. Collection A holds classes 0 and
    # 2, collection B classes 1 and 2: plainly trained, the model reads the class off the
    # collection; with log p(class | collection) in the loss, its own logits no longer move
    # with the collection (the cue is already paid for), so they say nothing about 0 or 1.
    from skinlab.train.imbalance import collection_offsets
    from skinlab.train.losses import encode_groups

    labels = np.array([0] * 30 + [2] * 10 + [1] * 30 + [2] * 10)
    collections = np.array(["A"] * 40 + ["B"] * 40)
    inputs = (collections == "B").astype("float32")[:, None]
    groups, table = collection_offsets(labels, collections, 3, cap=10.0)  # unclipped

    def fitted(loss, targets):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(3)])
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss)
        model.fit(inputs, targets, epochs=150, batch_size=80, verbose=0)
        logits = keras.ops.convert_to_numpy(model(np.array([[0.0], [1.0]], "float32")))
        return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    plain = fitted(SmoothedCrossentropy(0.0), labels)
    adjusted = fitted(
        SmoothedCrossentropy(0.0, group_offsets=table), encode_groups(labels, groups, 3)
    )
    assert plain[0, 0] > 0.6 and plain[1, 1] > 0.6  # the collection tells the class

    def swing(p):  # how far the log-odds of class 0 against 1 move from collection A to B
        return np.log(p[0, 0] / p[0, 1]) - np.log(p[1, 0] / p[1, 1])

    # Measured: 6.0 plainly, under 1 adjusted (SGD; the absent cells' half-row share still
    # leaves a faint push).
    assert swing(adjusted) < 0.25 * swing(plain)
    assert adjusted.max() < 0.5  # near the overall class mix (0.375, 0.375, 0.25)
