"""Augmentation preview samples and class counts before/after imbalance treatment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skinlab.app import train_preview
from skinlab.data.discovery import discover


@pytest.fixture
def train_table(make_dataset_folder) -> pd.DataFrame:
    root = make_dataset_folder({"Train": {"melanoma": 2, "nevus": 8, "vascular lesion": 4}})
    return discover(root).images("Train")


def test_samples_take_one_image_per_class_first_in_a_stable_order(train_table) -> None:
    picks = train_preview.pick_samples(train_table, n=4)
    assert list(picks["label"][:3]) == ["melanoma", "nevus", "vascular lesion"]
    assert len(picks) == 4
    assert list(picks["caption"][:1]) == ["Melanoma"]
    shuffled = train_table.sample(frac=1, random_state=1)
    assert list(train_preview.pick_samples(shuffled, n=4)["path"]) == list(picks["path"])


def test_samples_decode_to_uint8_squares(train_table) -> None:
    images = train_preview.decode_samples(train_preview.pick_samples(train_table, n=2)["path"], 40)
    assert images.shape == (2, 40, 40, 3) and images.dtype == np.uint8


def test_augmented_views_change_pixels_repeatably_and_none_gives_nothing(train_table) -> None:
    images = train_preview.decode_samples(train_table["path"][:3], 32)
    views = train_preview.augmented_views(images, "strong", 1.0, seed=5, views=2)
    assert len(views) == 2 and views[0].shape == images.shape and views[0].dtype == np.uint8
    assert not np.array_equal(views[0], images) and not np.array_equal(views[0], views[1])
    again = train_preview.augmented_views(images, "strong", 1.0, seed=5, views=2)
    assert np.array_equal(again[0], views[0])
    assert train_preview.augmented_views(images, "none", 1.0, seed=5) == []


def test_counts_are_the_training_side_of_the_split(train_table) -> None:
    frame = train_preview.balance_counts(train_table, "none", val_fraction=0.25, seed=1)
    assert list(frame["class"]) == ["melanoma", "nevus", "vascular lesion"]
    assert frame["before"].tolist() == frame["after"].tolist()
    assert frame["before"].sum() < len(train_table)  # validation was held out
    everything = train_preview.balance_counts(train_table, "none", val_fraction=0.0, seed=1)
    assert everything["before"].tolist() == [2, 8, 4]


def test_oversampling_lifts_every_class_to_the_largest() -> None:
    table = _rows({"melanoma": 2, "nevus": 8, "vascular lesion": 4})
    frame = train_preview.balance_counts(table, "oversample", val_fraction=0.0, seed=1)
    assert frame["before"].tolist() == [2, 8, 4]
    assert frame["after"].tolist() == [8, 8, 8]


def test_class_weights_equalise_the_effective_counts() -> None:
    table = _rows({"melanoma": 2, "nevus": 8, "vascular lesion": 4})
    frame = train_preview.balance_counts(table, "class_weights", val_fraction=0.0, seed=1)
    assert frame["after"].tolist() == pytest.approx([14 / 3] * 3, abs=0.05)
    assert "weight" in train_preview.balance_note("class_weights")
    figure = train_preview.balance_figure(frame, "class_weights")
    assert [trace.name for trace in figure.data] == ["before", "after (effective, weighted)"]


def test_logit_adjustment_keeps_the_counts_and_says_the_loss_balances() -> None:
    table = _rows({"melanoma": 2, "nevus": 8, "vascular lesion": 4})
    frame = train_preview.balance_counts(table, "logit_adjustment", val_fraction=0.0, seed=1)
    assert frame["after"].tolist() == frame["before"].tolist() == [2, 8, 4]
    assert "as if the classes were balanced" in train_preview.balance_note("logit_adjustment")


def test_an_empty_table_gives_an_empty_frame() -> None:
    assert train_preview.balance_counts(_rows({}), "oversample", 0.2, 1).empty
    assert train_preview.pick_samples(_rows({})).empty


def _rows(counts: dict[str, int]) -> pd.DataFrame:
    """A discovery-like table without files (the counts need no pixels)."""
    rows = [
        {"relpath": f"Train/{label}/{i}.jpg", "label": label, "content_hash": f"{label}{i}"}
        for label, n in counts.items()
        for i in range(n)
    ]
    return pd.DataFrame(rows, columns=["relpath", "label", "content_hash"])
