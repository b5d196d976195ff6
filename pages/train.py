"""Train: fill the form (or a preset), start a background run, and watch it live.

Training runs in its own process (skinlab.jobs.manager); this page only reads run folders, so
leaving, reloading or a second tab shows the same run. The only run state kept here is the
id of the run the user chose to watch.
"""

import streamlit as st

from skinlab.app import (
    catalog,
    review_view,
    run_panel,
    train_extra,
    train_form,
    train_lr_find,
    train_monitor,
    train_widgets,
    ui,
)
from skinlab.core.errors import SkinlabError
from skinlab.core.runs import RunSummary
from skinlab.data.discovery import Dataset
from skinlab.jobs import manager

_RUN = "train_run"  # session key of the chosen run id (also ?run= in the URL)
_REPEATS = "train_repeats"
_START_ERROR = "train_start_error"


def _watch(run_id: str) -> None:
    st.session_state[_RUN] = st.query_params["run"] = run_id


def _start(root: str, dataset: Dataset) -> None:
    values = train_form.ensure_values(st.session_state)  # as committed with the click
    try:
        config = train_form.config_from_form(values, root)
        config = config.replace(data_version=review_view.chosen_version())
        config = config.replace(extra_data=train_extra.chosen())
        paths = train_monitor.launch(config, dataset, st.session_state.get(_REPEATS, 1))
    except SkinlabError as exc:
        st.session_state[_START_ERROR] = exc
        return
    _watch(paths.run_id)


def _live_run(every: float) -> None:
    summaries = manager.list_summaries()
    _watched_run(summaries)
    # After drawing, so a run's first point is on screen before the whole page reruns.
    if train_monitor.refresh_seconds(summaries) != every:
        st.rerun()  # a run started, showed life or ended: switch the refresh rate


def _watched_run(summaries: list[RunSummary]) -> None:
    chosen = st.session_state.get(_RUN) or st.query_params.get("run")
    if (run_id := train_monitor.run_to_show(summaries, chosen)) is None:
        return
    labels = train_monitor.run_labels(summaries)
    # A new widget whenever the run shown or a label changes: a keyed selectbox would keep
    # showing the labels it was created with.
    key = f"train_pick_{run_id}_{hash(tuple(labels.values())):x}"
    st.selectbox(
        "Run to watch",
        list(labels),
        index=list(labels).index(run_id),
        key=key,
        format_func=lambda run: ui.plain(labels[run]),  # names anyone may set
        on_change=lambda: _watch(st.session_state[key]),
    )
    with st.container(border=True):
        run_panel.live_panel(run_id)


def _new_run(root: str) -> None:
    st.subheader("New run")
    train_widgets.preset_buttons()
    try:
        dataset = ui.load_dataset(root)
    except SkinlabError as exc:
        ui.show_error(exc)
        return
    values = train_form.ensure_values(st.session_state)
    train_widgets.form(values)
    train_lr_find.lr_finder(root)
    train_widgets.previews(dataset, values)
    review_view.version_picker(str(dataset.root))
    train_widgets.seed_repeats(_REPEATS)
    st.button(
        "Start training",
        type="primary",
        icon=":material/play_arrow:",
        key="train_start",
        on_click=_start,
        args=(root, dataset),
    )
    if error := st.session_state.pop(_START_ERROR, None):
        ui.show_error(error)


def page() -> None:
    st.title("Train a model")
    root = ui.active_dataset_root()
    if not root:
        st.info("Type a dataset folder in the sidebar, or pick the demo dataset.")
        return
    st.caption(f"Dataset: {ui.literal(catalog.describe(root))}")
    every = train_monitor.refresh_seconds(manager.list_summaries())
    if every == train_monitor.IDLE_REFRESH_SECONDS and (cold := manager.ensure_standby()):
        st.caption(ui.literal(cold))  # else TensorFlow loads while the user picks the settings
    st.fragment(_live_run, run_every=every)(every)
    _new_run(root)
    table_every = max(every, train_monitor.LIVE_REFRESH_SECONDS)
    st.fragment(run_panel.all_runs, run_every=table_every)()


ui.require_router()
page()
