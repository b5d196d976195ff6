"""Frozen-backbone training on cached features: a shared head, one backbone pass, the same
training as running the backbone every epoch, and every run file as before.

MobileNetV2 runs at 32 px on a small synthetic demo, with random stand-in "ImageNet"
weights in an offline Keras cache (as in test_weights.py).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import offline_keras_home, seed_keras_cache

from skinlab.core import runs
from skinlab.core.config import RunConfig
from skinlab.data.pipeline import label_indices
from skinlab.evaluate.scoring import predict_logits
from skinlab.model.augment import augmentation_layers
from skinlab.model.backbones import backbone_submodel, build_model
from skinlab.model.modelio import build_for_config, load_run_model
from skinlab.train import features
from skinlab.train.checkpoint import BestWeights
from skinlab.train.training import prepare_data, train

SIZE = 32
# Keras loads its 224 px weights file for 32 px, and says so for every model.
pytestmark = pytest.mark.filterwarnings("ignore:`input_shape` is undefined:UserWarning")


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """Seeded offline Keras cache and a models folder, for the whole module."""
    base = tmp_path_factory.mktemp("features")
    with pytest.MonkeyPatch.context() as mp:
        home = offline_keras_home(base / "keras-home", mp)
        seed_keras_cache("mobilenetv2", SIZE, home / "models", mp)
        mp.setenv("SKINLAB_MODELS_DIR", str(base / "models"))
        yield base


@pytest.fixture(scope="module")
def demo_root(offline) -> Path:
    from skinlab.data.demo import generate_demo_dataset

    return generate_demo_dataset(offline / "demo", scale=0.2)


def _config(root: Path, **changes) -> RunConfig:
    base = dict(
        data_root=str(root),
        backbone="mobilenetv2",
        weights="imagenet",
        image_size=SIZE,
        batch_size=16,
        epochs=2,
        dropout=0.0,
        augmentation="none",
        precision="float32",  # the same arithmetic in every run compared here
        seed=7,
    )
    return RunConfig(**{**base, **changes})


class _Counting:
    """An extractor that counts the images it is given (inside compiled functions too)."""

    def __init__(self, extractor) -> None:
        self.extractor = extractor
        self.images = tf.Variable(0, dtype=tf.int64)

    def __call__(self, x, training=False):
        self.images.assign_add(tf.cast(tf.shape(x)[0], tf.int64))
        return self.extractor(x, training=training)


@pytest.fixture(scope="module")
def passes(offline):
    """Every feature pass of the module's runs: ``(images given, images in the pass)``."""
    return []


def _counting_extract(passes: list, real=features.extract_features):
    def extract(extractor, images, **kwargs):
        counting = _Counting(extractor)
        result = real(counting, images, **kwargs)
        passes.append((int(counting.images.numpy()), result.features.shape[:2]))
        return result

    return extract


@pytest.fixture(scope="module")
def cached_run(demo_root, passes):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(features, "extract_features", _counting_extract(passes))
        return train(_config(demo_root, epochs=3))


@pytest.fixture(scope="module")
def plain_run(demo_root):
    return train(_config(demo_root, epochs=3, feature_cache="off"))


def _model(**changes) -> keras.Model:
    keras.utils.set_random_seed(3)
    options = dict(num_classes=3, image_size=SIZE, dropout=0.0, weights="imagenet")
    return build_model("mobilenetv2", **{**options, **changes})


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, SIZE, SIZE, 3)).astype("float32")


def test_head_shares_the_full_models_layers_and_the_split_computes_the_same_logits(
    offline,
) -> None:
    model = _model(augmentation=augmentation_layers("light", seed=1))
    split = features.split_model(model)
    assert split.head.get_layer("logits") is model.get_layer("logits")
    assert split.augmentation is model.get_layer("augmentation")
    assert "augmentation" not in [layer.name for layer in split.extractor.layers]
    x = _images(4)
    np.testing.assert_allclose(
        split.head(split.extractor(x, training=False)),
        model(x, training=False),
        rtol=1e-5,
        atol=1e-5,
    )
    # Training the head trains the full model in place: no copies to carry back.
    before = model.get_layer("logits").get_weights()[0].copy()
    split.head.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    split.head.fit(np.ones((8, 1280), "float32"), np.zeros(8, "int32"), verbose=0)
    assert not np.allclose(model.get_layer("logits").get_weights()[0], before)


def test_a_scratch_model_cannot_be_split_and_only_frozen_phases_cache() -> None:
    with pytest.raises(ValueError, match="Only transfer models"):
        features.split_model(build_model("skinlab_cnn", num_classes=3, image_size=SIZE))
    frozen = _config(Path("/d"))
    assert features.caches_features(frozen, unfreeze=None)
    assert not features.caches_features(frozen, unfreeze=10)
    assert not features.caches_features(frozen.replace(feature_cache="off"), unfreeze=None)
    assert not features.caches_features(frozen.replace(weights="none"), unfreeze=None)


def test_feature_cache_options_are_validated() -> None:
    with pytest.raises(ValueError, match="feature_cache must be one of auto, off"):
        RunConfig(feature_cache="always")
    with pytest.raises(ValueError, match="augmented_views must be at least 1"):
        RunConfig(augmented_views=0)


def test_each_epoch_draws_one_of_the_cached_views_of_every_image() -> None:
    views, n = 4, 10
    table = np.zeros((views, n, 2), "float32")
    table[:, :, 0] = np.arange(views)[:, None]  # which view
    table[:, :, 1] = np.arange(n)[None, :]  # which image
    cached = features.CachedFeatures(table, np.arange(n, dtype="int32") % 3)
    dataset = cached.dataset(4, shuffle=True, seed=3)
    drawn = []
    for _ in range(4):
        rows = np.concatenate([x for x, _ in dataset.as_numpy_iterator()])
        labels = np.concatenate([y for _, y in dataset.as_numpy_iterator()])
        assert sorted(rows[:, 1].astype(int)) == list(range(n))  # every image once
        assert set(rows[:, 0].astype(int)) <= set(range(views))
        assert len(labels) == n
        drawn.append(tuple(rows[np.argsort(rows[:, 1]), 0].astype(int)))
    assert len(set(drawn)) > 1  # the draw changes from epoch to epoch
    assert len({v for epoch in drawn for v in epoch}) > 1


def test_balanced_draws_of_cached_features_pick_each_class_about_equally() -> None:
    from skinlab.train.imbalance import balanced_probabilities

    labels = np.array([0] * 40 + [1] * 8 + [2] * 2, "int32")
    table = np.arange(50, dtype="float32").reshape(1, 50, 1)  # feature = image number
    cached = features.CachedFeatures(table, labels)
    dataset = cached.dataset(8, seed=3, draw_probabilities=balanced_probabilities(labels))
    seen = [np.concatenate([y for _, y in dataset.as_numpy_iterator()]) for _ in range(20)]
    assert all(len(epoch) == 50 for epoch in seen)
    shares = np.bincount(np.concatenate(seen), minlength=3) / 1000
    assert shares == pytest.approx([1 / 3] * 3, abs=0.05)
    x, y = next(dataset.as_numpy_iterator())
    np.testing.assert_array_equal(labels[x[:, 0].astype(int)], y)  # labels follow features


def test_augmented_views_are_distinct_and_each_image_goes_through_the_backbone_once_per_view(
    offline,
) -> None:
    model = _model(augmentation=augmentation_layers("strong", seed=1))
    split = features.split_model(model)
    counting = _Counting(split.extractor)
    x = _images(10)
    images = tf.data.Dataset.from_tensor_slices((x, np.zeros(10, "int32"))).batch(4)
    cached = features.extract_features(counting, images, augmentation=split.augmentation, views=3)
    assert cached.features.shape == (3, 10, 1280)
    assert int(counting.images.numpy()) == 30
    assert not np.allclose(cached.features[0], cached.features[1])
    plain = features.extract_features(split.extractor, images, views=3)
    assert plain.views == 1  # without augmentation, one view is all there is
    # Batches of 4 against one of 10: oneDNN picks kernels by batch size, and float32
    # rounding through ~50 layers then differs by ~1e-4 on features of order 1.
    np.testing.assert_allclose(plain.features[0], split.extractor(x), rtol=1e-3, atol=1e-3)


def test_best_weights_of_a_head_fit_hold_the_whole_model_and_the_backbone_is_saved_once(
    offline, tmp_path, monkeypatch
) -> None:
    model = _model()
    split = features.split_model(model)
    full_saves = []
    real_save = model.save_weights
    monkeypatch.setattr(model, "save_weights", lambda path: full_saves.append(real_save(path)))
    best = BestWeights(
        tmp_path / "best.weights.h5",
        monitor="loss",
        last_path=tmp_path / "last.weights.h5",
        target=model,
    )
    split.head.compile(optimizer=keras.optimizers.Adam(0.1), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(1).normal(size=(16, 1280)).astype("float32")
    y = np.arange(16, dtype="int32") % 3
    split.head.fit(x, y, epochs=3, callbacks=[best], verbose=0)
    assert len(full_saves) == 1  # the template; each epoch then writes only the head
    last, best_copy = _model(), _model()
    last.load_weights(best.last_path)
    for saved, live in zip(last.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, live)
    best_copy.load_weights(best.path)  # a whole model too, of an epoch that may be earlier
    assert best.best_epoch is not None


def test_a_cached_run_computes_features_once_and_writes_every_run_file(cached_run, passes) -> None:
    assert cached_run.state == "finished"
    manifest = runs.read_manifest(cached_run.paths)
    n_train, n_val = manifest.train_images, manifest.val_count
    # One pass over the training images and one over validation, for three epochs.
    assert passes == [(n_train, (1, n_train)), (n_val, (1, n_val))]
    history = runs.read_history(cached_run.paths)
    assert list(history["epoch"]) == [1, 2, 3] and set(history["phase"]) == {"train"}
    assert history[["loss", "val_loss", "accuracy", "val_accuracy"]].notna().all().all()
    assert cached_run.metrics["feature_cache"]["images"] == n_train
    assert cached_run.paths.export.exists()
    assert runs.read_status(cached_run.paths).phase == "done"


def test_cached_and_uncached_training_learn_the_same_head(cached_run, plain_run) -> None:
    a, b = runs.read_history(cached_run.paths), runs.read_history(plain_run.paths)
    # Same seed, same batches, no dropout or augmentation: the two are bit-identical on this
    # CPU. The margin is for kernels chosen by batch composition elsewhere (features then
    # differ by ~1e-4, see above), far below any learning signal.
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-4)
    np.testing.assert_allclose(a["val_accuracy"], b["val_accuracy"])
    cached, plain = load_run_model(cached_run.paths), load_run_model(plain_run.paths)
    x = _images(8, seed=5)
    np.testing.assert_allclose(
        cached.model(x, training=False), plain.model(x, training=False), rtol=1e-3, atol=1e-4
    )


def test_best_weights_of_a_cached_run_load_and_reproduce_its_validation_accuracy(
    cached_run, demo_root
) -> None:
    loaded = load_run_model(cached_run.paths)
    data = prepare_data(_config(demo_root))
    logits = predict_logits(loaded.model, data.val, SIZE)
    accuracy = float(np.mean(np.argmax(logits, 1) == label_indices(data.val, data.class_names)))
    assert accuracy == pytest.approx(cached_run.metrics["validation"]["accuracy"])


def test_a_stop_request_on_the_cached_path_keeps_whole_epochs_and_resume_finishes(
    demo_root, monkeypatch
) -> None:
    from skinlab.jobs import manager
    from skinlab.train import training

    config = _config(demo_root, epochs=3)
    paths = runs.new_run(config)
    runs.request_stop(paths)  # honoured at the head's first batch: no whole epoch to keep
    assert train(config, paths=paths).state == "stopped"
    assert runs.read_history(paths).empty and not manager.can_resume(paths)
    paths.stop_request.unlink()

    class StopAfterTheFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs=None) -> None:
            if epoch == 0:
                runs.request_stop(paths)  # honoured in epoch 2, which is then dropped

    real = training._callbacks
    monkeypatch.setattr(
        training, "_callbacks", lambda *args: [*real(*args), StopAfterTheFirstEpoch()]
    )
    assert train(config, paths=paths).state == "stopped"
    assert list(runs.read_history(paths)["epoch"]) == [1]
    load_run_model(paths)  # the stopped run's best weights are a whole model
    paths.stop_request.unlink()
    monkeypatch.setattr(training, "_callbacks", real)
    assert train(config, paths=paths, resume=True).state == "finished"
    assert list(runs.read_history(paths)["epoch"]) == [1, 2, 3]


def test_fine_tuning_after_a_cached_head_phase_trains_the_backbone_on_images(
    demo_root, monkeypatch
) -> None:
    passes: list = []
    monkeypatch.setattr(features, "extract_features", _counting_extract(passes))
    config = _config(
        demo_root,
        epochs=1,
        augmentation="light",
        augmented_views=2,
        fine_tune_layers=5,
        fine_tune_epochs=1,
    )
    result = train(config)
    assert result.state == "finished"
    assert [shape[0] for _, shape in passes] == [2, 1]  # views of train, then validation
    assert list(runs.read_history(result.paths)["phase"]) == ["train", "fine-tune"]
    trained = backbone_submodel(load_run_model(result.paths).model).get_weights()
    imagenet = backbone_submodel(build_for_config(config, 9)).get_weights()
    changed = [not np.array_equal(t, i) for t, i in zip(trained, imagenet, strict=True)]
    assert any(changed) and not all(changed)  # the top of the backbone moved, the rest not


def test_progress_of_the_feature_pass_is_in_the_run_status(demo_root, monkeypatch) -> None:
    seen = []
    real = runs.write_status

    def spy(paths, status):
        seen.append((status.phase, status.batch, status.total_batches))
        real(paths, status)

    monkeypatch.setattr(runs, "write_status", spy)
    train(_config(demo_root, epochs=1))
    progress = [(b, t) for phase, b, t in seen if phase == features.FEATURES_PHASE]
    assert progress[-1][0] == progress[-1][1] > 0


def test_the_run_panel_says_the_features_are_being_computed() -> None:
    from skinlab.app.train_monitor import progress_lines

    status = runs.RunStatus("running", phase=features.FEATURES_PHASE, batch=3, total_batches=6)
    [(fraction, text)] = progress_lines(status)
    assert fraction == 0.5 and "features" in text
