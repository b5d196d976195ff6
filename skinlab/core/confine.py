"""Path confinement: a path that reaches the app from a user (a typed folder, a ``?dataset=``
link, an import source, a run reference) is only used when it lies inside a folder the app
may read.

The allowed folders are the data folder, the models folder (:mod:`skinlab.core.paths`) and the
folders listed in ``SKINLAB_EXTRA_DIRS`` (separated by ``os.pathsep``, ``:`` on Linux and
macOS), which is how the person running the app lets it open, say, a Kaggle download in
place. Paths are resolved first (``..`` and symbolic links followed), so neither
``data/../../etc`` nor a link inside ``data/`` pointing elsewhere gets out.

The command line is *not* confined: it runs in the user's own shell with the user's own
rights, so ``python -m skinlab scan ~/Downloads/isic`` reads what the user can read. Only
paths that come through the web app go through :func:`confine`.

Example::

    root = confine(st.query_params["dataset"], "The dataset folder")  # resolved Path
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from skinlab.core import paths, runs
from skinlab.core.errors import PathNotAllowedError

EXTRA_DIRS_VARIABLE = "SKINLAB_EXTRA_DIRS"


def _resolved(path: str | Path) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def allowed_roots() -> list[Path]:
    """The folders app paths may lie in, resolved: data, models, then ``SKINLAB_EXTRA_DIRS``."""
    extra = os.environ.get(EXTRA_DIRS_VARIABLE, "").split(os.pathsep)
    listed: list[str | Path] = [
        paths.data_dir(),
        paths.models_dir(),
        *(e.strip() for e in extra if e.strip()),
    ]
    return list(dict.fromkeys(_resolved(p) for p in listed))


def confine(path: str | Path, what: str, *, remedy: str | None = None) -> Path:
    """``path`` resolved (``..`` and symbolic links followed), if it lies in an allowed folder.

    Args:
        path: the user-supplied path; it need not exist.
        what: how the message names it, capitalised (``"The dataset folder"``).
        remedy: what else the user can do, ending the message; default: import it.

    Raises:
        PathNotAllowedError: the resolved path is outside every :func:`allowed_roots`
            folder (the message lists them and says how to allow another one), or it holds
            a null character.
    """
    if "\0" in str(path):
        # Said without the path: the character would only garble the sentence.
        raise PathNotAllowedError(
            f"{what} holds a null character, which no file or folder name can; type it again."
        )
    resolved = within(path)
    if resolved is not None:
        return resolved
    shown = ", ".join(str(root) for root in allowed_roots())
    remedy = remedy or f"import it with `python -m skinlab data import {path}`"
    raise PathNotAllowedError(
        f"{what} {path} is outside the folders this app may read ({shown}); {remedy}, or "
        f"list its folder in {EXTRA_DIRS_VARIABLE} before starting the app."
    )


def within(path: str | Path, roots: Sequence[Path] | None = None) -> Path | None:
    """``path`` resolved if it lies in an allowed folder, else ``None``: for listings and
    galleries, which skip what :func:`confine` would refuse instead of stopping.

    Args:
        roots: the folders to check against, resolved (default :func:`allowed_roots`); a
            walk computes them once with :func:`walk_roots`.
    """
    if "\0" in str(path):
        return None  # no file name holds one, and the OS calls would raise ValueError
    resolved = _resolved(path)
    roots = allowed_roots() if roots is None else roots
    return resolved if any(resolved.is_relative_to(r) for r in roots) else None


def walk_roots(top: str | Path) -> list[Path]:
    """The folders every level of a walk of ``top`` must stay in: the allowed folders and
    ``top`` itself, resolved. For the app ``top`` is already confined, so this is the
    allowed folders; the command line (unconfined) may scan any ``top``, but a link inside
    it still may not lead elsewhere. Check each level with ``within(entry, roots)``."""
    return list(dict.fromkeys([*allowed_roots(), _resolved(top)]))


def confine_run(ref: str) -> runs.RunPaths:
    """The run named by the app-supplied ``ref`` (a run id), only if its folder is allowed.

    Raises:
        RunNotFoundError: no such run.
        PathNotAllowedError: ``ref`` leads outside the allowed folders (``../``, an
            absolute path, a symbolic link).
    """
    text = str(ref).strip()
    remedy = f"pick a run listed in {paths.models_dir()}"
    if Path(text).name != text or text in (".", "..") or "\0" in text:
        # A path, not a run id: refuse it before even looking at what is there.
        confine(text, "The run folder", remedy=remedy)
    found = runs.resolve_run(text)
    return runs.RunPaths(confine(found.root, "The run folder", remedy=remedy))
