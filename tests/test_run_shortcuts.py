"""The shortcut check of a run's own training images (issue 28): can the label of the images a
run trained and validated on be predicted without the lesion? The library call, the CLI and
the Runs page's External test tab, on a quick demo run; each saves the check in the run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from helpers import train_quick_run
from streamlit.testing.v1 import AppTest

from skinlab.app.shortcut_view import RUN_BUTTON
from skinlab.cli import main
from skinlab.core import runs
from skinlab.data.run_split import split_for_run
from skinlab.data.shortcuts import ShortcutScore, label_without_lesion
from skinlab.evaluate.run_shortcuts import shortcut_check_for_run
from skinlab.evaluate.saved_checks import saved_shortcuts

pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, session_dirs) -> tuple[runs.RunPaths, Path]:
    """A quick-preset run (1 epoch) on a small demo: ``(RunPaths, demo root)``."""
    return train_quick_run(tmp_path_factory.mktemp("run-shortcuts"), session_dirs["models"])


def _expected(paths: runs.RunPaths) -> ShortcutScore:
    """The statistics-only classifier on the run's training and validation rows, directly."""
    rows = split_for_run(runs.read_config(paths))
    table = pd.concat([rows.train, rows.val], ignore_index=True)
    return label_without_lesion(table, dataset_name=rows.dataset.root.name)


def _saved(paths: runs.RunPaths):
    return saved_shortcuts(json.loads(paths.metrics.read_text()))


def test_the_check_scores_the_rows_the_run_trained_and_validated_on_and_saves_it(
    trained,
) -> None:
    paths, _ = trained
    expected = _expected(paths)

    score = shortcut_check_for_run(paths.run_id)

    assert score == expected
    rows = split_for_run(runs.read_config(paths))
    assert score.images <= len(rows.train) + len(rows.val)
    saved = _saved(paths)
    assert saved is not None and saved.class_balanced_accuracy == expected.class_balanced_accuracy
    assert saved.sentence.startswith(f"On the {expected.images} images the run trained")
    assert "test" in json.loads(paths.metrics.read_text())  # the run's own scores are kept


def test_audit_shortcuts_of_a_run_prints_and_records_its_training_images_check(
    trained, capsys
) -> None:
    paths, _ = trained
    metrics = json.loads(paths.metrics.read_text())
    paths.metrics.write_text(json.dumps({k: v for k, v in metrics.items() if k != "shortcuts"}))

    assert main(["audit", "--shortcuts", "--run", paths.run_id, "--json"]) == 0

    found = json.loads(capsys.readouterr().out)
    expected = _expected(paths)
    assert found["run_label_without_lesion"] == expected.to_dict()
    saved = _saved(paths)
    assert saved is not None and saved.images == expected.images
    assert saved.label_predictable == expected.label_predictable


def _open(demo: Path, run_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["dataset"] = str(demo)
    at.run()  # the router first, as a browser's first load
    at.switch_page("pages/runs.py").run()
    at.multiselect(key="compare_runs").set_value([run_id]).run()
    at.selectbox(key="external_run").set_value(run_id).run()
    assert not at.exception, at.exception
    return at


def test_runs_page_checks_the_runs_training_images_on_request_and_shows_it_saved(
    trained,
) -> None:
    paths, demo = trained
    expected = _expected(paths)
    at = _open(demo, paths.run_id)
    assert "Class from image statistics" not in [m.label for m in at.metric]
    (button,) = [b for b in at.button if b.label == RUN_BUTTON]

    button.click().run()

    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Class from image statistics"] == f"{expected.class_balanced_accuracy:.2f}"
    if expected.collection_accuracy is not None:
        value = metrics["Collection from image statistics"]
        assert value == f"{expected.collection_accuracy:.2f}"
    chance = f"over chance ({expected.class_chance:.2f})"
    assert any(chance in (m.delta or "") for m in at.metric)
    assert any(m.value == expected.explanation for m in at.markdown)
    saved = _saved(paths)
    assert saved is not None

    fresh = _open(demo, paths.run_id)  # a new session: the saved check, nothing recomputed
    assert "Class from image statistics" not in [m.label for m in fresh.metric]
    assert any(saved.sentence in c.value for c in fresh.caption)


def test_a_run_with_too_few_training_images_for_the_check_says_so_in_one_sentence(
    trained, make_dataset_folder
) -> None:
    paths, demo = trained
    tiny = make_dataset_folder({"Train": {"melanoma": 3, "nevus": 1}}, root_name="tiny")
    copy = paths.root.parent / "20200101-000000-quick-tiny"
    shutil.copytree(paths.root, copy)
    config = json.loads((copy / runs.CONFIG).read_text())
    (copy / runs.CONFIG).write_text(json.dumps({**config, "data_root": str(tiny)}))
    try:
        at = _open(demo, copy.name)
        (button,) = [b for b in at.button if b.label == RUN_BUTTON]
        button.click().run()

        assert not at.exception, at.exception
        assert len(at.error) == 1 and "\n" not in at.error[0].value
        assert "at least two classes with two readable images" in at.error[0].value
        assert "Class from image statistics" not in [m.label for m in at.metric]
    finally:
        shutil.rmtree(copy)
