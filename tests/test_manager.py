"""Background runs for real: separate processes, stop, kill -9, queue, resume, idempotency."""

from __future__ import annotations

import errno
import os
import signal
import time
from contextlib import suppress
from pathlib import Path

import pytest

from skinlab import manager, runs
from skinlab.config import RunConfig
from skinlab.errors import SkinlabError
from skinlab.modelio import load_run_model
from skinlab.processes import is_alive

TERMINAL = ("stopped", "finished", "failed")


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    from skinlab.demo import generate_demo_dataset

    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", scale=1.0)


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(folder))
    monkeypatch.setenv("SKINLAB_MAX_CONCURRENT_RUNS", "1")
    yield folder
    for paths in runs.list_runs(folder):  # never leave a training process behind
        pid = runs.read_status(paths).supervisor_pid  # background runs lead their own group
        if pid and is_alive(pid):
            with suppress(ProcessLookupError, PermissionError):
                group = os.getpgid(pid)
                if group != os.getpgid(0):
                    os.killpg(group, signal.SIGKILL)


def _config(root: Path, **changes) -> RunConfig:
    base = dict(
        data_root=str(root), backbone="custom", image_size=112, batch_size=16, epochs=3, seed=1
    )
    return RunConfig(**{**base, **changes})


def _wait(paths: runs.RunPaths, predicate, timeout: float = 180.0) -> runs.RunStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = manager.refresh(paths)
        if predicate(status):
            return status
        if status.state == "failed":
            raise AssertionError(f"run failed: {status.error}\n{manager.read_log(paths, 40)}")
        time.sleep(0.1)
    raise AssertionError(f"timed out; last status {status}; log:\n{manager.read_log(paths, 40)}")


def test_start_prints_the_run_dir_at_once_and_stop_midway_keeps_best_weights(
    models, demo_root
) -> None:
    began = time.monotonic()
    paths = manager.start_run(_config(demo_root))
    assert time.monotonic() - began < 5, "start must not wait for training"
    seen = []
    status = _wait(
        paths, lambda s: seen.append((s.epoch, s.batch)) or (s.epoch >= 1 and s.batch >= 3)
    )
    assert status.state == "running" and status.pid and status.supervisor_pid != os.getpid()
    assert manager.stop_run(paths.run_id).state == "stopping"
    final = _wait(paths, lambda s: s.state in TERMINAL)
    assert final.state == "stopped", final.error
    history = runs.read_history(paths)
    assert 1 <= len(history) < 3
    assert paths.weights.exists() and paths.metrics.exists()
    load_run_model(paths)
    assert len({e for e, _ in seen}) >= 1


def test_kill_9_of_the_worker_shows_failed_with_the_signal_and_files_still_load(
    models, demo_root
) -> None:
    paths = manager.start_run(_config(demo_root, epochs=20))
    status = _wait(paths, lambda s: s.pid is not None and s.epoch >= 2)
    os.kill(status.pid, signal.SIGKILL)
    final = _wait(paths, lambda s: s.state in TERMINAL, timeout=30)
    assert final.state == "failed"
    assert "SIGKILL" in final.error
    runs.read_config(paths)
    runs.read_history(paths)
    assert runs.run_summary(paths)["state"] == "failed"
    assert paths.last_weights.exists()


def test_killing_the_whole_process_group_is_detected_as_heartbeat_lost(models, demo_root) -> None:
    paths = manager.start_run(_config(demo_root, epochs=20))
    status = _wait(paths, lambda s: s.pid is not None and s.epoch >= 1)
    os.killpg(os.getpgid(status.supervisor_pid), signal.SIGKILL)
    final = _wait(paths, lambda s: s.state in TERMINAL, timeout=30)
    assert final.state == "failed" and "heartbeat lost" in final.error


def test_resume_continues_the_epoch_count_and_history(models, demo_root) -> None:
    paths = manager.start_run(_config(demo_root, epochs=3))
    _wait(paths, lambda s: len(runs.read_history(paths)) >= 1)
    manager.stop_run(paths.run_id)
    assert _wait(paths, lambda s: s.state in TERMINAL).state == "stopped"
    done_before = len(runs.read_history(paths))
    manager.resume_run(paths.run_id)
    final = _wait(paths, lambda s: s.state in TERMINAL)
    assert final.state == "finished", final.error
    history = runs.read_history(paths)
    assert list(history["epoch"]) == [1, 2, 3]
    assert done_before < 3 and final.epoch == 3


def test_queue_of_three_runs_with_limit_one_runs_them_in_order(models, demo_root) -> None:
    configs = [_config(demo_root, epochs=1, image_size=32, seed=s) for s in (1, 2, 3)]
    started = [manager.start_run(c) for c in configs]
    states = [manager.refresh(p).state for p in started]
    assert states[0] == "running" and states[1:] == ["queued", "queued"]
    finals = [_wait(p, lambda s: s.state in TERMINAL) for p in started]
    assert [f.state for f in finals] == ["finished"] * 3
    for earlier, later in zip(finals, finals[1:], strict=False):
        assert later.started >= earlier.finished - 1.0  # one after another, in order


def test_double_start_with_the_same_config_yields_one_run(models, demo_root) -> None:
    config = _config(demo_root, epochs=1, image_size=32)
    first = manager.start_run(config)
    second = manager.start_run(config)
    assert first == second
    assert len(runs.list_runs(models)) == 1
    _wait(first, lambda s: s.state in TERMINAL)


def test_running_run_cannot_be_deleted_and_finished_one_can(models, demo_root) -> None:
    paths = manager.start_run(_config(demo_root, epochs=1, image_size=32))
    with pytest.raises(manager.RunStateError, match="stop it before deleting"):
        manager.delete_run(paths.run_id)
    _wait(paths, lambda s: s.state in TERMINAL)
    manager.rename_run(paths.run_id, "tiny baseline")
    assert runs.read_config(paths).name == "tiny baseline"
    manager.delete_run(paths.run_id)
    assert not paths.root.exists()


def test_start_is_refused_with_a_clear_message_when_the_disk_is_nearly_full(
    models, demo_root, monkeypatch
) -> None:
    monkeypatch.setattr(
        manager.shutil, "disk_usage", lambda p: type("U", (), {"free": 10 * 2**20})()
    )
    with pytest.raises(SkinlabError, match="MB are free"):
        manager.start_run(_config(demo_root))
    assert runs.list_runs(models) == []


def test_write_failure_mid_run_marks_it_failed_and_keeps_earlier_files(
    models, demo_root, monkeypatch
) -> None:
    from skinlab import callbacks
    from skinlab.training import TrainingFailed, train

    real = callbacks.append_history
    calls = {"n": 0}

    def full_disk(paths, row):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(paths, row)

    monkeypatch.setattr(callbacks, "append_history", full_disk)
    with pytest.raises(TrainingFailed, match="No space left"):
        train(_config(demo_root, image_size=32))
    paths = runs.list_runs(models)[0]
    status = runs.read_status(paths)
    assert status.state == "failed" and "disk space" in status.error
    assert list(runs.read_history(paths)["epoch"]) == [1]
    assert paths.weights.exists()


def test_cli_runs_start_prints_the_run_dir_last_and_status_json_has_the_state(
    models, demo_root
) -> None:
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "skinlab", "runs"]
    start = subprocess.run(
        [*cmd, "start", "--data", str(demo_root), "--epochs", "1", "--image-size", "32"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert start.returncode == 0, start.stderr
    run_dir = Path(start.stdout.strip().splitlines()[-1])
    assert (run_dir / runs.CONFIG).exists()
    _wait(runs.RunPaths(run_dir), lambda s: s.state in TERMINAL)
    status = subprocess.run(
        [*cmd, "status", run_dir.name, "--json"], cwd=root, capture_output=True, text=True
    )
    assert json.loads(status.stdout)["state"] == "finished"
    listing = subprocess.run([*cmd, "list", "--json"], cwd=root, capture_output=True, text=True)
    assert [r["state"] for r in json.loads(listing.stdout)] == ["finished"]
    logs = subprocess.run([*cmd, "logs", run_dir.name], cwd=root, capture_output=True, text=True)
    assert "run finished" in logs.stdout
