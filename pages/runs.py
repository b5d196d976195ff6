"""Runs: compare training runs side by side, look at their mistakes, and manage them."""

import streamlit as st

from skinlab.app import compare, external_view, run_stats, ui
from skinlab.app import runs_view as rv
from skinlab.core.errors import SkinlabError
from skinlab.jobs import manager


def page() -> None:
    st.title("Compare runs")
    notice = st.session_state.pop(rv.NOTICE, None)
    if isinstance(notice, SkinlabError):
        ui.show_error(notice)
    elif notice:
        st.success(ui.literal(notice))  # it may hold a run's name, which anyone can set
    summaries = manager.list_summaries()
    if not summaries:
        st.info("No training runs yet: start one on the Train page.")
        return
    broken = [s for s in summaries if s.state == "broken"]
    if broken:
        with st.expander(f"{len(broken)} runs could not be read", expanded=True):
            for s in broken:
                st.markdown(f"**{ui.literal(s.run_id)}**: {ui.literal(s.error or '')}")
    readable = {s.run_id: s.label for s in summaries if s.state != "broken"}
    rv.keep_known("compare_runs", list(readable))
    st.session_state.setdefault("compare_runs", compare.default_selection(summaries))
    chosen = st.multiselect(
        "Runs to compare",
        list(readable),
        format_func=lambda run: ui.plain(readable[run]),  # names anyone may set
        key="compare_runs",
    )
    records = compare.load_runs(chosen)
    for record in records:
        for problem in record.problems:
            st.warning(ui.literal(f"{record.label}: {problem}"))
    split = st.radio(
        "Evaluate on",
        compare.SPLITS,
        horizontal=True,
        key="runs_split",
        help="Test images were never used in training; Val is the slice of Train that picked "
        "the best epoch and fitted the temperature.",
    )
    scores, recall, mistakes, calibration, unfamiliar, external, folds, manage = st.tabs(
        [
            "Scores",
            "Per-class recall",
            "Confusion and mistakes",
            "Calibration",
            "Unfamiliar images",
            "External test",
            "Cross-validation",
            "Manage",
        ]
    )
    evaluated = [r for r in records if compare.confusion(r, split)]
    calibrated = [r for r in records if r.section("calibration")]
    missing = (
        "Pick runs to compare above."
        if not records
        else f"No chosen run has {split} scores yet (still training, or no {split} split)."
    )
    if records:
        with scores:
            rv.scores(records, split)
    if evaluated:
        per_class = compare.per_class_recall(evaluated, split)
        figure = compare.recall_figure(per_class, compare.colours(records))
        recall.plotly_chart(ui.plain_figure(figure))
        recall.plotly_chart(ui.plain_figure(run_stats.recall_intervals_figure(evaluated, split)))
        recall.caption("Dots: recall on all images; bars: 95% bootstrap interval.")
        with mistakes:
            rv.mistakes(evaluated, split)
    if calibrated:
        calibration.caption("Temperature fitted and reliability measured on the validation split.")
        calibration.plotly_chart(ui.plain_figure(compare.reliability_figure(records)))
        for record, note in compare.separation_notes(calibrated):
            calibration.warning(ui.literal(f"{record.label}: {note}"), icon=":material/info:")
    for tab, shown in ((scores, records), (recall, evaluated), (mistakes, evaluated)):
        if not shown:
            tab.info(missing)
    if not calibrated:
        calibration.info("No chosen run is calibrated yet: that happens when training ends.")
    with unfamiliar:
        rv.familiarity(records)
    with external:
        external_view.external_tab(records)
    with folds:
        rv.cross_validation()
    with manage:
        rv.manage(summaries, next(iter(chosen), None))


ui.require_router()
page()
