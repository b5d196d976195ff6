"""Background runs for real: separate processes, stop, kill -9, queue, resume, idempotency."""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import kill_run_processes, wait_for_run

from skinlab.core import runs
from skinlab.core.config import RunConfig
from skinlab.core.errors import SkinlabError
from skinlab.jobs import manager
from skinlab.model.modelio import load_run_model

TERMINAL = ("stopped", "finished", "failed")


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    from skinlab.data.demo import generate_demo_dataset

    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", scale=1.0)


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(folder))
    monkeypatch.setenv("SKINLAB_MAX_CONCURRENT_RUNS", "1")
    yield folder
    kill_run_processes(folder)


def _config(root: Path, **changes) -> RunConfig:
    base = dict(
        data_root=str(root), backbone="custom", image_size=112, batch_size=16, epochs=3, seed=1
    )
    return RunConfig(**{**base, **changes})


def test_start_prints_the_run_dir_at_once_and_stop_midway_keeps_best_weights(
    models, demo_root
) -> None:
    began = time.monotonic()
    # Far more epochs than it gets to: a fast machine must not finish before the stop.
    paths = manager.start_run(_config(demo_root, epochs=50))
    assert time.monotonic() - began < 5, "start must not wait for training"
    seen = []
    status = wait_for_run(
        # Into epoch 2: a stop keeps whole epochs only, so epoch 1 must be done.
        paths,
        lambda s: seen.append((s.epoch, s.batch)) or (s.epoch >= 2 and s.batch >= 3),
    )
    assert status.state == "running" and status.pid and status.supervisor_pid != os.getpid()
    assert manager.stop_run(paths.run_id).state == "stopping"
    final = wait_for_run(paths, lambda s: s.state in TERMINAL)
    assert final.state == "stopped", final.error
    history = runs.read_history(paths)
    assert 1 <= len(history) < 50
    assert paths.weights.exists() and paths.metrics.exists()
    load_run_model(paths)
    assert len({e for e, _ in seen}) >= 1


def test_kill_9_of_the_worker_shows_failed_with_the_signal_and_files_still_load(
    models, demo_root
) -> None:
    paths = manager.start_run(_config(demo_root, epochs=20))
    status = wait_for_run(paths, lambda s: s.pid is not None and s.epoch >= 2)
    os.kill(status.pid, signal.SIGKILL)
    final = wait_for_run(paths, lambda s: s.state in TERMINAL, timeout=30)
    assert final.state == "failed"
    assert "SIGKILL" in final.error
    runs.read_config(paths)
    runs.read_history(paths)
    assert runs.run_summary(paths).state == "failed"
    assert paths.last_weights.exists()


def test_killing_the_whole_process_group_is_detected_as_heartbeat_lost(models, demo_root) -> None:
    paths = manager.start_run(_config(demo_root, epochs=20))
    status = wait_for_run(paths, lambda s: s.pid is not None and s.epoch >= 1)
    os.killpg(os.getpgid(status.supervisor_pid), signal.SIGKILL)
    final = wait_for_run(paths, lambda s: s.state in TERMINAL, timeout=30)
    assert final.state == "failed" and "heartbeat lost" in final.error


def test_resume_continues_the_epoch_count_and_history(models, demo_root) -> None:
    paths = manager.start_run(_config(demo_root, epochs=3))
    wait_for_run(paths, lambda s: len(runs.read_history(paths)) >= 1)
    manager.stop_run(paths.run_id)
    assert wait_for_run(paths, lambda s: s.state in TERMINAL).state == "stopped"
    done_before = len(runs.read_history(paths))
    manager.resume_run(paths.run_id)
    final = wait_for_run(paths, lambda s: s.state in TERMINAL)
    assert final.state == "finished", final.error
    history = runs.read_history(paths)
    assert list(history["epoch"]) == [1, 2, 3]
    assert done_before < 3 and final.epoch == 3


def test_queue_of_three_runs_with_limit_one_runs_them_in_order(models, demo_root) -> None:
    configs = [_config(demo_root, epochs=1, image_size=32, seed=s) for s in (1, 2, 3)]
    started = [manager.start_run(c) for c in configs]
    states = [manager.refresh(p).state for p in started]
    assert states[0] == "running" and states[1:] == ["queued", "queued"]
    finals = [wait_for_run(p, lambda s: s.state in TERMINAL) for p in started]
    assert [f.state for f in finals] == ["finished"] * 3
    for earlier, later in zip(finals, finals[1:], strict=False):
        assert later.started >= earlier.finished - 1.0  # one after another, in order


def test_two_sessions_starting_runs_at_the_same_moment_get_one_running_and_one_queued(
    models, demo_root
) -> None:
    configs = [_config(demo_root, epochs=1, image_size=32, seed=s) for s in (1, 2)]
    both_ready = threading.Barrier(2)
    started: list[runs.RunPaths] = []

    def session(config: RunConfig) -> None:  # one Streamlit session = one script thread
        both_ready.wait()
        started.append(manager.start_run(config))

    threads = [threading.Thread(target=session, args=(c,)) for c in configs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    by_state = {manager.refresh(p).state: p for p in started}
    assert sorted(by_state) == ["queued", "running"]
    first, second = by_state["running"], by_state["queued"]
    deadline = time.monotonic() + 180
    while (states := [manager.refresh(p).state for p in (first, second)]) != ["finished"] * 2:
        assert time.monotonic() < deadline, f"the runs did not both finish: {states}"
        assert sum(state in manager.ACTIVE for state in states) <= 1, states
        assert "failed" not in states, manager.read_log(first) + manager.read_log(second)
        time.sleep(0.05)
    assert runs.read_status(second).started >= runs.read_status(first).finished - 1.0


def test_double_start_with_the_same_config_yields_one_run(models, demo_root) -> None:
    config = _config(demo_root, epochs=1, image_size=32)
    first = manager.start_run(config)
    second = manager.start_run(config)
    assert first == second
    assert len(runs.list_runs(models)) == 1
    wait_for_run(first, lambda s: s.state in TERMINAL)


def test_running_run_cannot_be_deleted_and_finished_one_can(models, demo_root) -> None:
    paths = manager.start_run(_config(demo_root, epochs=1, image_size=32))
    with pytest.raises(manager.RunStateError, match="stop it before deleting"):
        manager.delete_run(paths.run_id)
    wait_for_run(paths, lambda s: s.state in TERMINAL)
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


def _weight_hashes(paths: runs.RunPaths) -> dict[str, str]:
    return {p.name: runs.file_sha256(p) for p in (paths.weights, paths.last_weights)}


@pytest.mark.parametrize("writer", ["history", "checkpoint"])
def test_disk_full_mid_run_marks_it_failed_saying_so_and_keeps_the_saved_weights(
    models, demo_root, monkeypatch, writer
) -> None:
    """The disk fills up in epoch 2, while writing the history row or the weights."""
    from skinlab.model.modelio import build_for_config
    from skinlab.train import callbacks, checkpoint
    from skinlab.train.training import TrainingFailed, train

    calls = {"n": 0}
    saved: dict[str, str] = {}
    real_history, real_atomic_path = callbacks.append_history, checkpoint.atomic_path

    def history_then_full(paths, row):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_history(paths, row)

    @contextmanager
    def weights_then_full(path):
        calls["n"] += 1  # epoch 1 saves the last and the best weights; then epoch 2's fail
        with real_atomic_path(path) as tmp:
            yield tmp
            if calls["n"] == 3:
                saved.update(_weight_hashes(runs.RunPaths(path.parent)))
                raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    if writer == "history":
        monkeypatch.setattr(callbacks, "append_history", history_then_full)
    else:
        monkeypatch.setattr(checkpoint, "atomic_path", weights_then_full)
    config = _config(demo_root, image_size=32)
    with pytest.raises(TrainingFailed, match="disk is full"):
        train(config)
    paths = runs.list_runs(models)[0]
    status = runs.read_status(paths)
    assert status.state == "failed"
    assert "disk is full" in status.error and "free some disk space" in status.error.lower()
    assert list(runs.read_history(paths)["epoch"]) == [1]
    assert sorted(f.name for f in paths.root.iterdir() if f.name.startswith(".")) == []
    if writer == "checkpoint":
        assert saved and saved == _weight_hashes(paths)
    build_for_config(config, 9).load_weights(paths.weights)


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
    wait_for_run(runs.RunPaths(run_dir), lambda s: s.state in TERMINAL)
    status = subprocess.run(
        [*cmd, "status", run_dir.name, "--json"], cwd=root, capture_output=True, text=True
    )
    assert json.loads(status.stdout)["state"] == "finished"
    listing = subprocess.run([*cmd, "list", "--json"], cwd=root, capture_output=True, text=True)
    assert [r["state"] for r in json.loads(listing.stdout)] == ["finished"]
    logs = subprocess.run([*cmd, "logs", run_dir.name], cwd=root, capture_output=True, text=True)
    assert "run finished" in logs.stdout
