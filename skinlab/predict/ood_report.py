"""What a run's unfamiliar-image gate does, in words and a chart, for the Runs and Predict
pages: both score distributions (validation lesions, non-dermoscopy images) with the
threshold line, the two error rates at any threshold, and the most similar training cases.

Pure functions of :mod:`skinlab.evaluate.familiarity` objects and run folders (no Streamlit).

Example::

    gate = run_gate(record.paths)
    score_figure(gate.validation, gate.threshold).show()
    rates_text(gate.validation.rates(0.4))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from skinlab.core import runs
from skinlab.core.confine import within
from skinlab.core.errors import SkinlabError
from skinlab.evaluate.familiarity import FILE, FamiliarityGate, GateValidation, Rates, load_gate

_LESION, _OTHER = "#2e86c1", "#c0392b"


def run_gate(paths: runs.RunPaths) -> FamiliarityGate | None:
    """The run's gate, or None when it has none (trained before issue 15) or it cannot be
    read; never raises (the Runs page shows what it can)."""
    try:
        manifest = runs.read_manifest(paths)
        return load_gate(paths.root / FILE, manifest.weights_sha256)
    except (FileNotFoundError, SkinlabError):
        return None


def rates_text(rates: Rates) -> str:
    """One sentence with both error rates at ``rates.threshold``."""
    return (
        f"At threshold {rates.threshold:.2f}: **{rates.false_alarm:.1%}** of validation lesions "
        f"are flagged (false alarms) and **{rates.detection:.1%}** of non-dermoscopy images "
        "(photographs, crops, recolourings, textures) are caught."
    )


def summary_text(summary: dict[str, Any], text: Callable[[str], str] = str) -> str:
    """The gate's validated rates from ``metrics.json``'s ``ood_validation``, in words.

    ``metrics.json`` is a file anyone with the models folder can edit, and a rate is
    ``None`` where its split had too few images to measure it (a 2-class dataset with 3
    images per class): whatever is not a number shows as "n/a". ``text`` shows the family
    names, which come from the file too (the app passes ``ui.literal``).
    """
    families = summary.get("detection_by_family")
    named = ", ".join(
        f"{text(str(family))} {_number(share, '.0%')}"
        for family, share in (families.items() if isinstance(families, dict) else ())
    )
    return (
        f"Held-out lesions flagged: **{_number(summary.get('held_out_false_alarm'), '.1%')}** "
        f"of {_number(summary.get('lesions'), 'd')} (each half of the validation split judged "
        "by the threshold of the other half). Non-dermoscopy images flagged: "
        f"**{_number(summary.get('detection'), '.1%')}** of "
        f"{_number(summary.get('negatives'), 'd')} ({named or 'n/a'}); none of them was used "
        "to fit the threshold."
    )


def _number(value: object, spec: str) -> str:
    """``value`` formatted by ``spec``, or "n/a" when it is no finite number of that kind."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**15:
        return format(value, spec)
    if isinstance(value, float) and spec != "d" and math.isfinite(value):
        return format(value, spec)
    return "n/a"


def score_figure(validation: GateValidation, threshold: float) -> go.Figure:
    """Overlaid histograms of the gate's score on validation lesions and on non-dermoscopy
    images, with the threshold as a dashed line (images right of it are flagged)."""
    fig = go.Figure()
    bins = {"start": 0.0, "end": 1.0, "size": 0.025}
    for name, scores, colour in (
        ("validation lesions", validation.lesion_scores, _LESION),
        ("non-dermoscopy images", validation.negative_scores, _OTHER),
    ):
        fig.add_trace(
            go.Histogram(
                x=np.asarray(scores, float),
                name=f"{name} ({len(scores)})",
                xbins=bins,
                histnorm="percent",
                marker_color=colour,
                opacity=0.6,
            )
        )
    fig.add_vline(
        x=threshold,
        line_dash="dash",
        annotation_text=f"threshold {threshold:.2f}",
        annotation_position="top",
    )
    fig.update_layout(
        barmode="overlay",
        height=320,
        margin={"t": 40, "b": 10, "l": 10, "r": 10},
        xaxis={"title": "unfamiliarity score (detector's probability of not dermoscopy)"},
        yaxis={"title": "% of the group"},
        legend={"orientation": "h", "y": 1.12},
    )
    return fig


def similar_caption(case: dict[str, Any]) -> str:
    """How the similar-cases strip labels one training image."""
    from skinlab.core.classes import class_info

    return f"{class_info(case['label']).display_name} · distance {case['distance']:.3f}"


def far_warning(similar: list[dict[str, Any]], far_distance: float) -> str | None:
    """A warning when even the nearest training image is farther than ``far_distance`` (the
    distance 99 % of validation lesions beat), else None."""
    if not similar or similar[0]["distance"] <= far_distance:
        return None
    return (
        f"Even the most similar training image is far from this one (distance "
        f"{similar[0]['distance']:.3f}; 99% of validation lesions have one nearer than "
        f"{far_distance:.3f}), so the model has seen nothing quite like it."
    )


def similar_images(root: str | Path | None, similar: list[dict[str, Any]]) -> list[Path | None]:
    """The files of the similar cases under the dataset folder ``root``: None where the file
    is gone, ``root`` is unknown, or the path leads outside ``root`` or the folders the app
    may read (a hand-edited gate file)."""
    base = within(root) if root else None
    out: list[Path | None] = []
    for case in similar:
        path = within(base / case["path"]) if base is not None else None
        ok = base is not None and path is not None and path.is_relative_to(base) and path.is_file()
        out.append(path if ok else None)
    return out
