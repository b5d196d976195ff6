"""Atomic file writes: a reader sees the old file or the new one, never half of either.

A training process writes its run folder while the app (possibly many sessions at once)
reads it, and the process can be killed at any moment. Every writer here therefore writes
a hidden temporary file in the destination folder, flushes and fsyncs it, and moves it
into place with ``os.replace``, which is atomic on POSIX and on Windows. On any failure
(disk full, an exception in the caller) the temporary file is removed and the previous
content of the destination is left untouched.

Example::

    write_json(run / "status.json", {"state": "running", "loss": float("nan")})
    read_json(run / "status.json")            # {'loss': None, 'state': 'running'}
    with atomic_path(run / "best.weights.h5") as tmp:
        model.save_weights(tmp)               # Keras needs a real file name
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path, PurePath
from typing import Any, BinaryIO

from skinlab.core import disk
from skinlab.core.errors import SkinlabError


class RunFileError(SkinlabError):
    """A file of a run folder exists but cannot be parsed (or is missing when required)."""


#: Largest JSON file read: skinlab's status, config, manifest and metrics are a few kB.
MAX_JSON_BYTES = 4 * 2**20
#: Deepest nesting read in a JSON file; skinlab writes at most five levels.
MAX_JSON_DEPTH = 32
#: Largest whole number (in size) read in a JSON file: what a signed 64-bit integer holds,
#: as every C call a pid, a count or a time goes to does.
MAX_JSON_INT = 2**63 - 1

#: ``.<base>.tmp-<writer pid>-<hex><suffixes>``: the writer's pid tells a temporary file
#: being written from one a killed writer left behind.
_TEMP_NAME = re.compile(r"^\.[^/]*\.tmp-(\d+)-[0-9a-f]{12}(\.|$)")


@contextmanager
def atomic_path(path: Path, root: Path | None = None) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; on success move it onto ``path``.

    The temporary name keeps the full suffix of ``path`` (``.weights.h5``, ``.keras``)
    because Keras picks the file format from it, and holds the writer's pid, so that
    :func:`remove_orphaned_temp_files` can tell what a killed writer left behind. The
    caller must create the file; it is fsynced and then replaces ``path``. Parent folders
    are created.

    The folder is reached from ``root`` (default :func:`skinlab.core.disk.root_of`: the
    models or data folder holding ``path``) without following a link
    (:func:`skinlab.core.disk.folder`), and the move happens in the folder so reached, so
    a planted ``models/<link>/status.json`` is refused, never written outside. A link at
    ``path`` itself is replaced, not followed.

    Raises:
        UnsafeFileError: a folder on the way is a link or a file, or ``path`` is outside
            ``root``; nothing is written.
        OSError: the file could not be written or moved; ``path`` is unchanged.
    """
    path = Path(path)
    base = path.name.split(".", 1)[0]
    tmp = f".{base}.tmp-{os.getpid()}-{secrets.token_hex(6)}{''.join(path.suffixes)}"
    with disk.folder(path.parent, root, create=True) as parent:
        try:
            yield path.with_name(tmp)
            _fsync(tmp, parent)
            os.replace(tmp, path.name, src_dir_fd=parent, dst_dir_fd=parent)
        finally:
            # After a successful replace the name is gone; otherwise this is the cleanup.
            with suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=parent)


def remove_orphaned_temp_files(folder: Path, root: Path | None = None) -> list[Path]:
    """Delete the temporary files in ``folder`` whose writer process has ended.

    A writer killed with SIGKILL never runs its cleanup, and a half-written weights file
    is as big as a whole one. Files of live writers are left alone, so this is safe while
    other processes write into ``folder``. Returns the files removed.

    ``folder`` is reached from ``root`` (default: the models or data folder holding it,
    else its parent) without following links (:func:`skinlab.core.disk.folder`): a folder
    that is a link, or lies behind one, is left alone, never swept.
    """
    folder = Path(folder)
    removed = []
    try:
        with disk.folder(folder, root) as fd:
            for entry in os.scandir(fd):
                match = _TEMP_NAME.match(entry.name)
                if match and not _writer_alive(int(match.group(1))):
                    with suppress(FileNotFoundError):
                        os.unlink(entry.name, dir_fd=fd)
                    removed.append(folder / entry.name)
    except (FileNotFoundError, NotADirectoryError, disk.UnsafeFileError):
        return []
    return removed


def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:  # a killed writer not yet reaped is a zombie: it writes nothing any more
        proc = Path(f"/proc/{pid}")
        if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
        # A killed process still tearing down its memory has an empty command line (as
        # only kernel threads otherwise do): it will never write again either.
        return bool(proc.joinpath("cmdline").read_bytes())
    except (OSError, IndexError):
        return True  # no /proc (macOS): trust kill(0)


def write_bytes(path: Path, data: bytes, root: Path | None = None) -> None:
    """Atomically replace ``path`` with ``data``, never through a link below ``root``
    (see :func:`atomic_path`)."""
    with atomic_path(path, root) as tmp, open(tmp, "xb") as handle:
        handle.write(data)


def write_text(path: Path, text: str, root: Path | None = None) -> None:
    """Atomically replace ``path`` with ``text`` encoded as UTF-8 (see :func:`write_bytes`)."""
    write_bytes(path, text.encode("utf-8"), root)


def write_json(path: Path, obj: Any, root: Path | None = None) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON.

    NaN and infinities become ``null`` (strict JSON, readable by any parser); NumPy
    scalars and arrays become plain numbers and lists; paths become strings.

    Raises:
        TypeError: ``obj`` holds something JSON cannot represent; nothing is written.
    """
    text = json.dumps(_plain(obj), indent=2, sort_keys=True, allow_nan=False)
    write_text(path, text + "\n", root)


def open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file (a symlink to one is fine).

    The file is opened without blocking and checked on the open descriptor, so a FIFO (whose
    open or read waits for a writer forever), a device such as ``/dev/zero`` (endless), a
    link to either, or a folder is refused before anything is read.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        RunFileError: ``path`` is not a regular file or cannot be opened.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise RunFileError(
            f"{path} cannot be read ({exc.strerror}); delete the run or restore the file."
        ) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise RunFileError(
            f"{path} is not a regular file (a pipe, a device or a folder stands in its place); "
            "delete the run or restore the file."
        )
    return os.fdopen(fd, "rb")


def read_bounded(path: Path, max_bytes: int) -> bytes:
    """The content of the regular file ``path`` (see :func:`open_regular`), at most
    ``max_bytes`` long.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        RunFileError: ``path`` is not a regular file, or is larger than ``max_bytes``.
    """
    with open_regular(path) as handle:
        return disk.read_capped(handle, path, max_bytes, RunFileError)


def read_json(path: Path, default: Any = None) -> Any:
    """The parsed content of the JSON file ``path``, or ``default`` when it does not exist.

    Raises:
        RunFileError: the file exists but is not a regular file, is larger than
            :data:`MAX_JSON_BYTES`, is not valid UTF-8 JSON, nests deeper than
            :data:`MAX_JSON_DEPTH`, or holds a whole number larger in size than
            :data:`MAX_JSON_INT`.
    """
    path = Path(path)
    try:
        raw = read_bounded(path, MAX_JSON_BYTES)
    except FileNotFoundError:
        return default
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFileError(
            f"{path} is not valid JSON ({exc}); delete the run or restore the file."
        ) from exc
    except ValueError:  # Python converts at most 4,300 digits to a whole number
        raise _huge_number(path, "over 4,300") from None
    except RecursionError:  # nested deeper than the parser itself can go
        raise _too_deep(path) from None
    _check_parsed(path, value)
    return value


def _too_deep(path: Path) -> RunFileError:
    return RunFileError(
        f"{path} nests deeper than the {MAX_JSON_DEPTH} levels skinlab could have written; "
        "delete the run or restore the file."
    )


def _check_parsed(path: Path, value: Any) -> None:
    """Refuse ``value`` when lists and dicts nest deeper than :data:`MAX_JSON_DEPTH` or a
    whole number is larger in size than :data:`MAX_JSON_INT` (without recursion).

    Python parses up to 4,300 digits, but a few hundred already overflow ``float()`` and past
    64 bits ``os.kill`` and NumPy raise ``OverflowError``; skinlab's largest numbers (pids,
    start times, image counts) are far smaller. Checking here costs one pass over what was
    parsed, where a ``parse_int`` hook made a file of numbers ten times slower to read.
    """
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            if level + 1 > MAX_JSON_DEPTH:
                raise _too_deep(path)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
        elif isinstance(item, int) and abs(item) > MAX_JSON_INT:
            raise _huge_number(path, f"{len(str(abs(item))):,}")


def _huge_number(path: Path, digits: str) -> RunFileError:
    return RunFileError(
        f"{path} holds a whole number of {digits} digits, beyond the 64 bits skinlab writes; "
        "delete the run or restore the file."
    )


def _fsync(name: str, parent: int) -> None:
    # A read-only descriptor is enough for fsync on POSIX, but Windows wants write access.
    fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=parent)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _plain(obj: Any) -> Any:
    """``obj`` as JSON-safe Python values (NaN/inf -> None, NumPy -> lists and numbers)."""
    if isinstance(obj, dict):
        return {str(key): _plain(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(value) for value in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, PurePath):
        return str(obj)
    if hasattr(obj, "tolist"):  # NumPy scalars and arrays, without importing NumPy
        return _plain(obj.tolist())
    return obj
