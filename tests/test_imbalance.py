"""Tests of skinlab.train.imbalance on small synthetic label arrays and tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skinlab.data.pipeline import label_indices
from skinlab.data.splits import train_val_split
from skinlab.train.imbalance import (
    balanced_probabilities,
    class_weights,
    counts_after,
    logit_offsets,
    oversample_indices,
)

LABELS = np.array([0] * 6 + [1] * 3 + [2] * 1)  # counts 6, 3, 1


def test_rarer_classes_get_larger_weights_and_mean_sample_weight_is_one():
    weights = class_weights(LABELS, 3)

    # n / (classes present * count): 10 / 18, 10 / 9, 10 / 3
    assert weights == pytest.approx({0: 10 / 18, 1: 10 / 9, 2: 10 / 3})
    assert weights[2] > weights[1] > weights[0]
    assert np.mean([weights[k] for k in LABELS]) == pytest.approx(1.0)
    assert all(type(k) is int and type(w) is float for k, w in weights.items())


def test_class_without_training_examples_gets_weight_one_and_a_key():
    weights = class_weights(LABELS, 4)

    assert weights[3] == 1.0
    assert sorted(weights) == [0, 1, 2, 3]
    assert np.mean([weights[k] for k in LABELS]) == pytest.approx(1.0)


def test_balanced_labels_get_equal_weights_of_one():
    assert class_weights(np.array([0, 1, 2, 0, 1, 2]), 3) == {0: 1.0, 1: 1.0, 2: 1.0}


@pytest.mark.parametrize(
    ("labels", "num_classes", "message"),
    [
        ([], 3, "no training labels"),
        ([0, 3], 3, "only 3 classes"),
        ([0, -1], 3, "0 or more"),
        ([0.0, 1.0], 3, "integer class indices"),
    ],
)
def test_class_weights_reject_bad_labels_with_clear_message(labels, num_classes, message):
    with pytest.raises(ValueError, match=message):
        class_weights(np.array(labels), num_classes)


def test_oversampling_brings_every_class_to_the_largest_count():
    idx = oversample_indices(LABELS, seed=0)

    assert np.bincount(LABELS[idx]).tolist() == [6, 6, 6]


def test_oversampling_to_an_integer_target_never_drops_rows_of_larger_classes():
    idx = oversample_indices(LABELS, seed=0, target=4)

    assert np.bincount(LABELS[idx]).tolist() == [6, 4, 4]


def test_oversampling_keeps_every_original_row_and_spreads_repeats_evenly():
    labels = np.array([0] * 10 + [1] * 3)
    idx = oversample_indices(labels, seed=3)

    copies = np.bincount(idx, minlength=len(labels))
    assert (copies >= 1).all()
    assert copies[:10].tolist() == [1] * 10
    assert sorted(copies[10:].tolist()) == [3, 3, 4]  # 10 = 3 whole copies + 1 drawn


def test_oversampling_is_deterministic_for_a_seed_and_shuffled():
    a = oversample_indices(LABELS, seed=7)
    b = oversample_indices(LABELS, seed=7)
    c = oversample_indices(LABELS, seed=8)

    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, np.sort(a))


@pytest.mark.parametrize("target", ["min", 0, -2, 2.5, True])
def test_oversampling_rejects_a_bad_target(target):
    with pytest.raises(ValueError, match="target"):
        oversample_indices(LABELS, seed=0, target=target)


def test_oversampled_training_rows_never_share_an_image_with_validation():
    rows = [
        {"relpath": f"Train/{label}/{i:03d}.jpg", "label": label, "content_hash": f"{label}{i}"}
        for label, n in {"melanoma": 4, "nevus": 30, "vascular lesion": 6}.items()
        for i in range(n)
    ]
    # Exact copies of a few images, some filed under another class.
    rows += [
        {"relpath": f"Train/nevus/copy{i}.jpg", "label": "nevus", "content_hash": f"melanoma{i}"}
        for i in range(3)
    ] + [{"relpath": "Train/melanoma/copy.jpg", "label": "melanoma", "content_hash": "nevus0"}]
    class_names = ["melanoma", "nevus", "vascular lesion"]
    train, val = train_val_split(pd.DataFrame(rows), val_fraction=0.3, seed=1)

    idx = oversample_indices(label_indices(train, class_names), seed=1)
    oversampled = train.iloc[idx]

    assert len(val) and train["content_hash"].duplicated().any()  # the case is not trivial
    assert len(oversampled) > len(train)
    assert set(oversampled["relpath"]) == set(train["relpath"])
    assert not set(oversampled["content_hash"]) & set(val["content_hash"])


def test_counts_after_reports_before_and_after_for_each_strategy():
    none = counts_after(LABELS, "none", 4)
    weighted = counts_after(LABELS, "class_weights", 4)
    sampled = counts_after(LABELS, "oversample", 4, seed=0)
    drawn = counts_after(LABELS, "balanced_sampling", 4)
    adjusted = counts_after(LABELS, "logit_adjustment", 4)

    for result in (none, weighted, sampled, drawn, adjusted):
        assert result["before"].tolist() == [6, 3, 1, 0]
    assert none["after"].tolist() == [6, 3, 1, 0]
    assert adjusted["after"].tolist() == [6, 3, 1, 0]  # the loss balances, not the rows
    # Weighted: every present class counts n / classes present = 10 / 3.
    assert weighted["after"] == pytest.approx([10 / 3, 10 / 3, 10 / 3, 0])
    assert sampled["after"].tolist() == [6, 6, 6, 0]
    # Balanced sampling: the expected draws of an epoch of 10 rows, a third per class.
    assert drawn["after"] == pytest.approx([10 / 3, 10 / 3, 10 / 3, 0])


def test_balanced_probabilities_give_each_class_an_equal_share_split_evenly_within_it():
    p = balanced_probabilities(LABELS)
    assert p.sum() == pytest.approx(1)
    labels = np.asarray(LABELS)
    for k in (0, 1, 2):
        assert p[labels == k].sum() == pytest.approx(1 / 3)
        assert np.ptp(p[labels == k]) == pytest.approx(0)
    with pytest.raises(ValueError, match="no training labels"):
        balanced_probabilities(np.array([], np.int64))


def test_counts_after_rejects_an_unknown_strategy():
    with pytest.raises(ValueError, match="strategy must be one of"):
        counts_after(LABELS, "undersample", 3)


def test_logit_offsets_are_the_log_share_of_each_class_and_finite_for_an_absent_one():
    offsets = logit_offsets(LABELS, 4)
    # Shares 6/10, 3/10, 1/10; the absent class counts as half a row of 10.
    assert offsets == pytest.approx(np.log([0.6, 0.3, 0.1, 0.05]).tolist())
    assert all(type(v) is float for v in offsets)
    with pytest.raises(ValueError, match="only 2 classes"):
        logit_offsets(LABELS, 2)
    with pytest.raises(ValueError, match="no training labels"):
        logit_offsets(np.array([], dtype=int), 3)


def test_collection_balance_gives_each_collection_of_a_class_an_equal_share():
    from skinlab.train.imbalance import collection_balanced_probabilities

    # Class 0: 8 rows from archive A, 2 from B; class 1: 5 rows, all from A.
    labels = np.array([0] * 10 + [1] * 5)
    collections = np.array(["A"] * 8 + ["B"] * 2 + ["A"] * 5)
    balanced = collection_balanced_probabilities(labels, collections, balance_classes=True)
    assert balanced.sum() == pytest.approx(1.0)
    # Classes equal (1/2 each); within class 0, A and B a quarter each.
    assert balanced[:8].sum() == pytest.approx(0.25)
    assert balanced[8:10].sum() == pytest.approx(0.25)
    assert balanced[10:].sum() == pytest.approx(0.5)
    # Without class balance each class keeps its share of the rows (10/15, 5/15).
    kept = collection_balanced_probabilities(labels, collections, balance_classes=False)
    assert kept[:10].sum() == pytest.approx(10 / 15)
    assert kept[8:10].sum() == pytest.approx(5 / 15)
    with pytest.raises(ValueError, match="one value per row"):
        collection_balanced_probabilities(labels, collections[:3], balance_classes=True)


def test_a_runs_rows_carry_the_collection_their_isic_ids_say(tmp_path):
    from helpers import image_bytes

    from skinlab.core.config import RunConfig
    from skinlab.data.run_split import split_for_run

    names = {
        "melanoma": ["ISIC_0000001", "ISIC_0000002", "ISIC_0000003"],
        "nevus": ["ISIC_0024400", "ISIC_0024401", "other"],
    }
    for n, (label, stems) in enumerate(names.items()):
        (tmp_path / "ds" / "Train" / label).mkdir(parents=True)
        for i, stem in enumerate(stems):
            path = tmp_path / "ds" / "Train" / label / f"{stem}.jpg"
            path.write_bytes(image_bytes(seed=10 * n + i))
    rows = split_for_run(RunConfig(data_root=str(tmp_path / "ds"), val_fraction=0.0))
    names_of = rows.train["relpath"].str.rsplit("/", n=1).str[-1]
    by_name = dict(zip(names_of, rows.train["collection"], strict=True))
    assert by_name["ISIC_0000001.jpg"] == "ISIC archive"
    assert by_name["ISIC_0024400.jpg"] == "HAM10000"
    assert by_name["other.jpg"] == "ds"


def test_collection_offsets_are_what_each_collection_says_about_the_class_clipped():
    from skinlab.train.imbalance import collection_offsets

    labels = np.array([0, 0, 0, 1, 1, 1, 1, 2])
    collections = np.array(["A", "A", "A", "A", "B", "B", "B", "B"])
    groups, table = collection_offsets(labels, collections, 3, cap=10.0)
    assert groups.tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
    assert table[0] == [0.0, 0.0, 0.0]
    overall = np.array([3, 4, 1]) / 8
    # A: 3 of class 0, 1 of class 1, none of class 2 (half a row): 3 : 1 : 0.5.
    np.testing.assert_allclose(table[1], np.log(np.array([3, 1, 0.5]) / 4.5 / overall))
    np.testing.assert_allclose(table[2], np.log(np.array([0.5, 3, 1]) / 4.5 / overall))
    # The clip keeps every offset within ±cap.
    _, clipped = collection_offsets(labels, collections, 3, cap=0.5)
    assert np.abs(clipped).max() == pytest.approx(0.5)
    assert clipped[1][0] == pytest.approx(0.5) and clipped[1][1] == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="cap"):
        collection_offsets(labels, collections, 3, cap=0.0)
