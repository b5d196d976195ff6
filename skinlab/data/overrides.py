"""Review decisions that never touch the user's files, and the dataset versions they make.

A decision (relabel an image, exclude it, keep it as it is, or undo the last decision on
it) is one appended row of ``<dataset root>/.skinlab/overrides.csv``: a plain CSV with who
decided, when (UTC) and why, never rewritten, so the file is its own history. Replaying
the rows gives the current decisions; ``undo`` pops the newest one of its image.

A dataset *version* is the folder plus the relabels and exclusions in force after some
prefix of that log; its id is a short hash of those decisions (``keep`` changes nothing a
model sees, so it leaves the version as it was). The folder as is has the id
:data:`RAW`. Training with ``RunConfig.data_version`` applies a version with
:func:`apply_version`; the run's config and manifest keep its id.

The id hashes the *sum* of one hash per decision in force, so one pass over the log gives
every version's id, each row changing the sum by one or two terms: rehashing all decisions
at every row was quadratic (3.7 s at 2,000 rows, 38.6 s at 4,000) and ran on every Train
page draw. Ids of the first scheme (a hash of the sorted decisions) are still found
(:func:`find_version`), for runs trained on them.

The file lives in the dataset, where anyone who can write data/ can put a link or a FIFO in
its place: it is opened through :mod:`skinlab.core.disk` (no link followed below the
dataset's folder, regular files only) and read up to :data:`MAX_OVERRIDES_BYTES`.

Example::

    record(root, "Train/nevus/x.jpg", "relabel", label="melanoma", reason="irregular border")
    current_version(root).id        # "3f2a9c1e"
    dataset = load_version(root, "3f2a9c1e")   # discovered, relabelled, exclusions gone

Why one module: the log's format, its replay and the versions it makes are one file's
meaning; the version ids (both schemes) must be computed from the very rows the log holds.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import functools
import getpass
import hashlib
import io
import os
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from skinlab.core import disk
from skinlab.core.errors import SkinlabError
from skinlab.core.manifest import RAW_VERSION
from skinlab.data.discovery import Dataset, discover, resolve_root

#: The folder skinlab keeps beside a dataset's splits (discovery never reads it as a split).
SKINLAB_DIRNAME = ".skinlab"
OVERRIDES_NAME = "overrides.csv"
ACTIONS = ("relabel", "exclude", "keep", "undo")
COLUMNS = ("time", "who", "relpath", "action", "label", "reason")
#: The id of the folder as it is on disk, with no decision applied.
RAW = RAW_VERSION  # the word every run manifest of unreviewed data holds
_ID_LENGTH = 8
#: Largest overrides file read: about 100 bytes a decision, room for 160,000 of them.
MAX_OVERRIDES_BYTES = 16 * 2**20
#: What a search for an id of the first scheme may hash (:func:`_legacy`): ~1 s.
_LEGACY_BUDGET_BYTES = 2**30
_CHANGING = ("relabel", "exclude")


class OverridesError(SkinlabError):
    """A decision cannot be recorded or a version cannot be found."""


@dataclass(frozen=True)
class Decision:
    """One row of the overrides file."""

    time: str
    who: str
    relpath: str
    action: str
    label: str = ""
    reason: str = ""


@dataclass(frozen=True)
class DatasetVersion:
    """The folder plus the decisions in force after the first ``rows`` rows of the log.

    Attributes:
        id: :data:`RAW` or a short hash of :attr:`decisions`.
        rows: how many log rows it takes to reach this version (its newest occurrence).
        time: when its last decision was recorded ("" for the raw folder).
        relabelled, excluded: how many relabels and exclusions are in force.
        log: the log it is a prefix of (shared by every version of one read).
    """

    id: str
    rows: int
    time: str = ""
    relabelled: int = 0
    excluded: int = 0
    log: tuple[Decision, ...] = field(default=(), repr=False, compare=False)

    @functools.cached_property
    def decisions(self) -> dict[str, Decision]:
        """``{relpath: Decision}`` of the relabels and exclusions in force (replayed from
        the log when first asked: a version list holds no copy per version)."""
        return _in_force(self.log[: self.rows])

    def label(self) -> str:
        """``3f2a9c1e · 4 relabelled, 2 excluded · 2026-11-27 17:40 UTC`` for pickers."""
        if self.id == RAW:
            return "raw · the folder as it is"
        when = self.time[:16].replace("T", " ")
        return f"{self.id} · {self.relabelled} relabelled, {self.excluded} excluded · {when} UTC"


def overrides_path(root: str | Path) -> Path:
    """``<dataset root>/.skinlab/overrides.csv`` (the root as :func:`resolve_root` finds it)."""
    return resolve_root(root) / SKINLAB_DIRNAME / OVERRIDES_NAME


def record(
    root: str | Path,
    relpath: str,
    action: str,
    *,
    label: str = "",
    reason: str = "",
    who: str | None = None,
) -> Decision:
    """Append one decision about the image ``relpath`` of the dataset at ``root``.

    Only the overrides file is written (created with its folder on first use); the images
    are never touched.

    Raises:
        OverridesError: an unknown action, a relabel without a label, an undo with nothing
            to undo, or the file cannot be written (read-only dataset folder).
    """
    if action not in ACTIONS:
        raise OverridesError(f"A decision is one of {', '.join(ACTIONS)}, not '{action}'.")
    if action == "relabel" and not label.strip():
        raise OverridesError("A relabel needs the new class.")
    if action == "undo" and relpath not in _stacks(read_log(root)):
        raise OverridesError(f"There is no decision on {relpath} to undo.")
    decision = Decision(
        time=datetime.now(UTC).isoformat(timespec="seconds"),
        who=who or _user(),
        relpath=relpath,
        action=action,
        label=label.strip() if action == "relabel" else "",
        reason=" ".join(reason.split()),
    )
    path = overrides_path(root)
    dataset = path.parent.parent
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow(dataclasses.astuple(decision))
    try:
        # Never through a link (a planted .skinlab or overrides.csv would carry the row,
        # image name and all, into any file): skinlab.core.disk refuses it in one sentence.
        with disk.open_file(path, dataset, "append") as handle:
            new = os.fstat(handle.fileno()).st_size == 0
            # One short O_APPEND write per decision: concurrent sessions interleave whole rows.
            handle.write(((",".join(COLUMNS) + "\n" if new else "") + line.getvalue()).encode())
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise OverridesError(
            f"Cannot record the decision in {path} ({exc.strerror or exc}); the dataset "
            "folder must be writable."
        ) from exc
    return decision


def undo_last(root: str | Path, relpath: str | None = None, *, who: str | None = None) -> Decision:
    """Undo the newest decision in force (on ``relpath`` when given): one click in the UI.

    Raises:
        OverridesError: nothing to undo.
    """
    stacks = _stacks(read_log(root))
    if relpath is None:
        if not stacks:
            raise OverridesError("There is no decision to undo.")
        relpath = max(stacks, key=lambda p: stacks[p][-1][0])
    return record(root, relpath, "undo", reason="undone", who=who)


def read_log(root: str | Path) -> list[Decision]:
    """Every row of the overrides file, oldest first (``[]`` when there is none).

    Rows that do not parse (a hand edit gone wrong) are skipped rather than fatal, and
    bytes that are not UTF-8 are replaced.

    Raises:
        OverridesError: the file cannot be read or is not CSV.
        UnsafeFileError: it (or ``.skinlab``) is a link or a special file, or is larger
            than :data:`MAX_OVERRIDES_BYTES`.
    """
    path = overrides_path(root)
    dataset = path.parent.parent
    try:
        text = disk.read_bytes(path, dataset, MAX_OVERRIDES_BYTES).decode(errors="replace")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise OverridesError(
            f"Cannot read the overrides of {root}: {exc.strerror or exc}."
        ) from exc
    rows = []
    try:
        for row in csv.DictReader(io.StringIO(text, newline="")):
            if row.get("action") in ACTIONS and row.get("relpath"):
                rows.append(Decision(**{c: row.get(c) or "" for c in COLUMNS}))
    except csv.Error as exc:
        raise OverridesError(
            f"{path} is not a table skinlab could have written ({exc}); delete or restore it."
        ) from exc
    return rows


def current(root: str | Path) -> dict[str, Decision]:
    """``{relpath: Decision}`` of every decision now in force, ``keep`` included."""
    return {p: stack[-1][1] for p, stack in _stacks(read_log(root)).items()}


def _stacks(log: list[Decision]) -> dict[str, list[tuple[int, Decision]]]:
    stacks: dict[str, list[tuple[int, Decision]]] = {}
    for position, decision in enumerate(log):
        stack = stacks.setdefault(decision.relpath, [])
        if decision.action == "undo":
            if stack:
                stack.pop()
        else:
            stack.append((position, decision))
        if not stack:
            del stacks[decision.relpath]
    return stacks


def _in_force(log: Sequence[Decision]) -> dict[str, Decision]:
    """The relabels and exclusions in force after ``log``."""
    stacks = _stacks(list(log))
    return {p: s[-1][1] for p, s in stacks.items() if s[-1][1].action in _CHANGING}


def _term(decision: Decision) -> int:
    text = f"{decision.relpath}\t{decision.action}\t{decision.label}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")


def _replay(log: tuple[Decision, ...]) -> Iterator[DatasetVersion]:
    """The version after each row of ``log``, in one pass: a row changes the decision in
    force on one image, so it changes the id's sum (and the counts) by at most two terms."""
    stacks: dict[str, list[Decision]] = {}
    total = count = relabelled = excluded = 0
    for rows, decision in enumerate(log, 1):
        stack = stacks.setdefault(decision.relpath, [])
        before = stack[-1] if stack and stack[-1].action in _CHANGING else None
        if decision.action != "undo":
            stack.append(decision)
        elif stack:
            stack.pop()
        after = stack[-1] if stack and stack[-1].action in _CHANGING else None
        for sign, changed in ((-1, before), (1, after)):
            if changed is not None and before is not after:
                total = (total + sign * _term(changed)) % 2**256
                count += sign
                relabelled += sign * (changed.action == "relabel")
                excluded += sign * (changed.action == "exclude")
        version_id = RAW if not count else _sum_id(count, total)
        yield DatasetVersion(version_id, rows, decision.time, relabelled, excluded, log)


def _sum_id(count: int, total: int) -> str:
    return hashlib.sha256(f"{count}:{total:064x}".encode()).hexdigest()[:_ID_LENGTH]


def versions(root: str | Path) -> list[DatasetVersion]:
    """Every distinct version the log has passed through, newest first; the raw folder is
    always among them."""
    found: dict[str, DatasetVersion] = {RAW: DatasetVersion(RAW, 0)}
    for version in _replay(tuple(read_log(root))):
        found.pop(version.id, None)  # keep its newest occurrence, at the end
        found[version.id] = version
    return list(reversed(found.values()))


def current_version(root: str | Path) -> DatasetVersion:
    """The version the log's last row leaves in force."""
    last = deque(_replay(tuple(read_log(root))), maxlen=1)
    return last[0] if last else DatasetVersion(RAW, 0)


def find_version(root: str | Path, version_id: str) -> DatasetVersion:
    """The version ``version_id`` of the dataset at ``root`` (an id of either scheme).

    Raises:
        OverridesError: no such version in its overrides file.
    """
    log = tuple(read_log(root))
    for version in _replay(log):
        if version.id == version_id:
            return version
    if legacy := _legacy(log, version_id):
        return legacy
    raise OverridesError(
        f"{root} has no dataset version '{version_id}'; its overrides file was deleted or "
        "edited. Pick one of its versions on the Train page."
    )


def _legacy(log: tuple[Decision, ...], version_id: str) -> DatasetVersion | None:
    """The first version of ``log`` whose id of the first scheme (a hash of its sorted
    decisions) is ``version_id``: one pass keeping the sorted lines, within
    :data:`_LEGACY_BUDGET_BYTES` hashed."""
    stacks: dict[str, list[Decision]] = {}
    keys: list[str] = []
    lines: list[bytes] = []
    budget = _LEGACY_BUDGET_BYTES
    for version, decision in zip(_replay(log), log, strict=True):
        stack = stacks.setdefault(decision.relpath, [])
        if decision.action != "undo":
            stack.append(decision)
        elif stack:
            stack.pop()
        top = stack[-1] if stack and stack[-1].action in _CHANGING else None
        at = bisect.bisect_left(keys, decision.relpath)
        if at < len(keys) and keys[at] == decision.relpath:
            del keys[at], lines[at]
        if top is not None:
            keys.insert(at, decision.relpath)
            lines.insert(at, f"{decision.relpath}\t{top.action}\t{top.label}".encode())
        text = b"\n".join(lines)
        budget -= len(text)
        if budget < 0:
            return None
        if lines and hashlib.sha256(text).hexdigest()[:_ID_LENGTH] == version_id:
            return version
    return None


def apply_version(dataset: Dataset, version: DatasetVersion) -> Dataset:
    """``dataset`` with ``version``'s exclusions removed from its table and its relabels
    applied; a relabel to a class the folder lacks adds that class. Images the decisions
    name that are gone from the folder are ignored."""
    if not version.decisions:
        return dataset
    table = dataset.table
    excluded = {p for p, d in version.decisions.items() if d.action == "exclude"}
    relabels = {p: d.label for p, d in version.decisions.items() if d.action == "relabel"}
    table = table[~table["relpath"].isin(excluded)].copy()
    moved = table["relpath"].isin(relabels)
    table.loc[moved, "label"] = table.loc[moved, "relpath"].map(relabels)
    names = tuple(sorted(set(dataset.class_names) | set(table["label"])))
    return dataclasses.replace(dataset, table=table.reset_index(drop=True), class_names=names)


def load_version(root: str | Path, version_id: str = RAW) -> Dataset:
    """Discover the dataset at ``root`` and apply its version ``version_id``.

    Raises:
        DatasetLayoutError: ``root`` is not a dataset.
        OverridesError: no such version.
    """
    dataset = discover(root)
    if not version_id or version_id == RAW:
        return dataset
    return apply_version(dataset, find_version(dataset.root, version_id))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "unknown"
