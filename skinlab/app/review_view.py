"""The Explore page's Review tab: the review queue as cards, each with the decisions
relabel / exclude / keep and a one-click undo (recorded by :mod:`skinlab.data.overrides`, the
only file written).

The queue is computed once per dataset content and cross-validation (cached for every
session); a decision only appends to the overrides file, which the scan ignores, so
deciding never recomputes the queue.

Example (in a page)::

    render_review(dataset, thumb=_thumb)

Why one module: every card of the review queue carries the same decisions and undo, bound to
one overrides file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import streamlit as st

from skinlab.app import caches, ui
from skinlab.core.classes import class_info
from skinlab.core.errors import SkinlabError
from skinlab.data import overrides
from skinlab.data.discovery import Dataset, fingerprint
from skinlab.evaluate.review import REASONS, ReviewCard, ReviewQueue
from skinlab.train import cv

CARDS_PER_PAGE = 6
#: Session key of a set of relpaths sent from the linked charts ("Review these").
SELECTION_KEY = "review_selection"
_TOP = 3  # out-of-fold probabilities shown per card
SELECTED = "selected"  # the reason of a card sent from the charts and in no other reason

Thumb = Callable[[str, str], bytes | None]


def load_queue(root: str) -> ReviewQueue:
    """The review queue of ``root``, cached on its content and its cross-validations."""
    cv_token = ",".join(r.created for r in cv.load_results())
    return caches.review_queue(str(root), fingerprint(root), cv_token)


def _key(relpath: str) -> str:
    return hashlib.blake2b(relpath.encode(), digest_size=6).hexdigest()


def _decide(root: str, relpath: str, action: str, label: str = "", reason: str = "") -> None:
    try:
        overrides.record(root, relpath, action, label=label, reason=reason)
        _remember_version(root)
    except SkinlabError as exc:
        st.session_state["review_error"] = exc


def _undo(root: str, relpath: str | None) -> None:
    try:
        overrides.undo_last(root, relpath)
        _remember_version(root)
    except SkinlabError as exc:
        st.session_state["review_error"] = exc


def render_review(dataset: Dataset, thumb: Thumb) -> None:
    """The Review tab of ``dataset``: version line, filters, then a page of cards."""
    root = str(dataset.root)
    if error := st.session_state.pop("review_error", None):
        ui.show_error(error)
    try:
        queue = load_queue(root)
        decided = overrides.current(root)
        version = overrides.current_version(root)
    except SkinlabError as exc:
        ui.show_error(exc)
        return
    _version_line(root, version, decided)
    st.caption(f"Out-of-fold evidence: {queue.evidence}.")
    rows = dataset.table.set_index("relpath")
    cards = _filtered(queue, decided, rows)
    if not cards:
        st.success("Nothing left to review here.")
        return
    pages = -(-len(cards) // CARDS_PER_PAGE)
    page = st.pagination(pages, key="review_page") if pages > 1 else 1
    first = (page - 1) * CARDS_PER_PAGE
    with st.grid(2, min_column_width=340):
        for card in cards[first : first + CARDS_PER_PAGE]:
            with st.container(border=True):
                _card(root, card, decided.get(card.relpath), dataset, rows, thumb)


def _version_line(root: str, version: overrides.DatasetVersion, decided: dict) -> None:
    text, undo = st.columns([5, 1], vertical_alignment="center")
    text.markdown(
        f"**Dataset version** `{version.id}`: {version.relabelled} relabelled, "
        f"{version.excluded} excluded, {len(decided) - version.relabelled - version.excluded} "
        "kept. Decisions go to `.skinlab/overrides.csv`; your image files are never changed."
    )
    undo.button(
        "Undo last",
        icon=":material/undo:",
        key="review_undo_last",
        disabled=not decided,
        on_click=_undo,
        args=(root, None),
        width="stretch",
    )


def _filtered(queue: ReviewQueue, decided: dict, rows) -> list[ReviewCard]:
    show, hide = st.columns([4, 1], vertical_alignment="bottom")
    counts = {r: len(queue.relpaths(r)) for r in REASONS}
    reasons = show.multiselect(
        "Show",
        list(REASONS),
        default=list(REASONS),
        format_func=lambda r: f"{_title(r)} ({counts[r]})",
        key="review_reasons",
    )
    hide_decided = hide.toggle("Hide decided", value=True, key="review_hide_decided")
    selected = st.session_state.get(SELECTION_KEY)
    if selected:
        st.info(f"Showing the {len(selected)} image(s) sent from the charts.")
        if st.button("Show the whole queue", key="review_clear_selection"):
            del st.session_state[SELECTION_KEY]
            st.rerun()
    cards = [c for c in queue.cards if set(c.reasons) & set(reasons)]
    if selected:
        cards = [c for c in cards if c.relpath in selected] + _selected_only(queue, selected, rows)
    if hide_decided:
        cards = [c for c in cards if c.relpath not in decided]
    return cards


def _selected_only(queue: ReviewQueue, selected: set[str], rows) -> list[ReviewCard]:
    """Cards for the images sent from the charts that the queue has no reason to doubt."""
    queued = {c.relpath for c in queue.cards}
    return [
        ReviewCard(
            relpath=relpath,
            path=str(rows.loc[relpath, "path"]),
            split=str(rows.loc[relpath, "split"]),
            label=str(rows.loc[relpath, "label"]),
            reasons=(SELECTED,),
            details=("Sent from the linked charts; no other reason to doubt it.",),
        )
        for relpath in sorted(selected - queued)
        if relpath in rows.index
    ]


def _name(label: str) -> str:
    """A class's display name for markdown: a class is a folder name, an archive's choice."""
    return ui.literal(class_info(label).display_name)


def _title(reason: str) -> str:
    return "Selected" if reason == SELECTED else REASONS[reason].split(":")[0]


def _card(root, card: ReviewCard, decision, dataset: Dataset, rows, thumb: Thumb) -> None:
    picture, about = st.columns([1, 2])
    image = thumb(card.path, rows.loc[card.relpath, "content_hash"])
    if image is not None:
        picture.image(image, width="stretch")
    about.markdown(f"**{_name(card.label)}** · {ui.literal(card.split)}")
    about.caption(ui.literal(card.relpath))
    for reason, detail in zip(card.reasons, card.details, strict=True):
        about.markdown(f"{_title(reason)}: {ui.literal(detail)}")
    if card.probabilities:
        top = sorted(card.probabilities.items(), key=lambda kv: -kv[1])[:_TOP]
        about.caption("Out of fold: " + " · ".join(f"{_name(k)} {v:.0%}" for k, v in top))
    copies = [c for c in card.copies if c in rows.index][:4]
    if copies:
        st.caption("Its copies:")
        with st.grid(4, min_column_width=50):
            for relpath in copies:
                if (
                    small := thumb(rows.loc[relpath, "path"], rows.loc[relpath, "content_hash"])
                ) is not None:
                    st.image(small, caption=ui.literal(relpath.split("/")[-2]), width="stretch")
    decision_controls(
        root,
        card.relpath,
        card.label,
        card.suggested,
        dataset.class_names,
        decision,
        _title(card.reasons[0]).lower(),
    )


def decision_controls(
    root: str,
    relpath: str,
    label: str,
    suggested: str | None,
    class_names,
    decision: overrides.Decision | None,
    why: str,
) -> None:
    """Relabel (to ``suggested`` by default) / Exclude / Keep for one image, or the decision
    in force with its Undo; recorded in ``root``'s overrides with ``why`` as the reason."""
    key = _key(relpath)
    if decision is not None:
        # Every field is a cell of overrides.csv, which anyone who can write data/ can edit.
        target = f" → {decision.label}" if decision.action == "relabel" else ""
        said = f"{decision.action}{target} ({decision.who}, {decision.time[:16]} UTC)"
        st.success(f"Decided: {ui.literal(said)}")
        st.button(
            "Undo",
            key=f"review_undo_{key}",
            icon=":material/undo:",
            on_click=_undo,
            args=(root, relpath),
        )
        return
    names = list(class_names)
    # The model's suggestion, else the folder's own class (Relabel stays off until changed).
    default = (
        names.index(suggested)
        if suggested in names
        else names.index(label)
        if label in names
        else 0
    )
    new, relabel, exclude, keep = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
    chosen = new.selectbox(
        "New class", names, index=default, key=f"review_label_{key}", format_func=ui.plain
    )
    relabel.button(
        "Relabel",
        key=f"review_relabel_{key}",
        disabled=chosen == label,
        on_click=_decide,
        args=(root, relpath, "relabel", chosen, why),
        width="stretch",
    )
    for column, action in ((exclude, "exclude"), (keep, "keep")):
        column.button(
            action.capitalize(),
            key=f"review_{action}_{key}",
            on_click=_decide,
            args=(root, relpath, action, "", why),
            width="stretch",
        )


def act_on_mistakes(root: str | None, frame, class_names, limit: int = 12) -> None:
    """Under a run's gallery of mistakes: the same decisions as the Review tab for its first
    ``limit`` images (``frame`` as :func:`skinlab.app.compare.examples` returns it), suggesting
    the predicted class as the new label."""
    if not root or frame.empty:
        return
    if error := st.session_state.pop("review_error", None):
        ui.show_error(error)
    try:
        decided = overrides.current(root)
    except SkinlabError as exc:
        ui.show_error(exc)
        return
    with st.expander(f"Relabel or exclude these images ({min(limit, len(frame))} shown)"):
        st.caption(
            "Recorded as review decisions of the dataset (its .skinlab/overrides.csv, never "
            "its files); train on the new dataset version from the Train page."
        )
        for row in frame.head(limit).itertuples():
            st.markdown(
                f"{ui.literal(row.path)}: filed as **{_name(row.true)}**, predicted "
                f"**{_name(row.predicted)}** ({row.confidence:.0%})"
            )
            decision_controls(
                root,
                row.path,
                row.true,
                row.predicted,
                class_names,
                decided.get(row.path),
                "model disagrees",
            )


#: Session key of the Train page's dataset-version choice.
VERSION_KEY = "train_data_version"
#: Session key of ``{dataset root: version id}``: the version this session last chose in the
#: picker or made with its own review decisions, per dataset (its root as the scan found it,
#: ``Dataset.root``). Not the picker's own key, which Streamlit forgets whenever a page without
#: the picker runs.
_SESSION_VERSIONS = "dataset_versions"


def _remember_version(root: str, version_id: str | None = None) -> None:
    """Make ``version_id`` (default: the one the overrides now leave in force, after this
    session's decision) this session's version of the dataset at ``root``."""
    version_id = version_id or overrides.current_version(root).id
    chosen = st.session_state.setdefault(_SESSION_VERSIONS, {})
    chosen[str(root)] = version_id


def default_version(root: str, found: list[overrides.DatasetVersion]) -> str:
    """The version the Train page's picker starts on: the one this session chose or made
    with its own review decisions, if it still exists, else :data:`overrides.RAW`.

    Not the newest version: the overrides file is shared, so the newest holds whatever any
    visitor clicked last (a stray Relabel or Exclude), and it would silently become what the
    next visitor trains on. The folder as it is changes only when its files do; training on
    reviewed data is a choice made in the picker (or by reviewing in the same session), and
    the run records the version's id either way.
    """
    mine = st.session_state.get(_SESSION_VERSIONS, {}).get(str(root))
    return mine if mine in {v.id for v in found} else overrides.RAW


def version_picker(root: str) -> None:
    """The Train page's "Dataset version" choice for the dataset at ``root`` (``Dataset.root``),
    once it has review decisions; it starts on :func:`default_version`."""
    try:
        found = overrides.versions(root)
        if len(found) < 2:
            st.session_state[VERSION_KEY] = overrides.RAW
            return  # only the folder as it is: nothing to choose
        labels = {v.id: ui.plain(v.label()) for v in found}  # its time is a cell of the file
        if st.session_state.get(VERSION_KEY) not in labels:
            st.session_state[VERSION_KEY] = default_version(root, found)
    except SkinlabError as exc:
        ui.show_error(exc)
        return
    st.selectbox(
        "Dataset version",
        list(labels),
        format_func=labels.__getitem__,
        key=VERSION_KEY,
        on_change=lambda: _remember_version(root, st.session_state[VERSION_KEY]),
        help="The folder with the relabels and exclusions decided on the Explore page's "
        "Review tab, as they stood at that moment; the run records the version's id.",
    )


def chosen_version() -> str:
    """The version id picked with :func:`version_picker` ("" for the folder as it is)."""
    version = st.session_state.get(VERSION_KEY) or ""
    return "" if version == overrides.RAW else version
