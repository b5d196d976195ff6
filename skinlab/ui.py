"""Streamlit glue shared by every page: the sidebar, the active dataset, cached scans and
errors shown as one sentence.

Pages import from here instead of touching files, Pillow or Keras themselves, so each
page stays a short function that reads widgets, calls the library and renders.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from skinlab import NOT_A_MEDICAL_DEVICE, catalog
from skinlab.audit import AuditReport, audit_dataset
from skinlab.discovery import Dataset, discover, fingerprint
from skinlab.errors import SkinlabError

_CUSTOM = "A folder on this machine…"
_ROOT_KEY = "dataset_root"


@st.cache_data(show_spinner=False, max_entries=8)
def _scan(root: str, token: str) -> Dataset:
    # `token` is the dataset's fingerprint: a changed folder is a new cache key.
    del token
    return discover(root)


@st.cache_data(show_spinner=False, max_entries=8)
def _audit(root: str, token: str) -> AuditReport:
    return audit_dataset(_scan(root, token))


def load_dataset(root: str | Path) -> Dataset:
    """Scan ``root`` once per content change (cached across reruns and sessions)."""
    return _scan(str(root), fingerprint(root))


def load_audit(root: str | Path) -> AuditReport:
    """Audit ``root`` once per content change (cached across reruns and sessions)."""
    return _audit(str(root), fingerprint(root))


def dataset_sidebar() -> None:
    """Render the dataset picker and the not-a-medical-device notice in the sidebar."""
    requested = st.query_params.get("dataset")
    if requested and "dataset_choice" not in st.session_state:
        # A link like ?dataset=/path/to/isic opens the app on that folder.
        st.session_state["dataset_choice"] = _CUSTOM
        st.session_state["dataset_path"] = requested
    with st.sidebar:
        entries = catalog.available_datasets()
        labels = [e.label for e in entries] + [_CUSTOM]
        choice = st.selectbox("Dataset", labels, key="dataset_choice")
        if choice == _CUSTOM:
            typed = st.text_input(
                "Dataset folder",
                key="dataset_path",
                placeholder="/path/to/Skin cancer ISIC…",
                help="A folder holding Train/<class>/ and Test/<class>/ (or a folder wrapping it).",
            )
            st.session_state[_ROOT_KEY] = typed.strip() or None
        else:
            entry = entries[labels.index(choice)]
            if entry.is_demo and not entry.root.exists():
                with st.spinner("Generating the synthetic demo data (first run only)…"):
                    catalog.default_dataset_root()
            st.session_state[_ROOT_KEY] = str(entry.root)
        st.caption(NOT_A_MEDICAL_DEVICE)


def active_dataset_root() -> str | None:
    """The dataset root picked in the sidebar, or ``None`` when none is typed yet."""
    return st.session_state.get(_ROOT_KEY)


def show_error(error: SkinlabError) -> None:
    """Show a library error as the one sentence it is (never a traceback)."""
    st.error(str(error), icon=":material/error:")
