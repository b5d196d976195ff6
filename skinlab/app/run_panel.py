"""Streamlit components for one training run: the live panel (state, progress, curves, the
overfitting warning, stop / resume / use-as-model buttons, log) and the runs table.

Every call re-reads the run folder (:func:`skinlab.app.train_monitor.load_run`), so a page
wraps :func:`live_panel` in ``st.fragment(run_every=...)`` to stream a run it does not own.

Example::

    @st.fragment(run_every=1.5)
    def watch():
        live_panel(run_id)
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from skinlab.app import curves, train_form, train_monitor, ui
from skinlab.core import runs
from skinlab.core.errors import SkinlabError
from skinlab.jobs import manager, repeats

_ERROR = "run_panel_error"  # session key of the last button action's error
_RERUN_APP = "run_panel_rerun_app"  # set when an action changed something outside the panel

#: How the runs table shows its columns: short headers and narrow numbers, so the nine
#: columns fit a laptop's page width (the full config is in the cell's tooltip).
TABLE_COLUMNS = {
    "run": st.column_config.TextColumn("Run"),
    "state": st.column_config.TextColumn("State", width="small"),
    "epochs": st.column_config.TextColumn("Epochs", width="small"),
    "config": st.column_config.TextColumn("Config", width="medium"),
    "best val accuracy": st.column_config.NumberColumn(
        "Val. accuracy", format="percent", width="small", help="Best validation accuracy"
    ),
    "balanced accuracy": st.column_config.NumberColumn(
        "Balanced", format="percent", width="small", help="Balanced accuracy on validation"
    ),
    "created": st.column_config.DatetimeColumn("Created", format="MMM D, HH:mm", width=110),
    "error": st.column_config.TextColumn("Error"),
    "run id": st.column_config.TextColumn("Run id"),
}


def live_panel(run_id: str) -> None:
    """Draw run ``run_id`` as it is now; a finished run shows its final metrics and a button
    to use it for predictions, a failed one its error, stopped and failed ones with a saved
    epoch a Resume button. Reruns the whole app once when the run ends (the sidebar lists
    new models)."""
    if st.session_state.pop(_RERUN_APP, False):
        st.rerun()
    try:
        view = train_monitor.load_run(run_id)
    except SkinlabError as exc:
        ui.show_error(exc)
        return
    status = view.status
    st.badge(status.state, color=train_monitor.STATE_COLOURS.get(status.state, "gray"))
    # The name anyone may set, the settings read from the run's config.json: text only.
    st.caption(ui.literal(f"{view.name}: {train_form.describe_config(view.config)}"))
    if status.state == "queued":
        st.info("Queued: it starts when the run ahead of it ends.")
    for fraction, text in train_monitor.progress_lines(status):
        st.progress(fraction, text=ui.literal(text))  # its phase is a field of status.json
    _curves(view)
    if view.config.repeat_group:
        _repeat_bands(view.config.repeat_group)
    _outcome(view)
    _buttons(view)
    with st.expander("Training log"):
        st.code(manager.read_log(view.run_id, tail=40) or "(empty)", language=None)
    if train_monitor.just_ended(st.session_state, view):
        st.rerun()


def _curves(view: train_monitor.RunView) -> None:
    numbers = train_monitor.latest_metrics(view.history)
    running = {m: curves.in_progress_point(view.status, m) for m in ("loss", "accuracy")}
    if not numbers and running["loss"] is None:
        st.caption("The learning curves start with the first training batch.")
        return
    if numbers:
        for col, (label, value) in zip(st.columns(len(numbers)), numbers, strict=True):
            col.metric(label, value)
    left, right = st.columns(2)
    for column, metric in ((left, "loss"), (right, "accuracy")):
        figure = curves.learning_curve_figure(view.history, metric, in_progress=running[metric])
        column.plotly_chart(ui.plain_figure(figure), width="stretch")
    if signal := curves.overfitting_signal(view.history):
        st.warning(signal, icon=":material/trending_up:")


def _repeat_bands(group: str) -> None:
    """The run's seed-repeat group: mean ± sd of its runs' curves, epoch by epoch."""
    members = repeats.members(group)
    histories = repeats.member_histories(members)
    done = sum(not h.empty for h in histories)
    st.markdown(
        f"**Seed repeats** ({ui.literal(group)}): {len(members)} runs of these settings with different "
        f"seeds, {done} with a whole epoch. The band is mean ± sd across them: a difference "
        "between two settings smaller than it may be only noise."
    )
    if done < 2:
        st.caption("The band appears once two runs of the group have a whole epoch.")
        return
    left, right = st.columns(2)
    for column, metric in ((left, "loss"), (right, "accuracy")):
        bands = {
            f"training {metric}": repeats.epoch_bands(histories, metric),
            f"validation {metric}": repeats.epoch_bands(histories, f"val_{metric}"),
        }
        title = f"{metric.capitalize()}, mean ± sd over {done} seeds"
        figure = curves.band_figure(bands, title=title, yaxis=metric)
        column.plotly_chart(
            ui.plain_figure(figure), width="stretch", key=f"repeat_{group}_{metric}"
        )


def _outcome(view: train_monitor.RunView) -> None:
    if view.metrics:
        st.markdown(train_monitor.scores_heading(view))
        for col, (label, value) in zip(st.columns(3), view.metrics.items(), strict=True):
            col.metric(label, "–" if value is None else f"{value:.1%}")
    if note := train_monitor.ending_note(view):
        st.caption(note)
    if view.status.state == "failed" and view.status.error:
        ui.show_error(SkinlabError(view.status.error))
    elif view.status.state == "stopped" and view.status.error:
        # Killed: not an error. The text is the run's, so it is shown literally.
        st.warning(ui.literal(view.status.error), icon=":material/stop_circle:")


def _act(action, *args, **kwargs) -> None:
    """Run a button's action before the rerun draws the panel; keep its error for the panel."""
    try:
        action(*args, **kwargs)
    except SkinlabError as exc:
        st.session_state[_ERROR] = exc


def _buttons(view: train_monitor.RunView) -> None:
    if error := st.session_state.pop(_ERROR, None):
        ui.show_error(error)
    state, run_id = view.status.state, view.run_id
    if view.live:
        # A stop finishes the batch and evaluates the best weights; a second one kills.
        force = state == "stopping"
        st.button(
            "Force stop now" if force else "Stop",
            key="run_stop",
            icon=":material/stop:",
            on_click=_act,
            args=(manager.stop_run, run_id),
            # What the user clicked: Stop never kills, even if its click arrives twice.
            kwargs={"force": force, "escalate": False},
        )
    if view.can_resume:  # a run with no whole epoch has nothing to resume: no button
        st.button(
            "Resume",
            key="run_resume",
            icon=":material/replay:",
            on_click=_act,
            args=(manager.resume_run, run_id),
        )
    if not view.can_predict:
        return
    if ui.active_model() == run_id:
        st.caption("This run is the model the Predict page uses.")
    else:
        st.button(
            "Use this model for predictions",
            key="run_use",
            type="primary",
            on_click=_use_model,
            args=(run_id,),
        )


def _use_model(run_id: str) -> None:
    ui.set_active_model(run_id)
    st.session_state[_RERUN_APP] = True  # the sidebar's model picker lives outside the fragment


def runs_table(summaries: list[runs.RunSummary]) -> None:
    """The queue and history of runs, newest first."""
    table = train_monitor.runs_table(summaries)
    if table.empty:
        st.caption("Runs you start appear here, newest first.")
        return
    st.dataframe(
        table,
        hide_index=True,
        column_config=table_columns(table),
        placeholder="—",
        width="stretch",
    )


def repeat_groups(summaries: list[runs.RunSummary]) -> None:
    """Each seed-repeat group's final scores as mean ± sd over its runs (nothing without
    groups)."""
    table = repeats.group_table(summaries)
    if table.empty:
        return
    st.markdown("**Seed repeats**: mean ± sd over each group's runs")
    st.dataframe(table, hide_index=True, width="stretch")


def table_columns(table: pd.DataFrame) -> dict:
    """:data:`TABLE_COLUMNS`, less the run-id column when every run is unnamed (the Run
    column already says the id) and the error column when no run has an error."""
    config: dict[str, object] = dict(TABLE_COLUMNS)  # None hides a column
    if (table["run"] == table["run id"]).all():
        config["run id"] = None
    if not table["error"].astype(bool).any():
        config["error"] = None
    return config


def all_runs() -> None:
    """The Train page's "All runs" section: every run, and the seed-repeat groups."""
    st.subheader("All runs")
    summaries = manager.list_summaries()
    runs_table(summaries)
    repeat_groups(summaries)
