"""Small helpers tests import (kept out of conftest.py: the browser tests have their own
conftest, and two modules named ``conftest`` cannot both be imported by name)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

#: The real ISIC images beside the repository, when this checkout has them (CI does).
SHARED_ISIC = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "isic9"


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
