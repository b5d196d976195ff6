"""The processes behind a background run (started by :mod:`skinlab.manager`, not by hand).

``python -m skinlab.worker supervise RUN`` runs ``python -m skinlab.worker train RUN`` as a
child, waits for it, enforces the stop grace period, records how the child ended when it
died without a final status (``killed by signal SIGKILL (9)``), and then lets the
scheduler start the next queued run. ``train`` does the actual training in-process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

# Only the standard library at module level: the supervisor starts the training process
# first and imports the rest while that one loads TensorFlow (pandas alone is ~0.4 s on
# 2 cores, and every second here is a second before a new run's first live point).
_POLL_SECONDS = 0.5


def command(role: str, root: Path) -> list[str]:
    """The command line of the ``role`` ("supervise" or "train") process of run ``root``.

    The run folder is spelled as its real path, so that whoever checks a process against
    it (:func:`skinlab.processes.matches`) gets the same string from any working directory.
    """
    return [sys.executable, "-m", "skinlab.worker", role, os.path.realpath(root)]


def supervise(root: Path) -> int:
    """Run the training child to completion; returns its exit code."""
    child = subprocess.Popen(command("train", root))
    from skinlab import atomic, manager, runs
    from skinlab.processes import describe_exit, start_time, terminate

    paths = runs.RunPaths(root)
    status = runs.read_status(paths)
    runs.write_status(
        paths,
        replace(
            status,
            pid=child.pid,
            pid_start=start_time(child.pid),
            supervisor_pid=os.getpid(),
            supervisor_start=start_time(os.getpid()),
            heartbeat=time.time(),
        ),
    )
    killed_for_grace = False
    while child.poll() is None:
        time.sleep(_POLL_SECONDS)
        if paths.stop_request.exists():
            waited = time.time() - paths.stop_request.stat().st_mtime
            if waited > manager.stop_grace_seconds() and not killed_for_grace:
                killed_for_grace = True
                terminate(child.pid)  # the child only: we share its process group
    code = child.returncode
    atomic.remove_orphaned_temp_files(root)  # a killed child leaves its half-written files
    status = runs.read_status(paths)
    # Only the current owner writes: after a quick resume, a newer supervisor owns the run.
    if status.supervisor_pid == os.getpid() and status.state in ("queued", *manager.ACTIVE):
        if killed_for_grace:
            final = replace(
                status,
                state="stopped",
                error=f"Did not stop within {manager.stop_grace_seconds():.0f} s of the stop request and was killed.",
            )
        else:
            final = replace(
                status,
                state="failed",
                error=f"The training process {'was ' if code < 0 else ''}{describe_exit(code)}. "
                f"{manager.recovery_hint(paths)}",
            )
        runs.write_status(paths, replace(final, finished=time.time()))
    manager.schedule(root.parent)
    return code


def train(root: Path) -> int:
    """Train the run at ``root`` in this process (resuming when the request says so)."""
    from skinlab.errors import SkinlabError
    from skinlab.quiet import quiet_tensorflow

    quiet_tensorflow()  # the run's log (shown on the Train page) starts with skinlab's lines
    from skinlab import atomic, runs
    from skinlab.training import train as run_training

    paths = runs.RunPaths(root)
    request = atomic.read_json(paths.request, default={}) or {}
    try:
        result = run_training(
            runs.read_config(paths), paths=paths, verbose=2, resume=bool(request.get("resume"))
        )
    except SkinlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"run {result.state}: {paths.root}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("supervise", "train"):
        print("usage: python -m skinlab.worker supervise|train RUN_DIR", file=sys.stderr)
        return 2
    root = Path(argv[1])
    return supervise(root) if argv[0] == "supervise" else train(root)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
