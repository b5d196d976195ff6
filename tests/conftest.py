"""Shared fixtures: every test writes datasets and runs under a temporary folder, never
into the checkout, and small image files are made on the fly."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

SHARED_ISIC = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "isic9"


@pytest.fixture(scope="session")
def session_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One data and models folder for the whole session (the demo is generated once)."""
    base = tmp_path_factory.mktemp("skinlab-home")
    return {"data": base / "data", "models": base / "models"}


@pytest.fixture(autouse=True)
def _isolated_dirs(
    session_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SKINLAB_DATA_DIR", str(session_dirs["data"]))
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(session_dirs["models"]))
    # Each test gets its own app settings, so a dataset picked in one test never leaks.
    monkeypatch.setenv("SKINLAB_SETTINGS_FILE", str(tmp_path / "settings.json"))


def image_bytes(
    mode: str = "RGB",
    size: tuple[int, int] = (32, 24),
    fmt: str = "JPEG",
    colour: int | tuple[int, ...] | None = None,
    seed: int = 0,
    **save_kwargs,
) -> bytes:
    """Encode a small random (or single-colour) image; distinct seeds give distinct files."""
    rng = np.random.default_rng(seed)
    if colour is None:
        rgb = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), "RGB")
        img = rgb.convert(mode) if mode != "RGB" else rgb
    else:
        img = Image.new(mode, size, colour)
    buf = io.BytesIO()
    img.save(buf, fmt, **save_kwargs)
    return buf.getvalue()


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
