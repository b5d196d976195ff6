"""Linked views: the Altair spec links three selections, the page's selection picks the
rows, and a selection can be sent to the review queue."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from skinlab.app.linked_views import (
    BRIGHTNESS,
    CLASSES,
    SIZE,
    describe,
    image_frame,
    linked_chart,
    selected,
)
from skinlab.data.demo import generate_demo_dataset
from skinlab.data.discovery import discover

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return generate_demo_dataset(tmp_path_factory.mktemp("linked") / "demo", scale=0.2)


@pytest.fixture(autouse=True)
def _own_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKINLAB_SETTINGS_FILE", str(tmp_path / "settings.json"))


FRAME = pd.DataFrame(
    {
        "relpath": ["a", "b", "c", "d"],
        "label": ["nevus", "nevus", "melanoma", "melanoma"],
        "width": [100.0, 200.0, 150.0, 250.0],
        "brightness": [80.0, 120.0, 160.0, 200.0],
    }
)


def test_a_selection_keeps_the_rows_inside_every_selected_range() -> None:
    assert list(selected(FRAME, {})["relpath"]) == ["a", "b", "c", "d"]
    assert list(selected(FRAME, {CLASSES: [{"label": "melanoma"}]})["relpath"]) == ["c", "d"]
    both = {CLASSES: [{"label": "melanoma"}], SIZE: {"width": [260, 140]}}
    assert list(selected(FRAME, both)["relpath"]) == ["c", "d"]
    three = {**both, BRIGHTNESS: {"brightness": [150, 170]}}
    assert list(selected(FRAME, three)["relpath"]) == ["c"]
    assert describe(three) == "melanoma · width 140-260 px · brightness 150-170"
    assert describe(None) == "all images"


def test_every_highlight_layer_filters_on_all_three_selections() -> None:
    spec = linked_chart(FRAME).to_dict()
    assert {p["name"] for p in spec["params"]} == {CLASSES, SIZE, BRIGHTNESS}
    charts = [spec["vconcat"][0], *spec["vconcat"][1]["hconcat"]]
    for chart in charts:
        background, highlight = chart["layer"]
        filters = {t["filter"]["param"] for t in highlight["transform"]}
        assert filters == {CLASSES, SIZE, BRIGHTNESS}
        assert "transform" not in background


def test_image_frame_measures_each_readable_image(demo) -> None:
    dataset = discover(demo)
    frame = image_frame(dataset.table)
    assert len(frame) == len(dataset.images())
    assert frame["brightness"].between(1, 254).all()
    assert (frame["width"] >= 96).all()


def test_linked_views_tab_sends_the_shown_images_to_the_review_tab(demo) -> None:
    at = AppTest.from_file(APP, default_timeout=600)
    at.query_params["dataset"] = str(demo)
    at.session_state["explore_tab"] = "Linked views"
    at.run()
    assert not at.exception and not at.error
    assert [c.key for c in at.get("vega_lite_chart")] == ["linked_chart"]
    total = len(discover(demo).images())
    assert any(f"{total} of {total} images" in m.value for m in at.markdown)
    at.button(key="linked_review").click().run()
    assert not at.exception
    assert at.session_state["explore_tab"] == "Review"
    assert any(f"the {total} image(s) sent from the charts" in i.value for i in at.info)
