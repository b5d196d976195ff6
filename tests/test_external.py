"""External validation: the four layouts of an external set, the overlap with a run's training
data, and ``evaluate --external`` end to end on a tiny real run. Every image is generated here."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import image_bytes, train_quick_run
from PIL import Image

from skinlab.core.errors import DatasetLayoutError
from skinlab.data.discovery import discover
from skinlab.data.external import (
    CLASS_FOLDERS,
    EXTERNAL,
    HAM_METADATA,
    ISIC_GROUND_TRUTH,
    OUTSIDE,
    TEST_SPLIT,
    read_external,
)
from skinlab.data.ground_truth import MISSING
from skinlab.data.overlap import RULES, SAME_ID, drop_training_overlap

ROOT = Path(__file__).resolve().parents[1]
SHARED_HAM = ROOT.parent / "shared" / "datasets" / "ham10000-external"
HAM_HEADER = "lesion_id,image_id,dx,dx_type,age,sex,localization\n"


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _smooth_jpeg(seed: int, size: tuple[int, int] = (120, 90), quality: int = 95) -> bytes:
    """A smooth picture (upscaled coarse noise): what the perceptual hash is made for."""
    coarse = np.random.default_rng(seed).integers(0, 255, (5, 6, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _ham_folder(base: Path, rows: list[tuple[str, str, str]], folders=("images",)) -> Path:
    """HAM10000's layout: ``rows`` of (lesion id, image id, dx), images spread over
    ``folders``; an image id starting with ``missing`` gets no file."""
    base.mkdir(parents=True)
    lines = [HAM_HEADER]
    for n, (lesion, image, dx) in enumerate(rows):
        lines.append(f"{lesion},{image},{dx},histo,50.0,male,back\n")
        if not image.startswith("missing"):
            _write(base / folders[n % len(folders)] / f"{image}.jpg", image_bytes(seed=n + 100))
    (base / "HAM10000_metadata.csv").write_text("".join(lines))
    return base


# --- the four layouts ---------------------------------------------------------------------


def test_a_folder_of_class_folders_is_read_with_classes_codes_and_its_name_as_collection(
    tmp_path,
) -> None:
    root = tmp_path / "clinic-photos"
    _write(root / "Melanoma" / "a.jpg", image_bytes(seed=1))
    _write(root / "melanoma" / "ISIC_0000139.jpg", image_bytes(seed=2))
    _write(root / "bcc" / "deeper" / "b.png", image_bytes(seed=3, fmt="PNG"))
    _write(root / "nevus" / "notes.txt", b"not an image")

    external = read_external(root)

    assert external.layout == CLASS_FOLDERS and external.skipped == {}
    table = external.table.set_index("relpath")
    assert dict(table["label"]) == {
        "Melanoma/a.jpg": "melanoma",
        "bcc/deeper/b.png": "basal cell carcinoma",
        "melanoma/ISIC_0000139.jpg": "melanoma",
    }
    assert set(table["split"]) == {EXTERNAL} and table["error"].isna().all()
    assert table.loc["melanoma/ISIC_0000139.jpg", "image_id"] == "ISIC_0000139"
    assert table.loc["melanoma/ISIC_0000139.jpg", "collection"] == "ISIC archive"
    assert table.loc["Melanoma/a.jpg", "collection"] == "clinic-photos"
    assert table["lesion_id"].isna().all() and table["content_hash"].notna().all()


def test_a_dataset_root_gives_its_test_split_and_never_its_training_images(
    make_dataset_folder,
) -> None:
    root = make_dataset_folder(
        {"Train": {"melanoma": 4, "nevus": 4}, "Test": {"melanoma": 2, "nevus": 1}}
    )

    external = read_external(root)

    assert external.layout == TEST_SPLIT
    assert sorted(external.table["relpath"]) == [
        "Test/melanoma/img_000.jpg",
        "Test/melanoma/img_001.jpg",
        "Test/nevus/img_000.jpg",
    ]
    assert external.class_names == ("melanoma", "nevus")


def test_ham10000_layout_reads_both_image_folders_with_lesion_ids_and_counts_what_it_skips(
    tmp_path,
) -> None:
    rows = [
        ("HAM_0000001", "ISIC_0024306", "mel"),
        ("HAM_0000001", "ISIC_0024307", "mel"),
        ("HAM_0000002", "ISIC_0024308", "nv"),
        ("HAM_0000003", "ISIC_0024309", "akiec"),
        ("HAM_0000004", "ISIC_0024310", "xyz"),
        ("HAM_0000005", "ISIC_0024311", "unk"),
        ("HAM_0000006", "missing_0024312", "bkl"),
    ]
    folders = ("HAM10000_images_part_1", "HAM10000_images_part_2")
    root = _ham_folder(tmp_path / "ham", rows, folders)

    external = read_external(root)

    assert external.layout == HAM_METADATA
    assert external.skipped == {"no class (XYZ)": 1, "no class (UNK)": 1, MISSING: 1}
    table = external.table.set_index("image_id")
    assert dict(table["label"]) == {
        "ISIC_0024306": "melanoma",
        "ISIC_0024307": "melanoma",
        "ISIC_0024308": "nevus",
        "ISIC_0024309": "actinic keratosis",
    }
    assert table.loc["ISIC_0024307", "lesion_id"] == "HAM_0000001"
    assert table.loc["ISIC_0024307", "relpath"] == "HAM10000_images_part_2/ISIC_0024307.jpg"
    assert set(table["collection"]) == {"HAM10000"}


def test_an_isic_2019_ground_truth_csv_is_read_beside_its_images_in_a_subfolder(
    tmp_path,
) -> None:
    root = tmp_path / "isic2019"
    header = "image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK,score_weight\n"
    rows = {
        "ISIC_0060001": "1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0",
        "ISIC_0060002": "0.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0",
        "ISIC_0060003": "0.0,0.0,0.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0",
        "ISIC_0060004": "0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0,1.0",
        "ISIC_0060005": "0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0",
        "ISIC_0060006": "0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0,0.0,1.0",
    }
    _write(
        root / "ISIC_2019_Test_GroundTruth.csv",
        (header + "".join(f"{k},{v}\n" for k, v in rows.items())).encode(),
    )
    for n, image in enumerate(list(rows)[:5]):
        _write(root / "ISIC_2019_Test_Input" / f"{image}.jpg", image_bytes(seed=n))
    # ISIC 2019 ships its metadata beside the ground truth: not a label file.
    (root / "ISIC_2019_Test_Metadata.csv").write_text("image,age_approx,lesion_id\n")

    external = read_external(root)

    assert external.layout == ISIC_GROUND_TRUTH
    assert external.skipped == {"no class (UNK)": 1, "no class (none marked)": 1, MISSING: 1}
    labels = dict(zip(external.table["image_id"], external.table["label"], strict=True))
    assert labels == {
        "ISIC_0060001": "melanoma",
        "ISIC_0060002": "nevus",
        "ISIC_0060003": "actinic keratosis",
    }
    assert set(external.table["collection"]) == {"ISIC 2019+"}


def test_an_isic_2018_ground_truth_csv_can_be_given_itself_with_its_images_beside_it(
    tmp_path,
) -> None:
    root = tmp_path / "isic2018"
    csv = _write(
        root / "ISIC2018_Task3_Test_GroundTruth.csv",
        b"image,MEL,NV,BCC,AKIEC,BKL,DF,VASC\nISIC_0034524,0,0,0,1,0,0,0\n"
        b"ISIC_0034525,0,0,0,0,0,1,0\n",
    )
    _write(root / "ISIC_0034524.jpg", image_bytes(seed=1))
    _write(root / "ISIC_0034525.JPG", image_bytes(seed=2))

    external = read_external(csv)

    assert external.layout == ISIC_GROUND_TRUTH and external.skipped == {}
    assert sorted(external.table["label"]) == ["actinic keratosis", "dermatofibroma"]


def test_an_image_that_does_not_decode_stays_in_the_table_with_its_error(tmp_path) -> None:
    root = tmp_path / "set"
    _write(root / "melanoma" / "good.jpg", image_bytes(seed=1))
    _write(root / "melanoma" / "bad.jpg", b"<html>not a picture</html>")

    table = read_external(root).table.set_index("relpath")

    assert pd.isna(table.loc["melanoma/good.jpg", "error"])
    assert "bad.jpg" in table.loc["melanoma/bad.jpg", "error"]


def test_a_link_that_leads_out_of_the_folder_is_skipped_not_read(tmp_path) -> None:
    secret = _write(tmp_path / "elsewhere" / "secret.jpg", image_bytes(seed=9))
    root = tmp_path / "set"
    _write(root / "nevus" / "own.jpg", image_bytes(seed=1))
    os.symlink(secret, root / "nevus" / "link.jpg")

    external = read_external(root)

    assert list(external.table["relpath"]) == ["nevus/own.jpg"]
    assert external.skipped == {OUTSIDE: 1}


def test_a_folder_that_matches_no_layout_is_refused_in_one_sentence_naming_the_four(
    tmp_path,
) -> None:
    root = tmp_path / "loose"
    _write(root / "a.jpg", image_bytes(seed=1))
    (root / "notes.csv").write_text("name,comment\na,b\n")

    with pytest.raises(DatasetLayoutError) as caught:
        read_external(root)

    message = str(caught.value)
    assert message.count(". ") == 0 and message.endswith(".")
    for layout in ("class folders", "Test/", "HAM10000_metadata.csv", "ground-truth CSV"):
        assert layout in message
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        read_external(tmp_path / "nowhere")


def test_a_dataset_without_a_test_folder_is_refused(make_dataset_folder) -> None:
    with pytest.raises(DatasetLayoutError, match="without a Test folder"):
        read_external(make_dataset_folder({"Train": {"melanoma": 2}}))


def test_two_label_files_in_one_folder_ask_which_one(tmp_path) -> None:
    root = _ham_folder(tmp_path / "two", [("HAM_1", "ISIC_0024306", "mel")])
    (root / "other_GroundTruth.csv").write_text("image,MEL,NV\nISIC_0024306,1,0\n")
    (root / "HAM10000_metadata.csv").rename(root / "metadata.csv")

    with pytest.raises(DatasetLayoutError, match="several label files"):
        read_external(root)
    assert read_external(root / "metadata.csv").layout == HAM_METADATA


# --- overlap with the training data -------------------------------------------------------


@pytest.fixture
def overlap_sets(tmp_path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A training table and an external set built so that each rule catches one image, and
    one image (ISIC_0024404) is new."""
    train = tmp_path / "train-ds" / "Train"
    same_id = _write(train / "melanoma" / "ISIC_0024400.jpg", image_bytes(seed=1))
    copied = _write(train / "nevus" / "source.jpg", image_bytes(seed=2))
    _write(train / "nevus" / "smooth.jpg", _smooth_jpeg(seed=3))
    _write(train / "nevus" / "lesion.jpg", image_bytes(seed=4))
    training = discover(train.parent).images("Train").copy()
    training["lesion_id"] = training["relpath"].map({"Train/nevus/lesion.jpg": "HAM_0000009"})

    rows = [(f"HAM_000002{k}", f"ISIC_002440{k}", "nv") for k in range(5)]
    rows[3] = ("HAM_0000009", "ISIC_0024403", "nv")
    root = _ham_folder(tmp_path / "external", rows)
    images = root / "images"
    # Same id (and the same bytes too: the first rule that catches it counts).
    shutil.copy(same_id, images / "ISIC_0024400.jpg")
    shutil.copy(copied, images / "ISIC_0024401.jpg")  # same bytes under another name
    _write(images / "ISIC_0024402.jpg", _smooth_jpeg(seed=3, size=(100, 75), quality=70))
    return read_external(root).table, training


def test_every_overlap_rule_catches_the_image_built_for_it_and_counts_it_once(
    overlap_sets,
) -> None:
    external, training = overlap_sets

    kept, excluded = drop_training_overlap(external, training)

    assert excluded == {
        "same ISIC id": 1,
        "same bytes": 1,
        "near duplicate": 1,
        "same lesion id": 1,
    }
    assert list(excluded) == list(RULES)
    assert list(kept["image_id"]) == ["ISIC_0024404"]


def test_lesion_ids_are_compared_only_when_the_training_table_has_them(overlap_sets) -> None:
    external, training = overlap_sets

    kept, excluded = drop_training_overlap(external, training.drop(columns="lesion_id"))

    assert excluded["same lesion id"] == 0
    assert sorted(kept["image_id"]) == ["ISIC_0024403", "ISIC_0024404"]


def test_nothing_is_excluded_against_an_empty_training_table(overlap_sets) -> None:
    external, training = overlap_sets

    kept, excluded = drop_training_overlap(external, training.iloc[:0])

    assert len(kept) == len(external) and set(excluded.values()) == {0}


# --- the drop, in words -------------------------------------------------------------------


def test_the_drop_sentence_says_a_fall_only_when_the_own_score_is_above_the_interval() -> None:
    from skinlab.evaluate.external import drop_sentence

    external = {"estimate": 0.35, "low": 0.28, "high": 0.42}
    fall = drop_sentence({"balanced_accuracy": 0.66, "split": "validation"}, external)
    assert fall.startswith(
        "Balanced accuracy falls from 0.66 on the run's own validation images to 0.35"
    )
    assert "does not hold" in fall
    held = drop_sentence({"balanced_accuracy": 0.40, "split": "Test"}, external)
    assert "no drop beyond chance" in held
    assert "no score of its own" in drop_sentence({"balanced_accuracy": None}, external)


# --- end to end: evaluate --external on a tiny real run -----------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory, session_dirs):
    """A quick-preset run (1 epoch) on a small demo: ``(RunPaths, demo root)``."""
    return train_quick_run(tmp_path_factory.mktemp("external"), session_dirs["models"])


_CODES = {"melanoma": "mel", "nevus": "nv", "basal cell carcinoma": "bcc"}


def _ham_from_demo(demo: Path, base: Path) -> Path:
    """A HAM10000-layout set of the demo's Test images of three classes, two of its Train
    images (the run's training data) and one UNK row."""
    test = discover(demo).images("Test")
    chosen = test[test["label"].isin(list(_CODES))]
    train = discover(demo).images("Train").iloc[:2]
    lines, images = [HAM_HEADER], base / "images"
    images.mkdir(parents=True)
    for n, row in enumerate(pd.concat([chosen, train]).itertuples()):
        image_id = f"ISIC_{25000 + n:07d}"
        shutil.copy(row.path, images / f"{image_id}{Path(row.path).suffix}")
        lines.append(f"HAM_{n:07d},{image_id},{_CODES.get(row.label, 'bkl')},histo,,,\n")
    lines.append("HAM_9999999,ISIC_0029999,unk,histo,,,\n")
    (base / "HAM10000_metadata.csv").write_text("".join(lines))
    return base


def test_evaluate_external_json_scores_new_images_only_beside_the_runs_own_score(
    trained, tmp_path, capsys
) -> None:
    from skinlab.cli import main

    paths, demo = trained
    base = _ham_from_demo(demo, tmp_path / "ham-like")
    scored = len(discover(demo).images("Test").query("label in @_CODES"))

    assert main(["evaluate", str(paths.root), "--external", str(base), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)

    plain_keys = {"run_id", "split", "data_root", "tta", "n", "class_names", "accuracy"}
    assert plain_keys | {"balanced_accuracy", "per_class", "intervals"} <= set(result)
    assert result["split"] == "External" and result["n"] == scored
    ext = result["external"]
    assert set(ext) == {
        "n_scored",
        "layout",
        "excluded",
        "skipped",
        "classes_absent",
        "collections",
        "melanoma",
        "internal",
        "drop",
        "notes",
    }
    assert ext["n_scored"] == scored and ext["layout"] == "HAM10000 metadata"
    assert ext["excluded"] == {**dict.fromkeys(RULES, 0), "same bytes": 2}
    assert ext["skipped"] == {"no class (UNK)": 1}
    assert ext["collections"] == {"HAM10000": scored}
    assert set(ext["classes_absent"]) == set(result["class_names"]) - set(_CODES)
    # Absent classes are never scored as zero: the balanced accuracy averages the present ones.
    present = [result["per_class"][c]["recall"] for c in _CODES]
    assert result["balanced_accuracy"] == pytest.approx(np.mean(present))
    own = json.loads(paths.metrics.read_text())["test"]
    assert ext["internal"]["split"] == "Test"
    assert ext["internal"]["balanced_accuracy"] == pytest.approx(own["balanced_accuracy"])
    assert set(ext["melanoma"]) == {"sensitivity", "specificity"}
    assert ext["drop"].startswith("Balanced accuracy") and ext["drop"].endswith(".")


def test_evaluate_external_prints_a_table_and_skips_classes_the_model_does_not_know(
    trained, tmp_path, capsys
) -> None:
    from skinlab.cli import main

    paths, demo = trained
    root = tmp_path / "clinic"
    test = discover(demo).images("Test")
    for row in test[test["label"] == "melanoma"].itertuples():
        _write(root / "melanoma" / Path(row.path).name, Path(row.path).read_bytes())
    _write(root / "psoriasis" / "p.jpg", image_bytes(seed=5))

    assert main(["evaluate", str(paths.root), "--external", str(root)]) == 0
    out = capsys.readouterr().out

    assert "class the model does not know (psoriasis): 1" in out
    for row in ("balanced accuracy", "melanoma sensitivity", "melanoma specificity"):
        assert row in out
    assert "own Test" in out and "Balanced accuracy" in out


def test_evaluate_external_refuses_data_or_split_beside_it(trained, tmp_path, capsys) -> None:
    from skinlab.cli import main

    paths, _ = trained
    assert main(["evaluate", str(paths.root), "--external", str(tmp_path), "--split", "Test"]) == 2
    assert "leave out --data and --split" in capsys.readouterr().err


def test_a_run_whose_training_data_is_gone_is_scored_with_a_note_and_nothing_excluded(
    trained, tmp_path, monkeypatch
) -> None:
    from skinlab.evaluate import external as evaluate_external_module

    def gone(*args, **kwargs):
        raise DatasetLayoutError("The folder /gone does not exist; check the path.")

    monkeypatch.setattr(evaluate_external_module, "load_version", gone)
    paths, demo = trained
    base = _ham_from_demo(demo, tmp_path / "ham-like")

    result = evaluate_external_module.evaluate_external(str(paths.root), base)

    ext = result["external"]
    assert set(ext["excluded"].values()) == {0}
    assert ext["n_scored"] == result["n"] == len(pd.read_csv(base / "HAM10000_metadata.csv")) - 1
    assert any("cannot be read" in note for note in ext["notes"])


# --- the real external set beside the repository, when this checkout has it --------------


@pytest.mark.skipif(not SHARED_HAM.is_dir(), reason="no ham10000-external beside the checkout")
def test_the_shared_ham10000_external_set_reads_as_462_images_of_4_classes() -> None:
    external = read_external(SHARED_HAM)

    assert external.layout == HAM_METADATA and external.skipped == {}
    assert len(external.table) == 462 and external.table["error"].isna().all()
    assert len(external.class_names) == 4
    assert external.table["lesion_id"].notna().all()
    assert set(external.table["collection"]) == {"HAM10000"}


def test_images_of_an_extra_collection_the_run_trained_on_are_left_out_too(
    make_dataset_folder, tmp_path
) -> None:
    from skinlab.core.config import RunConfig
    from skinlab.evaluate.external import _training_images

    own = make_dataset_folder({"Train": {"melanoma": 2, "nevus": 2}})
    extra = _ham_folder(
        tmp_path / "ham-train",
        [("HAM_0000001", "ISIC_0025001", "mel"), ("HAM_0000002", "ISIC_0025002", "nv")],
    )
    config = RunConfig(data_root=str(own), extra_data=(str(extra),))
    training, notes = _training_images(config)
    assert notes == []
    assert len(training) == 6  # the 4 own Train images and the 2 of the extra collection
    external = read_external(extra).images()
    kept, excluded = drop_training_overlap(external, training)
    assert kept.empty and excluded[SAME_ID] == 2
    gone = config.replace(extra_data=(str(tmp_path / "gone"),))
    training, notes = _training_images(gone)
    assert len(training) == 4 and "gone" in notes[0]
