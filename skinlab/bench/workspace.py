"""A section's workspace: dataset folders built from a discovery table, and skinlab's
folder settings pointed into the section's work folder while it runs.

Files are hard-linked (a copy only where the file system refuses links), so a subset or
sixteen copies of a dataset cost almost no disk and no time to make.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd


def train_rows(data_root: Path, limit: int | None = None) -> pd.DataFrame:
    """The readable Train images of ``data_root`` (a random :func:`subset` of ``limit``)."""
    from skinlab.data.discovery import discover

    table = discover(data_root).images("Train")
    table = table[table["error"].isna()]
    return table if limit is None else subset(table, limit)


def sample_rows(data_root: Path, fallback: pd.DataFrame) -> pd.DataFrame:
    """Images to predict: the Test split of ``data_root`` when it has one, else ``fallback``."""
    from skinlab.data.discovery import discover

    dataset = discover(data_root)
    return dataset.images("Test") if "Test" in dataset.splits else fallback


def train_in(workdir: Path, config):
    """Train ``config`` into ``workdir/models`` (not the user's models folder); its RunPaths."""
    from skinlab.train.training import train

    with environ(SKINLAB_MODELS_DIR=workdir / "models"):
        return train(config).paths


def subset(table: pd.DataFrame, n: int, *, seed: int = 0) -> pd.DataFrame:
    """At most ``n`` rows of ``table``, drawn at random (so classes keep their shares)."""
    if len(table) <= n:
        return table
    return table.sample(n=n, random_state=seed).sort_index()


def link_images(rows: pd.DataFrame, root: Path, *, prefix: str = "") -> Path:
    """Put every row's file at ``root/<split>/<label>/<prefix><name>``; returns ``root``.

    ``name`` is the file's path below its class folder, flattened, so files from nested
    folders never collide. Use distinct ``prefix`` values to place several copies of one
    file side by side.
    """
    for path, relpath, split, label in rows[["path", "relpath", "split", "label"]].itertuples(
        index=False
    ):
        folder = root / split / label
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / (prefix + "__".join(Path(relpath).parts[2:]))
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
    return root


@contextlib.contextmanager
def environ(**values: str | Path) -> Iterator[None]:
    """Set environment variables (``SKINLAB_MODELS_DIR=...``) and restore them afterwards."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update({name: str(value) for name, value in values.items()})
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
