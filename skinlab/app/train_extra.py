"""The Train page's "Also train on" choice: other collections whose images join a run's
training side (``RunConfig.extra_data``, :mod:`skinlab.data.extra_collections`).

The other datasets of the data folder are offered by name; a folder in HAM10000's or an ISIC
challenge's layout (images beside their diagnosis CSV), which is no dataset of the data folder
until imported, can be typed, confined like the sidebar's typed folder.

Example (in a page)::

    train_extra.picker(preset_name)        # draws the choice and its warnings
    config = config.replace(extra_data=train_extra.chosen())   # in the Start callback
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from skinlab.app import catalog, ui
from skinlab.core.confine import confine
from skinlab.core.errors import PathNotAllowedError
from skinlab.data.extra_collections import multi_collection_warning

#: Session keys of the multiselect (dataset roots) and the typed folder.
PICKED_KEY = "train_extra_datasets"
TYPED_KEY = "train_extra_path"
_WHAT = "The extra training folder"


def extra_options(root: str | Path | None) -> dict[str, str]:
    """``{dataset root: label}`` of the data folder's datasets other than ``root`` (the run's
    own) and the synthetic demo, whose drawn lesions would only teach a real model noise."""
    own = Path(root).resolve() if root else None
    return {
        str(entry.root): entry.label
        for entry in catalog.available_datasets()
        if not entry.is_demo and entry.root.resolve() != own and ui.decodable(str(entry.root))
    }


def picker(preset_name: str | None) -> None:
    """The "Also train on" multiselect and folder input, a sentence when the typed folder may
    not be read, and the multi-collection warning when preset ``preset_name`` has nothing to
    add."""
    options = extra_options(ui.active_dataset_root())
    state = st.session_state
    # A dataset picked before the sidebar switched to it is no longer an option.
    state[PICKED_KEY] = [p for p in state.get(PICKED_KEY, []) if p in options]
    st.multiselect(
        "Also train on (other collections)",
        list(options),
        format_func=lambda root: ui.plain(options[root]),
        key=PICKED_KEY,
        persist_state="session",
        help="Their Train images are added to the training side only: validation stays this "
        "dataset's, so its scores compare with runs trained on it alone. An image of a "
        "validation lesion is left out. 'Balance collections within each class' then draws "
        "each archive of a class equally often.",
    )
    st.text_input(
        "Also train on: a HAM10000 or ISIC challenge folder",
        key=TYPED_KEY,
        persist_state="session",
        placeholder="/data/ham10000 (images + HAM10000_metadata.csv)",
        help="A folder of images beside HAM10000_metadata.csv or an ISIC ground-truth CSV; "
        "every labelled image of a class this dataset has is added to training.",
    )
    try:
        extra = chosen()
    except PathNotAllowedError as exc:
        ui.show_error(exc)
        extra = ()
    if warning := multi_collection_warning(preset_name, extra):
        st.warning(ui.literal(warning), icon=":material/warning:")


def chosen() -> tuple[str, ...]:
    """The extra training paths :func:`picker` holds: the picked datasets, then the typed
    folder (resolved).

    Raises:
        PathNotAllowedError: the typed folder lies outside the folders the app may read.
    """
    picked = list(st.session_state.get(PICKED_KEY) or [])
    typed = str(st.session_state.get(TYPED_KEY) or "").strip()
    if typed:
        picked.append(str(confine(typed, _WHAT)))
    return tuple(dict.fromkeys(picked))
