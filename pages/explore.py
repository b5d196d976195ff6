"""Explore: how the classes are balanced, what the images look like, what is wrong with
them, and importing a new dataset.

Tabs are lazy (only the open one runs) and bound to the URL (``?explore_tab=Audit``), so
the page stays quick on big datasets and a link can open any tab.
"""

import streamlit as st

from skinlab.app import catalog, ui
from skinlab.app import explore_view as ev
from skinlab.core.errors import SkinlabError


def page() -> None:
    st.title("Explore the dataset")
    root = ui.active_dataset_root()
    dataset = report = None
    if not root:
        st.info("Type a dataset folder in the sidebar, pick the demo dataset, or import one.")
    else:
        st.caption(f"Dataset: {ui.literal(catalog.describe(root))}")
        try:
            with st.spinner("Scanning the dataset…"):
                dataset, report = ui.load_scan(root)
        except SkinlabError as exc:
            ui.show_error(exc)
    if dataset is not None:
        ev.summary(dataset, report)
    *views, importer = st.tabs(ev.TABS, key="explore_tab", bind="query-params")
    for tab, render in zip(views, ev.RENDERERS, strict=True):
        if tab.open:
            with tab:
                if dataset is None:
                    st.info("Choose a dataset in the sidebar first, or add one in the Import tab.")
                else:
                    render(dataset, report)
    if importer.open:
        with importer:
            ev.import_tab()


ui.require_router()
page()
