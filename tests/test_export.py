"""Export bundles of a real (tiny) run: each format reloads outside skinlab and agrees with
the Keras model on real demo images. The run uses colour constancy and frame randomisation, so
every format is also checked to carry the colour-constancy layer (it acts at prediction)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from skinlab.core import atomic, runs
from skinlab.core.config import RunConfig
from skinlab.data.discovery import discover
from skinlab.data.images import load_rgb_array
from skinlab.evaluate.evaluation import softmax
from skinlab.model.modelio import ModelFileError, load_run_model
from skinlab.predict.export import FORMATS, MODEL_FILES, ExportError, export_run, tflite_predict
from skinlab.train.training import train

SIZE = 48
#: Largest difference allowed between the Keras and the exported model's probabilities.
PROB_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> runs.RunPaths:
    from skinlab.data.demo import generate_demo_dataset

    base = tmp_path_factory.mktemp("export")
    demo = generate_demo_dataset(base / "demo", scale=0.3)
    previous = os.environ.get("SKINLAB_MODELS_DIR")
    os.environ["SKINLAB_MODELS_DIR"] = str(base / "models")
    try:
        config = RunConfig(
            data_root=str(demo),
            backbone="custom",
            image_size=SIZE,
            epochs=1,
            batch_size=16,
            colour_constancy="shades_of_gray",
            frame_randomisation=0.5,
        )
        return train(config).paths
    finally:
        if previous is None:
            del os.environ["SKINLAB_MODELS_DIR"]
        else:
            os.environ["SKINLAB_MODELS_DIR"] = previous


@pytest.fixture(scope="module")
def bundles(run: runs.RunPaths) -> dict[str, Path]:
    return {fmt: export_run(run, fmt) for fmt in FORMATS}


@pytest.fixture(scope="module")
def reference(run: runs.RunPaths) -> tuple[np.ndarray, np.ndarray, float]:
    """Eight real demo images, the run's Keras logits for them, and its temperature."""
    config = runs.read_config(run)
    table = discover(config.data_root).images("Test").head(8)
    images = np.stack([load_rgb_array(path, SIZE) for path in table["path"]]).astype(np.float32)
    loaded = load_run_model(run)
    return images, loaded.model(images, training=False).numpy(), loaded.temperature


def _assert_agrees(logits: np.ndarray, reference) -> float:
    _, expected, temperature = reference
    assert logits.shape == expected.shape
    np.testing.assert_array_equal(logits.argmax(axis=1), expected.argmax(axis=1))
    diff = float(np.abs(softmax(logits, temperature) - softmax(expected, temperature)).max())
    assert diff < PROB_TOLERANCE
    return diff


@pytest.mark.parametrize("fmt", FORMATS)
def test_bundle_holds_model_labels_manifest_and_model_card(fmt, run, bundles) -> None:
    bundle = bundles[fmt]
    assert bundle == run.root / f"export-{fmt}"
    assert (bundle / MODEL_FILES[fmt]).exists()
    manifest = json.loads((bundle / "manifest.json").read_text())
    labels = (bundle / "labels.txt").read_text().splitlines()
    assert len(labels) == 9 and labels == manifest["class_names"]
    assert manifest["format"] == fmt and manifest["model_file"] == MODEL_FILES[fmt]
    assert manifest["image_size"] == SIZE and manifest["output"] == "logits"
    assert manifest["temperature"] == runs.read_manifest(run).temperature
    assert "ood_threshold" in manifest and "weights_file" not in manifest
    card = (bundle / "MODEL_CARD.md").read_text()
    top = "\n".join(card.splitlines()[:5])
    assert "**" in top and "not a medical device" in top and "NOT for diagnosis" in top
    for needle in ("Balanced accuracy", "## Known limits", "skin tones", "## How to use"):
        assert needle in card
    gate = atomic.read_json(run.metrics)["ood_validation"]
    assert f"{gate['held_out_false_alarm']:.1%} of held-out validation lesions" in card
    assert all(f"| {name} |" in card for name in labels), "per-class rows"
    assert not list(run.root.glob(".export-*")), "no staging folders left behind"


def test_tflite_export_agrees_with_keras_on_real_images(bundles, reference) -> None:
    images = reference[0]
    logits = tflite_predict(bundles["tflite"] / "model.tflite", images)
    _assert_agrees(logits, reference)
    np.testing.assert_allclose(
        tflite_predict(bundles["tflite"] / "model.tflite", images[0]), logits[:1], rtol=1e-6
    )
    with pytest.raises(ValueError, match="shape"):
        tflite_predict(bundles["tflite"] / "model.tflite", images[:, :40])


def test_savedmodel_serving_signature_reloads_and_agrees(bundles, reference) -> None:
    serve = tf.saved_model.load(str(bundles["savedmodel"] / "saved_model")).signatures[
        "serving_default"
    ]
    logits = serve(image=tf.constant(reference[0]))["logits"].numpy()
    _assert_agrees(logits, reference)


def test_keras_file_reloads_in_safe_mode_and_agrees(bundles, reference) -> None:
    model = keras.models.load_model(bundles["keras"] / "model.keras")
    assert model.get_layer("colour_constancy").power == 6.0  # the run's preprocessing travels
    _assert_agrees(model.predict(reference[0], verbose=0), reference)


def test_exporting_again_replaces_the_bundle(run, bundles) -> None:
    stray = bundles["keras"] / "stray.txt"
    stray.write_text("left over")
    assert export_run(str(run.root), "keras") == bundles["keras"]
    assert not stray.exists() and (bundles["keras"] / "model.keras").exists()


def test_a_folder_that_is_not_a_bundle_is_never_replaced(run, tmp_path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not a skinlab export bundle"):
        export_run(run, "keras", out_dir=precious)
    assert (precious / "notes.txt").read_text() == "keep me"
    bundle = export_run(run, "keras", out_dir=tmp_path / "elsewhere" / "bundle")
    assert (bundle / "model.keras").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (export_run(run, "keras", out_dir=empty) / "model.keras").exists()


def test_unknown_format_is_refused_with_the_choices(run) -> None:
    with pytest.raises(ExportError, match="keras, tflite, savedmodel"):
        export_run(run, "onnx")


def test_run_with_tampered_weights_is_refused(run, tmp_path) -> None:
    copy = runs.RunPaths(shutil.copytree(run.root, tmp_path / run.run_id))
    data = bytearray(copy.weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.weights.write_bytes(bytes(data))
    shutil.rmtree(copy.root / "export-keras", ignore_errors=True)
    with pytest.raises(ModelFileError, match="do not match"):
        export_run(copy, "keras")
    assert not (copy.root / "export-keras").exists()
