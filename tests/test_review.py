"""The review queue: it finds exactly what the demo plants, ranks the serious reasons first,
reads cross-validation's out-of-fold probabilities, and on ISIC puts the label conflicts
first."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import SHARED_ISIC

from skinlab.cli import main
from skinlab.data.demo import generate_demo_dataset, planted_problems
from skinlab.data.discovery import discover
from skinlab.data.near_duplicates import near_duplicate_pairs
from skinlab.evaluate.out_of_fold import from_cross_validation
from skinlab.evaluate.review import REASONS, review_dataset
from skinlab.train import cv

SCALE = 0.5


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return generate_demo_dataset(tmp_path_factory.mktemp("review") / "demo", scale=SCALE)


@pytest.fixture(scope="module")
def queue(demo):
    return review_dataset(demo, cross_validation=False)


@pytest.fixture(scope="module")
def planted():
    return planted_problems(scale=SCALE)


def _first_reason(queue, reason: str) -> list[str]:
    return [c.relpath for c in queue.cards if c.reasons[0] == reason]


def test_label_conflict_cards_are_exactly_the_planted_conflicts(queue, planted) -> None:
    expected = {path for group in planted.label_conflicts for path in group}
    assert set(_first_reason(queue, "label_conflict")) == expected


def test_exact_duplicate_cards_are_exactly_the_planted_same_label_copies(queue, planted) -> None:
    expected = {path for group in planted.exact_duplicates for path in group}
    # At any rank: a copy can also look like another class (a melanoma drawn nevus-like).
    assert set(queue.relpaths("exact_duplicate")) == expected


def test_near_duplicates_are_exactly_the_planted_resaved_copies(queue, planted) -> None:
    expected = {path for pair in planted.near_duplicates for path in pair}
    assert set(queue.relpaths("near_duplicate")) == expected
    source, copy = planted.near_duplicates[0]
    card = next(c for c in queue.cards if c.relpath == copy)
    assert source in card.copies


def test_the_likeliest_label_errors_are_exactly_the_planted_mislabels(queue, planted) -> None:
    errors = _first_reason(queue, "label_error")
    assert set(errors[: len(planted.mislabelled)]) == set(planted.mislabelled)
    for relpath, drawn in planted.mislabelled.items():
        card = next(c for c in queue.cards if c.relpath == relpath)
        assert card.suggested == drawn  # the model sees the class it was drawn as
        assert card.probabilities[card.label] == card.label_quality < 0.2
        assert abs(sum(card.probabilities.values()) - 1) < 1e-6


def test_cards_are_ranked_by_their_most_serious_reason(queue) -> None:
    order = list(REASONS)
    ranks = [order.index(c.reasons[0]) for c in queue.cards]
    assert ranks == sorted(ranks) and ranks[0] == 0
    errors = [c.label_quality for c in queue.cards if c.reasons[0] == "label_error"]
    assert errors == sorted(errors)


def test_reviewing_writes_nothing_in_the_dataset(demo) -> None:
    before = sorted(p.relative_to(demo) for p in demo.rglob("*"))
    review_dataset(demo, cross_validation=False)
    assert sorted(p.relative_to(demo) for p in demo.rglob("*")) == before


def test_reviewing_forks_no_process_pool(demo, monkeypatch) -> None:
    # The Streamlit server is full of threads; a pool forked there can copy a held lock into
    # its children, which then wait forever (cleanlab forks one unless told n_jobs=1).
    import multiprocessing

    def no_pool(*args, **kwargs):
        raise AssertionError("the review forked a process pool")

    monkeypatch.setattr(multiprocessing, "Pool", no_pool)
    monkeypatch.setattr(multiprocessing.get_context(), "Pool", no_pool, raising=False)
    queue = review_dataset(demo, cross_validation=False)
    assert queue.relpaths("label_error")


def test_near_duplicate_pairs_ignore_different_pictures() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (5, 24, 24, 3), dtype=np.uint8)
    copy = np.clip(images[2].astype(int) + 6, 0, 255).astype(np.uint8)  # brighter
    pairs = near_duplicate_pairs(np.concatenate([images, copy[None]]))
    assert [(i, j) for i, j, _ in pairs] == [(2, 5)]


def _fake_cross_validation(models: Path, demo: Path, class_names) -> dict[str, list[float]]:
    """Two fold runs whose predictions.csv hold made-up Val probabilities for Train."""
    train = discover(demo).images("Train").reset_index(drop=True)
    rng = np.random.default_rng(1)
    expected, folds = {}, []
    for fold, rows in enumerate((train.iloc[::2], train.iloc[1::2]), start=1):
        run = models / f"run-fold{fold}"
        run.mkdir(parents=True)
        (run / "config.json").write_text("{}", encoding="utf-8")
        probs = rng.dirichlet(np.ones(len(class_names)), len(rows))
        frame = pd.DataFrame({"path": rows["relpath"].to_numpy(), "split": "Val"})
        for k, name in enumerate(class_names):
            frame[f"p_{name}"] = probs[:, k]
        test_row = frame.iloc[:1].assign(split="Test", path="Test/nevus/x.jpg")
        pd.concat([frame, test_row]).to_csv(run / "predictions.csv", index=False)
        expected.update(zip(rows["relpath"], probs.tolist(), strict=True))
        folds.append(cv.FoldResult(fold, run.name, 0.5, 0.5, 0.5, 1.0))
    config = {"data_root": str(demo)}
    cv.save_result(cv.CVResult("quick", config, tuple(folds), "20261127-120000"), models)
    return expected


def test_out_of_fold_probabilities_come_from_the_cv_folds_val_rows(demo, tmp_path) -> None:
    dataset = discover(demo)
    expected = _fake_cross_validation(tmp_path / "models", demo, dataset.class_names)
    oof = from_cross_validation(dataset, tmp_path / "models")
    assert oof is not None and "cross-validation" in oof.source
    assert set(oof.relpaths) == set(expected)  # every Train image once, no Test row
    frame = oof.frame()
    some = next(iter(expected))
    assert np.allclose(frame.loc[some].to_numpy(), expected[some])
    queue = review_dataset(demo, models_root=tmp_path / "models")
    assert queue.evidence == oof.source


def test_no_cross_validation_of_another_dataset_is_used(demo, tmp_path) -> None:
    other = tmp_path / "other"
    (other / "Train" / "nevus").mkdir(parents=True)
    folds = (cv.FoldResult(1, "gone", 0.5, 0.5, 0.5, 1.0),)
    cv.save_result(
        cv.CVResult("quick", {"data_root": str(other)}, folds, "20261127-120000"), tmp_path
    )
    assert from_cross_validation(discover(demo), tmp_path) is None


def test_cli_review_json_lists_the_cards_and_counts(demo, capsys) -> None:
    assert main(["review", str(demo), "--json", "--quick"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["counts"]) == set(REASONS)
    assert data["cards"][0]["reasons"][0] == "label_conflict"
    assert main(["review", str(demo), "--quick"]) == 0
    assert "Likely label error" in capsys.readouterr().out


@pytest.mark.skipif(not SHARED_ISIC.is_dir(), reason="the shared ISIC images are not here")
def test_on_isic_the_label_conflicts_come_first() -> None:
    queue = review_dataset(SHARED_ISIC, cross_validation=False)
    conflicts = _first_reason(queue, "label_conflict")
    assert len(conflicts) == 274  # 137 pictures, each filed under two classes
    assert [c.relpath for c in queue.cards[: len(conflicts)]] == conflicts
    assert queue.count("label_error") > 0
