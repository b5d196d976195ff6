"""Input-quality checks, skin plausibility and energy-based unfamiliarity.

The end-to-end test trains a small model on the synthetic demo data and shows that
scikit-image's sample photographs (a cat, a rocket, coffee, ...) are flagged while the
demo's own Test images are not.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from helpers import SHARED_ISIC
from PIL import Image, ImageFilter

from skinlab.data.demo_drawing import draw_lesion
from skinlab.data.images import decode_image, load_rgb_array
from skinlab.evaluate.ood import (
    DEFAULT_QUANTILE,
    OODResult,
    assess,
    check_quality,
    energy_score,
    fit_ood_threshold,
    not_dermoscopy_reasons,
)

skimage_data = pytest.importorskip("skimage.data")

#: scikit-image sample photographs bundled with the package (no download needed).
PHOTOS = (
    "chelsea",
    "rocket",
    "coffee",
    "astronaut",
    "camera",
    "coins",
    "moon",
    "page",
    "text",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
)


def _photo(name: str) -> Image.Image:
    pixels = np.asarray(getattr(skimage_data, name)())
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    return Image.fromarray(pixels).convert("RGB")


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def _lesion(size: tuple[int, int] = (200, 160)) -> Image.Image:
    return draw_lesion("nevus", np.random.default_rng(3), size)


def _kinds(image: Image.Image) -> dict[str, str]:
    return {issue.kind: issue.severity for issue in check_quality(image)}


# --- input quality ------------------------------------------------------------------------


def test_uniform_grey_image_is_rejected_as_blank() -> None:
    issues = check_quality(Image.new("RGB", (300, 300), (128, 128, 128)))
    assert [(i.kind, i.severity) for i in issues] == [("uniform", "reject")]
    assert issues[0].message.endswith(".") and "\n" not in issues[0].message


def test_tiny_image_is_rejected_and_a_small_one_warned_about() -> None:
    assert _kinds(_noise(20, 20))["tiny"] == "reject"
    assert _kinds(_noise(80, 120))["tiny"] == "warn"
    assert "tiny" not in _kinds(_noise(180, 180))  # the size of the Kaggle ISIC exports


def test_extreme_aspect_ratios_are_warned_about_or_rejected() -> None:
    assert _kinds(_noise(1000, 100))["aspect_ratio"] == "reject"
    assert _kinds(_noise(100, 400))["aspect_ratio"] == "warn"
    assert "aspect_ratio" not in _kinds(_noise(400, 300))


def test_gaussian_blurred_photo_gets_a_blur_warning_and_the_sharp_one_does_not() -> None:
    photo = _photo("chelsea")
    assert "blur" not in _kinds(photo)
    assert _kinds(photo.filter(ImageFilter.GaussianBlur(4))) == {"blur": "warn"}


def test_demo_lesion_drawing_has_no_quality_issue_and_looks_like_skin() -> None:
    lesion = _lesion()
    assert check_quality(lesion) == []
    assert not_dermoscopy_reasons(lesion) == []


@pytest.mark.skipif(not SHARED_ISIC.exists(), reason="real ISIC images not available here")
def test_real_isic_images_pass_quality_and_plausibility_checks() -> None:
    files = sorted(SHARED_ISIC.rglob("*.jpg"))[::10]
    assert files
    passed = [
        not check_quality(image) and not not_dermoscopy_reasons(image)
        for image in map(decode_image, files)
    ]
    assert np.mean(passed) >= 0.97


# --- plausibility -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("camera", "no colour"),
        ("rocket", "blue, green or purple"),
        ("hubble_deep_field", "black"),
        ("coffee", "vivid"),
        ("astronaut", "different colours"),
    ],
)
def test_everyday_photographs_are_not_taken_for_skin(name: str, words: str) -> None:
    reasons = not_dermoscopy_reasons(_photo(name))
    assert any(words in reason for reason in reasons), reasons


# --- energy -------------------------------------------------------------------------------


def test_confident_logits_have_lower_energy_than_uncertain_ones() -> None:
    logits = np.array([[10.0, 0.0, 0.0], [3.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    energy = energy_score(logits)
    assert np.all(np.diff(energy) > 0)
    assert energy[-1] == pytest.approx(-np.log(3.0))


def test_energy_of_one_image_is_a_scalar_and_huge_logits_stay_finite() -> None:
    assert energy_score(np.array([1.0, 2.0])).shape == ()
    assert energy_score(np.array([2.0, 4.0]), temperature=2.0) == pytest.approx(
        2.0 * energy_score(np.array([1.0, 2.0]))
    )
    assert energy_score(np.array([1e300, 0.0])) == pytest.approx(-1e300)


def test_threshold_lets_the_requested_share_of_validation_images_pass() -> None:
    logits = np.random.default_rng(0).normal(0.0, 3.0, (1000, 9))
    threshold = fit_ood_threshold(logits)
    energy = energy_score(logits)
    assert np.mean(energy <= threshold) >= DEFAULT_QUANTILE
    assert np.mean(energy < threshold) < DEFAULT_QUANTILE
    assert fit_ood_threshold(logits, quantile=0.5) < threshold


def test_threshold_needs_validation_logits_and_a_valid_quantile() -> None:
    with pytest.raises(ValueError, match="no validation images"):
        fit_ood_threshold(np.zeros((0, 9)))
    with pytest.raises(ValueError, match="quantile"):
        fit_ood_threshold(np.zeros((4, 9)), quantile=1.5)


# --- assess -------------------------------------------------------------------------------


def test_assess_flags_a_rejected_image_with_the_quality_message() -> None:
    result = assess(_noise(20, 20), np.zeros(9), threshold=100.0)
    assert result.ood and "too small" in result.reason


def test_assess_flags_unfamiliar_logits_above_the_threshold() -> None:
    result = assess(_lesion(), np.zeros(9), threshold=-5.0)
    assert result == OODResult(True, pytest.approx(-np.log(9.0)), -5.0, result.reason, "energy")
    assert result.reason.startswith("The model finds this image unfamiliar (energy -2.20")


def test_assess_judges_the_familiarity_score_instead_of_the_energy_when_given() -> None:
    unfamiliar = assess(_lesion(), np.zeros(9), threshold=0.3, familiarity=0.8)
    assert unfamiliar == OODResult(True, 0.8, 0.3, unfamiliar.reason, "familiarity")
    assert "unlike dermoscopy" in unfamiliar.reason and "0.80" in unfamiliar.reason
    # Uncertain logits (high energy) do not matter once a familiarity score is given.
    assert not assess(_lesion(), np.zeros(9), threshold=0.3, familiarity=0.1).ood


def test_assess_names_the_layer_that_flagged_the_image() -> None:
    assert assess(_noise(20, 20), np.zeros(9), familiarity=0.0, threshold=0.5).layer == "quality"
    grey = Image.fromarray(np.random.default_rng(0).integers(0, 255, (128, 128), np.uint8))
    colour = assess(grey.convert("RGB"), np.zeros(9), familiarity=0.0, threshold=0.5)
    assert colour.layer == "colour" and "no colour" in colour.reason
    assert assess(_lesion(), np.zeros(9)).layer is None


def test_assess_passes_a_plausible_image_with_familiar_logits() -> None:
    logits = np.array([[8.0, 0, 0, 0, 0, 0, 0, 0, 0]])
    result = assess(_lesion(), logits, threshold=-5.0)
    assert result == OODResult(False, pytest.approx(-8.0, abs=1e-2), -5.0, None)
    assert not assess(_lesion(), np.zeros(9)).ood  # no threshold: energy is not judged


def test_assess_refuses_the_logits_of_several_images() -> None:
    with pytest.raises(ValueError, match="one image"):
        assess(_lesion(), np.zeros((2, 9)))


# --- end to end ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory: pytest.TempPathFactory):
    """A small CNN trained on the demo data, its energy threshold, and the demo dataset."""
    from skinlab.core.config import RunConfig
    from skinlab.data.demo import generate_demo_dataset
    from skinlab.evaluate.scoring import predict_logits
    from skinlab.model.modelio import load_run_model
    from skinlab.train.training import prepare_data, train

    base = tmp_path_factory.mktemp("ood")
    root = generate_demo_dataset(base / "demo", scale=0.8)
    config = RunConfig(
        data_root=str(root),
        backbone="custom",
        image_size=64,
        batch_size=16,
        epochs=5,
        seed=7,
        deterministic=True,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKINLAB_MODELS_DIR", str(base / "models"))
        loaded = load_run_model(train(config).paths)
    val_logits = predict_logits(loaded.model, prepare_data(config).val, loaded.image_size)
    return loaded, fit_ood_threshold(val_logits), Path(root)


@pytest.mark.slow
def test_sample_photographs_are_flagged_and_demo_test_images_are_not(demo_model) -> None:
    loaded, threshold, root = demo_model

    def assess_all(sources: list) -> list[OODResult]:
        pixels = np.stack([load_rgb_array(source, loaded.image_size) for source in sources])
        logits = loaded.model.predict(pixels.astype("float32"), verbose=0)
        return [
            assess(decode_image(source), row, threshold=threshold)
            for source, row in zip(sources, logits, strict=True)
        ]

    photos = assess_all([_png(_photo(name)) for name in PHOTOS])
    assert sum(r.ood for r in photos) >= 2 * len(PHOTOS) / 3, [r.reason for r in photos]
    test_images = sorted((root / "Test").rglob("*.*"))
    assert len(test_images) >= 40
    demo = assess_all(test_images)
    assert np.mean([not r.ood for r in demo]) >= 0.8, [r.reason for r in demo if r.ood]
