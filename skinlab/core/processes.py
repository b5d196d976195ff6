"""Facts about OS processes that the run manager needs: is it alive, is it ours, how did
it end, and how to stop a whole process group.

Kept apart from :mod:`skinlab.jobs.manager` so the rules (zombies count as dead, a reused pid
that is not a skinlab process counts as dead) live in one place.

A pid alone names no process for long: after it ends (or after a reboot) the number goes
to whatever starts next, and ``status.json`` can be edited by hand. So a process skinlab
started is named by its identity (:func:`matches`): the pid, its start time, its command
line and its session, all recorded or derived when skinlab launched it. Nothing is signalled
unless all of them still hold (:func:`terminate_group`).

Two facts no file can forge tie a process to one run folder where its command line does not:
its working folder (a warm standby, whose command line names only the models folder, moves
into the run it was handed: :func:`matches`' ``cwd``) and the folders it holds open (a
foreground trainer, whose command line is a notebook's or a shell's, holds its run folder
open while it trains: :func:`hold` and :func:`holds`). Anyone who can write ``status.json``
can name any pid with its real start time (pid 1, the app server); only the process itself
can change what it works in or holds open.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path


def is_alive(pid: int | None) -> bool:
    """True when ``pid`` is a running (not zombie) skinlab process on this machine."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    proc = Path(f"/proc/{pid}")
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return False
        # After a reboot the pid may belong to an unrelated program.
        return b"skinlab" in (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return True  # no /proc (macOS): trust kill(0)


def describe_exit(returncode: int) -> str:
    """``-9`` -> ``"killed by signal SIGKILL (9)"``, ``3`` -> ``"exited with code 3"``."""
    if returncode < 0:
        number = -returncode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"killed by signal {name} ({number})"
    return f"exited with code {returncode}"


def terminate(pid: int, grace: float = 5.0) -> None:
    """SIGTERM ``pid``, then SIGKILL after ``grace`` seconds; for a child of the caller that
    it has not reaped yet (so the pid cannot have gone to another process)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not is_alive(pid):
                return
            time.sleep(0.1)


def start_time(pid: int | None) -> int | None:
    """When ``pid`` started, in clock ticks since boot (field 22 of ``/proc/<pid>/stat``);
    ``None`` when no such live (non-zombie) process exists or there is no ``/proc``."""
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the ")" that ends the command name, field 3 (state) is at index 0.
        return None if fields[0] in ("Z", "X") else int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def matches(
    pid: int | None,
    start: int | None,
    argv: Sequence[str] | None = None,
    session: int | None = None,
    cwd: str | Path | None = None,
) -> bool:
    """True when ``pid`` is still the process skinlab recorded: it is alive, started at
    ``start`` (:func:`start_time`) and, when given, runs with the arguments ``argv`` after
    its interpreter, belongs to ``session`` and works in the folder ``cwd``.

    A missing identity (``start`` is ``None``, as in status files of older versions) never
    matches: such a process cannot be told from one that reuses its pid.
    """
    if start is None or pid is None or start_time(pid) != start:
        return False
    try:
        if session is not None and os.getsid(pid) != session:
            return False
        if cwd is not None and working_folder(pid) != os.path.realpath(cwd):
            return False
        cmdline = _command_line(pid)
    except OSError:  # gone, or another user's (its working folder cannot be read)
        return False
    return argv is None or [arg.decode(errors="replace") for arg in cmdline[1:]] == list(argv)


def working_folder(pid: int) -> str | None:
    """The real path of ``pid``'s working folder; ``None`` when it cannot be read (gone, no
    ``/proc``, another user's process)."""
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


#: Folders this process holds open as the trainer of their run (:func:`hold`).
_held: dict[str, int] = {}


def hold(folder: Path, active: bool) -> None:
    """Hold ``folder`` (a run folder this process trains) open while ``active``, and let it
    go otherwise: what :func:`holds` looks for in another process."""
    key = os.path.realpath(folder)
    if active and key not in _held:
        # Unopenable, it counts as not running, as a status without a start time does.
        with suppress(OSError):
            _held[key] = os.open(key, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    elif not active and key in _held:
        os.close(_held.pop(key))


def holds(pid: int, folder: Path) -> bool:
    """Whether process ``pid`` holds ``folder`` open (False when that cannot be read: no
    ``/proc``, or another user's process)."""
    target = os.path.realpath(folder)
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with suppress(OSError):  # a descriptor closed meanwhile
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return True
    except OSError:
        return False
    return False


#: How long :func:`_command_line` waits for a process in the middle of its exec.
_EXEC_WAIT_SECONDS = 2.0


def _command_line(pid: int) -> list[bytes]:
    """``pid``'s arguments, waiting out the moment inside an exec when they read empty.

    ``Popen`` returns once the child's exec has begun (its error pipe closes then), but the
    kernel sets the new arguments a little later: on a loaded machine ``/proc/<pid>/cmdline``
    read right after ``Popen`` came back empty for 2,073 of 3,000 children (2 cores, two busy
    loops). Read then, a run just started looked dead and was marked failed. Only a process in
    that moment (or a kernel thread, which no skinlab record names) has no arguments at all.
    """
    deadline = time.monotonic() + _EXEC_WAIT_SECONDS
    while True:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        if cmdline or time.monotonic() > deadline:
            return cmdline
        time.sleep(0.005)


def terminate_group(
    pid: int,
    start: int,
    argv: Sequence[str],
    grace: float = 5.0,
    cwd: str | Path | None = None,
) -> bool:
    """SIGTERM, then after ``grace`` seconds SIGKILL, the process group that ``pid`` leads,
    but only while ``pid`` is the process described by ``start``, ``argv`` and (when given)
    ``cwd`` and leads its own session and group (as one started with
    ``start_new_session=True`` does).

    Returns whether a signal was sent. The identity is checked again before each signal; a
    pid reused in the microseconds between a check and its signal is the one race left. A
    group this user may not signal (another user's look-alike) is not ours: nothing is sent.
    """
    sent = False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not (matches(pid, start, argv, session=pid, cwd=cwd) and _leads_group(pid)):
            return sent
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return sent
        sent = True
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and matches(pid, start, argv):
            time.sleep(0.1)
    return sent


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False
