"""Temperature scaling: making a model's confidence mean what it says (Guo et al., 2017).

A network trained with cross-entropy is usually over-confident: among predictions made
with 90% confidence far fewer than 90% are right. Temperature scaling divides every logit
by one number ``T`` fitted on the validation split (``T > 1`` softens, ``T < 1`` sharpens);
the argmax, and so accuracy and the confusion matrix, never change. Only the probabilities
do, and with them the expected calibration error (ECE) and the negative log-likelihood.

Everything is plain numpy and JSON-serialisable as returned.

Example::

    report = calibration_report(val_logits, val_labels)   # after training
    Manifest(..., temperature=report["temperature"])    # written with the weights
    probs = softmax(logits, report["temperature"])        # at prediction time
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skinlab.evaluate.evaluation import softmax

#: The range searched for the temperature; the fitted value is clipped to it. Sharpening
#: (``T < 1``) is bounded harder than softening: a temperature of 0.05 once turned a demo
#: model's 70 % into 100.0 % for an astronaut photo.
T_MIN, T_MAX = 0.25, 20.0
#: Wrong validation predictions needed before the temperature may go below 1. With fewer,
#: the validation split is (nearly) perfectly separated: the NLL keeps falling as ``T -> 0``
#: and says nothing about how sure the model should be on anything else.
MIN_ERRORS_TO_SHARPEN = 3

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
_TOLERANCE = 1e-6  # in log T: a relative precision of one in a million


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature ``T`` minimising the NLL of ``softmax(logits / T)`` on ``labels``.

    The NLL is unimodal in ``log T``, so a golden-section search over ``[T_MIN, T_MAX]``
    finds its minimum; ``T`` stays 1.0 unless another value lowers the NLL (all-equal
    logits, for instance, give 1.0). Logits in the millions are handled exactly (the row
    maximum is subtracted before ``exp``).

    Args:
        logits: ``(N, C)`` raw model outputs, finite.
        labels: ``(N,)`` class indices in ``0..C-1``.

    Sharpening needs evidence: with fewer than :data:`MIN_ERRORS_TO_SHARPEN` wrong
    predictions the search starts at 1.0 (so a perfectly separated split keeps ``T = 1``).

    Returns:
        The temperature, a float in ``[T_MIN, T_MAX]``; 1.0 when there are no examples.

    Raises:
        ValueError: shapes or labels that do not fit, or non-finite logits.
    """
    z, y = _check(logits, labels)
    if y.size == 0:
        return 1.0
    lo, hi = np.log(T_MIN if _errors(z, y) >= MIN_ERRORS_TO_SHARPEN else 1.0), np.log(T_MAX)
    a, b = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
    fa, fb = _nll(z, y, np.exp(a)), _nll(z, y, np.exp(b))
    while hi - lo > _TOLERANCE:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - _GOLDEN * (hi - lo)
            fa = _nll(z, y, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + _GOLDEN * (hi - lo)
            fb = _nll(z, y, np.exp(b))
    best = float(np.exp((lo + hi) / 2))
    return best if _nll(z, y, best) < _nll(z, y, 1.0) else 1.0


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE: the confidence-weighted gap between confidence and accuracy.

    Each prediction's confidence (its largest probability) falls into one of ``n_bins``
    equal-width bins ``(k/n, (k+1)/n]``; ECE is the sum over bins of the bin's share of the
    examples times ``|accuracy - mean confidence|`` in it. 0 is perfect calibration.

    Args:
        probs: ``(N, C)`` probabilities (rows summing to 1), finite.
        labels: ``(N,)`` class indices.
        n_bins: number of confidence bins, at least 1.

    Returns:
        ECE in ``[0, 1]``; 0.0 when there are no examples.

    Raises:
        ValueError: as :func:`fit_temperature`, or ``n_bins < 1``.
    """
    table = reliability_table(probs, labels, n_bins)
    n = sum(row["count"] for row in table)
    if n == 0:
        return 0.0
    return float(
        sum(
            row["count"] / n * abs(row["accuracy"] - row["confidence"])
            for row in table
            if row["count"]
        )
    )


def reliability_table(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> list[dict]:
    """The reliability diagram as rows, one per equal-width confidence bin, lowest first.

    Each row is ``{"lower", "upper", "count", "confidence", "accuracy"}``: the bin's edges,
    how many predictions have their confidence in ``(lower, upper]`` (the first bin also
    takes a confidence of exactly 0), their mean confidence and the share of them that are
    right. Empty bins have ``count`` 0 and ``None`` for confidence and accuracy. Counts sum
    to ``N``; all values are plain Python numbers.

    Raises:
        ValueError: as :func:`expected_calibration_error`.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, not {n_bins}.")
    p, y = _check(probs, labels)
    confidence = p.max(axis=1) if p.size else np.zeros(0)
    correct = p.argmax(axis=1) == y if p.size else np.zeros(0, bool)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    rows = []
    for k in range(n_bins):
        members = index == k
        count = int(members.sum())
        rows.append(
            {
                "lower": float(edges[k]),
                "upper": float(edges[k + 1]),
                "count": count,
                "confidence": float(confidence[members].mean()) if count else None,
                "accuracy": float(correct[members].mean()) if count else None,
            }
        )
    return rows


def calibration_report(logits: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> dict[str, Any]:
    """Fit the temperature on ``(logits, labels)`` and report what it changed.

    Keys: ``temperature``; ``errors`` (wrong validation predictions) and ``separated``
    (True when there were too few of them to learn any sharpening from, see
    :func:`separation_note`); ``ece_before`` / ``ece_after`` (with ``n_bins`` bins);
    ``nll_before`` / ``nll_after`` (mean negative log-likelihood, nats); and
    ``reliability_before`` / ``reliability_after`` (:func:`reliability_table` with the same
    ``n_bins``, so the diagrams match the ECE). "Before" is ``T = 1``. JSON-serialisable.

    Raises:
        ValueError: there are no examples (a run without a validation split cannot be
            calibrated), or as :func:`fit_temperature`.
    """
    z, y = _check(logits, labels)
    if y.size == 0:
        raise ValueError("There is nothing to calibrate on: the validation split is empty.")
    z = z - z.max(axis=1, keepdims=True)  # softmax is shift-invariant; this keeps it finite
    temperature = fit_temperature(z, y)
    before, after = softmax(z), softmax(z, temperature)
    errors = _errors(z, y)
    return {
        "temperature": temperature,
        "errors": errors,
        "separated": errors < MIN_ERRORS_TO_SHARPEN,
        "ece_before": expected_calibration_error(before, y, n_bins),
        "ece_after": expected_calibration_error(after, y, n_bins),
        "nll_before": _nll(z, y, 1.0),
        "nll_after": _nll(z, y, temperature),
        "reliability_before": reliability_table(before, y, n_bins),
        "reliability_after": reliability_table(after, y, n_bins),
    }


def separation_note(report: dict[str, Any] | None) -> str | None:
    """One sentence for the Runs page when calibration had (almost) nothing to learn from:
    the validation split was (nearly) perfectly separated. ``None`` otherwise, and for a
    report written before this key existed."""
    if not report or not report.get("separated"):
        return None
    errors = report.get("errors", 0)
    wrong = "no validation image was" if not errors else f"only {errors} validation images were"
    return (
        f"Calibration had little to learn from: {wrong} misclassified, so the temperature was "
        "not allowed to sharpen the probabilities (T >= 1). A perfect validation score on a "
        "small or easy split says little about new images."
    )


def _errors(logits: np.ndarray, labels: np.ndarray) -> int:
    return int((logits.argmax(axis=1) != labels).sum()) if labels.size else 0


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of ``softmax(logits / temperature)``, computed stably."""
    # Shifting before dividing: logits near the float64 limit would overflow the other way.
    z = (logits - logits.max(axis=1, keepdims=True)) / temperature
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(labels)), labels]))


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(scores as float64 (N, C), labels as int64 (N,))`` or a ValueError saying what is wrong."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class indices, got shape {y.shape}.")
    if s.size == 0 and y.size == 0:
        return s.reshape(0, s.shape[-1] if s.ndim == 2 else 0), y.astype(np.int64)
    if s.ndim != 2 or s.shape[0] != y.shape[0] or s.shape[1] < 1:
        raise ValueError(
            f"Expected scores of shape (N, C) with N = {y.shape[0]} labels, got {s.shape}."
        )
    if not np.isfinite(s).all():
        raise ValueError("The model outputs contain NaN or infinite values; the model is broken.")
    if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= s.shape[1]:
        raise ValueError(f"labels must be integer class indices from 0 to {s.shape[1] - 1}.")
    return s, y.astype(np.int64)
