"""A run's external scores, lesion-masked test and shortcut check, saved in its metrics.json
(issue 28), and the model card's sections that print them."""

from __future__ import annotations

import json
from pathlib import Path

from skinlab.core import runs
from skinlab.core.config import RunConfig
from skinlab.data.shortcuts import ShortcutScore
from skinlab.evaluate.saved_checks import (
    ExternalSummary,
    record_external,
    record_masked,
    record_shortcuts,
    saved_external,
    saved_masked,
    saved_shortcuts,
)

CLASSES = ["melanoma", "nevus", "pigmented benign keratosis"]


def _interval(estimate: float, low: float, high: float) -> dict[str, float]:
    return {"estimate": estimate, "low": low, "high": high}


def _result(folder: str, balanced: float = 0.35, images: int = 462) -> dict:
    """An ``evaluate_external`` result, as its contract shapes it."""
    return {
        "run_id": "20261127-174611",
        "split": "External",
        "data_root": f"/data/{folder}",
        "tta": 1,
        "intervals": {
            "balanced_accuracy": _interval(balanced, balanced - 0.04, balanced + 0.04),
            "accuracy": _interval(0.5, 0.45, 0.55),
        },
        "external": {
            "n_scored": images,
            "layout": "HAM10000 metadata",
            "excluded": {"same ISIC id": 3, "same bytes": 1},
            "skipped": {"no class (UNK)": 2},
            "classes_absent": ["dermatofibroma"],
            "collections": {"HAM10000": images},
            "melanoma": {
                "sensitivity": _interval(0.04, 0.0, 0.1),
                "specificity": _interval(0.97, 0.95, 0.99),
            },
            "internal": {
                "split": "validation",
                "n": 300,
                "balanced_accuracy": 0.66,
                "accuracy": 0.7,
                "melanoma_sensitivity": 0.5,
            },
            "drop": "Balanced accuracy falls from 0.66 on the run's own validation images ...",
            "notes": [],
        },
    }


def _run(tmp_path: Path) -> runs.RunPaths:
    paths = runs.new_run(RunConfig(data_root=str(tmp_path / "demo")), root=tmp_path / "models")
    paths.metrics.write_text(json.dumps({"test": {"n": 90, "balanced_accuracy": 0.5}}))
    return paths


SENTENCE = (
    "On ham10000-external (462 images, from HAM10000) balanced accuracy 0.35 [0.31, 0.39] "
    "against 0.66 on its own validation images; melanoma sensitivity 0.04."
)


def test_an_external_summary_is_saved_beside_the_other_metrics_newest_set_first(
    tmp_path: Path,
) -> None:
    paths = _run(tmp_path)

    record_external(paths, _result("ham10000-external", balanced=0.30))
    record_external(paths, _result("pad-ufes-20", images=50))
    record_external(paths, _result("ham10000-external"))  # scored again: replaces its entry

    metrics = json.loads(paths.metrics.read_text())
    assert metrics["test"] == {"n": 90, "balanced_accuracy": 0.5}
    saved = saved_external(metrics)
    assert [s.name for s in saved] == ["ham10000-external", "pad-ufes-20"]
    first = saved[0]
    assert first.balanced_accuracy.estimate == 0.35 and (first.excluded, first.skipped) == (4, 2)
    assert first.classes_absent == ("dermatofibroma",)
    assert first.sentence == SENTENCE


def test_a_malformed_saved_entry_is_skipped_not_raised(tmp_path: Path) -> None:
    paths = _run(tmp_path)
    record_external(paths, _result("ham10000-external"))
    metrics = json.loads(paths.metrics.read_text())
    metrics["external"].append({"name": "half", "balanced_accuracy": "high"})
    metrics["lesion_masked"] = ["not", "a", "summary"]

    assert [s.name for s in saved_external(metrics)] == ["ham10000-external"]
    assert saved_masked(metrics) is None
    assert saved_external({"external": "nonsense"}) == []


def test_a_run_without_its_own_score_says_so_in_the_sentence() -> None:
    result = _result("clinic")
    result["external"]["internal"] = dict.fromkeys(result["external"]["internal"])
    result["external"]["melanoma"] = None

    sentence = ExternalSummary.from_result(result).sentence

    assert sentence.startswith("On clinic (462 images, from HAM10000) balanced accuracy 0.35")
    assert "no score of its own" in sentence and "melanoma" not in sentence


def test_the_model_card_prints_the_saved_external_sets_and_masked_test(tmp_path: Path) -> None:
    from skinlab.evaluate.masking import MaskedTest
    from skinlab.predict.modelcard import model_card

    paths = _run(tmp_path)
    manifest = {
        "backbone": "custom",
        "class_names": CLASSES,
        "preprocessing": "none",
        "model_file": "model.keras",
        "format": "keras",
        "input_shape": [None, 32, 32, 3],
    }
    assert "Other collections" not in model_card(paths, manifest)
    assert "- **No external validation.**" in model_card(paths, manifest)

    record_external(paths, _result("ham10000-external"))
    masked = MaskedTest("r", "Test", 90, 1 / 3, 0.6, 0.55, 0.4, "Well above chance ... context.")
    record_masked(paths, masked)
    card = model_card(paths, manifest)

    assert "## Other collections" in card and f"- {SENTENCE}" in card
    assert "## Lesion-masked test" in card and "Well above chance ... context." in card
    assert "- **No external validation.**" not in card
    assert json.loads(paths.metrics.read_text())["lesion_masked"]["uses_context"] is True


#: A shortcut check of a run's training rows: the class told from the images' statistics well
#: above chance, the collection too.
SHORTCUTS = ShortcutScore(
    images=120,
    classes=9,
    folds=5,
    class_balanced_accuracy=0.46,
    class_chance=1 / 9,
    collections=2,
    collection_accuracy=0.92,
    collection_base_rate=0.64,
    explanation="We measured 20 numbers per image ...",
)


def test_a_shortcut_check_is_saved_beside_the_other_metrics_and_read_back(tmp_path: Path) -> None:
    paths = _run(tmp_path)

    summary = record_shortcuts(paths, SHORTCUTS)

    metrics = json.loads(paths.metrics.read_text())
    assert metrics["test"] == {"n": 90, "balanced_accuracy": 0.5}
    assert saved_shortcuts(metrics) == summary
    assert (summary.images, summary.class_balanced_accuracy) == (120, 0.46)
    assert (summary.collection_accuracy, summary.collection_base_rate) == (0.92, 0.64)
    assert summary.label_predictable and summary.scored
    assert summary.sentence == (
        "On the 120 images the run trained and validated on, 20 numbers that never look at the "
        "lesion (colour of the image and its border, darkness of its corners, size) predict the "
        "class with balanced accuracy 0.46 (chance 0.11) and the collection with accuracy 0.92 "
        "(always guessing the commonest 0.64): the labels can be told apart by where the images "
        "came from."
    )


def test_a_malformed_saved_shortcut_check_is_skipped_not_raised(tmp_path: Path) -> None:
    paths = _run(tmp_path)
    record_shortcuts(paths, SHORTCUTS)
    metrics = json.loads(paths.metrics.read_text())

    for broken in (["not", "a", "check"], {"images": 120}, {**metrics["shortcuts"], "images": "x"}):
        assert saved_shortcuts({**metrics, "shortcuts": broken}) is None
    assert saved_shortcuts({}) is None


def test_a_check_near_chance_without_collections_says_so() -> None:
    score = ShortcutScore(60, 3, 5, 0.36, 1 / 3, 1, None, None, "...")

    assert "collection" not in score.sentence
    assert score.sentence.endswith(
        "(chance 0.33): close to chance, so these simple shortcuts give the labels little away."
    )


def test_the_model_card_prints_the_saved_shortcut_check_next_to_the_masked_test(
    tmp_path: Path,
) -> None:
    from skinlab.evaluate.masking import MaskedTest
    from skinlab.predict.modelcard import model_card

    paths = _run(tmp_path)
    manifest = {
        "backbone": "custom",
        "class_names": CLASSES,
        "preprocessing": "none",
        "model_file": "model.keras",
        "format": "keras",
        "input_shape": [None, 32, 32, 3],
    }
    assert "Shortcuts in the training data" not in model_card(paths, manifest)

    summary = record_shortcuts(paths, SHORTCUTS)
    card = model_card(paths, manifest)
    assert f"## Shortcuts in the training data\n\n{summary.sentence}\n" in card
    assert "## Lesion-masked test" not in card

    masked = MaskedTest("r", "Test", 90, 1 / 3, 0.6, 0.55, 0.4, "Well above chance ... context.")
    record_masked(paths, masked)
    card = model_card(paths, manifest)
    shortcuts, lesion = card.index("## Shortcuts in the training"), card.index("## Lesion-masked")
    assert shortcuts < lesion < card.index("## How to use")
