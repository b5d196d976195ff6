"""skinlab's entry point: a router over the pages, plus the shared sidebar.

Run with ``streamlit run streamlit_app.py``. All logic lives in the ``skinlab`` package;
this file only decides which page runs.
"""

from pathlib import Path

import streamlit as st

from skinlab.app import ui
from skinlab.core.quiet import quiet_tensorflow

# TensorFlow's native start-up lines stay out of the server console (SKINLAB_VERBOSE=1 shows them).
quiet_tensorflow()

# A file served by the app itself: an emoji or ":material/…" favicon is fetched from a CDN
# (fonts.gstatic.com), which fails offline and fills the browser console with errors.
ICON = Path(__file__).parent / "skinlab" / "assets" / "icon.png"


def run() -> None:
    """Configure the app, draw the sidebar and run the selected page."""
    st.set_page_config(page_title="skinlab", page_icon=ICON, layout="wide")
    page = st.navigation(
        [
            st.Page("pages/explore.py", title="Explore", icon=":material/insights:", default=True),
            st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
            st.Page("pages/predict.py", title="Predict", icon=":material/image_search:"),
            st.Page("pages/runs.py", title="Runs", icon=":material/compare:"),
        ]
    )
    ui.dataset_sidebar()
    page.run()
    ui.settle_heap()


if __name__ == "__main__":
    run()
