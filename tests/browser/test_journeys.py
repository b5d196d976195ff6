"""Main journeys in a real Chromium against `streamlit run`."""

from __future__ import annotations

from browser_helpers import shot, wait_idle


def test_explore_shows_nine_classes_of_the_demo(page, server) -> None:
    page.goto(server)
    wait_idle(page)
    page.get_by_text("Explore the dataset").wait_for()
    page.get_by_text("synthetic demo data").first.wait_for()
    classes = page.locator("[data-testid='stMetric']").filter(has_text="Classes")
    assert "9" in classes.inner_text()
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()
    shot(page, "explore")
