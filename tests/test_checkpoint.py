"""BestWeights: the latest and the best epoch's weights, each written atomically."""

from __future__ import annotations

import hashlib

import keras
import numpy as np

from skinlab.train.checkpoint import BestWeights


def _model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(inputs))


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_improving_epoch_writes_best_as_an_exact_copy_of_the_latest_weights(tmp_path):
    model = _model()
    best = BestWeights(tmp_path / "best.weights.h5", last_path=tmp_path / "last.weights.h5")
    best.set_model(model)
    best.on_epoch_end(0, {"val_loss": 1.0})
    assert _digest(best.path) == _digest(best.last_path)
    assert best.best == 1.0 and best.best_epoch == 1
    assert not list(tmp_path.glob("*.tmp*"))  # no temporary files left behind


def test_a_worse_epoch_updates_the_latest_weights_but_keeps_the_best(tmp_path):
    model = _model()
    best = BestWeights(tmp_path / "best.weights.h5", last_path=tmp_path / "last.weights.h5")
    best.set_model(model)
    best.on_epoch_end(0, {"val_loss": 1.0})
    kept = model.get_weights()
    saved = _digest(best.path)
    model.set_weights([w + 1 for w in kept])
    best.on_epoch_end(1, {"val_loss": 2.0})
    assert _digest(best.path) == saved
    assert _digest(best.last_path) != saved
    assert best.best_epoch == 1
    fresh = _model()
    assert best.restore(fresh)
    for a, b in zip(fresh.get_weights(), kept, strict=True):
        np.testing.assert_array_equal(a, b)


def test_without_a_latest_file_the_best_is_saved_directly(tmp_path):
    model = _model()
    best = BestWeights(tmp_path / "best.weights.h5")
    best.set_model(model)
    best.on_epoch_end(0, {"val_loss": 0.5})
    fresh = _model()
    fresh.set_weights([w * 0 for w in fresh.get_weights()])
    assert best.restore(fresh)
    for a, b in zip(fresh.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_mode_last_keeps_every_whole_epoch_even_a_worse_one(tmp_path):
    model = _model()
    best = BestWeights(
        tmp_path / "best.weights.h5", mode="last", last_path=tmp_path / "last.weights.h5"
    )
    best.set_model(model)
    best.on_epoch_end(0, {"val_loss": 1.0})
    model.set_weights([w + 1 for w in model.get_weights()])
    best.on_epoch_end(1, {"val_loss": 2.0})  # worse, and still the one kept
    assert _digest(best.path) == _digest(best.last_path) and best.best_epoch == 2
