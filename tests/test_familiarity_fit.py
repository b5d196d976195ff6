"""Fitting a run's familiarity gate on its model, after training and for an existing run,
and what predictions make of it: the score, the flag, the similar training cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import train_quick_run
from PIL import Image

from skinlab.core import atomic, runs
from skinlab.evaluate.familiarity import FILE, load_gate, save_gate
from skinlab.evaluate.familiarity_fit import (
    METRICS_KEY,
    checks_flag,
    feature_model,
    fit_detector,
    fit_run,
    held_out_false_alarm,
)
from skinlab.model.backbones import build_model
from skinlab.model.modelio import load_run_model
from skinlab.predict.predictor import Predictor, load_predictor

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, session_dirs):
    """A quick-preset run (skinlab_cnn, 1 epoch) on a small demo: ``(RunPaths, demo root)``."""
    return train_quick_run(tmp_path_factory.mktemp("familiarity"), session_dirs["models"])


def test_held_out_false_alarms_judge_each_half_by_the_other_halfs_threshold() -> None:
    scores = np.linspace(0, 1, 1000)
    none = np.zeros(1000, bool)
    assert held_out_false_alarm(scores, none, 0.97) == pytest.approx(0.03, abs=0.015)
    assert held_out_false_alarm(scores, np.ones(1000, bool), 0.97) == 1.0
    assert np.isnan(held_out_false_alarm(scores[:3], none[:3]))


def test_the_detector_learns_to_score_negatives_above_positives() -> None:
    rng = np.random.default_rng(0)
    positives, negatives = rng.normal(0, 1, (200, 5)), rng.normal(3, 1, (50, 5))
    detector = fit_detector(positives, negatives)
    scores_pos = detector.scores(positives[:, :3], positives[:, 3:])
    scores_neg = detector.scores(negatives[:, :3], negatives[:, 3:])
    assert scores_pos.mean() < 0.2 and scores_neg.mean() > 0.8
    with pytest.raises(ValueError, match="both"):
        fit_detector(positives, negatives[:0])


@pytest.mark.parametrize(("backbone", "width"), [("skinlab_cnn", 256), ("custom", 128)])
def test_feature_model_gives_pooled_features_and_the_same_logits(backbone, width) -> None:
    model = build_model(backbone, num_classes=3, image_size=32, weights="none")
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    features, logits = feature_model(model)(images, training=False)
    assert features.shape == (2, width)
    np.testing.assert_allclose(logits, model(images, training=False), rtol=1e-5, atol=1e-5)


def test_checks_flag_a_grey_photo_but_not_a_skin_coloured_patch() -> None:
    rng = np.random.default_rng(0)
    grey = Image.fromarray(rng.integers(0, 255, (120, 120), dtype=np.uint8)).convert("RGB")
    skin = np.clip(rng.normal((200, 150, 130), 12, (120, 120, 3)), 0, 255).astype(np.uint8)
    assert checks_flag(grey) and not checks_flag(Image.fromarray(skin))


def test_training_saves_the_gate_and_its_validated_rates(trained) -> None:
    paths, _ = trained
    summary = atomic.read_json(paths.metrics)[METRICS_KEY]
    gate = load_gate(paths.root / FILE, runs.read_manifest(paths).weights_sha256)
    assert summary["threshold"] == pytest.approx(gate.threshold)
    for rate in ("held_out_false_alarm", "detection", "false_alarm_in_sample"):
        assert 0.0 <= summary[rate] <= 1.0
    assert set(summary["detection_by_family"]) == {"photo", "crop", "recolour", "texture"}
    assert summary["negatives"] == 120 and summary["lesions"] == len(gate.validation.lesion_scores)
    assert gate.bank.features.dtype == np.float16
    assert (paths.root / FILE).stat().st_size < 2**20


def test_an_existing_run_gets_its_gate_refitted_from_its_weights_and_dataset(trained) -> None:
    paths, _ = trained
    before = load_gate(paths.root / FILE)
    (paths.root / FILE).unlink()
    metrics = atomic.read_json(paths.metrics)
    del metrics[METRICS_KEY]
    atomic.write_json(paths.metrics, metrics)
    summary = fit_run(paths)
    after = load_gate(paths.root / FILE)
    assert summary["run_id"] == paths.run_id
    assert after.threshold == pytest.approx(before.threshold, abs=1e-4)  # same split, same data
    assert list(after.bank.relpaths) == list(before.bank.relpaths)
    assert atomic.read_json(paths.metrics)[METRICS_KEY]["threshold"] == pytest.approx(
        after.threshold
    )
    assert "test" in atomic.read_json(paths.metrics) or "validation" in atomic.read_json(
        paths.metrics
    )


def test_predictions_carry_the_gate_score_and_five_labelled_similar_training_images(trained):
    paths, demo = trained
    predictor = load_predictor(paths)
    lesion = next(iter(sorted((demo / "Test").rglob("*.jpg"))))
    result = predictor.predict_paths([lesion])[0]
    assert 0.0 <= result.ood_score <= 1.0
    assert len(result.similar) == 5
    assert [s["distance"] for s in result.similar] == sorted(s["distance"] for s in result.similar)
    for case in result.similar:
        assert case["label"] in predictor.class_names
        assert (demo / case["path"]).is_file()
    assert result.flagged_at(-1.0) and result.flagged_at(2.0) == result.flagged_by_checks
    assert "flagged_by_checks" not in result.to_dict() and "similar" in result.to_dict()


def test_a_gate_fitted_on_other_weights_is_set_aside_with_its_reason(trained, tmp_path) -> None:
    paths, _ = trained
    gate = load_gate(paths.root / FILE)
    original = (paths.root / FILE).read_bytes()
    try:
        save_gate(paths.root / FILE, type(gate)(**{**vars(gate), "weights_sha256": "other"}))
        predictor = Predictor(load_run_model(paths))
        assert predictor.gate is None and "other weights" in predictor.gate_problem
        assert (
            predictor.predict_images([("x", Image.new("RGB", (100, 100), "pink"))])[0].similar == []
        )
    finally:
        (paths.root / FILE).write_bytes(original)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "skinlab", *args], cwd=ROOT, capture_output=True, text=True, env=env
    )


def test_cli_familiarity_refits_a_run_and_prints_both_rates(trained) -> None:
    paths, _ = trained
    out = _cli("familiarity", str(paths.root), "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["run_id"] == paths.run_id and "held_out_false_alarm" in summary
    text = _cli("familiarity", str(paths.root))
    assert "held-out lesions flagged" in text.stdout and "non-dermoscopy" in text.stdout


def test_cli_evaluate_json_has_bootstrap_intervals(trained) -> None:
    paths, _ = trained
    out = _cli("evaluate", str(paths.root), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    intervals = result["intervals"]
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        assert intervals[key]["low"] <= result[key] <= intervals[key]["high"]
    assert set(intervals["per_class_recall"]) == set(result["class_names"])


def test_cli_paired_compares_a_run_with_itself_as_no_better(trained) -> None:
    paths, _ = trained
    out = _cli("paired", str(paths.root), str(paths.root), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["only_a_correct"] == result["only_b_correct"] == 0
    assert result["mcnemar_p"] == 1.0 and "Neither run" in result["verdict"]
