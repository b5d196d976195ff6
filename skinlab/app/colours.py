"""Colour statistics per class: mean colour, RGB histograms and the average image.

A class that differs from the others mainly in colour or brightness (one clinic's camera,
one lighting) invites a model to learn the camera rather than the lesion; these numbers
make that visible before training. Images are decoded through
:func:`skinlab.data.images.decode_image` at :data:`COLOUR_SIZE` px, so a sample of a few
hundred images takes well under a second.

Example::

    profile = colour_profile(gallery.sample_per_class(ds.table, 80))
    profile.means            # one row per class: r, g, b, brightness, hex
    profile.mean_images      # {class: (64, 64, 3) uint8}, "the average melanoma"
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from skinlab.core.classes import class_info
from skinlab.core.errors import InvalidImageError
from skinlab.data.images import decode_image

#: Side of the square every image is shrunk to before its colours are counted.
COLOUR_SIZE = 64
#: Bins per channel of the colour histograms.
COLOUR_BINS = 32


@dataclass(frozen=True)
class ColourProfile:
    """Per-class colour statistics of a sample of images.

    Attributes:
        means: one row per class: ``class``, ``display_name``, ``images`` (decoded),
            ``r``, ``g``, ``b`` (mean 0-255), ``brightness`` (mean luma) and ``hex``.
        histograms: ``class``, ``display_name``, ``channel`` (red/green/blue), ``level``
            (bin centre, 0-255) and ``fraction`` of that class's pixels in the bin.
        mean_images: ``{class: uint8 array (COLOUR_SIZE, COLOUR_SIZE, 3)}``, the
            pixel-wise average image ("the average melanoma").
    """

    means: pd.DataFrame
    histograms: pd.DataFrame
    mean_images: dict[str, np.ndarray]


def _small_array(path: str) -> np.ndarray | None:
    try:
        img = decode_image(path, draft_size=(COLOUR_SIZE, COLOUR_SIZE))
    except InvalidImageError:
        return None  # changed since the scan; one image fewer in the average
    img = img.resize((COLOUR_SIZE, COLOUR_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def colour_profile(images: pd.DataFrame, *, workers: int | None = None) -> ColourProfile:
    """Decode ``images`` (rows with ``path`` and ``label``, e.g. from
    :func:`sample_per_class`) at :data:`COLOUR_SIZE` px and measure each class's colours.

    Files that no longer decode are skipped; a class with none left is left out.
    """
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        arrays = list(pool.map(_small_array, images["path"]))
    by_class: dict[str, list[np.ndarray]] = {}
    for label, arr in zip(images["label"], arrays, strict=True):
        if arr is not None:
            by_class.setdefault(label, []).append(arr)
    means, mean_images = [], {}
    hists: list[dict[str, Any]] = []
    edges = np.linspace(0, 256, COLOUR_BINS + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    for label in sorted(by_class):
        stack = np.stack(by_class[label]).astype(np.float32)
        r, g, b = (float(v) for v in stack.mean(axis=(0, 1, 2)))
        display = class_info(label).display_name
        means.append(
            {
                "class": label,
                "display_name": display,
                "images": len(stack),
                "r": r,
                "g": g,
                "b": b,
                "brightness": 0.299 * r + 0.587 * g + 0.114 * b,
                "hex": f"#{round(r):02x}{round(g):02x}{round(b):02x}",
            }
        )
        for c, channel in enumerate(("red", "green", "blue")):
            counts, _ = np.histogram(stack[..., c], bins=edges)
            fractions = counts / max(counts.sum(), 1)
            hists.extend(
                {
                    "class": label,
                    "display_name": display,
                    "channel": channel,
                    "level": float(x),
                    "fraction": float(f),
                }
                for x, f in zip(centres, fractions, strict=True)
            )
        mean_images[label] = np.clip(stack.mean(axis=0).round(), 0, 255).astype(np.uint8)
    return ColourProfile(
        means=pd.DataFrame(
            means,
            columns=["class", "display_name", "images", "r", "g", "b", "brightness", "hex"],
        ),
        histograms=pd.DataFrame(
            hists, columns=["class", "display_name", "channel", "level", "fraction"]
        ),
        mean_images=mean_images,
    )
