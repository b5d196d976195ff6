"""What a run keeps of the checks made beyond its own splits, in its ``metrics.json``: each
external set it was scored on (:func:`skinlab.evaluate.external.evaluate_external`), its
lesion-masked test (:func:`skinlab.evaluate.masking.lesion_masked_test`) and the shortcut
check of its training images (:func:`skinlab.evaluate.run_shortcuts.shortcut_check_for_run`),
so the Runs page and the model card show them without scoring again.

Contract:

* ``metrics.json["external"]`` is a list of :meth:`ExternalSummary.to_dict`, newest first, one
  per external set's folder name (a new score of a set replaces its old one), at most
  :data:`MAX_SAVED`; ``metrics.json["lesion_masked"]`` is one :meth:`MaskedSummary.to_dict`
  and ``metrics.json["shortcuts"]`` one :meth:`ShortcutSummary.to_dict`.
* Writes go through :func:`skinlab.core.atomic.write_json` (read, add, write, as
  :func:`skinlab.evaluate.familiarity_fit.write_gate` does); the rest of the file is kept.
* Reads never raise for a malformed entry: :func:`saved_external`, :func:`saved_masked` and
  :func:`saved_shortcuts` skip what does not parse.

Example::

    summary = record_external(paths, evaluate_result)
    summary.sentence   # "On ham10000-external (462 images, from HAM10000) balanced accuracy ..."
    [s.name for s in saved_external(read_run(paths).metrics)]

Why one module: the three checks share one file, one way to write into it and one rule for
reading it back; a summary each is a short frozen dataclass, and one module is where the
shape of every saved check reads side by side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skinlab.core import atomic, runs

if TYPE_CHECKING:
    from skinlab.data.shortcuts import ShortcutScore
    from skinlab.evaluate.masking import MaskedTest

EXTERNAL_KEY = "external"
MASKED_KEY = "lesion_masked"
SHORTCUTS_KEY = "shortcuts"
#: External sets kept per run (the newest).
MAX_SAVED = 20


@dataclass(frozen=True)
class Interval:
    """A score and its 95 % bootstrap interval (``None`` throughout when undefined)."""

    estimate: float | None
    low: float | None
    high: float | None

    @classmethod
    def parse(cls, value: Any) -> Interval | None:
        if not isinstance(value, dict):
            return None
        return cls(*(_float(value.get(k)) for k in ("estimate", "low", "high")))

    def text(self) -> str:
        """``"0.35 [0.31, 0.39]"``, or ``"n/a"``."""
        if self.estimate is None:
            return "n/a"
        if self.low is None or self.high is None:
            return f"{self.estimate:.2f}"
        return f"{self.estimate:.2f} [{self.low:.2f}, {self.high:.2f}]"


@dataclass(frozen=True)
class ExternalSummary:
    """One external set's score of a run, as kept in ``metrics.json``.

    Attributes:
        name: the set's folder name (the key: a new score of the same name replaces it).
        path: the set's folder when scored.
        layout: which of the four layouts it has.
        images: images scored; ``excluded`` (in the run's training data) and ``skipped``
            (unreadable, unlabelled, classes the model lacks) were left out.
        tta: test-time views averaged per image.
        balanced_accuracy, accuracy: the external scores with their intervals.
        melanoma_sensitivity, melanoma_specificity: ``None`` without a melanoma class.
        own_split, own_n, own_balanced_accuracy, own_accuracy, own_melanoma_sensitivity:
            the run's own score beside it (Test, else validation; ``None`` when it has none).
        collections: scored images per collection.
        classes_absent: the model's classes without a scored image.
        drop: the sentence comparing the two balanced accuracies.
        scored: when, ISO 8601 in UTC.
    """

    name: str
    path: str
    layout: str
    images: int
    excluded: int
    skipped: int
    tta: int
    balanced_accuracy: Interval
    accuracy: Interval
    melanoma_sensitivity: Interval | None
    melanoma_specificity: Interval | None
    own_split: str | None
    own_n: int | None
    own_balanced_accuracy: float | None
    own_accuracy: float | None
    own_melanoma_sensitivity: float | None
    collections: dict[str, int]
    classes_absent: tuple[str, ...]
    drop: str
    scored: str

    @classmethod
    def from_result(cls, result: dict[str, Any]) -> ExternalSummary:
        """The summary of an :func:`~skinlab.evaluate.external.evaluate_external` result."""
        ext, intervals = result["external"], result["intervals"]
        internal, melanoma = ext["internal"], ext["melanoma"] or {}
        return cls.parse(
            {
                "name": Path(result["data_root"]).name,
                "path": result["data_root"],
                "layout": ext["layout"],
                "images": ext["n_scored"],
                "excluded": sum(ext["excluded"].values()),
                "skipped": sum(ext["skipped"].values()),
                "tta": result["tta"],
                "balanced_accuracy": intervals["balanced_accuracy"],
                "accuracy": intervals["accuracy"],
                "melanoma_sensitivity": melanoma.get("sensitivity"),
                "melanoma_specificity": melanoma.get("specificity"),
                **{f"own_{k}": internal.get(k) for k in ("split", "n", "accuracy")},
                "own_balanced_accuracy": internal.get("balanced_accuracy"),
                "own_melanoma_sensitivity": internal.get("melanoma_sensitivity"),
                "collections": ext["collections"],
                "classes_absent": ext["classes_absent"],
                "drop": ext["drop"],
                "scored": _now(),
            }
        )

    @classmethod
    def parse(cls, data: dict[str, Any]) -> ExternalSummary:
        """The summary of a dict of its fields (as :meth:`to_dict` writes them).

        Raises:
            KeyError, TypeError, ValueError: ``data`` is not such a dict.
        """
        balanced, accuracy = (
            Interval.parse(data["balanced_accuracy"]),
            Interval.parse(data["accuracy"]),
        )
        if balanced is None or accuracy is None:
            raise ValueError("a summary needs its balanced accuracy and accuracy")
        split = data.get("own_split")
        return cls(
            name=str(data["name"]),
            path=str(data["path"]),
            layout=str(data["layout"]),
            images=int(data["images"]),
            excluded=int(data.get("excluded") or 0),
            skipped=int(data.get("skipped") or 0),
            tta=int(data.get("tta") or 1),
            balanced_accuracy=balanced,
            accuracy=accuracy,
            melanoma_sensitivity=Interval.parse(data.get("melanoma_sensitivity")),
            melanoma_specificity=Interval.parse(data.get("melanoma_specificity")),
            own_split=None if split is None else str(split),
            own_n=None if data.get("own_n") is None else int(data["own_n"]),
            own_balanced_accuracy=_float(data.get("own_balanced_accuracy")),
            own_accuracy=_float(data.get("own_accuracy")),
            own_melanoma_sensitivity=_float(data.get("own_melanoma_sensitivity")),
            collections={str(k): int(v) for k, v in dict(data.get("collections") or {}).items()},
            classes_absent=tuple(str(c) for c in data.get("classes_absent") or ()),
            drop=str(data.get("drop") or ""),
            scored=str(data.get("scored") or ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def sentence(self) -> str:
        """``"On ham10000-external (462 images, from HAM10000) balanced accuracy 0.35
        [0.31, 0.39] against 0.66 on its own validation images; melanoma sensitivity 0.04."``"""
        origin = ", ".join(self.collections) or "an unnamed collection"
        text = f"On {self.name} ({self.images} images, from {origin}) balanced accuracy "
        text += self.balanced_accuracy.text()
        if self.own_balanced_accuracy is not None:
            text += f" against {self.own_balanced_accuracy:.2f} on its own {self.own_split} images"
        else:
            text += " (the run has no score of its own to set beside it)"
        sensitivity = self.melanoma_sensitivity
        if sensitivity is not None and sensitivity.estimate is not None:
            text += f"; melanoma sensitivity {sensitivity.estimate:.2f}"
        return text + "."


@dataclass(frozen=True)
class MaskedSummary:
    """A run's lesion-masked test as kept in ``metrics.json`` (the fields of
    :class:`~skinlab.evaluate.masking.MaskedTest` but its run id, and when it was made)."""

    split: str
    images: int
    chance: float
    as_is: float
    centre_hidden: float
    centre_only: float
    uses_context: bool
    sentence: str
    scored: str

    @classmethod
    def parse(cls, data: dict[str, Any]) -> MaskedSummary:
        """Raises KeyError, TypeError or ValueError for a dict of another shape."""
        numbers = {k: float(data[k]) for k in ("chance", "as_is", "centre_hidden", "centre_only")}
        return cls(
            split=str(data["split"]),
            images=int(data["images"]),
            **numbers,
            uses_context=bool(data["uses_context"]),
            sentence=str(data["sentence"]),
            scored=str(data.get("scored") or ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ShortcutSummary:
    """A run's shortcut check as kept in ``metrics.json``: the scores of
    :class:`~skinlab.data.shortcuts.ShortcutScore` on the rows the run trained and validated
    on, its :attr:`~skinlab.data.shortcuts.ShortcutScore.sentence` (``"On the 120 images the
    run trained and validated on, 20 numbers that never look at the lesion ..."``) and when
    it was made."""

    images: int
    classes: int
    class_balanced_accuracy: float
    class_chance: float
    collection_accuracy: float | None
    collection_base_rate: float | None
    label_predictable: bool
    sentence: str
    scored: str

    @classmethod
    def parse(cls, data: dict[str, Any]) -> ShortcutSummary:
        """Raises KeyError, TypeError or ValueError for a dict of another shape."""
        return cls(
            images=int(data["images"]),
            classes=int(data["classes"]),
            class_balanced_accuracy=float(data["class_balanced_accuracy"]),
            class_chance=float(data["class_chance"]),
            collection_accuracy=_float(data.get("collection_accuracy")),
            collection_base_rate=_float(data.get("collection_base_rate")),
            label_predictable=bool(data["label_predictable"]),
            sentence=str(data["sentence"]),
            scored=str(data.get("scored") or ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_external(paths: runs.RunPaths, result: dict[str, Any]) -> ExternalSummary:
    """Save the summary of an external score of the run ``paths`` into its ``metrics.json``
    (replacing the set's earlier one); returns it.

    Raises:
        RunFileError: ``metrics.json`` exists but cannot be read.
    """
    summary = ExternalSummary.from_result(result)
    metrics = _read(paths)
    earlier = metrics.get(EXTERNAL_KEY)
    kept = [
        entry
        for entry in (earlier if isinstance(earlier, list) else [])
        if isinstance(entry, dict) and entry.get("name") != summary.name
    ]
    entries = [summary.to_dict(), *kept][:MAX_SAVED]
    atomic.write_json(paths.metrics, {**metrics, EXTERNAL_KEY: entries})
    return summary


def record_masked(paths: runs.RunPaths, masked: MaskedTest) -> MaskedSummary:
    """Save a lesion-masked test of the run ``paths`` into its ``metrics.json``; returns it.

    Raises:
        RunFileError: ``metrics.json`` exists but cannot be read.
    """
    names = {f.name for f in fields(MaskedSummary)}
    found = {k: v for k, v in masked.to_dict().items() if k in names}
    summary = MaskedSummary.parse({**found, "scored": _now()})
    metrics = _read(paths)
    atomic.write_json(paths.metrics, {**metrics, MASKED_KEY: summary.to_dict()})
    return summary


def record_shortcuts(paths: runs.RunPaths, score: ShortcutScore) -> ShortcutSummary:
    """Save the shortcut check ``score`` of the run ``paths``'s training and validation rows
    into its ``metrics.json`` (replacing an earlier one); returns it.

    Raises:
        RunFileError: ``metrics.json`` exists but cannot be read.
    """
    sentence = f"On the {score.images} images the run trained and validated on, {score.sentence}"
    found = {**score.to_dict(), "sentence": sentence, "scored": _now()}
    summary = ShortcutSummary.parse(found)
    metrics = _read(paths)
    atomic.write_json(paths.metrics, {**metrics, SHORTCUTS_KEY: summary.to_dict()})
    return summary


def saved_external(metrics: dict[str, Any]) -> list[ExternalSummary]:
    """The external sets saved in a run's parsed ``metrics.json``, newest first (the first
    :data:`MAX_SAVED`, all skinlab keeps: the file can be edited to hold thousands)."""
    entries = metrics.get(EXTERNAL_KEY)
    out = []
    for entry in entries[:MAX_SAVED] if isinstance(entries, list) else []:
        try:
            out.append(ExternalSummary.parse(entry))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return out


def saved_masked(metrics: dict[str, Any]) -> MaskedSummary | None:
    """The lesion-masked test saved in a run's parsed ``metrics.json``, if any."""
    try:
        return MaskedSummary.parse(metrics[MASKED_KEY])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def saved_shortcuts(metrics: dict[str, Any]) -> ShortcutSummary | None:
    """The shortcut check saved in a run's parsed ``metrics.json``, if any."""
    try:
        return ShortcutSummary.parse(metrics[SHORTCUTS_KEY])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _read(paths: runs.RunPaths) -> dict[str, Any]:
    metrics = atomic.read_json(paths.metrics, default={})
    return metrics if isinstance(metrics, dict) else {}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
