"""Tests of skinlab.core.runs: the run-folder layout, its readers and writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from skinlab.core.atomic import RunFileError, write_json
from skinlab.core.config import RunConfig
from skinlab.core.manifest import Manifest
from skinlab.core.runs import (
    HISTORY_COLUMNS,
    ManifestError,
    RunNotFoundError,
    RunPaths,
    RunStatus,
    append_history,
    file_sha256,
    list_runs,
    new_run,
    read_config,
    read_history,
    read_manifest,
    read_status,
    request_stop,
    resolve_run,
    run_summary,
    write_manifest,
    write_status,
)


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty models folder of this test's own (the session one is shared)."""
    folder = tmp_path / "models"
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(folder))
    return folder


def _run_folder(models: Path, run_id: str, **config: object) -> RunPaths:
    """A run folder with a chosen id (ids normally embed the current time)."""
    paths = RunPaths(models / run_id)
    paths.root.mkdir(parents=True)
    write_json(paths.config, RunConfig(**config).to_dict())
    write_status(paths, RunStatus("queued"))
    return paths


def test_new_run_writes_config_and_queued_status(models: Path) -> None:
    config = RunConfig(backbone="skinlab_cnn", epochs=3, name="first try")
    paths = new_run(config)
    assert paths.root.parent == models
    assert paths.run_id.split("-")[2] == "skinlab_cnn"
    assert read_config(paths) == config
    status = read_status(paths)
    assert status.state == "queued" and status.total_epochs == 3


def test_new_run_ids_are_unique_for_rapid_calls(models: Path) -> None:
    ids: list[str] = []
    config = RunConfig()

    def start() -> None:
        ids.extend(new_run(config).run_id for _ in range(5))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 20 and len(set(ids)) == 20
    assert len(list_runs()) == 20


def test_new_run_keeps_hostile_backbone_names_inside_the_models_folder(models: Path) -> None:
    paths = new_run(RunConfig(backbone="../../etc"))
    assert paths.root.parent == models


def test_run_paths_name_every_file_of_the_layout(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path / "20250101-000000-custom-abcdef")
    assert paths.run_id == "20250101-000000-custom-abcdef"
    assert paths.weights.name == "best.weights.h5"
    assert paths.stop_request.name == "STOP"
    assert paths.tensorboard.parent == paths.root


def test_status_round_trips_and_ignores_unknown_keys(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    status = RunStatus("running", epoch=2, total_epochs=5, images_per_second=float("nan"))
    write_status(paths, status)
    assert read_status(paths).images_per_second is None
    assert RunStatus.from_dict({**status.to_dict(), "from_the_future": 1}) == status


def test_unknown_state_is_rejected() -> None:
    with pytest.raises(ValueError, match="state must be one of"):
        RunStatus("exploded")


def test_missing_status_raises_run_file_error(tmp_path: Path) -> None:
    with pytest.raises(RunFileError, match="status.json"):
        read_status(RunPaths(tmp_path))


def test_history_appends_rows_with_the_fixed_columns(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    assert list(read_history(paths).columns) == list(HISTORY_COLUMNS)
    assert read_history(paths).empty
    append_history(paths, {"epoch": 1, "loss": 0.9, "phase": "train", "surprise": 7})
    append_history(paths, {"epoch": 2, "loss": 0.5, "val_accuracy": 0.75, "phase": "train"})
    history = read_history(paths)
    assert list(history.columns) == list(HISTORY_COLUMNS)
    assert history["epoch"].tolist() == [1, 2]
    assert history["loss"].tolist() == [0.9, 0.5]
    assert history["val_accuracy"].isna().tolist() == [True, False]
    assert history["phase"].tolist() == ["train", "train"]


def test_history_readers_never_see_a_partial_line(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    done = threading.Event()
    problems: list[str] = []

    def writer() -> None:
        try:
            for epoch in range(1, 201):
                append_history(paths, {"epoch": epoch, "loss": 1 / epoch, "phase": "train"})
        finally:
            done.set()

    def reader() -> None:
        seen = 0
        while not done.is_set():
            try:
                history = read_history(paths)
            except RunFileError as exc:
                problems.append(str(exc))
                return
            complete = not history[["epoch", "loss", "phase"]].isna().any().any()
            if not complete or history["epoch"].tolist() != list(range(1, len(history) + 1)):
                problems.append(history.tail(2).to_string())
                return
            if len(history) < seen:
                problems.append(f"history shrank from {seen} to {len(history)} rows")
                return
            seen = len(history)

    threads = [threading.Thread(target=reader) for _ in range(3)] + [
        threading.Thread(target=writer)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert problems == []
    assert len(read_history(paths)) == 200


def test_manifest_round_trips_and_missing_manifest_is_a_clear_error(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    with pytest.raises(RunFileError, match="manifest.json"):
        read_manifest(paths)
    paths.weights.write_bytes(b"abc")
    manifest = Manifest(
        "skinlab_cnn", ("nevus", "melanoma"), 64, weights_sha256=file_sha256(paths.weights)
    )
    write_manifest(paths, manifest)
    assert read_manifest(paths) == manifest
    assert manifest.weights_sha256 == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    # The file is the JSON object it always was: the field names are its keys.
    saved = json.loads(paths.manifest.read_text())
    assert saved["class_names"] == ["nevus", "melanoma"] and saved["data_version"] == "raw"


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ({"backbone": None}, "names no backbone"),
        ({"class_names": ["a", "a"]}, "two or more distinct class names"),
        ({"image_size": "64"}, "image size '64'"),
        ({"image_size": True}, "image size True"),
        ({"temperature": 0}, "temperature 0"),
        ({"temperature": "hot"}, "temperature 'hot'"),
    ],
)
def test_a_manifest_that_describes_no_model_is_refused_in_one_sentence(
    tmp_path: Path, edit: dict, words: str
) -> None:
    paths = RunPaths(tmp_path / "20260101-000000-custom-abcdef")
    paths.root.mkdir()
    good = Manifest("custom", ("nevus", "melanoma"), 64).to_dict()
    paths.manifest.write_text(json.dumps({**good, **edit}))
    with pytest.raises(ManifestError, match=words) as info:
        read_manifest(paths)
    assert paths.run_id in str(info.value) and str(info.value).count(". ") == 0


def test_manifest_of_an_older_skinlab_reads_with_defaults(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    paths.manifest.write_text(
        json.dumps({"backbone": "custom", "class_names": ["a", "b"], "image_size": 32, "x": 1})
    )
    manifest = read_manifest(paths)
    assert manifest.temperature == 1.0 and manifest.ood_threshold is None
    assert manifest.data_version == "raw" and manifest.train_images == 0


def test_list_runs_is_newest_first_and_skips_junk(models: Path) -> None:
    old = _run_folder(models, "20240101-120000-custom-aaaaaa")
    new = _run_folder(models, "20250101-120000-custom-bbbbbb")
    (models / "notes").mkdir()  # no config.json
    (models / ".20250101-130000-custom-tmp").mkdir()  # hidden
    write_json(models / ".20250101-130000-custom-tmp" / "config.json", {})
    (models / "stray.txt").write_text("not a run")
    assert list_runs() == [new, old]


def test_list_runs_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert list_runs(tmp_path / "nowhere") == []


def test_run_summary_reports_progress_and_metrics(models: Path) -> None:
    paths = _run_folder(models, "20250101-120000-custom-abcdef", name="baseline")
    write_status(paths, RunStatus("running", epoch=2, total_epochs=4))
    append_history(paths, {"epoch": 1, "val_accuracy": 0.5})
    append_history(paths, {"epoch": 2, "val_accuracy": 0.625})
    write_json(paths.metrics, {"validation": {"balanced_accuracy": 0.4}})
    summary = run_summary(paths)
    assert summary.name == "baseline" and summary.backbone == "custom"
    assert (summary.state, summary.epoch, summary.total_epochs) == ("running", 2, 4)
    assert summary.best_val_accuracy == 0.625
    assert summary.balanced_accuracy == 0.4
    assert summary.created == 1735732800.0
    assert summary.error is None
    # the row `runs list --json` prints: the same keys as before the typed record
    assert list(summary.to_dict()) == [
        "run_id",
        "name",
        "backbone",
        "state",
        "epoch",
        "total_epochs",
        "best_val_accuracy",
        "balanced_accuracy",
        "created",
        "error",
    ]


def test_run_summary_of_a_malformed_status_is_broken_and_does_not_raise(models: Path) -> None:
    paths = _run_folder(models, "20250101-120000-custom-abcdef")
    paths.status.write_text('{"state": "runn')
    summary = run_summary(paths)
    assert summary.state == "broken"
    assert "status.json" in summary.error
    assert summary.backbone == "custom"


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.config.write_text("[1, 2]"),
        lambda p: p.config.write_text('{"image_size": 3}'),
        lambda p: p.status.unlink(),
        lambda p: p.history.write_bytes(b'epoch,loss\n1,"unterminated\n'),
        lambda p: p.metrics.write_text("{"),
    ],
)
def test_run_summary_of_any_damaged_file_is_broken(models: Path, damage) -> None:
    paths = _run_folder(models, "20250101-120000-custom-abcdef")
    damage(paths)
    summary = run_summary(paths)
    assert summary.state == "broken" and summary.error


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: None,
        lambda p: p.config.write_text("[1, 2]"),
        lambda p: p.status.write_text('{"state": "runn'),
        lambda p: p.history.write_bytes(b'epoch,loss\n1,"unterminated\n'),
        lambda p: p.metrics.write_text("{"),
    ],
)
def test_read_run_reads_each_file_once_and_makes_the_same_row_as_run_summary(
    models: Path, damage, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skinlab.core import record, runs

    paths = _run_folder(models, "20250101-120000-custom-abcdef", name="baseline")
    write_status(paths, RunStatus("running", epoch=2, total_epochs=4))
    append_history(paths, {"epoch": 1, "val_accuracy": 0.5})
    write_json(paths.metrics, {"validation": {"balanced_accuracy": 0.4}})
    damage(paths)
    row = run_summary(paths)
    calls: list[str] = []
    for name in ("read_config", "read_status", "read_history", "read_manifest"):
        real = getattr(runs, name)

        def counted(p, _real=real, _name=name):
            calls.append(_name)
            return _real(p)

        monkeypatch.setattr(runs, name, counted)
    got = record.read_run(paths)
    assert sorted(calls) == ["read_config", "read_history", "read_status"]
    assert (got.summary.state, got.summary.error is None) == (row.state, row.error is None)
    if row.state != "broken":
        assert got.summary == row


def test_resolve_run_by_id_prefix_and_path(models: Path) -> None:
    first = _run_folder(models, "20250101-120000-custom-aaaaaa")
    second = _run_folder(models, "20250102-120000-custom-bbbbbb")
    assert resolve_run(first.run_id) == first
    assert resolve_run("20250102") == second
    assert resolve_run(second.root) == second
    assert resolve_run(str(second.root)) == second


def test_resolve_run_with_an_ambiguous_prefix_lists_the_candidates(models: Path) -> None:
    _run_folder(models, "20250101-120000-custom-aaaaaa")
    _run_folder(models, "20250101-130000-custom-bbbbbb")
    with pytest.raises(RunNotFoundError, match="matches 2 runs"):
        resolve_run("20250101")


def test_resolve_run_of_a_missing_run_is_a_clear_error(models: Path, tmp_path: Path) -> None:
    _run_folder(models, "20250101-120000-custom-aaaaaa")
    with pytest.raises(RunNotFoundError, match="No run in"):
        resolve_run("2019")
    with pytest.raises(RunNotFoundError, match="not a run folder"):
        resolve_run(tmp_path / "elsewhere")
    with pytest.raises(RunNotFoundError, match="No run was given"):
        resolve_run("  ")


def test_request_stop_creates_the_stop_file(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    request_stop(paths)
    assert paths.stop_request.exists()


def test_a_killed_writer_leaves_every_file_parseable(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path / "run")
    script = (
        "import itertools, sys\n"
        "from skinlab.core.runs import RunPaths, RunStatus, append_history, write_status\n"
        "paths = RunPaths(sys.argv[1])\n"
        "for i in itertools.count(1):\n"
        "    write_status(paths, RunStatus('running', epoch=i))\n"
        "    append_history(paths, {'epoch': i, 'loss': 1.0, 'phase': 'train'})\n"
        "    if i == 20: print('ready', flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with subprocess.Popen(
        [sys.executable, "-c", script, str(paths.root)], stdout=subprocess.PIPE, env=env
    ) as proc:
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.2)
        proc.kill()
    epoch = read_status(paths).epoch
    history = read_history(paths)
    assert epoch >= 20 and len(history) in (epoch - 1, epoch)
    assert history["epoch"].tolist() == list(range(1, len(history) + 1))
