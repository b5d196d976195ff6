"""The Predict page's logic: inputs, cached predictions, the probability chart, the result
box, the batch table and the one-click quick model.

The page (``pages/predict.py``) only lays out widgets; what a result box *says* (wording,
chart) is :mod:`skinlab.app.prediction_report`, and the Streamlit side (inputs, caches, layout)
is here. Every result box carries the not-a-medical-device notice: never a bare verdict.

Example::

    predictor = predictor_for(ui.active_model())
    items = uploaded_items(st.file_uploader(..., accept_multiple_files=True))
    for item, result in zip(items, predict_items(predictor, items, tta=4)):
        render_result(predictor, item, result, opacity=0.4, gradcam=True)

Why one module: the Predict page's inputs, cached predictions and result widgets share the
page's session keys.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st
from PIL import Image

from skinlab.app import caches, catalog, ui
from skinlab.app.familiarity_view import render_similar
from skinlab.app.prediction_report import (
    display_name,
    error_lines,
    headline,
    malignant_text,
    ood_at,
    probability_figure,
    tier_text,
    top_k_text,
    truth_text,
    uncertainty_text,
    warnings_for,
)
from skinlab.core import runs
from skinlab.core.confine import confine_run
from skinlab.core.errors import SkinlabError
from skinlab.core.spreadsheet import csv_text
from skinlab.data.discovery import Dataset
from skinlab.data.images import IMAGE_SUFFIXES, ImageSource, decode_image
from skinlab.predict.explain import DISPLAY_PX
from skinlab.predict.gradcam import overlay
from skinlab.predict.predictor import (
    Prediction,
    PredictionError,
    Predictor,
    results_frame,
)

#: File types the uploader accepts: exactly the ones the safe decoder knows.
UPLOAD_TYPES: list[str] = sorted(s.lstrip(".") for s in IMAGE_SUFFIXES)
#: Result boxes drawn per page of a batch (each has a chart and a Grad-CAM).
PAGE_SIZE = 8
SAMPLES_KEY = "predict_samples"

Result = Prediction | PredictionError


@dataclass(frozen=True)
class Item:
    """One image to predict: a name to show, its bytes or path, a content key for caches
    and, for dataset samples, the true class from its folder."""

    name: str
    source: ImageSource
    key: str
    truth: str | None = None


# --- model -------------------------------------------------------------------------------


def predictor_for(run_id: str) -> Predictor:
    """The run's :class:`Predictor`, loaded once per run id and weights file version.

    Raises:
        SkinlabError: the run is missing, outside the models folder, has no weights, or its
            weights fail their check.
    """
    paths = confine_run(run_id)
    mtime = paths.weights.stat().st_mtime if paths.weights.exists() else 0.0
    return caches.predictor(paths.run_id, mtime)


def _run_key(predictor: Predictor) -> tuple[str, float]:
    weights = predictor.loaded.paths.weights
    return predictor.run_id, weights.stat().st_mtime if weights.exists() else 0.0


def model_caption(predictor: Predictor) -> str:
    """One line naming the run, backbone, input size, temperature and training data."""
    manifest = predictor.loaded.manifest
    name = runs.run_summary(predictor.loaded.paths).name
    # Anyone can rename a run, and the run folder, backbone and data path come from files:
    # each is literal text, the data path shortened.
    named = f" ({ui.literal(name)})" if name and name != predictor.run_id else ""
    data = manifest.data_root
    trained_on = f" · trained on {ui.literal(catalog.describe(data))}" if data else ""
    return (
        f"Model: run `{ui.literal(predictor.run_id)}`{named} · backbone "
        f"{ui.literal(manifest.backbone)} · {predictor.size} px input · temperature "
        f"{predictor.temperature:.2f} (probabilities calibrated on its validation "
        f"split){trained_on}"
    )


# --- inputs ------------------------------------------------------------------------------


#: Most files one upload may hold. Streamlit keeps every dropped file in memory until the
#: session ends and each is predicted in this script run, so the count is bounded as the
#: size of each is (``server.maxUploadSize``); 20 is more than a screen of results shows.
MAX_UPLOAD_FILES = 20


class TooManyFilesError(SkinlabError):
    """More files were dropped at once than :data:`MAX_UPLOAD_FILES`."""


def uploaded_items(files: Iterable | None, *, name: str | None = None) -> list[Item]:
    """Items from ``st.file_uploader`` / ``st.camera_input`` files (``None`` entries skipped).

    Raises:
        TooManyFilesError: more than :data:`MAX_UPLOAD_FILES` files; none of them was read.
    """
    files = [file for file in files or [] if file is not None]
    if len(files) > MAX_UPLOAD_FILES:
        raise TooManyFilesError(
            f"{len(files)} files were dropped and at most {MAX_UPLOAD_FILES} are predicted at "
            "once; remove some (the x beside each) or drop them in smaller batches."
        )
    out = []
    for file in files:
        data = file.getvalue()
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        out.append(Item(name or file.name, data, f"bytes:{digest}"))
    return out


def sample_options(dataset: Dataset) -> dict[str, str]:
    """Readable Test images of ``dataset``: ``{relpath: class}``, in folder order."""
    test = dataset.images("Test")
    return dict(zip(test["relpath"], test["label"], strict=True))


def sample_items(dataset: Dataset, relpaths: Sequence[str]) -> list[Item]:
    """Items for the chosen Test images, each with its true class."""
    test = dataset.images("Test").set_index("relpath")
    out = []
    for rel in relpaths:
        if rel in test.index:
            row = test.loc[rel]
            key = f"file:{row['path']}:{row['content_hash']}"
            out.append(Item(rel, row["path"], key, truth=row["label"]))
    return out


def sample_label(relpath: str, label: str) -> str:
    """How the sample picker lists one image (plain text: a multiselect shows it as typed)."""
    return ui.plain(f"{display_name(label)} · {relpath.rsplit('/', 1)[-1]}")


def keep_valid_samples(options: Iterable[str]) -> None:
    """Drop picked samples that are no longer options (another dataset was picked)."""
    allowed = set(options)
    picked = st.session_state.get(SAMPLES_KEY) or []
    st.session_state[SAMPLES_KEY] = [p for p in picked if p in allowed]


def pick_random_samples(options: Sequence[str], count_key: str) -> None:
    """Button callback: replace the picked samples with random Test images, as many as the
    number widget ``count_key`` says (read here, so a number typed just before the click
    counts)."""
    n = int(st.session_state.get(count_key, 1))
    st.session_state[SAMPLES_KEY] = random.sample(list(options), min(n, len(options)))


def predict_items(predictor: Predictor, items: Sequence[Item], tta: int = 1) -> list[Result]:
    """One result per item, in order; unreadable files become :class:`PredictionError`."""
    keys = tuple((i.name, i.key) for i in items)  # results carry the names too
    return caches.predictions(_run_key(predictor), keys, int(tta), predictor, list(items))


def display_image(item: Item) -> Image.Image:
    """The item decoded (EXIF-rotated, RGB) at most :data:`DISPLAY_PX` across, for the browser."""
    return decode_image(item.source, max_side=DISPLAY_PX)


def gradcam_image(
    predictor: Predictor, item: Item, class_name: str, opacity: float
) -> tuple[Image.Image, bool]:
    """The Grad-CAM of ``class_name`` over the display image, and whether the map holds any
    evidence at all (an all-zero map means nothing pushed the model towards that class).
    The heatmap is cached, so moving the opacity slider only re-blends."""
    heatmap = caches.heatmap(_run_key(predictor), item.key, class_name, predictor, item.source)
    return overlay(display_image(item), heatmap, opacity), bool(heatmap.max() > 0)


def results_table(
    results: Sequence[Result],
    items: Sequence[Item],
    class_names: Sequence[str],
    threshold: float | None = None,
) -> pd.DataFrame:
    """:func:`skinlab.predict.predictor.results_frame`, with the true class of dataset samples and
    the out-of-distribution columns judged at the page's ``threshold`` (None: as predicted)."""
    frame = results_frame(results, class_names)
    if threshold is not None and "ood" in frame:
        judged = [
            ood_at(r, threshold) if isinstance(r, Prediction) else (None, None) for r in results
        ]
        frame["ood"] = pd.array([flagged for flagged, _ in judged], dtype="boolean")
        frame["ood_reason"] = pd.Series([reason for _, reason in judged], dtype=object)
    if any(i.truth for i in items):
        frame.insert(1, "true_class", [i.truth for i in items])
    return frame


#: How the results table shows its columns (the CSV keeps the column names): short headers,
#: narrow numbers. A column not named here (each class's probability, the raw OOD score) is
#: left to the result boxes and the CSV, so the table fits the page's width.
_PERCENT: dict[str, Any] = {"format": "percent", "width": "small"}
TABLE_COLUMNS = {
    "path": st.column_config.TextColumn("File"),
    "true_class": st.column_config.TextColumn("True class"),
    "top_class": st.column_config.TextColumn("Most probable class"),
    "confidence": st.column_config.NumberColumn("Probability", **_PERCENT),
    "risk_tier": st.column_config.TextColumn("Risk tier", width="small"),
    "malignant_probability": st.column_config.NumberColumn(
        "Malignant", help="All malignant classes together", **_PERCENT
    ),
    "tta_spread": st.column_config.NumberColumn("TTA spread", **_PERCENT),
    "ood": st.column_config.CheckboxColumn(
        "Unusual", width="small", help="Unlike the images the model was trained on"
    ),
    "ood_reason": st.column_config.TextColumn("Why unusual"),
    "error": st.column_config.TextColumn("Problem"),
}


def table_columns(frame: pd.DataFrame) -> dict:
    """``st.dataframe`` column settings: :data:`TABLE_COLUMNS`; other columns, and columns
    with no value at all (no TTA, no errors), hidden."""
    return {c: None if frame[c].isna().all() else TABLE_COLUMNS.get(c) for c in frame.columns}


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The table as UTF-8 CSV for ``st.download_button``, every text cell shown as text
    (:func:`skinlab.core.spreadsheet.csv_text`: file names and class names come from
    uploads and folders)."""
    return csv_text(frame).encode("utf-8")


# --- rendering ---------------------------------------------------------------------------


def render_result(
    predictor: Predictor,
    item: Item,
    result: Prediction,
    *,
    index: int,
    opacity: float,
    gradcam: bool,
    threshold: float | None = None,
) -> None:
    """One bordered result box: image (and Grad-CAM), chart, wording, warnings, the most
    similar training images, notice. ``index`` (the item's position) keeps widget keys
    unique when a file comes twice; ``threshold`` is the familiarity threshold chosen on
    the page (None: the run's own)."""
    with st.container(border=True):
        st.markdown(f"##### {ui.literal(item.name)}")  # the uploader chose it: no markdown
        pictures, words = st.columns([2, 3])
        with pictures:
            original, heat = st.columns(2) if gradcam else (st.container(), None)
            original.image(display_image(item), caption="Image", width="stretch")
            if heat is not None:
                cam_class = heat.selectbox(
                    "Grad-CAM for",
                    predictor.class_names,
                    index=predictor.class_names.index(result.top_class),
                    format_func=lambda name: ui.plain(display_name(name)),
                    # The top class in the key: a new answer (other TTA, other model) resets
                    # the picker to it instead of keeping a stale choice.
                    key=f"predict_cam_{index}_{item.key}_{result.top_class}",
                )
                picture, has_signal = gradcam_image(predictor, item, cam_class, opacity)
                shown = ui.literal(display_name(cam_class))
                caption = (
                    f"Where the model looked for {shown}"
                    if has_signal
                    else f"Grad-CAM is empty: nothing pushed the model towards {shown}"
                )
                heat.image(picture, caption=caption, width="stretch")
        with words:
            st.markdown(headline(result))
            if item.truth:
                st.markdown(truth_text(result, item.truth))
            st.markdown(f"{top_k_text(result)}  \n{tier_text(result)}  \n{malignant_text(result)}")
            for warning in warnings_for(result, threshold):
                st.warning(ui.literal(warning), icon=":material/warning:")
            st.plotly_chart(
                ui.plain_figure(probability_figure(result)),
                key=f"predict_chart_{index}_{item.key}",
            )
            st.caption(uncertainty_text(result))
        render_similar(predictor, result)
        st.caption(result.notice)


def skipped_text(failed: int, total: int) -> str:
    """The sentence above the list of files that could not be predicted."""
    if failed == total == 1:
        return "The file could not be read, so nothing was predicted:"
    if failed == total:
        return f"None of the {total} files could be read, so nothing was predicted:"
    return (
        f"{failed} of {total} files could not be read and were skipped; the others were predicted:"
    )


def render_batch(
    predictor: Predictor,
    items: Sequence[Item],
    results: Sequence[Result],
    threshold: float | None = None,
) -> None:
    """Files that failed (with their reason), the results table and its CSV download
    (flags judged at ``threshold``, as the result boxes are)."""
    errors = error_lines(results)
    if errors:
        st.warning(
            skipped_text(len(errors), len(results))
            + "\n\n"
            + "\n".join(f"- {ui.literal(line)}" for line in errors),
            icon=":material/broken_image:",
        )
    table = results_table(results, items, predictor.class_names, threshold)
    st.dataframe(
        table, hide_index=True, column_config=table_columns(table), placeholder="—", width="stretch"
    )
    st.caption("Each class's probability: in the result boxes below and in the CSV.")
    st.download_button(
        "Download the results (CSV)",
        csv_bytes(table),
        file_name=f"predictions-{predictor.run_id}.csv",
        mime="text/csv",
        icon=":material/download:",
        key="predict_csv",
    )


def render_details(
    predictor: Predictor,
    items: Sequence[Item],
    results: Sequence[Result],
    *,
    opacity: float,
    gradcam: bool,
    threshold: float | None,
) -> None:
    """Each prediction's details (:func:`render_result`), :data:`PAGE_SIZE` images a page."""
    pairs = enumerate(zip(items, results, strict=True))
    shown = [(i, item, r) for i, (item, r) in pairs if isinstance(r, Prediction)]
    if len(shown) > PAGE_SIZE:
        start = st.selectbox(
            "Show details for",
            list(range(0, len(shown), PAGE_SIZE)),
            format_func=lambda s: f"images {s + 1}–{min(s + PAGE_SIZE, len(shown))}",
            key="predict_page",
        )
        shown = shown[start : start + PAGE_SIZE]
    for index, item, result in shown:
        render_result(
            predictor,
            item,
            result,
            index=index,
            opacity=opacity,
            gradcam=gradcam,
            threshold=threshold,
        )
