"""The Audit tab's shortcut section: where each class's images come from, and (behind a
button, seconds of work) whether the label can be predicted without the lesion.

The collection table is a pass over file names, cheap enough for every rerun; the
statistics-only classifier decodes every image and is cached in :mod:`skinlab.app.caches`.
"""

from __future__ import annotations

import streamlit as st

from skinlab.app import caches, ui
from skinlab.core.errors import SkinlabError
from skinlab.data.discovery import Dataset, fingerprint
from skinlab.data.shortcuts import collection_table, one_collection_warnings

BUTTON = "Can the label be predicted without the lesion?"
#: Session key: the dataset root whose check was asked for (a new dataset asks again).
CHECKED = "shortcut_checked"


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
    st.write(score.explanation)
