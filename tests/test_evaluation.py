"""Tests of skinlab.evaluate.evaluation: every metric checked against a hand-computed small case."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from skinlab.core.classes import ISIC_CLASS_NAMES
from skinlab.evaluate.evaluation import (
    classification_metrics,
    clean_subset_mask,
    predictions_frame,
    softmax,
)

ABC = ("a", "b", "c")
MEL = ISIC_CLASS_NAMES.index("melanoma")
NEV = ISIC_CLASS_NAMES.index("nevus")
BCC = ISIC_CLASS_NAMES.index("basal cell carcinoma")
SCC = ISIC_CLASS_NAMES.index("squamous cell carcinoma")
AK = ISIC_CLASS_NAMES.index("actinic keratosis")


def _probs_for(pred: list[int], num_classes: int) -> np.ndarray:
    """Scores whose argmax is ``pred``: 0.8 on the predicted class, the rest shared."""
    probs = np.full((len(pred), num_classes), 0.2 / max(num_classes - 1, 1))
    probs[np.arange(len(pred)), pred] = 0.8
    return probs


def _brute_force_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    pairs = list(itertools.product(scores[positive], scores[~positive]))
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)


def test_three_class_metrics_match_hand_computation():
    # Confusion matrix (rows true, cols predicted): [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    y = np.array([0, 0, 0, 1, 1, 2])
    m = classification_metrics(y, _probs_for([0, 0, 1, 1, 2, 2], 3), ABC)

    assert m["n"] == 6
    assert m["class_names"] == ["a", "b", "c"]
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    # recall 2/3, 1/2, 1; precision 1, 1/2, 1/2; F1 0.8, 0.5, 2/3
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    a, b, c = (m["per_class"][k] for k in ABC)
    assert (a["precision"], a["recall"], a["f1"], a["support"]) == pytest.approx((1, 2 / 3, 0.8, 3))
    assert (b["precision"], b["recall"], b["f1"], b["support"]) == pytest.approx((0.5, 0.5, 0.5, 2))
    assert (c["precision"], c["recall"], c["f1"], c["support"]) == pytest.approx((0.5, 1, 2 / 3, 1))
    # Class a: positives score (.8, .8, .1), negatives (.1, .1, .1): 6 wins + 3 ties of 9.
    assert a["auc"] == pytest.approx(7.5 / 9)


def test_perfect_classifier_scores_one_everywhere():
    y = np.array([0, 1, 2, 2, 1, 0, 2])
    m = classification_metrics(y, _probs_for(list(y), 3), ABC)

    for key in ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc_macro"):
        assert m[key] == 1.0
    for scores in m["per_class"].values():
        assert scores["precision"] == scores["recall"] == scores["f1"] == scores["auc"] == 1.0


def test_constant_majority_classifier_has_high_accuracy_but_chance_balanced_accuracy():
    # The notebook's trap: on 90/5/5 data, always answering "a" is 90% "accurate".
    y = np.array([0] * 90 + [1] * 5 + [2] * 5)
    m = classification_metrics(y, np.tile([0.7, 0.2, 0.1], (100, 1)), ABC)

    assert m["accuracy"] == pytest.approx(0.9)
    assert m["balanced_accuracy"] == pytest.approx(1 / 3)
    assert m["per_class"]["b"]["recall"] == m["per_class"]["c"]["recall"] == 0.0
    assert m["per_class"]["b"]["precision"] == 0.0  # never predicted
    assert m["roc_auc_macro"] == 0.5  # constant scores rank nothing


def test_equal_scores_give_auc_one_half():
    y = np.array([0, 1, 0, 1, 1])
    m = classification_metrics(y, np.full((5, 2), 0.5), ("a", "b"))

    assert m["per_class"]["a"]["auc"] == m["per_class"]["b"]["auc"] == 0.5


def test_auc_with_ties_matches_pairwise_count():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=60)
    probs = rng.integers(0, 4, size=(60, 3)) / 4.0  # coarse scores: many ties

    m = classification_metrics(y, probs, ABC)

    for k, name in enumerate(ABC):
        expected = _brute_force_auc(probs[:, k], y == k)
        assert m["per_class"][name]["auc"] == pytest.approx(expected)
    assert m["roc_auc_macro"] == pytest.approx(np.mean([m["per_class"][n]["auc"] for n in ABC]))


def test_melanoma_sensitivity_and_specificity_on_crafted_example():
    y = [MEL, MEL, MEL, MEL, NEV, NEV, NEV, BCC]
    pred = [MEL, MEL, MEL, NEV, NEV, MEL, NEV, BCC]
    m = classification_metrics(np.array(y), _probs_for(pred, 9), ISIC_CLASS_NAMES)

    # 3 of 4 melanomas found; 3 of 4 non-melanomas correctly not called melanoma.
    assert m["melanoma"] == {"sensitivity": 0.75, "specificity": 0.75}


def test_basal_cell_carcinoma_predicted_for_melanoma_is_a_malignant_hit():
    y = [MEL, MEL, BCC, NEV, NEV, AK]
    pred = [BCC, NEV, MEL, NEV, SCC, AK]
    m = classification_metrics(np.array(y), _probs_for(pred, 9), ISIC_CLASS_NAMES)

    # Malignant: mel->bcc hit, mel->nevus miss, bcc->mel hit. Rest (nevus, nevus, and
    # pre-malignant actinic keratosis): nevus->scc is the one false alarm.
    assert m["malignant_vs_benign"]["sensitivity"] == pytest.approx(2 / 3)
    assert m["malignant_vs_benign"]["specificity"] == pytest.approx(2 / 3)
    assert m["melanoma"]["sensitivity"] == 0.0


def test_binary_summaries_are_none_without_melanoma_or_malignant_classes():
    m = classification_metrics(np.array([0, 1]), np.eye(2), ("nevus", "dermatofibroma"))

    assert m["melanoma"] is None
    assert m["malignant_vs_benign"] is None


def test_undefined_sensitivity_is_none_not_nan():
    # Only benign lesions in the evaluation set: nothing to be sensitive to.
    m = classification_metrics(np.array([NEV, NEV]), _probs_for([NEV, MEL], 9), ISIC_CLASS_NAMES)

    assert m["melanoma"] == {"sensitivity": None, "specificity": 0.5}
    assert m["malignant_vs_benign"] == {"sensitivity": None, "specificity": 0.5}


def test_classes_without_support_are_left_out_of_averages_without_nan():
    # Class c is neither present nor predicted; class b is predicted but has no support.
    y = np.array([0, 0, 0, 0])
    m = classification_metrics(y, _probs_for([0, 0, 0, 1], 3), ABC)

    assert m["balanced_accuracy"] == pytest.approx(0.75)  # only class a counts
    # F1 over {a, b} (sklearn's default labels): a = 2*1*.75/1.75, b = 0; c is excluded.
    assert m["macro_f1"] == pytest.approx((1.5 / 1.75 + 0.0) / 2)
    assert m["per_class"]["c"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
        "auc": None,
    }
    assert m["roc_auc_macro"] is None  # one class only: no negatives or no positives
    json.dumps(m, allow_nan=False)


def test_single_class_input_is_scored_without_crashing():
    m = classification_metrics(np.array([0, 0, 0]), np.ones((3, 1)), ("nevus",))

    assert m["accuracy"] == m["balanced_accuracy"] == m["macro_f1"] == 1.0
    assert m["per_class"]["nevus"]["auc"] is None
    assert m["roc_auc_macro"] is None
    assert m["confusion_matrix"] == [[3]]


def test_metrics_are_json_serialisable_with_plain_types():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(40, 9)).astype(np.float32)
    y = rng.integers(0, 9, size=40).astype(np.int32)

    m = classification_metrics(y, softmax(logits), ISIC_CLASS_NAMES)

    assert json.loads(json.dumps(m, allow_nan=False)) == m
    assert type(m["n"]) is int and type(m["accuracy"]) is float
    assert all(type(v) is int for row in m["confusion_matrix"] for v in row)


def test_empty_input_is_rejected_with_clear_message():
    with pytest.raises(ValueError, match="no predictions to evaluate"):
        classification_metrics(np.array([], dtype=int), np.zeros((0, 3)), ABC)


@pytest.mark.parametrize(
    ("y", "probs", "message"),
    [
        ([0, 1], np.zeros((2, 2)), r"shape \(N, 3\)"),
        ([0, 1, 2], np.zeros((2, 3)), "3 labels for 2 rows"),
        ([0, 3], np.zeros((2, 3)), "only 3 classes"),
        ([0, -1], np.zeros((2, 3)), "only 3 classes"),
        ([0.5, 1], np.zeros((2, 3)), "integer class indices"),
        ([0, 1], np.array([[0.1, np.nan, 0.2], [1, 0, 0]]), "NaN"),
        ([[0, 1]], np.zeros((2, 3)), "1-D array"),
    ],
)
def test_mismatched_inputs_are_rejected_with_clear_message(y, probs, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(np.array(y), probs, ABC)


def test_duplicate_class_names_are_rejected():
    with pytest.raises(ValueError, match="each name once"):
        classification_metrics(np.array([0]), np.ones((1, 2)), ("a", "a"))


def test_softmax_rows_sum_to_one_and_match_the_formula():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])

    p = softmax(logits)

    assert p.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert p[0] == pytest.approx(np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())
    assert p[1] == pytest.approx([1 / 3] * 3)


def test_softmax_temperature_above_one_flattens_and_below_one_sharpens():
    logits = np.array([[2.0, 1.0, 0.0]])

    plain, hot, cold = softmax(logits), softmax(logits, 4.0), softmax(logits, 0.25)

    assert hot.max() < plain.max() < cold.max()
    assert hot.sum() == pytest.approx(1.0) and cold.sum() == pytest.approx(1.0)
    assert (hot.argmax(), cold.argmax()) == (0, 0)  # order is kept


def test_softmax_is_stable_for_huge_logits():
    p = softmax(np.array([[1000.0, 0.0, -1000.0], [1e308, 1e308, 0.0]]))

    assert np.isfinite(p).all()
    assert p[0] == pytest.approx([1.0, 0.0, 0.0])
    assert p[1] == pytest.approx([0.5, 0.5, 0.0])


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf")])
def test_softmax_rejects_non_positive_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        softmax(np.zeros((1, 2)), temperature)


def test_predictions_frame_has_one_row_per_image_with_class_probabilities():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])

    frame = predictions_frame(["x/1.jpg", "x/2.jpg"], np.array([0, 1]), probs, ABC)

    assert list(frame.columns) == [
        "path",
        "true",
        "predicted",
        "correct",
        "confidence",
        "p_a",
        "p_b",
        "p_c",
    ]
    assert frame["path"].tolist() == ["x/1.jpg", "x/2.jpg"]
    assert frame["true"].tolist() == ["a", "b"]
    assert frame["predicted"].tolist() == ["a", "c"]
    assert frame["correct"].tolist() == [True, False]
    assert frame["confidence"].tolist() == pytest.approx([0.7, 0.6])
    assert frame["p_b"].tolist() == pytest.approx([0.2, 0.3])


def test_predictions_frame_of_no_images_is_empty_with_the_same_columns():
    frame = predictions_frame([], np.array([], dtype=int), np.zeros((0, 3)), ABC)

    assert frame.empty
    assert list(frame.columns)[-3:] == ["p_a", "p_b", "p_c"]


def test_predictions_frame_needs_one_path_per_row():
    with pytest.raises(ValueError, match="1 paths for 2 predictions"):
        predictions_frame(["x.jpg"], np.array([0, 1]), np.eye(3)[:2], ABC)


def test_clean_subset_mask_drops_exactly_the_excluded_paths():
    relpaths = ["Test/melanoma/1.jpg", "Test/nevus/2.jpg", "Test/nevus/3.jpg"]

    mask = clean_subset_mask(relpaths, {"Test/nevus/2.jpg", "Train/nevus/9.jpg"})

    assert mask.dtype == bool
    assert mask.tolist() == [True, False, True]
    assert clean_subset_mask([], set()).shape == (0,)
