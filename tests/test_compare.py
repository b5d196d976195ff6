"""Unit tests of skinlab.app.compare on hand-written run folders (no training)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import image_bytes

from skinlab.app import compare
from skinlab.core import runs
from skinlab.core.atomic import RunFileError, write_json
from skinlab.core.config import RunConfig

CLASSES = ["melanoma", "nevus"]


def _scores(balanced: float, sensitivity: float, matrix: list[list[int]]) -> dict:
    return {
        "n": int(np.sum(matrix)),
        "class_names": CLASSES,
        "accuracy": balanced + 0.05,
        "balanced_accuracy": balanced,
        "macro_f1": balanced - 0.05,
        "per_class": {
            "melanoma": {"recall": sensitivity, "support": sum(matrix[0])},
            "nevus": {"recall": 0.5, "support": sum(matrix[1])},
        },
        "confusion_matrix": matrix,
        "melanoma": {"sensitivity": sensitivity, "specificity": 0.5},
    }


def _bins(confidence: float, accuracy: float) -> list[dict]:
    return [
        {"lower": 0.0, "upper": 0.5, "count": 0, "confidence": None, "accuracy": None},
        {"lower": 0.5, "upper": 1.0, "count": 4, "confidence": confidence, "accuracy": accuracy},
    ]


def _run(
    models: Path,
    run_id: str,
    *,
    balanced: float = 0.6,
    ece: float = 0.1,
    state: str = "finished",
    evaluated: bool = True,
    data_root: Path | None = None,
) -> runs.RunPaths:
    """A run folder as training leaves it: config, status, history, metrics, predictions."""
    paths = runs.RunPaths(models / run_id)
    paths.root.mkdir(parents=True)
    write_json(paths.config, RunConfig(data_root=str(data_root or models), epochs=2).to_dict())
    runs.write_status(paths, runs.RunStatus(state, epoch=2, total_epochs=2))
    for epoch in (1, 2):
        runs.append_history(
            paths,
            {"epoch": epoch, "loss": 1 / epoch, "accuracy": 0.5, "val_loss": 1.2 / epoch}
            | {"val_accuracy": 0.4 + epoch / 10, "phase": "train"},
        )
    if not evaluated:
        return paths
    test = _scores(balanced, 0.75, [[3, 1], [2, 2]])
    clean = _scores(balanced - 0.1, 0.5, [[1, 1], [1, 1]])
    write_json(
        paths.metrics,
        {
            "validation": _scores(balanced + 0.1, 1.0, [[4, 0], [1, 3]]),
            "test": test | {"clean": clean, "excluded": 3},
            "calibration": {
                "temperature": 1.5,
                "ece_before": 0.2,
                "ece_after": ece,
                "reliability_before": _bins(0.9, 0.6),
                "reliability_after": _bins(0.7, 0.6),
            },
            "best_epoch": 2,
        },
    )
    write_json(
        paths.manifest,
        {
            "backbone": "custom",
            "image_size": 64,
            "class_names": CLASSES,
            "data_root": str(data_root),
        },
    )
    pd.DataFrame(
        {
            "path": [
                "Test/melanoma/a.jpg",
                "Test/melanoma/b.jpg",
                "Test/nevus/c.jpg",
                "Test/nevus/d.jpg",
            ]
            + ["Train/nevus/e.jpg"],
            "split": ["Test", "Test", "Test", "Test", "Val"],
            "true": ["melanoma", "melanoma", "nevus", "nevus", "nevus"],
            "predicted": ["nevus", "melanoma", "melanoma", "melanoma", "melanoma"],
            "correct": [False, True, False, False, False],
            "confidence": [0.6, 0.9, 0.55, 0.8, 0.7],
        }
    ).to_csv(paths.predictions, index=False)
    return paths


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models folder of this test's own, so run ids resolve in it."""
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


def test_metrics_table_says_which_dataset_version_a_run_trained_on(models: Path) -> None:
    paths = _run(models, "20250101-000000-custom-bbbbbb")
    manifest = json.loads(paths.manifest.read_text())
    paths.manifest.write_text(json.dumps({**manifest, "data_version": "03e3e9d6"}))
    table = compare.metrics_table([compare.load_run(paths.root)], "Test")
    assert table.iloc[0]["Data version"] == "03e3e9d6"


def test_metrics_table_reads_the_chosen_split_and_the_clean_test_score(models: Path) -> None:
    record = compare.load_run(_run(models, "20250101-000000-custom-aaaaaa").root)
    test = compare.metrics_table([record], "Test").iloc[0]
    assert test["Balanced accuracy"] == pytest.approx(0.6)
    assert test["Melanoma sensitivity"] == pytest.approx(0.75)
    assert test["Clean test balanced accuracy"] == pytest.approx(0.5)
    assert test["Excluded from clean test"] == 3
    assert test["ECE"] == pytest.approx(0.1)
    assert test["Image size"] == 64 and test["Best epoch"] == 2 and test["Epochs"] == "2/2"
    assert test["Data version"] == "raw"  # a run of before issue 17's versions: the folder
    val = compare.metrics_table([record], "Val").iloc[0]
    assert val["Balanced accuracy"] == pytest.approx(0.7)
    assert val["Clean test balanced accuracy"] == pytest.approx(0.5)  # always the Test split


def test_clean_test_score_is_the_test_score_when_nothing_was_excluded(models: Path) -> None:
    paths = _run(models, "20250101-000000-custom-aaaaaa")
    metrics = json.loads(paths.metrics.read_text())
    metrics["test"].update(clean=None, excluded=0)
    write_json(paths.metrics, metrics)
    row = compare.metrics_table([compare.load_run(paths.root)], "Test").iloc[0]
    assert row["Clean test balanced accuracy"] == pytest.approx(0.6)
    assert row["Excluded from clean test"] == 0


def test_run_still_training_has_a_row_with_its_curves_but_no_scores(models: Path) -> None:
    paths = _run(models, "20250101-000000-custom-bbbbbb", state="running", evaluated=False)
    record = compare.load_run(paths.root)
    row = compare.metrics_table([record], "Test").iloc[0]
    assert row["State"] == "running" and math.isnan(row["Balanced accuracy"])
    assert row["Best val accuracy"] == pytest.approx(0.6)
    assert row["Best epoch"] == 2  # from the history: lowest validation loss
    assert compare.confusion(record, "Test") is None
    assert record.problems == ()


def test_malformed_files_become_problems_not_exceptions(models: Path) -> None:
    paths = _run(models, "20250101-000000-custom-cccccc")
    paths.manifest.write_text("[1, 2]")
    paths.history.write_bytes(b"\xff\xfe\x00garbage")
    record = compare.load_run(paths.root)
    assert len(record.problems) == 2
    assert any("does not hold a JSON object" in p for p in record.problems)
    assert record.manifest is None and record.history.empty
    assert compare.metrics_table([record], "Test")["Balanced accuracy"].iloc[0] == pytest.approx(
        0.6
    )


@pytest.mark.parametrize(
    "change",
    [
        {"validation": {"confusion_matrix": "oops", "class_names": CLASSES}},
        {"test": {"melanoma": "not a dict"}},
        {"calibration": {"reliability_after": [{"count": 3}]}},
        {"validation": {"confusion_matrix": [[1, 2, 3]], "class_names": CLASSES}},
    ],
)
def test_metrics_of_another_shape_are_left_out_with_a_reason(models: Path, change: dict) -> None:
    paths = _run(models, "20250101-000000-custom-dddddd")
    write_json(paths.metrics, json.loads(paths.metrics.read_text()) | change)
    record = compare.load_run(paths.root)
    assert record.metrics == {} and len(record.problems) == 1
    assert "not in the shape skinlab writes" in record.problems[0]
    assert compare.confusion(record, "Test") is None


def test_best_run_of_each_score_is_picked_with_ece_lower_is_better(models: Path) -> None:
    records = compare.load_runs(
        [
            _run(models, "20250101-000000-custom-aaaaaa", balanced=0.8, ece=0.3).root.name,
            _run(models, "20250101-000001-custom-bbbbbb", balanced=0.6, ece=0.05).root.name,
            "20250101-000002-custom-gone00",  # deleted meanwhile: skipped
        ]
    )
    assert len(records) == 2
    table = compare.metrics_table(records, "Test")
    best = compare.best_in_column(table)
    assert best["Balanced accuracy"] == records[0].label
    assert best["ECE"] == records[1].label
    assert "Melanoma sensitivity" not in best  # a tie says nothing
    html = compare.styled_metrics(table).to_html()
    assert "#d5f5e3" in html and "0.800" in html


def test_default_selection_is_the_newest_finished_runs() -> None:
    summaries = [
        runs.RunSummary("e", state="running"),
        runs.RunSummary("d", state="finished"),
        runs.RunSummary("c", state="broken"),
        runs.RunSummary("b", state="finished"),
        runs.RunSummary("a", state="finished"),
    ]
    assert compare.default_selection(summaries, limit=2) == ["d", "b"]
    assert compare.default_selection(summaries[:1] + summaries[2:3]) == ["e"]
    assert compare.default_selection([runs.RunSummary("x")]) == []


def test_run_label_keeps_named_runs_unique() -> None:
    assert runs.RunSummary("20250101-000000-custom-abcdef", name="base").label == ("base (abcdef)")
    assert runs.RunSummary("r1", name="r1").label == "r1"
    assert runs.RunSummary("r1").label == "r1"


def test_confusion_figure_shows_counts_or_row_shares_and_clickable_cells() -> None:
    counts = np.array([[3.0, 1.0], [0.0, 0.0]])
    fig = compare.confusion_figure(counts, CLASSES)
    heatmap, cells = fig.data
    assert list(heatmap.text[0]) == ["3", "1"]
    shares = compare.confusion_figure(counts, CLASSES, normalise=True).data[0]
    np.testing.assert_allclose(shares.z, [[0.75, 0.25], [0.0, 0.0]])  # an empty row stays 0
    assert list(shares.text[0]) == ["75%", "25%"]
    # One marker per cell: x is the predicted class and y the true class.
    assert list(zip(cells.y, cells.x, strict=True)) == [
        ("melanoma", "melanoma"),
        ("melanoma", "nevus"),
        ("nevus", "melanoma"),
        ("nevus", "nevus"),
    ]


def test_clicked_cell_reads_true_and_predicted_from_the_selection() -> None:
    event = {"selection": {"points": [{"x": "nevus", "y": "melanoma", "curve_number": 1}]}}
    assert compare.clicked_cell(event) == ("melanoma", "nevus")
    assert compare.clicked_cell({"selection": {"points": []}}) is None
    assert compare.clicked_cell(None) is None


def test_reliability_figure_draws_non_empty_bins_before_and_after(models: Path) -> None:
    evaluated = compare.load_run(_run(models, "20250101-000000-custom-aaaaaa").root)
    running = compare.load_run(_run(models, "20250101-000001-custom-bbbbbb", evaluated=False).root)
    fig = compare.reliability_figure([evaluated, running])
    names = [trace.name for trace in fig.data]
    assert names[0] == "perfect calibration" and len(names) == 3
    assert "before (ECE 0.200)" in names[1] and "after (T=1.50, ECE 0.100)" in names[2]
    assert fig.data[2].x == (0.7,) and fig.data[2].y == (0.6,)  # the empty bin is left out


def test_reliability_line_breaks_at_empty_bins_instead_of_crossing_them() -> None:
    def row(confidence: float | None, count: int) -> dict:
        accuracy = None if confidence is None else 0.0
        return {"count": count, "confidence": confidence, "accuracy": accuracy}

    table = [row(None, 0), row(0.35, 1), row(None, 0), row(None, 0), row(0.72, 3), row(0.81, 5)]
    record = compare.RunRecord(
        paths=runs.RunPaths(Path("20250101-000000-custom-aaaaaa")),
        summary=runs.RunSummary("20250101-000000-custom-aaaaaa"),
        history=pd.DataFrame({"epoch": []}),
        metrics={"calibration": {"reliability_after": table}},
        manifest=None,
    )
    trace = compare.reliability_figure([record]).data[1]
    assert trace.x == (0.35, None, 0.72, 0.81) and trace.connectgaps is False
    sizes = trace.marker.size
    assert sizes[0] < sizes[-1]  # one image is a small dot, five a big one


def test_per_class_recall_and_curves_cover_every_run(models: Path) -> None:
    records = [
        compare.load_run(_run(models, "20250101-000000-custom-aaaaaa").root),
        compare.load_run(_run(models, "20250101-000001-custom-bbbbbb", evaluated=False).root),
    ]
    recall = compare.per_class_recall(records, "Test")
    assert list(recall["Class"]) == CLASSES and list(recall["Recall"]) == [0.75, 0.5]
    assert len(compare.recall_figure(recall).data) == 1
    fig = compare.curves_figure(records, "accuracy", include_train=True)
    assert len(fig.data) == 4  # two runs x (validation, training)
    train = [t for t in fig.data if t.name.endswith("(train)")]
    assert all(t.line.dash == "dot" for t in train)
    colour = {t.name: t.line.color for t in fig.data}
    assert colour[records[0].label] == colour[f"{records[0].label} (train)"]
    assert colour[records[1].label] == compare.colours(records)[records[1].label]


def test_examples_of_a_cell_are_mistakes_most_confident_first(models: Path) -> None:
    record = compare.load_run(_run(models, "r", data_root=Path("/data/isic")).root)
    mistakes = compare.examples(record, "Test")
    assert list(mistakes["path"]) == ["Test/nevus/d.jpg", "Test/melanoma/a.jpg", "Test/nevus/c.jpg"]
    assert mistakes["image"][0] == "/data/isic/Test/nevus/d.jpg"
    cell = compare.examples(record, "Test", true="nevus", predicted="melanoma")
    assert list(cell["path"]) == ["Test/nevus/d.jpg", "Test/nevus/c.jpg"]
    diagonal = compare.examples(record, "Test", true="melanoma", predicted="melanoma")
    assert list(diagonal["path"]) == ["Test/melanoma/b.jpg"]  # a diagonal cell: the correct ones
    assert list(compare.examples(record, "Val")["path"]) == ["Train/nevus/e.jpg"]


def test_malformed_predictions_raise_one_sentence(models: Path) -> None:
    paths = _run(models, "20250101-000000-custom-aaaaaa")
    paths.predictions.write_text("just,a\nwrong,table\n")
    with pytest.raises(RunFileError, match="lacks the columns"):
        compare.examples(compare.load_run(paths.root), "Test")
    paths.predictions.unlink()
    assert compare.examples(compare.load_run(paths.root), "Test").empty


def test_gallery_counts_images_that_are_gone(models: Path, tmp_path: Path) -> None:
    root = tmp_path / "isic"
    for relpath in ("Test/nevus/d.jpg", "Test/melanoma/a.jpg"):
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_bytes(image_bytes(size=(300, 200)))
    record = compare.load_run(_run(models, "r", data_root=root).root)
    images, captions, unreadable = compare.gallery(compare.examples(record, "Test"))
    assert len(images) == 2 and unreadable == 1  # Test/nevus/c.jpg is not on disk
    assert captions[0] == "nevus → melanoma (80%)"
    assert compare.gallery(compare.examples(record, "Test"), limit=1)[2] == 0


def test_thumbnail_is_small_and_none_for_unreadable_files(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.jpg", tmp_path / "bad.jpg"
    good.write_bytes(image_bytes(size=(400, 300)))
    bad.write_bytes(b"not an image")
    image = compare.thumbnail(good, size=100)
    assert image is not None and max(image.size) <= 100 and image.mode == "RGB"
    assert compare.thumbnail(bad) is None
    assert compare.thumbnail(tmp_path / "missing.jpg") is None
