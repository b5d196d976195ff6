"""A run's state machine: the one module that changes ``status.json`` once a run exists.

Three processes write a run's status: the page or command that starts, stops and resumes it
(:mod:`skinlab.jobs.manager`), the supervisor that waits on the trainer
(:mod:`skinlab.jobs.worker`), and the trainer itself (:mod:`skinlab.train.training` and its
:class:`~skinlab.train.callbacks.RunMonitor`). Each of them asks :func:`change` for a state,
and :func:`change` reads the state that stands, checks the step against :data:`TRANSITIONS`
and writes, all under a lock on the run's folder, so two writers never interleave a read and a
write. :func:`skinlab.core.runs.new_run` creates a run ``queued``; every later write comes
through here (``tests/test_architecture.py`` fails otherwise). Reading writes nothing.

The machine (also drawn in docs/architecture.md)::

    queued   -> running (scheduler or trainer), stopped (stop before start), failed
    running  -> stopping (stop request), stopped, finished, failed
    stopping -> stopped, finished (training ended first), failed
    stopped  -> queued (resume)
    failed   -> queued (resume)
    finished -> nothing: a finished run is final

A write that keeps the state (progress, a process id) is always allowed. Two rules settle the
races between processes: a stop request stands (``running`` asked of a ``stopping`` run stays
``stopping``), and a refused step raises :class:`TransitionRefused`, which a trainer whose run
was ended from outside (a second stop killed it) ignores: the state that stands is the truth.

Example::

    change(paths, "running", started=time.time())     # queued -> running
    change(paths, "finished")                         # running -> finished
    change(paths, "running")                          # TransitionRefused: finished is final
"""

from __future__ import annotations

import dataclasses
import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from skinlab.core import disk, runs
from skinlab.core.errors import SkinlabError

#: The steps a run may take; a write that keeps the state is allowed from every state.
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "stopped", "failed"}),
    "running": frozenset({"stopping", "stopped", "finished", "failed"}),
    "stopping": frozenset({"stopped", "finished", "failed"}),
    "stopped": frozenset({"queued"}),
    "failed": frozenset({"queued"}),
    "finished": frozenset(),
}
assert set(TRANSITIONS) == set(runs.STATES), "every state needs its row"


class RunStateError(SkinlabError):
    """The requested action does not fit the run's state (deleting a running run, ...)."""


class TransitionRefused(RunStateError):
    """A state change the machine does not allow from the state that stands."""


def allowed(current: str, wanted: str) -> bool:
    """Whether a run in state ``current`` may be written as ``wanted``."""
    return wanted == current or wanted in TRANSITIONS[current]


def change(paths: runs.RunPaths, state: str | None = None, **fields: Any) -> runs.RunStatus:
    """Move the run to ``state`` (``None``: keep it) with ``fields`` changed, and return the
    status written. ``heartbeat`` is the time of the write unless ``fields`` gives one.

    Raises:
        TransitionRefused: the machine has no such step from the state that stands.
        RunFileError: ``status.json`` is missing or malformed.
        UnsafeFileError: the run folder is a link (or lies behind one) in its models folder.
        OSError: the status could not be written (a full disk); the old one stands.
    """
    with _locked(paths):
        current = runs.read_status(paths)
        wanted = current.state if state is None else state
        if current.state == "stopping" and wanted == "running":
            wanted = "stopping"  # a stop request stands until the run ends
        if not allowed(current.state, wanted):
            raise TransitionRefused(
                f"Run {paths.run_id} is {current.state}; it cannot become {wanted}."
            )
        status = dataclasses.replace(current, state=wanted, **{"heartbeat": time.time(), **fields})
        runs.write_status(paths, status)
        return status


@contextmanager
def _locked(paths: runs.RunPaths) -> Iterator[None]:
    """An exclusive lock on the run's folder for one read-check-write (``flock`` on the
    directory itself, so the run gains no lock file and the lock dies with its holder).

    The folder is opened as a real folder inside its models folder, never through a link
    (:func:`skinlab.core.disk.folder`): a planted ``models/<link>`` is refused with one
    sentence before anything of it is read or written.
    """
    with disk.folder(paths.root, paths.root.parent) as fd:
        fcntl.flock(fd, fcntl.LOCK_EX)  # closing the descriptor releases it
        yield
