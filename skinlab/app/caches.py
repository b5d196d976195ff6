"""Every Streamlit cache of the app, in one place: what is cached, on which key, and why.

The pages and their view modules call these instead of declaring caches of their own, so
what a rerun recomputes (and what it must not) reads from one file. Two kinds:

* ``st.cache_data`` for values that are small or cheap to copy (scans, thumbnails, decoded
  preview images): every session gets its own copy.
* ``st.cache_resource`` for values that are only read once built and are costly to copy or
  to unpickle (Plotly figures re-validate when unpickled; a loaded model; frozen results):
  all sessions share one object, so nothing here may be mutated by its caller.

Keys carry what makes a value stale: a dataset's fingerprint (it changes when a file
does), a run's weights' modification time, an upload's content key. Arguments whose name
starts with ``_`` are not hashed (Streamlit's rule): a key argument stands for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from skinlab.app import charts, colours, gallery, linked_views
from skinlab.core.errors import SkinlabError
from skinlab.data import shortcuts
from skinlab.data.audit import AuditReport, audit_dataset
from skinlab.data.discovery import Dataset, discover
from skinlab.evaluate.review import ReviewQueue, review_dataset
from skinlab.evaluate.run_shortcuts import shortcut_check_for_run

# The model's modules and the augmentation preview load TensorFlow: the caches that use them
# import them when first called, so the Explore page never loads it.
if TYPE_CHECKING:
    from skinlab.evaluate.masking import MaskedTest
    from skinlab.predict.predictor import Prediction, PredictionError, Predictor

#: Images per class decoded for the Explore page's colour statistics.
COLOUR_SAMPLE = 80


@st.cache_data(show_spinner=False, max_entries=8)
def scan(root: str, token: str) -> Dataset:
    """The dataset at ``root``; ``token`` is its fingerprint, so a changed folder is a new key."""
    del token
    return discover(root)


@st.cache_data(show_spinner=False, max_entries=8)
def audit(root: str, token: str) -> AuditReport:
    """The audit of :func:`scan`'s dataset, on the same key."""
    return audit_dataset(scan(root, token))


@st.cache_data(show_spinner="Measuring every image without its lesion…", max_entries=4)
def label_without_lesion(root: str, token: str) -> shortcuts.ShortcutScore:
    """The statistics-only classifier of :func:`scan`'s readable images, on the same key:
    decoding every image and ten fits take ~10 s for 2,241 images on 2 cores, once a change."""
    dataset = scan(root, token)
    return shortcuts.label_without_lesion(dataset.images(), dataset_name=dataset.root.name)


@st.cache_data(
    show_spinner="Measuring the run's training images without the lesion…", max_entries=8
)
def run_shortcuts(run_id: str, token: str) -> shortcuts.ShortcutScore:
    """:func:`skinlab.evaluate.run_shortcuts.shortcut_check_for_run` (it decodes every image
    the run trained and validated on: seconds), once per run and dataset fingerprint
    ``token``; the library call saves it in the run's ``metrics.json``."""
    del token
    return shortcut_check_for_run(run_id)


@st.cache_data(show_spinner=False, max_entries=4096)
def thumbnail(path: str, content_hash: str) -> bytes | None:
    """A gallery thumbnail (``None`` for an unreadable file); the scan's content hash is in
    the key, so an edited file gets a fresh one."""
    try:
        return gallery.thumbnail(path)
    except SkinlabError:
        return None


@st.cache_resource(show_spinner=False, max_entries=16)
def counts_figure(counts: pd.DataFrame, percent: bool):
    """The class-count bar chart: Plotly Express takes ~50 ms to build it, most of a warm
    rerun of the Explore page."""
    return charts.class_counts_figure(counts, percent=percent)


@st.cache_resource(show_spinner=False, max_entries=8)
def sizes(table: pd.DataFrame) -> tuple:
    """The image-size figure and the table of common sizes, once per scan (~60 ms a visit
    before)."""
    return charts.image_size_figure(gallery.size_frame(table)), gallery.common_sizes(table)


@st.cache_resource(show_spinner="Measuring the colours of each class…", max_entries=8)
def colour_profile(table: pd.DataFrame) -> tuple:
    """The colour profile and its two figures (the faceted histogram alone is ~0.2 s of
    Plotly)."""
    profile = colours.colour_profile(gallery.sample_per_class(table, COLOUR_SAMPLE))
    means = charts.mean_colour_figure(profile.means)
    return profile, means, charts.colour_histogram_figure(profile.histograms)


@st.cache_resource(show_spinner="Measuring the images…", max_entries=8)
def linked_frame(table: pd.DataFrame) -> pd.DataFrame:
    """A thumbnail and statistics per image (up to ``linked_views.PER_CLASS`` a class),
    once per scan."""
    return linked_views.image_frame(table)


@st.cache_resource(show_spinner="Ranking the images to doubt (a few seconds)…", max_entries=4)
def review_queue(root: str, token: str, cv_token: str) -> ReviewQueue:
    """The review queue of ``root``: frozen and only read; the tokens change when the images
    or the cross-validations do."""
    del token, cv_token
    return review_dataset(root)


@st.cache_resource(show_spinner=False, max_entries=4)
def predictor(run_id: str, weights_mtime: float) -> Predictor:
    """A run's predictor, loaded once per process; retrained or replaced weights (a new
    modification time) load afresh."""
    from skinlab.predict.predictor import load_predictor

    del weights_mtime
    return load_predictor(run_id)


@st.cache_resource(show_spinner=False, max_entries=32)
def predictions(
    run_key: tuple[str, float], keys: tuple, tta: int, _predictor: Predictor, _items
) -> list[Prediction | PredictionError]:
    """The predictions of ``_items`` (upload items with ``name`` and ``source``), keyed on the
    run and the items' content keys, not their bytes: a rerun caused by a slider costs
    nothing. Immutable results, so shared rather than copied."""
    del run_key, keys
    return _predictor.predict_sources([(i.name, i.source) for i in _items], tta=tta)


@st.cache_data(show_spinner=False, max_entries=64)
def heatmap(run_key: tuple[str, float], key: str, class_name: str, _predictor, _source):
    """The Grad-CAM heat map of one upload for one class."""
    from skinlab.predict.explain import explain

    del run_key, key
    result, _ = explain(_predictor, _source, class_name)
    return result


@st.cache_data(show_spinner="Scoring the run on the external set…", max_entries=8)
def external_score(
    run_id: str, weights_sha: str, path: str, token: str, tta: int
) -> tuple[dict, pd.DataFrame]:
    """:func:`skinlab.evaluate.external.score_external` of a run on the external set at
    ``path``, and its mistakes (``path``, ``true``, ``predicted``, ``confidence``): it decodes
    and scores every image of the set, so once per weights (their sha256), set (its
    fingerprint ``token``) and number of views. The library call saves its summary in the
    run's ``metrics.json``; a hit has nothing new to save."""
    from skinlab.evaluate.external import score_external

    del weights_sha, token
    result, frame = score_external(run_id, path, tta=tta)
    mistakes = frame.loc[~frame["correct"], ["path", "true", "predicted", "confidence"]]
    return result, mistakes.reset_index(drop=True)


@st.cache_data(show_spinner="Scoring the run with the lesion hidden and alone…", max_entries=8)
def lesion_masked(run_id: str, weights_sha: str, token: str) -> MaskedTest:
    """:func:`skinlab.evaluate.masking.lesion_masked_test` of a run on its own data (three
    passes over its Test or validation images), once per weights and dataset fingerprint
    ``token``; the library call saves it in the run's ``metrics.json``."""
    from skinlab.evaluate.masking import lesion_masked_test

    del weights_sha, token
    return lesion_masked_test(run_id)


@st.cache_data(show_spinner="Decoding a few Train images…", max_entries=8)
def preview_originals(paths: tuple[str, ...]) -> np.ndarray:
    """The Train page's augmentation-preview images, decoded."""
    from skinlab.app import train_preview

    return train_preview.decode_samples(paths)


@st.cache_data(show_spinner="Augmenting…", max_entries=32)
def preview_views(
    paths: tuple[str, ...],
    preset: str,
    strength: float,
    seed: int,
    frame: float = 0.0,
    colour_constancy: str = "none",
) -> list[np.ndarray]:
    """Augmented views of :func:`preview_originals` for a preset, strength, frame
    randomisation, colour constancy and draw."""
    from skinlab.app import train_preview

    return train_preview.augmented_views(
        preview_originals(paths),
        preset,
        strength,
        seed,
        frame=frame,
        colour_constancy=colour_constancy,
    )
