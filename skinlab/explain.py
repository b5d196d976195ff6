"""Grad-CAM overlays for predictions, written as PNG files (the CLI's ``--gradcam``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from skinlab import atomic
from skinlab.gradcam import gradcam, overlay
from skinlab.images import decode_image


def explain(predictor, image, class_name: str | None = None, opacity: float = 0.4):
    """Heatmap (model size) and overlay (original size) for ``image`` (path, bytes or PIL)."""
    from PIL import Image

    original = image if isinstance(image, Image.Image) else decode_image(image)
    resized = original.resize((predictor.size, predictor.size), Image.Resampling.BILINEAR)
    index = predictor.class_names.index(class_name) if class_name else None
    heatmap = gradcam(predictor.loaded.model, np.asarray(resized, dtype=np.float32), index)
    return heatmap, overlay(original, heatmap, opacity)


def save_gradcams(
    predictor, predictions: Sequence, out_dir: Path, opacity: float = 0.4
) -> list[Path]:
    """Write ``<stem>.gradcam.png`` per prediction (for its top class); returns the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for result in predictions:
        _, picture = explain(predictor, result.path, result.top_class, opacity)
        target = out_dir / f"{Path(result.path).stem}.gradcam.png"
        with atomic.atomic_path(target) as tmp:
            picture.save(tmp, "PNG")
        written.append(target)
    return written
