"""The familiarity gate's numpy side: the feature bank, the detector, the rates, the file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from skinlab.evaluate.familiarity import (
    Detector,
    FamiliarityFileError,
    FamiliarityGate,
    FeatureBank,
    GateValidation,
    image_statistics,
    load_gate,
    quantile_threshold,
    save_gate,
    unit_rows,
)


def _bank(limit: int = 100) -> FeatureBank:
    features = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    return FeatureBank.build(features, [0, 1, 1, 0], ["a", "b", "c", "d"], ["x", "y"], limit=limit)


def test_unit_rows_scales_each_row_to_length_one_and_keeps_zero_rows() -> None:
    rows = unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, 0.0]])


def test_nearest_training_images_come_nearest_first_with_cosine_distances() -> None:
    index, distance = _bank().nearest(np.array([[2.0, 0.0]]), n=3)
    assert list(index[0]) == [0, 2, 1]
    np.testing.assert_allclose(distance[0], [0.0, 1 - np.cos(np.pi / 4), 1.0], atol=1e-3)


def test_asking_for_more_neighbours_than_the_bank_holds_gives_the_whole_bank() -> None:
    index, _ = _bank().nearest(np.zeros((1, 2)) + 1, n=10)
    assert sorted(index[0]) == [0, 1, 2, 3]


def test_a_bank_is_subsampled_to_its_limit_in_float16() -> None:
    bank = _bank(limit=2)
    assert len(bank) == 2 and bank.features.dtype == np.float16
    assert set(bank.relpaths) <= {"a", "b", "c", "d"}


def test_a_bank_refuses_empty_or_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="at least one"):
        FeatureBank.build(np.zeros((0, 2)), [], [], ["x"])
    with pytest.raises(ValueError, match="labels"):
        FeatureBank.build(np.zeros((2, 2)), [0], ["a", "b"], ["x"])
    with pytest.raises(ValueError, match="features"):
        _bank().distances(np.zeros((1, 3)))


def test_image_statistics_tell_a_sharp_pattern_from_a_smooth_skin_patch() -> None:
    smooth = Image.new("RGB", (180, 180), (210, 160, 140))
    board = np.kron((np.indices((18, 18)).sum(0) % 2) * 255, np.ones((10, 10)))
    sharp = Image.fromarray(np.repeat(board[..., None], 3, axis=-1).astype(np.uint8))
    a, b = image_statistics(smooth), image_statistics(sharp)
    assert a.shape == b.shape == (20,) and np.isfinite(a).all() and np.isfinite(b).all()
    assert b[12] > a[12]  # mean gradient
    assert a[18] == pytest.approx(1.0)  # every pixel of the patch has a skin hue


def test_detector_is_a_logistic_model_on_standardised_features_and_statistics() -> None:
    detector = Detector(np.zeros(3), np.ones(3), np.array([1.0, 0.0, 0.0]), 0.0)
    scores = detector.scores(np.array([[0.0, 5.0], [100.0, 0.0]]), np.array([[7.0], [0.0]]))
    np.testing.assert_allclose(scores, [0.5, 1.0])
    with pytest.raises(ValueError, match="3 numbers"):
        detector.scores(np.zeros((1, 1)), np.zeros((1, 1)))


def test_quantile_threshold_lets_the_asked_share_pass() -> None:
    scores = np.arange(100) / 100
    threshold = quantile_threshold(scores, 0.97)
    assert np.mean(scores <= threshold) >= 0.97 and np.mean(scores < threshold) < 0.97
    with pytest.raises(ValueError):
        quantile_threshold([], 0.9)
    with pytest.raises(ValueError):
        quantile_threshold(scores, 0.0)


def test_rates_count_images_the_checks_flag_whatever_the_threshold() -> None:
    validation = GateValidation(
        lesion_scores=np.array([0.1, 0.2, 0.3, 0.9]),
        lesion_checked=np.array([False, True, False, False]),
        negative_scores=np.array([0.5, 0.95]),
        negative_checked=np.array([False, False]),
    )
    low, high = validation.rates(0.4), validation.rates(0.99)
    assert (low.false_alarm, low.detection) == (0.5, 1.0)
    assert (high.false_alarm, high.detection) == (0.25, 0.0)


def _gate(sha: str = "abc") -> FamiliarityGate:
    return FamiliarityGate(
        bank=_bank(),
        detector=Detector(np.zeros(22), np.ones(22), np.linspace(-1, 1, 22), 0.5),
        threshold=0.3,
        far_distance=0.2,
        weights_sha256=sha,
        validation=GateValidation(
            np.array([0.1, 0.2]),
            np.array([False, False]),
            np.array([0.9]),
            np.array([True]),
            np.array(["rocket"]),
            np.array(["photo"]),
        ),
    )


def test_a_saved_gate_loads_back_equal_without_pickles(tmp_path) -> None:
    path = tmp_path / "familiarity.npz"
    save_gate(path, _gate())
    loaded = load_gate(path, "abc")
    assert loaded.threshold == 0.3 and loaded.far_distance == 0.2
    assert loaded.bank.class_names == ("x", "y") and list(loaded.bank.relpaths) == list("abcd")
    np.testing.assert_array_equal(loaded.detector.weights, _gate().detector.weights)
    assert list(loaded.validation.negative_names) == ["rocket"]
    with np.load(path, allow_pickle=False) as data:  # every array loads without pickle
        assert {"features", "meta", "val_lesion_scores"} <= set(data.files)


def test_a_gate_of_other_weights_or_a_damaged_file_is_refused_with_the_remedy(tmp_path) -> None:
    path = tmp_path / "familiarity.npz"
    save_gate(path, _gate("abc"))
    with pytest.raises(FamiliarityFileError, match="other weights"):
        load_gate(path, "def")
    path.write_bytes(b"not a zip")
    with pytest.raises(FamiliarityFileError, match="skinlab familiarity"):
        load_gate(path)
    with pytest.raises(FileNotFoundError):
        load_gate(tmp_path / "missing.npz")


def test_a_gate_archive_that_would_unpack_too_large_is_refused(tmp_path, monkeypatch) -> None:
    import skinlab.evaluate.familiarity as familiarity

    path = tmp_path / "familiarity.npz"
    save_gate(path, _gate())
    monkeypatch.setattr(familiarity, "MAX_FILE_BYTES", 1000)
    with pytest.raises(FamiliarityFileError, match="unpacks to"):
        load_gate(path)


def test_a_plain_npy_file_in_place_of_the_archive_is_refused(tmp_path) -> None:
    path = tmp_path / "familiarity.npz"
    with open(path, "wb") as handle:
        np.save(handle, np.zeros(3))
    with pytest.raises(FamiliarityFileError, match="not an .npz"):
        load_gate(path)
