"""External validation: a run scored on another collection of images than the one it
learned from, beside its own score, so a drop shows.

A model can learn the archive instead of the lesion (:mod:`skinlab.data.collections`); its
score on a Test split cut from the same archive as its training data cannot show that.
:func:`evaluate_external` reads an external set (:func:`skinlab.data.external.read_external`),
leaves out the images the run's training data already holds
(:func:`skinlab.data.overlap.drop_training_overlap`) and those it cannot score, scores the
rest as ``evaluate`` scores a split, and sets the run's own score from its ``metrics.json``
beside it.

Contract:

* The result is ``evaluate --json``'s dict (``split`` is ``"External"``) plus ``"external"``:
  ``n_scored``, ``layout``, ``excluded`` (``{rule: count}``, every rule), ``skipped``
  (``{reason: count}``: the set's own skips, unreadable images, and ``class the model does
  not know (<class>)``), ``classes_absent`` (the model's classes without a scored image: the
  balanced accuracy and its interval average over the classes present only), ``collections``
  (``{collection: scored images}``), ``melanoma`` (sensitivity and specificity, each
  ``{estimate, low, high}``, or ``None``), ``internal`` (``split``, ``n``,
  ``balanced_accuracy``, ``accuracy``, ``melanoma_sensitivity`` of the run's Test score,
  else its validation score; ``None`` values when it has neither), ``drop`` (one sentence)
  and ``notes``.
* Every image of the set is counted once: scored, excluded or skipped.
* When the run's training data cannot be read, nothing is excluded and a note says so.
* A summary of the result is saved in the run's ``metrics.json``
  (:func:`skinlab.evaluate.saved_checks.record_external`), for the Runs page and the model card.

Example::

    result = evaluate_external("20261127-174611", "/data/ham10000-external")
    result["balanced_accuracy"], result["external"]["internal"]["balanced_accuracy"]
    result["external"]["drop"]   # "Balanced accuracy falls from 0.66 on ..."
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skinlab.core.classes import normalise_class_name
from skinlab.core.config import RunConfig
from skinlab.core.errors import DatasetLayoutError, SkinlabError
from skinlab.core.record import RunRecord, read_run
from skinlab.data.external import EXTERNAL, read_external
from skinlab.data.extra_collections import read_extra
from skinlab.data.overlap import RULES, drop_training_overlap
from skinlab.data.overrides import OverridesError, load_version
from skinlab.evaluate.evaluation import MELANOMA
from skinlab.evaluate.intervals import bootstrap_intervals
from skinlab.evaluate.saved_checks import record_external
from skinlab.evaluate.scoring import _evaluation, score_table

#: The skip reason of a readable image whose file does not decode.
UNREADABLE = "unreadable image"


def evaluate_external(ref: str, path: str | Path, tta: int = 1) -> dict[str, Any]:
    """Score the run ``ref`` on the external set at ``path`` (see the module contract),
    averaging ``tta`` views of each image as :func:`skinlab.evaluate.scoring.evaluate_run`.

    Raises:
        DatasetLayoutError: ``path`` is no external set, or none of its images can be
            scored (all of classes the model does not know, unreadable, or in its training data).
        ValueError: ``tta`` is not between 1 and :data:`skinlab.model.views.MAX_TTA`.
    """
    return score_external(ref, path, tta)[0]


def score_external(ref: str, path: str | Path, tta: int = 1) -> tuple[dict[str, Any], pd.DataFrame]:
    """:func:`evaluate_external`'s result and its per-image predictions (``path`` relative
    to the result's ``data_root``, ``true``, ``predicted``, ``correct``, ``confidence``,
    ``p_<class>``), for the Runs page's gallery of mistakes; raises as it does."""
    from skinlab.model.modelio import load_run_model

    external = read_external(path)
    loaded = load_run_model(ref)
    record = read_run(loaded.paths)
    table, skipped = _scorable(external.table, loaded.class_names)
    training, notes = _training_images(record.config)
    excluded = dict.fromkeys(RULES, 0)
    if training is not None:
        table, excluded = drop_training_overlap(table, training)
    if table.empty:
        reasons = _counts({**excluded, **skipped, **external.skipped})
        raise DatasetLayoutError(
            f"None of the images of {path} can be scored ({reasons}); use a set with images "
            "of the run's classes that it did not train on."
        )
    metrics, frame = score_table(
        loaded.model,
        table,
        loaded.class_names,
        loaded.image_size,
        temperature=loaded.temperature,
        split=EXTERNAL,
        tta=tta,
    )
    result = _evaluation(loaded, EXTERNAL, external.root, tta, metrics, frame)
    internal = _internal(record)
    result["external"] = {
        "n_scored": len(table),
        "layout": external.layout,
        "excluded": excluded,
        "skipped": {**external.skipped, **skipped},
        "classes_absent": [c for c, row in metrics["per_class"].items() if not row["support"]],
        "collections": {str(k): int(v) for k, v in table["collection"].value_counts().items()},
        "melanoma": _melanoma_intervals(frame, loaded.class_names),
        "internal": internal,
        "drop": drop_sentence(internal, result["intervals"]["balanced_accuracy"]),
        "notes": [*external.notes, *notes],
    }
    record_external(loaded.paths, result)
    return result, frame


def _scorable(table: pd.DataFrame, class_names: list[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """The readable rows of classes the model knows, and ``{reason: count}`` of the rest."""
    skipped: dict[str, int] = {}
    unreadable = int(table["error"].notna().sum())
    if unreadable:
        skipped[UNREADABLE] = unreadable
    readable = table[table["error"].isna()]
    unknown = readable[~readable["label"].isin(class_names)]
    for label, count in unknown["label"].value_counts().sort_index().items():
        skipped[f"class the model does not know ({label})"] = int(count)
    return readable[readable["label"].isin(class_names)], skipped


def _training_images(config: RunConfig | None) -> tuple[pd.DataFrame | None, list[str]]:
    """The Train images the run learned from (its dataset version, else the folder as it
    is, plus every extra collection it trained on), or ``None`` and a note when they cannot
    be read."""
    if config is None or not config.data_root:
        return None, [
            "The run's config names no training data, so no image was checked against it."
        ]
    try:
        try:
            own, notes = load_version(config.data_root, config.data_version).images("Train"), []
        except OverridesError:
            notes = [
                f"The run's dataset version {config.data_version} is gone, so the external "
                "images were checked against its folder as it is now."
            ]
            own = load_version(config.data_root).images("Train")
    except (SkinlabError, OSError) as exc:
        return None, [
            f"The run's training data ({config.data_root}) cannot be read, so no image was "
            f"checked against it: {exc}"
        ]
    tables = [own]
    for extra in config.extra_data:
        try:
            tables.append(read_extra(extra).table)
        except (SkinlabError, OSError) as exc:
            notes.append(
                f"The run's extra collection {extra} cannot be read, so no image was checked "
                f"against it: {exc}"
            )
    return pd.concat(tables, ignore_index=True), notes


def _internal(record: RunRecord) -> dict[str, Any]:
    """The run's own score beside the external one: its Test score, else its validation
    score (``None`` values when it has neither)."""
    section: dict[str, Any] = {}
    split = None
    for key, name in (("test", "Test"), ("validation", "validation")):
        found = record.section(key)
        if found and found.get("balanced_accuracy") is not None:
            section, split = found, name
            break
    return {
        "split": split,
        "n": section.get("n"),
        "balanced_accuracy": section.get("balanced_accuracy"),
        "accuracy": section.get("accuracy"),
        "melanoma_sensitivity": (section.get("melanoma") or {}).get("sensitivity"),
    }


def _melanoma_intervals(frame: pd.DataFrame, class_names: list[str]) -> dict[str, Any] | None:
    """Melanoma sensitivity and specificity with their bootstrap intervals (``None`` when
    the model has no melanoma class); an undefined one is ``None`` throughout."""
    names = [normalise_class_name(c) for c in class_names]
    if MELANOMA not in names:
        return None
    melanoma = class_names[names.index(MELANOMA)]
    true = (frame["true"] == melanoma).to_numpy(np.int64)
    predicted = (frame["predicted"] == melanoma).to_numpy(np.int64)
    recall = bootstrap_intervals(true, predicted, ["other", MELANOMA])["per_class_recall"]
    return {"sensitivity": recall[MELANOMA], "specificity": recall["other"]}


def drop_sentence(internal: dict[str, Any], external: dict[str, Any]) -> str:
    """One sentence comparing the run's own balanced accuracy (``internal``, as in the
    module contract) with the external one (``{estimate, low, high}``): a fall is a drop
    only where the own score lies above the external 95 % interval."""
    score, low, high = external["estimate"], external["low"], external["high"]
    if score is None:
        return "The external set has no balanced accuracy to compare."
    own = internal.get("balanced_accuracy")
    if own is None:
        return (
            f"Balanced accuracy is {score:.2f} on this external set; the run has no score of "
            "its own in metrics.json to set beside it."
        )
    where = f"on the run's own {internal['split']} images"
    span = f"(95 % interval {low:.2f}-{high:.2f})"
    if own > high:
        return (
            f"Balanced accuracy falls from {own:.2f} {where} to {score:.2f} on this external "
            f"set {span}: the model does not hold on another collection."
        )
    if own < low:
        return (
            f"Balanced accuracy rises from {own:.2f} {where} to {score:.2f} on this external "
            f"set {span}: this set is easier for the model than its own images."
        )
    return (
        f"Balanced accuracy is {own:.2f} {where} and {score:.2f} on this external set {span}: "
        "no drop beyond chance, the model holds on this collection."
    )


def _counts(counts: dict[str, int]) -> str:
    """``"same ISIC id: 3, no class (UNK): 2"`` of the non-zero counts, or ``"none"``."""
    return ", ".join(f"{k}: {v}" for k, v in counts.items() if v) or "none"


def report_lines(result: dict[str, Any]) -> list[str]:
    """The human summary of an :func:`evaluate_external` result, for the command line."""
    ext = result["external"]
    views = f", {result['tta']} views each" if result["tta"] > 1 else ""
    lines = [
        f"{result['run_id']} on the external set {result['data_root']} ({ext['layout']})",
        f"  scored          {ext['n_scored']} images{views} ({_counts(ext['collections'])})",
        f"  excluded        {_counts(ext['excluded'])} (already in the run's training data)",
        f"  skipped         {_counts(ext['skipped'])}",
        f"  absent classes  {', '.join(ext['classes_absent']) or 'none'}",
        f"  {'':22}{'own ' + str(ext['internal']['split'] or '-'):>10}   external (95 % interval)",
    ]
    intervals, melanoma = result["intervals"], ext["melanoma"] or {}
    rows = [
        ("balanced accuracy", "balanced_accuracy", intervals.get("balanced_accuracy")),
        ("accuracy", "accuracy", intervals.get("accuracy")),
        ("melanoma sensitivity", "melanoma_sensitivity", melanoma.get("sensitivity")),
        ("melanoma specificity", None, melanoma.get("specificity")),
    ]
    for name, key, interval in rows:
        own = ext["internal"].get(key) if key else None
        lines.append(f"  {name:22}{_number(own):>10}   {_interval(interval)}")
    return [*lines, ext["drop"], *ext["notes"]]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _interval(interval: dict[str, Any] | None) -> str:
    if not interval or interval.get("estimate") is None:
        return "-"
    return f"{interval['estimate']:.3f} ({interval['low']:.3f}-{interval['high']:.3f})"
