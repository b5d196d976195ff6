"""Shared fixtures: every test writes datasets and runs under a temporary folder, never
into the checkout, and small image files are made on the fly."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sys  # noqa: E402

import pytest  # noqa: E402
from helpers import SHARED_ISIC, image_bytes  # noqa: E402


@pytest.fixture(scope="session")
def session_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One data and models folder for the whole session (the demo is generated once)."""
    base = tmp_path_factory.mktemp("skinlab-home")
    return {"data": base / "data", "models": base / "models"}


@pytest.fixture(autouse=True)
def _isolated_dirs(
    session_dirs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    monkeypatch.setenv("SKINLAB_DATA_DIR", str(session_dirs["data"]))
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(session_dirs["models"]))
    # The app reads only allowed folders (skinlab.core.confine); tests open their own temporary
    # datasets and the shared ISIC images through it.
    extra = [tmp_path_factory.getbasetemp(), SHARED_ISIC.parent]
    monkeypatch.setenv("SKINLAB_EXTRA_DIRS", os.pathsep.join(map(str, extra)))
    # Each test gets its own app settings, so a dataset picked in one test never leaks.
    monkeypatch.setenv("SKINLAB_SETTINGS_FILE", str(tmp_path / "settings.json"))
    # No warm standby trainers (skinlab.jobs.standby) unless a test asks for one: each would
    # import TensorFlow and outlive its test by minutes.
    monkeypatch.setenv("SKINLAB_STANDBY", "0")


@pytest.fixture
def make_dataset_folder(tmp_path: Path) -> Callable[..., Path]:
    """Write a tiny dataset: ``make_dataset_folder({"Train": {"melanoma": 3}}, root_name="ds")``."""

    def _make(layout: dict[str, dict[str, int]], root_name: str = "ds", seed: int = 0) -> Path:
        root = tmp_path / root_name
        n = seed * 10_000
        for split, classes in layout.items():
            for label, count in classes.items():
                folder = root / split / label
                folder.mkdir(parents=True, exist_ok=True)
                for i in range(count):
                    n += 1
                    (folder / f"img_{i:03d}.jpg").write_bytes(image_bytes(seed=n))
        return root

    return _make


_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # After the whole suite has run and reported, tearing down the interpreter (TensorFlow,
    # h5py, Playwright and Streamlit threads all loaded in one process) ended in a segfault
    # (exit 139) in the full run, never in any file alone. Nothing is left to run or report at
    # this point, so leave with pytest's own exit status instead of finalising the modules.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
