"""Predictions: calibrated probabilities in manifest order, per-file errors, TTA, CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import image_bytes

from skinlab.core import runs
from skinlab.core.classes import MALIGNANT, risk_tier
from skinlab.core.config import RunConfig
from skinlab.predict.predictor import Prediction, PredictionError, load_predictor

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, session_dirs):
    from skinlab.data.demo import generate_demo_dataset
    from skinlab.train.training import train

    demo = generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", scale=0.5)
    # The session's models folder, so run ids resolve inside the tests too.
    os.environ["SKINLAB_MODELS_DIR"] = str(session_dirs["models"])
    try:
        result = train(
            RunConfig(
                data_root=str(demo), backbone="custom", image_size=48, batch_size=16, epochs=3
            )
        )
    finally:
        del os.environ["SKINLAB_MODELS_DIR"]
    return result.paths, demo


@pytest.fixture
def images(trained, tmp_path) -> Path:
    _, demo = trained
    folder = tmp_path / "inputs"
    folder.mkdir()
    for src in sorted((demo / "Test").rglob("*.jpg"))[:5]:
        shutil.copy(src, folder / src.name)
    return folder


def test_probabilities_sum_to_one_and_follow_manifest_order(trained, images) -> None:
    paths, _ = trained
    predictor = load_predictor(paths)
    results = predictor.predict_paths([images])
    manifest = runs.read_manifest(paths)
    assert len(results) == 5
    for r in results:
        assert isinstance(r, Prediction)
        assert tuple(r.probabilities) == manifest.class_names
        assert sum(r.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert r.top_class == max(r.probabilities, key=r.probabilities.get)
        malignant = sum(p for c, p in r.probabilities.items() if risk_tier(c) == MALIGNANT)
        assert r.malignant_probability == pytest.approx(malignant)
        assert r.risk_tier == risk_tier(r.top_class)
        assert "not a medical device" in r.notice


def test_run_manifest_carries_calibration_and_ood_threshold(trained) -> None:
    paths, _ = trained
    manifest = runs.read_manifest(paths)
    assert manifest.temperature > 0 and manifest.ood_threshold is not None
    calibration = json.loads(paths.metrics.read_text())["calibration"]
    assert {"ece_before", "ece_after", "reliability_after"} <= set(calibration)


def test_predictor_is_loaded_once_per_process(trained) -> None:
    paths, _ = trained
    assert load_predictor(paths) is load_predictor(paths.run_id)


def test_test_time_augmentation_reports_a_spread(trained, images) -> None:
    predictor = load_predictor(trained[0])
    one = predictor.predict_paths([images], tta=1)[0]
    many = predictor.predict_paths([images], tta=6)[0]
    assert one.tta_spread is None and one.tta_views == 1
    assert many.tta_views == 6 and many.tta_spread is not None and many.tta_spread >= 0


def test_single_direct_call_matches_the_keras_model(trained, images) -> None:
    predictor = load_predictor(trained[0])
    x = np.random.default_rng(0).uniform(0, 255, (1, 48, 48, 3)).astype("float32")
    np.testing.assert_allclose(
        predictor.logits(x), predictor.loaded.model.predict(x, verbose=0), rtol=1e-4, atol=1e-4
    )


def test_folder_with_one_corrupt_file_predicts_the_rest(trained, images) -> None:
    (images / "broken.jpg").write_bytes(image_bytes(size=(200, 200))[:300])
    results = load_predictor(trained[0]).predict_paths([images])
    errors = [r for r in results if isinstance(r, PredictionError)]
    assert len(results) == 6 and len(errors) == 1
    assert "broken.jpg" in errors[0].error and "truncated" in errors[0].error


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "skinlab", *args], cwd=ROOT, capture_output=True, text=True, env=env
    )


def test_cli_predict_json_gradcam_and_csv(trained, images, tmp_path) -> None:
    paths, _ = trained
    (images / "notes.jpg").write_text("not an image")
    out = _cli(
        "predict",
        str(paths.root),
        str(images),
        "--json",
        "--tta",
        "2",
        "--gradcam",
        str(tmp_path / "cam"),
        "--csv",
        str(tmp_path / "p.csv"),
    )
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert len(results) == 6
    bad = [r for r in results if "error" in r]
    assert len(bad) == 1 and bad[0]["path"].endswith("notes.jpg")
    for r in results:
        if "error" not in r:
            for key in (
                "probabilities",
                "top_class",
                "risk_tier",
                "malignant_probability",
                "ood",
                "ood_score",
                "ood_reason",
            ):
                assert key in r
    assert len(list((tmp_path / "cam").glob("*.png"))) == 5
    assert len(pd.read_csv(tmp_path / "p.csv")) == 6


def test_cli_predict_exits_non_zero_only_when_nothing_could_be_predicted(trained, tmp_path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    out = _cli("predict", str(trained[0].root), str(bad), "--json")
    assert out.returncode == 1
    assert "empty" in json.loads(out.stdout)[0]["error"]


def test_cli_export_writes_a_bundle_with_labels_and_model_card(trained, tmp_path) -> None:
    paths, _ = trained
    out = _cli("export", str(paths.root), "--format", "keras", "--out", str(tmp_path / "bundle"))
    assert out.returncode == 0, out.stderr
    bundle = Path(out.stdout.strip().splitlines()[-1])
    assert len((bundle / "labels.txt").read_text().split("\n")) >= 9
    assert "not a medical device" in (bundle / "MODEL_CARD.md").read_text().lower()
    assert (bundle / "model.keras").exists()


def test_huge_upload_is_predicted_small_and_its_gradcam_has_display_size(trained) -> None:
    from skinlab.predict.explain import DISPLAY_PX, explain

    paths, _ = trained
    predictor = load_predictor(paths)
    # 64 MP in a ~0.2 MB PNG: at full size the overlay alone would need ~9 GB.
    data = image_bytes("RGB", (8000, 8000), "PNG", colour=(170, 110, 90), compress_level=1)
    (result,) = predictor.predict_sources([("huge.png", data)])
    assert isinstance(result, Prediction)
    heatmap, picture = explain(predictor, data, result.top_class)
    assert heatmap.shape == (predictor.size, predictor.size)
    assert picture.size == (DISPLAY_PX, DISPLAY_PX)
