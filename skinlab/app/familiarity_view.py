"""The Predict page's familiarity widgets: the movable unfamiliar-image threshold with its
two error rates, and the strip of the most similar training cases under each result.

Streamlit side only; the numbers and sentences come from :mod:`skinlab.predict.ood_report`.

Example::

    threshold = threshold_control(predictor)            # None for runs without a gate
    render_similar(predictor, result, key="predict_similar_0")
"""

from __future__ import annotations

import streamlit as st

from skinlab.app import ui
from skinlab.app.compare import thumbnail
from skinlab.predict.ood_report import far_warning, rates_text, similar_caption, similar_images
from skinlab.predict.predictor import Prediction, Predictor

THRESHOLD_KEY = "predict_ood_threshold"
_THUMB_PX = 120


def threshold_control(predictor: Predictor) -> float | None:
    """A slider over the gate's score with both validated rates at its value; returns the
    threshold the results are judged by (None when the run has no familiarity gate)."""
    if predictor.gate_problem:
        st.warning(ui.literal(predictor.gate_problem), icon=":material/warning:")
    gate = predictor.gate
    if gate is None:
        st.caption(
            "This run has no unfamiliar-image gate (trained before it existed): only the "
            "quality, colour and energy checks flag images. `python -m skinlab familiarity "
            "RUN` fits one."
        )
        return None
    fitted = round(gate.threshold, 3)
    # The run in the key: another model starts from its own fitted threshold.
    key = f"{THRESHOLD_KEY}_{predictor.run_id}"
    with st.expander("Unfamiliar-image threshold", icon=":material/tune:"):
        threshold = st.slider(
            "Flag images scoring above",
            0.0,
            1.0,
            fitted,
            0.005,
            format="%.3f",
            key=key,
            help=f"Fitted at {fitted:.3f} so {gate.quantile:.0%} of validation lesions pass. "
            "Lower catches more non-dermoscopy images and flags more real lesions.",
        )
        if gate.validation is not None:
            st.markdown(rates_text(gate.validation.rates(threshold)))
        st.button(
            "Back to the fitted threshold",
            on_click=st.session_state.update,
            kwargs={key: fitted},
            disabled=threshold == fitted,
            key=f"{key}_reset",
        )
    return float(threshold)


def render_similar(predictor: Predictor, result: Prediction) -> None:
    """The most similar training images with their classes and distances, and a warning
    when even the nearest is far."""
    if not result.similar:
        return
    gate = predictor.gate
    warning = far_warning(result.similar, gate.far_distance) if gate else None
    if warning:
        st.warning(ui.literal(warning), icon=":material/travel_explore:")
    root = predictor.loaded.manifest.data_root
    files = similar_images(root, result.similar)
    pictures = [thumbnail(f, _THUMB_PX) if f else None for f in files]
    shown = [
        (pic, ui.literal(similar_caption(case)))
        for pic, case in zip(pictures, result.similar, strict=True)
        if pic is not None
    ]
    st.markdown("**Most similar training images** (in the model's feature space)")
    if shown:
        st.image([p for p, _ in shown], caption=[c for _, c in shown], width=_THUMB_PX)
    missing = [
        similar_caption(c) for p, c in zip(pictures, result.similar, strict=True) if p is None
    ]
    if missing:
        st.caption(
            ui.literal(
                "Not shown (moved since training, or outside the folders the app may read; "
                "see SKINLAB_EXTRA_DIRS): " + "; ".join(missing)
            )
        )
