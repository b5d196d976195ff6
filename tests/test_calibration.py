"""Temperature scaling on synthetic models whose true probabilities are known."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from skinlab.evaluate.calibration import (
    T_MAX,
    T_MIN,
    calibration_report,
    expected_calibration_error,
    fit_temperature,
    reliability_table,
    separation_note,
)
from skinlab.evaluate.evaluation import softmax


def _calibrated_model(n: int = 4000, classes: int = 5, seed: int = 0):
    """Logits of a perfectly calibrated model, and labels drawn from its own probabilities."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, (n, classes))
    probs = softmax(logits)
    labels = (probs.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return logits, labels


def test_over_confident_model_gets_temperature_above_one_and_lower_ece_and_nll() -> None:
    logits, labels = _calibrated_model()
    report = calibration_report(4.0 * logits, labels)
    assert report["temperature"] > 1.0
    assert report["temperature"] == pytest.approx(4.0, rel=0.15)
    assert report["ece_after"] < report["ece_before"] / 3
    assert report["nll_after"] < report["nll_before"]


def test_under_confident_model_gets_temperature_below_one() -> None:
    logits, labels = _calibrated_model()
    report = calibration_report(0.25 * logits, labels)
    assert report["temperature"] == pytest.approx(0.25, rel=0.15)
    assert report["ece_after"] < report["ece_before"]
    assert report["nll_after"] < report["nll_before"]


def test_perfectly_calibrated_set_has_small_ece_and_temperature_near_one() -> None:
    logits, labels = _calibrated_model()
    assert expected_calibration_error(softmax(logits), labels) < 0.03
    assert fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.1)


def test_ece_is_zero_when_confidence_matches_accuracy_exactly() -> None:
    probs = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(probs, np.array([0, 0, 0, 1])) == pytest.approx(0.0)
    assert expected_calibration_error(probs, np.array([1, 1, 1, 1])) == pytest.approx(0.75)


def test_huge_logits_give_a_finite_temperature_without_warnings() -> None:
    logits, labels = _calibrated_model(n=500)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for scale in (1e6, 1e300):
            temperature = fit_temperature(scale * logits, labels)
            assert T_MIN <= temperature <= T_MAX
        report = calibration_report(1e300 * logits, labels)
    json.dumps(report, allow_nan=False)


def test_empty_input_keeps_temperature_one() -> None:
    assert fit_temperature(np.zeros((0, 9)), np.zeros(0, np.int64)) == 1.0


def test_uninformative_logits_keep_temperature_one() -> None:
    assert fit_temperature(np.zeros((50, 3)), np.arange(50) % 3) == 1.0


def test_report_on_empty_validation_split_is_refused_with_clear_message() -> None:
    with pytest.raises(ValueError, match="validation split is empty"):
        calibration_report(np.zeros((0, 9)), np.zeros(0, np.int64))


@pytest.mark.parametrize(
    ("logits", "labels", "match"),
    [
        (np.zeros((3, 2)), np.array([0, 1, 2]), "class indices from 0 to 1"),
        (np.zeros((3, 2)), np.array([0, 1]), "shape"),
        (np.array([[0.0, np.nan]]), np.array([0]), "NaN"),
    ],
)
def test_inconsistent_inputs_raise_value_error(logits, labels, match) -> None:
    with pytest.raises(ValueError, match=match):
        fit_temperature(logits, labels)


def test_reliability_table_counts_sum_to_n_and_empty_bins_have_none() -> None:
    logits, labels = _calibrated_model(n=300)
    table = reliability_table(softmax(logits), labels, n_bins=10)
    assert len(table) == 10
    assert sum(row["count"] for row in table) == 300
    assert table[0] == {
        "lower": 0.0,
        "upper": 0.1,
        "count": 0,
        "confidence": None,
        "accuracy": None,
    }
    for row in table:
        if row["count"]:
            assert row["lower"] < row["confidence"] <= row["upper"]
            assert 0.0 <= row["accuracy"] <= 1.0


def test_confidence_of_exactly_one_falls_in_the_last_bin() -> None:
    table = reliability_table(np.array([[1.0, 0.0]]), np.array([0]), n_bins=4)
    assert [row["count"] for row in table] == [0, 0, 0, 1]


def test_report_is_json_serialisable_with_matching_reliability_bins() -> None:
    logits, labels = _calibrated_model(n=500)
    report = calibration_report(3.0 * logits, labels, n_bins=12)
    assert set(report) == {
        "temperature",
        "errors",
        "separated",
        "ece_before",
        "ece_after",
        "nll_before",
        "nll_after",
        "reliability_before",
        "reliability_after",
    }
    assert len(report["reliability_before"]) == len(report["reliability_after"]) == 12
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_temperature_never_changes_the_predicted_class() -> None:
    logits, labels = _calibrated_model(n=500)
    temperature = fit_temperature(4.0 * logits, labels)
    np.testing.assert_array_equal(
        softmax(4.0 * logits, temperature).argmax(axis=1), logits.argmax(axis=1)
    )


def test_a_perfectly_separated_validation_split_cannot_sharpen_the_temperature() -> None:
    # The demo's one-minute model: every validation image right, with margins of ~1-3.
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 3
    logits = rng.normal(0.0, 0.3, (60, 3))
    logits[np.arange(60), labels] += rng.uniform(1.0, 3.0, 60)
    report = calibration_report(logits, labels)
    assert report["temperature"] >= 1.0 and report["separated"] and report["errors"] == 0
    note = separation_note(report)
    assert note is not None and "no validation image was misclassified" in note
    # What an unbounded fit did: probabilities of 1 - 1e-100 for anything.
    assert softmax(logits, report["temperature"]).max() < 0.999


def test_sharpening_is_bounded_even_with_evidence() -> None:
    logits, labels = _calibrated_model()
    report = calibration_report(0.01 * logits, labels)  # hugely under-confident
    assert report["temperature"] == pytest.approx(T_MIN) and not report["separated"]
    assert separation_note(report) is None
