"""Where skinlab keeps datasets and runs: the one place that knows the folders.

Both default to folders beside the package (``data/`` and ``models/`` at the repository
top level) and can be moved with the ``SKINLAB_DATA_DIR`` and ``SKINLAB_MODELS_DIR``
environment variables, which is how tests keep their files out of the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # skinlab/core/paths.py


def data_dir() -> Path:
    """Folder holding datasets (the demo dataset and imported ones)."""
    return Path(os.environ.get("SKINLAB_DATA_DIR", PROJECT_ROOT / "data")).expanduser()


def models_dir() -> Path:
    """Folder holding one sub-folder per training run."""
    return Path(os.environ.get("SKINLAB_MODELS_DIR", PROJECT_ROOT / "models")).expanduser()
