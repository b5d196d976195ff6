"""How familiar an image is to a model: is it dermoscopy like the images the model was
trained on, judged in the model's own feature space?

A classifier's logits do not say when an input is unlike anything it saw (issue 15: a
building passed the energy check, 11 % of real lesions failed it), and plain distances in
its feature space separate better but not enough (a cpu-best fold model on isic9, lesions
against non-dermoscopy images: energy AUROC 0.40, 5-NN cosine distance 0.91, class-wise
Mahalanobis 0.97; at 3 % false alarms they catch 64 %, 86 % and 87 % with the colour
checks). What works is *outlier exposure*: a logistic "dermoscopy or not" detector on the
model's pooled features (:data:`skinlab.model.backbones.POOL_LAYER`) plus a few image statistics
(:func:`image_statistics`), trained with the training lesions as positives and procedural
textures (never a photograph) as negatives: AUROC 0.997-0.998 on the same images, 99 %
caught at 3-4 % false alarms (README, "Unfamiliar images").

* :class:`FeatureBank` holds the training images' features (unit length, ``float16``, at
  most :data:`MAX_BANK` images) with each image's label and path:
  :meth:`FeatureBank.nearest` gives the most similar training cases.
* :class:`Detector` is the logistic detector; its probability is the gate's score.
* :class:`FamiliarityGate` adds the threshold (a quantile of the validation lesions'
  scores) and the :class:`GateValidation` it was measured on, so the two error rates can
  be read at any threshold (:meth:`GateValidation.rates`).
* :func:`save_gate` / :func:`load_gate` keep it in the run folder as ``familiarity.npz``
  (no pickles), tied to the weights by their sha256.

Fitting on a model is :mod:`skinlab.evaluate.familiarity_fit`; this module is plain numpy and Pillow.

Example::

    gate = load_gate(paths.root / FILE, weights_sha256)
    scores = gate.scores(features, np.stack([image_statistics(img) for img in images]))
    unfamiliar = scores > gate.threshold
    index, distance = gate.bank.nearest(features, 5)     # the 5 most similar training images

Why one module: the gate's parts (feature bank, detector, thresholds, the saved file) are
one object that must be saved and loaded whole; its fitting is apart, in
:mod:`skinlab.evaluate.familiarity_fit`.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from skinlab.core import atomic
from skinlab.core.errors import SkinlabError
from skinlab.core.manifest import MAX_CLASSES

#: The gate's file in the run folder.
FILE = "familiarity.npz"
#: Share of validation lesions below the threshold: the gate's intended false-alarm rate
#: on real lesions is 1 - this (the quality and colour checks add ~0.1 %).
DEFAULT_QUANTILE = 0.97
#: Share of validation lesions whose nearest training image is nearer than the "far"
#: distance: a nearest neighbour beyond it is itself a warning.
FAR_QUANTILE = 0.99
#: Most training images kept in the bank (a random subset beyond): 4,000 x 256 features in
#: float16 are 2 MB.
MAX_BANK = 4000
#: Largest unpacked gate file read: a bank of MAX_BANK images is ~2 MB, so anything near
#: this was not written by skinlab (a hand-made archive that would fill the memory).
MAX_FILE_BYTES = 256 * 2**20
#: Largest gate file opened (compressed, it is smaller than what it unpacks to).
MAX_ARCHIVE_BYTES = 256 * 2**20
#: Similar training cases shown per prediction.
SIMILAR = 5
#: Numbers :func:`image_statistics` gives per image (the detector's inputs after the features).
STATISTICS = 20
#: Widest feature vector a gate may hold (the widest backbone pools 2,560 numbers).
MAX_FEATURES = 8192
#: Most arrays in a gate file (:func:`save_gate` writes 13) and the longest meta it writes
#: (a few hundred bytes, and a class list).
_MAX_MEMBERS = 64
_MAX_META_BYTES = 2**20


class FamiliarityFileError(SkinlabError):
    """A run's ``familiarity.npz`` is unreadable or belongs to other weights."""


def unit_rows(features: np.ndarray) -> np.ndarray:
    """``float32`` copy of ``(N, D)`` ``features`` with each row scaled to length 1 (zero rows
    stay zero)."""
    x = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


@dataclass(frozen=True)
class FeatureBank:
    """The training images as points in feature space.

    Attributes:
        features: ``float16 (N, D)``, rows of unit length.
        labels: ``int16 (N,)`` indices into ``class_names``.
        relpaths: ``(N,)`` str, each image's path inside the dataset.
        class_names: the model's classes.
    """

    features: np.ndarray
    labels: np.ndarray
    relpaths: np.ndarray
    class_names: tuple[str, ...]

    @classmethod
    def build(
        cls,
        features: np.ndarray,
        labels: np.ndarray,
        relpaths: list[str] | np.ndarray,
        class_names: list[str] | tuple[str, ...],
        *,
        limit: int = MAX_BANK,
        seed: int = 0,
    ) -> FeatureBank:
        """A bank of at most ``limit`` images (a random subset, drawn from ``seed``).

        Raises:
            ValueError: no images, or arrays of different lengths.
        """
        n = len(features)
        if n == 0:
            raise ValueError("A feature bank needs at least one training image.")
        if not len(labels) == len(relpaths) == n:
            raise ValueError(f"Got {n} feature rows, {len(labels)} labels, {len(relpaths)} paths.")
        keep = np.arange(n)
        if n > limit:
            keep = np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))
        return cls(
            features=unit_rows(np.asarray(features)[keep]).astype(np.float16),
            labels=np.asarray(labels, dtype=np.int16)[keep],
            relpaths=np.asarray(relpaths, dtype=str)[keep],
            class_names=tuple(class_names),
        )

    def __len__(self) -> int:
        return len(self.labels)

    def distances(self, queries: np.ndarray) -> np.ndarray:
        """Cosine distances ``(Q, N)`` (0 = same direction, 2 = opposite) of ``(Q, D)``
        ``queries`` to every bank image."""
        q = unit_rows(np.atleast_2d(queries))
        if q.shape[-1] != self.features.shape[-1]:
            raise ValueError(
                f"The queries have {q.shape[-1]} features but the bank {self.features.shape[-1]}."
            )
        return np.clip(1.0 - q @ self.features.astype(np.float32).T, 0.0, 2.0)

    def nearest(self, queries: np.ndarray, n: int = SIMILAR) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, distances)``, each ``(Q, min(n, len(bank)))``, nearest first."""
        d = self.distances(queries)
        n = min(n, d.shape[1])
        part = np.argpartition(d, n - 1, axis=1)[:, :n]
        order = np.take_along_axis(d, part, axis=1).argsort(axis=1, kind="stable")
        index = np.take_along_axis(part, order, axis=1)
        return index, np.take_along_axis(d, index, axis=1)


#: Side of the thumbnail :func:`image_statistics` measures.
_STATS_PX = 64


def image_statistics(image: Image.Image) -> np.ndarray:
    """Twenty numbers describing how ``image`` looks, for the :class:`Detector`.

    Colour (mean and spread of R, G, B and of H, S, V), sharpness (mean and spread of the
    gradient, log variance of the Laplacian, share of strong edges: dermoscopy is smooth,
    photographs of scenes and text are not), layout (a centred lesion is darker than the
    ring around it; dermoscopes darken the corners) and the share of skin hues, all on a
    64 px thumbnail, so any image size gives comparable numbers.
    """
    small = image.convert("RGB").resize((_STATS_PX, _STATS_PX), Image.Resampling.BILINEAR)
    rgb = np.asarray(small, dtype=np.float64) / 255.0
    hsv = np.asarray(small.convert("HSV"), dtype=np.float64) / 255.0
    grey = rgb.mean(axis=-1)
    gy, gx = np.gradient(grey)
    gradient = np.hypot(gx, gy)
    laplacian = (
        grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    )
    half = (_STATS_PX - 1) / 2
    yy, xx = np.mgrid[0:_STATS_PX, 0:_STATS_PX]
    radius = np.hypot(yy - half, xx - half) / _STATS_PX  # 0 at the centre, 0.71 at a corner
    centre = grey[radius < 0.25].mean()
    ring = grey[(radius > 0.31) & (radius < 0.47)].mean()
    corners = grey[radius > 0.56].mean()
    hue = hsv[..., 0] * 360.0
    skin_hues = ((hue < 50) | (hue > 330)).mean()
    shape = [
        gradient.mean(),
        gradient.std(),
        np.log1p(laplacian.var() * 1e4),
        (gradient > 0.05).mean(),
        centre - ring,
        corners - ring,
        skin_hues,
        np.median(grey),
    ]
    colour = [rgb.reshape(-1, 3), hsv.reshape(-1, 3)]
    return np.concatenate(
        [part for c in colour for part in (c.mean(axis=0), c.std(axis=0))] + [np.array(shape)]
    )


@dataclass(frozen=True)
class Detector:
    """A logistic "not dermoscopy" detector on standardised inputs.

    ``score(x) = sigmoid(((x - mean) / scale) @ weights + bias)`` where ``x`` is the pooled
    features followed by :func:`image_statistics`.
    """

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def scores(self, features: np.ndarray, statistics: np.ndarray) -> np.ndarray:
        """Probabilities ``(N,)`` that each image is *not* dermoscopy (higher = less familiar).

        Raises:
            ValueError: the inputs do not have the width the detector was fitted on.
        """
        x = np.concatenate([np.atleast_2d(features), np.atleast_2d(statistics)], axis=1)
        if x.shape[1] != len(self.weights):
            raise ValueError(
                f"The detector takes {len(self.weights)} numbers per image, got {x.shape[1]}."
            )
        z = ((x - self.mean) / self.scale) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))


@dataclass(frozen=True)
class Rates:
    """The gate's two error rates at one threshold (shares, 0..1)."""

    threshold: float
    false_alarm: float
    detection: float


@dataclass(frozen=True)
class GateValidation:
    """Scores the threshold was measured on: validation lesions and non-dermoscopy images.

    ``*_checked`` says which images the quality and colour checks flag whatever the
    threshold, so :meth:`rates` is the whole gate's, not the feature layer's alone.
    """

    lesion_scores: np.ndarray
    lesion_checked: np.ndarray
    negative_scores: np.ndarray
    negative_checked: np.ndarray
    negative_names: np.ndarray = field(default_factory=lambda: np.zeros(0, str))
    negative_families: np.ndarray = field(default_factory=lambda: np.zeros(0, str))

    def rates(self, threshold: float) -> Rates:
        """Share of lesions flagged (false alarms) and of negatives flagged (detections)."""
        return Rates(
            threshold=float(threshold),
            false_alarm=_flagged_share(self.lesion_scores, self.lesion_checked, threshold),
            detection=_flagged_share(self.negative_scores, self.negative_checked, threshold),
        )


def _flagged_share(scores: np.ndarray, checked: np.ndarray, threshold: float) -> float:
    if len(scores) == 0:
        return float("nan")
    return float(np.mean(np.asarray(checked, bool) | (np.asarray(scores) > threshold)))


def quantile_threshold(scores: np.ndarray, quantile: float = DEFAULT_QUANTILE) -> float:
    """The smallest score ``t`` with ``share(scores <= t) >= quantile``.

    Raises:
        ValueError: no scores, or ``quantile`` outside ``(0, 1]``.
    """
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], not {quantile!r}.")
    values = np.asarray(scores, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("There are no validation scores to fit the familiarity threshold on.")
    return float(np.quantile(values, quantile, method="inverted_cdf"))


@dataclass(frozen=True)
class FamiliarityGate:
    """A detector, its threshold, the training cases, and how the threshold was validated.

    Attributes:
        bank: the training images' features (the similar cases).
        detector: the outlier-exposure detector whose probability is the score.
        threshold: scores above it are unfamiliar.
        far_distance: a nearest training image farther than this is a warning.
        quantile: the validation quantile the threshold is.
        weights_sha256: the weights the features came from.
        validation: the scores behind the rates, or ``None``.
    """

    bank: FeatureBank
    detector: Detector
    threshold: float
    far_distance: float = 2.0
    quantile: float = DEFAULT_QUANTILE
    weights_sha256: str = ""
    validation: GateValidation | None = None

    def scores(self, features: np.ndarray, statistics: np.ndarray) -> np.ndarray:
        """:meth:`Detector.scores`."""
        return self.detector.scores(features, statistics)


def save_gate(path: Path, gate: FamiliarityGate) -> None:
    """Write ``gate`` to ``path`` atomically (``.npz``, no pickled objects)."""
    meta = {
        "threshold": gate.threshold,
        "far_distance": gate.far_distance,
        "bias": gate.detector.bias,
        "quantile": gate.quantile,
        "weights_sha256": gate.weights_sha256,
        "class_names": list(gate.bank.class_names),
    }
    arrays = {
        "features": gate.bank.features,
        "labels": gate.bank.labels,
        "relpaths": gate.bank.relpaths,
        "detector_mean": gate.detector.mean,
        "detector_scale": gate.detector.scale,
        "detector_weights": gate.detector.weights,
        "meta": np.array(json.dumps(meta)),
    }
    if gate.validation is not None:
        arrays.update({f"val_{k}": np.asarray(v) for k, v in vars(gate.validation).items()})
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as handle:
        # numpy's stub makes mypy match **arrays against savez_compressed's allow_pickle: bool.
        np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]


def load_gate(path: Path, weights_sha256: str | None = None) -> FamiliarityGate:
    """Read a gate written by :func:`save_gate`.

    The file comes with the run folder, which anyone with the models folder can replace, so
    every array is checked against what :func:`save_gate` writes before it is used: each
    ``.npy`` header before its data is read (:func:`_read_npz`), then the shapes, kinds and
    label range (:func:`_gate_from`).

    Raises:
        FileNotFoundError: there is none.
        FamiliarityFileError: the file is damaged or not a gate skinlab could have written, or
            ``weights_sha256`` is given and the gate was fitted on other weights (a retrained
            run).
    """
    try:
        gate = _gate_from(_read_npz(Path(path)))
    except FileNotFoundError:
        raise
    except atomic.RunFileError as exc:  # a pipe or a device in its place: already a sentence
        raise FamiliarityFileError(str(exc)) from exc
    except (OSError, ValueError, KeyError, TypeError, OverflowError, zipfile.BadZipFile) as exc:
        raise FamiliarityFileError(
            f"{path} cannot be read ({exc}); refit it with `python -m skinlab familiarity RUN`."
        ) from exc
    except RecursionError:  # its meta nests deeper than the JSON parser can go
        raise FamiliarityFileError(
            f"{path} cannot be read (its meta nests too deeply); refit it with "
            "`python -m skinlab familiarity RUN`."
        ) from None
    if weights_sha256 is not None and gate.weights_sha256 != weights_sha256:
        raise FamiliarityFileError(
            f"{path} was fitted on other weights than the run's; refit it with "
            "`python -m skinlab familiarity RUN`."
        )
    return gate


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` archive ``path`` by name, each member's ``.npy`` header read
    and checked before any of its data: the sizes in a zip's headers are whatever its maker
    wrote, and ``np.load`` trusts the ``.npy`` header (one claiming 200,000 x 200,000 floats
    passed the unpacked-size check and ran out of memory)."""
    with atomic.open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_ARCHIVE_BYTES:  # before zipfile reads a directory of any claimed size
            raise ValueError(f"it is {size / 2**20:.0f} MB")
        if handle.read(4) != b"PK\x03\x04":
            raise ValueError("it is not an .npz archive")
        with zipfile.ZipFile(handle) as archive:
            members = archive.infolist()
            unpacked = sum(info.file_size for info in members)
            if unpacked > MAX_FILE_BYTES or len(members) > _MAX_MEMBERS:
                raise ValueError(f"it unpacks to {unpacked / 2**20:.0f} MB in {len(members)} files")
            return {m.filename.removesuffix(".npy"): _read_member(archive, m) for m in members}


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    name = info.filename
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version not in ((1, 0), (2, 0)):  # what numpy writes; 3.0 only for odd field names
            raise ValueError(f"{name} is in .npy format {version}")
        read_header = getattr(np.lib.format, f"read_array_header_{version[0]}_0")
        shape, fortran, dtype = read_header(member)
        if dtype.kind not in "biufU" or dtype.hasobject or dtype.names:
            raise ValueError(f"{name} holds {dtype} values, not numbers or text")
        size = math.prod(shape) * dtype.itemsize
        if min(shape, default=1) < 0 or size > info.file_size:
            raise ValueError(f"{name} claims shape {shape} but holds {info.file_size} bytes")
        data = member.read(size)
    if len(data) != size:
        raise ValueError(f"{name} ends before its {shape} values")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


def _gate_from(arrays: dict[str, np.ndarray]) -> FamiliarityGate:
    """The gate :func:`save_gate` wrote as ``arrays``.

    Raises:
        KeyError, ValueError: an array is missing, or its shape, kind or values are not what
            :func:`save_gate` writes (labels outside the class list, a detector of another
            width than the bank's features plus :data:`STATISTICS`).
    """
    meta_text = arrays["meta"]
    _expect(meta_text, "meta", (), "U")
    if meta_text.dtype.itemsize > _MAX_META_BYTES:
        raise ValueError("its meta is larger than skinlab writes")
    meta = json.loads(str(meta_text))
    names = meta["class_names"]
    if not (isinstance(names, list) and 2 <= len(names) <= MAX_CLASSES):
        raise ValueError(f"it does not list 2 to {MAX_CLASSES} class names")
    features = arrays["features"]
    _expect(features, "features", (len(features), -1), "f")
    rows, width = features.shape
    if not (0 < rows <= MAX_BANK and 0 < width <= MAX_FEATURES):
        raise ValueError(f"its feature bank is {rows} x {width}")
    labels = _expect(arrays["labels"], "labels", (rows,), "iu")
    if labels.min() < 0 or labels.max() >= len(names):
        raise ValueError(f"its labels lie outside the {len(names)} classes")
    mean, scale, weights = (
        _expect(arrays[f"detector_{k}"], k, (width + STATISTICS,), "f")
        for k in ("mean", "scale", "weights")
    )
    return FamiliarityGate(
        bank=FeatureBank(
            features, labels, _expect(arrays["relpaths"], "relpaths", (rows,), "U"), tuple(names)
        ),
        detector=Detector(mean, scale, weights, bias=float(meta["bias"])),
        threshold=float(meta["threshold"]),
        far_distance=float(meta["far_distance"]),
        quantile=float(meta["quantile"]),
        weights_sha256=str(meta["weights_sha256"]),
        validation=_validation(arrays) if "val_lesion_scores" in arrays else None,
    )


def _validation(arrays: dict[str, np.ndarray]) -> GateValidation:
    values = {k.removeprefix("val_"): v for k, v in arrays.items() if k.startswith("val_")}
    lesions, negatives = len(values["lesion_scores"]), len(values["negative_scores"])
    for key, value in values.items():
        count = lesions if key.startswith("lesion") else negatives
        kinds = "U" if key in ("negative_names", "negative_families") else "biuf"
        # Names and families may be empty (a gate saved before they were kept).
        _expect(value, key, (0,) if kinds == "U" and not len(value) else (count,), kinds)
    return GateValidation(**values)


def _expect(array: np.ndarray, name: str, shape: tuple[int, ...], kinds: str) -> np.ndarray:
    """``array`` when it has ``shape`` (-1: any length) and a dtype kind in ``kinds``."""
    fits = array.ndim == len(shape) and all(
        n in (-1, m) for n, m in zip(shape, array.shape, strict=True)
    )
    if not fits or array.dtype.kind not in kinds:
        raise ValueError(f"its {name} are {array.dtype} of shape {array.shape}")
    return array
