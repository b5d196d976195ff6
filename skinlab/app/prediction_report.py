"""What a prediction says, in words and in a chart: the model's most probable class with its
calibrated probability, the top 3, the risk tier, the malignant roll-up, the test-time
augmentation spread and the warnings, never a bare verdict.

Pure functions of a :class:`skinlab.predict.predictor.Prediction` (no Streamlit), so the Predict page,
the CLI or a notebook word results the same way.

Example::

    result = load_predictor(run_id).predict_paths(["lesion.jpg"], tta=4)[0]
    print(headline(result))               # The model's most probable class is **Nevus**, ...
    probability_figure(result).show()
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from skinlab.app.ui import literal
from skinlab.core.classes import MALIGNANT, RISK_TIERS, TIER_COLOURS, class_info, risk_tier
from skinlab.core.probability import format_probability
from skinlab.evaluate.ood import familiarity_reason
from skinlab.predict.predictor import Prediction, PredictionError


def _pct(p: float) -> str:
    return format_probability(p)


def display_name(name: str) -> str:
    """The display name of a class folder name (``"melanoma"`` -> ``"Melanoma"``)."""
    return class_info(name).display_name


def _md_name(name: str) -> str:
    """:func:`display_name` for a markdown sentence: a dataset's own folder names are text,
    never markup (``[x](http://...)`` as a class folder is shown as typed)."""
    return literal(display_name(name))


def probability_frame(prediction: Prediction) -> pd.DataFrame:
    """Class, display name, tier and probability per class, most probable first."""
    rows = [
        {
            "class": c,
            "display_name": display_name(c),
            "risk_tier": risk_tier(c),
            "probability": p,
            "spread": prediction.tta_spread if c == prediction.top_class else None,
        }
        for c, p in prediction.probabilities.items()
    ]
    return pd.DataFrame(rows).sort_values("probability", ascending=False, kind="stable")


def probability_figure(prediction: Prediction) -> go.Figure:
    """Horizontal bars of the calibrated probability of each class, coloured by risk tier;
    with test-time augmentation the top class gets an error bar (± one standard deviation)."""
    frame = probability_frame(prediction)
    spread = prediction.tta_spread is not None
    fig = px.bar(
        frame,
        x="probability",
        y="display_name",
        color="risk_tier",
        orientation="h",
        error_x="spread" if spread else None,
        color_discrete_map=TIER_COLOURS,
        category_orders={
            "display_name": list(frame["display_name"]),
            "risk_tier": list(RISK_TIERS),
        },
        hover_data={"probability": ":.1%", "risk_tier": True, "display_name": False},
        labels={"probability": "calibrated probability", "risk_tier": "risk tier"},
        text=frame["probability"].map(format_probability),
    )
    fig.update_traces(textposition="outside", cliponaxis=False)
    fig.update_layout(
        # Room past 100 % for the top bar's label and error bar ("99.9%" is ~45 px wide).
        xaxis={
            "range": [0, 1.25],
            "tickvals": [0, 0.25, 0.5, 0.75, 1],
            "tickformat": ".0%",
            "title": "calibrated probability",
        },
        yaxis={"title": ""},
        # Above the bars, not beside them: a legend on the right sat where the top bar's
        # label ends, and the two overlapped.
        legend={
            "title_text": "risk tier",
            "orientation": "h",
            "x": 0,
            "xanchor": "left",
            "y": 1,
            "yanchor": "bottom",
        },
        height=70 + 28 * len(frame),
        margin={"t": 40, "b": 10, "l": 10, "r": 10},
        bargap=0.25,
    )
    return fig


def headline(prediction: Prediction) -> str:
    """The model's most probable class with its calibrated probability (never a verdict)."""
    return (
        f"The model's most probable class is **{_md_name(prediction.top_class)}**, with a "
        f"calibrated probability of **{_pct(prediction.confidence)}**."
    )


def top_k_text(prediction: Prediction) -> str:
    """``Top 3: Melanoma 62.0% · Nevus 21.3% · ...``."""
    shown = " · ".join(f"{_md_name(c)} {_pct(p)}" for c, p in prediction.top_k)
    return f"Top {len(prediction.top_k)}: {shown}"


def tier_text(prediction: Prediction) -> str:
    """The risk tier of the most probable class."""
    return f"Risk tier of that class: **{prediction.risk_tier}**."


def malignant_text(prediction: Prediction) -> str:
    """The malignant roll-up, naming the classes it adds up."""
    names = [_md_name(c) for c in prediction.probabilities if risk_tier(c) == MALIGNANT]
    if not names:
        return "None of this model's classes is malignant, so there is no malignant roll-up."
    return (
        f"All malignant classes together ({' + '.join(names)}): "
        f"**{_pct(prediction.malignant_probability)}**."
    )


def uncertainty_text(prediction: Prediction) -> str:
    """How much the top class moves across test-time augmentation views."""
    if prediction.tta_spread is None:
        return "One view (raise test-time augmentation above 1 to see how stable this is)."
    return (
        f"Across {prediction.tta_views} flipped/rotated views the top class's probability "
        f"varies by ±{100 * prediction.tta_spread:.1f} points (standard deviation)."
    )


def truth_text(prediction: Prediction, truth: str) -> str:
    """The sample's true class (its Test folder) against the model's most probable one."""
    verdict = "matches" if truth == prediction.top_class else "differs from"
    return (
        f"True class (from its Test folder): **{_md_name(truth)}**, which {verdict} the "
        "model's most probable class."
    )


def ood_at(prediction: Prediction, threshold: float | None) -> tuple[bool, str | None]:
    """Whether ``prediction`` is flagged, and why, with the familiarity threshold moved to
    ``threshold`` (None, or a run without a gate: as predicted)."""
    if threshold is None or not prediction.similar:  # similar cases come with a gate
        return prediction.ood, prediction.ood_reason
    flagged = prediction.flagged_at(threshold)
    if flagged and not prediction.flagged_by_checks:
        return True, familiarity_reason(prediction.ood_score, threshold)
    return flagged, prediction.ood_reason if flagged else None


def warnings_for(prediction: Prediction, threshold: float | None = None) -> list[str]:
    """The out-of-distribution reason and image-quality warnings, as sentences.

    ``threshold`` moves the familiarity gate's threshold (the Predict page's slider); None
    keeps the verdict the prediction was made with.
    """
    out = []
    flagged, reason = ood_at(prediction, threshold)
    if flagged:
        reason = reason or "the image is unlike the model's training images"
        out.append(f"Out-of-distribution warning: {reason} Treat this prediction as unreliable.")
    out.extend(f"Image quality: {w}" for w in prediction.quality_warnings)
    return out


def error_lines(results: Sequence[Prediction | PredictionError]) -> list[str]:
    """One sentence per input that could not be predicted, naming the file once."""
    return [
        r.error if r.path in r.error else f"{r.path}: {r.error}"
        for r in results
        if isinstance(r, PredictionError)
    ]
