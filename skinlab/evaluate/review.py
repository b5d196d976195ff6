"""The review queue: every image with a reason to doubt it, most serious first.

Reasons, in the order the queue ranks them:

1. ``label_conflict``: the same file (identical bytes) is filed under two classes; at
   least one of its labels is wrong (from :mod:`skinlab.data.audit`).
2. ``label_error``: a model that never saw the image disagrees with its folder, as
   confident learning judges it (``cleanlab.filter.find_label_issues`` on out-of-fold
   probabilities from :mod:`skinlab.evaluate.out_of_fold`); ranked by how little probability the
   folder's class gets.
3. ``exact_duplicate``: byte-identical copies under one label: the image counts twice.
4. ``near_duplicate``: the same picture re-saved, resized or brightened
   (:mod:`skinlab.data.near_duplicates`); across splits it is a leak the audit cannot see.

An image with several reasons is one card, ranked by its most serious one. The queue only
reads: deciding what to do about a card is :mod:`skinlab.data.overrides`' job.

Example::

    queue = review_dataset("data/skinlab-demo")
    queue.cards[0].reasons, queue.cards[0].details
    print(queue.summary())
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skinlab.data.audit import AuditReport, audit_dataset
from skinlab.data.discovery import Dataset, discover
from skinlab.data.near_duplicates import near_duplicate_pairs, tiny_images
from skinlab.evaluate.out_of_fold import OutOfFold, from_cross_validation, quick_estimate

#: Reasons, most serious first, with the sentence a page shows above their cards.
REASONS: dict[str, str] = {
    "label_conflict": "Label conflict: the same file is filed under two classes.",
    "label_error": "Likely label error: a model that never saw it sees another class.",
    "exact_duplicate": "Exact duplicate: the same bytes twice under one label.",
    "near_duplicate": "Near duplicate: the same picture saved again.",
}
_EXAMPLES = 5


@dataclass(frozen=True)
class ReviewCard:
    """One doubtful image.

    Attributes:
        relpath, path, split, label: the file as discovery found it (``label`` = its folder).
        reasons: keys of :data:`REASONS`, most serious first.
        details: one sentence per reason, same order.
        copies: relpaths of its exact and near copies.
        probabilities: out-of-fold ``{class: probability}`` (Train images only), else empty.
        suggested: the class the out-of-fold model prefers, when it is not ``label``.
        label_quality: the out-of-fold probability of ``label`` (``nan`` when unknown);
            lower is more suspicious.
    """

    relpath: str
    path: str
    split: str
    label: str
    reasons: tuple[str, ...]
    details: tuple[str, ...]
    copies: tuple[str, ...] = ()
    probabilities: dict[str, float] = field(default_factory=dict)
    suggested: str | None = None
    label_quality: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["label_quality"] = None if math.isnan(self.label_quality) else self.label_quality
        return data


@dataclass(frozen=True)
class ReviewQueue:
    """The ranked cards of one dataset and where the out-of-fold evidence came from."""

    root: str
    cards: tuple[ReviewCard, ...]
    evidence: str

    def count(self, reason: str) -> int:
        """Cards whose most serious reason is ``reason``."""
        return sum(1 for c in self.cards if c.reasons[0] == reason)

    def relpaths(self, reason: str) -> list[str]:
        """Relpaths of every card that has ``reason`` (at any rank), in queue order."""
        return [c.relpath for c in self.cards if reason in c.reasons]

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "evidence": self.evidence,
            "counts": {r: self.count(r) for r in REASONS},
            "cards": [c.to_dict() for c in self.cards],
        }

    def summary(self) -> str:
        lines = [
            f"Review queue of {self.root}: {len(self.cards)} image(s) to look at.",
            f"Out-of-fold evidence: {self.evidence}.",
        ]
        for reason, title in REASONS.items():
            cards = [c for c in self.cards if c.reasons[0] == reason]
            lines.append(f"{title} {len(cards) or 'None'}")
            lines.extend(f"  {c.relpath}: {c.details[0]}" for c in cards[:_EXAMPLES])
            if len(cards) > _EXAMPLES:
                lines.append(f"  ... and {len(cards) - _EXAMPLES} more")
        return "\n".join(lines)


def review_dataset(
    root: str | Path, *, models_root: Path | None = None, cross_validation: bool = True
) -> ReviewQueue:
    """Scan, audit and review the dataset at ``root`` (see :func:`build_queue`).

    Out-of-fold evidence comes from the newest cross-validation of this dataset in
    ``models_root`` when ``cross_validation`` and one exists, else from
    :func:`~skinlab.evaluate.out_of_fold.quick_estimate`.

    Raises:
        DatasetLayoutError: ``root`` is not a dataset.
    """
    dataset = discover(root)
    return build_queue(
        dataset,
        audit_dataset(dataset),
        from_cross_validation(dataset, models_root) if cross_validation else None,
    )


def build_queue(dataset: Dataset, report: AuditReport, oof: OutOfFold | None = None) -> ReviewQueue:
    """The review queue of ``dataset`` from its audit ``report`` and out-of-fold
    probabilities ``oof`` (``None``: a quick estimate is made from the Train thumbnails).

    Never raises on odd content: a dataset too small for a label-error check simply has
    no ``label_error`` cards, and says so in :attr:`ReviewQueue.evidence`.
    """
    ok = dataset.images().reset_index(drop=True)
    images = tiny_images(list(ok["path"]))
    found: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    copies: dict[str, set[str]] = defaultdict(set)
    for group in report.exact_duplicates:
        kind = "label_conflict" if len(group.labels) > 1 else "exact_duplicate"
        for f in group.files:
            others = [g for g in group.files if g.relpath != f.relpath]
            copies[f.relpath].update(g.relpath for g in others)
            if kind == "label_conflict":
                labels = sorted({g.label for g in others if g.label != f.label})
                text = f"The same file is also filed under {_names(labels)}."
            else:
                text = f"Byte-identical to {others[0].relpath}: it counts twice in training."
            found[f.relpath][kind].append(text)
    _near(ok, images, found, copies)
    oof, evidence = _evidence(dataset, ok, images, oof)
    probabilities = oof.frame() if oof is not None else pd.DataFrame()
    if oof is not None:
        _label_errors(ok, oof, found)
    rows = ok.set_index("relpath")
    cards = []
    for relpath, reasons in found.items():
        row = rows.loc[relpath]
        kinds = tuple(r for r in REASONS if r in reasons)
        probs = (
            {str(k): float(v) for k, v in probabilities.loc[relpath].items()}
            if relpath in probabilities.index
            else {}
        )
        best = max(probs, key=probs.__getitem__) if probs else None
        cards.append(
            ReviewCard(
                relpath=relpath,
                path=str(row["path"]),
                split=str(row["split"]),
                label=str(row["label"]),
                reasons=kinds,
                details=tuple(reasons[k][0] for k in kinds),
                copies=tuple(sorted(copies[relpath])),
                probabilities=probs,
                suggested=best if best != row["label"] else None,
                label_quality=probs.get(str(row["label"]), math.nan),
            )
        )
    cards.sort(key=_rank)
    return ReviewQueue(str(dataset.root), tuple(cards), evidence)


def _rank(card: ReviewCard) -> tuple:
    first = list(REASONS).index(card.reasons[0])
    quality = card.label_quality if card.reasons[0] == "label_error" else 0.0
    return (first, quality, card.relpath)


def _names(labels: list[str]) -> str:
    return " and ".join(f"'{label}'" for label in labels)


def _near(
    ok: pd.DataFrame,
    images: np.ndarray,
    found: dict[str, dict[str, list[str]]],
    copies: dict[str, set[str]],
) -> None:
    relpaths, hashes, splits = list(ok["relpath"]), list(ok["content_hash"]), list(ok["split"])
    for i, j, _bits in near_duplicate_pairs(images):
        if hashes[i] == hashes[j]:
            continue  # byte-identical: the audit's finding, already on the card
        for a, b in ((i, j), (j, i)):
            leak = " (another split: a leak)" if splits[a] != splits[b] else ""
            found[relpaths[a]]["near_duplicate"].append(
                f"Nearly the same picture as {relpaths[b]}{leak}."
            )
            copies[relpaths[a]].add(relpaths[b])


def _evidence(
    dataset: Dataset, ok: pd.DataFrame, images: np.ndarray, oof: OutOfFold | None
) -> tuple[OutOfFold | None, str]:
    if oof is not None:
        return oof, oof.source
    train = ok["split"] == "Train"
    try:
        oof = quick_estimate(ok[train], dataset.class_names, images=images[train.to_numpy()])
    except Exception as exc:  # noqa: BLE001 - advice only: a failed check must not hide the rest
        return None, f"none ({exc})"
    return oof, oof.source


def _label_errors(ok: pd.DataFrame, oof: OutOfFold, found: dict[str, dict[str, list[str]]]) -> None:
    """Confident learning (cleanlab) over the Train images that have probabilities."""
    from cleanlab.filter import find_label_issues

    names = list(oof.class_names)
    frame = oof.frame()
    train = ok[(ok["split"] == "Train") & ok["relpath"].isin(frame.index) & ok["label"].isin(names)]
    if train["label"].nunique() < 2:
        return
    probs = frame.loc[train["relpath"]].to_numpy(float)
    probs = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
    labels = train["label"].map({n: i for i, n in enumerate(names)}).to_numpy()
    # prune_by_class: on the demo it ranks exactly the planted mislabels first, where
    # the default (prune_by_noise_rate) missed one lesion filed under a very different
    # class, because its class pair had too few such images to prune.
    # n_jobs=1: cleanlab's default forks a multiprocessing pool, and a fork inside the
    # Streamlit server (a process full of threads) can copy a held lock into the child,
    # which then waits forever: the Review tab spun on "Ranking the images" at 0 % CPU.
    issues = find_label_issues(
        labels,
        probs,
        filter_by="prune_by_class",
        return_indices_ranked_by="self_confidence",
        n_jobs=1,
    )
    relpaths = list(train["relpath"])
    for i in issues:
        given, best = names[labels[i]], names[int(probs[i].argmax())]
        found[relpaths[i]]["label_error"].append(
            f"A model that never saw it gives '{given}' {probs[i, labels[i]]:.0%}; "
            f"it looks like '{best}' ({probs[i].max():.0%})."
        )
