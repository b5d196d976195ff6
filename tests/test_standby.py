"""The warm standby (skinlab.jobs.standby): started before the click, handed the next run, and
gone when it is not wanted. Real processes; every wait is on a condition with a generous
deadline."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import kill_run_processes, wait_for_run

from skinlab.core import atomic, runs
from skinlab.core.config import RunConfig
from skinlab.core.processes import start_time
from skinlab.jobs import manager, standby


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(folder))
    monkeypatch.setenv("SKINLAB_STANDBY", "1")
    yield folder
    kill_run_processes(folder)


def _until(condition: Callable[[], object], timeout: float = 600.0) -> None:
    """Wait for ``condition``; the deadline is for a machine busy with other work (a
    standby's TensorFlow import took over 3 minutes at nice 5 beside a full-load job)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _group(pid: int) -> list[int]:
    """Live processes of the session that ``pid`` leads (the standby and its child)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == pid and start_time(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _record(models: Path) -> dict | None:
    return atomic.read_json(models / standby.RECORD, default=None)


def test_the_next_run_is_handed_to_the_warm_standby_which_trains_it_and_ends(
    models: Path, make_dataset_folder
) -> None:
    data = make_dataset_folder({"Train": {"melanoma": 6, "nevus": 6}})
    manager.ensure_standby()
    record = _record(models)
    assert record and start_time(record["pid"]) == record["start"]
    _until(lambda: standby.ready(models))
    config = RunConfig(
        data_root=str(data), backbone="custom", image_size=32, batch_size=4, epochs=1
    )
    paths = manager.start_run(config)
    assert _record(models) is None, "a standby serves one run"
    running = runs.read_status(paths)
    assert (running.supervisor_pid, running.supervisor_start) == (record["pid"], record["start"])
    status = wait_for_run(paths, lambda s: s.state in ("finished", "stopped"), timeout=600)
    assert status.state == "finished" and status.pid != record["pid"]
    assert "run finished" in manager.read_log(paths)
    assert not (models / standby.CLAIM).exists()
    _until(lambda: not _group(record["pid"]))  # supervisor and trainer both ended


def test_a_standby_counts_as_the_runs_supervisor_and_a_force_stop_kills_its_group(
    models: Path, make_dataset_folder
) -> None:
    data = make_dataset_folder({"Train": {"melanoma": 6, "nevus": 6}})
    manager.ensure_standby()
    pid = _record(models)["pid"]
    # Far more epochs than it gets to before the stop.
    config = RunConfig(
        data_root=str(data), backbone="custom", image_size=32, batch_size=4, epochs=500
    )
    paths = manager.start_run(config)
    wait_for_run(paths, lambda s: s.pid is not None and s.state == "running", timeout=600)
    assert manager.refresh(paths).state == "running"
    assert manager.stop_run(paths.run_id, force=True).state == "stopped"
    _until(lambda: not _group(pid))


def test_an_unwanted_standby_ends_itself_and_removes_its_record(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKINLAB_STANDBY_IDLE_SECONDS", "0")
    manager.ensure_standby()
    pid = _record(models)["pid"]
    _until(lambda: not _group(pid))
    assert _record(models) is None


def test_discard_ends_the_standby_and_its_training_process(models: Path) -> None:
    manager.ensure_standby()
    pid = _record(models)["pid"]
    _until(lambda: len(_group(pid)) == 2)  # the supervisor has started its trainer
    with manager.scheduler_lock(models):
        assert standby.discard(models)
    _until(lambda: not _group(pid))
    assert _record(models) is None


def test_a_standby_started_with_other_settings_is_never_handed_a_run(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager.ensure_standby()
    monkeypatch.setenv("SKINLAB_STOP_GRACE_SECONDS", "7")  # the run would not get this
    assert standby.take(models, standby.launch_env(models)) is None
    assert _record(models) is not None
    old = _record(models)["pid"]
    manager.ensure_standby()  # the page, drawn with the new settings, replaces it
    assert _record(models)["pid"] != old
    _until(lambda: not _group(old))


@pytest.mark.parametrize("why", ["standbys off", "a run is queued"])
def test_no_standby_when_off_or_while_a_run_waits(models: Path, monkeypatch, why: str) -> None:
    if why == "standbys off":
        monkeypatch.setenv("SKINLAB_STANDBY", "0")
    else:
        paths = runs.new_run(RunConfig(data_root=str(models), backbone="custom"))
        runs.write_status(paths, runs.RunStatus("queued", heartbeat=time.time()))
    manager.ensure_standby()
    assert _record(models) is None
    assert not (models / standby.LOG).exists()
