"""Tampered, malformed and incomplete run folders: loading refuses them with one sentence,
listings label them broken, and the app keeps working with the good run beside them."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import image_bytes, train_quick_run
from streamlit.testing.v1 import AppTest

from skinlab.app import ui
from skinlab.core import runs
from skinlab.core.atomic import RunFileError
from skinlab.core.errors import SkinlabError
from skinlab.jobs import manager
from skinlab.model.modelio import ModelFileError, load_run_model
from skinlab.predict.predictor import load_predictor

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "streamlit_app.py")


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> tuple[runs.RunPaths, Path]:
    """A real run in this module's own models folder (broken copies never leak elsewhere)."""
    base = tmp_path_factory.mktemp("hostile-runs")
    return train_quick_run(base, base / "models")


@pytest.fixture(autouse=True)
def _own_models(good, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(good[0].root.parent))


@pytest.fixture
def copy_run(good) -> Callable[[str], runs.RunPaths]:
    """``copy_run("tampered")``: a copy of the good run under an older id, removed afterwards."""
    made: list[Path] = []

    def _copy(label: str) -> runs.RunPaths:
        target = good[0].root.parent / f"20000101-000000-{label}"
        shutil.copytree(good[0].root, target)
        made.append(target)
        return runs.RunPaths(target)

    yield _copy
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


def assert_one_sentence(text: str) -> None:
    assert text.endswith(".") and "\n" not in text and "Traceback" not in text, text
    assert not re.search(r"[.!?]\s+[A-Z]", text), f"more than one sentence: {text}"


def _edit_manifest(paths: runs.RunPaths, **changes) -> None:
    manifest = json.loads(paths.manifest.read_text())
    paths.manifest.write_text(json.dumps({**manifest, **changes}))


def _drop_a_class(paths: runs.RunPaths) -> None:
    names = json.loads(paths.manifest.read_text())["class_names"]
    _edit_manifest(paths, class_names=names[:-1])


def _tamper_weights(paths: runs.RunPaths) -> None:
    data = bytearray(paths.weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    paths.weights.write_bytes(bytes(data))


#: how to break a copy of the good run -> words the refusal must hold
MODEL_BREAKS: dict[str, tuple[Callable[[runs.RunPaths], None], str]] = {
    "tampered-weights": (_tamper_weights, "do not match the hash"),
    "unknown-backbone": (lambda p: _edit_manifest(p, backbone="vgg99"), "unknown backbone"),
    "other-backbone": (lambda p: _edit_manifest(p, backbone="custom"), "config says"),
    "fewer-classes": (_drop_a_class, "do not fit its manifest"),
    "no-classes": (lambda p: _edit_manifest(p, class_names=[]), "two or more distinct class"),
    "class-string": (lambda p: _edit_manifest(p, class_names="melanoma"), "two or more distinct"),
    "other-image-size": (lambda p: _edit_manifest(p, image_size=32), "image size 32"),
    "bad-temperature": (lambda p: _edit_manifest(p, temperature="hot"), "temperature 'hot'"),
    "no-weights": (lambda p: p.weights.unlink(), "no saved model yet"),
    "no-manifest": (lambda p: p.manifest.unlink(), "no saved model yet"),
    "manifest-not-json": (lambda p: p.manifest.write_text("{'oops"), "not valid JSON"),
}


@pytest.mark.parametrize("case", list(MODEL_BREAKS))
def test_broken_model_files_are_refused_with_one_sentence(case, copy_run) -> None:
    paths = copy_run(case)
    breaks, words = MODEL_BREAKS[case]
    breaks(paths)
    for load in (load_run_model, load_predictor):
        with pytest.raises(SkinlabError) as info:
            load(paths.run_id)
        assert words in str(info.value)
        assert_one_sentence(str(info.value))


def test_tampered_weights_are_a_model_file_error(copy_run) -> None:
    paths = copy_run("tampered")
    _tamper_weights(paths)
    with pytest.raises(ModelFileError, match=paths.run_id):
        load_run_model(paths)


#: run file -> content that is not what skinlab writes
MALFORMED: dict[str, bytes] = {
    runs.STATUS: b'{"state": "finished", ',
    runs.CONFIG: b"backbone: custom\n",
    runs.MANIFEST: b"\x89PNG not json",
    runs.METRICS: b"[1, 2,",
    runs.HISTORY: image_bytes(),  # binary garbage where a CSV belongs
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_run_file_marks_the_run_broken_and_not_usable(name, copy_run) -> None:
    paths = copy_run(f"bad-{name.split('.')[0]}")
    (paths.root / name).write_bytes(MALFORMED[name])
    summary = runs.run_summary(paths)
    assert summary.state == "broken"
    assert name in summary.error
    offered = paths.run_id in [s.run_id for s in ui.usable_runs()]
    # The model picker reads no history or metrics (issue 29: drawn for every run on every
    # page); a run whose model is intact still predicts.
    assert offered == (name in _NOT_READ_BY_THE_PICKER)


#: Run files the sidebar's model picker does not read (issue 29, item 4).
_NOT_READ_BY_THE_PICKER = (runs.HISTORY, runs.METRICS)


@pytest.mark.parametrize("name", [runs.STATUS, runs.CONFIG])
def test_run_folder_missing_a_file_is_broken_or_unlisted(name, copy_run) -> None:
    paths = copy_run(f"missing-{name.split('.')[0]}")
    (paths.root / name).unlink()
    listed = {s.run_id: s for s in map(runs.run_summary, runs.list_runs())}
    if name == runs.CONFIG:  # not a run folder any more: not listed, not loadable
        assert paths.run_id not in listed
        with pytest.raises(runs.RunNotFoundError):
            load_predictor(paths.run_id)
    else:
        assert listed[paths.run_id].state == "broken"
        assert "no status.json" in (listed[paths.run_id].error or "")


def _break_all(copy_run) -> dict[str, runs.RunPaths]:
    """One copy per kind of damage: malformed files, missing weights, tampered weights."""
    broken = {}
    for name, content in MALFORMED.items():
        paths = copy_run(f"bad-{name.split('.')[0]}")
        (paths.root / name).write_bytes(content)
        broken[name] = paths
    broken["no-weights"] = copy_run("no-weights")
    broken["no-weights"].weights.unlink()
    broken["tampered"] = copy_run("tampered")
    _tamper_weights(broken["tampered"])
    return broken


def test_cli_lists_broken_runs_and_refuses_a_tampered_one_without_traceback(good, copy_run):
    broken = _break_all(copy_run)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    def cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "skinlab", *args]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)

    listing = cli("runs", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    states = {s["run_id"]: s["state"] for s in json.loads(listing.stdout)}
    assert states[good[0].run_id] == "finished"
    assert all(states[broken[name].run_id] == "broken" for name in MALFORMED)

    image = good[1] / "lesion.jpg"
    image.write_bytes(image_bytes(size=(96, 96)))
    refused = cli("predict", broken["tampered"].run_id, str(image))
    assert refused.returncode == 2
    assert "Traceback" not in refused.stdout + refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith("error: The weights of run")


def _open(good, page: str, model: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["dataset"] = str(good[1])
    if model:
        at.session_state["active_model"] = model
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_runs_page_labels_broken_runs_and_still_shows_the_good_one(good, copy_run) -> None:
    broken = _break_all(copy_run)
    at = _open(good, "pages/runs.py")
    listed = "\n".join(m.value for m in at.markdown)
    for name in MALFORMED:
        assert f"**{broken[name].run_id}**" in listed and name in listed
    compare = at.multiselect(key="compare_runs")
    assert good[0].run_id in compare.value  # chosen by default, scored as usual
    assert not any(broken[name].run_id in compare.value for name in MALFORMED)


def test_model_picker_offers_only_loadable_runs_and_predict_survives_a_tampered_one(
    good, copy_run
) -> None:
    broken = _break_all(copy_run)
    offered = [s.run_id for s in ui.usable_runs()]
    assert good[0].run_id in offered
    assert all(
        (broken[name].run_id in offered) == (name in _NOT_READ_BY_THE_PICKER) for name in MALFORMED
    )

    at = _open(good, "pages/predict.py", model=broken["tampered"].run_id)
    assert "do not match the hash" in at.error[0].value

    at = _open(good, "pages/predict.py", model=good[0].run_id)  # the user picks the good one
    at.file_uploader(key="predict_uploads").set_value(
        [("lesion.jpg", image_bytes(size=(96, 96)), "image/jpeg")]
    ).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


def _status_with(**changes) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))

    return edit


def _deeply_nested(path: Path) -> None:
    path.write_text('{"state": "running", "pid": ' + "[" * 100_000 + "]" * 100_000 + "}")


#: case -> (run file, how it is replaced by something skinlab never writes)
NOT_WHAT_SKINLAB_WRITES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "metrics-fifo": (runs.METRICS, _fifo),
    "metrics-dev-zero": (runs.METRICS, _dev_zero),
    "history-dev-zero": (runs.HISTORY, _dev_zero),
    "status-fifo": (runs.STATUS, _fifo),
    "pid-text": (runs.STATUS, _status_with(state="running", pid="abc")),
    "epoch-text": (runs.STATUS, _status_with(epoch="3")),
    "status-deep": (runs.STATUS, _deeply_nested),
}


@pytest.fixture
def within_seconds() -> Callable[[int], None]:
    """``within_seconds(n)``: fail the test with TimeoutError if it is still going after n
    seconds (a read of a FIFO would otherwise hang it, and the whole suite with it)."""

    def expire(signum, frame):
        raise TimeoutError("a read of a run file hung")

    previous = signal.signal(signal.SIGALRM, expire)
    yield signal.alarm
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _break_specially(copy_run) -> dict[str, runs.RunPaths]:
    broken = {}
    for case, (name, breaks) in NOT_WHAT_SKINLAB_WRITES.items():
        broken[case] = copy_run(case)
        breaks(broken[case].root / name)
    return broken


@pytest.mark.parametrize("case", list(NOT_WHAT_SKINLAB_WRITES))
def test_a_pipe_a_device_or_a_mistyped_status_marks_the_run_broken_in_one_sentence(
    case, good, copy_run, within_seconds
) -> None:
    within_seconds(20)
    name, breaks = NOT_WHAT_SKINLAB_WRITES[case]
    paths = copy_run(case)
    breaks(paths.root / name)
    summary = runs.run_summary(paths)
    assert summary.state == "broken" and name in summary.error
    assert_one_sentence(summary.error)
    if name == runs.STATUS:  # what Stop, Train and the scheduler read first
        with pytest.raises(RunFileError) as info:
            manager.refresh(paths)
        assert_one_sentence(str(info.value))
    listed = {s.run_id: s.state for s in manager.list_summaries()}
    assert listed[paths.run_id] == "broken" and listed[good[0].run_id] == "finished"
    offered = paths.run_id in [s.run_id for s in ui.usable_runs()]
    assert offered == (name in _NOT_READ_BY_THE_PICKER)


def test_runs_and_train_pages_show_the_good_run_beside_pipes_devices_and_mistyped_status(
    good, copy_run, within_seconds
) -> None:
    within_seconds(300)
    broken = _break_specially(copy_run)
    at = _open(good, "pages/runs.py")
    listed = "\n".join(m.value for m in at.markdown)
    for case, paths in broken.items():
        assert f"**{paths.run_id}**" in listed and NOT_WHAT_SKINLAB_WRITES[case][0] in listed
    assert at.multiselect(key="compare_runs").value == [good[0].run_id]

    at = _open(good, "pages/train.py")
    table = at.dataframe[0].value.set_index("run id")["state"]
    assert table[good[0].run_id] == "finished"
    assert all(table[paths.run_id] == "broken" for paths in broken.values())
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["dataset"] = str(good[1])
    at.query_params["run"] = broken["metrics-fifo"].run_id  # watching a damaged run
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] and all("\n" not in e.value for e in at.error)
