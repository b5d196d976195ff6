"""Scoring a model on a table of images: logits, metrics, per-image predictions, and the
"clean test" score that leaves out Test images the audit found leaked or conflicting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import pandas as pd

from skinlab.core.errors import DatasetLayoutError
from skinlab.data.audit import audit_dataset, leaked_or_conflicting_paths
from skinlab.data.discovery import Dataset, discover
from skinlab.data.pipeline import decode_table, label_indices
from skinlab.data.run_split import split_for_run
from skinlab.evaluate.evaluation import (
    classification_metrics,
    clean_subset_mask,
    predictions_frame,
    softmax,
)
from skinlab.evaluate.intervals import intervals_from_predictions
from skinlab.model.views import EXACT_TTA, tta_batch

#: Images decoded at once while predicting, to bound memory on big splits.
_CHUNK = 256
#: Test-time views held at once (``_CHUNK`` images of 8 views): more views, fewer images.
_VIEWS_AT_ONCE = _CHUNK * EXACT_TTA


def predict_logits(
    model: keras.Model, table: pd.DataFrame, image_size: int, batch_size: int = 64
) -> np.ndarray:
    """Logits for every row of ``table`` (in order), decoding in bounded chunks."""
    out = []
    for start in range(0, len(table), _CHUNK):
        images = decode_table(table.iloc[start : start + _CHUNK], image_size).astype("float32")
        out.append(model.predict(images, batch_size=batch_size, verbose=0))
    return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), "float32")


def predict_probabilities(
    model: keras.Model,
    table: pd.DataFrame,
    image_size: int,
    *,
    temperature: float = 1.0,
    tta: int = 1,
    batch_size: int = 64,
) -> np.ndarray:
    """Calibrated probabilities for every row of ``table`` (in order), averaged over ``tta``
    test-time views of each image (the flips, quarter turns and 45-degree turns of
    :func:`skinlab.model.views.tta_batch`, as ``predict --tta`` uses).

    Raises:
        ValueError: ``tta`` is not between 1 and :data:`skinlab.model.views.MAX_TTA`.
    """
    out = []
    chunk = min(_CHUNK, max(1, _VIEWS_AT_ONCE // max(1, tta)))
    for start in range(0, len(table), chunk):
        images = decode_table(table.iloc[start : start + chunk], image_size).astype("float32")
        logits = model.predict(tta_batch(images, tta), batch_size=batch_size, verbose=0)
        out.append(softmax(logits, temperature).reshape(len(images), tta, -1).mean(axis=1))
    return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), "float32")


def score_table(
    model: keras.Model,
    table: pd.DataFrame,
    class_names: Sequence[str],
    image_size: int,
    *,
    temperature: float = 1.0,
    split: str = "",
    logits: np.ndarray | None = None,
    tta: int = 1,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Metrics and per-image predictions of ``model`` on ``table``.

    ``logits`` may be passed when already computed for ``table`` (same row order); with
    ``tta`` above 1 the probabilities are averaged over that many views of each image
    (:func:`predict_probabilities`) and ``logits`` must not be given.

    Raises:
        DatasetLayoutError: ``table`` is empty or holds classes the model does not know.
    """
    if table.empty:
        raise DatasetLayoutError(f"The {split or 'chosen'} split has no readable images to score.")
    unknown = sorted(set(table["label"]) - set(class_names))
    if unknown:
        raise DatasetLayoutError(
            f"The {split or 'chosen'} split has classes the model was not trained on "
            f"({', '.join(unknown)}); evaluate on a dataset with the same classes."
        )
    y_true = label_indices(table, class_names)
    if tta > 1:
        if logits is not None:
            raise ValueError("Pass logits or ask for test-time augmentation, not both.")
        probs = predict_probabilities(model, table, image_size, temperature=temperature, tta=tta)
    else:
        if logits is None:
            logits = predict_logits(model, table, image_size)
        probs = softmax(logits, temperature)
    frame = predictions_frame(list(table["relpath"]), y_true, probs, class_names)
    frame.insert(1, "split", split)
    return classification_metrics(y_true, probs, class_names), frame


def score_split(
    model: keras.Model,
    dataset: Dataset,
    split: str,
    class_names: Sequence[str],
    image_size: int,
    *,
    temperature: float = 1.0,
    tta: int = 1,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Score one split; for Test also the "clean" score without leaked/conflicting images
    (``tta`` as in :func:`score_table`).

    The returned metrics gain ``clean`` (metrics on the clean subset, or None when nothing
    was excluded) and ``excluded`` (how many images the audit excluded).
    """
    table = dataset.images(split)
    metrics, frame = score_table(
        model, table, class_names, image_size, temperature=temperature, split=split, tta=tta
    )
    excluded = leaked_or_conflicting_paths(audit_dataset(dataset)) if split == "Test" else set()
    mask = clean_subset_mask(list(table["relpath"]), excluded)
    metrics["excluded"] = int((~mask).sum())
    metrics["clean"] = None
    if metrics["excluded"] and mask.any():
        probs = frame[[f"p_{c}" for c in class_names]].to_numpy()[mask]
        metrics["clean"] = classification_metrics(
            label_indices(table[mask], class_names), probs, class_names
        )
    return metrics, frame


#: The ``split`` of :func:`evaluate_run` that means the run's own validation images.
VALIDATION = "validation"


def evaluate_run(
    ref: str, data_root: str | None = None, split: str = "Test", tta: int = 1
) -> dict[str, Any]:
    """Load a run's model and score it on ``split`` of ``data_root`` (default: the run's data),
    averaging the probabilities of ``tta`` flipped and rotated views of each image (1 = the
    image only); the result says how many under ``"tta"``, and ``"intervals"`` holds the
    bootstrap 95 % intervals of :func:`skinlab.evaluate.intervals.bootstrap_intervals`.

    ``split`` :data:`VALIDATION` scores the images the run itself was validated on, split
    again from its config (a cross-validation fold's held-out fold, say), e.g. to see what
    test-time augmentation adds to a fold's score.

    Raises:
        ValueError: ``tta`` is not between 1 and :data:`skinlab.model.views.MAX_TTA`.
    """
    from skinlab.core import runs
    from skinlab.model.modelio import load_run_model

    loaded = load_run_model(ref)
    config = runs.read_config(loaded.paths)
    root = data_root or config.data_root
    if split == VALIDATION:
        return _evaluate_validation(loaded, config.replace(data_root=str(root)), tta)
    dataset = discover(root)
    if split not in dataset.splits:
        raise DatasetLayoutError(
            f"{dataset.root} has no {split} split; choose one of {', '.join(dataset.splits)}."
        )
    metrics, frame = score_split(
        loaded.model,
        dataset,
        split,
        loaded.class_names,
        loaded.image_size,
        temperature=loaded.temperature,
        tta=tta,
    )
    return _evaluation(loaded, split, dataset.root, tta, metrics, frame)


def _evaluation(loaded, split, root, tta: int, metrics: dict, frame: pd.DataFrame) -> dict:
    return {
        "run_id": loaded.paths.run_id,
        "split": split,
        "data_root": str(root),
        "tta": tta,
        **metrics,
        "intervals": intervals_from_predictions(frame, loaded.class_names),
    }


def _evaluate_validation(loaded, config, tta: int) -> dict[str, Any]:
    data = split_for_run(config)
    metrics, frame = score_table(
        loaded.model,
        data.val,
        loaded.class_names,
        loaded.image_size,
        temperature=loaded.temperature,
        split=VALIDATION,
        tta=tta,
    )
    return _evaluation(loaded, VALIDATION, data.dataset.root, tta, metrics, frame)
