"""Out-of-fold class probabilities of the Train images: what a model that never saw an
image thinks it shows, the evidence for a likely label error.

Two sources, best first:

* :func:`from_cross_validation`: the newest ``python -m skinlab cv`` result on this dataset.
  Fold k's run scored exactly the Train images of fold k, which it never trained on, and
  its ``predictions.csv`` holds their class probabilities (the rows with split ``Val``);
  the folds together cover Train once.
* :func:`quick_estimate`: when no cross-validation exists yet, a 5-fold forest on the
  colours of 24 px thumbnails (a few seconds). Much weaker than a CNN, but it sees a
  lesion of one class filed under a very different one.

Example::

    oof = from_cross_validation(dataset) or quick_estimate(dataset.images("Train"), names)
    oof.probabilities.shape        # (images, classes), rows in oof.relpaths order
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from skinlab.core import runs
from skinlab.core.errors import DatasetLayoutError, SkinlabError
from skinlab.data.discovery import Dataset, resolve_root
from skinlab.data.near_duplicates import tiny_images
from skinlab.train import cv

QUICK_FOLDS = 5


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-fold probabilities: row ``i`` is image ``relpaths[i]``, columns follow
    ``class_names``; ``source`` says in a few words where they come from."""

    source: str
    class_names: tuple[str, ...]
    relpaths: tuple[str, ...]
    probabilities: np.ndarray

    def frame(self) -> pd.DataFrame:
        """One row per image, indexed by relpath, one column per class."""
        return pd.DataFrame(
            self.probabilities,
            index=pd.Index(self.relpaths, name="relpath"),
            columns=self.class_names,
        )


def from_cross_validation(dataset: Dataset, models_root: Path | None = None) -> OutOfFold | None:
    """The newest complete cross-validation of ``dataset`` (every fold run's predictions
    readable, one class list), or ``None`` when there is none."""
    for result in cv.load_results(models_root):
        if _same_folder(result.config.get("data_root", ""), dataset.root):
            found = _collect(result, models_root)
            if found is not None:
                return found
    return None


def _same_folder(configured: str, root: Path) -> bool:
    try:
        return resolve_root(configured).resolve() == Path(root).resolve()
    except (DatasetLayoutError, OSError):
        return False


def _collect(result: cv.CVResult, models_root: Path | None) -> OutOfFold | None:
    frames = []
    for fold in result.folds:
        try:
            paths = runs.resolve_run(fold.run_id, root=models_root)
            predictions = runs.read_table(
                paths.predictions,
                runs.MAX_PREDICTIONS_BYTES,
                columns=runs.MAX_PREDICTIONS_COLUMNS,
                rows=runs.MAX_PREDICTIONS_ROWS,
            )
        except SkinlabError:
            return None  # a fold run was deleted, or its table is damaged
        if predictions is None or not {"path", "split"} <= set(predictions):
            return None  # the fold never finished
        frames.append(predictions[predictions["split"] == "Val"])
    rows = pd.concat(frames, ignore_index=True).drop_duplicates("path", keep="last")
    names = tuple(c[2:] for c in rows.columns if c.startswith("p_"))
    if rows.empty or not names:
        return None
    source = f"cross-validation of preset '{result.preset}' ({cv.result_label(result)})"
    probabilities = rows[[f"p_{n}" for n in names]].to_numpy(float)
    return OutOfFold(source, names, tuple(rows["path"]), probabilities)


def quick_estimate(
    train: pd.DataFrame,
    class_names: Sequence[str],
    *,
    images: np.ndarray | None = None,
    seed: int = 0,
) -> OutOfFold:
    """Out-of-fold probabilities of ``train``'s rows (``relpath``, ``path``, ``label``, and
    ``content_hash`` to keep copies in one fold) from a stratified 5-fold extremely-randomised forest on colour and texture features of their
    thumbnails, with class-balanced weights (so a scarce class is not suspected merely for
    being scarce). Deterministic for a given ``seed``; 2-4 s for 400 images on 2 cores.

    Args:
        images: the rows' thumbnails if already decoded (``(N, H, W, 3)`` uint8).
        seed: seeds the folds and the forest.

    Raises:
        SkinlabError: fewer than two classes with at least two images each.
    """
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    names = tuple(class_names)
    labels = train["label"].map({n: i for i, n in enumerate(names)}).to_numpy()
    counts = np.bincount(labels, minlength=len(names))
    if (counts >= 2).sum() < 2:
        raise SkinlabError("A likely-label-error check needs two classes of at least two images.")
    if images is None:
        images = tiny_images(list(train["path"]))
    folds = int(np.clip(counts[counts > 0].min(), 2, QUICK_FOLDS))
    forest = ExtraTreesClassifier(
        150, min_samples_leaf=2, class_weight="balanced", random_state=seed, n_jobs=1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about classes rarer than the folds
        probabilities = cross_val_predict(
            forest,
            _features(images),
            labels,
            # Copies of one picture stay in one fold (as skinlab.data.splits does): a copy filed
            # under the other label must not teach the model the answer for its twin.
            groups=train.get("content_hash"),
            cv=StratifiedGroupKFold(folds, shuffle=True, random_state=seed),
            method="predict_proba",
        )
    source = f"a quick {folds}-fold forest on thumbnail colours (no cross-validation of this dataset yet)"
    return OutOfFold(source, names, tuple(train["relpath"]), np.asarray(probabilities, float))


def _features(images: np.ndarray) -> np.ndarray:
    """What a lesion looks like at a glance: the joint colour histogram (4 levels a channel)
    of the middle of the picture, colour means and spreads, and edge strength."""
    pixels = images.astype(np.float32)
    n, side = len(images), images.shape[1]
    margin = side // 4
    centre = pixels[:, margin : side - margin, margin : side - margin].reshape(n, -1, 3)
    levels = (centre // 64).astype(np.int64)
    codes = levels[..., 0] * 16 + levels[..., 1] * 4 + levels[..., 2]
    histogram = np.stack([np.bincount(c, minlength=64) for c in codes]) / codes.shape[1]
    grey = pixels.mean(axis=-1)
    edges = np.stack(
        [np.abs(np.diff(grey, axis=1)).mean((1, 2)), np.abs(np.diff(grey, axis=2)).mean((1, 2))],
        axis=1,
    )
    stats = [centre.mean(1), centre.std(1), pixels.reshape(n, -1, 3).std(1)]
    return np.concatenate([np.sqrt(histogram), *(s / 64 for s in stats), edges / 32], axis=1)
