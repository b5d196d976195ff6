"""The Train page's learning-rate finder: a button that runs the range test
(:mod:`skinlab.train.lr_find`) on the form's recipe, the smoothed loss against the learning rate
with the suggestion marked, and a button that puts the suggestion into the form.

The test is ~100 training steps (a few seconds at 64 px on the demo), so it runs in the
page under a spinner instead of as a background run; nothing is saved but the result in
the session.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from skinlab.app import train_form, ui
from skinlab.app.train_fields import FIELDS_BY_NAME
from skinlab.core.errors import SkinlabError
from skinlab.train.lr_find import METHODS, LRFindResult, lr_range_test

_RESULT = "train_lr_find_result"  # session key: the last range test's LRFindResult
_FIELD = FIELDS_BY_NAME["learning_rate"]


def form_rate(rate: float) -> float:
    """``rate`` as the form's learning-rate field can hold it: two significant digits
    (the test's resolution is coarser than that), inside the field's range."""
    rounded = float(f"{rate:.2g}")
    return min(max(rounded, _FIELD.min or rounded), _FIELD.max or rounded)


def figure(result: LRFindResult) -> go.Figure:
    """Smoothed loss against learning rate (log axis), the suggestion marked."""
    fig = go.Figure(
        go.Scatter(x=result.learning_rates, y=result.losses, mode="lines", name="smoothed loss")
    )
    at = float(
        np.interp(np.log10(result.suggestion), np.log10(result.learning_rates), result.losses)
    )
    fig.add_trace(
        go.Scatter(
            x=[result.suggestion],
            y=[at],
            mode="markers+text",
            marker={"size": 12, "symbol": "circle-open", "line": {"width": 3}},
            text=[f"suggested {result.suggestion:.1e}"],
            textposition="top right",
            name="suggestion",
        )
    )
    fig.update_xaxes(type="log", title="Learning rate", exponentformat="power")
    fig.update_yaxes(title="Smoothed training loss")
    fig.update_layout(height=320, margin={"t": 10, "b": 10}, showlegend=False)
    return fig


def _use(rate: float) -> None:
    st.session_state[_FIELD.key] = rate


def lr_finder(root: str) -> None:
    """The finder's button, and (after a test) its plot, suggestion and "Use" button."""
    left, right = st.columns([1, 3], vertical_alignment="center")
    clicked = left.button(
        "Find a learning rate", key="train_lr_find", icon=":material/troubleshoot:"
    )
    right.caption(
        "Trains a fresh model of this recipe for ~100 steps while the learning rate grows "
        "from 1e-7 to 10, and suggests where the loss falls fastest (as fastai's lr_find). "
        "Nothing is saved."
    )
    if clicked:
        try:
            config = train_form.config_from_form(train_form.ensure_values(st.session_state), root)
            with st.spinner("Training ~100 steps with a growing learning rate…"):
                st.session_state[_RESULT] = lr_range_test(config)
        except SkinlabError as exc:
            ui.show_error(exc)
            return
    result: LRFindResult | None = st.session_state.get(_RESULT)
    if result is None:
        return
    st.plotly_chart(ui.plain_figure(figure(result)), key="train_lr_find_chart")
    rate = form_rate(result.suggestion)
    stop = (
        f"the loss diverged at {result.diverged_lr:.1e}"
        if result.diverged_lr
        else "the loss never diverged"
    )
    st.caption(
        f"Suggested learning rate {result.suggestion:.1e}: the {METHODS[result.method]}; "
        f"{stop}. The form takes {rate:g}."
    )
    st.button("Use this learning rate", key="train_lr_use", on_click=_use, args=(rate,))
