"""Run files within their byte caps that would cost minutes and gigabytes to use (issue 29):
every reader bounds what it builds (columns, rows, classes, matrix sides, numbers, names,
array shapes) before it builds it, and refuses the rest in one sentence."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skinlab.app import compare
from skinlab.core import runs
from skinlab.core.atomic import RunFileError, read_json, write_json
from skinlab.core.config import RunConfig
from skinlab.core.errors import SkinlabError
from skinlab.evaluate import familiarity
from skinlab.evaluate.familiarity import FamiliarityFileError, load_gate, save_gate
from skinlab.train import cv

CLASSES = ["melanoma", "nevus"]


def assert_one_sentence(text: str) -> None:
    assert text.endswith(".") and "\n" not in text and "Traceback" not in text, text
    assert not re.search(r"[.!?]\s+[A-Z]", text), f"more than one sentence: {text}"


class Hung(Exception):
    """Not an OSError (as TimeoutError is), which the readers would catch as a bad file."""


@contextlib.contextmanager
def at_most(seconds: int) -> Iterator[None]:
    """Fail with :class:`Hung` instead of hanging (a read of a pipe never ends)."""

    def expire(signum, frame):
        raise Hung(f"still reading after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


def _run(models: Path, run_id: str = "20250101-000000-custom-aaaaaa", **config) -> runs.RunPaths:
    """A finished, evaluated run folder (config, status, history, metrics, manifest)."""
    paths = runs.RunPaths(models / run_id)
    paths.root.mkdir(parents=True)
    write_json(paths.config, RunConfig(data_root=str(models), **config).to_dict())
    runs.write_status(paths, runs.RunStatus("finished", epoch=1, total_epochs=1))
    runs.append_history(paths, {"epoch": 1, "val_accuracy": 0.5, "phase": "train"})
    scores = {"class_names": CLASSES, "confusion_matrix": [[1, 0], [0, 1]], "accuracy": 1.0}
    write_json(paths.metrics, {"validation": scores, "test": scores})
    manifest = {"backbone": "custom", "image_size": 64, "class_names": CLASSES}
    write_json(paths.manifest, manifest)
    return paths


def _count_calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[int]:
    calls: list[int] = []
    real = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


# -- history.csv and predictions.csv: columns and rows are counted before pandas parses ----


def test_a_history_header_of_many_columns_is_refused_before_pandas_parses_it(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _run(models)
    paths.history.write_bytes(b",".join(b"c%d" % i for i in range(200_000)) + b"\n1\n")
    parsed = _count_calls(monkeypatch, pd, "read_csv")
    with pytest.raises(RunFileError) as info:
        runs.read_history(paths)
    assert "200,000 columns" in str(info.value)
    assert_one_sentence(str(info.value))
    assert parsed == []  # refused from the header's bytes, not after building 200,000 columns
    summary = runs.run_summary(paths)
    assert summary.state == "broken" and "history.csv" in (summary.error or "")


def test_a_history_of_more_rows_than_epochs_can_be_is_refused(models: Path) -> None:
    paths = _run(models)
    header = ",".join(runs.HISTORY_COLUMNS).encode()
    paths.history.write_bytes(header + b"\r\n" + b"1,1,1,1,1,1,1,train\r\n" * 200_000)
    with pytest.raises(RunFileError, match="rows") as info:
        runs.read_history(paths)
    assert_one_sentence(str(info.value))


def test_a_history_of_lone_carriage_returns_counts_its_rows_too(models: Path) -> None:
    paths = _run(models)
    header = ",".join(runs.HISTORY_COLUMNS).encode()
    paths.history.write_bytes(header + b"\r" + b"1,1,1,1,1,1,1,train\r" * 200_000)
    with pytest.raises(RunFileError, match="rows"):
        runs.read_history(paths)


def test_the_history_skinlab_writes_still_reads(models: Path) -> None:
    paths = _run(models)
    for epoch in range(2, 200):
        runs.append_history(paths, {"epoch": epoch, "val_accuracy": 0.5, "phase": "train"})
    assert len(runs.read_history(paths)) == 199


def test_a_predictions_table_of_many_columns_is_refused_and_its_gallery_says_so(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _run(models)
    columns = ["path", "split", "true", "predicted", "confidence"]
    columns += [f"p_{i}" for i in range(100_000)]
    paths.predictions.write_text(",".join(columns) + "\n")
    record = compare.load_run(paths.root)
    parsed = _count_calls(monkeypatch, pd, "read_csv")
    with pytest.raises(RunFileError, match="100,005 columns") as info:
        compare.examples(record, "Test")
    assert_one_sentence(str(info.value))
    assert parsed == []


# -- metrics.json: the per-class parts are bounded before a figure is built -----------------


def test_a_thousand_class_confusion_matrix_is_refused_before_any_figure_is_built(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _run(models)
    names = [f"class {i}" for i in range(1000)]
    matrix = np.zeros((1000, 1000), int).tolist()
    scores = {"class_names": names, "confusion_matrix": matrix, "per_class": {}}
    paths.metrics.write_text(json.dumps({"test": scores}, separators=(",", ":")))  # 2 MB
    assert isinstance(read_json(paths.metrics), dict)  # within the byte cap: cost, not size
    built = _count_calls(monkeypatch, compare, "per_class_recall")
    record = compare.load_run(paths.root)
    assert record.metrics == {} and built == []  # nothing per class was built
    assert any("more than" in p and "classes" in p for p in record.problems)
    assert_one_sentence(record.problems[-1])
    assert compare.confusion(record, "Test") is None


def test_a_confusion_matrix_that_is_not_one_row_and_column_a_class_is_refused(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _run(models)
    ragged = {"class_names": CLASSES, "confusion_matrix": [[1, 0], [0] * 50_000]}
    write_json(paths.metrics, {"validation": ragged})
    built = _count_calls(monkeypatch, compare, "per_class_recall")
    record = compare.load_run(paths.root)
    assert record.metrics == {} and built == []
    assert "confusion matrix" in record.problems[-1]


# -- whole numbers past 64 bits in any JSON skinlab reads -----------------------------------


@pytest.mark.parametrize("digits", [5000, 400, 20])
def test_a_huge_whole_number_in_a_json_file_is_one_sentence(models: Path, digits: int) -> None:
    paths = _run(models)
    status = json.loads(paths.status.read_text())
    paths.status.write_text(json.dumps(status)[:-1] + f', "heartbeat": {"9" * digits}}}')
    with pytest.raises(RunFileError, match="whole number") as info:
        runs.read_status(paths)
    assert_one_sentence(str(info.value))
    summary = runs.run_summary(paths)
    assert summary.state == "broken" and "whole number" in (summary.error or "")


def test_settings_and_standby_records_with_a_huge_number_read_as_errors(tmp_path: Path) -> None:
    from skinlab.app import settings

    settings.settings_file().write_text('{"active_model": ' + "7" * 5000 + "}")
    assert settings.load() == {}
    record = tmp_path / ".standby.json"
    record.write_text('{"pid": ' + "1" * 5000 + ', "start": 1}')
    with pytest.raises(RunFileError, match="whole number"):
        read_json(record)


# -- models/cv/*.json: read as any run file is ----------------------------------------------


def test_cross_validation_results_that_are_pipes_or_nest_deeply_are_skipped(
    models: Path,
) -> None:
    folder = cv.results_dir()
    folder.mkdir(parents=True)
    os.mkfifo(folder / "20260101-000000-pipe.json")
    (folder / "20260101-000001-deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "20260101-000002-huge.json").write_text('{"folds": ' + "1" * 5000 + "}")
    with at_most(20):
        assert cv.load_results() == []


def test_a_cross_validation_result_of_too_many_folds_is_skipped(models: Path) -> None:
    fold = {"fold": 1, "run_id": "r", "minutes": 1.0}
    fold |= {"accuracy": 0.5, "balanced_accuracy": 0.5, "macro_f1": 0.5}
    data = {"preset": "quick", "config": {}, "created": "20260101-000000"}
    write_json(cv.results_dir() / "a.json", data | {"folds": [fold] * 5000})
    write_json(cv.results_dir() / "b.json", data | {"folds": [fold]})
    assert [len(r.folds) for r in cv.load_results()] == [1]


# -- the mistakes gallery opens images only as regular files --------------------------------


def test_a_predictions_row_naming_a_pipe_in_the_models_folder_does_not_hang_the_gallery(
    models: Path,
) -> None:
    paths = _run(models)
    os.mkfifo(paths.root / "trap.jpg")
    row = {"split": "Test", "true": "melanoma", "predicted": "nevus", "confidence": 0.9}
    pd.DataFrame([{"path": str(paths.root / "trap.jpg"), **row}]).to_csv(
        paths.predictions, index=False
    )
    record = compare.load_run(paths.root)
    with at_most(20):
        images, _, unreadable = compare.gallery(compare.examples(record, "Test"))
    assert images == [] and unreadable == 1


# -- names ------------------------------------------------------------------------------------


def test_a_rename_past_the_name_bound_is_refused_in_one_sentence(models: Path) -> None:
    from skinlab.jobs import manager

    paths = _run(models, name="baseline")
    with pytest.raises(SkinlabError) as info:
        manager.rename_run(paths.root, "x" * 4_300_000)
    assert_one_sentence(str(info.value))
    assert runs.read_config(paths).name == "baseline"


def test_a_config_already_holding_a_huge_name_reads_and_can_be_renamed_back(
    models: Path,
) -> None:
    from skinlab.jobs import manager

    paths = _run(models)
    config = json.loads(paths.config.read_text()) | {"name": "y" * 1_000_000}
    paths.config.write_text(json.dumps(config))
    summary = runs.run_summary(paths)
    assert summary.state == "finished" and len(summary.name or "") <= 200
    manager.rename_run(paths.root, "baseline")
    assert runs.read_config(paths).name == "baseline"


# -- manifest.json: the class list is bounded before a head is built -------------------------


def test_a_manifest_of_half_a_million_classes_is_refused_before_a_model_is_built(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skinlab.model import modelio

    paths = _run(models)
    names = [np.base_repr(i, 36) for i in range(500_000)]
    manifest = {"backbone": "custom", "image_size": 64, "class_names": names}
    paths.manifest.write_text(json.dumps(manifest, separators=(",", ":")))  # under 4 MB
    paths.weights.write_bytes(b"weights")
    built = _count_calls(monkeypatch, modelio, "build_for_config")
    with pytest.raises(SkinlabError) as info:
        modelio.load_run_model(paths)
    assert "500,000 classes" in str(info.value) and built == []
    assert_one_sentence(str(info.value))
    assert runs.run_summary(paths).state == "broken"


def test_a_manifest_keeps_image_counts_of_its_own_classes_only(models: Path) -> None:
    paths = _run(models)
    counts = {"melanoma": 3, "nevus": 4} | {f"junk {i}": 1 for i in range(10_000)}
    manifest = {"backbone": "custom", "image_size": 64, "class_names": CLASSES}
    write_json(paths.manifest, manifest | {"train_counts": counts})
    assert dict(runs.read_manifest(paths).train_counts) == {"melanoma": 3, "nevus": 4}


# -- familiarity.npz: each .npy header is read and checked before its data -------------------


def _gate(features: int = 2) -> familiarity.FamiliarityGate:
    rows = np.eye(4, features)
    bank = familiarity.FeatureBank.build(rows, [0, 1, 1, 0], list("abcd"), CLASSES)
    width = features + 20  # image_statistics gives 20 numbers
    detector = familiarity.Detector(np.zeros(width), np.ones(width), np.ones(width), 0.5)
    return familiarity.FamiliarityGate(bank, detector, threshold=0.3, weights_sha256="abc")


def _rewrite(path: Path, **members: bytes | np.ndarray) -> None:
    """Replace members of the gate archive ``path`` (raw ``.npy`` bytes or arrays)."""
    with zipfile.ZipFile(path) as archive:
        kept = {i.filename: archive.read(i) for i in archive.infolist()}
    for name, value in members.items():
        if isinstance(value, np.ndarray):
            buffer = __import__("io").BytesIO()
            np.save(buffer, value)
            value = buffer.getvalue()
        kept[f"{name}.npy"] = value
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in kept.items():
            archive.writestr(name, data)


def _npy_claiming(shape: tuple[int, ...]) -> bytes:
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    buffer = __import__("io").BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + b"\0" * 64


META = {"threshold": 0.3, "far_distance": 2, "quantile": 0.9, "weights_sha256": "abc"}
META |= {"class_names": CLASSES}
HOSTILE_GATES = {
    "deep meta": {"meta": np.array("[" * 100_000 + "]" * 100_000)},
    "a 200000 x 200000 header": {"features": _npy_claiming((200_000, 200_000))},
    "labels out of range": {"labels": np.array([0, 1, 7, 0], np.int16)},
    "negative labels": {"labels": np.array([0, 1, -1, 0], np.int16)},
    "a detector of another width": {"detector_weights": np.ones(5)},
    "pickled objects": {"relpaths": np.array([1, "b", 2.0, None], dtype=object)},
    "a structured dtype": {"labels": np.zeros(4, dtype=[("a", "<i2"), ("b", "<i2")])},
    "a huge number in meta": {
        "meta": np.array(json.dumps(META)[:-1] + ', "bias": 1' + "0" * 400 + "}")
    },
}


@pytest.mark.parametrize("case", list(HOSTILE_GATES))
def test_a_crafted_gate_file_is_refused_in_one_sentence(tmp_path: Path, case: str) -> None:
    path = tmp_path / "familiarity.npz"
    save_gate(path, _gate())
    members = HOSTILE_GATES[case]
    if "relpaths" in members and members["relpaths"].dtype == object:
        buffer = __import__("io").BytesIO()
        np.save(buffer, members["relpaths"], allow_pickle=True)
        members = {"relpaths": buffer.getvalue()}
    _rewrite(path, **members)
    with pytest.raises(FamiliarityFileError) as info:
        load_gate(path, "abc")
    assert_one_sentence(str(info.value))


def test_a_gate_that_is_a_pipe_is_refused_without_hanging(tmp_path: Path) -> None:
    path = tmp_path / "familiarity.npz"
    os.mkfifo(path)
    with at_most(20), pytest.raises(FamiliarityFileError):
        load_gate(path)


def test_a_gate_of_another_feature_width_than_the_model_is_not_used(tmp_path: Path) -> None:
    from skinlab.core.manifest import Manifest
    from skinlab.model.modelio import LoadedModel
    from skinlab.predict import predictor

    paths = runs.RunPaths(tmp_path)
    save_gate(paths.root / familiarity.FILE, _gate(features=3))
    manifest = Manifest("custom", tuple(CLASSES), 64, weights_sha256="abc")
    loaded = LoadedModel(model=None, manifest=manifest, paths=paths)
    gate, problem = predictor._gate(loaded, 1280)
    assert gate is None and "1280" in (problem or "")
    assert predictor._gate(loaded, 3)[0] is not None


# -- the sidebar reads no history ---------------------------------------------------------


def test_a_summary_without_scores_reads_neither_history_nor_metrics(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _run(models)
    read = _count_calls(monkeypatch, runs, "read_history")
    summary = runs.run_summary(paths, scores=False)
    assert summary.state == "finished" and read == []
    assert summary.best_val_accuracy is None and summary.balanced_accuracy is None


# -- predictions.csv: the bootstrap's work is bounded by classes and memory ----------------


def test_intervals_of_predictions_naming_more_classes_than_a_model_has_are_left_out(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skinlab.app import run_stats
    from skinlab.evaluate import intervals

    paths = _run(models)
    classes = [f"c{i}" for i in range(5000)]
    rows = {"path": classes, "split": "Test", "true": classes, "predicted": classes[::-1]}
    pd.DataFrame(rows | {"confidence": 0.5}).to_csv(paths.predictions, index=False)
    record = compare.load_run(paths.root)
    drawn = _count_calls(monkeypatch, intervals, "_scores")
    assert run_stats.run_intervals(record, "Test") is None
    assert drawn == []  # no 2,000 resamples of a 5,000 x 5,000 confusion matrix


def test_bootstrap_resamples_are_drawn_in_bounded_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    from skinlab.evaluate import intervals

    monkeypatch.setattr(intervals, "_CHUNK", 10_000, raising=False)
    held: list[int] = []
    real = intervals._scores

    def scores(y, pred, classes):
        held.append(y.size)
        return real(y, pred, classes)

    monkeypatch.setattr(intervals, "_scores", scores)
    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 3, 1000), rng.integers(0, 3, 1000)
    result = intervals.bootstrap_intervals(y, pred, ["a", "b", "c"], rounds=2000)
    assert max(held) <= 10_000  # not 2,000 x 1,000 indices at once
    low, high = result["accuracy"]["low"], result["accuracy"]["high"]
    assert low < result["accuracy"]["estimate"] < high


def test_only_as_many_external_scores_as_skinlab_keeps_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from skinlab.evaluate import saved_checks

    parsed = _count_calls(monkeypatch, saved_checks.ExternalSummary, "parse")
    assert saved_checks.saved_external({"external": [{}] * 50_000}) == []
    assert len(parsed) == saved_checks.MAX_SAVED  # not 50,000 entries parsed and shown


@pytest.mark.parametrize("epoch", ["inf", "nan", "", "x"])
def test_a_row_without_a_finite_epoch_is_dropped_and_the_curves_still_draw(
    models: Path, epoch: str
) -> None:
    # Found by the fuzz suite: a row without an epoch made "best epoch" int(NaN) on the Runs page.
    from skinlab.app import curves

    paths = _run(models)
    header = ",".join(runs.HISTORY_COLUMNS)
    paths.history.write_text(f"{header}\n{epoch},1,1,1,0.5,1,0.1,train\n2,1,1,1,0.6,1,1,train\n")
    history = runs.read_history(paths)
    assert history["epoch"].tolist() == [2]
    assert curves.best_epoch(history) == 2
    compare.curves_figure([compare.load_run(paths.root)])


def test_a_cross_validation_result_with_an_unreadable_time_is_skipped(models: Path) -> None:
    fold = {"fold": 1, "run_id": "r", "minutes": 1.0}
    fold |= {"accuracy": 0.5, "balanced_accuracy": 0.5, "macro_f1": 0.5}
    data = {"preset": "quick", "config": {}, "folds": [fold]}
    write_json(cv.results_dir() / "a.json", data | {"created": "yesterday"})
    write_json(cv.results_dir() / "b.json", data | {"created": "20260101-000000"})
    assert [cv.when(r) for r in cv.load_results()] == ["2026-01-01 00:00 UTC"]


def test_a_fold_run_whose_predictions_are_a_pipe_gives_no_out_of_fold_estimate(
    models: Path,
) -> None:
    from skinlab.evaluate import out_of_fold

    paths = _run(models)
    os.mkfifo(paths.predictions)
    fold = cv.FoldResult(1, paths.run_id, 0.5, 0.5, 0.5, 1.0)
    result = cv.CVResult("quick", {"data_root": str(models)}, (fold,), "20260101-000000")
    with at_most(20):
        assert out_of_fold._collect(result, models) is None
