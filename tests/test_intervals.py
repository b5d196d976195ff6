"""Bootstrap intervals of one run's scores and the paired comparison of two runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skinlab.evaluate.evaluation import classification_metrics
from skinlab.evaluate.intervals import (
    bootstrap_intervals,
    intervals_from_predictions,
    mcnemar_p,
    paired_comparison,
    paired_from_predictions,
)

NAMES = ["a", "b", "c"]


def _labels(n: int = 120, seed: int = 0, right: float = 0.7):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < right, y, (y + 1) % 3)
    return y, pred


def test_estimates_match_classification_metrics_and_lie_inside_their_intervals() -> None:
    y, pred = _labels()
    result = bootstrap_intervals(y, pred, NAMES, rounds=500)
    metrics = classification_metrics(y, np.eye(3)[pred], NAMES)
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        interval = result[key]
        assert interval["estimate"] == pytest.approx(metrics[key])
        assert interval["low"] <= interval["estimate"] <= interval["high"]
    for name in NAMES:
        assert result["per_class_recall"][name]["estimate"] == pytest.approx(
            metrics["per_class"][name]["recall"]
        )
    assert result["n"] == 120 and result["level"] == 0.95


def test_about_a_hundred_images_carry_an_interval_of_several_points() -> None:
    y, pred = _labels(n=118)
    accuracy = bootstrap_intervals(y, pred, NAMES)["accuracy"]
    assert 0.10 < accuracy["high"] - accuracy["low"] < 0.25  # about ±8 points


def test_perfect_predictions_have_a_zero_width_interval() -> None:
    y = np.array([0, 1, 2, 0, 1, 2])
    result = bootstrap_intervals(y, y, NAMES, rounds=200)
    assert result["accuracy"] == {"estimate": 1.0, "low": 1.0, "high": 1.0}


def test_a_class_without_support_has_no_recall_interval() -> None:
    y = np.array([0, 1, 0, 1])
    result = bootstrap_intervals(y, y, NAMES, rounds=50)
    assert result["per_class_recall"]["c"] == {"estimate": None, "low": None, "high": None}


def test_the_same_seed_gives_the_same_intervals() -> None:
    y, pred = _labels()
    assert bootstrap_intervals(y, pred, NAMES, seed=4) == bootstrap_intervals(
        y, pred, NAMES, seed=4
    )


def test_bad_inputs_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="empty"):
        bootstrap_intervals([], [], NAMES)
    with pytest.raises(ValueError, match="same length"):
        bootstrap_intervals([0, 1], [0], NAMES)
    with pytest.raises(ValueError, match="0..2"):
        bootstrap_intervals([0, 5], [0, 1], NAMES)


def test_mcnemar_exact_p_values() -> None:
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(10, 0) == pytest.approx(2 / 2**10)
    assert mcnemar_p(5, 5) == 1.0
    assert mcnemar_p(3, 9) == mcnemar_p(9, 3)


def test_a_clearly_better_run_wins_and_the_verdict_names_it() -> None:
    y, good = _labels(n=300, seed=1, right=0.9)
    _, bad = _labels(n=300, seed=2, right=0.5)
    result = paired_comparison(y, good, bad, NAMES, names=("new", "old"), rounds=500)
    assert result["difference"]["accuracy"]["low"] > 0
    assert result["mcnemar_p"] < 0.001 and result["only_a_correct"] > result["only_b_correct"]
    assert result["verdict"].startswith("new is better than old")
    swapped = paired_comparison(y, bad, good, NAMES, names=("old", "new"), rounds=500)
    assert swapped["verdict"].startswith("new is better than old")


def test_two_runs_alike_are_not_called_different() -> None:
    y, a = _labels(n=100, seed=3, right=0.7)
    b = a.copy()
    b[:4] = (b[:4] + 1) % 3  # four images changed
    result = paired_comparison(y, a, b, NAMES, rounds=500)
    assert result["mcnemar_p"] > 0.05
    assert "is better than" not in result["verdict"]
    assert result["verdict"].startswith(("Neither run", "The evidence is mixed"))


def _frame(paths, true, predicted) -> pd.DataFrame:
    return pd.DataFrame({"path": paths, "true": true, "predicted": predicted})


def test_prediction_tables_are_paired_on_their_shared_images_only() -> None:
    a = _frame(["x", "y", "z"], ["a", "b", "c"], ["a", "b", "a"])
    b = _frame(["z", "y", "w"], ["c", "b", "a"], ["c", "a", "a"])
    result = paired_from_predictions(a, b, rounds=50)
    assert result["shared_images"] == 2
    assert (result["only_a_correct"], result["only_b_correct"]) == (1, 1)
    with pytest.raises(ValueError, match="share no"):
        paired_from_predictions(a, _frame(["q"], ["a"], ["a"]))


def test_intervals_from_a_predictions_table_use_the_given_classes() -> None:
    frame = _frame(["x", "y"], ["a", "b"], ["a", "a"])
    result = intervals_from_predictions(frame, ["a", "b", "zzz"], rounds=20)
    assert set(result["per_class_recall"]) == {"a", "b", "zzz"}
    with pytest.raises(ValueError, match="lacks"):
        intervals_from_predictions(frame, ["a"])
