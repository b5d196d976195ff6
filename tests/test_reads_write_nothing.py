"""One writer per file (issue 16): reading a run from a page writes nothing to its folder.

A run marked running whose process is gone (a kill, a reboot) shows as failed on every
page, computed on the read (:func:`skinlab.jobs.manager.observe`); only an explicit step records
it in ``status.json`` and sweeps the half-written files its writer left
(:func:`skinlab.jobs.manager.refresh`: the scheduler, stop, resume, ``runs list``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import open_app_page, train_quick_run

from skinlab.app import train_monitor
from skinlab.core import runs
from skinlab.core.processes import start_time
from skinlab.jobs import manager

DEAD_PID = 2**22 - 7  # above any pid this machine hands out (pid_max is 4194304 at most)


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> tuple[runs.RunPaths, Path]:
    base = tmp_path_factory.mktemp("reads")
    return train_quick_run(base, base / "models")


@pytest.fixture
def dead_run(quick, monkeypatch) -> runs.RunPaths:
    """The quick run as a kill -9 leaves it: marked running, its trainer gone, and the
    half-written temporary file of a writer that died."""
    paths, _ = quick
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(paths.root.parent))
    status = json.loads(paths.status.read_text())
    # A process that really ran and is gone: its pid and start time can never match again.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = start_time(child.pid)
    child.wait()
    status.update(state="running", pid=child.pid, pid_start=started or 1, finished=None)
    status.update(supervisor_pid=None, supervisor_start=None, error=None)
    paths.status.write_text(json.dumps(status))
    (paths.root / f".last.weights.h5.tmp-{DEAD_PID}-0123456789ab.h5").write_bytes(b"half")
    return paths


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_pages_show_a_dead_run_as_failed_and_write_nothing_in_its_folder(quick, dead_run):
    before = _snapshot(dead_run.root)

    listed = {s.run_id: s for s in manager.list_summaries()}
    assert listed[dead_run.run_id].state == "failed"
    assert "disappeared without a final status" in (listed[dead_run.run_id].error or "")
    assert train_monitor.load_run(dead_run.run_id).status.state == "failed"
    for page in ("pages/train.py", "pages/runs.py"):
        at = open_app_page(quick[1], page)
        assert not at.exception

    assert _snapshot(dead_run.root) == before
    assert runs.read_status(dead_run).state == "running"  # on disk, untouched


def test_the_explicit_step_records_the_failure_and_sweeps_the_dead_writer_s_file(dead_run):
    status = manager.refresh(dead_run)
    assert status.state == "failed"
    assert runs.read_status(dead_run).state == "failed"
    assert not list(dead_run.root.glob(".*.tmp-*"))


def test_runs_list_on_the_command_line_records_too(dead_run, capsys):
    from skinlab.cli import main

    assert main(["runs", "list", "--json"]) == 0
    listed = {s["run_id"]: s["state"] for s in json.loads(capsys.readouterr().out)}
    assert listed[dead_run.run_id] == "failed"
    assert runs.read_status(dead_run).state == "failed"
