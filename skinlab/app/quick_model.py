"""The one-click quick model: when no run can predict yet, train the "quick" preset on the
synthetic demo data in the background, show its progress, and make it the active model when
it finishes.

Training runs in its own process (:func:`skinlab.jobs.manager.start_run`); the progress box is a
fragment that re-reads the run's status every two seconds, so the rest of the page is not
re-run while it waits. Starting twice while the run is active gives the same run.

Example (in a page)::

    if ui.active_model() is None:
        render_quick_model()
"""

from __future__ import annotations

import streamlit as st

from skinlab.app import catalog, ui
from skinlab.core import config, runs
from skinlab.core.errors import SkinlabError
from skinlab.jobs import manager

#: Session keys: the quick run being followed, and the run that just finished.
QUICK_KEY = "predict_quick_run"
QUICK_DONE_KEY = "predict_quick_done"


def quick_model_config() -> config.RunConfig:
    """The "quick" preset on the synthetic demo data (generated first if needed)."""
    return config.preset("quick", data_root=str(catalog.default_dataset_root()))


def render_quick_model() -> None:
    """No model yet: say so, offer a one-click quick model and follow it to the end."""
    st.info(
        "No trained model yet, so there is nothing to predict with. Train one on the Train "
        "page, or make a quick model on the synthetic demo data (about a minute on a laptop "
        "CPU; it only learns the demo's made-up lesions).",
        icon=":material/info:",
    )
    if st.session_state.get(QUICK_KEY) is None:
        slot = st.empty()  # the button gives way to the progress box once clicked
        if not slot.button(
            "Train a quick model on the synthetic demo data",
            type="primary",
            icon=":material/bolt:",
            key="predict_quick_start",
        ):
            return
        slot.empty()
        try:
            with st.spinner("Preparing the synthetic demo data and starting the run…"):
                st.session_state[QUICK_KEY] = manager.start_run(quick_model_config()).run_id
        except SkinlabError as exc:
            ui.show_error(exc)
            return
    _quick_progress(st.session_state[QUICK_KEY])


def progress_of(status: runs.RunStatus) -> tuple[float, str]:
    """Fraction done and one line of text for a run's status."""
    total = max(status.total_epochs, 1)
    within = status.batch / status.total_batches if status.total_batches else 0.0
    fraction = min(max((max(status.epoch - 1, 0) + within) / total, 0.0), 1.0)
    if status.state == "queued":
        return 0.0, "Waiting for a free training slot…"
    eta = f" · about {status.eta_seconds:.0f} s left" if status.eta_seconds else ""
    return fraction, f"Epoch {max(status.epoch, 1)} of {total}{eta}"


@st.fragment(run_every=2)
def _quick_progress(run_id: str) -> None:
    try:
        status = manager.observe(runs.resolve_run(run_id))
    except SkinlabError as exc:
        ui.show_error(exc)
        return
    if status.state == "finished":
        ui.set_active_model(run_id)
        st.session_state[QUICK_DONE_KEY] = run_id
        del st.session_state[QUICK_KEY]
        st.rerun()
    if status.state in ("failed", "stopped"):
        reason = ui.literal(status.error) if status.error else "no reason recorded."
        st.error(f"The quick model {status.state}: {reason}")
        if st.button("Try again", key="predict_quick_retry"):
            del st.session_state[QUICK_KEY]
            st.rerun()
        return
    fraction, text = progress_of(status)
    st.progress(fraction, text=f"Quick model `{run_id}` (synthetic demo data): {text}")
