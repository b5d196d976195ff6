"""Predictions that say *what*, *how sure*, and *whether the image is something the model
knows*, for one image or thousands.

Every input goes through the safe decoder; a bad file becomes a :class:`PredictionError`
entry and the others are still predicted. Probabilities are temperature-calibrated (the
temperature was fitted on the run's validation split), each result carries the risk tier
of its top class, the malignant roll-up, an out-of-distribution flag with its reason, the
most similar training images (runs with a familiarity gate, :mod:`skinlab.evaluate.familiarity`),
and the not-a-medical-device notice.

A :class:`Predictor` is loaded once per process (:func:`load_predictor` caches it) and
predicts through a compiled direct call, not ``model.predict`` per image.

Example::

    predictor = load_predictor("20261125-101500-skinlab_cnn-1a2b3c")
    for result in predictor.predict_paths(["lesion.jpg", "folder/"], tta=4):
        print(result.to_dict())

Why one module: the ``Predictor`` and the ``Prediction`` it returns are one contract (what,
how sure, whether to trust it); the checks it calls live in :mod:`skinlab.evaluate.ood` and
:mod:`skinlab.evaluate.familiarity`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from PIL import Image

from skinlab import NOT_A_MEDICAL_DEVICE
from skinlab.core import runs
from skinlab.core.classes import MALIGNANT, risk_tier
from skinlab.core.errors import InvalidImageError
from skinlab.data.discovery import is_hidden
from skinlab.data.images import IMAGE_SUFFIXES, ImageSource, decode_image
from skinlab.evaluate.evaluation import softmax
from skinlab.evaluate.familiarity import (
    FILE as FAMILIARITY_FILE,
)
from skinlab.evaluate.familiarity import (
    SIMILAR,
    FamiliarityFileError,
    FamiliarityGate,
    image_statistics,
    load_gate,
)
from skinlab.evaluate.familiarity_fit import feature_model
from skinlab.evaluate.ood import assess, check_quality
from skinlab.model.modelio import LoadedModel, load_run_model
from skinlab.model.views import MAX_TTA, tta_batch

#: Longest side inputs are decoded at. Far above any model's input and the quality checks'
#: scale (blur is measured at 256 px), yet a 79 MP upload then costs ~0.3 GB while it
#: decodes instead of ~13 GB (full-size copies, Grad-CAM at full size).
DECODE_PX = 1024


@dataclass(frozen=True)
class Prediction:
    """One image's prediction. ``probabilities`` follow the manifest's class order.

    ``ood_score`` is the familiarity gate's score when the run has one (else the energy);
    ``similar`` lists the nearest training images, ``{"path", "label", "distance"}`` each,
    nearest first (empty without a gate); ``flagged_by_checks`` says whether a quality or
    colour check flagged the image, whatever the threshold (not in :meth:`to_dict`: the
    JSON's keys are a published contract).
    """

    path: str
    probabilities: dict[str, float]
    top_k: list[tuple[str, float]]
    top_class: str
    risk_tier: str
    malignant_probability: float
    confidence: float
    ood: bool
    ood_score: float
    ood_reason: str | None
    quality_warnings: list[str] = field(default_factory=list)
    tta_views: int = 1
    tta_spread: float | None = None
    run_id: str = ""
    backbone: str = ""
    notice: str = NOT_A_MEDICAL_DEVICE
    similar: list[dict[str, Any]] = field(default_factory=list)
    flagged_by_checks: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["top_k"] = [{"class": c, "probability": p} for c, p in self.top_k]
        del data["flagged_by_checks"]
        return data

    def flagged_at(self, threshold: float) -> bool:
        """Whether the image is flagged with the familiarity threshold moved to ``threshold``."""
        return self.flagged_by_checks or self.ood_score > threshold


@dataclass(frozen=True)
class PredictionError:
    """An input that could not be predicted, with one sentence saying why."""

    path: str
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "error": self.error}


class Predictor:
    """A loaded run ready to predict: one model, its calibration, its familiarity gate (or,
    for older runs, its energy threshold).

    Attributes:
        gate: the run's :class:`~skinlab.evaluate.familiarity.FamiliarityGate`, or None.
        gate_problem: why a gate file that exists was not used, or None.
    """

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.class_names = loaded.class_names
        self.size = loaded.image_size
        self.temperature = loaded.temperature
        pooled = feature_model(loaded.model)
        self.gate, self.gate_problem = _gate(loaded, int(pooled.outputs[0].shape[-1]))
        self.ood_threshold = self.gate.threshold if self.gate else loaded.manifest.ood_threshold
        spec = tf.TensorSpec([None, self.size, self.size, 3], tf.float32)
        # One traced graph for any batch size: the warm single-image path is a direct call.
        self._call = tf.function(lambda x: pooled(x, training=False), input_signature=[spec])

    @property
    def run_id(self) -> str:
        return self.loaded.paths.run_id

    def logits(self, images: np.ndarray) -> np.ndarray:
        """Logits for a float32/uint8 batch ``(N, size, size, 3)`` in 0..255."""
        return self.features_and_logits(images)[1]

    def features_and_logits(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pooled features and logits of a batch, from one pass."""
        features, logits = self._call(tf.convert_to_tensor(images, tf.float32))
        return features.numpy(), logits.numpy()

    def _model_input(self, image: Image.Image) -> np.ndarray:
        resized = (
            image
            if image.size == (self.size, self.size)
            else image.resize((self.size, self.size), Image.Resampling.BILINEAR)
        )
        return np.asarray(resized, dtype=np.float32)

    def predict_images(
        self, named: Sequence[tuple[str, Image.Image]], *, tta: int = 1
    ) -> list[Prediction]:
        """Predict decoded RGB images (``(name, image)`` pairs) in one batched call."""
        if not named:
            return []
        views = max(1, min(int(tta), MAX_TTA))
        batch = tta_batch(np.stack([self._model_input(img) for _, img in named]), views)
        features, logits = self.features_and_logits(batch)
        logits = logits.reshape(len(named), views, -1)
        features = features.reshape(len(named), views, -1)[:, 0]  # the image itself
        probs = softmax(logits, self.temperature)  # (N, views, C)
        scores: list[float | None] = [None] * len(named)
        similar: list[list[dict[str, Any]]] = [[] for _ in named]
        if self.gate is not None:
            statistics = np.stack([image_statistics(img) for _, img in named])
            scores = self.gate.scores(features, statistics).tolist()
            similar = self._similar(self.gate, features)
        return [
            self._result(name, img, logits[i, 0], probs[i], scores[i], similar[i])
            for i, (name, img) in enumerate(named)
        ]

    def _similar(self, gate: FamiliarityGate, features: np.ndarray) -> list[list[dict[str, Any]]]:
        bank = gate.bank
        index, distance = bank.nearest(features, SIMILAR)
        return [
            [
                {
                    "path": str(bank.relpaths[j]),
                    "label": bank.class_names[int(bank.labels[j])],
                    "distance": float(d),
                }
                for j, d in zip(row, dist, strict=True)
            ]
            for row, dist in zip(index, distance, strict=True)
        ]

    def _result(
        self,
        name: str,
        image: Image.Image,
        logits: np.ndarray,
        view_probs: np.ndarray,
        familiarity: float | None = None,
        similar: list[dict[str, Any]] | None = None,
    ) -> Prediction:
        mean = view_probs.mean(axis=0)
        order = np.argsort(-mean)
        top = int(order[0])
        names = self.class_names
        verdict = assess(
            image,
            logits,
            temperature=self.temperature,
            threshold=self.ood_threshold,
            familiarity=familiarity,
        )
        malignant = float(sum(mean[i] for i, c in enumerate(names) if risk_tier(c) == MALIGNANT))
        return Prediction(
            path=name,
            probabilities={c: float(mean[i]) for i, c in enumerate(names)},
            top_k=[(names[i], float(mean[i])) for i in order[:3]],
            top_class=names[top],
            risk_tier=risk_tier(names[top]),
            malignant_probability=malignant,
            confidence=float(mean[top]),
            ood=verdict.ood,
            ood_score=float(verdict.score),
            ood_reason=verdict.reason,
            quality_warnings=[q.message for q in check_quality(image) if q.severity != "reject"],
            tta_views=len(view_probs),
            tta_spread=float(view_probs[:, top].std()) if len(view_probs) > 1 else None,
            run_id=self.run_id,
            backbone=self.loaded.manifest.backbone,
            similar=similar or [],
            flagged_by_checks=verdict.layer in ("quality", "colour"),
        )

    def predict_sources(
        self, sources: Sequence[tuple[str, ImageSource]], *, tta: int = 1, batch_size: int = 32
    ) -> list[Prediction | PredictionError]:
        """Decode and predict ``(name, path-or-bytes)`` pairs; bad files become errors, in order.

        Each input is decoded at most :data:`DECODE_PX` on its longer side, one at a time, so
        at most ``batch_size`` such images are held, whatever the files' pixel counts."""
        results: list[Prediction | PredictionError | None] = [None] * len(sources)
        pending: list[tuple[int, str, Image.Image]] = []
        for index, (name, source) in enumerate(sources):
            try:
                pending.append((index, name, decode_image(source, max_side=DECODE_PX)))
            except InvalidImageError as exc:
                results[index] = PredictionError(name, str(exc).replace("The image", name, 1))
            if len(pending) >= batch_size or (index == len(sources) - 1 and pending):
                done = self.predict_images([(n, img) for _, n, img in pending], tta=tta)
                for (slot, _, _), prediction in zip(pending, done, strict=True):
                    results[slot] = prediction
                pending = []
        return [r for r in results if r is not None]

    def predict_paths(
        self, paths: Iterable[str | Path], *, tta: int = 1, batch_size: int = 32
    ) -> list[Prediction | PredictionError]:
        """Predict files and folders (folders are expanded to their images, sorted)."""
        files = expand_inputs(paths)
        return self.predict_sources([(str(f), f) for f in files], tta=tta, batch_size=batch_size)


def _gate(loaded: LoadedModel, width: int) -> tuple[FamiliarityGate | None, str | None]:
    """The run's familiarity gate and, when its file exists but cannot be used, why; ``width``
    is how many pooled features the model gives (a gate of another width would fail at the
    first prediction)."""
    path = loaded.paths.root / FAMILIARITY_FILE
    try:
        gate = load_gate(path, loaded.manifest.weights_sha256)
    except FileNotFoundError:
        return None, None
    except FamiliarityFileError as exc:
        return None, str(exc)
    if gate.bank.class_names != tuple(loaded.class_names):
        return None, f"{path} lists other classes than the run's model; refit it."
    if gate.bank.features.shape[1] != width:
        return None, (
            f"{path} holds {gate.bank.features.shape[1]} features an image where the run's "
            f"model gives {width}; refit it."
        )
    return gate, None


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders replaced by the image files below them (hidden ones skipped)."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(
                sorted(
                    f
                    for f in path.rglob("*")
                    if f.is_file()
                    and f.suffix.lower() in IMAGE_SUFFIXES
                    and not any(is_hidden(p) for p in f.relative_to(path).parts)
                )
            )
        else:
            out.append(path)
    return out


#: lru_cache does not lock: sessions (threads) asking for a cold run at once would each
#: load their own copy of the model.
_LOADING = threading.Lock()


@functools.lru_cache(maxsize=4)
def _cached(root: str, weights_mtime: float) -> Predictor:
    del weights_mtime  # part of the key: retrained or replaced weights load afresh
    return Predictor(load_run_model(runs.RunPaths(Path(root))))


def load_predictor(ref: str | Path | runs.RunPaths) -> Predictor:
    """The :class:`Predictor` of a run, loaded once per process and cached; thread-safe
    (concurrent sessions share one)."""
    paths = ref if isinstance(ref, runs.RunPaths) else runs.resolve_run(ref)
    mtime = paths.weights.stat().st_mtime if paths.weights.exists() else 0.0
    with _LOADING:
        return _cached(str(paths.root.resolve()), mtime)


def results_frame(results: Sequence[Prediction | PredictionError], class_names: Sequence[str]):
    """A flat table (one row per input) for CSV downloads."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for r in results:
        if isinstance(r, PredictionError):
            rows.append({"path": r.path, "error": r.error})
            continue
        row = {
            "path": r.path,
            "error": None,
            "top_class": r.top_class,
            "confidence": r.confidence,
            "risk_tier": r.risk_tier,
            "malignant_probability": r.malignant_probability,
            "ood": r.ood,
            "ood_score": r.ood_score,
            "ood_reason": r.ood_reason,
            "tta_spread": r.tta_spread,
        }
        row.update({f"p_{c}": r.probabilities[c] for c in class_names})
        rows.append(row)
    return pd.DataFrame(rows)
