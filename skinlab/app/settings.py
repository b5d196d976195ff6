"""The app's small settings file: which dataset and which model were active last time.

Stored as JSON at ``SKINLAB_SETTINGS_FILE`` or ``data/settings.json`` (git-ignored), written
atomically, and read leniently: a missing or malformed file means "no settings yet".
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from skinlab.core import atomic
from skinlab.core.paths import data_dir


def settings_file() -> Path:
    return Path(os.environ.get("SKINLAB_SETTINGS_FILE", data_dir() / "settings.json"))


def load() -> dict[str, Any]:
    """All settings (empty when there are none or the file is unreadable)."""
    try:
        data = atomic.read_json(settings_file(), default={})
    except atomic.RunFileError:
        return {}
    return data if isinstance(data, dict) else {}


def get(key: str, default: Any = None) -> Any:
    return load().get(key, default)


def update(**values: Any) -> None:
    """Merge ``values`` into the file; a failed write is ignored (settings are a comfort)."""
    merged = {**load(), **values}
    with contextlib.suppress(OSError):
        atomic.write_json(settings_file(), merged)
