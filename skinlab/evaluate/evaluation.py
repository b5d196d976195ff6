"""Scoring a classifier honestly on imbalanced data: what the notebook's plain accuracy hides.

The seed notebook reports accuracy alone. On ISIC, where a few benign classes dominate, a
model that always answers the commonest class scores a high accuracy while missing every
melanoma. :func:`classification_metrics` therefore reports, beside accuracy, the
balanced accuracy (mean per-class recall), macro F1, per-class precision / recall / F1 /
one-vs-rest ROC AUC, the confusion matrix, and the two numbers a clinician asks first:
melanoma sensitivity / specificity and malignant-vs-rest sensitivity / specificity.

Everything is plain numpy (no scikit-learn); the results match scikit-learn's
``zero_division=0`` conventions and are JSON-serialisable as they are.

Example::

    probs = softmax(model.predict(test_ds))
    metrics = classification_metrics(y_true, probs, class_names)
    json.dumps(metrics)
    frame = predictions_frame(test["relpath"], y_true, probs, class_names)
    clean = clean_subset_mask(test["relpath"], leaked_or_conflicting_paths(report))
    classification_metrics(y_true[clean], probs[clean], class_names)   # "clean test" score
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from skinlab.core.classes import MALIGNANT, normalise_class_name, risk_tier

#: The class whose sensitivity / specificity is reported on its own.
MELANOMA = "melanoma"


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Probabilities from ``logits`` along the last axis, computed stably.

    Args:
        logits: scores, usually ``(N, C)``; any shape works, the last axis is the classes.
        temperature: divides the logits first; above 1 flattens the distribution, below 1
            sharpens it. Must be a positive finite number.

    Returns:
        ``float64`` array of ``logits``' shape whose last axis sums to 1. The row maximum is
        subtracted before ``exp``, so logits in the thousands neither overflow nor give NaN.

    Raises:
        ValueError: ``temperature`` is not positive and finite.
    """
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}.")
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def classification_metrics(
    y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """Every score the evaluation page shows, as one JSON-serialisable dict.

    The predicted class is the argmax of ``probs`` (ties: the lower class index). AUCs use
    the scores themselves, so logits work as well as probabilities.

    Keys:

    * ``n``, ``class_names``, ``accuracy``.
    * ``balanced_accuracy``: mean recall over the classes with support > 0.
    * ``macro_f1``: mean F1 over the classes that occur in ``y_true`` *or* are predicted
      at least once (scikit-learn's ``f1_score(average="macro")`` with its default labels):
      a class nobody has and nobody predicted says nothing about the model and is left out.
    * ``per_class``: ``{name: {precision, recall, f1, support, auc}}``. Undefined ratios are
      0.0 (a never-predicted class has precision 0.0, a class without support recall 0.0);
      ``auc`` is the one-vs-rest ROC AUC (rank / Mann-Whitney formula, ties count half) and
      ``None`` when the class has no positive or no negative example.
    * ``roc_auc_macro``: mean of the non-``None`` AUCs, or ``None`` if there are none.
    * ``confusion_matrix``: list of lists, rows = true class, columns = predicted class.
    * ``melanoma``: ``{sensitivity, specificity}`` of melanoma vs the rest at the argmax, or
      ``None`` when no class is melanoma.
    * ``malignant_vs_benign``: ``{sensitivity, specificity}`` where positive means a class
      of risk tier malignant (:func:`skinlab.core.classes.risk_tier`) and "benign" is every other
      tier; predicting any malignant class for a malignant lesion is a hit. ``None`` when no
      class is malignant.

    In both sensitivity / specificity dicts a value is ``None`` when it is undefined (no
    positive, respectively no negative, example). No value is ever NaN.

    Args:
        y_true: ``(N,)`` class indices into ``class_names``.
        probs: ``(N, C)`` scores with ``C == len(class_names)``, finite.
        class_names: the class order, distinct names.

    Raises:
        ValueError: no examples, or shapes / labels / names that do not fit together.
    """
    y, probs = _check_inputs(y_true, probs, class_names, allow_empty=False)
    n, c = probs.shape
    pred = probs.argmax(axis=1)
    cm = np.zeros((c, c), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    auc = [_ovr_auc(probs[:, k], y == k) for k in range(c)]
    scored = [a for a in auc if a is not None]
    f1_classes = (support > 0) | (predicted > 0)
    per_class = {
        name: {
            "precision": float(precision[k]),
            "recall": float(recall[k]),
            "f1": float(f1[k]),
            "support": int(support[k]),
            "auc": auc[k],
        }
        for k, name in enumerate(class_names)
    }
    names = [normalise_class_name(name) for name in class_names]
    malignant = np.array([risk_tier(name) == MALIGNANT for name in class_names])
    return {
        "n": int(n),
        "class_names": [str(name) for name in class_names],
        "accuracy": float(tp.sum() / n),
        "balanced_accuracy": float(recall[support > 0].mean()),
        "macro_f1": float(f1[f1_classes].mean()),
        "per_class": per_class,
        "roc_auc_macro": float(np.mean(scored)) if scored else None,
        "confusion_matrix": cm.tolist(),
        "melanoma": (
            _sens_spec(y == names.index(MELANOMA), pred == names.index(MELANOMA))
            if MELANOMA in names
            else None
        ),
        "malignant_vs_benign": (
            _sens_spec(malignant[y], malignant[pred]) if malignant.any() else None
        ),
    }


def predictions_frame(
    paths: Sequence[str], y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]
) -> pd.DataFrame:
    """One row per image, for the error gallery and ``predictions.csv``.

    Columns: ``path``, ``true`` and ``predicted`` (class names), ``correct`` (bool),
    ``confidence`` (the predicted class's probability), then ``p_<class name>`` per class
    in ``class_names`` order. Rows keep the input order. Empty inputs give an empty frame
    with these columns.

    Raises:
        ValueError: ``paths`` is not one per row, or as in :func:`classification_metrics`.
    """
    y, probs = _check_inputs(y_true, probs, class_names, allow_empty=True)
    paths = [str(p) for p in paths]
    if len(paths) != len(y):
        raise ValueError(f"Got {len(paths)} paths for {len(y)} predictions; pass one per image.")
    names = np.asarray([str(name) for name in class_names], dtype=object)
    pred = probs.argmax(axis=1)
    frame = pd.DataFrame(
        {
            "path": paths,
            "true": names[y],
            "predicted": names[pred],
            "correct": y == pred,
            "confidence": probs.max(axis=1),
        }
    )
    scores = pd.DataFrame(probs, columns=[f"p_{name}" for name in names])
    return pd.concat([frame, scores], axis=1)


def clean_subset_mask(relpaths: Sequence[str], excluded: set[str]) -> np.ndarray:
    """Boolean mask, one per row, True where the relpath is *not* in ``excluded``.

    With ``excluded = leaked_or_conflicting_paths(report)`` it selects the "clean test"
    rows: Test images neither copied into another split nor filed under two labels. Paths
    are compared exactly, so pass the same ``relpath`` strings the audit uses.
    """
    return np.fromiter((p not in excluded for p in relpaths), dtype=bool)


def _check_inputs(
    y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str], allow_empty: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``(labels as int64, probs as float64)`` or a ValueError naming what does not fit."""
    y = np.asarray(y_true)
    p = np.asarray(probs, dtype=np.float64)
    c = len(class_names)
    if not allow_empty and y.size == 0:
        raise ValueError("There are no predictions to evaluate: the evaluation set is empty.")
    if c == 0 or len(set(class_names)) != c:
        raise ValueError("class_names must list at least one class, each name once.")
    if y.ndim != 1:
        raise ValueError(f"y_true must be a 1-D array of class indices, got shape {y.shape}.")
    if y.size == 0 and p.size == 0:
        return y.astype(np.int64), p.reshape(0, c)
    if p.ndim != 2 or p.shape[1] != c:
        raise ValueError(
            f"probs must have shape (N, {c}), one column per class name; got {p.shape}."
        )
    if p.shape[0] != y.shape[0]:
        raise ValueError(f"Got {y.shape[0]} labels for {p.shape[0]} rows of probs.")
    if not np.isfinite(p).all():
        raise ValueError("probs contains NaN or infinite values; the model output is broken.")
    if y.dtype.kind not in "iuf" or (y.dtype.kind == "f" and not np.all(y == np.round(y))):
        raise ValueError(f"y_true must hold integer class indices, got dtype {y.dtype}.")
    if y.size and (y.min() < 0 or y.max() >= c):
        raise ValueError(
            f"y_true holds class indices from {int(y.min())} to {int(y.max())}, "
            f"but there are only {c} classes (0 to {c - 1})."
        )
    return y.astype(np.int64), p


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0.0 where ``den`` is 0 (scikit-learn's ``zero_division=0``)."""
    num = np.asarray(num, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _ovr_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """ROC AUC of ``scores`` for ``positive`` vs the rest; tied scores count half."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    # Average ranks (1-based): tied scores share the mean of the ranks they span.
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    ranks = ((last - counts + 1 + last) / 2)[inverse]
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def _sens_spec(true_pos: np.ndarray, pred_pos: np.ndarray) -> dict[str, float | None]:
    """Sensitivity and specificity of a binary decision; ``None`` where undefined."""
    pos, neg = int(true_pos.sum()), int((~true_pos).sum())
    hits = int((true_pos & pred_pos).sum())
    rejections = int((~true_pos & ~pred_pos).sum())
    return {
        "sensitivity": hits / pos if pos else None,
        "specificity": rejections / neg if neg else None,
    }
