"""What travels with a run's weights: ``manifest.json`` as one frozen, typed record.

Training writes it once the weights are kept (:func:`skinlab.core.runs.write_manifest`);
everything that uses a model reads it back through :func:`skinlab.core.runs.read_manifest`,
which hands out a :class:`Manifest` or refuses the file in one sentence. The file's keys are
the field names, so manifests written before this record existed read the same way.

Example::

    manifest = runs.read_manifest(paths)
    manifest.class_names, manifest.image_size, manifest.temperature
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

#: What a model takes (the same contract for every backbone).
INPUT_CONTRACT = "RGB, float32 or uint8, 0..255, shape (N, size, size, 3)"
#: A run trained on the dataset folder as it is, without review decisions (the same word
#: as :data:`skinlab.data.overrides.RAW`).
RAW_VERSION = "raw"
#: Most classes a model may have: the nine ISIC classes, or another dataset's few. Every
#: reader builds per-class work (a head, a confusion matrix of this side squared, a bar per
#: class) from a file anyone with the models folder can edit: a manifest of 500,000 names
#: built a 3.3 GB head, a 1,000-class confusion matrix took the Runs page 457 s.
MAX_CLASSES = 100
#: Longest class name (a folder name: at most 255 bytes on common file systems).
MAX_CLASS_NAME = 255


@dataclass(frozen=True)
class Manifest:
    """A run's ``manifest.json``.

    Attributes:
        backbone: the registry name of the architecture (:mod:`skinlab.model.backbones`).
        class_names: the model's output order, two or more distinct names.
        image_size: the square input size in pixels.
        temperature: the calibration temperature the logits are divided by.
        ood_threshold: the energy above which an input counts as unfamiliar, if fitted.
        weights_sha256: the hash the weights file must have to be loaded.
        weights_file: the weights file's name in the run folder.
        preprocessing: what the model does to its 0..255 input, for people.
        train_counts, train_counts_after_rebalancing: training images per class, before
            and after oversampling.
        val_count: validation images.
        best_epoch: the epoch whose weights were kept.
        data_root: the dataset folder it was trained on.
        data_version: the dataset version (:mod:`skinlab.data.overrides`), ``"raw"`` without
            review decisions.
        skinlab_version, keras_version: the software that trained it.
        input, output: the model's input contract and what it outputs (logits).
    """

    backbone: str
    class_names: tuple[str, ...]
    image_size: int
    temperature: float = 1.0
    ood_threshold: float | None = None
    weights_sha256: str = ""
    weights_file: str = "best.weights.h5"
    preprocessing: str = ""
    train_counts: Mapping[str, int] = field(default_factory=dict)
    train_counts_after_rebalancing: Mapping[str, int] = field(default_factory=dict)
    val_count: int | None = None
    best_epoch: int | None = None
    data_root: str | None = None
    data_version: str = RAW_VERSION
    skinlab_version: str | None = None
    keras_version: str | None = None
    input: str = INPUT_CONTRACT
    output: str = "logits"

    @property
    def train_images(self) -> int:
        """Training images before rebalancing."""
        return int(sum(self.train_counts.values()))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object ``manifest.json`` holds."""
        data = dataclasses.asdict(self)
        data["class_names"] = list(self.class_names)
        data["train_counts"] = dict(self.train_counts)
        data["train_counts_after_rebalancing"] = dict(self.train_counts_after_rebalancing)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        """Read a manifest's JSON object. Keys it does not know are ignored, missing optional
        ones take their defaults.

        Raises:
            ValueError: what makes it unusable for a model, as the end of a sentence that
                starts "the manifest": not an object, no backbone, fewer than two distinct
                class names or more than :data:`MAX_CLASSES` (or one longer than
                :data:`MAX_CLASS_NAME`), a size that is not a positive whole number, a
                temperature that is not a positive number.
        """
        if not isinstance(data, Mapping):
            raise ValueError("is not a JSON object")
        backbone = data.get("backbone")
        if not isinstance(backbone, str) or not backbone:
            raise ValueError(f"names no backbone ({backbone!r})")
        names = data.get("class_names")
        if isinstance(names, list) and len(names) > MAX_CLASSES:
            raise ValueError(f"lists {len(names):,} classes, more than the {MAX_CLASSES} allowed")
        if (
            not isinstance(names, list)
            or len(names) < 2
            or not all(isinstance(n, str) and 0 < len(n) <= MAX_CLASS_NAME for n in names)
            or len(set(names)) != len(names)
        ):
            raise ValueError("does not list two or more distinct class names")
        size = data.get("image_size")
        if not _is_int(size) or size <= 0:
            raise ValueError(f"gives image size {size!r}, which is not a positive whole number")
        temperature = data.get("temperature", 1.0)
        if not _is_number(temperature) or not 0 < temperature < math.inf:
            raise ValueError(f"gives temperature {temperature!r}, which is not a positive number")
        threshold = data.get("ood_threshold")
        return cls(
            backbone=backbone,
            class_names=tuple(names),
            image_size=int(size),
            temperature=float(temperature),
            ood_threshold=float(threshold) if _is_number(threshold) else None,
            weights_sha256=_text(data.get("weights_sha256")) or "",
            weights_file=_text(data.get("weights_file")) or cls.weights_file,
            preprocessing=_text(data.get("preprocessing")) or "",
            train_counts=_counts(data.get("train_counts"), names),
            train_counts_after_rebalancing=_counts(
                data.get("train_counts_after_rebalancing"), names
            ),
            val_count=_whole(data.get("val_count")),
            best_epoch=_whole(data.get("best_epoch")),
            data_root=_text(data.get("data_root")),
            data_version=_text(data.get("data_version")) or RAW_VERSION,
            skinlab_version=_text(data.get("skinlab_version")),
            keras_version=_text(data.get("keras_version")),
            input=_text(data.get("input")) or INPUT_CONTRACT,
            output=_text(data.get("output")) or "logits",
        )


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _whole(value: Any) -> int | None:
    return int(value) if _is_int(value) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _counts(value: Any, names: list[str]) -> dict[str, int]:
    """The image count of each of ``names`` that ``value`` gives (other keys are dropped, so
    the record never holds more entries than the model has classes)."""
    if not isinstance(value, Mapping):
        return {}
    return {n: int(value[n]) for n in names if _is_int(value.get(n))}
