"""External validation in a real browser (issue 28): the Runs page's External test tab scores
a run on a tiny set in HAM10000's layout and shows its own score beside the external one.

Named to run after test_first_hour.py: it trains the session's shared run, and the first-hour
journey expects a Runs page whose only run is the one it stopped (with the shared run trained
first, the page's default comparison left the stopped run out and the journey timed out)."""

from __future__ import annotations

import json

from browser_helpers import open_page, shot, wait_idle
from helpers import ham_external_set

#: Scoring imports TensorFlow in the server the first time and decodes every image: on a
#: busy CI machine that takes minutes, so the waits end on events with generous deadlines.
_SLOW = 600


def test_runs_page_scores_an_external_set_and_shows_it_beside_the_runs_own_score(
    page, server, app_home, trained_run, tmp_path
) -> None:
    from skinlab.core import runs
    from skinlab.data.demo import DEMO_DIRNAME

    base = ham_external_set(app_home["data"] / DEMO_DIRNAME, tmp_path / "ham-browser")
    open_page(page, server, "Runs")
    page.get_by_role("tab", name="External test").click()
    box = page.get_by_label("External set", exact=True)
    box.fill(str(base))
    box.press("Enter")
    wait_idle(page, timeout=_SLOW)
    page.get_by_role("button", name="Score on this external set").click()
    table = page.locator("[data-testid='stTable']").filter(has_text="External set")
    table.wait_for(timeout=_SLOW * 1000)
    wait_idle(page, timeout=_SLOW)

    # Whichever run the tab shows, the page saved its score in that run's metrics.json.
    saved = [
        entry
        for paths in runs.list_runs(app_home["models"])
        if paths.metrics.exists()
        for entry in json.loads(paths.metrics.read_text()).get("external", [])
        if entry["name"] == "ham-browser"
    ]
    assert len(saved) == 1
    text = table.inner_text()
    for row in ("Balanced accuracy", "Accuracy", "Melanoma sensitivity", "Images"):
        assert row in text
    assert f"{saved[0]['balanced_accuracy']['estimate']:.3f}" in text
    assert str(saved[0]["images"]) in text and "Own Test images" in text
    drop = page.locator("[data-testid='stAlert']").filter(has_text="on this external set")
    assert drop.count() == 1
    page.get_by_text("Not scored").first.wait_for()
    shot(page, "runs-external")
