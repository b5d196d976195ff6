"""The Runs page's parts: scores with their intervals and the paired test, the confusion
matrices and their galleries (with relabel/exclude), calibration, the unfamiliar-image gate,
cross-validation results, and managing a run (rename, delete, export, use for predictions).
pages/runs.py lays them out; everything here draws with Streamlit and reads through the
library.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from skinlab.app import compare, cv_view, review_view, run_stats, ui
from skinlab.core import runs
from skinlab.core.config import MAX_NAME_CHARS
from skinlab.core.confine import confine_run
from skinlab.core.errors import SkinlabError
from skinlab.jobs import manager
from skinlab.predict import ood_report
from skinlab.train import cv

NOTICE, _CONFIRM, _BUNDLE = "runs_notice", "runs_confirm_delete", "runs_bundle"
_ANY = "(any)"


def _act(action: Callable[..., object], *args: str, done: str) -> None:
    """Button callback: run ``action`` and leave its outcome for the next run to show."""
    try:
        action(*args)
        st.session_state[NOTICE] = done
    except SkinlabError as exc:
        st.session_state[NOTICE] = exc
    st.session_state.pop(_CONFIRM, None)


def _confined(action: Callable[..., object]) -> Callable[..., object]:
    # As Train and Predict do: a run folder that leads outside models/ (a symbolic link) is
    # refused in one sentence, never renamed or deleted through.
    return lambda run_id, *args: action(confine_run(run_id).root, *args)


def _rename(run_id: str) -> None:
    name = st.session_state.get("runs_new_name", "").strip()
    done = f"Renamed the run to '{name or run_id}'."
    _act(_confined(manager.rename_run), run_id, name, done=done)
    st.session_state["runs_new_name"] = ""


def _delete(run_id: str) -> None:
    _act(_confined(manager.delete_run), run_id, done=f"Deleted run {run_id}.")
    if st.session_state.get(_BUNDLE, ("",))[0] == run_id:
        del st.session_state[_BUNDLE]


def keep_known(key: str, options: list[Any]) -> None:
    # A deleted run must leave the widgets that remembered it, or they would refuse to draw.
    value = st.session_state.get(key)
    if isinstance(value, list):
        st.session_state[key] = [v for v in value if v in options]
    elif value is not None and value not in options:
        del st.session_state[key]


def scores(records: list[compare.RunRecord], split: str) -> None:
    st.dataframe(compare.styled_metrics(compare.metrics_table(records, split)))
    st.caption("Best run of each score shaded; ECE is on validation, after temperature scaling.")
    _uncertainty(records, split)
    train = st.toggle("Show training curves too", key="runs_train_curves")
    left, right = st.columns(2)
    # Run names (the legend) are anyone's to set: every figure is drawn as plain text.
    left.plotly_chart(
        ui.plain_figure(compare.curves_figure(records, "accuracy", include_train=train))
    )
    right.plotly_chart(ui.plain_figure(compare.curves_figure(records, "loss", include_train=train)))


def _uncertainty(records: list[compare.RunRecord], split: str) -> None:
    table = run_stats.intervals_table(records, split)
    if table.empty:
        return
    st.markdown("**95% bootstrap intervals**")
    st.dataframe(table)
    st.caption(
        f"Each score with the range it takes in 95% of 2,000 resamples of the {split} images: "
        "with ~100 images a score moves several points by chance alone."
    )
    if len(table) < 2:
        return
    labels = {r.run_id: r.label for r in records if r.label in table.index}
    keep_known("runs_paired_a", list(labels))
    keep_known("runs_paired_b", list(labels))
    left, right = st.columns(2)
    a = left.selectbox(
        "Is run A", list(labels), format_func=lambda r: ui.plain(labels[r]), key="runs_paired_a"
    )
    b = right.selectbox(
        "better than run B",
        list(labels),
        index=1,
        format_func=lambda r: ui.plain(labels[r]),
        key="runs_paired_b",
    )
    if a == b:
        st.info("Pick two different runs to compare them image by image.")
        return
    chosen = {r.run_id: r for r in records}
    try:
        result = run_stats.paired_runs(chosen[a], chosen[b], split)
    except SkinlabError as exc:
        ui.show_error(exc)
        return
    st.dataframe(run_stats.paired_table(result))
    st.markdown(ui.literal(result["verdict"]))
    st.caption(
        f"Paired on the {result['shared_images']} {split} images both runs scored: "
        f"{result['only_a_correct']} only A got right, {result['only_b_correct']} only B."
    )


def familiarity(records: list[compare.RunRecord]) -> None:
    shown = 0
    for record in records:
        gate = ood_report.run_gate(record.paths)
        summary = record.metrics.get("ood_validation")
        if gate is None or gate.validation is None or not isinstance(summary, dict):
            continue
        shown += 1
        st.markdown(f"**{ui.literal(record.label)}**")
        st.markdown(ood_report.summary_text(summary, text=ui.literal))
        st.plotly_chart(
            ui.plain_figure(ood_report.score_figure(gate.validation, gate.threshold)),
            key=f"runs_ood_{record.run_id}",
        )
    if not shown:
        st.info(
            "No chosen run has an unfamiliar-image gate yet. Runs get one when training ends; "
            "for an older run, `python -m skinlab familiarity RUN` fits it."
        )


def mistakes(records: list[compare.RunRecord], split: str) -> None:
    keys = {r.run_id: f"runs_cm_{r.run_id}_{split}" for r in records}
    for run_id, key in keys.items():
        # A new click on a cell moves the gallery there; read before the filters are drawn.
        cell = compare.clicked_cell(st.session_state.get(key))
        if cell and st.session_state.get(f"{key}_applied") != cell:
            st.session_state[f"{key}_applied"] = cell
            st.session_state.update(gallery_run=run_id, gallery_true=cell[0])
            st.session_state["gallery_predicted"] = cell[1]
    labels = {r.run_id: r.label for r in records}
    keep_known("gallery_run", list(labels))
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    shown = left.selectbox(
        "Images of", list(labels), format_func=lambda r: ui.plain(labels[r]), key="gallery_run"
    )
    normalise = right.toggle("Row-normalised (share of each true class)", key="runs_normalise")
    st.caption("Click a cell of a confusion matrix to see its images under it.")
    for record in records:
        matrix = compare.confusion(record, split)
        if matrix is None:  # the page passes evaluated runs only
            continue
        fig = ui.plain_figure(
            compare.confusion_figure(*matrix, normalise=normalise, title=record.label)
        )
        st.plotly_chart(fig, key=keys[record.run_id], on_select="rerun", selection_mode="points")
        if record.run_id == shown:
            _gallery(record, split, matrix[1])


def _gallery(record: compare.RunRecord, split: str, classes: list[str]) -> None:
    cols = st.columns(2)
    # Class names come from metrics.json, a file anyone with the models folder can edit.
    true = cols[0].selectbox(
        "True class", [_ANY, *classes], key="gallery_true", format_func=ui.plain
    )
    predicted = cols[1].selectbox(
        "Predicted class", [_ANY, *classes], key="gallery_predicted", format_func=ui.plain
    )
    try:
        frame = compare.examples(
            record,
            split,
            true=None if true == _ANY else true,
            predicted=None if predicted == _ANY else predicted,
        )
    except SkinlabError as exc:
        ui.show_error(exc)
        return
    images, captions, unreadable = compare.gallery(frame)
    kind = "correct" if true == predicted != _ANY else "misclassified"
    label = ui.literal(record.label)
    st.caption(f"{len(frame)} {kind} {split} images of {label}, most confident first.")
    if images:
        st.image(images, caption=[ui.literal(c) for c in captions], width=160)
        review_view.act_on_mistakes(str(compare.image_root(record) or ""), frame, classes)
    if unreadable:
        st.warning(
            ui.literal(f"{unreadable} images are no longer in {compare.image_root(record)}.")
        )


def manage(summaries: list[runs.RunSummary], first: str | None) -> None:
    labels = {s.run_id: s.label for s in summaries}
    keep_known("manage_run", list(labels))
    if first:
        st.session_state.setdefault("manage_run", first)
    run_id = st.selectbox(
        "Run", list(labels), format_func=lambda r: ui.plain(labels[r]), key="manage_run"
    )
    if run_id is None:  # a selectbox with options always has a choice
        return
    summary = next(s for s in summaries if s.run_id == run_id)
    error = f". {ui.literal(summary.error)}" if summary.error else ""
    st.caption(f"State: {ui.literal(summary.state)}{error}")
    usable = run_id in {s.run_id for s in ui.usable_runs()}
    active = ui.active_model() == run_id
    cols = st.columns(3)
    cols[0].button(
        "Makes the predictions" if active else "Use for predictions",
        icon=":material/check:" if active else None,
        disabled=not usable or active,
        on_click=_act,
        args=(ui.set_active_model, run_id),
        kwargs={"done": f"{labels[run_id]} now makes the predictions."},
        width="stretch",
    )
    with cols[1]:
        _export(run_id, usable)
    if st.session_state.get(_CONFIRM) != run_id:
        cols[2].button(
            "Delete run…",
            on_click=st.session_state.update,
            kwargs={_CONFIRM: run_id},
            width="stretch",
        )
    else:
        label = ui.literal(labels[run_id])
        st.warning(f"Delete {label} and every file in its folder? This cannot be undone.")
        yes, no = st.columns(2)
        yes.button("Yes, delete it", type="primary", on_click=_delete, args=(run_id,))
        no.button("Cancel", on_click=st.session_state.pop, args=(_CONFIRM, None))
    with st.form("runs_rename", border=False):
        field, submit = st.columns([3, 1], vertical_alignment="bottom")
        field.text_input(
            "New name",
            key="runs_new_name",
            placeholder="baseline, strong aug…",
            max_chars=MAX_NAME_CHARS,
        )
        submit.form_submit_button("Rename", on_click=_rename, args=(run_id,), width="stretch")


def cross_validation() -> None:
    results = cv.load_results()
    if not results:
        st.info(
            "No cross-validation yet. `python -m skinlab cv --preset quick --folds 5` trains one "
            "run per fold of Train and saves the mean ± sd here."
        )
        return
    keep_known("runs_cv", list(range(len(results))))
    shown = st.selectbox(
        "Cross-validation",
        range(len(results)),
        format_func=lambda i: ui.plain(cv.result_label(results[i])),
        key="runs_cv",
    )
    result = results[shown]
    st.dataframe(cv.fold_table(result), hide_index=True)
    st.caption(
        ui.literal(f"Validation scores of each fold's run ({cv_view.recipe_note(result)}); ")
        + "sd is the sample standard deviation over the folds. Test was not used."
    )


def _export(run_id: str, usable: bool) -> None:
    # Exporting takes seconds, so it runs on request and the bundle is kept for one run; an
    # error then shows as one sentence (a deferred download could only fail silently).
    slot = st.empty()
    if st.session_state.get(_BUNDLE, ("",))[0] != run_id:
        if not slot.button("Prepare export bundle", disabled=not usable, width="stretch"):
            return
        try:
            with st.spinner("Exporting the model…"):
                st.session_state[_BUNDLE] = (run_id, compare.export_bundle(run_id))
        except SkinlabError as exc:
            ui.show_error(exc)
            return
    slot.download_button(
        "Download export bundle (.zip)",
        data=st.session_state[_BUNDLE][1],
        file_name=f"{run_id}-keras.zip",
        mime="application/zip",
        on_click="ignore",
        type="primary",
        width="stretch",
    )
