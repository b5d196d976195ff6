"""A warm standby for the next background run: its supervisor and training process are
started before the click, TensorFlow already imported, and the scheduler hands the next run
to them.

Why: of the ~5.4 s between "Start training" and a new run's first batch (idle, 2 cores,
docs/performance.md), ~2.7 s are the training process importing TensorFlow and Keras. The
Train page asks for a standby (:func:`skinlab.jobs.manager.ensure_standby`) whenever it is drawn
with no run going, so that import is done while the user picks the settings.

A standby of models folder ``ROOT`` is ``python -m skinlab.jobs.worker standby ROOT``, leading
its own session like every supervisor, with one child ``python -m skinlab.jobs.worker
standby-train ROOT`` that imports the training stack and waits on its stdin for a run
folder. Two small files in ``ROOT``, both changed only under the scheduler's lock:

* ``.standby.json`` (:data:`RECORD`, written by :func:`ensure`): the standby's pid, start
  time and a fingerprint of the environment it was started with. Only a standby started
  with exactly the environment the run would get is used; a shell or a test with other
  settings gets a cold start.
* ``.standby-claim.json`` (:data:`CLAIM`, written by :func:`hand_over`): the run the
  standby supervises from now on; the standby deletes it when it takes the run.

Anyone who can write into models/ can write a claim too, so the standby takes only a run
folder it can confirm itself (:func:`enter`): a real folder (not a link) directly inside its
own models folder, holding ``config.json`` and ``status.json``. It moves into that folder
(``fchdir`` on the folder it checked) before it removes the claim, and its trainer does the
same.

Once claimed, the standby *is* the run's supervisor: ``status.json`` names its pid and
start time, and :mod:`skinlab.jobs.manager` accepts its command line (:func:`argv`) as that
run's only while the claim for the run stands or the standby works in the run's folder
(``/proc/<pid>/cwd``, which no file can forge), so stopping, killing and failure reports
work as for a cold start, and a crafted run naming the standby gets nothing. It trains that
one run and ends. An unclaimed standby ends itself after :func:`idle_seconds`, or as soon as its
record no longer names it (:func:`discard`). ``SKINLAB_STANDBY=0`` turns standbys off.

Example::

    with manager.scheduler_lock(root):
        ensure(root, launch_env(root))      # the Train page, drawn with no run going
    ...
    identity = take(root, launch_env(root))  # the scheduler, launching a run
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import threading
from contextlib import suppress
from pathlib import Path

from skinlab.core import atomic, disk
from skinlab.core.errors import SkinlabError
from skinlab.core.paths import PROJECT_ROOT
from skinlab.core.processes import matches, start_time, terminate_group
from skinlab.jobs import worker

RECORD = ".standby.json"
CLAIM = ".standby-claim.json"
#: The standby's own output until it takes a run (TensorFlow's start-up lines, and
#: :data:`READY_LINE` once it is ready); a claimed standby writes to the run's log.
LOG = ".standby.log"
READY_LINE = "standby ready"
#: How much of :data:`LOG` :func:`ready` reads (TensorFlow's start-up lines are a few kB).
_LOG_READ_BYTES = 2**20
#: What a run folder the standby takes must hold (:func:`enter`).
_RUN_FILES = ("config.json", "status.json")


def enabled() -> bool:
    """Whether standbys are used: ``SKINLAB_STANDBY`` is not ``0`` (default on)."""
    return os.environ.get("SKINLAB_STANDBY", "1") != "0"


def idle_seconds() -> float:
    """How long an unclaimed standby waits before ending itself:
    ``SKINLAB_STANDBY_IDLE_SECONDS``, default 15 minutes (it holds ~0.8 GB while it waits)."""
    return float(os.environ.get("SKINLAB_STANDBY_IDLE_SECONDS", "900"))


def launch_env(root: Path) -> dict[str, str]:
    """The environment of a background run's processes in models folder ``root``."""
    return {**os.environ, "SKINLAB_MODELS_DIR": str(root), "PYTHONUNBUFFERED": "1"}


def argv(root: Path, role: str = "standby") -> list[str]:
    """The arguments after the interpreter of a standby of ``root`` (``role`` "standby" or
    "standby-train"), as :func:`skinlab.core.processes.matches` compares them."""
    return worker.command(role, root)[1:]


def _fingerprint(env: dict[str, str]) -> str:
    return hashlib.sha256(repr(sorted(env.items())).encode()).hexdigest()[:16]


def _record(root: Path) -> dict | None:
    """The recorded standby of ``root`` while that process is alive and is a standby; a
    record that is not what skinlab writes (a pipe, a 5,000-digit pid) counts as none."""
    try:
        record = atomic.read_json(Path(root) / RECORD, default=None)
    except atomic.RunFileError:
        return None
    if not isinstance(record, dict):
        return None
    pid = record.get("pid")
    return record if matches(pid, record.get("start"), argv(root), session=pid) else None


def ensure(root: Path, env: dict[str, str]) -> int:
    """Start a standby for ``root`` with ``env`` unless one is alive; returns its pid.

    A live standby started with another environment is ended first: it would never be
    used. Call under :func:`skinlab.jobs.manager.scheduler_lock`.
    """
    root = Path(root)
    record = _record(root)
    if record and record.get("env") == _fingerprint(env):
        return record["pid"]
    discard(root)
    with disk.open_file(root / LOG, root, "truncate") as log:  # never through a link
        proc = subprocess.Popen(
            worker.command("standby", root),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,  # a supervisor-to-be: its own group, as _launch's
        )
    identity = {"pid": proc.pid, "start": start_time(proc.pid), "env": _fingerprint(env)}
    atomic.write_json(root / RECORD, identity)
    threading.Thread(target=proc.wait, daemon=True).start()  # no zombie in a long-lived app
    return proc.pid


def take(root: Path, env: dict[str, str]) -> tuple[int, int] | None:
    """Reserve the standby of ``root`` for a run, if there is one started with ``env``:
    returns its ``(pid, start)`` and removes its record, else ``None``. The caller records
    it as the run's supervisor, then calls :func:`hand_over`; both under the scheduler lock.
    """
    record = _record(root) if enabled() else None
    if not record or record.get("env") != _fingerprint(env):
        return None
    (Path(root) / RECORD).unlink(missing_ok=True)
    return record["pid"], record["start"]


def hand_over(root: Path, pid: int, run_root: Path) -> None:
    """Tell the standby ``pid`` (reserved by :func:`take`) to supervise ``run_root``."""
    atomic.write_json(Path(root) / CLAIM, {"pid": pid, "run": os.path.realpath(run_root)})


def withdraw(root: Path) -> None:
    """Take back a claim :func:`hand_over` wrote (the run could not be marked running)."""
    (Path(root) / CLAIM).unlink(missing_ok=True)


def claimed(root: Path, pid: int, run_root: Path) -> bool:
    """Whether the claim of ``root`` hands the standby ``pid`` the run ``run_root``."""
    try:
        claim = atomic.read_json(Path(root) / CLAIM, default=None)
    except SkinlabError:
        return False
    return (
        isinstance(claim, dict)
        and claim.get("pid") == pid
        and claim.get("run") == os.path.realpath(run_root)
    )


def enter(root: Path, claim: dict) -> Path | None:
    """Move this process into the run folder ``claim`` names, if it is one this standby may
    take: a real folder (not a link), directly inside its models folder ``root``, holding
    :data:`_RUN_FILES`. Returns the folder, or ``None`` (and stays where it is).

    The folder is checked and entered through one descriptor (``fchdir``), so a folder
    swapped for a link after the check is never entered.
    """
    real = Path(os.path.realpath(root))
    named = claim.get("run")
    if not isinstance(named, str) or "\0" in named:
        return None
    run = Path(named)
    if run.parent != real or run.name in ("", ".", "..") or run.name.startswith("."):
        return None
    with suppress(OSError, SkinlabError), disk.folder(run, real) as fd:
        for name in _RUN_FILES:
            if not stat.S_ISREG(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                return None
        os.fchdir(fd)
        return run
    return None


def ready(root: Path) -> bool:
    """Whether ``root`` has a live standby whose training process has finished importing."""
    record = _record(root)
    if record is None:
        return False
    try:
        text = disk.read_bytes(Path(root) / LOG, root, _LOG_READ_BYTES).decode(errors="replace")
    except (OSError, SkinlabError):
        return False
    return f"{READY_LINE} {record['pid']}" in text


def discard(root: Path) -> bool:
    """End ``root``'s unclaimed standby, if any (its whole process group); returns whether
    one was signalled. Call under the scheduler lock."""
    record = _record(root)
    with suppress(IsADirectoryError):  # a folder planted there is no record: left alone
        (Path(root) / RECORD).unlink(missing_ok=True)
    if record is None:
        return False
    return terminate_group(record["pid"], record["start"], argv(root), grace=2.0)
