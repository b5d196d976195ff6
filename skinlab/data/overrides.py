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

Example::

    record(root, "Train/nevus/x.jpg", "relabel", label="melanoma", reason="irregular border")
    current_version(root).id        # "3f2a9c1e"
    dataset = load_version(root, "3f2a9c1e")   # discovered, relabelled, exclusions gone
"""

from __future__ import annotations

import csv
import dataclasses
import getpass
import hashlib
import io
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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
        id: :data:`RAW` or a short hash of ``decisions``.
        rows: how many log rows it takes to reach this version (its newest occurrence).
        decisions: ``{relpath: Decision}`` of the relabels and exclusions in force.
        time: when its last decision was recorded ("" for the raw folder).
    """

    id: str
    rows: int
    decisions: dict[str, Decision]
    time: str = ""

    @property
    def relabelled(self) -> int:
        return sum(1 for d in self.decisions.values() if d.action == "relabel")

    @property
    def excluded(self) -> int:
        return sum(1 for d in self.decisions.values() if d.action == "exclude")

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
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow(dataclasses.astuple(decision))
    try:
        path.parent.mkdir(exist_ok=True)
        new = not path.exists()
        # One short O_APPEND write per decision: concurrent sessions interleave whole rows.
        with open(path, "a", encoding="utf-8", newline="") as handle:
            handle.write((",".join(COLUMNS) + "\n" if new else "") + line.getvalue())
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

    Rows that do not parse (a hand edit gone wrong) are skipped rather than fatal.
    """
    try:
        text = overrides_path(root).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise OverridesError(
            f"Cannot read the overrides of {root}: {exc.strerror or exc}."
        ) from exc
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("action") in ACTIONS and row.get("relpath"):
            rows.append(Decision(**{c: row.get(c) or "" for c in COLUMNS}))
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


def _version_id(decisions: dict[str, Decision]) -> str:
    if not decisions:
        return RAW
    text = "\n".join(f"{p}\t{d.action}\t{d.label}" for p, d in sorted(decisions.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:_ID_LENGTH]


def versions(root: str | Path) -> list[DatasetVersion]:
    """Every distinct version the log has passed through, newest first; the raw folder is
    always among them."""
    log = read_log(root)
    found: dict[str, DatasetVersion] = {RAW: DatasetVersion(RAW, 0, {})}
    for rows in range(1, len(log) + 1):
        stacks = _stacks(log[:rows])
        decisions = {
            p: s[-1][1] for p, s in stacks.items() if s[-1][1].action in ("relabel", "exclude")
        }
        version_id = _version_id(decisions)
        found.pop(version_id, None)  # keep its newest occurrence, at the end
        found[version_id] = DatasetVersion(version_id, rows, decisions, log[rows - 1].time)
    return list(reversed(found.values()))


def current_version(root: str | Path) -> DatasetVersion:
    """The version the log's last row leaves in force."""
    return versions(root)[0]


def find_version(root: str | Path, version_id: str) -> DatasetVersion:
    """The version ``version_id`` of the dataset at ``root``.

    Raises:
        OverridesError: no such version in its overrides file.
    """
    for version in versions(root):
        if version.id == version_id:
            return version
    raise OverridesError(
        f"{root} has no dataset version '{version_id}'; its overrides file was deleted or "
        "edited. Pick one of its versions on the Train page."
    )


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
