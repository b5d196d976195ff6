"""The warm standby and the process checks against files someone planted in models/ (issue
29, items 1(d), 6 and 14): a crafted claim hands the standby no folder outside its models
folder, a crafted run naming the standby gets no signal sent to it, a status naming any live
process (pid 1, the app server) is not a live run, and a look-alike this user may not signal
is a sentence, not a traceback.

The fake supervisors come from ``test_process_identity`` (a fake ``skinlab.jobs.worker`` with
the real command line that sleeps instead of training)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import test_process_identity as identity
import test_standby
from test_process_identity import _alive, _launched, _mark_running

from skinlab.core import atomic, processes, runs
from skinlab.core.config import RunConfig
from skinlab.core.processes import start_time
from skinlab.jobs import manager, standby, worker

# The fake supervisors' fixtures, shared: pytest finds fixtures by their name in the module.
run, spawn, impostor = identity.run, identity.spawn, identity.impostor
models = test_standby.models  # a models folder with standbys on, cleaned up after


def _until(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _lookalike_run(folder: Path) -> runs.RunPaths:
    """A folder holding a config and a status, as a run folder does."""
    return runs.new_run(RunConfig(backbone="custom"), root=folder)


def test_the_standby_enters_only_a_real_run_folder_directly_in_its_models_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.chdir(tmp_path)
    good = _lookalike_run(models)
    outside = _lookalike_run(tmp_path / "anywhere")
    (models / "sneaky").symlink_to(outside.root, target_is_directory=True)
    bare = models / "20260101-000000-bare"
    bare.mkdir()
    (bare / "config.json").write_text("{}")  # no status.json
    nested = _lookalike_run(good.root)
    for named in (
        str(outside.root),
        str(models / "sneaky"),
        str(bare),
        str(nested.root),
        str(models / ".."),
        f"{models}/../anywhere/{outside.run_id}",
        str(models),
        17,
        None,
    ):
        assert standby.enter(models, {"pid": os.getpid(), "run": named}) is None, named
        assert Path.cwd() == tmp_path
    assert standby.enter(models, {"run": str(good.root)}) == good.root
    assert Path.cwd() == good.root


def test_a_crafted_claim_hands_the_warm_standby_no_folder_outside(
    models: Path, tmp_path: Path
) -> None:
    # 1(d): {"pid": <the standby's pid>, "run": "/anywhere"} made it train there.
    outside = _lookalike_run(tmp_path / "anywhere")
    before = {p.name: p.read_bytes() for p in outside.root.iterdir()}
    manager.ensure_standby()
    pid = atomic.read_json(models / standby.RECORD)["pid"]
    atomic.write_json(models / standby.CLAIM, {"pid": pid, "run": str(outside.root)})
    _until(lambda: not (models / standby.CLAIM).exists())  # the standby looked at it
    assert {p.name: p.read_bytes() for p in outside.root.iterdir()} == before
    assert atomic.read_json(models / standby.RECORD)["pid"] == pid  # still waiting, unclaimed
    assert start_time(pid) is not None
    assert os.readlink(f"/proc/{pid}/cwd") != str(outside.root)


def test_a_crafted_stopping_run_naming_an_idle_standby_never_gets_it_killed(run, impostor) -> None:
    # 6: "Force stop now" on a crafted run B killed the standby it named.
    idle = _launched(run, impostor, worker.command("standby", run.root.parent))
    _mark_running(run, "stopping", supervisor_pid=idle.pid, supervisor_start=start_time(idle.pid))
    assert manager.observe(run).state == "failed"
    with pytest.raises(manager.RunStateError, match="is failed"):
        manager.stop_run(run.run_id, force=True)
    assert _alive(idle)


def _busy_standby_and_crafted_run(run, impostor, state: str) -> tuple:
    """A (fake) standby training ``run``, and a crafted run in ``state`` naming its pids."""
    real = _launched(run, impostor, worker.command("standby", run.root.parent), run.root)
    crafted = _lookalike_run(run.root.parent)
    ours = runs.read_status(run)
    names = dict(supervisor_pid=ours.supervisor_pid, supervisor_start=ours.supervisor_start)
    _mark_running(crafted, state, pid=ours.pid, pid_start=ours.pid_start, **names)
    return real, crafted


def test_stopping_a_crafted_run_leaves_the_run_handed_to_the_standby_alone(run, impostor) -> None:
    # 6: `runs stop B` killed a real run A that had been handed to the standby.
    real, crafted = _busy_standby_and_crafted_run(run, impostor, "running")
    assert manager.refresh(crafted).state == "failed"
    ours = runs.read_status(run)
    _mark_running(
        crafted,
        "stopping",
        supervisor_pid=ours.supervisor_pid,
        supervisor_start=ours.supervisor_start,
    )
    with pytest.raises(manager.RunStateError):
        manager.stop_run(crafted.run_id)
    assert _alive(real) and start_time(real.trainer) is not None
    assert manager.refresh(run).state == "running"


def test_a_forged_claim_does_not_make_a_busy_standby_another_runs_supervisor(run, impostor) -> None:
    # A standby training run A reads no claims any more: one naming it for a crafted run B
    # must not hand B's "Force stop now" the group that trains A.
    real, crafted = _busy_standby_and_crafted_run(run, impostor, "stopping")
    standby.hand_over(run.root.parent, real.pid, crafted.root)
    with pytest.raises(manager.RunStateError, match="is failed"):
        manager.stop_run(crafted.run_id, force=True)
    assert _alive(real) and manager.refresh(run).state == "running"


def test_a_standby_not_yet_in_its_run_counts_while_the_claim_for_that_run_stands(
    run, impostor
) -> None:
    # Between the scheduler's "running" write and the standby's move into the run folder,
    # the claim ties the two; a claim for another run or another pid does not.
    proc = _launched(run, impostor, worker.command("standby", run.root.parent))
    models = run.root.parent
    standby.hand_over(models, proc.pid, run.root)
    assert manager.observe(run).state == "running"
    standby.hand_over(models, proc.pid, _lookalike_run(models).root)
    assert manager.observe(run).state == "failed"
    standby.withdraw(models)
    assert manager.observe(run).state == "failed"


@pytest.mark.parametrize("named", ["pid 1", "the app server"])
def test_a_foreground_status_naming_a_live_process_is_not_a_live_run(run, named) -> None:
    # 14: pid 1 with its real start time showed "running" forever and held the only slot.
    pid = 1 if named == "pid 1" else os.getpid()
    _mark_running(run, pid=pid, pid_start=start_time(pid))
    assert manager.refresh(run).state == "failed"


def test_a_foreground_trainer_holds_its_run_while_active_and_lets_go_after(run) -> None:
    me = os.getpid()
    runs.write_status(run, runs.RunStatus("running", pid=me))  # as the training callback does
    assert processes.holds(me, run.root)
    assert manager.refresh(run).state == "running"
    runs.write_status(run, runs.RunStatus("finished", pid=me))
    assert not processes.holds(me, run.root)


def test_a_lookalike_this_user_may_not_signal_is_left_without_a_traceback(
    run, impostor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 14: os.killpg's PermissionError escaped Force stop and `runs stop`.
    proc = _launched(run, impostor)

    def not_yours(pid: int, sig: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(processes.os, "killpg", not_yours)
    assert manager.stop_run(run.run_id, force=True).state == "stopped"
    assert _alive(proc)
