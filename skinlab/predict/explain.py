"""Grad-CAM overlays for predictions, written as PNG files (the CLI's ``--gradcam``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from skinlab.core import atomic
from skinlab.data.images import decode_image
from skinlab.predict.gradcam import gradcam, overlay
from skinlab.predict.predictor import DECODE_PX

#: Longest side of the pictures shown or written beside a prediction (the model never sees
#: these): an overlay at an upload's full size cost ~144 bytes a pixel, 11 GB at 79 MP.
DISPLAY_PX = 512


def explain(predictor, image, class_name: str | None = None, opacity: float = 0.4):
    """Heatmap (model size) and overlay (at most :data:`DISPLAY_PX` on its longer side) for
    ``image`` (path, bytes or PIL image).

    The model sees what :meth:`~skinlab.predict.predictor.Predictor.predict_sources` gives it: the
    image decoded at most :data:`~skinlab.predict.predictor.DECODE_PX` across, resized to its input.
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        original = image.copy()
        original.thumbnail((DECODE_PX, DECODE_PX))
    else:
        original = decode_image(image, max_side=DECODE_PX)
    resized = original.resize((predictor.size, predictor.size), Image.Resampling.BILINEAR)
    index = predictor.class_names.index(class_name) if class_name else None
    heatmap = gradcam(predictor.loaded.model, np.asarray(resized, dtype=np.float32), index)
    original.thumbnail((DISPLAY_PX, DISPLAY_PX))
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
