"""Facts about OS processes that the run manager needs: is it alive, is it ours, how did
it end, and how to stop a whole process group.

Kept apart from :mod:`skinlab.manager` so the rules (zombies count as dead, a reused pid
that is not a skinlab process counts as dead) live in one place.
"""

from __future__ import annotations

import os
import signal
import time
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


def terminate(pid: int, grace: float = 5.0, *, group: bool = False) -> None:
    """SIGTERM ``pid`` (or its whole process group), then SIGKILL after ``grace`` seconds."""
    try:
        target = os.getpgid(pid) if group else pid
    except ProcessLookupError:
        return
    send = os.killpg if group else os.kill
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            send(target, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not is_alive(pid):
                return
            time.sleep(0.1)
