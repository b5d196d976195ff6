"""Review decisions: append-only CSV, the only file written; versions and their hashes;
undo; applying a version to a dataset."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest
from helpers import image_bytes

from skinlab.data import overrides
from skinlab.data.overrides import (
    RAW,
    OverridesError,
    current,
    current_version,
    find_version,
    load_version,
    overrides_path,
    read_log,
    record,
    undo_last,
    versions,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    seed = 0
    for label in ("melanoma", "nevus"):
        folder = root / "Train" / label
        folder.mkdir(parents=True)
        for i in range(3):
            seed += 1
            (folder / f"{label[0]}{i}.jpg").write_bytes(image_bytes(seed=seed))
    (root / "Test" / "nevus").mkdir(parents=True)
    (root / "Test" / "nevus" / "t0.jpg").write_bytes(image_bytes(seed=99))
    return root


def _snapshot(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def test_decisions_write_only_the_overrides_file(root: Path) -> None:
    before = _snapshot(root)
    record(root, "Train/nevus/n0.jpg", "relabel", label="melanoma", reason="irregular")
    record(root, "Train/melanoma/m1.jpg", "exclude", reason="blurred")
    record(root, "Train/melanoma/m2.jpg", "keep")
    undo_last(root)
    after = _snapshot(root)
    assert set(after) - set(before) == {".skinlab/overrides.csv"}
    assert {k: v for k, v in after.items() if k in before} == before


def test_the_log_is_a_readable_append_only_csv_with_who_when_why(root: Path) -> None:
    record(root, "Train/nevus/n0.jpg", "relabel", label="melanoma", reason="two\nlines", who="ann")
    first = overrides_path(root).read_text(encoding="utf-8")
    record(root, "Train/nevus/n0.jpg", "undo", who="bob")
    text = overrides_path(root).read_text(encoding="utf-8")
    assert text.startswith(first)  # appended, never rewritten
    rows = list(csv.DictReader(text.splitlines()))
    assert [r["who"] for r in rows] == ["ann", "bob"]
    assert rows[0]["action"] == "relabel" and rows[0]["label"] == "melanoma"
    assert rows[0]["reason"] == "two lines" and rows[0]["time"].endswith("+00:00")


def test_undo_pops_the_newest_decision_on_an_image(root: Path) -> None:
    record(root, "Train/nevus/n0.jpg", "exclude")
    record(root, "Train/nevus/n0.jpg", "relabel", label="melanoma")
    undo_last(root, "Train/nevus/n0.jpg")
    assert current(root)["Train/nevus/n0.jpg"].action == "exclude"
    undo_last(root)
    assert current(root) == {}
    assert current_version(root).id == RAW
    with pytest.raises(OverridesError, match="no decision"):
        undo_last(root)


def test_versions_are_short_hashes_of_the_relabels_and_exclusions(root: Path) -> None:
    assert [v.id for v in versions(root)] == [RAW]
    record(root, "Train/nevus/n0.jpg", "relabel", label="melanoma")
    first = current_version(root)
    assert first.id != RAW and len(first.id) == 8 and first.relabelled == 1
    record(root, "Train/melanoma/m0.jpg", "keep")  # a keep changes nothing a model sees
    assert current_version(root).id == first.id
    record(root, "Train/melanoma/m1.jpg", "exclude")
    second = current_version(root)
    assert second.id != first.id and (second.relabelled, second.excluded) == (1, 1)
    undo_last(root, "Train/melanoma/m1.jpg")
    assert current_version(root).id == first.id  # back to the same version, same id
    assert [v.id for v in versions(root)] == [first.id, second.id, RAW]
    assert "1 relabelled, 1 excluded" in find_version(root, second.id).label()


def test_loading_a_version_relabels_and_excludes_without_touching_files(root: Path) -> None:
    record(root, "Train/nevus/n0.jpg", "relabel", label="melanoma")
    record(root, "Train/melanoma/m1.jpg", "exclude")
    record(root, "Test/nevus/t0.jpg", "relabel", label="dermatofibroma")
    version = current_version(root).id
    dataset = load_version(root, version)
    labels = dict(zip(dataset.table["relpath"], dataset.table["label"], strict=True))
    assert labels["Train/nevus/n0.jpg"] == "melanoma"
    assert "Train/melanoma/m1.jpg" not in labels
    assert dataset.class_names == ("dermatofibroma", "melanoma", "nevus")
    assert load_version(root).table["label"].value_counts()["nevus"] == 4  # raw is untouched
    assert (root / "Train/nevus/n0.jpg").is_file() and (root / "Train/melanoma/m1.jpg").is_file()


def test_an_unknown_version_or_action_is_one_clear_sentence(root: Path) -> None:
    with pytest.raises(OverridesError, match="no dataset version 'deadbeef'"):
        load_version(root, "deadbeef")
    with pytest.raises(OverridesError, match="one of relabel"):
        record(root, "Train/nevus/n0.jpg", "delete")
    with pytest.raises(OverridesError, match="needs the new class"):
        record(root, "Train/nevus/n0.jpg", "relabel")


def test_a_read_only_dataset_refuses_with_a_sentence(root: Path, monkeypatch) -> None:
    real_open = overrides.disk.open_file

    def refuse(path, root=None, mode="read"):
        if mode != "read":
            raise PermissionError(13, "Permission denied")
        return real_open(path, root, mode)

    monkeypatch.setattr(overrides.disk, "open_file", refuse)
    with pytest.raises(OverridesError, match="must be writable"):
        record(root, "Train/nevus/n0.jpg", "exclude")
    assert read_log(root) == []


def test_training_data_of_a_version_has_its_relabels_and_lacks_its_exclusions(root: Path) -> None:
    from skinlab.core.config import RunConfig
    from skinlab.train.training import prepare_data

    record(root, "Train/nevus/n0.jpg", "relabel", label="melanoma")
    record(root, "Train/melanoma/m1.jpg", "exclude")
    config = RunConfig(data_root=str(root), val_fraction=0.0, data_version=current_version(root).id)
    data = prepare_data(config)
    labels = dict(zip(data.train["relpath"], data.train["label"], strict=True))
    assert labels["Train/nevus/n0.jpg"] == "melanoma" and "Train/melanoma/m1.jpg" not in labels
    assert data.counts_before == {"melanoma": 3, "nevus": 2}
    raw = prepare_data(config.replace(data_version=""))
    assert raw.counts_before == {"melanoma": 3, "nevus": 3}
    with pytest.raises(OverridesError):
        prepare_data(config.replace(data_version="0badc0de"))
