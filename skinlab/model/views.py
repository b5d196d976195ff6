"""Test-time views of an image: itself, its flips and its quarter turns (the 8 symmetries of
a square). A dermoscopic image has no preferred orientation, so each view is as plausible as
the image; averaging a model's probabilities over them (``tta``) scores it more steadily.
Used by prediction (:mod:`skinlab.predict.predictor`) and scoring (:mod:`skinlab.evaluate.scoring`) alike.

Example::

    batch = tta_batch(images, 8)          # (N * 8, H, W, C), image by image
    probs = model(batch).reshape(N, 8, -1).mean(axis=1)
"""

from __future__ import annotations

import numpy as np

#: Test-time augmentation views, in the order they are used: rotations and flips keep a
#: dermoscopic image plausible (no preferred orientation).
_VIEWS = (
    lambda a: a,
    lambda a: a[:, ::-1],
    lambda a: a[::-1, :],
    lambda a: np.rot90(a, 1),
    lambda a: np.rot90(a, 2),
    lambda a: np.rot90(a, 3),
    lambda a: np.rot90(a[:, ::-1], 1),
    lambda a: np.rot90(a[:, ::-1], 3),
)
MAX_TTA = len(_VIEWS)


def tta_batch(images: np.ndarray, views: int) -> np.ndarray:
    """The first ``views`` test-time views of each image of ``images`` ``(N, H, W, C)``,
    image by image: ``(N * views, H, W, C)``, the first view of each the image itself.

    Raises:
        ValueError: ``views`` is not between 1 and :data:`MAX_TTA`.
    """
    if not 1 <= views <= MAX_TTA:
        raise ValueError(f"Test-time augmentation takes 1 to {MAX_TTA} views, not {views}.")
    return np.stack([view(a) for a in images for view in _VIEWS[:views]])
