"""Test-time views of an image: itself, its flips and its quarter turns (the 8 symmetries of
a square), then the same 8 of the image turned by 45°, 22.5° and 67.5° (32 views in all).
A dermoscopic image has no preferred orientation, so each view is as plausible as the
image; averaging a model's probabilities over them (``tta``) scores it more steadily.
Used by prediction (:mod:`skinlab.predict.predictor`) and scoring
(:mod:`skinlab.evaluate.scoring`) alike.

The first 8 views are exact (pixels are only moved). The turned views are resampled
bilinearly about the centre, the corners filled by reflection as the training warp fills
them (:mod:`skinlab.model.geometry`), so they suit a model trained on any rotation (the
``dermoscopy`` augmentation). Measured on the three cpu-best cross-validation fold models of
2026-11-29 (balanced accuracy on their held-out folds): 8 views 0.635, 16 views 0.641,
32 views 0.646; docs/accuracy.md.

Example::

    batch = tta_batch(images, 8)          # (N * 8, H, W, C), image by image
    probs = model(batch).reshape(N, 8, -1).mean(axis=1)
"""

from __future__ import annotations

import numpy as np

#: The 8 symmetries of a square, in the order they are used.
_SYMMETRIES = (
    lambda a: a,
    lambda a: a[:, ::-1],
    lambda a: a[::-1, :],
    lambda a: np.rot90(a, 1),
    lambda a: np.rot90(a, 2),
    lambda a: np.rot90(a, 3),
    lambda a: np.rot90(a[:, ::-1], 1),
    lambda a: np.rot90(a[:, ::-1], 3),
)
#: Turns (degrees) whose 8 symmetries follow the image's own: 45° first, as it halves the
#: largest angle to an unseen orientation, then the two in between.
_TURNS = (0.0, 45.0, 22.5, 67.5)
#: Views per image at most: the 8 symmetries of each turn.
MAX_TTA = len(_SYMMETRIES) * len(_TURNS)
#: The views that only move pixels (no resampling): the symmetries of the image itself.
EXACT_TTA = len(_SYMMETRIES)


def tta_batch(images: np.ndarray, views: int) -> np.ndarray:
    """The first ``views`` test-time views of each image of ``images`` ``(N, H, W, C)``,
    image by image: ``(N * views, H, W, C)``, the first view of each the image itself.

    Raises:
        ValueError: ``views`` is not between 1 and :data:`MAX_TTA`.
    """
    if not 1 <= views <= MAX_TTA:
        raise ValueError(f"Test-time augmentation takes 1 to {MAX_TTA} views, not {views}.")
    turns = _TURNS[: -(-views // EXACT_TTA)]  # the turns the first `views` views need
    out = []
    for image in images:
        per_image: list[np.ndarray] = []
        for degrees in turns:
            turned = image if degrees == 0 else _turn(image, degrees)
            per_image.extend(view(turned) for view in _SYMMETRIES)
        out.extend(per_image[:views])
    return np.stack(out)


def _turn(image: np.ndarray, degrees: float) -> np.ndarray:
    """``image`` (H, W, C) turned by ``degrees`` about its centre, same size, reflected
    into the corners, bilinear."""
    from scipy import ndimage  # only the turned views need it; importing it costs ~0.2 s

    turned = ndimage.rotate(image, degrees, axes=(1, 0), reshape=False, order=1, mode="reflect")
    return turned.astype(image.dtype, copy=False)
