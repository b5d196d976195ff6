"""End-to-end training on the synthetic demo data: real Keras runs, tiny and fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from skinlab.core import runs
from skinlab.core.config import RunConfig
from skinlab.core.errors import SkinlabError
from skinlab.model.modelio import ModelFileError, load_run_model
from skinlab.train.training import TrainingFailed, prepare_data, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    from skinlab.data.demo import generate_demo_dataset

    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", scale=0.5)


def _config(root: Path, **changes) -> RunConfig:
    base = dict(
        data_root=str(root), backbone="custom", image_size=48, batch_size=16, epochs=2, seed=7
    )
    return RunConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def finished_run(demo_root: Path, tmp_path_factory):
    os.environ["SKINLAB_MODELS_DIR"] = str(tmp_path_factory.mktemp("models"))
    try:
        return train(_config(demo_root))
    finally:
        del os.environ["SKINLAB_MODELS_DIR"]


def test_two_epoch_run_writes_every_file_with_consistent_contents(finished_run) -> None:
    paths = finished_run.paths
    assert finished_run.state == "finished"
    for name in (
        "config",
        "status",
        "history",
        "weights",
        "manifest",
        "metrics",
        "predictions",
        "export",
    ):
        assert getattr(paths, name).exists(), name
    assert any(paths.tensorboard.rglob("*")), "TensorBoard logs"
    history = runs.read_history(paths)
    assert list(history["epoch"]) == [1, 2]
    assert (
        history[["loss", "val_loss", "accuracy", "val_accuracy", "learning_rate"]]
        .notna()
        .all()
        .all()
    )
    status = runs.read_status(paths)
    assert status.state == "finished" and status.epoch == 2
    manifest = runs.read_manifest(paths)
    assert len(manifest.class_names) == 9 and manifest.image_size == 48
    assert manifest.weights_sha256 == runs.file_sha256(paths.weights)
    assert manifest.train_images + (manifest.val_count or 0) > 0
    metrics = json.loads(paths.metrics.read_text())
    for split in ("validation", "test"):
        for key in ("accuracy", "balanced_accuracy", "macro_f1", "per_class", "confusion_matrix"):
            assert key in metrics[split]
    predictions = pd.read_csv(paths.predictions)
    assert set(predictions["split"]) == {"Val", "Test"}
    assert len(predictions[predictions["split"] == "Val"]) == manifest.val_count


def test_run_model_reloads_from_registry_and_predicts_like_training(
    finished_run, demo_root
) -> None:
    loaded = load_run_model(finished_run.paths)
    x = np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 3)).astype("float32")
    logits = loaded.model(x, training=False)
    assert logits.shape == (2, 9)


def test_weights_with_wrong_hash_are_refused(finished_run, tmp_path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(finished_run.paths.root, copy)
    with open(copy / runs.WEIGHTS, "r+b") as fh:
        fh.seek(-200, os.SEEK_END)
        fh.write(b"\0" * 8)
    with pytest.raises(ModelFileError, match="do not match the hash"):
        load_run_model(runs.RunPaths(copy))


def test_evaluate_cli_prints_the_documented_json(finished_run, demo_root) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "skinlab",
            "evaluate",
            str(finished_run.paths.root),
            "--data",
            str(demo_root),
            "--split",
            "Test",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    for key in (
        "accuracy",
        "balanced_accuracy",
        "macro_f1",
        "per_class",
        "confusion_matrix",
        "class_names",
    ):
        assert key in result


def test_a_run_with_tta_scores_validation_and_test_on_that_many_views(
    demo_root, monkeypatch
) -> None:
    from skinlab.evaluate import scoring

    views: list[int] = []
    real = scoring.tta_batch
    monkeypatch.setattr(scoring, "tta_batch", lambda x, n: views.append(n) or real(x, n))
    result = train(_config(demo_root, epochs=1, tta=2))
    assert views and set(views) == {2}  # Val and Test, every chunk through 2 views
    assert {"validation", "test"} <= set(result.metrics)
    saved = json.loads(result.paths.config.read_text())
    assert saved["tta"] == 2


def test_evaluate_on_validation_scores_the_runs_own_validation_images(
    finished_run, demo_root, capsys
) -> None:
    from skinlab.cli import main

    ref, data = str(finished_run.paths.root), str(demo_root)
    assert main(["evaluate", ref, "--data", data, "--split", "validation", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    saved = json.loads(finished_run.paths.metrics.read_text())["validation"]
    # The same images and the same model as the run's own validation score.
    assert result["split"] == "validation" and result["n"] == saved["n"]
    assert result["balanced_accuracy"] == pytest.approx(saved["balanced_accuracy"])
    assert "intervals" in result


def test_evaluate_with_tta_averages_eight_views_and_reports_the_same_keys_plus_tta(
    finished_run, demo_root, monkeypatch, capsys
) -> None:
    from skinlab.cli import main
    from skinlab.evaluate import scoring

    views: list[int] = []
    real = scoring.tta_batch
    monkeypatch.setattr(scoring, "tta_batch", lambda x, n: views.append(n) or real(x, n))
    ref, data = str(finished_run.paths.root), str(demo_root)
    assert main(["evaluate", ref, "--data", data, "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["evaluate", ref, "--data", data, "--tta", "8", "--json"]) == 0
    augmented = json.loads(capsys.readouterr().out)
    assert views and set(views) == {8}  # every chunk of images went through 8 views
    assert set(augmented) == set(plain) and (plain["tta"], augmented["tta"]) == (1, 8)
    assert augmented["n"] == plain["n"]
    assert (
        augmented["per_class"] != plain["per_class"] or augmented["log_loss"] != plain["log_loss"]
    )
    with pytest.raises(SystemExit):
        main(["evaluate", ref, "--tta", "33"])


def test_same_seed_reproduces_the_same_history(demo_root) -> None:
    cfg = _config(demo_root, epochs=2, deterministic=True, augmentation="light")
    a = runs.read_history(train(cfg).paths)
    b = runs.read_history(train(cfg).paths)
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-6)
    np.testing.assert_allclose(a["val_accuracy"], b["val_accuracy"], rtol=1e-6)


def test_nan_loss_marks_the_run_failed_with_that_reason(demo_root) -> None:
    cfg = _config(demo_root, optimizer="sgd", learning_rate=1e12, epochs=2)
    with pytest.raises(TrainingFailed, match="NaN"):
        train(cfg)
    latest = runs.list_runs()[0]
    status = runs.read_status(latest)
    assert status.state == "failed" and "NaN" in status.error


def test_oversampling_never_puts_a_copy_of_a_training_image_in_validation(demo_root) -> None:
    data = prepare_data(_config(demo_root, imbalance="oversample"))
    assert set(data.train["content_hash"]).isdisjoint(set(data.val["content_hash"]))
    assert len(set(data.counts_after.values())) == 1  # every class raised to the largest
    assert data.counts_after != data.counts_before


def test_offline_imagenet_weights_fail_before_training_naming_the_file(
    demo_root, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    from skinlab.model import weights

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(weights.keras.utils, "get_file", offline, raising=False)
    cfg = _config(demo_root, backbone="mobilenetv2", weights="imagenet", image_size=96)
    before = runs.list_runs()
    with pytest.raises(SkinlabError, match=r"mobilenet_v2.*\.h5"):
        train(cfg)
    assert runs.list_runs() == before  # the pre-flight failed before a run folder existed


MIRRORED = """
import os, sys, json
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from skinlab.core.config import RunConfig
from skinlab.train.training import train
from skinlab.model.distribute import make_strategy
assert make_strategy("mirrored").num_replicas_in_sync == 2
result = train(RunConfig(data_root=sys.argv[1], backbone="custom", image_size=32, batch_size=16, epochs=1, strategy="mirrored"))
print(json.dumps({"state": result.state}))
"""


@pytest.mark.slow
def test_mirrored_strategy_trains_on_two_logical_cpus(demo_root, tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(demo_root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "SKINLAB_MODELS_DIR": str(tmp_path)},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["state"] == "finished"


def test_time_budget_ends_a_long_run_early_and_keeps_its_best_weights(demo_root) -> None:
    result = train(_config(demo_root, epochs=50, time_budget_minutes=0.002))
    history = runs.read_history(result.paths)
    assert result.state == "finished"
    assert 1 <= len(history) < 50
    assert result.paths.weights.exists()


def test_a_timed_one_cycle_run_fits_its_schedule_to_the_budget(demo_root, monkeypatch) -> None:
    from skinlab.train.budget import TimeBudget
    from skinlab.train.schedules import OneCycle

    planned: list[tuple] = []
    plan = TimeBudget.plan

    def spy(self, schedule, **kwargs) -> None:
        planned.append((schedule, kwargs))
        plan(self, schedule, **kwargs)

    monkeypatch.setattr(TimeBudget, "plan", spy)
    result = train(_config(demo_root, schedule="one_cycle", time_budget_minutes=30))
    assert result.state == "finished" and len(runs.read_history(result.paths)) == 2
    [(schedule, kwargs)] = planned
    assert isinstance(schedule, OneCycle) and kwargs["last_epoch"] == 2
    assert schedule.total_steps == 2 * kwargs["steps_per_epoch"] > 0
    # No budget, no plan: the schedule keeps the configured epochs.
    train(_config(demo_root, schedule="one_cycle"))
    assert len(planned) == 1


def test_a_stop_in_the_first_epoch_ends_stopped_with_nothing_to_resume(demo_root) -> None:
    from skinlab.jobs import manager

    config = _config(demo_root, epochs=3)
    paths = runs.new_run(config)
    paths.stop_request.touch()  # honoured at the first batch's end
    result = train(config, paths=paths)
    status = runs.read_status(paths)
    assert result.state == status.state == "stopped"
    assert "Stopped before the first epoch finished" in status.error
    assert runs.read_history(paths).empty and not paths.weights.exists()
    assert not manager.can_resume(paths)


def test_a_start_that_cannot_train_leaves_no_run_folder(tmp_path, make_dataset_folder) -> None:
    from skinlab.core.errors import DatasetLayoutError

    before = runs.list_runs()
    one_class = make_dataset_folder({"Train": {"nevus": 3}})
    for root in (tmp_path / "missing", tmp_path, one_class):
        with pytest.raises(DatasetLayoutError):
            train(_config(root))
    assert runs.list_runs() == before


def test_weight_decay_shrinks_weights_that_no_gradient_moves() -> None:
    from skinlab.train.training import _optimizer

    def after_steps(**changes) -> float:
        weights = keras.Variable(np.ones(4, "float32"))
        optimizer = _optimizer(RunConfig(**changes), 0.1)
        for _ in range(5):
            optimizer.apply_gradients([(keras.ops.zeros(4), weights)])
        return float(keras.ops.convert_to_numpy(weights).mean())

    assert after_steps(optimizer="adam") == pytest.approx(1.0)
    assert after_steps(optimizer="adamw", weight_decay=0.5) == pytest.approx(0.95**5, rel=1e-4)
    assert after_steps(optimizer="sgd", weight_decay=0.5) < 1.0  # also allowed for SGD


def test_one_cycle_schedule_spans_the_phase_steps() -> None:
    from skinlab.train.schedules import OneCycle
    from skinlab.train.training import _optimizer, _schedule

    config = RunConfig(schedule="one_cycle")
    optimizer = _optimizer(config, _schedule(config, learning_rate=3e-3, total_steps=200))
    schedule = optimizer._learning_rate
    assert isinstance(schedule, OneCycle)
    assert (schedule.peak, schedule.total_steps) == (3e-3, 200)
    assert float(optimizer.learning_rate) == pytest.approx(3e-3 / 20)  # step 0 of the warm-up


def test_balanced_sampling_leaves_the_split_and_the_loss_weights_alone(demo_root) -> None:
    plain = prepare_data(_config(demo_root))
    balanced = prepare_data(_config(demo_root, imbalance="balanced_sampling"))
    pd.testing.assert_frame_equal(balanced.train, plain.train)
    pd.testing.assert_frame_equal(balanced.val, plain.val)
    assert balanced.class_weight is None


def test_logit_adjustment_keeps_the_rows_and_puts_the_log_prior_in_the_saved_loss(
    demo_root,
) -> None:
    plain = prepare_data(_config(demo_root))
    data = prepare_data(_config(demo_root, imbalance="logit_adjustment"))
    pd.testing.assert_frame_equal(data.train, plain.train)
    assert data.class_weight is None and plain.logit_offsets is None
    counts = np.array([data.counts_before[name] for name in data.class_names])
    assert data.logit_offsets == pytest.approx(np.log(counts / counts.sum()).tolist())
    config = _config(demo_root, image_size=32, epochs=1, imbalance="logit_adjustment")
    result = train(config)
    assert result.state == "finished"
    assert runs.read_history(result.paths)["loss"].notna().all()
    export = keras.saving.load_model(result.paths.export)
    assert export.loss.logit_offsets == pytest.approx(data.logit_offsets)


def test_the_issue_14_recipe_trains_saves_and_reloads(demo_root) -> None:
    config = _config(
        demo_root,
        image_size=32,
        epochs=2,
        optimizer="adamw",
        weight_decay=0.05,
        schedule="one_cycle",
        label_smoothing=0.1,
        augmentation="dermoscopy",
        imbalance="balanced_sampling",
        ema=True,
        precision="float32",
    )
    result = train(config)
    assert result.state == "finished"
    assert runs.read_config(result.paths) == config
    history = runs.read_history(result.paths)
    assert history[["loss", "val_loss", "accuracy", "val_accuracy"]].notna().all().all()
    assert history["accuracy"].between(0, 1).all()
    plain = runs.read_history(train(config.replace(label_smoothing=0.0)).paths)
    assert not np.allclose(plain["loss"], history["loss"])  # smoothing changes the loss
    loaded = load_run_model(result.paths)
    assert loaded.model(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 9)
    export = keras.saving.load_model(result.paths.export)
    assert export.loss.label_smoothing == 0.1


def test_ema_saves_and_validates_the_averaged_weights_not_the_raw_ones(
    demo_root, monkeypatch
) -> None:
    from skinlab.model.modelio import build_for_config
    from skinlab.train import training

    seen: list[dict[str, list[np.ndarray]]] = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):  # runs before the EMA is swapped in
            averages = self.model.optimizer._model_variables_moving_average
            seen.append(
                {
                    "raw": [v.numpy() for v in self.model.trainable_variables],
                    "ema": [v.numpy() for v in averages],
                }
            )

    original = training._callbacks
    monkeypatch.setattr(training, "_callbacks", lambda *a: [Record(), *original(*a)])
    config = _config(demo_root, image_size=32, epochs=2, ema=True, precision="float32")
    result = train(config)
    saved = build_for_config(config, 9, weights="none")
    saved.load_weights(result.paths.last_weights)
    weights = [v.numpy() for v in saved.trainable_variables]
    for got, ema in zip(weights, seen[-1]["ema"], strict=True):
        np.testing.assert_allclose(got, ema, rtol=1e-6, atol=1e-7)
    assert any(not np.allclose(g, r) for g, r in zip(weights, seen[-1]["raw"], strict=True))


def test_fit_traces_its_first_step_once_and_the_built_state_leaves_no_trace_in_the_scores() -> None:
    from skinlab.core.config import preset
    from skinlab.model.modelio import build_for_config
    from skinlab.train.training import _compile

    config = preset("quick", data_root="unused", image_size=32)
    model = build_for_config(config, 3)
    _compile(model, config, 1e-3, 10)
    traced = []
    step = model.train_step
    model.train_step = lambda data: traced.append(1) or step(data)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 3, 16)
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0).history
    # Variables created while tracing make TensorFlow trace twice (seconds before a new
    # run's first batch); the optimizer, loss and metric state were built beforehand.
    assert len(traced) == 1
    assert history["accuracy"][0] * 16 == pytest.approx(round(history["accuracy"][0] * 16))
