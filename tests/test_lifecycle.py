"""The run's state machine (issue 16): every step checked, refused steps leave the file alone,
a stop request stands, and two processes writing at once never interleave."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest

from skinlab.core import lifecycle, runs
from skinlab.core.config import RunConfig

STEPS = {
    ("queued", "running"),
    ("queued", "stopped"),
    ("queued", "failed"),
    ("running", "stopping"),
    ("running", "stopped"),
    ("running", "finished"),
    ("running", "failed"),
    ("stopping", "stopped"),
    ("stopping", "finished"),
    ("stopping", "failed"),
    ("stopped", "queued"),
    ("failed", "queued"),
}


def _run(tmp_path: Path, state: str) -> runs.RunPaths:
    paths = runs.new_run(RunConfig(backbone="custom", epochs=2), root=tmp_path)
    if state != "queued":
        runs.write_status(paths, runs.RunStatus(state, epoch=1))  # forge the state
    return paths


def test_the_table_is_the_documented_machine() -> None:
    table = {(a, b) for a, targets in lifecycle.TRANSITIONS.items() for b in targets}
    assert table == STEPS
    assert set(lifecycle.TRANSITIONS) == set(runs.STATES)
    assert lifecycle.TRANSITIONS["finished"] == frozenset()  # a finished run is final
    architecture = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
    for a, b in STEPS:  # the diagram in the docs draws every step
        assert f"{a} --> {b}" in architecture, (a, b)


@pytest.mark.parametrize("current", runs.STATES)
@pytest.mark.parametrize("wanted", runs.STATES)
def test_every_step_is_allowed_or_refused_as_the_table_says(
    tmp_path: Path, current: str, wanted: str
) -> None:
    paths = _run(tmp_path, current)
    before = paths.status.read_bytes()
    if current == "stopping" and wanted == "running":
        assert lifecycle.change(paths, wanted, epoch=2).state == "stopping"  # the stop stands
    elif wanted == current or (current, wanted) in STEPS:
        status = lifecycle.change(paths, wanted, epoch=2)
        assert status.state == wanted
        assert runs.read_status(paths) == status
    else:
        with pytest.raises(lifecycle.TransitionRefused, match=f"is {current}; it cannot become"):
            lifecycle.change(paths, wanted, epoch=2)
        assert paths.status.read_bytes() == before  # nothing written


def test_a_change_keeps_what_it_does_not_name_and_stamps_the_heartbeat(tmp_path: Path) -> None:
    paths = _run(tmp_path, "queued")
    runs.write_status(paths, runs.RunStatus("running", epoch=3, total_epochs=9, heartbeat=1.0))
    status = lifecycle.change(paths, error="x")  # no state: keep it
    assert (status.state, status.epoch, status.total_epochs, status.error) == (
        "running",
        3,
        9,
        "x",
    )
    assert status.heartbeat > time.time() - 60
    assert lifecycle.change(paths, heartbeat=5.0).heartbeat == 5.0


def test_a_run_that_is_gone_or_unreadable_is_not_written(tmp_path: Path) -> None:
    paths = _run(tmp_path, "running")
    paths.status.write_text("{not json")
    with pytest.raises(runs.RunFileError):
        lifecycle.change(paths, "finished")
    assert paths.status.read_text() == "{not json"


def _bump(root: str, rounds: int) -> None:
    paths = runs.RunPaths(Path(root))
    for _ in range(rounds):
        status = lifecycle.change(paths)  # a step that keeps the state...
        # ...and one that reads the status and writes it back, under the same lock
        with lifecycle._locked(paths):
            epoch = runs.read_status(paths).epoch
            runs.write_status(paths, runs.RunStatus(status.state, epoch=epoch + 1))


def test_two_processes_changing_one_run_never_lose_a_write(tmp_path: Path) -> None:
    """The lock covers the read and the write: two processes incrementing the epoch 150
    times each end at 300 (without the lock, interleaved read-modify-writes lose some)."""
    paths = _run(tmp_path, "running")
    runs.write_status(paths, runs.RunStatus("running", epoch=0))
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_bump, args=(str(paths.root), 150)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    assert json.loads(paths.status.read_text())["epoch"] == 300
