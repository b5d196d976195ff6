"""Fitting and validating a run's familiarity gate (:mod:`skinlab.evaluate.familiarity`) on its model.

After training (or later, for an existing run folder: ``python -m skinlab familiarity RUN``):

1. the training images' pooled features become the :class:`~skinlab.evaluate.familiarity.FeatureBank`
   (the similar cases);
2. the :class:`~skinlab.evaluate.familiarity.Detector` learns "dermoscopy or not" from the training
   lesions (features and :func:`~skinlab.evaluate.familiarity.image_statistics`) against
   :data:`EXPOSURE_TEXTURES` procedural textures drawn from :data:`EXPOSURE_SEED`;
3. the validation lesions' scores set the threshold (their :data:`DEFAULT_QUANTILE`);
4. the false-alarm rate on real lesions is measured *held out*: the validation split is cut
   in two halves, each half's threshold is applied to the other half's lesions, and the
   flags are pooled, so no lesion is judged by a threshold fitted on it;
5. the detection rate is measured on :func:`skinlab.data.negatives.negative_set` images with
   :data:`NEGATIVE_SEED`: photographs, crops and recolourings the detector never saw, and
   textures of another seed than the ones it learnt from. The threshold never sees any.

Both rates count the whole gate: an image is flagged when a quality or colour check of
:mod:`skinlab.evaluate.ood` rejects it *or* its score is above the threshold.

Example::

    summary = fit_run("20261127-171041-skinlab_cnn-afffcc")
    summary["held_out_false_alarm"], summary["detection"]

Why one module: fitting the gate and measuring its two error rates use the same embeddings
and negative sets, cached per process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from PIL import Image

from skinlab.core import atomic, runs
from skinlab.data.images import decode_image
from skinlab.data.negatives import FAMILIES, Negative, negative_set
from skinlab.data.pipeline import decode_table, label_indices
from skinlab.evaluate.familiarity import (
    DEFAULT_QUANTILE,
    FAR_QUANTILE,
    FILE,
    Detector,
    FamiliarityGate,
    FeatureBank,
    GateValidation,
    image_statistics,
    quantile_threshold,
)
from skinlab.evaluate.ood import check_quality, not_dermoscopy_reasons
from skinlab.model.backbones import POOL_LAYER

#: Key of the gate's summary in ``metrics.json``.
METRICS_KEY = "ood_validation"
#: Seed of the negatives' crops and textures the rates are measured on.
NEGATIVE_SEED = 1
#: Seed and number of the textures the detector learns "not dermoscopy" from.
EXPOSURE_SEED, EXPOSURE_TEXTURES = 0, 150
#: Inverse regularisation of the detector (scikit-learn's ``C``): 0.1 beat 1.0 on isic9.
DETECTOR_C = 0.1
_CHUNK = 128
#: Longest side images are decoded at for the image statistics and checks (as predict's).
DECODE_PX = 1024


def feature_model(model: keras.Model) -> keras.Model:
    """``image -> (pooled features, logits)`` sharing ``model``'s layers (one pass for both).

    The features are the :data:`~skinlab.model.backbones.POOL_LAYER` output; a model without one
    (the notebook's flatten-and-dense network) gives the input of its last layer instead.
    """
    names = {layer.name for layer in model.layers}
    pooled = model.get_layer(POOL_LAYER).output if POOL_LAYER in names else model.layers[-1].input
    return keras.Model(model.inputs, [pooled, model.outputs[0]], name=f"{model.name}_pooled")


def embed_arrays(
    extract: Callable[[tf.Tensor], Any], images: np.ndarray, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """``(features, logits)`` of ``(N, size, size, 3)`` images in 0..255, in order.

    ``extract`` maps a float32 batch to ``(features, logits)``, e.g. a :func:`feature_model`
    called with ``training=False``.
    """
    feats, logits = [], []
    for start in range(0, len(images), batch_size):
        f, z = extract(tf.convert_to_tensor(images[start : start + batch_size], tf.float32))
        feats.append(np.asarray(f, np.float32))
        logits.append(np.asarray(z, np.float32))
    if not feats:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return np.concatenate(feats), np.concatenate(logits)


def embed_table(
    extract: Callable[[tf.Tensor], Any], table: pd.DataFrame, image_size: int
) -> np.ndarray:
    """Pooled features of every row of a dataset ``table``, decoding in bounded chunks."""
    parts = [
        embed_arrays(extract, decode_table(table.iloc[s : s + _CHUNK], image_size))[0]
        for s in range(0, len(table), _CHUNK)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def embed_images(
    extract: Callable[[tf.Tensor], Any], images: Sequence[Image.Image], image_size: int
) -> np.ndarray:
    """Pooled features of decoded RGB images, resized as the Predictor resizes them."""
    arrays = [
        np.asarray(img.resize((image_size, image_size), Image.Resampling.BILINEAR), np.float32)
        for img in images
    ]
    return embed_arrays(extract, np.stack(arrays))[0] if arrays else np.zeros((0, 0), np.float32)


def checks_flag(image: Image.Image) -> bool:
    """Whether the quality or colour checks of :mod:`skinlab.evaluate.ood` flag ``image`` (whatever
    the threshold)."""
    rejected = any(issue.severity == "reject" for issue in check_quality(image))
    return rejected or bool(not_dermoscopy_reasons(image))


def held_out_false_alarm(
    scores: np.ndarray, checked: np.ndarray, quantile: float = DEFAULT_QUANTILE, seed: int = 0
) -> float:
    """Share of lesions flagged when each half's threshold judges the other half.

    The lesions are cut in two random halves (from ``seed``); half A's
    :func:`~skinlab.evaluate.familiarity.quantile_threshold` flags half B's lesions and the other way
    round; an image the checks flag counts as flagged. With fewer than 4 lesions there are
    no halves to speak of and the result is NaN.
    """
    n = len(scores)
    if n < 4:
        return float("nan")
    order = np.random.default_rng(seed).permutation(n)
    halves = (order[: n // 2], order[n // 2 :])
    flagged = 0
    for fit, judged in (halves, halves[::-1]):
        threshold = quantile_threshold(scores[fit], quantile)
        flagged += int(np.sum(checked[judged] | (scores[judged] > threshold)))
    return flagged / n


def fit_detector(positives: np.ndarray, negatives: np.ndarray, seed: int = 0) -> Detector:
    """A balanced, L2-regularised logistic regression of negatives (1) against positives (0).

    Raises:
        ValueError: either side is empty.
    """
    from sklearn.linear_model import LogisticRegression

    if len(positives) == 0 or len(negatives) == 0:
        raise ValueError("The detector needs examples of both dermoscopy and non-dermoscopy.")
    x = np.concatenate([positives, negatives]).astype(np.float64)
    y = np.r_[np.zeros(len(positives)), np.ones(len(negatives))]
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0  # a constant input carries no information; keep it harmless
    fitted = LogisticRegression(
        C=DETECTOR_C, class_weight="balanced", max_iter=2000, random_state=seed
    ).fit((x - mean) / scale, y)
    return Detector(mean, scale, fitted.coef_[0].copy(), float(fitted.intercept_[0]))


def fit_gate(
    model: keras.Model,
    train: pd.DataFrame,
    val: pd.DataFrame,
    class_names: Sequence[str],
    image_size: int,
    *,
    weights_sha256: str = "",
    negatives: Sequence[Negative] | None = None,
    exposure: Sequence[Negative] | None = None,
    quantile: float = DEFAULT_QUANTILE,
) -> tuple[FamiliarityGate, dict[str, Any]]:
    """The gate of ``model`` and its summary (for ``metrics.json``).

    Args:
        model: the trained classifier (any backbone with a pooling layer).
        train: the training rows (duplicates from oversampling are dropped).
        val: the validation rows; the threshold and the false-alarm rate come from them.
        negatives: non-dermoscopy images the rates are measured on (default:
            :func:`negative_set` with :data:`NEGATIVE_SEED`).
        exposure: non-dermoscopy images the detector learns from (default:
            :data:`EXPOSURE_TEXTURES` textures from :data:`EXPOSURE_SEED`).

    Raises:
        ValueError: ``train`` or ``val`` is empty.
    """
    if train.empty or val.empty:
        raise ValueError("The familiarity gate needs training and validation images.")
    extractor = feature_model(model)
    extract = tf.function(lambda x: extractor(x, training=False), reduce_retracing=True)
    train = train.drop_duplicates("relpath")
    train_features = embed_table(extract, train, image_size)
    bank = FeatureBank.build(
        train_features,
        label_indices(train, list(class_names)),
        list(train["relpath"]),
        list(class_names),
    )
    exposure, exposure_stats = _exposure_set(exposure)
    negatives, negative_stats, negative_checked = _negative_set(negatives)
    exposure_features = embed_images(extract, [n.image for n in exposure], image_size)
    detector = fit_detector(
        _inputs(train_features, _table_images(train)),
        np.concatenate([exposure_features, exposure_stats], axis=1),
    )
    val_images = _table_images(val)
    val_features = embed_table(extract, val, image_size)
    negative_images = [n.image for n in negatives]
    validation = GateValidation(
        lesion_scores=detector.scores(val_features, _statistics(val_images)),
        lesion_checked=np.array([checks_flag(img) for img in val_images]),
        negative_scores=detector.scores(
            embed_images(extract, negative_images, image_size), negative_stats
        ),
        negative_checked=negative_checked,
        negative_names=np.array([n.name for n in negatives], dtype=str),
        negative_families=np.array([n.family for n in negatives], dtype=str),
    )
    gate = FamiliarityGate(
        bank=bank,
        detector=detector,
        threshold=quantile_threshold(validation.lesion_scores, quantile),
        far_distance=quantile_threshold(bank.nearest(val_features, 1)[1][:, 0], FAR_QUANTILE),
        quantile=quantile,
        weights_sha256=weights_sha256,
        validation=validation,
    )
    return gate, gate_summary(gate)


def _exposure_set(
    exposure: Sequence[Negative] | None,
) -> tuple[Sequence[Negative], np.ndarray]:
    """The images the detector learns "not a lesion" from, and their statistics."""
    if exposure is None:
        exposure, stats, _ = measured_negatives(EXPOSURE_SEED, EXPOSURE_TEXTURES, ("texture",))
        return exposure, stats
    return exposure, _statistics([n.image for n in exposure])


def _negative_set(
    negatives: Sequence[Negative] | None,
) -> tuple[Sequence[Negative], np.ndarray, np.ndarray]:
    """The images the gate's rates are measured on, their statistics and check flags."""
    if negatives is None:
        return measured_negatives(NEGATIVE_SEED)
    stats = _statistics([n.image for n in negatives])
    return negatives, stats, np.array([checks_flag(n.image) for n in negatives])


@functools.lru_cache(maxsize=4)
def measured_negatives(
    seed: int, textures: int = 20, families: tuple[str, ...] = FAMILIES
) -> tuple[tuple[Negative, ...], np.ndarray, np.ndarray]:
    """:func:`negative_set` with each image's statistics and whether the checks flag it:
    none depends on the model, so a process fitting several runs measures them once."""
    negatives = negative_set(seed=seed, textures=textures, families=families)
    images = [n.image for n in negatives]
    return negatives, _statistics(images), np.array([checks_flag(img) for img in images])


def _table_images(table: pd.DataFrame) -> list[Image.Image]:
    return [decode_image(path, max_side=DECODE_PX) for path in table["path"]]


def _statistics(images: Sequence[Image.Image]) -> np.ndarray:
    return np.stack([image_statistics(img) for img in images])


def _inputs(features: np.ndarray, images: Sequence[Image.Image]) -> np.ndarray:
    return np.concatenate([features, _statistics(images)], axis=1)


def gate_summary(gate: FamiliarityGate) -> dict[str, Any]:
    """The JSON summary of a validated gate: threshold, both rates, per-family detection."""
    v = gate.validation
    if v is None:
        return {"threshold": gate.threshold, "quantile": gate.quantile}
    at = v.rates(gate.threshold)
    families = {
        str(family): float(
            np.mean(
                v.negative_checked[v.negative_families == family]
                | (v.negative_scores[v.negative_families == family] > gate.threshold)
            )
        )
        for family in dict.fromkeys(v.negative_families.tolist())
    }
    return {
        "method": "logistic detector on pooled features and image statistics, trained "
        "against procedural textures (outlier exposure); threshold at the "
        f"{gate.quantile:.0%} quantile of validation lesions",
        "threshold": gate.threshold,
        "far_distance": gate.far_distance,
        "quantile": gate.quantile,
        "bank_images": len(gate.bank),
        "lesions": len(v.lesion_scores),
        "negatives": len(v.negative_scores),
        "held_out_false_alarm": held_out_false_alarm(
            v.lesion_scores, v.lesion_checked, gate.quantile
        ),
        "lesions_flagged_by_checks": float(np.mean(v.lesion_checked)),
        "false_alarm_in_sample": at.false_alarm,
        "detection": at.detection,
        "detection_by_family": families,
    }


def fit_run(ref: str | runs.RunPaths, data_root: str | None = None) -> dict[str, Any]:
    """Fit (or refit) the gate of an existing run from its weights and its dataset, write
    ``familiarity.npz`` into the run folder and the summary into ``metrics.json``.

    The training and validation rows are rebuilt from the run's config exactly as training
    built them (same split, same seed); ``data_root`` replaces the config's dataset folder
    when it has moved.

    Raises:
        RunNotFoundError, ModelFileError: as :func:`skinlab.model.modelio.load_run_model`.
        DatasetLayoutError: the dataset cannot be read or split.
    """
    import dataclasses

    from skinlab.data.run_split import split_for_run
    from skinlab.model.modelio import load_run_model

    loaded = load_run_model(ref)
    config = runs.read_config(loaded.paths)
    if data_root:
        config = dataclasses.replace(config, data_root=data_root)
    data = split_for_run(config)
    gate, summary = fit_gate(
        loaded.model,
        data.train,
        data.val,
        loaded.class_names,
        loaded.image_size,
        weights_sha256=loaded.manifest.weights_sha256,
    )
    write_gate(loaded.paths, gate, summary)
    return {"run_id": loaded.paths.run_id, **summary}


def write_gate(paths: runs.RunPaths, gate: FamiliarityGate, summary: dict[str, Any]) -> None:
    """Save ``gate`` beside the weights and put ``summary`` into ``metrics.json``."""
    from skinlab.evaluate.familiarity import save_gate

    save_gate(paths.root / FILE, gate)
    metrics = atomic.read_json(paths.metrics, default={})
    metrics = metrics if isinstance(metrics, dict) else {}
    atomic.write_json(paths.metrics, {**metrics, METRICS_KEY: summary})
