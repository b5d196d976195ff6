"""How sure is a score? Bootstrap intervals for one run, and a paired test for two.

A 118-image Test split carries about ±9 points of accuracy by chance alone, so a score
without its interval invites reading noise as progress. :func:`bootstrap_intervals` draws
the evaluation images with replacement ``rounds`` times and reports the 2.5th and 97.5th
percentiles (a percentile bootstrap) of accuracy, balanced accuracy, macro-F1 and each
class's recall. :func:`paired_comparison` asks whether run A beats run B *on the same
images*: the bootstrap of the difference (both runs scored on each resample, so the
images' difficulty cancels) and McNemar's exact test on the images exactly one run got
right.

Plain numpy, vectorised over resamples: 2,000 rounds of 118 images take milliseconds.
The metrics follow :func:`skinlab.evaluate.evaluation.classification_metrics`' definitions.

Example::

    frame = compare.read_predictions(record)                 # path, split, true, predicted
    intervals = intervals_from_predictions(frame[frame["split"] == "Test"])
    intervals["balanced_accuracy"]    # {"estimate": 0.61, "low": 0.52, "high": 0.70}
    paired = paired_from_predictions(frame_a, frame_b)
    paired["verdict"]                 # one sentence

Why one module: the intervals of one run and the paired test of two share one resampling,
one vectorised scoring and the bounds on both (classes, memory), which must not drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb
from typing import Any

import numpy as np
import pandas as pd

from skinlab.core.manifest import MAX_CLASSES

#: Bootstrap resamples (percentile intervals are stable to about ±0.5 point at 2,000).
ROUNDS = 2000
#: Coverage of every interval.
LEVEL = 0.95
#: The scores :func:`bootstrap_intervals` reports, with their display names.
SCORES = {"accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy", "macro_f1": "Macro F1"}
#: Resampled indices and confusion counts held at once (~64 MB each as int64): resamples are
#: drawn in chunks of this size, so a 300,000-row predictions table costs time, not 5 GB.
_CHUNK = 8_000_000


def _scores(y: np.ndarray, pred: np.ndarray, classes: int) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy, macro-F1 ``(B,)`` and recall ``(B, C)`` of ``B`` rows of
    labels and predictions ``(B, N)`` (NaN recall for a class absent from a row)."""
    rounds = y.shape[0]
    flat = (np.arange(rounds)[:, None] * classes * classes + y * classes + pred).ravel()
    cm = np.bincount(flat, minlength=rounds * classes * classes).reshape(rounds, classes, classes)
    tp = np.diagonal(cm, axis1=1, axis2=2).astype(np.float64)
    support, predicted = cm.sum(axis=2), cm.sum(axis=1)
    recall = np.divide(tp, support, out=np.full_like(tp, np.nan), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    safe_recall = np.nan_to_num(recall)
    f1 = np.divide(
        2 * precision * safe_recall,
        precision + safe_recall,
        out=np.zeros_like(tp),
        where=(precision + safe_recall) > 0,
    )
    f1_classes = (support > 0) | (predicted > 0)
    return {
        "accuracy": tp.sum(axis=1) / y.shape[1],
        "balanced_accuracy": np.nanmean(recall, axis=1),
        "macro_f1": (f1 * f1_classes).sum(axis=1) / f1_classes.sum(axis=1),
        "recall": recall,
    }


def _check(y_true: np.ndarray, *preds: np.ndarray, classes: int) -> list[np.ndarray]:
    arrays = [np.asarray(a, dtype=np.int64) for a in (y_true, *preds)]
    n = len(arrays[0])
    if n == 0:
        raise ValueError("There are no predictions to bootstrap: the evaluation set is empty.")
    for a in arrays:
        if a.shape != (n,):
            raise ValueError("Labels and predictions must be 1-D and of the same length.")
        if a.min() < 0 or a.max() >= classes:
            raise ValueError(f"Class indices must lie in 0..{classes - 1}.")
    return arrays


def _resampled(
    y: np.ndarray, preds: list[np.ndarray], classes: int, rounds: int, seed: int
) -> list[dict[str, np.ndarray]]:
    """:func:`_scores` of each of ``preds`` on the same ``rounds`` resamples of the images,
    drawn :data:`_CHUNK` numbers at a time (one draw, the same as ever, for small sets)."""
    rng, n = np.random.default_rng(seed), len(y)
    step = max(1, _CHUNK // (n + classes * classes))
    chunks: list[list[dict[str, np.ndarray]]] = [[] for _ in preds]
    for start in range(0, rounds, step):
        index = rng.integers(0, n, size=(min(step, rounds - start), n))
        for found, pred in zip(chunks, preds, strict=True):
            found.append(_scores(y[index], pred[index], classes))
    return [{k: np.concatenate([c[k] for c in found]) for k in found[0]} for found in chunks]


def _interval(estimate: float, draws: np.ndarray, level: float) -> dict[str, float | None]:
    draws = draws[np.isfinite(draws)]
    if not np.isfinite(estimate) or draws.size == 0:
        return {"estimate": None, "low": None, "high": None}
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return {"estimate": float(estimate), "low": float(low), "high": float(high)}


def bootstrap_intervals(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str],
    *,
    rounds: int = ROUNDS,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, Any]:
    """Percentile-bootstrap intervals of the scores of predictions ``y_pred`` (class indices).

    Returns:
        ``{"accuracy", "balanced_accuracy", "macro_f1": {estimate, low, high},
        "per_class_recall": {class: {estimate, low, high}}, "rounds", "level", "n"}``.
        A class without support has ``None`` throughout; the estimate is the score on all
        images, the interval the ``level`` central range of the resampled scores.

    Raises:
        ValueError: empty inputs, different lengths, or indices outside the classes.
    """
    c = len(class_names)
    y, pred = _check(y_true, y_pred, classes=c)
    point = _scores(y[None], pred[None], c)
    (draws,) = _resampled(y, [pred], c, rounds, seed)
    out: dict[str, Any] = {
        name: _interval(float(point[name][0]), draws[name], level) for name in SCORES
    }
    out["per_class_recall"] = {
        name: _interval(float(point["recall"][0, k]), draws["recall"][:, k], level)
        for k, name in enumerate(class_names)
    }
    return {**out, "rounds": rounds, "level": level, "n": len(y)}


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value: a binomial test of ``only_a`` successes in
    ``only_a + only_b`` discordant pairs at 1/2 (1.0 when there are none)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2**n
    return float(min(1.0, 2 * tail))


def paired_comparison(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    class_names: Sequence[str],
    *,
    rounds: int = ROUNDS,
    level: float = LEVEL,
    seed: int = 0,
    names: tuple[str, str] = ("A", "B"),
) -> dict[str, Any]:
    """Is A better than B on these images? Paired bootstrap and McNemar.

    Returns:
        ``{"n", "difference": {score: {estimate, low, high}}`` (A minus B, both on each
        resample), ``"only_a_correct"``, ``"only_b_correct"``, ``"mcnemar_p"``,
        ``"verdict"`` (one sentence), ``"rounds"``, ``"level"``}.

    Raises:
        ValueError: as :func:`bootstrap_intervals`.
    """
    c = len(class_names)
    y, a, b = _check(y_true, pred_a, pred_b, classes=c)
    point_a, point_b = _scores(y[None], a[None], c), _scores(y[None], b[None], c)
    draws_a, draws_b = _resampled(y, [a, b], c, rounds, seed)
    difference = {
        name: _interval(
            float(point_a[name][0] - point_b[name][0]), draws_a[name] - draws_b[name], level
        )
        for name in SCORES
    }
    only_a = int(np.sum((a == y) & (b != y)))
    only_b = int(np.sum((b == y) & (a != y)))
    p = mcnemar_p(only_a, only_b)
    return {
        "n": len(y),
        "difference": difference,
        "only_a_correct": only_a,
        "only_b_correct": only_b,
        "mcnemar_p": p,
        "verdict": verdict(difference["balanced_accuracy"], p, names, level),
        "rounds": rounds,
        "level": level,
    }


def verdict(
    balanced: dict[str, float | None], p: float, names: tuple[str, str], level: float = LEVEL
) -> str:
    """One sentence on whether A or B is really better.

    A winner is named only when both tests agree: the balanced-accuracy difference
    interval (the score that counts every class) excludes zero *and* McNemar's p on
    accuracy is below 1 - ``level``. The percentile bootstrap alone is too eager when few
    images differ (four images, all one way, exclude zero while McNemar's p is 0.125).
    """
    a, b = names
    low, high, estimate = balanced["low"], balanced["high"], balanced["estimate"]
    if estimate is None or low is None or high is None:
        return "There is nothing to compare: no class has support."
    span = f"{estimate:+.1%} (95% interval {low:+.1%} to {high:+.1%})"
    clear, significant = low > 0 or high < 0, p < 1 - level
    if clear and significant:
        winner, loser = (a, b) if low > 0 else (b, a)
        return (
            f"{winner} is better than {loser} on these images: balanced accuracy differs by "
            f"{span}, an interval that excludes zero, and McNemar's p = {p:.3f} on accuracy."
        )
    if clear or significant:
        return (
            f"The evidence is mixed: balanced accuracy differs by {span}, but McNemar's "
            f"p = {p:.3f} on accuracy {'is not' if clear else 'is'} below {1 - level:.2f}; "
            "more images would tell."
        )
    return (
        f"Neither run is shown to be better: the balanced-accuracy difference {span} "
        f"includes zero (McNemar's p = {p:.3f} on accuracy); more images would tell."
    )


def _few(names: list[str]) -> list[str]:
    """``names``, when no more than a model can have: the resamples hold a confusion matrix
    of their count squared each (1,000 classes: 16 GB)."""
    if len(names) > MAX_CLASSES:
        raise ValueError(
            f"The predictions name {len(names):,} classes, more than the {MAX_CLASSES} a model "
            "can have."
        )
    return names


def _indices(frame: pd.DataFrame, class_names: Sequence[str], column: str) -> np.ndarray:
    lookup = {name: k for k, name in enumerate(class_names)}
    return frame[column].map(lookup).to_numpy(dtype=np.int64)


def prediction_classes(*frames: pd.DataFrame) -> list[str]:
    """The sorted class names that occur as true or predicted class in ``frames``."""
    names = set()
    for frame in frames:
        names |= set(frame["true"].astype(str)) | set(frame["predicted"].astype(str))
    return sorted(names)


def intervals_from_predictions(
    frame: pd.DataFrame, class_names: Sequence[str] | None = None, **kwargs: Any
) -> dict[str, Any]:
    """:func:`bootstrap_intervals` of a predictions table (columns ``true``, ``predicted``;
    one split of ``predictions.csv``) over ``class_names`` (default: the classes in it).

    Raises:
        ValueError: as :func:`bootstrap_intervals`, a class outside ``class_names``, or more
            than :data:`~skinlab.core.manifest.MAX_CLASSES` classes.
    """
    frame = frame.astype({"true": str, "predicted": str})
    found = prediction_classes(frame)
    names = _few(list(class_names) if class_names is not None else found)
    unknown = sorted(set(found) - set(names))
    if unknown:
        shown = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3:,} more" if unknown[3:] else "")
        raise ValueError(f"The predictions name classes the model lacks: {shown}.")
    return bootstrap_intervals(
        _indices(frame, names, "true"), _indices(frame, names, "predicted"), names, **kwargs
    )


def paired_from_predictions(
    frame_a: pd.DataFrame, frame_b: pd.DataFrame, **kwargs: Any
) -> dict[str, Any]:
    """:func:`paired_comparison` of two predictions tables on the images both scored
    (joined on ``path``; images whose true class differs between them are dropped).

    Raises:
        ValueError: the two tables share no image, or name more than
            :data:`~skinlab.core.manifest.MAX_CLASSES` classes.
    """
    joined = frame_a[["path", "true", "predicted"]].merge(
        frame_b[["path", "true", "predicted"]], on="path", suffixes=("_a", "_b")
    )
    joined = joined[joined["true_a"].astype(str) == joined["true_b"].astype(str)]
    if joined.empty:
        raise ValueError("The two runs share no scored image, so they cannot be paired.")
    joined = joined.astype(str)
    names = _few(
        sorted(set(joined["true_a"]) | set(joined["predicted_a"]) | set(joined["predicted_b"]))
    )
    return {
        **paired_comparison(
            _indices(joined, names, "true_a"),
            _indices(joined, names, "predicted_a"),
            _indices(joined, names, "predicted_b"),
            names,
            **kwargs,
        ),
        "shared_images": len(joined),
    }
