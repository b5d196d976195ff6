"""Data audit: what is wrong with a dataset before a model learns from it.

:func:`audit_dataset` turns a discovered :class:`~skinlab.data.discovery.Dataset` into an
:class:`AuditReport`: class counts and imbalance per split, unreadable files, exact
duplicates (identical bytes), label conflicts (one image filed under two classes) and
cross-split leaks (one image in both Train and Test), plus size and format statistics.

Duplicates are found by bucketing ``content_hash`` values, never by comparing pairs, so
the audit is linear in the number of images (one sort aside). Only readable images take
part in duplicates and statistics: unreadable files are listed on their own, and every
empty file would otherwise be a "duplicate" of every other.

Example::

    report = audit_dataset(discover("data/isic"))
    print(report.summary())
    json.dumps(report.to_dict())
    leaked_or_conflicting_paths(report)   # Test images to leave out of a "clean" score

Why one module: each finding (duplicates, conflicts, leaks, unreadable files, statistics) is
a short function over the same discovery table.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from operator import itemgetter
from typing import Any

import pandas as pd

from skinlab.data.discovery import SPLITS, Dataset, Note

#: Examples shown per section by :meth:`AuditReport.summary`.
_EXAMPLES = 3


def _split_rank(split: str) -> tuple[int, str]:
    """Sort key putting splits in :data:`SPLITS` order (unknown names last)."""
    return (SPLITS.index(split) if split in SPLITS else len(SPLITS), split)


@dataclass(frozen=True)
class FileRef:
    """One image file, as the audit names it."""

    relpath: str
    split: str
    label: str


@dataclass(frozen=True)
class UnreadableFile:
    """An image file that could not be decoded, with discovery's one-sentence reason."""

    relpath: str
    split: str
    label: str
    reason: str


@dataclass(frozen=True)
class DuplicateGroup:
    """Two or more readable files with identical bytes (the same ``content_hash``).

    ``files`` are in split order (Train, Val, Test), then by ``relpath``.
    """

    content_hash: str
    files: tuple[FileRef, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        """Distinct labels of the copies, sorted; more than one is a label conflict."""
        return tuple(sorted({f.label for f in self.files}))

    @property
    def splits(self) -> tuple[str, ...]:
        """Distinct splits of the copies, in split order; more than one is a leak."""
        return tuple(sorted({f.split for f in self.files}, key=_split_rank))

    def to_dict(self) -> dict[str, Any]:
        # vars() rather than asdict(): asdict deep-copies, ~10x slower on 100k files.
        files = [dict(vars(f)) for f in self.files]
        return {"content_hash": self.content_hash, "files": files}


@dataclass(frozen=True)
class Imbalance:
    """Class imbalance of one split: largest over smallest non-zero class count.

    All fields are ``None`` when the split has no readable image. Ties go to the class
    first in ``class_names`` order.
    """

    ratio: float | None
    largest: str | None
    smallest: str | None


@dataclass(frozen=True)
class AuditReport:
    """Everything :func:`audit_dataset` found; build it with that function.

    Attributes:
        root: the dataset folder audited.
        counts: ``{split: {class: readable images}}`` for every split on disk and every
            class of the dataset (0 where a class is absent).
        imbalance: ``{split: Imbalance}``.
        unreadable: files that could not be decoded, in table order.
        exact_duplicates: every group of identical readable files, within or across splits.
        label_conflicts: the duplicate groups whose copies carry two or more labels.
        cross_split_leaks: the duplicate groups whose copies sit in two or more splits.
        stats: readable-image statistics (see :func:`_stats`), JSON-ready.
        notes: what discovery skipped or found suspicious.
    """

    root: str
    counts: dict[str, dict[str, int]]
    imbalance: dict[str, Imbalance]
    unreadable: tuple[UnreadableFile, ...]
    exact_duplicates: tuple[DuplicateGroup, ...]
    label_conflicts: tuple[DuplicateGroup, ...]
    cross_split_leaks: tuple[DuplicateGroup, ...]
    stats: dict[str, Any]
    notes: tuple[Note, ...]

    def to_dict(self) -> dict[str, Any]:
        """The report as plain dicts, lists, strings and numbers (``json.dumps``-able)."""
        return {
            "root": self.root,
            "counts": {s: dict(per_class) for s, per_class in self.counts.items()},
            "imbalance": {s: asdict(i) for s, i in self.imbalance.items()},
            "unreadable": [asdict(u) for u in self.unreadable],
            "exact_duplicates": [g.to_dict() for g in self.exact_duplicates],
            "label_conflicts": [
                {**g.to_dict(), "labels": list(g.labels)} for g in self.label_conflicts
            ],
            "cross_split_leaks": [
                {**g.to_dict(), "splits": list(g.splits)} for g in self.cross_split_leaks
            ],
            "stats": self.stats,
            "notes": [asdict(n) for n in self.notes],
        }

    def summary(self) -> str:
        """A short plain-text report: a few lines per section, for the CLI."""
        readable = sum(sum(per_class.values()) for per_class in self.counts.values())
        lines = [
            f"Data audit of {self.root}",
            f"{readable} readable images in {', '.join(self.counts) or 'no split'}; "
            f"{len(self.unreadable)} unreadable.",
            "Class balance:",
        ]
        for split, per_class in self.counts.items():
            lines.append(f"  {split}: {_balance_line(per_class, self.imbalance[split])}")
        problems: list[tuple[str, Sequence, Callable]] = [
            ("Unreadable files", self.unreadable, lambda u: f"{u.relpath}: {u.reason}"),
            ("Exact duplicate groups", self.exact_duplicates, _group_line),
            ("Label conflicts (one image, several labels)", self.label_conflicts, _group_line),
            ("Cross-split leaks (one image, several splits)", self.cross_split_leaks, _group_line),
        ]
        for title, items, describe in problems:
            _section(lines, title, items, describe)
        lines.extend(_stats_lines(self.stats))
        _section(lines, "Discovery notes", self.notes, lambda n: f"{n.path}: {n.reason}")
        return "\n".join(lines)


def audit_dataset(dataset: Dataset) -> AuditReport:
    """Audit ``dataset`` (as returned by :func:`~skinlab.data.discovery.discover`).

    Reads only ``dataset.table``; never opens a file. Never raises on odd content: an
    empty split or a dataset with no readable image gives zero counts and ``None`` stats.
    """
    ok = dataset.images()
    counts = _counts(ok, dataset.splits, dataset.class_names)
    duplicates = _duplicate_groups(ok)
    return AuditReport(
        root=str(dataset.root),
        counts=counts,
        imbalance={split: _imbalance(per_class) for split, per_class in counts.items()},
        unreadable=tuple(
            UnreadableFile(r.relpath, r.split, r.label, r.error)
            for r in dataset.unreadable.itertuples(index=False)
        ),
        exact_duplicates=duplicates,
        label_conflicts=tuple(g for g in duplicates if len(g.labels) > 1),
        cross_split_leaks=tuple(g for g in duplicates if len(g.splits) > 1),
        stats=_stats(ok),
        notes=tuple(dataset.notes),
    )


def leaked_or_conflicting_paths(report: AuditReport) -> set[str]:
    """Relpaths of Test images whose score cannot be trusted.

    A Test image is suspect when an identical copy sits in another split (the model
    may have trained on it) or when its copies carry different labels (its ground truth
    is ambiguous). Training reports a "clean test" score on the Test images not in here.
    """
    suspect = (*report.cross_split_leaks, *report.label_conflicts)
    return {f.relpath for group in suspect for f in group.files if f.split == "Test"}


def _counts(
    ok: pd.DataFrame, splits: Sequence[str], class_names: Sequence[str]
) -> dict[str, dict[str, int]]:
    sizes = ok.groupby(["split", "label"]).size()
    return {s: {c: int(sizes.get((s, c), 0)) for c in class_names} for s in splits}


def _imbalance(per_class: dict[str, int]) -> Imbalance:
    present = {c: n for c, n in per_class.items() if n > 0}
    if not present:
        return Imbalance(None, None, None)
    largest = max(present, key=present.__getitem__)
    smallest = min(present, key=present.__getitem__)
    return Imbalance(present[largest] / present[smallest], largest, smallest)


def _duplicate_groups(ok: pd.DataFrame) -> tuple[DuplicateGroup, ...]:
    """Hash buckets of size >= 2: one sort, then one linear pass (no pairwise compare)."""
    dup = ok[ok["content_hash"].duplicated(keep=False)]
    dup = dup.assign(_rank=dup["split"].map(lambda s: _split_rank(s)[0]))
    dup = dup.sort_values(["content_hash", "_rank", "relpath"])
    records = dup[["content_hash", "relpath", "split", "label"]].itertuples(index=False, name=None)
    groups = [
        DuplicateGroup(content_hash, tuple(FileRef(*r[1:]) for r in run))
        for content_hash, run in itertools.groupby(records, key=itemgetter(0))
    ]
    # Listed as a person scans the folders: by the first copy's split and path.
    groups.sort(key=lambda g: (_split_rank(g.files[0].split), g.files[0].relpath))
    return tuple(groups)


def _spread(values: pd.Series) -> dict[str, float | None]:
    if values.empty:
        return {"min": None, "median": None, "max": None}
    return {
        "min": float(values.min()),
        "median": float(values.median()),
        "max": float(values.max()),
    }


def _stats(ok: pd.DataFrame) -> dict[str, Any]:
    """Readable-image statistics.

    Keys: ``images``; ``width``, ``height``, ``aspect_ratio`` (width / height) and
    ``file_size`` (bytes) as ``{min, median, max}`` (``file_size`` also has ``total``);
    ``modes`` and ``formats`` as ``{name: count}``; ``distinct_sizes`` (width x height pairs).
    """
    width = ok["width"].astype(float)
    height = ok["height"].astype(float)
    file_size = ok["file_size"].astype(float)
    return {
        "images": len(ok),
        "width": _spread(width),
        "height": _spread(height),
        "aspect_ratio": _spread(width / height),
        "modes": {str(k): int(n) for k, n in ok["mode"].value_counts().items()},
        "formats": {str(k): int(n) for k, n in ok["format"].value_counts().items()},
        "file_size": {**_spread(file_size), "total": int(file_size.sum())},
        "distinct_sizes": len(ok[["width", "height"]].drop_duplicates()),
    }


def _balance_line(per_class: dict[str, int], imbalance: Imbalance) -> str:
    # All three are None together (a split without readable images); mypy needs each named.
    if imbalance.ratio is None or imbalance.largest is None or imbalance.smallest is None:
        return "no readable images"
    line = (
        f"{sum(per_class.values())} images; largest '{imbalance.largest}' "
        f"({per_class[imbalance.largest]}), smallest '{imbalance.smallest}' "
        f"({per_class[imbalance.smallest]}), ratio {imbalance.ratio:.1f}:1"
    )
    missing = [c for c, n in per_class.items() if n == 0]
    return line + (f"; none of {', '.join(missing)}" if missing else "")


def _group_line(group: DuplicateGroup) -> str:
    shown = " = ".join(f.relpath for f in group.files[:_EXAMPLES])
    more = len(group.files) - _EXAMPLES
    return shown + (f" (+{more} more copies)" if more > 0 else "")


def _section(lines: list[str], title: str, items: Sequence, describe: Callable) -> None:
    lines.append(f"{title}: {len(items) or 'none'}")
    lines.extend(f"  {describe(item)}" for item in items[:_EXAMPLES])
    if len(items) > _EXAMPLES:
        lines.append(f"  ... and {len(items) - _EXAMPLES} more")


def _bytes(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KB", "MB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} GB"


def _stats_lines(stats: dict[str, Any]) -> list[str]:
    if not stats["images"]:
        return ["Image statistics: no readable images."]
    w, h, ar, fs = stats["width"], stats["height"], stats["aspect_ratio"], stats["file_size"]
    tally = ", ".join
    return [
        f"Image sizes: width {w['min']:g}-{w['max']:g} px (median {w['median']:g}), "
        f"height {h['min']:g}-{h['max']:g} px (median {h['median']:g}), "
        f"{stats['distinct_sizes']} distinct size(s); aspect ratio (w/h) "
        f"{ar['min']:.2f}-{ar['max']:.2f} (median {ar['median']:.2f})",
        f"Modes: {tally(f'{k} {n}' for k, n in stats['modes'].items())}; "
        f"formats: {tally(f'{k} {n}' for k, n in stats['formats'].items())}",
        f"File sizes: {_bytes(fs['min'])}-{_bytes(fs['max'])} (median {_bytes(fs['median'])}), "
        f"total {_bytes(fs['total'])}",
    ]
