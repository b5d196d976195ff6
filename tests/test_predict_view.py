"""The Predict page's wording, chart, inputs and quick-model progress, without a model."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from skinlab.app import predict_view as pv
from skinlab.app import prediction_report as report
from skinlab.app import quick_model
from skinlab.core.classes import ISIC_CLASS_NAMES, TIER_COLOURS, risk_tier
from skinlab.core.probability import format_probability
from skinlab.core.runs import RunStatus
from skinlab.data.discovery import discover
from skinlab.predict.predictor import Prediction, PredictionError


def make_prediction(top: str = "melanoma", p: float = 0.6, **changes) -> Prediction:
    rest = (1.0 - p) / (len(ISIC_CLASS_NAMES) - 1)
    probabilities = {c: (p if c == top else rest) for c in ISIC_CLASS_NAMES}
    ranked = sorted(probabilities.items(), key=lambda kv: -kv[1])
    fields = {
        "path": "lesion.jpg",
        "probabilities": probabilities,
        "top_k": ranked[:3],
        "top_class": top,
        "risk_tier": risk_tier(top),
        "malignant_probability": sum(
            v for c, v in probabilities.items() if risk_tier(c) == "malignant"
        ),
        "confidence": p,
        "ood": False,
        "ood_score": -3.0,
        "ood_reason": None,
    }
    return Prediction(**{**fields, **changes})


class FakeUpload:
    """What ``st.file_uploader`` returns: a name and the bytes."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name, self._data = name, data

    def getvalue(self) -> bytes:
        return self._data


def test_headline_names_the_most_probable_class_with_its_probability_not_a_verdict() -> None:
    text = report.headline(make_prediction("nevus", 0.42))
    assert "most probable class is **Nevus**" in text and "42.0%" in text


def test_top_three_tier_and_malignant_roll_up_are_spelled_out() -> None:
    result = make_prediction("melanoma", 0.6)
    assert report.top_k_text(result).startswith("Top 3: Melanoma 60.0%")
    assert "**malignant**" in report.tier_text(result)
    roll_up = report.malignant_text(result)
    for name in ("Melanoma", "Basal cell carcinoma", "Squamous cell carcinoma"):
        assert name in roll_up
    assert format_probability(result.malignant_probability) in roll_up


def test_uncertainty_text_reports_the_tta_spread_only_when_measured() -> None:
    assert "One view" in report.uncertainty_text(make_prediction())
    spread = report.uncertainty_text(make_prediction(tta_views=4, tta_spread=0.031))
    assert "4 flipped/rotated views" in spread and "±3.1 points" in spread


def test_ood_reason_and_quality_warnings_become_sentences() -> None:
    assert report.warnings_for(make_prediction()) == []
    flagged = make_prediction(
        ood=True,
        ood_reason="It does not look like a close-up of skin.",
        quality_warnings=["Blurry."],
    )
    warnings = report.warnings_for(flagged)
    assert "close-up of skin" in warnings[0] and "unreliable" in warnings[0]
    assert warnings[1] == "Image quality: Blurry."


def test_true_class_is_compared_with_the_most_probable_class() -> None:
    result = make_prediction("nevus")
    assert "matches" in report.truth_text(result, "nevus")
    assert "**Melanoma**, which differs" in report.truth_text(result, "melanoma")


def test_probability_chart_has_nine_display_names_coloured_by_risk_tier() -> None:
    fig = report.probability_figure(make_prediction("melanoma", 0.6))
    names = [y for trace in fig.data for y in trace.y]
    assert sorted(names) == sorted(report.display_name(c) for c in ISIC_CLASS_NAMES)
    for trace in fig.data:
        assert trace.marker.color == TIER_COLOURS[trace.name]
        assert trace.orientation == "h"
    assert all(trace.error_x.array is None for trace in fig.data)


def test_probability_chart_keeps_the_top_label_clear_of_the_legend() -> None:
    fig = report.probability_figure(
        make_prediction("melanoma", 0.999, tta_views=4, tta_spread=0.01)
    )
    # The legend sits above the plot, so nothing of it shares the bars' right-hand side...
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y >= 1
    assert fig.layout.legend.yanchor == "bottom"
    # ...and the axis runs past 100 % so the top bar's outside label fits inside the plot.
    assert fig.layout.xaxis.range[1] >= 1.2
    assert max(fig.layout.xaxis.tickvals) == 1


def test_probability_frame_lists_the_most_probable_class_first() -> None:
    frame = report.probability_frame(make_prediction("vascular lesion", 0.5))
    assert frame.iloc[0]["display_name"] == "Vascular lesion"
    assert frame["probability"].is_monotonic_decreasing


def test_probability_chart_shows_the_tta_spread_as_an_error_bar() -> None:
    fig = report.probability_figure(make_prediction(tta_views=4, tta_spread=0.05))
    malignant = next(t for t in fig.data if t.name == "malignant")
    spreads = [s for s in malignant.error_x.array if s == s and s is not None]
    assert spreads == [0.05]


def test_error_lines_name_each_bad_file_with_its_reason() -> None:
    results = [
        make_prediction(),
        PredictionError("notes.jpg", "notes.jpg is not an image."),
        PredictionError("a/b.png", "The file is empty."),
    ]
    assert report.error_lines(results) == [
        "notes.jpg is not an image.",
        "a/b.png: The file is empty.",
    ]


def test_uploader_accepts_exactly_the_decoders_formats() -> None:
    assert set(pv.UPLOAD_TYPES) == {"jpg", "jpeg", "png", "bmp", "gif", "tif", "tiff", "webp"}


def test_uploaded_items_are_keyed_by_content() -> None:
    data = b"any bytes: uploads are decoded later, by the predictor"
    items = pv.uploaded_items([FakeUpload("a.jpg", data), None, FakeUpload("b.jpg", data)])
    assert [i.name for i in items] == ["a.jpg", "b.jpg"]
    assert items[0].key == items[1].key and items[0].source == data
    assert pv.uploaded_items(None) == []
    assert pv.uploaded_items([FakeUpload("x", data)], name="camera.jpg")[0].name == "camera.jpg"


def test_samples_come_from_the_test_split_with_their_true_class(make_dataset_folder) -> None:
    root = make_dataset_folder({"Train": {"melanoma": 2}, "Test": {"melanoma": 1, "nevus": 2}})
    dataset = discover(root)
    options = pv.sample_options(dataset)
    assert len(options) == 3 and all(rel.startswith("Test/") for rel in options)
    items = pv.sample_items(dataset, ["Test/nevus/img_001.jpg", "Test/gone.jpg"])
    assert [(i.name, i.truth) for i in items] == [("Test/nevus/img_001.jpg", "nevus")]
    assert pv.sample_label("Test/nevus/img_001.jpg", "nevus") == "Nevus · img_001.jpg"


def test_results_table_adds_the_true_class_and_downloads_as_csv() -> None:
    items = [pv.Item("a.jpg", b"", "k1", truth="nevus"), pv.Item("b.jpg", b"", "k2")]
    results = [make_prediction("nevus"), PredictionError("b.jpg", "b.jpg is empty.")]
    table = pv.results_table(results, items, list(ISIC_CLASS_NAMES))
    assert table.loc[0, "true_class"] == "nevus" and pd.isna(table.loc[1, "true_class"])
    back = pd.read_csv(io.BytesIO(pv.csv_bytes(table)))
    assert len(back) == 2 and back.loc[1, "error"] == "b.jpg is empty."
    assert "p_melanoma" in pv.table_columns(table)


def test_results_table_has_human_headers_and_leaves_out_what_would_not_fit() -> None:
    items = [pv.Item("a.jpg", b"", "k1"), pv.Item("b.jpg", b"", "k2")]
    results = [make_prediction("nevus"), PredictionError("b.jpg", "b.jpg is empty.")]
    config = pv.table_columns(pv.results_table(results, items, list(ISIC_CLASS_NAMES)))
    assert config["path"]["label"] == "File" and config["error"]["label"] == "Problem"
    assert config["confidence"]["type_config"]["format"] == "percent"
    assert config["p_melanoma"] is None and config["ood_score"] is None  # in the CSV only
    assert config["tta_spread"] is None  # no test-time augmentation: nothing to show
    headers = [c["label"] for c in config.values() if c]
    assert all(" " in h or h[0].isupper() for h in headers) and "_" not in "".join(headers)


@pytest.mark.parametrize(
    ("status", "fraction", "text"),
    [
        (RunStatus("queued", total_epochs=8), 0.0, "Waiting"),
        (RunStatus("running", epoch=0, total_epochs=8), 0.0, "Epoch 1 of 8"),
        (
            RunStatus(
                "running", epoch=3, total_epochs=8, batch=5, total_batches=10, eta_seconds=40
            ),
            2.5 / 8,
            "Epoch 3 of 8 · about 40 s left",
        ),
    ],
)
def test_quick_model_progress(status: RunStatus, fraction: float, text: str) -> None:
    got_fraction, got_text = quick_model.progress_of(status)
    assert got_fraction == pytest.approx(fraction) and text in got_text


def test_quick_model_is_the_quick_preset_on_the_demo(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(quick_model.catalog, "default_dataset_root", lambda: tmp_path)
    config = quick_model.quick_model_config()
    assert config.data_root == str(tmp_path) and config.backbone == "skinlab_cnn"
    assert config.epochs == 8 and config.image_size == 64


def test_skipped_text_never_claims_others_were_predicted_when_none_were() -> None:
    assert pv.skipped_text(1, 1) == "The file could not be read, so nothing was predicted:"
    assert pv.skipped_text(3, 3).startswith("None of the 3 files could be read")
    assert pv.skipped_text(1, 2).startswith("1 of 2 files could not be read and were skipped")
    assert "others were predicted" not in pv.skipped_text(2, 2)


_SIMILAR = [{"path": "Train/nevus/a.jpg", "label": "nevus", "distance": 0.01}]


def test_moving_the_threshold_flags_or_clears_an_image_the_gate_judged() -> None:
    result = make_prediction(ood_score=0.4, similar=_SIMILAR)
    assert report.ood_at(result, None) == (False, None)
    flagged, reason = report.ood_at(result, 0.3)
    assert flagged and "unfamiliarity 0.40, above the threshold 0.30" in reason
    assert report.ood_at(result, 0.5) == (False, None)
    assert any("Out-of-distribution" in w for w in report.warnings_for(result, 0.3))


def test_an_image_the_colour_checks_flag_stays_flagged_at_any_threshold() -> None:
    result = make_prediction(
        ood=True, ood_reason="Colours.", ood_score=0.1, similar=_SIMILAR, flagged_by_checks=True
    )
    assert report.ood_at(result, 0.99) == (True, "Colours.")


def test_a_run_without_a_gate_keeps_its_verdict_whatever_the_threshold() -> None:
    result = make_prediction(ood=True, ood_reason="Energy.", ood_score=-1.0)
    assert report.ood_at(result, 0.99) == (True, "Energy.")


def test_results_table_judges_the_unusual_column_at_the_pages_threshold() -> None:
    items = [pv.Item("a.jpg", b"", "k1"), pv.Item("b.jpg", b"", "k2")]
    results = [make_prediction(ood_score=0.4, similar=_SIMILAR), PredictionError("b.jpg", "x")]
    assert not pv.results_table(results, items, list(ISIC_CLASS_NAMES)).loc[0, "ood"]
    table = pv.results_table(results, items, list(ISIC_CLASS_NAMES), threshold=0.3)
    assert table.loc[0, "ood"] and "above the threshold 0.30" in table.loc[0, "ood_reason"]
