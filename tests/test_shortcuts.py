"""The shortcut audit: collections per class, the statistics-only classifier, the masking of
the lesion, and how the CLI and the Explore page show them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import SHARED_ISIC, train_quick_run
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from skinlab.cli import main
from skinlab.data.discovery import discover
from skinlab.data.shortcuts import (
    FEATURES,
    ShortcutCheckError,
    collection_table,
    global_statistics,
    label_without_lesion,
    one_collection_warnings,
)
from skinlab.evaluate.masking import centre_ellipse, hide_centre, keep_centre, lesion_masked_test

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
#: Two classes photographed through the old archive's dark circular frame, two without.
FRAMED, PLAIN = ("melanoma", "seborrheic keratosis"), ("nevus", "dermatofibroma")
PER_CLASS = 20
SIDE = 48


def _lesion_jpeg(rng: np.random.Generator, framed: bool) -> bytes:
    """Skin with a brown blob in the middle; a framed one is black outside a centred circle.
    Skin and lesion colours are drawn the same way for every class."""
    skin = rng.normal((205, 160, 140), 12, 3).clip(0, 255)
    pixels = (skin + rng.normal(0, 6, (SIDE, SIDE, 3))).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(img)
    r = int(rng.integers(6, 12))
    brown = tuple(int(v) for v in rng.normal((110, 70, 50), 15, 3).clip(0, 255))
    draw.ellipse((SIDE // 2 - r, SIDE // 2 - r, SIDE // 2 + r, SIDE // 2 + r), fill=brown)
    if framed:
        mask = Image.new("L", img.size, 255)
        ImageDraw.Draw(mask).ellipse((3, 3, SIDE - 4, SIDE - 4), fill=0)
        img.paste((8, 8, 8), mask=mask)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _write_dataset(root: Path, *, random_frames: bool, seed: int = 0) -> Path:
    """Train/<class>/ISIC_*.jpg: FRAMED classes hold old-archive ids (below 24306), PLAIN
    classes HAM10000 ids; frames follow the class, or a coin when ``random_frames``."""
    rng = np.random.default_rng(seed)
    for k, label in enumerate(FRAMED + PLAIN):
        folder = root / "Train" / label
        folder.mkdir(parents=True)
        first = 100 + 1000 * k if label in FRAMED else 24_400 + 1000 * k
        for i in range(PER_CLASS):
            framed = bool(rng.random() < 0.5) if random_frames else label in FRAMED
            (folder / f"ISIC_{first + i:07d}.jpg").write_bytes(_lesion_jpeg(rng, framed))
    return root


@pytest.fixture(scope="module")
def framed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_dataset(tmp_path_factory.mktemp("shortcuts") / "framed", random_frames=False)


@pytest.fixture(scope="module")
def random_frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shortcuts") / "random"
    return _write_dataset(root, random_frames=True, seed=1)


def test_collection_table_counts_each_class_per_collection(framed) -> None:
    counts = collection_table(discover(framed).images(), "framed")

    assert list(counts.index) == sorted(FRAMED + PLAIN)
    assert set(counts.columns) == {"ISIC archive", "HAM10000"}
    assert counts.loc["melanoma"].to_dict() == {"HAM10000": 0, "ISIC archive": PER_CLASS}
    assert counts.loc["nevus"].to_dict() == {"HAM10000": PER_CLASS, "ISIC archive": 0}


def test_a_class_from_a_collection_of_its_own_is_named_in_a_warning(framed) -> None:
    warnings = one_collection_warnings(collection_table(discover(framed).images(), "framed"))

    archive = next(w for w in warnings if "comes from the ISIC archive" in w)
    assert archive.startswith(f"Every image of melanoma ({PER_CLASS}) and seborrheic keratosis")
    assert "dermatofibroma and nevus images come only from HAM10000" in archive
    assert "instead of the lesion" in archive
    assert len(warnings) == 2  # the plain classes' side of the same split


def test_a_class_alone_in_its_collection_gets_a_sentence_of_its_own(framed) -> None:
    counts = collection_table(discover(framed).images(), "framed").drop("seborrheic keratosis")

    (archive,) = [w for w in one_collection_warnings(counts) if "ISIC archive," in w]
    assert archive.startswith(f"Every melanoma image ({PER_CLASS}) comes from the ISIC archive")


def test_a_dataset_of_one_collection_gets_no_warning(make_dataset_folder) -> None:
    root = make_dataset_folder({"Train": {"melanoma": 3, "nevus": 3}})
    counts = collection_table(discover(root).images(), "ds")

    assert list(counts.columns) == ["ds"]
    assert one_collection_warnings(counts) == []


def test_global_statistics_give_every_feature_and_see_the_frame(framed) -> None:
    table = discover(framed).images()
    stats = global_statistics(table)

    assert stats.shape == (len(table), len(FEATURES))
    assert np.isfinite(stats).all()
    near_black = stats[:, FEATURES.index("near_black_share")]
    is_framed = table["label"].isin(FRAMED).to_numpy()
    assert near_black[is_framed].min() > 0.1 > near_black[~is_framed].max()


def test_statistics_without_the_lesion_predict_framed_classes_well_above_chance(framed) -> None:
    score = label_without_lesion(discover(framed).images(), seed=0, dataset_name="framed")

    assert (score.images, score.classes, score.folds, score.collections) == (80, 4, 5, 2)
    assert score.class_chance == pytest.approx(0.25)
    # Frames split the four classes into two pairs: about half right, twice chance.
    assert score.class_balanced_accuracy >= 0.45
    assert score.label_predictable
    assert score.collection_accuracy is not None and score.collection_accuracy >= 0.95
    assert score.collection_base_rate == pytest.approx(0.5)
    assert "well above chance" in score.explanation
    assert f"{score.class_balanced_accuracy:.2f}" in score.explanation
    assert json.loads(json.dumps(score.to_dict()))["label_predictable"] is True


def test_statistics_are_near_chance_when_frames_do_not_follow_the_class(random_frames) -> None:
    score = label_without_lesion(discover(random_frames).images(), seed=0)

    assert abs(score.class_balanced_accuracy - score.class_chance) < 0.1
    assert not score.label_predictable
    assert "close to chance" in score.explanation


def test_too_few_images_to_cross_validate_is_one_sentence(make_dataset_folder) -> None:
    root = make_dataset_folder({"Train": {"melanoma": 3, "nevus": 1}})

    with pytest.raises(ShortcutCheckError, match="at least two classes with two readable images"):
        label_without_lesion(discover(root).images())


def _frame_and_centre(side: int = 40) -> np.ndarray:
    """A grey image with a red border ring and a green centre."""
    image = np.full((side, side, 3), 128, np.uint8)
    image[:4] = image[-4:] = image[:, :4] = image[:, -4:] = (200, 0, 0)
    image[15:25, 15:25] = (0, 200, 0)
    return image


def test_hiding_the_centre_keeps_the_border_and_fills_with_its_mean_colour() -> None:
    image = _frame_and_centre()
    before = image.copy()

    hidden = hide_centre(image)

    assert (image == before).all()  # a new array
    assert (hidden[:4] == image[:4]).all() and (hidden[:, -4:] == image[:, -4:]).all()
    assert (hidden[20, 20] == (200, 0, 0)).all()  # the ring's mean colour
    assert not (hidden == (0, 200, 0)).all(axis=-1).any()  # no green left


def test_keeping_the_centre_keeps_the_centre_and_fills_the_outside() -> None:
    image = _frame_and_centre()

    kept = keep_centre(image)

    assert (kept[15:25, 15:25] == image[15:25, 15:25]).all()
    assert (kept[0, 0] == (200, 0, 0)).all() and (kept[8, 8] == (200, 0, 0)).all()
    ellipse = centre_ellipse(40, 40)
    assert (kept[ellipse] == image[ellipse]).all()
    assert 0.25 < ellipse.mean() < 0.32  # pi/4 * 0.6 ** 2 of the image


def test_masking_a_batch_masks_each_image_with_its_own_border() -> None:
    dark = np.zeros((40, 40, 3), np.uint8)
    batch = np.stack([_frame_and_centre(), dark])

    hidden = hide_centre(batch)

    assert hidden.shape == batch.shape and hidden.dtype == np.uint8
    assert (hidden[0] == hide_centre(batch[0])).all()
    assert (hidden[1] == 0).all()


def test_explore_audit_tab_shows_the_collection_table_and_the_check(framed) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["dataset"] = str(framed)
    at.session_state["explore_tab"] = "Audit"
    at.run()
    assert not at.exception, at.exception

    (table,) = [d.value for d in at.dataframe if "ISIC archive" in d.value.columns]
    assert table.loc["melanoma", "ISIC archive"] == PER_CLASS
    assert any("Every image of melanoma" in w.value for w in at.warning)
    check = "Class from image statistics"
    assert check not in [m.label for m in at.metric]  # the classifier waits for its button

    at.button(key="shortcut_button").click().run()

    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert check in labels
    assert "Collection from image statistics" in labels
    assert any("well above chance" in m.value for m in at.markdown)


def test_audit_shortcuts_json_has_the_table_warnings_and_scores(framed, capsys) -> None:
    assert main(["audit", str(framed), "--shortcuts", "--json"]) == 0

    found = json.loads(capsys.readouterr().out)
    assert found["collections"]["melanoma"] == {"HAM10000": 0, "ISIC archive": PER_CLASS}
    assert any("melanoma" in w for w in found["warnings"])
    assert found["label_without_lesion"]["label_predictable"] is True
    assert found["lesion_masked"] is None


def test_audit_shortcuts_text_answers_the_question_in_words(framed, capsys) -> None:
    assert main(["audit", str(framed), "--shortcuts"]) == 0

    out = capsys.readouterr().out
    assert "Images per class and collection" in out
    assert "Can the label be predicted without the lesion?" in out
    assert "where guessing gives 0.25" in out


@pytest.mark.slow
def test_lesion_masked_test_scores_a_run_three_ways_on_its_test_split(
    tmp_path_factory, session_dirs, capsys
) -> None:
    paths, demo = train_quick_run(tmp_path_factory.mktemp("masked"), session_dirs["models"])

    result = lesion_masked_test(paths.run_id)

    assert result.split == "Test"
    assert result.images == len(discover(demo).images("Test"))
    for value in (result.as_is, result.centre_hidden, result.centre_only, result.chance):
        assert 0.0 <= value <= 1.0
    assert "with the centre hidden" in result.sentence
    assert set(result.to_dict()) >= {"as_is", "centre_hidden", "centre_only", "uses_context"}

    capsys.readouterr()
    assert main(["audit", "--shortcuts", "--run", paths.run_id, "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["data_root"] == str(discover(demo).root)  # the run's own data
    assert found["lesion_masked"] == result.to_dict()


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_ISIC.is_dir(), reason="the shared ISIC images are not here")
def test_on_the_real_isic_data_the_collection_is_told_apart_and_melanoma_flagged() -> None:
    table = discover(SHARED_ISIC).images("Train")
    counts = collection_table(table, "isic9")

    assert any("melanoma (" in w and "ISIC archive" in w for w in one_collection_warnings(counts))
    score = label_without_lesion(table, dataset_name="isic9")
    assert score.collection_accuracy is not None and score.collection_accuracy > 0.85
    assert score.label_predictable
