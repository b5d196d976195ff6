"""The processes behind a background run (started by :mod:`skinlab.jobs.manager`, not by hand).

``python -m skinlab.jobs.worker supervise RUN`` runs ``python -m skinlab.jobs.worker train RUN`` as a
child, waits for it, enforces the stop grace period, records how the child ended when it
died without a final status (``killed by signal SIGKILL (9)``), and then lets the
scheduler start the next queued run. ``train`` does the actual training in-process.

``standby ROOT`` and ``standby-train ROOT`` are the same pair started before a run exists
(:mod:`skinlab.jobs.standby`): the child imports the training stack, then both wait until the
scheduler hands them a run of models folder ROOT, and from then on act as above.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

# Only the standard library at module level: the supervisor starts the training process
# first and imports the rest while that one loads TensorFlow (pandas alone is ~0.4 s on
# 2 cores, and every second here is a second before a new run's first live point).
_POLL_SECONDS = 0.5
#: How often an unclaimed standby looks for its run: it adds up to this to a start.
_STANDBY_POLL_SECONDS = 0.05


def command(role: str, root: Path) -> list[str]:
    """The command line of the ``role`` ("supervise" or "train") process of run ``root``.

    The run folder is spelled as its real path, so that whoever checks a process against
    it (:func:`skinlab.core.processes.matches`) gets the same string from any working directory.
    """
    return [sys.executable, "-m", "skinlab.jobs.worker", role, os.path.realpath(root)]


def supervise(root: Path) -> int:
    """Run the training child to completion; returns its exit code."""
    child = subprocess.Popen(command("train", root))
    _adopt(root, child)
    return _watch(root, child)


def _adopt(root: Path, child: subprocess.Popen) -> None:
    """Record this process and ``child`` as run ``root``'s supervisor and trainer."""
    from skinlab.core import lifecycle, runs
    from skinlab.core.processes import start_time

    lifecycle.change(
        runs.RunPaths(root),
        pid=child.pid,
        pid_start=start_time(child.pid),
        supervisor_pid=os.getpid(),
        supervisor_start=start_time(os.getpid()),
    )


def _watch(root: Path, child: subprocess.Popen) -> int:
    """Supervise ``child``, the training process of run ``root``, until it ends."""
    from skinlab.core import atomic, lifecycle, runs
    from skinlab.core.processes import describe_exit, terminate
    from skinlab.jobs import manager

    paths = runs.RunPaths(root)
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
            state = "stopped"
            error = f"Did not stop within {manager.stop_grace_seconds():.0f} s of the stop request and was killed."
        else:
            state = "failed"
            error = (
                f"The training process {'was ' if code < 0 else ''}{describe_exit(code)}. "
                f"{manager.recovery_hint(paths)}"
            )
        with suppress(lifecycle.TransitionRefused):  # it ended the run itself meanwhile
            lifecycle.change(paths, state, error=error, finished=time.time())
    manager.schedule(root.parent)
    return code


def train(root: Path) -> int:
    """Train the run at ``root`` in this process (resuming when the request says so)."""
    from skinlab.core.errors import SkinlabError
    from skinlab.core.quiet import quiet_tensorflow

    quiet_tensorflow()  # the run's log (shown on the Train page) starts with skinlab's lines
    from skinlab.core import atomic, runs
    from skinlab.train.training import train as run_training

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


def standby_supervise(models: Path) -> int:
    """Wait, with a training child that has imported TensorFlow, to supervise the run the
    scheduler hands over (:func:`skinlab.jobs.standby.hand_over`); end unused after
    :func:`skinlab.jobs.standby.idle_seconds`, when the record no longer names this process, or
    when the child dies. Returns the run's exit code, or 0 when no run came."""
    child = subprocess.Popen(command("standby-train", models), stdin=subprocess.PIPE)
    from skinlab.jobs import standby
    from skinlab.jobs.manager import scheduler_lock

    ends = time.monotonic() + standby.idle_seconds()
    run = None
    while run is None and models.is_dir():  # a deleted models folder hands nothing over
        time.sleep(_STANDBY_POLL_SECONDS)
        idle = child.poll() is None and time.monotonic() < ends
        if idle and _names_me(models, standby.RECORD) and not _names_me(models, standby.CLAIM):
            continue
        with scheduler_lock(models):  # decided as the scheduler sees it, not half-way
            if claim := _names_me(models, standby.CLAIM):
                # Into the run folder first, then the claim goes: manager._supervisor
                # ties this process to the run by one or the other at every moment.
                run = standby.enter(models, claim)
                (models / standby.CLAIM).unlink()
                if run is None:
                    print(f"standby: refused the claim {claim}: not a run folder of {models}")
                    if idle and _names_me(models, standby.RECORD):
                        continue  # still unclaimed: wait for a real hand-over
            elif _names_me(models, standby.RECORD):
                (models / standby.RECORD).unlink()
        break
    if run is None:
        child.kill()
        child.wait()
        return 0
    _write_to_log(run)
    # Recorded before the child hears of the run: from then on the status is the trainer's.
    _adopt(run, child)
    assert child.stdin is not None  # opened with stdin=PIPE
    with suppress(BrokenPipeError):  # a child that died is reported by _watch
        child.stdin.write(f"{run}\n".encode())
        child.stdin.close()
    return _watch(run, child)


def _names_me(models: Path, name: str) -> dict | None:
    """The standby record or claim ``name`` in ``models`` when it names this process."""
    from skinlab.core import atomic
    from skinlab.core.errors import SkinlabError

    try:
        found = atomic.read_json(models / name, default=None)
    except SkinlabError:  # a malformed file names nobody
        return None
    return found if isinstance(found, dict) and found.get("pid") == os.getpid() else None


def standby_train(models: Path) -> int:
    """Import the training stack, then train the run whose folder arrives on stdin."""
    from skinlab.core.quiet import quiet_tensorflow

    quiet_tensorflow()
    import skinlab.train.training  # noqa: F401 - the seconds a standby exists to spend early

    print(f"standby ready {os.getppid()}", flush=True)
    line = sys.stdin.readline().strip()
    if not line:
        return 0
    # The supervisor checked the folder (standby.enter); in it, as the supervisor is, this
    # process is tied to the run by its working folder (manager._trainer_alive).
    from skinlab.core import disk

    with disk.folder(Path(line), models) as fd:
        os.fchdir(fd)
    _write_to_log(Path(line))
    return train(Path(line))


def _write_to_log(run: Path) -> None:
    """Send this process's stdout and stderr to run ``run``'s log from now on (the log is
    opened inside the run's models folder, never through a link)."""
    from skinlab.core import disk, runs

    sys.stdout.flush()
    sys.stderr.flush()
    with disk.open_file(runs.RunPaths(run).log, run.parent, "append") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)


_ROLES = {
    "supervise": supervise,
    "train": train,
    "standby": standby_supervise,
    "standby-train": standby_train,
}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in _ROLES:
        print(f"usage: python -m skinlab.jobs.worker {'|'.join(_ROLES)} DIR", file=sys.stderr)
        return 2
    return _ROLES[argv[0]](Path(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
