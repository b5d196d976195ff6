"""Cross-validation: hash-grouped stratified folds of Train, one real tiny run per fold."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pandas as pd
import pytest
from helpers import open_app_page

from skinlab.core import runs
from skinlab.core.config import RunConfig, preset
from skinlab.data.splits import fold_assignment, fold_split
from skinlab.train import cv


def _table(class_sizes: dict[str, int], duplicate_every: int = 4) -> pd.DataFrame:
    """Readable Train rows; every ``duplicate_every``-th image has a copy under another name."""
    rows = []
    for label, n in class_sizes.items():
        for i in range(n):
            row = {"relpath": f"Train/{label}/{i:03d}.jpg", "label": label, "error": None}
            rows.append(row | {"content_hash": f"{label}-{i}"})
            if i % duplicate_every == 0:
                rows.append(
                    row | {"relpath": f"Train/{label}/copy{i}.jpg", "content_hash": f"{label}-{i}"}
                )
    rows.append(
        {"relpath": "Train/a/bad.jpg", "label": "a", "error": "unreadable", "content_hash": "x"}
    )
    return pd.DataFrame(rows)


def test_folds_are_disjoint_cover_train_keep_copies_together_and_are_stratified() -> None:
    table = _table({"a": 30, "b": 15, "c": 9})
    readable = set(table.loc[table["error"].isna(), "relpath"])
    vals = [fold_split(table, folds=3, fold=k, seed=5) for k in (1, 2, 3)]
    held_out = [set(val["relpath"]) for _, val in vals]
    assert set().union(*held_out) == readable
    assert sum(map(len, held_out)) == len(readable)  # disjoint
    for (train, val), names in zip(vals, held_out, strict=True):
        assert set(train["relpath"]) == readable - names
        assert not set(train["content_hash"]) & set(val["content_hash"])
        share = val["label"].value_counts(normalize=True)
        assert abs(share["a"] - 30 / 54) < 0.12 and abs(share["c"] - 9 / 54) < 0.12
    assignment = fold_assignment(table, 3, seed=5)
    assert assignment.equals(fold_assignment(table.sample(frac=1, random_state=1), 3, seed=5))
    assert not assignment.equals(fold_assignment(table, 3, seed=6))


def test_more_folds_than_distinct_images_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least 4 distinct images"):
        fold_split(_table({"a": 2, "b": 1}, duplicate_every=1), folds=4, fold=1, seed=0)


def test_a_fold_outside_the_folds_is_rejected_by_the_config() -> None:
    with pytest.raises(ValueError, match="cv_fold"):
        RunConfig(cv_fold=3, cv_folds=2)
    assert RunConfig(cv_fold=2, cv_folds=2).cv_fold == 2


@pytest.fixture(scope="module")
def demo_with_corrupt_test(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo at scale 0.3 whose Test images are all replaced by garbage bytes."""
    from skinlab.data.demo import generate_demo_dataset

    source = generate_demo_dataset(tmp_path_factory.mktemp("cv") / "demo", scale=0.3)
    root = tmp_path_factory.mktemp("cv-corrupt") / "demo"
    import shutil

    shutil.copytree(source, root)
    for image in (root / "Test").rglob("*.*"):
        image.write_bytes(b"not an image at all")
    return root


@pytest.fixture(scope="module")
def cli_result(demo_with_corrupt_test: Path, session_dirs: dict[str, Path]) -> dict:
    """``python -m skinlab cv --folds 2 --json`` on the tiny demo, in process."""
    import contextlib
    import io

    from skinlab.cli import main

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(out):
        env.setenv("SKINLAB_MODELS_DIR", str(session_dirs["models"]))
        argv = ["cv", "--data", str(demo_with_corrupt_test), "--preset", "quick", "--folds", "2"]
        argv += ["--image-size", "32", "--epochs", "1", "--batch-size", "16", "--json"]
        assert main(argv) == 0
    return json.loads(out.getvalue())


def test_cli_json_has_each_fold_and_a_mean_and_sd_that_agree_with_them(cli_result: dict) -> None:
    assert set(cli_result) >= {"preset", "config", "folds", "mean", "sd"}
    assert cli_result["preset"] == "quick" and cli_result["config"]["image_size"] == 32
    folds = cli_result["folds"]
    assert [f["fold"] for f in folds] == [1, 2]
    for f in folds:
        assert set(f) == {"fold", "run_id", "accuracy", "balanced_accuracy", "macro_f1", "minutes"}
    for metric in cv.METRICS:
        values = [f[metric] for f in folds]
        assert cli_result["mean"][metric] == pytest.approx(statistics.fmean(values))
        assert cli_result["sd"][metric] == pytest.approx(statistics.stdev(values))


def test_each_fold_is_a_named_run_validated_on_its_fold_and_never_scored_on_test(
    cli_result: dict, session_dirs: dict[str, Path]
) -> None:
    val_names = []
    for f in cli_result["folds"]:
        paths = runs.RunPaths(session_dirs["models"] / f["run_id"])
        config = runs.read_config(paths)
        assert (config.cv_fold, config.cv_folds) == (f["fold"], 2)
        assert config.name == f"cv quick fold {f['fold']}/2"
        assert runs.read_status(paths).state == "finished"
        metrics = json.loads(paths.metrics.read_text())
        assert "test" not in metrics
        predictions = pd.read_csv(paths.predictions)
        assert set(predictions["split"]) == {"Val"}
        val_names.append(set(predictions["path"]))
    assert not val_names[0] & val_names[1]


def test_the_saved_result_is_found_as_the_latest_of_its_preset(
    cli_result: dict, session_dirs: dict[str, Path]
) -> None:
    latest = cv.latest_result("quick", session_dirs["models"])
    assert latest is not None and latest.to_dict() == cli_result
    assert cv.latest_result("transfer", session_dirs["models"]) is None
    table = cv.fold_table(latest)
    assert list(table["Fold"]) == ["1", "2", "mean ± sd"]
    assert " ± " in table["Balanced accuracy"].iloc[-1]


def test_the_runs_page_shows_the_saved_folds_and_their_mean_and_sd(
    cli_result: dict, demo_with_corrupt_test: Path
) -> None:
    at = open_app_page(demo_with_corrupt_test, "pages/runs.py")
    assert at.selectbox(key="runs_cv").value == 0
    table = next(t.value for t in at.dataframe if "Fold" in t.value.columns)
    assert list(table["Fold"]) == ["1", "2", "mean ± sd"]
    assert list(table["Run"][:2]) == [f["run_id"] for f in cli_result["folds"]]
    mean, sd = cli_result["mean"]["macro_f1"], cli_result["sd"]["macro_f1"]
    assert table["Macro-F1"].iloc[-1] == f"{mean:.3f} ± {sd:.3f}"
    assert any("epochs 1" in c.value and "Test was not used" in c.value for c in at.caption)


def test_the_train_page_shows_the_latest_cv_result_of_the_chosen_preset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_dataset_folder
) -> None:
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(tmp_path / "models"))
    root = make_dataset_folder({"Train": {"melanoma": 2, "nevus": 2}})
    fold = {"run_id": "r", "accuracy": 0.5, "macro_f1": 0.4, "minutes": 0.1}
    folds = (cv.FoldResult(fold=1, balanced_accuracy=0.6, **fold),)
    folds += (cv.FoldResult(fold=2, balanced_accuracy=0.7, **fold),)
    config = preset("quick", data_root="/data/isic", epochs=3).to_dict()
    for name, created in (("cpu-best", "20261101-100000"), ("quick", "20261102-100000")):
        cv.save_result(cv.CVResult(name, config, folds, created))
    at = open_app_page(root, "pages/train.py")
    shown = [c.value for c in at.caption if "Cross-validation of preset" in c.value]
    assert (
        len(shown) == 1 and "'quick'" in shown[0] and "balanced accuracy 0.650 ± 0.071" in shown[0]
    )
    assert "2 folds on isic, epochs 3;" in shown[0]
    at.button(key="preset_notebook").click().run()
    assert not [c for c in at.caption if "Cross-validation of preset" in c.value]
