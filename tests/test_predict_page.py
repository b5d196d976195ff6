"""The Predict page with a real (tiny) trained run: uploads, bad files, Test samples, TTA,
Grad-CAM, CSV download, and the quick-model path when no run exists yet."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from skinlab import NOT_A_MEDICAL_DEVICE
from skinlab.app import predict_view as pv
from skinlab.bench.workspace import environ
from skinlab.core import runs
from skinlab.core.config import RunConfig
from skinlab.predict.predictor import Prediction, PredictionError, load_predictor

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
PAGE = "pages/predict.py"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, session_dirs) -> tuple[runs.RunPaths, Path]:
    """A real run (custom CNN, 32 px, 2 epochs) on a small demo, in the session's models dir."""
    from skinlab.data.demo import generate_demo_dataset
    from skinlab.train.training import train

    demo = generate_demo_dataset(tmp_path_factory.mktemp("predict-demo") / "demo", scale=0.3)
    config = RunConfig(
        data_root=str(demo), backbone="custom", image_size=32, epochs=2, batch_size=16
    )
    with environ(SKINLAB_MODELS_DIR=session_dirs["models"]):
        result = train(config)
    return result.paths, demo


@pytest.fixture
def lesion(trained) -> bytes:
    return next(iter(sorted((trained[1] / "Test" / "melanoma").glob("*.jpg")))).read_bytes()


def open_page(dataset: Path, run_id: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["dataset"] = str(dataset)
    if run_id:
        at.session_state["active_model"] = run_id  # the sidebar picker keeps a valid choice
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    return "\n".join(e.value for e in [*at.markdown, *at.caption, *at.warning, *at.info])


def test_uploaded_image_gets_chart_probabilities_and_the_notice(trained, lesion) -> None:
    paths, demo = trained
    at = open_page(demo, paths.run_id)
    assert f"`{paths.run_id}`" in at.caption[0].value and "temperature" in at.caption[0].value
    assert f"({paths.run_id})" not in at.caption[0].value  # an unnamed run: its id once
    uploader = at.file_uploader(key="predict_uploads")
    assert uploader.accept_multiple_files and ".webp" in uploader.allowed_type
    uploader.set_value([("lesion.jpg", lesion, "image/jpeg")]).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1
    shown = texts(at)
    assert "The model's most probable class is" in shown and "Top 3:" in shown
    assert "All malignant classes together" in shown
    assert NOT_A_MEDICAL_DEVICE in [c.value for c in at.caption]
    # The image, its Grad-CAM and the strip of the most similar training images.
    assert len(at.get("image")) == 3
    assert at.download_button(key="predict_csv").label == "Download the results (CSV)"


def test_bad_file_is_listed_with_its_reason_and_the_good_one_is_predicted(trained, lesion) -> None:
    paths, demo = trained
    at = open_page(demo, paths.run_id)
    at.file_uploader(key="predict_uploads").set_value(
        [("notes.jpg", b"just some text", "image/jpeg"), ("lesion.jpg", lesion, "image/jpeg")]
    ).run()
    assert not at.exception, at.exception
    warning = at.warning[0].value
    assert "1 of 2 files could not be read" in warning
    assert "notes.jpg" in warning and "not an image" in warning
    assert len(at.get("plotly_chart")) == 1
    assert list(at.dataframe[0].value["path"]) == ["notes.jpg", "lesion.jpg"]
    assert at.dataframe[0].proto.placeholder == "—"  # the bad file's empty cells, not "None"


def test_random_test_samples_show_their_true_class_and_tta_spread(trained) -> None:
    paths, demo = trained
    at = open_page(demo, paths.run_id)
    at.number_input(key="predict_random_n").set_value(2)
    at.button(key="predict_random").click().run()
    at.slider(key="predict_tta").set_value(3).run()
    assert not at.exception, at.exception
    assert len(at.multiselect(key=pv.SAMPLES_KEY).value) == 2
    assert len(at.get("plotly_chart")) == 2
    shown = texts(at)
    assert shown.count("True class (from its Test folder)") == 2
    assert shown.count("Across 3 flipped/rotated views") == 2
    assert "true_class" in at.dataframe[0].value.columns


def test_camera_is_off_until_asked_for_and_its_photo_is_predicted(trained, lesion) -> None:
    paths, demo = trained
    at = open_page(demo, paths.run_id)
    assert not at.camera_input
    at.toggle(key="predict_camera_on").set_value(True).run()
    at.camera_input(key="predict_camera").set_value(("shot.jpg", lesion, "image/jpeg")).run()
    assert not at.exception, at.exception
    assert list(at.dataframe[0].value["path"]) == ["camera.jpg"]
    assert len(at.get("plotly_chart")) == 1


def test_without_runs_the_page_offers_a_quick_model_that_becomes_active(
    trained, tmp_path, monkeypatch
) -> None:
    paths, demo = trained
    empty = tmp_path / "empty"
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(empty))
    at = open_page(demo)
    assert "No trained model yet" in at.info[0].value
    assert not at.file_uploader

    # Training for real takes a minute: the "background run" is a copy of the finished one.
    started = []

    def fake_start_run(config):
        started.append(config)
        return runs.RunPaths(shutil.copytree(paths.root, empty / "20990101-000000-quick-abc123"))

    monkeypatch.setattr(pv.catalog, "default_dataset_root", lambda: demo)
    monkeypatch.setattr("skinlab.jobs.manager.start_run", fake_start_run)
    at.button(key="predict_quick_start").click().run()
    assert not at.exception, at.exception
    assert started[0].backbone == "skinlab_cnn" and started[0].data_root == str(demo)
    assert at.session_state["active_model"] == "20990101-000000-quick-abc123"
    assert "quick model is ready" in at.success[0].value
    assert at.file_uploader(key="predict_uploads")


def test_predictions_are_cached_and_unreadable_bytes_become_errors(trained, lesion) -> None:
    predictor = pv.predictor_for(trained[0].run_id)
    assert pv.predictor_for(trained[0].run_id) is predictor
    items = [pv.Item("bad.png", b"", "bytes:empty"), pv.Item("ok.jpg", lesion, "bytes:ok")]
    results = pv.predict_items(predictor, items, tta=2)
    assert isinstance(results[0], PredictionError) and isinstance(results[1], Prediction)
    assert results[1].tta_views == 2
    assert pv.predict_items(predictor, items, tta=2) is results
    renamed = pv.predict_items(predictor, [pv.Item("same.jpg", lesion, "bytes:ok")], tta=2)
    assert renamed[0].path == "same.jpg"  # same bytes under another name: not a cache hit


def test_gradcam_overlay_follows_the_opacity(trained, lesion) -> None:
    predictor = pv.predictor_for(trained[0].run_id)
    item = pv.Item("ok.jpg", lesion, "bytes:ok")
    plain, _ = pv.gradcam_image(predictor, item, "melanoma", 0.0)
    strong, _ = pv.gradcam_image(predictor, item, "melanoma", 0.9)
    assert plain.size == strong.size == pv.display_image(item).size
    assert plain.tobytes() == pv.display_image(item).tobytes()
    assert strong.tobytes() != plain.tobytes()


def _slider(at: AppTest, run_id: str):
    return at.slider(key=f"predict_ood_threshold_{run_id}")


def test_the_five_most_similar_training_images_are_shown_with_their_classes(
    trained, lesion
) -> None:
    paths, demo = trained
    at = open_page(demo, paths.run_id)
    at.file_uploader(key="predict_uploads").set_value([("lesion.jpg", lesion, "image/jpeg")]).run()
    assert not at.exception, at.exception
    assert any("Most similar training images" in m.value for m in at.markdown)
    strip = at.get("image")[-1]
    assert len(strip.captions) == 5
    assert all("distance" in c for c in strip.captions)
    names = [pv.display_name(c) for c in load_predictor(paths).class_names]
    assert all(c.split(" · ")[0] in names for c in strip.captions)


def test_moving_the_threshold_updates_both_rates_and_the_warning(trained, lesion) -> None:
    paths, demo = trained
    at = open_page(demo, paths.run_id)
    at.file_uploader(key="predict_uploads").set_value([("lesion.jpg", lesion, "image/jpeg")]).run()
    slider = _slider(at, paths.run_id)
    fitted = slider.value
    assert 0.0 < fitted < 1.0
    assert any(f"At threshold {fitted:.2f}" in m.value for m in at.markdown)

    slider.set_value(0.0).run()
    assert not at.exception, at.exception
    rates = next(m.value for m in at.markdown if m.value.startswith("At threshold 0.00"))
    assert "**100.0%** of validation lesions" in rates
    assert any("unlike dermoscopy" in w.value for w in at.warning)  # every image is flagged now

    _slider(at, paths.run_id).set_value(1.0).run()
    rates = next(m.value for m in at.markdown if m.value.startswith("At threshold 1.00"))
    assert "of non-dermoscopy images" in rates
    assert not any("unlike dermoscopy" in w.value for w in at.warning)

    next(b for b in at.button if b.label == "Back to the fitted threshold").click().run()
    assert _slider(at, paths.run_id).value == fitted
