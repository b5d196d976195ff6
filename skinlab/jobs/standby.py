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

Once claimed, the standby *is* the run's supervisor: ``status.json`` names its pid and
start time, and :mod:`skinlab.jobs.manager` accepts its command line (:func:`argv`) as the run's,
so stopping, killing and failure reports work as for a cold start. It trains that one run
and ends. An unclaimed standby ends itself after :func:`idle_seconds`, or as soon as its
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
import subprocess
import threading
from pathlib import Path

from skinlab.core import atomic
from skinlab.core.paths import PROJECT_ROOT
from skinlab.core.processes import matches, start_time, terminate_group
from skinlab.jobs import worker

RECORD = ".standby.json"
CLAIM = ".standby-claim.json"
#: The standby's own output until it takes a run (TensorFlow's start-up lines, and
#: :data:`READY_LINE` once it is ready); a claimed standby writes to the run's log.
LOG = ".standby.log"
READY_LINE = "standby ready"


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
    """The recorded standby of ``root`` while that process is alive and is a standby."""
    record = atomic.read_json(Path(root) / RECORD, default=None)
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
    with open(root / LOG, "wb") as log:
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


def ready(root: Path) -> bool:
    """Whether ``root`` has a live standby whose training process has finished importing."""
    record = _record(root)
    if record is None:
        return False
    try:
        return f"{READY_LINE} {record['pid']}" in (Path(root) / LOG).read_text(errors="replace")
    except OSError:
        return False


def discard(root: Path) -> bool:
    """End ``root``'s unclaimed standby, if any (its whole process group); returns whether
    one was signalled. Call under the scheduler lock."""
    record = _record(root)
    (Path(root) / RECORD).unlink(missing_ok=True)
    if record is None:
        return False
    return terminate_group(record["pid"], record["start"], argv(root), grace=2.0)
