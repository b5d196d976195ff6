"""The one write path: every file skinlab writes (run files, logs, records, claims, review
decisions) is reached here without following a link and is never a special file.

Why: anyone who can write into data/ or models/ (docs/security.md) can plant a symbolic link
where skinlab writes (``models/.standby.log`` to a start-up file, ``models/<link>`` to a
folder elsewhere, ``<dataset>/.skinlab`` to anywhere) or a FIFO where it opens a file (an
open that waits forever). So a file is reached from its *root*, a folder set by whoever runs
skinlab (the models folder, a dataset's folder), one folder at a time with ``O_NOFOLLOW``:
no link below the root is followed, every folder on the way is a real one, so the file's
real parent is inside the root. The file itself is opened with ``O_NOFOLLOW | O_NONBLOCK``
and checked on its descriptor: a regular file, and one with a single name when it is
written in place (a hard link would carry the write elsewhere). Anything else is refused
with :class:`UnsafeFileError`, one sentence. Walking down by descriptor (``dir_fd``) leaves
no moment between the check and the use in which a folder could be swapped for a link.

The root itself may be reached through links (a models folder on another disk): it is the
owner's setting, not something the threat model can plant.

Example::

    with open_file(run / "train.log", models, "append") as log:   # never through a link
        log.write(b"...")
    with folder(run, models) as fd:                              # a descriptor of the run
        fcntl.flock(fd, fcntl.LOCK_EX)
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO, Literal, cast

from skinlab.core.errors import SkinlabError
from skinlab.core.paths import data_dir, models_dir

Mode = Literal["read", "append", "truncate"]

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK | os.O_CLOEXEC
_FILE_FLAGS = {
    "read": os.O_RDONLY,
    "append": os.O_WRONLY | os.O_APPEND | os.O_CREAT,
    "truncate": os.O_WRONLY | os.O_CREAT,  # truncated only once checked
}
#: What an open with ``O_NOFOLLOW`` says of a link (ELOOP; EMLINK on the BSDs), a FIFO
#: nobody reads (ENXIO), a folder (EISDIR) or a file where a folder should be (ENOTDIR).
_REFUSED = {errno.ELOOP, errno.EMLINK, errno.ENXIO, errno.EISDIR, errno.ENOTDIR}


class UnsafeFileError(SkinlabError):
    """A file skinlab writes (or reads back) is a link, a special file, a hard-linked or an
    oversized one, or a folder on its way is a link: planted, since skinlab makes none."""


def root_of(path: str | Path) -> Path:
    """The root a file at ``path`` is confined to: the models or data folder that holds it
    (the deeper, when one holds the other), else the folder it is in."""
    held = [r for r in (models_dir(), data_dir()) if _below(path, r) is not None]
    if not held:
        return Path(path).parent
    return min(held, key=lambda r: len(_below(path, r) or ()))


@contextmanager
def folder(
    path: str | Path, root: str | Path | None = None, *, create: bool = False
) -> Iterator[int]:
    """A read-only descriptor of the folder ``path``, reached from ``root`` (default
    :func:`root_of`) without following any link below it; folders missing on the way are
    made when ``create``.

    Raises:
        FileNotFoundError: a folder on the way is missing (and not ``create``).
        UnsafeFileError: ``path`` is not below ``root``, or a link or a file stands where a
            folder on the way should be.
        OSError: a folder cannot be opened or made (no permission, a read-only disk).
    """
    path = Path(path)
    root = Path(root) if root is not None else root_of(path)
    parts = _below(path, root)
    if parts is None:
        raise UnsafeFileError(
            f"{path} is outside {root}, the folder skinlab writes it in; give a path inside it."
        )
    if create:
        os.makedirs(root, exist_ok=True)
    fd = os.open(root, _DIRECTORY)  # the root may be a link: it is the owner's setting
    try:
        for name in parts:
            child = _step(fd, name, path, create)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def open_file(path: str | Path, root: str | Path | None = None, mode: Mode = "read") -> BinaryIO:
    """``path`` opened for binary ``mode`` ("read", "append", or "truncate": emptied once
    checked), reached as :func:`folder` reaches its folder (made when writing) and refused
    unless it is a regular file (with one name, when written).

    Raises:
        FileNotFoundError: reading a file (or a folder on its way) that does not exist.
        UnsafeFileError: the file or a folder on its way is a link, a special file, a
            hard-linked file (when written), or lies outside ``root``.
        OSError: it cannot be opened (no permission, a read-only disk).
    """
    path = Path(path)
    with folder(
        path.parent, root if root is not None else root_of(path), create=mode != "read"
    ) as parent:
        flags = _FILE_FLAGS[mode] | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(path.name, flags, 0o666, dir_fd=parent)
        except OSError as exc:
            if exc.errno in _REFUSED:
                raise _refused(path, path.name) from exc
            raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or (mode != "read" and info.st_nlink > 1):
        os.close(fd)
        raise _refused(path, path.name)
    if mode == "truncate":
        os.ftruncate(fd, 0)
    return cast(BinaryIO, os.fdopen(fd, {"read": "rb", "append": "ab", "truncate": "wb"}[mode]))


def read_bytes(path: str | Path, root: str | Path | None, max_bytes: int) -> bytes:
    """The content of the regular file ``path`` (opened as :func:`open_file` opens it), at
    most ``max_bytes`` long.

    Raises:
        FileNotFoundError: there is no such file.
        UnsafeFileError: :func:`open_file` refuses it, or it is longer than ``max_bytes``.
    """
    with open_file(path, root) as handle:
        return read_capped(handle, path, max_bytes)


def read_capped(
    handle: BinaryIO, path: str | Path, max_bytes: int, error: type[SkinlabError] = UnsafeFileError
) -> bytes:
    """The rest of the open file ``handle`` (of ``path``), at most ``max_bytes`` long.

    Raises:
        SkinlabError: (of type ``error``) the file is longer than ``max_bytes``.
    """
    data = handle.read(max_bytes + 1)  # one more tells a file that grows past the cap
    if len(data) > max_bytes:
        raise error(
            f"{path} is larger than {max_bytes / 2**20:g} MB, far more than skinlab writes "
            "there; delete it or restore it from a backup."
        )
    return data


def _below(path: str | Path, root: str | Path) -> tuple[str, ...] | None:
    """The names leading from ``root`` (as written, or its real path) to ``path`` as
    written, or ``None`` when ``path`` is not below ``root``."""
    target = Path(os.path.abspath(path))
    for base in (os.path.abspath(root), os.path.realpath(root)):
        if target.is_relative_to(base):
            return target.relative_to(base).parts
    return None  # never the path's own real path: that would follow the links planted below


def _step(fd: int, name: str, path: Path, create: bool) -> int:
    """Open the folder ``name`` inside the folder ``fd`` without following a link."""
    try:
        try:
            return os.open(name, _DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise
            with suppress(FileExistsError):
                os.mkdir(name, dir_fd=fd)
            return os.open(name, _DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno in _REFUSED:
            raise _refused(path, name) from exc
        raise


def _refused(path: Path, name: str) -> UnsafeFileError:
    return UnsafeFileError(
        f"skinlab does not use {path}: '{name}' there is a link, a pipe, a device or a "
        "hard-linked file, which skinlab never makes; delete it and try again."
    )
