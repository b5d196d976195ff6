"""Training on several collections (issue 28): extra rows join the training side only, a copy
of a validation image leaves with its whole lesion, folds stay the primary dataset's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import SHARED_ISIC, image_bytes

from skinlab.core.config import RunConfig, preset
from skinlab.core.errors import DatasetLayoutError
from skinlab.data import extra_collections as extra
from skinlab.data.overlap import SAME_BYTES
from skinlab.data.run_split import split_for_run

SHARED_HAM = SHARED_ISIC.parent / "ham10000-train"
HAM_HEADER = "lesion_id,image_id,dx,dx_type,age,sex,localization\n"


def _primary(folder: Path) -> Path:
    """ds/Train/{melanoma,nevus}/ISIC_00000nn.jpg: six archive-era images per class."""
    for c, label in enumerate(("melanoma", "nevus")):
        (folder / "Train" / label).mkdir(parents=True)
        for i in range(6):
            name = f"ISIC_{100 * c + i:07d}.jpg"
            (folder / "Train" / label / name).write_bytes(image_bytes(seed=100 * c + i))
    return folder


def _ham(folder: Path, rows: list[tuple[str, str, str, bytes]]) -> Path:
    """A HAM10000-layout folder: images/<image id>.jpg and HAM10000_metadata.csv."""
    (folder / "images").mkdir(parents=True)
    lines = [HAM_HEADER]
    for lesion, image_id, dx, data in rows:
        (folder / "images" / f"{image_id}.jpg").write_bytes(data)
        lines.append(f"{lesion},{image_id},{dx},histo,50.0,male,back\n")
    (folder / "HAM10000_metadata.csv").write_text("".join(lines))
    return folder


@pytest.fixture
def primary(tmp_path: Path) -> Path:
    return _primary(tmp_path / "ds")


def _config(primary: Path, *extra_paths: Path, **changes) -> RunConfig:
    return RunConfig(
        data_root=str(primary), extra_data=tuple(map(str, extra_paths)), seed=3, **changes
    )


def test_extra_rows_go_to_the_training_side_only_and_validation_stays_the_primarys(
    primary: Path, tmp_path: Path
) -> None:
    rows = [
        (f"HAM_{i}", f"ISIC_{24400 + i:07d}", "nv", image_bytes(seed=900 + i)) for i in range(4)
    ]
    ham = _ham(tmp_path / "ham", rows)
    alone = split_for_run(_config(primary, val_fraction=0.34))
    both = split_for_run(_config(primary, ham, val_fraction=0.34))
    assert list(both.val["relpath"]) == list(alone.val["relpath"])  # validation unchanged
    assert both.class_names == alone.class_names == ["melanoma", "nevus"]
    added = both.train[~both.train["relpath"].isin(alone.train["relpath"])]
    assert len(both.train) == len(alone.train) + 4 and len(added) == 4
    assert set(added["relpath"]) == {f"ham/images/ISIC_{24400 + i:07d}.jpg" for i in range(4)}
    assert set(added["collection"]) == {"HAM10000"} and set(added["split"]) == {"Train"}
    assert not set(added["path"]) & set(both.val["path"])
    (count,) = both.extra
    assert count.added == {"HAM10000": 4} and count.dropped == {}
    assert "4 images added to training (HAM10000 4)" in count.sentence()


def test_a_copy_of_a_validation_image_is_dropped_with_every_image_of_its_lesion(
    primary: Path, tmp_path: Path
) -> None:
    config = _config(primary, val_fraction=0.34)
    val_path = Path(split_for_run(config).val["path"].iloc[0])
    rows = [
        ("HAM_1", "ISIC_0024500", "nv", val_path.read_bytes()),  # the validation image, renamed
        ("HAM_1", "ISIC_0024501", "nv", image_bytes(seed=901)),  # another view of that lesion
        ("HAM_2", "ISIC_0024502", "nv", image_bytes(seed=902)),
        ("HAM_3", "ISIC_0024503", "mel", image_bytes(seed=903)),
        ("HAM_4", "ISIC_0024504", "df", image_bytes(seed=904)),  # a class ds lacks
        ("HAM_5", "ISIC_0024505", "unk", image_bytes(seed=905)),  # no class at all
    ]
    ham = _ham(tmp_path / "ham", rows)
    split = split_for_run(config.replace(extra_data=(str(ham),)))
    trained = {Path(p).name for p in split.train["path"]}
    assert "ISIC_0024502.jpg" in trained and "ISIC_0024503.jpg" in trained
    assert not {"ISIC_0024500.jpg", "ISIC_0024501.jpg", "ISIC_0024504.jpg"} & trained
    (count,) = split.extra
    assert count.dropped == {
        "no class (UNK)": 1,
        extra.OTHER_CLASS: 1,
        SAME_BYTES: 1,
        extra.SAME_LESION_AS_DROPPED: 1,
    }
    sentence = count.sentence()
    assert "2 images added to training" in sentence
    assert f"1 {SAME_BYTES}" in sentence and f"1 {extra.SAME_LESION_AS_DROPPED}" in sentence


def test_an_extra_image_of_a_validation_lesion_is_dropped_when_the_primary_knows_lesions(
    primary: Path, tmp_path: Path
) -> None:
    config = _config(primary, val_fraction=0.34)
    val_name = Path(split_for_run(config).val["relpath"].iloc[0]).stem
    (primary / "HAM10000_metadata.csv").write_text(
        HAM_HEADER + f"HAM_7,{val_name},nv,histo,50.0,male,back\n"
    )
    ham = _ham(tmp_path / "ham", [("HAM_7", "ISIC_0024600", "nv", image_bytes(seed=950))])
    (count,) = split_for_run(config.replace(extra_data=(str(ham),))).extra
    assert count.n_added == 0 and count.dropped == {"same lesion id": 1}


def test_a_cv_fold_with_extra_data_validates_on_the_primarys_fold_only(
    primary: Path, tmp_path: Path
) -> None:
    rows = [
        (f"HAM_{i}", f"ISIC_{24400 + i:07d}", "mel", image_bytes(seed=700 + i)) for i in range(3)
    ]
    ham = _ham(tmp_path / "ham", rows)
    for fold in (1, 2, 3):
        alone = split_for_run(_config(primary, cv_folds=3, cv_fold=fold))
        both = split_for_run(_config(primary, ham, cv_folds=3, cv_fold=fold))
        assert list(both.val["relpath"]) == list(alone.val["relpath"])
        assert len(both.train) == len(alone.train) + 3
        assert not both.val["relpath"].str.startswith("ham/").any()


def test_cross_validation_passes_extra_data_to_every_fold(
    primary: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import types

    import skinlab.train.training as training
    from skinlab.train import cv

    seen: list[RunConfig] = []

    def fake_train(config: RunConfig):
        seen.append(config)
        paths = types.SimpleNamespace(run_id=f"fold{config.cv_fold}")
        scores = dict.fromkeys(cv.METRICS, 0.5)
        return types.SimpleNamespace(paths=paths, metrics={"validation": scores})

    monkeypatch.setattr(training, "train", fake_train)
    cv.cross_validate(_config(primary, tmp_path / "ham"), folds=3, root=tmp_path / "models")
    assert [c.cv_fold for c in seen] == [1, 2, 3]
    assert {c.extra_data for c in seen} == {(str(tmp_path / "ham"),)}


def test_an_extra_dataset_folder_gives_its_train_split_with_lesion_ids_from_its_csv(
    tmp_path: Path,
) -> None:
    other = tmp_path / "other"
    for split in ("Train", "Test"):
        (other / split / "nevus").mkdir(parents=True)
        for i in range(2):
            name = f"ISIC_{24300 + 10 * (split == 'Test') + i:07d}.jpg"
            (other / split / "nevus" / name).write_bytes(image_bytes(seed=60 + i + 5 * len(split)))
    (other / "HAM10000_metadata.csv").write_text(
        HAM_HEADER + "HAM_9,ISIC_0024300,nv,histo,1,male,back\n"
    )
    found = extra.read_extra(other)
    assert found.layout == extra.TRAIN_SPLIT and len(found.table) == 2  # Train only
    lesions = dict(zip(found.table["image_id"], found.table["lesion_id"], strict=True))
    assert lesions["ISIC_0024300"] == "HAM_9" and pd.isna(lesions["ISIC_0024301"])


def test_a_missing_extra_path_or_the_runs_own_dataset_is_refused_in_one_sentence(
    primary: Path, tmp_path: Path
) -> None:
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        extra.check_extra_paths(primary, [str(tmp_path / "nowhere")])
    with pytest.raises(DatasetLayoutError, match="the dataset the run trains on already"):
        split_for_run(_config(primary, primary))


def test_two_collections_in_the_training_rows_change_the_draw_probabilities(
    primary: Path, tmp_path: Path
) -> None:
    from skinlab.data.pipeline import label_indices
    from skinlab.train.imbalance import balanced_probabilities, collection_balanced_probabilities

    rows = [
        (f"HAM_{i}", f"ISIC_{24400 + i:07d}", "nv", image_bytes(seed=800 + i)) for i in range(9)
    ]
    split = split_for_run(_config(primary, _ham(tmp_path / "ham", rows), val_fraction=0.0))
    labels = label_indices(split.train, split.class_names)
    collections = split.train["collection"].to_numpy()
    draws = collection_balanced_probabilities(labels, collections, balance_classes=True)
    assert not np.allclose(draws, balanced_probabilities(labels))
    nevi = labels == split.class_names.index("nevus")
    for name in ("ISIC archive", "HAM10000"):  # 6 archive nevi and 9 HAM ones: a quarter each
        assert draws[nevi & (collections == name)].sum() == pytest.approx(0.25)


def test_the_multi_collection_warning_asks_for_a_second_collection_only_when_missing() -> None:
    text = extra.multi_collection_warning(extra.MULTI_COLLECTION, ())
    assert text and "--data A --data B or 'Also train on'" in text
    assert extra.multi_collection_warning(extra.MULTI_COLLECTION, ("/data/ham",)) is None
    assert extra.multi_collection_warning("cpu-best", ()) is None


def test_a_tiny_run_trains_with_extra_data_and_records_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from skinlab.bench.workspace import environ
    from skinlab.core import runs
    from skinlab.data.collections import DX_CODES
    from skinlab.data.demo import generate_demo_dataset
    from skinlab.train.training import train

    demo = generate_demo_dataset(tmp_path / "demo", scale=0.3)
    codes = {label: code for code, label in reversed(DX_CODES.items())}  # the short codes
    rows = [
        (f"HAM_{n}", f"ISIC_{25000 + n:07d}", codes[path.parent.name], path.read_bytes())
        for n, path in enumerate(sorted((demo / "Test").glob("*/*.jpg")))
        if path.parent.name in codes  # seborrheic keratosis has no HAM10000 code
    ]
    ham = _ham(tmp_path / "ham", rows)
    config = preset("quick", data_root=str(demo), extra_data=(str(ham),), epochs=1)
    with environ(SKINLAB_MODELS_DIR=tmp_path / "models"):
        result = train(config.replace(collection_balance=True, collection_adjustment=1.0))
    assert result.state == "finished"
    # Two collections (the demo's and HAM10000): the loss carried a collection's offsets.
    offsets = result.metrics["collection_offsets"]
    assert offsets["collections"] == ["HAM10000", "demo"] and len(offsets["table"]) == 3
    assert "extra data ham (HAM10000 metadata): " in capsys.readouterr().out  # the run's log
    saved = json.loads(result.paths.config.read_text())
    assert saved["extra_data"] == [str(ham)]
    assert runs.read_config(result.paths).extra_data == (str(ham),)
    (count,) = result.metrics["extra_data"]
    assert 0 < sum(count["added"].values()) <= len(rows)
    manifest = runs.read_manifest(result.paths)
    assert manifest.val_count == len(split_for_run(preset("quick", data_root=str(demo))).val)


@pytest.mark.skipif(not SHARED_HAM.is_dir(), reason="the shared ham10000-train is not here")
def test_isic9_with_ham10000_train_keeps_validation_and_adds_only_training_images() -> None:
    config = preset("multi-collection", data_root=str(SHARED_ISIC), extra_data=(str(SHARED_HAM),))
    alone = split_for_run(config.replace(extra_data=()))
    both = split_for_run(config)
    assert list(both.val["relpath"]) == list(alone.val["relpath"])
    (count,) = both.extra
    assert count.n_added == len(both.train) - len(alone.train) > 6000
    assert set(both.train["collection"]) == {"ISIC archive", "HAM10000"}
    val_ids = set(both.val["relpath"].str.extract(r"(ISIC_\d+)")[0])
    added = both.train[both.train["relpath"].str.startswith("ham10000-train/")]
    assert not val_ids & set(added["image_id"])
