"""Intervals and paired comparisons of saved runs, and the gate's report, on tiny
synthetic run folders (no model needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skinlab.app.compare import RunRecord
from skinlab.app.run_stats import (
    PairingError,
    intervals_table,
    paired_runs,
    paired_table,
    recall_intervals_figure,
    run_intervals,
)
from skinlab.core import runs
from skinlab.core.manifest import Manifest
from skinlab.evaluate.familiarity import GateValidation, Rates
from skinlab.predict.ood_report import (
    far_warning,
    rates_text,
    score_figure,
    similar_images,
    summary_text,
)

CLASSES = ["melanoma", "nevus"]


def _record(tmp_path, run_id: str, right: float, seed: int = 0, split: str = "Test") -> RunRecord:
    folder = tmp_path / run_id
    folder.mkdir()
    rng = np.random.default_rng(seed)
    true = np.array(CLASSES * 50)
    wrong = rng.random(100) > right
    predicted = np.where(wrong, np.where(true == "nevus", "melanoma", "nevus"), true)
    pd.DataFrame(
        {
            "path": [f"Test/{t}/{i}.jpg" for i, t in enumerate(true)],
            "split": split,
            "true": true,
            "predicted": predicted,
            "confidence": 0.7,
        }
    ).to_csv(folder / runs.PREDICTIONS, index=False)
    return RunRecord(
        paths=runs.RunPaths(folder),
        summary=runs.RunSummary(run_id),
        history=pd.DataFrame(),
        metrics={},
        manifest=Manifest("custom", tuple(CLASSES), 64),
    )


def test_each_evaluated_run_gets_its_scores_with_intervals(tmp_path) -> None:
    good, bad = _record(tmp_path, "good", 0.95), _record(tmp_path, "bad", 0.6, seed=1)
    table = intervals_table([good, bad], "Test")
    assert list(table.index) == ["good", "bad"] and (table["Images"] == 100).all()
    low, high = map(float, table.loc["good", "Accuracy"].split("(")[1].rstrip(")").split("–"))
    assert low < float(table.loc["good", "Accuracy"].split()[0]) < high
    assert run_intervals(good, "Val") is None
    assert intervals_table([good], "Val").empty


def test_a_damaged_predictions_file_gives_no_interval_instead_of_an_error(tmp_path) -> None:
    record = _record(tmp_path, "broken", 0.9)
    record.paths.predictions.write_text("just,some\ntext")
    assert run_intervals(record, "Test") is None


def test_recall_intervals_figure_has_one_trace_per_run_with_error_bars(tmp_path) -> None:
    fig = recall_intervals_figure(
        [_record(tmp_path, "a", 0.9), _record(tmp_path, "b", 0.7)], "Test"
    )
    assert [t.name for t in fig.data] == ["a", "b"]
    assert all(t.error_y.array is not None and list(t.x) == CLASSES for t in fig.data)


def test_paired_runs_name_the_better_run_and_tabulate_the_differences(tmp_path) -> None:
    good, bad = _record(tmp_path, "good", 0.97), _record(tmp_path, "bad", 0.55, seed=2)
    result = paired_runs(good, bad, "Test")
    assert result["verdict"].startswith("good is better than bad")
    assert result["shared_images"] == 100 and result["run_a"] == "good"
    table = paired_table(result)
    assert list(table.index) == ["Accuracy", "Balanced accuracy", "Macro F1"]
    assert table.loc["Accuracy", "A minus B"].startswith("+")


def test_runs_without_shared_predictions_cannot_be_paired(tmp_path) -> None:
    test_run, val_run = _record(tmp_path, "t", 0.9), _record(tmp_path, "v", 0.9, split="Val")
    with pytest.raises(PairingError, match="no Test predictions"):
        paired_runs(test_run, val_run, "Test")
    other = _record(tmp_path, "o", 0.9)
    frame = pd.read_csv(other.paths.predictions)
    frame["path"] = "elsewhere/" + frame["path"]
    frame.to_csv(other.paths.predictions, index=False)
    with pytest.raises(PairingError, match="same Test images"):
        paired_runs(test_run, other, "Test")


def test_rates_and_summary_read_as_sentences_with_both_rates() -> None:
    text = rates_text(Rates(0.25, 0.031, 0.992))
    assert "0.25" in text and "3.1%" in text and "99.2%" in text
    summary = {
        "held_out_false_alarm": 0.03,
        "lesions": 700,
        "detection": 0.99,
        "negatives": 120,
        "detection_by_family": {"photo": 1.0, "texture": 0.95},
    }
    assert "3.0%" in summary_text(summary) and "photo 100%" in summary_text(summary)


def test_score_figure_overlays_both_groups_and_draws_the_threshold() -> None:
    validation = GateValidation(
        np.array([0.1, 0.2]), np.zeros(2, bool), np.array([0.9, 0.8, 0.7]), np.zeros(3, bool)
    )
    fig = score_figure(validation, 0.42)
    assert [t.name for t in fig.data] == ["validation lesions (2)", "non-dermoscopy images (3)"]
    assert fig.layout.shapes[0].x0 == 0.42


def test_a_far_nearest_neighbour_is_a_warning_and_a_near_one_is_not() -> None:
    assert far_warning([{"distance": 0.5}], 0.1).startswith("Even the most similar")
    assert far_warning([{"distance": 0.05}], 0.1) is None
    assert far_warning([], 0.1) is None


def test_similar_images_stay_inside_the_dataset_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SKINLAB_DATA_DIR", str(tmp_path))
    root = tmp_path / "data"
    (root / "Train" / "nevus").mkdir(parents=True)
    (root / "Train" / "nevus" / "a.jpg").write_bytes(b"x")
    (tmp_path / "secret.jpg").write_bytes(b"x")
    cases = [{"path": "Train/nevus/a.jpg"}, {"path": "../secret.jpg"}, {"path": "gone.jpg"}]
    found = similar_images(root, cases)
    assert found[0] == (root / "Train" / "nevus" / "a.jpg").resolve()
    assert found[1:] == [None, None]
    assert similar_images(None, cases) == [None, None, None]
