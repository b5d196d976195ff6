"""Background runs: start, queue, watch, stop, resume, delete; runs are processes and their
state is files.

A Streamlit script re-runs on every click and a tab can close at any time, so training
never lives inside the app. :func:`start_run` creates a run directory and hands it to the
scheduler, which launches ``python -m skinlab.jobs.worker supervise RUN`` in its own session
(process group) when a slot is free. The supervisor runs the training process, waits on it,
records how it ended, and then starts the next queued run, so the queue advances with no
page open. A run whose processes died while it was marked running is ``failed``:
:func:`observe` says so without writing (what pages read), and :func:`refresh` records it
in ``status.json`` (the scheduler, stop, resume and the command line: an explicit step,
never a side effect of a page's read). docs/architecture.md has the state machine.

Example::

    paths = start_run(preset("cpu-best", data_root="data/isic"))
    observe(paths).state          # "queued", "running", ...
    stop_run(paths.run_id)        # graceful: best weights kept and evaluated

Why one module: start, queue, watch, stop, resume and delete are transitions of the same run
state and share its locking and process checks (docs/architecture.md has the state machine).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path

from skinlab.core import atomic, disk, lifecycle, runs
from skinlab.core.config import RunConfig
from skinlab.core.errors import SkinlabError
from skinlab.core.lifecycle import RunStateError
from skinlab.core.paths import PROJECT_ROOT, models_dir
from skinlab.core.processes import holds, matches, start_time, terminate_group, working_folder
from skinlab.jobs import standby, worker
from skinlab.model.registry import BACKBONES

ACTIVE = ("running", "stopping")

_MARGIN_MB = 100
#: How much of the end of a run's log :func:`read_log` reads for its last lines.
_LOG_TAIL_BYTES = 256 * 2**10


def max_concurrent_runs() -> int:
    """Runs allowed to train at once: ``SKINLAB_MAX_CONCURRENT_RUNS``, default 1 (a CPU
    machine trains one run fastest at a time)."""
    return max(1, int(os.environ.get("SKINLAB_MAX_CONCURRENT_RUNS", "1")))


def stop_grace_seconds() -> float:
    """How long a stop request may take (the batch, then evaluation) before a kill."""
    return float(os.environ.get("SKINLAB_STOP_GRACE_SECONDS", "120"))


@contextmanager
def scheduler_lock(root: Path) -> Iterator[None]:
    """Hold the models folder's scheduling lock (between processes too).

    The lock is a ``flock`` on the models folder itself, not on a file in it: a file can be
    replaced by whoever writes into models/ (a FIFO named ``.scheduler.lock`` made every
    start wait forever on its open), the folder itself cannot.
    """
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def idempotency_key(config: RunConfig) -> str:
    """The default key: two starts of the same config while one is active give one run."""
    return hashlib.sha256(config.to_json().encode()).hexdigest()[:20]


def required_free_bytes(config: RunConfig) -> int:
    """A generous estimate of the disk space a run needs."""
    spec = BACKBONES.get(config.backbone)
    # Three copies of the weights (best, last, export); an unknown backbone fails later.
    return (3 * (spec.weights_mb if spec else 100) + _MARGIN_MB) * 2**20


def check_disk_space(config: RunConfig, root: Path | None = None) -> None:
    """Raise :class:`SkinlabError` when the models folder lacks the space a run needs."""
    folder = Path(root) if root else models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    need = required_free_bytes(config)
    if free < need:
        raise SkinlabError(
            f"Only {free / 2**20:.0f} MB are free in {folder}, and a {config.backbone} run needs "
            f"about {need / 2**20:.0f} MB; delete old runs or free disk space, then start again."
        )


def start_run(
    config: RunConfig,
    *,
    key: str | None = None,
    root: Path | None = None,
    max_concurrent: int | None = None,
) -> runs.RunPaths:
    """Queue a run for ``config`` and start it if a slot is free; returns its paths at once.

    A second start with the same ``key`` (default: :func:`idempotency_key`) while the first
    is still queued or running returns the first run instead of creating another.

    Raises:
        SkinlabError: not enough free disk space.
    """
    root = Path(root) if root else models_dir()
    key = key or idempotency_key(config)
    check_disk_space(config, root)
    with scheduler_lock(root):
        for paths in runs.list_runs(root):
            request = atomic.read_json(paths.request, default={}) or {}
            if request.get("key") == key and refresh(paths).state in ("queued", *ACTIVE):
                return paths
        paths = runs.new_run(config, root=root)
        atomic.write_json(paths.request, {"key": key, "resume": False, "requested": time.time()})
    schedule(root, max_concurrent)
    return paths


def schedule(root: Path | None = None, max_concurrent: int | None = None) -> list[runs.RunPaths]:
    """Start queued runs, oldest first, while fewer than ``max_concurrent`` are active."""
    root = Path(root) if root else models_dir()
    limit = max_concurrent or max_concurrent_runs()
    started = []
    with scheduler_lock(root):
        all_runs = runs.list_runs(root)
        states = {p: _safe_state(p) for p in all_runs}
        active = sum(state in ACTIVE for state in states.values())
        for paths in reversed(all_runs):  # oldest first
            if active >= limit:
                break
            if states[paths] == "queued":
                _launch(paths)
                started.append(paths)
                active += 1
    return started


def _safe_state(paths: runs.RunPaths) -> str:
    try:
        return refresh(paths).state
    except SkinlabError:
        return "broken"


def _launch(paths: runs.RunPaths) -> None:
    paths.stop_request.unlink(missing_ok=True)
    # The last attempt's processes are forgotten before the new ones start: a cold supervisor
    # records its trainer (worker._adopt) as soon as it is up, possibly before the "running"
    # below is written, and that write must not erase it.
    lifecycle.change(paths, pid=None, pid_start=None, supervisor_pid=None, supervisor_start=None)
    env = standby.launch_env(paths.root.parent)
    proc = None
    warm = standby.take(paths.root.parent, env)
    if warm is None:
        with disk.open_file(paths.log, paths.root.parent, "append") as log:
            proc = subprocess.Popen(
                worker.command("supervise", paths.root),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=PROJECT_ROOT,
                env=env,
                start_new_session=True,  # its own process group: a page reload never kills it
            )
        # Its start time is fixed at the fork; its arguments may still be settling (processes.matches).
        supervisor: tuple[int, int | None] = (proc.pid, start_time(proc.pid))
    else:
        supervisor = warm
        # Before the status names it: until the standby has moved into the run folder, the
        # claim is what ties it to this run (_supervisor). It acts on the claim only under the
        # scheduler lock, held here, so it adds its trainer after the status below.
        standby.hand_over(paths.root.parent, supervisor[0], paths.root)
    try:
        lifecycle.change(
            paths,
            "running",
            supervisor_pid=supervisor[0],
            supervisor_start=supervisor[1],
            error=None,
            finished=None,
        )
    except BaseException:
        if proc is None:
            standby.withdraw(paths.root.parent)
        raise
    if proc is not None:
        # Reap the supervisor when it ends, so a long-lived app leaves no zombies behind.
        threading.Thread(target=proc.wait, daemon=True).start()


def ensure_standby(root: Path | None = None) -> str | None:
    """Have a warm standby ready for the next run in ``root`` (:mod:`skinlab.jobs.standby`),
    unless standbys are off or a run is queued or going (the scheduler starts those itself,
    and a standby importing TensorFlow would slow the one training).

    Returns ``None``, or the sentence saying why no standby could be started (its log is a
    link or a pipe, issue 29): runs then start cold, a few seconds later, and work as ever.
    """
    root = Path(root) if root else models_dir()
    if not standby.enabled():
        return None
    try:
        with scheduler_lock(root):
            if not any(_safe_state(p) in ("queued", *ACTIVE) for p in runs.list_runs(root)):
                standby.ensure(root, standby.launch_env(root))
    except SkinlabError as exc:
        return f"Runs start without a warm standby: {exc}"
    return None


def observe(paths: runs.RunPaths) -> runs.RunStatus:
    """A run's status as it truly is, writing nothing: a run marked active whose processes
    are gone comes back ``failed`` with the reason (a kill, an out-of-memory, a reboot), in
    memory only. What pages read; :func:`refresh` is the step that records it."""
    return _observed(paths, runs.read_status(paths))


def _observed(paths: runs.RunPaths, status: runs.RunStatus) -> runs.RunStatus:
    if (
        status.state not in ACTIVE
        or _supervisor_alive(paths, status)
        or _trainer_alive(paths, status)
    ):
        return status
    age = time.time() - status.heartbeat
    reason = (
        f"The training process disappeared without a final status (heartbeat lost "
        f"{age:.0f} s ago): it was killed or the machine restarted. {recovery_hint(paths)}"
    )
    return replace(status, state="failed", error=reason, finished=time.time())


def refresh(paths: runs.RunPaths) -> runs.RunStatus:
    """:func:`observe`, and record what it found: a dead run is marked ``failed`` in its
    ``status.json`` and the half-written files its writer left are swept. The explicit step
    of the scheduler, stop, resume and the command line; pages only observe."""
    status = runs.read_status(paths)
    if status.state == "failed":
        # Again on every look: a writer killed a moment ago may not have been gone yet.
        atomic.remove_orphaned_temp_files(paths.root)
    observed = _observed(paths, status)
    if observed is status:
        return status
    try:
        observed = lifecycle.change(
            paths, observed.state, error=observed.error, finished=observed.finished
        )
    except lifecycle.TransitionRefused:
        return runs.read_status(paths)  # it ended itself since the look: its word stands
    except OSError:
        pass  # a full disk: report the failure even if it cannot be saved
    atomic.remove_orphaned_temp_files(paths.root)
    return observed


def can_resume(paths: runs.RunPaths) -> bool:
    """Whether the run has a whole epoch to continue from: a history row, and weights.

    Weights alone are not enough: a kill between writing an epoch's weights and its history
    row leaves ``last.weights.h5`` of an epoch the history does not know, and resuming
    would start from scratch anyway (:func:`skinlab.train.training._resume_point`).
    """
    if not (paths.last_weights.exists() or paths.weights.exists()):
        return False
    try:
        return not runs.read_history(paths).empty
    except SkinlabError:
        return False


def _supervisor(
    paths: runs.RunPaths, status: runs.RunStatus
) -> tuple[list[str], str | None] | None:
    """The command line (and the working folder to check with it, if any) of the run's
    supervisor, the process :func:`_launch` started or handed the run to: same pid and start
    time, leading its own session, and either ``skinlab.jobs.worker supervise`` of this very
    run or a standby of its models folder tied to this run; ``None`` when no such process
    is alive.

    A standby's command line names only the models folder, so it alone would make the
    standby every run's supervisor (a crafted run "stopping" with its pid got it killed, and
    a stop of that run killed the real run the standby trained). It is this run's once it
    works in this run's folder, and before it entered any run, while the claim handing it
    this run stands (it enters first, then removes the claim: read in this order, one of the
    two holds throughout; a crafted claim names a run the idle standby then takes itself).
    A process's working folder cannot be forged by a file.
    """
    pid, start = status.supervisor_pid, status.supervisor_start
    argv = worker.command("supervise", paths.root)[1:]
    if pid is None:
        return None
    if matches(pid, start, argv, session=pid):
        return argv, None
    argv, models = standby.argv(paths.root.parent), os.path.realpath(paths.root.parent)
    if standby.claimed(paths.root.parent, pid, paths.root):
        here = working_folder(pid)
        if here and not Path(here).is_relative_to(models):  # not in a run of its folder yet
            return (argv, here) if matches(pid, start, argv, session=pid, cwd=here) else None
    if matches(pid, start, argv, session=pid, cwd=paths.root):
        return argv, str(paths.root)
    return None


def _supervisor_alive(paths: runs.RunPaths, status: runs.RunStatus) -> bool:
    return _supervisor(paths, status) is not None


def _trainer_alive(paths: runs.RunPaths, status: runs.RunStatus) -> bool:
    """Whether the run's training process is alive and the one that recorded itself.

    A foreground trainer (``skinlab train``, a notebook: no supervisor) has no command line
    to check, so it must hold the run folder open as every trainer does while it trains
    (:func:`skinlab.core.processes.hold`): a status naming pid 1 or the app server with its
    real start time then names no run. A standby's trainer must work in the run's folder.
    """
    pid, start, session = status.pid, status.pid_start, status.supervisor_pid
    if session is None:
        return pid is not None and matches(pid, start) and holds(pid, paths.root)
    train = worker.command("train", paths.root)[1:]
    return matches(pid, start, train, session=session) or matches(
        pid, start, standby.argv(paths.root.parent, "standby-train"), session, paths.root
    )


def recovery_hint(paths: runs.RunPaths) -> str:
    """What to do about a run whose process died: resume it, or start it again."""
    if can_resume(paths):
        return "Resume the run to continue from its last saved epoch."
    return "No epoch was saved yet, so start the run again."


def run_status(ref: str | Path) -> runs.RunStatus:
    """:func:`refresh` for a run id, prefix or path."""
    return refresh(runs.resolve_run(ref))


def list_summaries(*, record: bool = False) -> list[runs.RunSummary]:
    """Every run (newest first) with its true state, for tables and ``runs list``.

    Pages read it as it is (:func:`observe`: a dead run shows as failed, nothing is
    written); ``record=True`` (the command line) also records it (:func:`refresh`).
    """
    summaries = []
    for paths in runs.list_runs():
        if record:
            with suppress(SkinlabError):  # run_summary reports a broken run itself
                refresh(paths)
        summary = runs.run_summary(paths)
        if not record and summary.state in ACTIVE:
            with suppress(SkinlabError):
                status = observe(paths)
                summary = replace(summary, state=status.state, error=status.error)
        summaries.append(summary)
    return summaries


def stop_run(ref: str | Path, *, force: bool = False, escalate: bool = True) -> runs.RunStatus:
    """Stop a run: queued runs are dropped from the queue; a running run is asked to stop
    after its current batch (best weights kept and evaluated); a second stop, or ``force``,
    kills its process group.

    ``escalate=False`` asks for the gentle stop only: a run already stopping is left to
    finish its batch. The Train page's Stop button passes it (its "Force stop now" passes
    ``force``), so one click that reaches the server twice cannot kill the run; the command
    line's second ``runs stop`` still kills.

    Raises:
        RunStateError: the run is not queued or running.
    """
    paths = runs.resolve_run(ref)
    status = refresh(paths)
    now = time.time()
    if status.state == "queued":
        return lifecycle.change(paths, "stopped", finished=now, error="Stopped before it started.")
    if status.state not in ACTIVE:
        raise RunStateError(
            f"Run {paths.run_id} is {status.state}; only queued or running runs can be stopped."
        )
    if status.state == "stopping" and not (force or escalate):
        return status  # the stop asked for is under way
    if force or status.state == "stopping":
        # Only the group of the supervisor skinlab launched for this run; a foreground run
        # (no supervisor) stops at its next batch, as the first stop request asked.
        found = _supervisor(paths, status)
        pid, start = status.supervisor_pid, status.supervisor_start
        if found and pid is not None and start is not None:  # only found for both
            terminate_group(pid, start, found[0], cwd=found[1])
        killed = lifecycle.change(
            paths,
            "stopped",
            finished=now,
            error="Killed by a second stop request before it finished stopping; the best weights saved so far are kept.",
        )
        schedule(paths.root.parent)
        return killed
    runs.request_stop(paths)
    return lifecycle.change(paths, "stopping")


def resume_run(ref: str | Path, *, max_concurrent: int | None = None) -> runs.RunPaths:
    """Queue a stopped or failed run to continue from its last saved epoch.

    Raises:
        RunStateError: the run is not stopped/failed, or has no saved epoch.
    """
    paths = runs.resolve_run(ref)
    status = refresh(paths)
    if status.state not in ("stopped", "failed"):
        raise RunStateError(
            f"Run {paths.run_id} is {status.state}; only stopped or failed runs can be resumed."
        )
    if not can_resume(paths):
        raise RunStateError(
            f"Run {paths.run_id} has no saved epoch to resume from; start a new run instead."
        )
    request = atomic.read_json(paths.request, default={}) or {}
    atomic.write_json(paths.request, {**request, "resume": True, "requested": time.time()})
    lifecycle.change(paths, "queued", error=None, finished=None)
    schedule(paths.root.parent, max_concurrent)
    return paths


def delete_run(ref: str | Path) -> None:
    """Delete a run's folder. Raises :class:`RunStateError` for a queued or running run."""
    paths = runs.resolve_run(ref)
    state = _safe_state(paths)
    if state in ("queued", *ACTIVE):
        raise RunStateError(f"Run {paths.run_id} is {state}; stop it before deleting it.")
    if paths.root.is_symlink():  # rmtree would refuse with a traceback
        raise RunStateError(f"{paths.root} is a link, not a run folder; delete the link itself.")
    shutil.rmtree(paths.root)


def rename_run(ref: str | Path, name: str) -> runs.RunPaths:
    """Give a run a human name (stored in its config; the folder keeps its id)."""
    paths = runs.resolve_run(ref)
    config = runs.read_config(paths).replace(name=name.strip())
    atomic.write_text(paths.config, config.to_json() + "\n")
    return paths


def read_log(ref: str | Path | runs.RunPaths, tail: int = 50) -> str:
    """The last ``tail`` lines of a run's log ('' when it has none yet).

    Only the log's last 256 kB are read. A log that is not a regular file (a pipe, a device)
    reads as the one sentence saying so: it is shown, never parsed.
    """
    paths = ref if isinstance(ref, runs.RunPaths) else runs.resolve_run(ref)
    try:
        with atomic.open_regular(paths.log) as handle:
            handle.seek(max(0, os.fstat(handle.fileno()).st_size - _LOG_TAIL_BYTES))
            lines = handle.read(_LOG_TAIL_BYTES).decode(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    except atomic.RunFileError as exc:
        return str(exc)
    return "\n".join(lines[-tail:])
