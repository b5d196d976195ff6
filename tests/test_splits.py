"""Tests of skinlab.data.splits on small synthetic tables (no image files needed)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from skinlab.data.splits import train_val_split


def _table(class_sizes: dict[str, int], prefix: str = "Train") -> pd.DataFrame:
    """One readable, unique image per row: ``<prefix>/<class>/<i>.jpg``."""
    rows = [
        {
            "relpath": f"{prefix}/{label}/{i:04d}.jpg",
            "split": prefix,
            "label": label,
            "content_hash": f"{label}-{i}",
            "error": None,
        }
        for label, n in class_sizes.items()
        for i in range(n)
    ]
    return pd.DataFrame(rows)


def _with_duplicates(table: pd.DataFrame, every: int = 3) -> pd.DataFrame:
    """Copy every ``every``-th image 1-3 times, half of the copies under another label."""
    labels = sorted(table["label"].unique())
    copies = []
    for i, row in enumerate(table.iloc[::every].itertuples(index=False)):
        for k in range(1 + i % 3):
            label = labels[(labels.index(row.label) + 1) % len(labels)] if k % 2 else row.label
            copies.append(
                {**row._asdict(), "label": label, "relpath": f"Train/{label}/copy{i}-{k}.jpg"}
            )
    return pd.concat([table, pd.DataFrame(copies)], ignore_index=True)


def _hashes(frame: pd.DataFrame) -> set[str]:
    return set(frame["content_hash"])


def test_each_class_is_split_in_the_requested_proportion():
    sizes = {"melanoma": 100, "nevus": 50, "dermatofibroma": 20, "vascular lesion": 7}
    train, val = train_val_split(_table(sizes), val_fraction=0.2, seed=0)

    val_counts = val["label"].value_counts().to_dict()
    for label, n in sizes.items():
        assert val_counts[label] == math.floor(n * 0.2 + 0.5)
    assert len(train) + len(val) == sum(sizes.values())


def test_small_classes_get_one_validation_image_but_a_lone_image_stays_in_training():
    train, val = train_val_split(_table({"melanoma": 2, "nevus": 1}), val_fraction=0.05, seed=0)

    assert val["label"].tolist() == ["melanoma"]
    assert sorted(train["label"]) == ["melanoma", "nevus"]


def test_no_image_appears_on_both_sides_even_with_many_duplicates():
    table = _with_duplicates(_table({"melanoma": 60, "nevus": 40, "dermatofibroma": 9}))
    assert table["content_hash"].duplicated().sum() > 30  # the test plants real duplicates

    for seed in range(5):
        train, val = train_val_split(table, val_fraction=0.3, seed=seed)
        assert not _hashes(train) & _hashes(val)
        assert sorted(train["relpath"].tolist() + val["relpath"].tolist()) == sorted(
            table["relpath"]
        )


def test_same_seed_gives_same_split_whatever_the_row_order():
    table = _with_duplicates(_table({"melanoma": 30, "nevus": 20}))
    shuffled = table.sample(frac=1.0, random_state=7).reset_index(drop=True)

    train_a, val_a = train_val_split(table, val_fraction=0.25, seed=3)
    train_b, val_b = train_val_split(shuffled, val_fraction=0.25, seed=3)

    pd.testing.assert_frame_equal(train_a, train_b)
    pd.testing.assert_frame_equal(val_a, val_b)


def test_different_seeds_give_different_splits():
    table = _table({"melanoma": 30, "nevus": 20})

    _, val_a = train_val_split(table, val_fraction=0.2, seed=0)
    _, val_b = train_val_split(table, val_fraction=0.2, seed=1)

    assert set(val_a["relpath"]) != set(val_b["relpath"])


def test_zero_fraction_gives_empty_validation_with_the_same_columns():
    table = _table({"melanoma": 5, "nevus": 3})

    train, val = train_val_split(table, val_fraction=0, seed=0)

    assert val.empty
    assert list(val.columns) == list(table.columns)
    assert len(train) == len(table)


def test_unreadable_rows_are_dropped_from_both_sides():
    table = _table({"melanoma": 10, "nevus": 10})
    table.loc[[0, 15], "error"] = "broken.jpg is empty (0 bytes); re-export or re-download it."

    train, val = train_val_split(table, val_fraction=0.3, seed=0)

    assert len(train) + len(val) == 18
    assert pd.concat([train, val])["error"].isna().all()


def test_outputs_are_sorted_with_a_fresh_index():
    train, val = train_val_split(_table({"melanoma": 12, "nevus": 8}), val_fraction=0.25, seed=0)

    for frame in (train, val):
        assert frame["relpath"].is_monotonic_increasing
        assert list(frame.index) == list(range(len(frame)))


@pytest.mark.parametrize("fraction", [-0.1, 0.9, 1.0, float("nan"), True, "0.2"])
def test_out_of_range_fraction_is_rejected_with_clear_message(fraction):
    with pytest.raises(ValueError, match="val_fraction must be a number from 0"):
        train_val_split(_table({"melanoma": 4}), val_fraction=fraction, seed=0)


def test_table_without_hashes_is_rejected_with_clear_message():
    table = _table({"melanoma": 4}).drop(columns=["content_hash"])

    with pytest.raises(ValueError, match="lacks the column"):
        train_val_split(table, val_fraction=0.2, seed=0)
