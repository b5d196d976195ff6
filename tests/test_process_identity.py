"""Stop and liveness trust a process only by the identity skinlab recorded when it launched
it (pid, start time, command line, session), never by a pid read from ``status.json``.

The stand-ins are cheap: a "decoy" is any process whose command line holds "skinlab"; an
"impostor" is a sleeping process with exactly the command line of a run's supervisor (a fake
``skinlab.jobs.worker`` module), so the real stop path runs in milliseconds, without Keras.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from skinlab.core import runs
from skinlab.core.atomic import write_json
from skinlab.core.config import RunConfig
from skinlab.core.processes import start_time
from skinlab.jobs import manager, worker

ROOT = Path(__file__).resolve().parents[1]

#: A fake ``skinlab.jobs.worker``: "supervise" starts a "train" child (printing its pid), as the
#: real supervisor does, and a "standby" a "standby-train" child; all then sleep instead of
#: training, in the folder ``FAKE_WORKER_CWD`` when set (a standby handed a run moves there).
_FAKE_WORKER = """\
import os, subprocess, sys, time
child_role = {"supervise": "train", "standby": "standby-train"}.get(sys.argv[1])
if child_role:
    child = subprocess.Popen([sys.executable, "-m", "skinlab.jobs.worker", child_role, sys.argv[2]])
if os.environ.get("FAKE_WORKER_CWD"):
    os.chdir(os.environ["FAKE_WORKER_CWD"])
if child_role:
    print(child.pid, flush=True)
time.sleep(60)
"""


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> runs.RunPaths:
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(tmp_path / "models"))
    return runs.new_run(RunConfig(data_root=str(tmp_path), backbone="custom"))


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """``spawn(argv, **popen_args)``: a process killed (and reaped) after the test."""
    started: list[subprocess.Popen] = []

    def _spawn(argv: list[str], **kwargs) -> subprocess.Popen:
        started.append(subprocess.Popen(argv, **kwargs))
        return started[-1]

    yield _spawn
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.fixture
def decoy(spawn) -> subprocess.Popen:
    """An unrelated process with "skinlab" in its command line, in a group of its own."""
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "skinlab"]
    return spawn(argv, start_new_session=True)


@pytest.fixture
def impostor(spawn, tmp_path: Path, run: runs.RunPaths) -> Callable[..., subprocess.Popen]:
    """``impostor(**popen_args)``: a fake supervisor of ``run`` with the real command line;
    its fake trainer's pid is in ``.trainer``."""
    package = tmp_path / "fake" / "skinlab"
    (package / "jobs").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "jobs" / "__init__.py").write_text("")
    (package / "jobs" / "worker.py").write_text(_FAKE_WORKER)

    def _impostor(argv: list[str] | None = None, **kwargs) -> subprocess.Popen:
        # ``-m`` imports from the working directory first: the fake package, not skinlab.
        proc = spawn(
            argv or worker.command("supervise", run.root),
            cwd=package.parent,
            stdout=subprocess.PIPE,
            text=True,
            **kwargs,
        )
        proc.trainer = int(proc.stdout.readline())
        return proc

    return _impostor


def _mark_running(run: runs.RunPaths, state: str = "running", **pids) -> None:
    """``status.json`` as written by hand: active, with whatever pids and start times."""
    write_json(run.status, runs.RunStatus(state, heartbeat=time.time(), **pids).to_dict())


def _launched(
    run: runs.RunPaths, impostor, argv: list[str] | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    """A fake supervisor and trainer, recorded in ``status.json`` as skinlab records them;
    both work in ``cwd`` when given (as a standby and its trainer handed a run do)."""
    env = {**os.environ, "FAKE_WORKER_CWD": str(cwd)} if cwd else None
    proc = impostor(argv, start_new_session=True, env=env)
    deadline = time.monotonic() + 30
    while cwd and os.readlink(f"/proc/{proc.trainer}/cwd") != str(cwd):
        assert time.monotonic() < deadline, "the fake trainer never moved into the run"
        time.sleep(0.01)
    _mark_running(
        run,
        pid=proc.trainer,
        pid_start=start_time(proc.trainer),
        supervisor_pid=proc.pid,
        supervisor_start=start_time(proc.pid),
    )
    return proc


def _alive(proc: subprocess.Popen) -> bool:
    return proc.poll() is None


def _wait_gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while start_time(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("recorded", ["no start time", "its real start time"])
def test_a_skinlab_decoy_as_pid_and_supervisor_is_not_a_live_run_and_is_never_signalled(
    run, decoy, recorded
) -> None:
    start = start_time(decoy.pid) if recorded == "its real start time" else None
    _mark_running(
        run, pid=decoy.pid, pid_start=start, supervisor_pid=decoy.pid, supervisor_start=start
    )
    assert manager.refresh(run).state == "failed"
    for force in (False, True):
        with pytest.raises(manager.RunStateError, match="is failed"):
            manager.stop_run(run.run_id, force=force)
    assert _alive(decoy)


def test_force_stop_never_signals_an_unrelated_group_named_as_supervisor(run, decoy, spawn) -> None:
    unrelated = spawn(["sleep", "60"], start_new_session=True)
    _mark_running(
        run,
        "stopping",
        pid=decoy.pid,
        supervisor_pid=unrelated.pid,
        supervisor_start=start_time(unrelated.pid),
    )
    with pytest.raises(manager.RunStateError):
        manager.stop_run(run.run_id, force=True)
    assert _alive(unrelated) and _alive(decoy)
    assert runs.read_status(run).state == "failed"


def test_cli_runs_stop_refuses_a_decoy_run_and_leaves_the_decoy_alive(run, decoy) -> None:
    _mark_running(run, pid=decoy.pid, supervisor_pid=decoy.pid)
    for extra in ([], ["--force"]):
        done = subprocess.run(
            [sys.executable, "-m", "skinlab", "runs", "stop", run.run_id, *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2 and "is failed" in done.stderr, done.stderr
    assert _alive(decoy)


@pytest.mark.parametrize("differs", ["start time", "session"])
def test_a_reused_pid_with_the_supervisors_command_line_is_not_ours(run, impostor, differs) -> None:
    if differs == "start time":  # the pid came back after a reboot, to a look-alike
        proc = impostor(start_new_session=True)
        recorded = start_time(proc.pid) + 1
    else:  # leads its own group but not its own session: not what _launch starts
        proc = impostor(process_group=0)
        recorded = start_time(proc.pid)
    _mark_running(run, supervisor_pid=proc.pid, supervisor_start=recorded)
    assert manager.refresh(run).state == "failed"
    _mark_running(run, "stopping", supervisor_pid=proc.pid, supervisor_start=recorded)
    with pytest.raises(manager.RunStateError):
        manager.stop_run(run.run_id, force=True)
    assert _alive(proc) and start_time(proc.trainer) is not None


def test_the_app_servers_own_pid_as_supervisor_is_never_signalled(run, decoy) -> None:
    # This test process stands in for the Streamlit server that handles the click.
    me = os.getpid()
    _mark_running(run, pid=decoy.pid, supervisor_pid=me, supervisor_start=start_time(me))
    with pytest.raises(manager.RunStateError):
        manager.stop_run(run.run_id, force=True)
    assert _alive(decoy)  # and this test is still running


def test_force_stop_kills_the_supervisor_group_skinlab_recorded(run, impostor) -> None:
    proc = _launched(run, impostor)
    assert manager.refresh(run).state == "running"
    assert manager.stop_run(run.run_id, force=True).state == "stopped"
    assert proc.wait(timeout=30) == -signal.SIGTERM
    assert _wait_gone(proc.trainer), "the training process outlived its group's stop"


def test_a_trainer_whose_supervisor_was_killed_alone_still_counts_as_alive(run, impostor) -> None:
    proc = _launched(run, impostor)
    proc.kill()
    proc.wait()
    assert manager.refresh(run).state == "running"
    os.kill(proc.trainer, signal.SIGKILL)
    assert _wait_gone(proc.trainer)
    assert manager.refresh(run).state == "failed"


def test_a_foreground_trainer_is_alive_by_the_identity_it_wrote_itself(run) -> None:
    me = os.getpid()
    runs.write_status(run, runs.RunStatus("running", pid=me))  # as the training callback does
    assert runs.read_status(run).pid_start == start_time(me)
    assert manager.refresh(run).state == "running"
    _mark_running(run, pid=me)  # the same pid written by hand, without a start time
    assert manager.refresh(run).state == "failed"


def test_a_standby_handed_the_run_is_its_supervisor_and_force_stop_kills_its_group(
    run, impostor
) -> None:
    # A warm standby (skinlab.jobs.standby) of the run's models folder became its supervisor
    # and moved into the run's folder.
    proc = _launched(run, impostor, worker.command("standby", run.root.parent), run.root)
    assert manager.refresh(run).state == "running"
    proc.kill()
    proc.wait()
    assert manager.refresh(run).state == "running"  # its trainer still counts alone
    os.kill(proc.trainer, signal.SIGKILL)
    assert _wait_gone(proc.trainer)
    assert manager.refresh(run).state == "failed"
    live = _launched(run, impostor, worker.command("standby", run.root.parent), run.root)
    assert manager.stop_run(run.run_id, force=True).state == "stopped"
    assert live.wait(timeout=30) == -signal.SIGTERM
    assert _wait_gone(live.trainer)


def test_a_standby_of_another_models_folder_is_not_the_runs_supervisor(
    run, impostor, tmp_path: Path
) -> None:
    proc = _launched(run, impostor, worker.command("standby", tmp_path / "elsewhere"))
    assert manager.refresh(run).state == "failed"
    _mark_running(run, "stopping", supervisor_pid=proc.pid, supervisor_start=start_time(proc.pid))
    with pytest.raises(manager.RunStateError):
        manager.stop_run(run.run_id, force=True)
    assert _alive(proc)


def test_the_pages_stop_asked_twice_leaves_the_run_stopping_and_alive(run, impostor) -> None:
    # The Train page's Stop button (escalate=False): one click delivered twice must not kill.
    proc = _launched(run, impostor)
    assert manager.stop_run(run.run_id, escalate=False).state == "stopping"
    again = manager.stop_run(run.run_id, escalate=False)
    assert again.state == "stopping" and again.error is None
    assert _alive(proc)
    # The command line's second stop still kills.
    assert manager.stop_run(run.run_id).state == "stopped"
    assert _wait_gone(proc.trainer), "the training process outlived its group's stop"


def test_a_child_checked_the_moment_popen_returns_is_recognised(spawn) -> None:
    # Popen returns when the child's exec begins; its arguments appear a moment later (on 2
    # busy cores /proc/<pid>/cmdline read at once was empty for 2 in 3 children), and a run
    # just started was then marked failed as "disappeared" (seen in CI).
    from skinlab.core.processes import matches

    for _ in range(30):
        proc = spawn(["sleep", "30"], start_new_session=True)
        assert matches(proc.pid, start_time(proc.pid), ["30"], session=proc.pid)


def test_arguments_that_read_empty_mid_exec_are_waited_for(spawn, monkeypatch) -> None:
    from skinlab.core import processes

    proc = spawn(["sleep", "30"], start_new_session=True)
    real_read = Path.read_bytes
    empty_reads = []

    def mid_exec(self: Path) -> bytes:
        if self.name == "cmdline" and len(empty_reads) < 3:
            empty_reads.append(self)
            return b""
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", mid_exec)
    assert processes.matches(proc.pid, start_time(proc.pid), ["30"], session=proc.pid)
    assert len(empty_reads) == 3
    assert not processes.matches(proc.pid, start_time(proc.pid), ["31"], session=proc.pid)


def test_a_trainer_recorded_before_the_launch_writes_running_is_kept(
    run, spawn, monkeypatch
) -> None:
    # A cold supervisor records its trainer (worker._adopt) as soon as it is up; on a loaded
    # machine that can come before the scheduler's own "running" write, which then erased it.
    from skinlab.core import lifecycle

    trainer = spawn(["sleep", "60"])
    supervisor = spawn(["sleep", "60"], start_new_session=True)

    def quick_supervisor(argv, **kwargs):
        proc = supervisor
        lifecycle.change(run, pid=trainer.pid, pid_start=start_time(trainer.pid))
        return proc

    monkeypatch.setattr(manager.subprocess, "Popen", quick_supervisor)
    monkeypatch.setenv("SKINLAB_STANDBY", "0")
    manager._launch(run)
    status = runs.read_status(run)
    assert status.state == "running"
    assert (status.pid, status.pid_start) == (trainer.pid, start_time(trainer.pid))
