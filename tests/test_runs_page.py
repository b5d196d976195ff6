"""AppTests of the Runs page on two tiny runs trained for real on the synthetic demo."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from skinlab.app import compare
from skinlab.core import processes, runs
from skinlab.core.config import RunConfig
from skinlab.core.processes import start_time
from skinlab.data.demo import generate_demo_dataset

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, session_dirs: dict[str, Path]
) -> Iterator[dict]:
    """Two finished runs (1 and 2 epochs, different seeds) and the demo they were trained on."""
    with pytest.MonkeyPatch.context() as env:
        # Module fixtures run outside the autouse per-test fixture, so point at its folders.
        env.setenv("SKINLAB_MODELS_DIR", str(session_dirs["models"]))
        env.setenv("SKINLAB_DATA_DIR", str(session_dirs["data"]))
        from skinlab.train.training import train

        root = generate_demo_dataset(tmp_path_factory.mktemp("runs-page") / "demo", scale=0.3)
        ids = [
            train(
                RunConfig(
                    data_root=str(root),
                    backbone="custom",
                    image_size=32,
                    epochs=epochs,
                    batch_size=16,
                    seed=seed,
                )
            ).paths.run_id
            for seed, epochs in ((1, 1), (2, 2))
        ]
        yield {"ids": ids, "root": root, "models": session_dirs["models"]}


def _copy(trained: dict, run_id: str, new_id: str, files: tuple[str, ...] | None = None) -> Path:
    """A copy of a trained run under another id (old timestamp: never the newest run)."""
    source, target = trained["models"] / run_id, trained["models"] / new_id
    if files is None:
        shutil.copytree(source, target)
    else:
        target.mkdir()
        for name in files:
            shutil.copy(source / name, target / name)
    return target


def _open(trained: dict, chosen: list[str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["dataset"] = str(trained["root"])  # the small demo: nothing to generate
    at.run()  # the router must run first: switching before it would skip the sidebar
    at.switch_page("pages/runs.py").run()
    assert not at.exception, at.exception
    if chosen is not None:
        at.multiselect(key="compare_runs").set_value(chosen).run()
        assert not at.exception, at.exception
    return at


def test_both_runs_are_listed_and_scored(trained: dict) -> None:
    at = _open(trained, trained["ids"])
    assert set(trained["ids"]) <= set(at.multiselect(key="compare_runs").options)
    table = at.dataframe[0].value
    assert len(table) == 2
    assert table["Balanced accuracy"].notna().all()
    assert set(table["State"]) == {"finished"}


def test_confusion_matrices_and_reliability_diagram_render(trained: dict) -> None:
    at = _open(trained, trained["ids"])
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    types = [[trace.get("type") for trace in spec["data"]] for spec in specs]
    assert sum("heatmap" in t for t in types) == 2  # one confusion matrix per run
    names = [trace.get("name") for spec in specs for trace in spec["data"]]
    assert "perfect calibration" in names
    assert sum("after (T=" in str(n) for n in names) == 2

    at.toggle(key="runs_normalise").set_value(True).run()
    heatmaps = [
        trace
        for chart in at.get("plotly_chart")
        for trace in json.loads(chart.proto.spec)["data"]
        if trace.get("type") == "heatmap"
    ]
    assert all(trace["zmax"] == 1 for trace in heatmaps)


def test_misclassified_gallery_shows_the_images_of_a_filter(trained: dict) -> None:
    run_id = trained["ids"][1]
    predictions = pd.read_csv(trained["models"] / run_id / runs.PREDICTIONS)
    wrong = predictions[(predictions["split"] == "Test") & ~predictions["correct"]]
    true, predicted = wrong.iloc[0][["true", "predicted"]]
    expected = ((wrong["true"] == true) & (wrong["predicted"] == predicted)).sum()

    at = _open(trained, trained["ids"])
    at.selectbox(key="gallery_run").set_value(run_id).run()
    at.selectbox(key="gallery_true").set_value(true).run()
    at.selectbox(key="gallery_predicted").set_value(predicted).run()
    assert not at.exception
    images = at.get("image")
    assert len(images) == 1 and len(images[0].captions) == min(expected, 24)
    assert all(c.startswith(f"{true} → {predicted}") for c in images[0].captions)
    assert any(f"{expected} misclassified Test images" in c.value for c in at.caption)


def test_a_misclassified_image_is_relabelled_from_the_gallery_and_undone(trained: dict) -> None:
    from skinlab.app.review_view import _key
    from skinlab.data import overrides

    run_id = trained["ids"][1]
    predictions = pd.read_csv(trained["models"] / run_id / runs.PREDICTIONS)
    wrong = predictions[(predictions["split"] == "Test") & ~predictions["correct"]]
    path, true, predicted = wrong.sort_values("confidence", ascending=False).iloc[0][
        ["path", "true", "predicted"]
    ]
    at = _open(trained, trained["ids"])
    at.selectbox(key="gallery_run").set_value(run_id).run()
    at.selectbox(key="gallery_true").set_value(true).run()
    at.selectbox(key="gallery_predicted").set_value(predicted).run()
    assert at.selectbox(key=f"review_label_{_key(path)}").value == predicted
    at.button(key=f"review_relabel_{_key(path)}").click().run()
    assert not at.exception and not at.error
    decision = overrides.current(trained["root"])[path]
    assert (decision.action, decision.label) == ("relabel", predicted)
    at.button(key=f"review_undo_{_key(path)}").click().run()
    assert overrides.current(trained["root"]) == {}


def test_run_can_be_made_the_active_model(trained: dict) -> None:
    run_id = trained["ids"][0]
    at = _open(trained, trained["ids"])
    at.selectbox(key="manage_run").set_value(run_id).run()
    if at.session_state["model_run"] == run_id:  # another test made it active already
        at.selectbox(key="manage_run").set_value(trained["ids"][1]).run()
        run_id = trained["ids"][1]
    next(b for b in at.button if b.label == "Use for predictions").click().run()
    assert not at.exception
    assert at.session_state["model_run"] == run_id
    assert at.session_state["active_model"] == run_id


def test_finished_run_is_deleted_after_confirmation(trained: dict) -> None:
    copy = _copy(trained, trained["ids"][0], "20200101-000000-custom-d0d0d0")
    at = _open(trained, trained["ids"])
    at.selectbox(key="manage_run").set_value(copy.name).run()
    next(b for b in at.button if b.label == "Delete run…").click().run()
    assert copy.exists()  # nothing happens before the confirmation
    assert "cannot be undone" in at.warning[0].value
    next(b for b in at.button if b.label == "Yes, delete it").click().run()
    assert not at.exception
    assert not copy.exists()
    assert copy.name not in at.multiselect(key="compare_runs").options
    assert any(copy.name in s.value for s in at.success)


def test_run_is_renamed_and_listed_under_its_new_name(trained: dict) -> None:
    copy = _copy(trained, trained["ids"][0], "20200101-000000-custom-f0f0f0")
    try:
        at = _open(trained, trained["ids"])
        at.selectbox(key="manage_run").set_value(copy.name).run()
        at.text_input(key="runs_new_name").input("strong aug")  # a form: sent with its button
        next(b for b in at.button if b.label == "Rename").click().run()
        assert not at.exception
        assert runs.read_config(runs.RunPaths(copy)).name == "strong aug"
        assert at.selectbox(key="manage_run").format_func(copy.name) == "strong aug (f0f0f0)"
    finally:
        shutil.rmtree(copy)


def test_broken_run_is_listed_with_its_reason(trained: dict) -> None:
    broken = _copy(trained, trained["ids"][0], "20200101-000000-custom-b0b0b0", ("config.json",))
    (broken / runs.STATUS).write_text('{"state": "runn')
    try:
        at = _open(trained, trained["ids"])
        assert not at.exception
        assert "1 runs could not be read" in at.expander[0].label
        assert any(broken.name in m.value and "not valid JSON" in m.value for m in at.markdown)
        assert broken.name not in at.multiselect(key="compare_runs").options
    finally:
        shutil.rmtree(broken)


def test_running_run_shows_its_curves_and_refuses_deletion(trained: dict) -> None:
    files = (runs.CONFIG, runs.HISTORY, runs.STATUS)
    live = _copy(trained, trained["ids"][1], "20200101-000000-custom-a1a1a1", files)
    # A foreground trainer counts as alive by its pid and start time while it holds its run
    # folder open (skinlab.core.processes.hold), as `skinlab train` does.
    holder = f"import os, time; fd = os.open({str(live)!r}, os.O_RDONLY); time.sleep(60)"
    worker = subprocess.Popen([sys.executable, "-c", holder])
    deadline = time.monotonic() + 60
    while not processes.holds(worker.pid, live) and time.monotonic() < deadline:
        time.sleep(0.05)
    status = json.loads((live / runs.STATUS).read_text())
    status.update(state="running", pid=worker.pid, pid_start=start_time(worker.pid), phase="train")
    (live / runs.STATUS).write_text(json.dumps(status))
    try:
        at = _open(trained, [trained["ids"][0], live.name])
        table = at.dataframe[0].value
        label = runs.RunSummary(live.name, name=live.name).label
        assert table.loc[label, "State"] == "running"
        assert pd.isna(table.loc[label, "Balanced accuracy"])
        assert len(at.get("plotly_chart")) >= 2  # the learning curves
        at.selectbox(key="manage_run").set_value(live.name).run()
        next(b for b in at.button if b.label == "Delete run…").click().run()
        next(b for b in at.button if b.label == "Yes, delete it").click().run()
        assert live.exists()
        assert "stop it before deleting it" in at.error[0].value
    finally:
        worker.kill()
        worker.wait()
        shutil.rmtree(live)


def test_export_bundle_is_prepared_on_request_and_zips_the_keras_bundle(trained: dict) -> None:
    run_id = trained["ids"][0]
    at = _open(trained, trained["ids"])
    at.selectbox(key="manage_run").set_value(run_id).run()
    assert not at.get("download_button")
    next(b for b in at.button if b.label == "Prepare export bundle").click().run()
    assert not at.exception and not at.error
    assert at.get("download_button")[0].proto.label == "Download export bundle (.zip)"
    with zipfile.ZipFile(BytesIO(compare.export_bundle(run_id))) as archive:
        names = set(archive.namelist())
    assert {f"{run_id}-keras/{name}" for name in ("model.keras", "labels.txt")} <= names
    assert f"{run_id}-keras/manifest.json" in names


def test_export_of_a_tampered_run_is_refused_in_one_sentence(trained: dict) -> None:
    copy = _copy(trained, trained["ids"][0], "20200101-000000-custom-e0e0e0")
    (copy / runs.WEIGHTS).write_bytes(b"tampered")
    try:
        at = _open(trained, trained["ids"])
        at.selectbox(key="manage_run").set_value(copy.name).run()
        next(b for b in at.button if b.label == "Prepare export bundle").click().run()
        assert not at.exception and not at.get("download_button")
        assert len(at.error) == 1 and "\n" not in at.error[0].value
    finally:
        shutil.rmtree(copy)


def test_scores_come_with_bootstrap_intervals_and_a_paired_comparison(trained: dict) -> None:
    first, second = trained["ids"]
    at = _open(trained, trained["ids"])
    intervals = next(df.value for df in at.dataframe if "Images" in df.value.columns)
    assert len(intervals) == 2
    assert all("(" in cell and "–" in cell for cell in intervals["Balanced accuracy"])
    assert any("95% of 2,000 resamples" in c.value for c in at.caption)

    at.selectbox(key="runs_paired_a").set_value(second).run()
    at.selectbox(key="runs_paired_b").set_value(first).run()
    assert not at.exception, at.exception
    paired = next(df.value for df in at.dataframe if "A minus B" in df.value.columns)
    assert list(paired.index) == ["Accuracy", "Balanced accuracy", "Macro F1"]
    verdict = next(m.value for m in at.markdown if "McNemar" in m.value)
    assert (
        verdict.startswith(("Neither run", "The evidence is mixed")) or "is better than" in verdict
    )
    assert any("only A got right" in c.value for c in at.caption)

    at.selectbox(key="runs_paired_b").set_value(second).run()
    assert any("Pick two different runs" in i.value for i in at.info)


def test_per_class_recall_has_interval_error_bars(trained: dict) -> None:
    at = _open(trained, trained["ids"])
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    bars = [t for spec in specs for t in spec["data"] if t.get("error_y", {}).get("arrayminus")]
    assert len(bars) == 2  # one run each


def test_unfamiliar_images_tab_shows_both_score_distributions_and_the_threshold(
    trained: dict,
) -> None:
    at = _open(trained, trained["ids"])
    summaries = [m.value for m in at.markdown if m.value.startswith("Held-out lesions flagged")]
    assert len(summaries) == 2 and all("Non-dermoscopy images flagged" in s for s in summaries)
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    ood = [s for s in specs if any("non-dermoscopy" in str(t.get("name")) for t in s["data"])]
    assert len(ood) == 2
    for spec in ood:
        assert [t["type"] for t in spec["data"]] == ["histogram", "histogram"]
        assert spec["layout"]["shapes"][0]["line"]["dash"] == "dash"  # the threshold


def test_a_run_without_a_gate_says_how_to_fit_one(trained: dict) -> None:
    copy = _copy(trained, trained["ids"][0], "20200101-000000-custom-c0c0c0")
    (copy / "familiarity.npz").unlink()
    try:
        at = _open(trained, [copy.name])
        assert any("python -m skinlab familiarity RUN" in i.value for i in at.info)
    finally:
        shutil.rmtree(copy)


# --- the External test tab (issue 28) -----------------------------------------------------


def _score_external(at: AppTest, run_id: str, path: Path | str) -> AppTest:
    at.selectbox(key="external_run").set_value(run_id).run()
    at.text_input(key="external_path").input(str(path))
    at.button(key="external_score").click().run()
    assert not at.exception, at.exception
    return at


def _external_table(at: AppTest) -> pd.DataFrame:
    return next(t.value for t in at.table if "External set" in t.value.columns)


def test_external_tab_scores_a_ham_set_beside_the_runs_own_score(
    trained: dict, tmp_path: Path
) -> None:
    from helpers import ham_external_set

    from skinlab.evaluate.external import evaluate_external

    run_id = trained["ids"][1]
    base = ham_external_set(trained["root"], tmp_path / "ham-tiny")
    at = _score_external(_open(trained, [run_id]), run_id, base)
    assert not at.error

    expected = evaluate_external(run_id, str(base))  # the library on the same run and set
    ext, table = expected["external"], _external_table(at)
    for row, interval in (
        ("Balanced accuracy", expected["intervals"]["balanced_accuracy"]),
        ("Accuracy", expected["intervals"]["accuracy"]),
        ("Melanoma sensitivity", ext["melanoma"]["sensitivity"]),
        ("Melanoma specificity", ext["melanoma"]["specificity"]),
    ):
        cell = f"{interval['estimate']:.3f} ({interval['low']:.3f}–{interval['high']:.3f})"
        assert table.loc[row, "External set"] == cell
    assert table.loc["Images", "External set"] == str(ext["n_scored"])
    own = ext["internal"]
    assert own["split"] == "Test" and "Own Test images" in table.columns
    assert table.loc["Balanced accuracy", "Own Test images"].startswith(
        f"{own['balanced_accuracy']:.3f} ("
    )
    assert table.loc["Images", "Own Test images"] == str(own["n"])
    assert any(ext["drop"] == box.value for box in [*at.warning, *at.info])
    shown = " ".join(m.value for m in at.markdown)
    assert "Not scored" in shown and all(c in shown for c in ext["classes_absent"])
    assert f"collections HAM10000: {ext['n_scored']}" in shown
    titles = [json.loads(c.proto.spec)["layout"].get("title") for c in at.get("plotly_chart")]
    assert {"text": "External set"} in titles  # the external confusion matrix
    # Saved in metrics.json, and shown from there by a fresh page without scoring again.
    saved = json.loads((trained["models"] / run_id / runs.METRICS).read_text())["external"]
    assert [entry["name"] for entry in saved] == ["ham-tiny"]
    fresh = _open(trained, [run_id])
    fresh.selectbox(key="external_run").set_value(run_id).run()
    assert any(c.value.startswith("On ham-tiny (") for c in fresh.caption)
    assert not _tables_with(fresh, "External set")


def _tables_with(at: AppTest, column: str) -> list[pd.DataFrame]:
    return [t.value for t in at.table if column in t.value.columns]


def _external_gallery(at: AppTest) -> list[str]:
    """The picture addresses of the external mistakes (one caption each; the Confusion tab's
    gallery is one element with many)."""
    shown = [i for i in at.get("image") if len(i.captions) == 1 and "→" in i.captions[0]]
    return [i.proto.imgs[0].url for i in shown]


def test_external_mistakes_show_their_grad_cam_on_request(trained: dict, tmp_path: Path) -> None:
    from helpers import ham_external_set

    run_id = trained["ids"][0]
    base = ham_external_set(trained["root"], tmp_path / "ham-cam")
    at = _score_external(_open(trained, [run_id]), run_id, base)
    pictures = _external_gallery(at)
    if not pictures:  # a run that got every external image right has no mistakes to show
        assert any("every scored external image right" in c.value for c in at.caption)
        return
    assert len(pictures) <= 6
    at.toggle(key="external_gradcam").set_value(True).run()
    assert not at.exception and not at.error
    overlays = _external_gallery(at)
    assert len(overlays) == len(pictures) and not set(overlays) & set(pictures)


@pytest.mark.parametrize(
    ("name", "sentence"),
    [("nowhere", "does not exist"), ("no-layout", "none of"), ("/etc", "outside the folders")],
)
def test_a_wrong_external_path_shows_one_sentence(
    trained: dict, tmp_path: Path, name: str, sentence: str
) -> None:
    (tmp_path / "no-layout").mkdir()
    (tmp_path / "no-layout" / "notes.txt").write_text("not a dataset")
    at = _score_external(_open(trained, [trained["ids"][0]]), trained["ids"][0], tmp_path / name)
    assert len(at.error) == 1 and "\n" not in at.error[0].value
    assert sentence in at.error[0].value.lower()
    assert not _tables_with(at, "External set")


def test_scoring_a_run_without_a_model_on_an_external_set_says_so(
    trained: dict, tmp_path: Path
) -> None:
    from helpers import ham_external_set

    files = (runs.CONFIG, runs.HISTORY, runs.STATUS)
    bare = _copy(trained, trained["ids"][0], "20200101-000000-custom-e1e1e1", files)
    base = ham_external_set(trained["root"], tmp_path / "ham-bare")
    try:
        at = _score_external(_open(trained, [bare.name]), bare.name, base)
        assert len(at.error) == 1 and "has no saved model yet" in at.error[0].value
    finally:
        shutil.rmtree(bare)


def test_lesion_masked_test_runs_on_request_and_is_saved(trained: dict) -> None:
    run_id = trained["ids"][0]
    at = _open(trained, [run_id])
    at.selectbox(key="external_run").set_value(run_id).run()
    assert not any(m.label == "Centre hidden" for m in at.metric)
    at.button(key="external_masked_button").click().run()
    assert not at.exception and not at.error
    labels = {m.label for m in at.metric}
    assert {"As is", "Centre hidden", "Only the centre", "Chance"} <= labels
    assert any("with the centre hidden" in m.value for m in at.markdown)
    saved = json.loads((trained["models"] / run_id / runs.METRICS).read_text())
    assert saved["lesion_masked"]["split"] == "Test"
