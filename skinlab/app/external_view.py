"""The Runs page's External test tab: a run scored on an external set beside its own score
(the drop in one sentence, what was left out and why, the external confusion matrix, the
melanomas it missed with Grad-CAM), the lesion-masked test and the shortcut check of the
run's training images (:func:`skinlab.app.shortcut_view.run_check`) behind a button each, and
all of them as saved in the run's ``metrics.json``, shown without scoring again.

Scoring decodes every image, so it runs on a button, through one cached library call each
(:func:`skinlab.app.caches.external_score`, :func:`skinlab.app.caches.lesion_masked`), and
the request is kept in the session so the result stays on the page across reruns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from skinlab.app import caches, compare, predict_view, run_stats, shortcut_view, ui
from skinlab.app.runs_view import keep_known
from skinlab.core.classes import normalise_class_name
from skinlab.core.confine import confine, within
from skinlab.core.errors import SkinlabError
from skinlab.data.discovery import fingerprint
from skinlab.evaluate import saved_checks
from skinlab.evaluate.evaluation import MELANOMA

RUN_KEY, PATH_KEY, TTA_KEY = "external_run", "external_path", "external_tta"
SCORE_BUTTON, MASKED_BUTTON = "Score on this external set", "Run the lesion-masked test"
#: Session keys: the ``(run id, path, views)`` the score button asked for, and the run id
#: the masked test was asked for.
_ASKED, _MASKED = "external_asked", "external_masked"
#: External mistakes shown in the gallery.
GALLERY = 6
_LAYOUTS = (
    "Any of four layouts: a folder of class folders (<class>/*.jpg); a dataset root with a "
    "Test/ folder (only Test/ is scored); HAM10000's images with HAM10000_metadata.csv; or an "
    "ISIC challenge ground-truth CSV (image, MEL, NV, ...) beside its images. Images the run "
    "trained on are left out."
)
_SPLITS = {"Test": "Test", "validation": "Val"}  # the internal split, as predictions.csv says


def external_tab(records: list[compare.RunRecord]) -> None:
    """Draw the tab for one of ``records`` (the runs chosen on the page)."""
    if not records:
        st.info("Pick runs to compare above.")
        return
    labels = {r.run_id: r.label for r in records}
    keep_known(RUN_KEY, list(labels))
    run_id = st.selectbox(
        "Run", list(labels), format_func=lambda run: ui.plain(labels[run]), key=RUN_KEY
    )
    record = next(r for r in records if r.run_id == run_id)
    saved = st.container()  # filled last: a score made in this run is saved by then
    _score_form(record)
    st.divider()
    _masked_test(record)
    shortcut_view.run_check(record.run_id, record.config.data_root if record.config else "")
    with saved:
        _saved(record)


def _ask(run_id: str) -> None:
    st.session_state[_ASKED] = (run_id, st.session_state[PATH_KEY], st.session_state[TTA_KEY])


def _weights(record: compare.RunRecord) -> str:
    return record.manifest.weights_sha256 if record.manifest else ""


def _score_form(record: compare.RunRecord) -> None:
    st.markdown("#### Score on an external set")
    st.caption(
        "A score on images of the run's own archive cannot show that the model learnt the "
        "archive instead of the lesion; images of another collection can."
    )
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    left.text_input(
        "External set", key=PATH_KEY, placeholder="/data/ham10000-external", help=_LAYOUTS
    )
    right.radio(
        "Views per image",
        (1, 8),
        key=TTA_KEY,
        horizontal=True,
        help="8 averages flipped and turned views of each image: steadier, 8 times slower.",
    )
    st.button(
        SCORE_BUTTON, type="primary", key="external_score", on_click=_ask, args=(record.run_id,)
    )
    asked = st.session_state.get(_ASKED)
    if asked and asked[0] == record.run_id:
        _show_score(record, str(asked[1]).strip(), int(asked[2]))


def _show_score(record: compare.RunRecord, typed: str, tta: int) -> None:
    if not typed:
        st.warning("Type the folder of an external set first.")
        return
    try:
        folder = confine(typed, "The external set", remedy="copy the set into the data folder")
        token = fingerprint(folder if folder.is_dir() else folder.parent)
        result, mistakes = caches.external_score(
            record.run_id, _weights(record), str(folder), token, tta
        )
    except SkinlabError as exc:
        ui.show_error(exc)
        return
    ext = result["external"]
    own = ext["internal"]["balanced_accuracy"]
    high = result["intervals"]["balanced_accuracy"]["high"]
    fell = own is not None and high is not None and own > high
    (st.warning if fell else st.info)(ui.literal(ext["drop"]), icon=":material/compare_arrows:")
    st.table(comparison_table(result, record))  # five rows: a plain table reads best
    st.caption(
        "Each score with its 95% bootstrap interval over the images scored; the run's own "
        "column is its saved score (interval from its predictions.csv)."
    )
    for title, text in left_out_lines(result):
        st.markdown(f"**{title}**: {ui.literal(text)}" if title else ui.literal(text))
    counts = np.asarray(result["confusion_matrix"], dtype=float)
    figure = compare.confusion_figure(counts, result["class_names"], title="External set")
    st.plotly_chart(ui.plain_figure(figure), key=f"external_cm_{record.run_id}")
    _gallery(record.run_id, Path(result["data_root"]), mistakes, _melanoma(result["class_names"]))


def comparison_table(result: dict[str, Any], record: compare.RunRecord) -> pd.DataFrame:
    """The run's own scores and the external ones side by side, each as text with its 95 %
    interval where there is one (rows: balanced accuracy, accuracy, melanoma sensitivity
    and specificity, images)."""
    ext, intervals = result["external"], result["intervals"]
    internal, melanoma = ext["internal"], ext["melanoma"] or {}
    split = internal["split"]
    found = (run_stats.run_intervals(record, _SPLITS[split]) if split else None) or {}
    own_section = record.section("test" if split == "Test" else "validation") or {}
    own_melanoma = found.get("per_class_recall", {}).get(_melanoma(result["class_names"]))
    own = {
        "Balanced accuracy": _cell(internal["balanced_accuracy"], found.get("balanced_accuracy")),
        "Accuracy": _cell(internal["accuracy"], found.get("accuracy")),
        "Melanoma sensitivity": _cell(internal["melanoma_sensitivity"], own_melanoma),
        "Melanoma specificity": _cell((own_section.get("melanoma") or {}).get("specificity")),
        "Images": "–" if internal["n"] is None else str(internal["n"]),
    }
    external = {
        "Balanced accuracy": _interval(intervals["balanced_accuracy"]),
        "Accuracy": _interval(intervals["accuracy"]),
        "Melanoma sensitivity": _interval(melanoma.get("sensitivity")),
        "Melanoma specificity": _interval(melanoma.get("specificity")),
        "Images": str(ext["n_scored"]),
    }
    return pd.DataFrame({f"Own {split or '–'} images": own, "External set": external})


def _melanoma(class_names: list[str]) -> str | None:
    return next((c for c in class_names if normalise_class_name(c) == MELANOMA), None)


def _interval(interval: dict[str, Any] | None) -> str:
    """``"0.612 (0.521–0.702)"``, or ``"–"`` when undefined."""
    if not interval or interval.get("estimate") is None:
        return "–"
    return _cell(interval["estimate"], interval)


def _cell(value: float | None, interval: dict[str, Any] | None = None) -> str:
    if value is None:
        return "–"
    if not interval or interval.get("low") is None or interval.get("high") is None:
        return f"{value:.3f}"
    return f"{value:.3f} ({interval['low']:.3f}–{interval['high']:.3f})"


def left_out_lines(result: dict[str, Any]) -> list[tuple[str, str]]:
    """``(title, text)`` of what was scored, left out and not scored, as the tab shows them
    (notes have no title)."""
    ext = result["external"]
    origin = ", ".join(f"{name}: {n}" for name, n in ext["collections"].items())
    excluded = ", ".join(f"{rule}: {n}" for rule, n in ext["excluded"].items())
    skipped = ", ".join(f"{reason}: {n}" for reason, n in ext["skipped"].items())
    lines = [
        ("Scored", f"{ext['n_scored']} images, {ext['layout']} layout; collections {origin}."),
        ("Excluded as already in the run's training data", f"{excluded}."),
        ("Skipped", f"{skipped or 'none'}."),
    ]
    if ext["classes_absent"]:
        absent = ", ".join(ext["classes_absent"])
        lines.append(("Not scored", f"{absent} (no image of these classes in the set)."))
    return [*lines, *(("", note) for note in ext["notes"])]


def _gallery(run_id: str, root: Path, mistakes: pd.DataFrame, melanoma: str | None) -> None:
    missed = mistakes[mistakes["true"] == melanoma] if melanoma else mistakes.iloc[:0]
    shown = (missed if len(missed) else mistakes).sort_values("confidence", ascending=False)
    if shown.empty:
        st.caption("The model got every scored external image right.")
        return
    what = "melanomas it called something else" if len(missed) else "mistakes"
    st.markdown(
        f"**External {what}** ({len(shown)}; the {min(GALLERY, len(shown))} most confident)"
    )
    cam = st.toggle("Show where the model looked (Grad-CAM, seconds)", key="external_gradcam")
    columns = st.columns(3)
    for k, row in enumerate(shown.head(GALLERY).itertuples()):
        source = within(root / str(row.path))
        caption = f"{row.true} → {row.predicted} ({row.confidence:.0%})"
        try:
            picture = _picture(run_id, source, str(row.predicted), cam)
        except (SkinlabError, OSError) as exc:
            columns[k % 3].caption(ui.literal(f"{row.path}: {exc}"))
            continue
        columns[k % 3].image(picture, caption=ui.literal(caption), width="stretch")


def _picture(run_id: str, source: Path | None, predicted: str, cam: bool):
    """The image, or its Grad-CAM for the class it was taken for, as the Predict page draws it."""
    if source is None:
        raise SkinlabError("the image is outside the folders this app may read.")
    if not cam:
        picture = compare.thumbnail(source, size=320)
        if picture is None:
            raise SkinlabError("the image can no longer be read.")
        return picture
    predictor = predict_view.predictor_for(run_id)
    # The file's size and time in the key: an image replaced under its name is explained afresh.
    info = source.stat()
    key = f"{source}:{info.st_size}:{info.st_mtime_ns}"
    item = predict_view.Item(name=source.name, source=source, key=key)
    return predict_view.gradcam_image(predictor, item, predicted, opacity=0.4)[0]


def _masked_test(record: compare.RunRecord) -> None:
    st.markdown("#### Lesion-masked test")
    st.caption(
        "The run scored on its own Test images (its validation images when the dataset has "
        "no Test split) as they are, with the centre hidden and with only the centre kept. "
        "Well above chance with the lesion hidden means the model uses the context."
    )
    if st.button(MASKED_BUTTON, key="external_masked_button", icon=":material/visibility_off:"):
        st.session_state[_MASKED] = record.run_id
    if st.session_state.get(_MASKED) != record.run_id:
        return
    root = record.config.data_root if record.config else ""
    try:
        masked = caches.lesion_masked(
            record.run_id, _weights(record), fingerprint(root) if root else ""
        )
    except SkinlabError as exc:
        ui.show_error(exc)
        return
    columns = st.columns(4)
    columns[0].metric("As is", f"{masked.as_is:.2f}")
    columns[1].metric("Centre hidden", f"{masked.centre_hidden:.2f}")
    columns[2].metric("Only the centre", f"{masked.centre_only:.2f}")
    columns[3].metric("Chance", f"{masked.chance:.2f}")
    st.write(ui.literal(masked.sentence))


def _saved(record: compare.RunRecord) -> None:
    try:
        metrics = compare.load_run(record.run_id).metrics
    except SkinlabError:
        metrics = record.metrics
    external = saved_checks.saved_external(metrics)
    masked = saved_checks.saved_masked(metrics)
    shortcuts = saved_checks.saved_shortcuts(metrics)
    if not external and not masked and not shortcuts:
        st.caption("No external set, masked test or shortcut check saved for this run yet.")
        return
    with st.expander(f"Saved results ({len(external)} external sets)", expanded=True):
        if external:
            st.dataframe(saved_table(external), hide_index=True)
        lines = [s.sentence for s in external] + [c.sentence for c in (masked, shortcuts) if c]
        for line in lines:
            st.caption(ui.literal(line))


def saved_table(summaries: list[saved_checks.ExternalSummary]) -> pd.DataFrame:
    """One row per saved external set: its name, images and scores beside the run's own."""
    return pd.DataFrame(
        {
            "Set": s.name,
            "Images": s.images,
            "Balanced accuracy": s.balanced_accuracy.text(),
            "Own balanced accuracy": (
                "n/a" if s.own_balanced_accuracy is None else f"{s.own_balanced_accuracy:.2f}"
            ),
            "Melanoma sensitivity": s.melanoma_sensitivity.text()
            if s.melanoma_sensitivity
            else "n/a",
            "Views": s.tta,
            "Scored": s.scored.replace("T", " ").replace("+00:00", " UTC"),
        }
        for s in summaries
    )
