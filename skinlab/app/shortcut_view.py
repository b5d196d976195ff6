"""The shortcut check's views: the Audit tab's section (where each class's images come
from, and behind a button, seconds of work, whether the label can be predicted without the
lesion) and the same check on the images one run trained on, on the Runs page's External
test tab (:func:`run_check`).

The collection table is a pass over file names, cheap enough for every rerun; the
statistics-only classifier decodes every image and is cached in :mod:`skinlab.app.caches`.
"""

from __future__ import annotations

import streamlit as st

from skinlab.app import caches, ui
from skinlab.core.errors import SkinlabError
from skinlab.data.discovery import Dataset, fingerprint
from skinlab.data.shortcuts import ShortcutScore, collection_table, one_collection_warnings

BUTTON = "Can the label be predicted without the lesion?"
RUN_BUTTON = f"{BUTTON} (this run's training images)"
#: Session keys: the dataset root and the run whose check was asked for (a new one asks again).
CHECKED, RUN_CHECKED = "shortcut_checked", "run_shortcut_checked"


def render_shortcuts(dataset: Dataset) -> None:
    """Draw the collection table, its warnings and the button's check for ``dataset``."""
    table = dataset.images()
    if table.empty:
        return
    st.subheader("Where the images come from")
    st.caption(
        "The archive each image was published in, read from its ISIC id (or HAM10000's "
        "600×450 size); other files count as the dataset's own. A class that comes from one "
        "archive only can be recognised by the archive's look instead of the lesion."
    )
    counts = collection_table(table, dataset.root.name)
    st.dataframe(counts, width="stretch")
    warnings = one_collection_warnings(counts)
    for sentence in warnings:
        st.warning(ui.literal(sentence), icon=":material/warning:")
    if not warnings:
        st.success(
            "Every image comes from one collection."
            if len(counts.columns) == 1
            else "No class comes from a collection of its own."
        )
    root = str(dataset.root)
    if st.button(BUTTON, icon=":material/visibility_off:", key="shortcut_button"):
        st.session_state[CHECKED] = root
    if st.session_state.get(CHECKED) == root:
        _check(root)


def _check(root: str) -> None:
    try:
        score = caches.label_without_lesion(root, fingerprint(root))
    except SkinlabError as exc:
        ui.show_error(exc)
        return
    show_score(score)


def run_check(run_id: str, data_root: str) -> None:
    """The button and, once asked, the check of the rows run ``run_id`` trained and
    validated on (its dataset ``data_root``); the library call saves it in the run."""
    st.markdown("#### Shortcuts in the training data")
    st.caption(
        "A simple classifier given only numbers that never look at the lesion (colour, "
        "corners, size), on the images the run trained and validated on. Well above chance "
        "means the data held a shortcut to learn; the lesion-masked test shows whether the "
        "run learnt it."
    )
    if st.button(RUN_BUTTON, key="run_shortcut_button", icon=":material/visibility_off:"):
        st.session_state[RUN_CHECKED] = run_id
    if st.session_state.get(RUN_CHECKED) != run_id:
        return
    try:
        score = caches.run_shortcuts(run_id, fingerprint(data_root) if data_root else "")
    except SkinlabError as exc:
        ui.show_error(exc)
        return
    show_score(score)


def show_score(score: ShortcutScore) -> None:
    """The class and collection scores against chance, and the score's explanation."""
    chance = score.class_chance
    left, right = st.columns(2)
    left.metric(
        "Class from image statistics",
        f"{score.class_balanced_accuracy:.2f}",
        delta=f"{score.class_balanced_accuracy - chance:+.2f} over chance ({chance:.2f})",
        delta_color="inverse",
        help="Balanced accuracy, cross-validated, of a classifier that never sees the lesion.",
    )
    if score.collection_accuracy is not None and score.collection_base_rate is not None:
        base = score.collection_base_rate
        right.metric(
            "Collection from image statistics",
            f"{score.collection_accuracy:.2f}",
            delta=f"{score.collection_accuracy - base:+.2f} over the commonest ({base:.2f})",
            delta_color="off",
            help="Accuracy, cross-validated; always guessing the commonest collection scores "
            "its share.",
        )
    st.write(ui.literal(score.explanation))  # it names classes, read back from a run's files
