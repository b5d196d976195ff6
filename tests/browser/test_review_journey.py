"""The data-fixing loop in a real browser (issue 17): review the demo, relabel an image,
retrain on the new dataset version, and ask the Runs page whether the run on the reviewed
version differs from the run on the raw folder, image by image on the same Test images."""

from __future__ import annotations

import re
import time

from browser_helpers import shot, wait_idle

#: A busy CI machine needs minutes for the first Review visit (it fits a quick out-of-fold
#: model to rank the demo), so the deadlines here are generous; the waits end on events.
_SLOW = 600


def _open(page, server: str, title: str) -> None:
    page.goto(server)
    wait_idle(page, timeout=_SLOW)
    page.locator("[data-testid='stSidebarNav']").get_by_text(title, exact=True).click()
    wait_idle(page, timeout=_SLOW)


def _widget(page, widget_label: str):
    """The select or multiselect labelled ``widget_label``, once it is on the page."""
    page.get_by_text(widget_label, exact=True).first.wait_for()
    return page.locator("[data-testid='stSelectbox'], [data-testid='stMultiSelect']").filter(
        has=page.get_by_text(widget_label, exact=True)
    )


def _shown(widget) -> str:
    """What a select shows: its text and the value of its search box (where Streamlit puts
    the chosen option)."""
    values = [box.input_value() for box in widget.locator("input").all()]
    return " ".join([widget.inner_text(), *values])


def _choose(page, widget_label: str, option: str) -> None:
    """Pick ``option`` in the select or multiselect labelled ``widget_label`` by typing it
    (nothing to do when the widget shows it already)."""
    widget = _widget(page, widget_label)
    if option in _shown(widget):
        return
    widget.locator("input").first.click()
    widget.locator("input").first.fill(option)
    page.get_by_role("option", name=option).first.click()
    wait_idle(page, timeout=_SLOW)
    page.keyboard.press("Escape")


def test_relabel_then_retrain_on_the_new_version_then_compare_paired(
    page, server, app_home, trained_run
) -> None:
    from skinlab.core import runs
    from skinlab.data import overrides
    from skinlab.data.demo import DEMO_DIRNAME

    root = app_home["data"] / DEMO_DIRNAME
    page.goto(f"{server}/?explore_tab=Review")
    page.get_by_text("Dataset version").first.wait_for(timeout=_SLOW * 1000)
    wait_idle(page, timeout=_SLOW)
    page.get_by_text("Likely label error").first.wait_for()
    # The first card whose suggested class differs from its folder (Relabel is enabled).
    relabel = page.locator("button:enabled").filter(has_text="Relabel").first
    relabel.scroll_into_view_if_needed()
    shot(page, "review", full_page=False)
    relabel.click()
    wait_idle(page, timeout=_SLOW)
    page.get_by_text("1 relabelled").first.wait_for()  # the card itself hides once decided
    version = overrides.current_version(root)
    assert version.relabelled == 1
    (decision,) = overrides.read_log(root)
    assert decision.action == "relabel" and decision.relpath.startswith("Train/")
    # The user's images are untouched: the decision lives in the overrides file only.
    assert (root / decision.relpath).exists()
    try:
        # Within the same browser session (no reload): the picker starts on the version this
        # session's own review made; a new session would start on the folder as it is.
        page.locator("[data-testid='stSidebarNav']").get_by_text("Train", exact=True).click()
        wait_idle(page, timeout=_SLOW)
        assert version.id in _shown(_widget(page, "Dataset version"))
        for label, value in (("Epochs", 2), ("Image size (pixels)", 32)):
            box = page.get_by_label(label, exact=True)
            box.fill(str(value))
            box.press("Enter")
            wait_idle(page, timeout=_SLOW)
        before = {p.run_id for p in runs.list_runs(app_home["models"])}
        page.get_by_role("button", name="Start training").click()
        deadline = time.monotonic() + _SLOW
        while not (new := {p.run_id for p in runs.list_runs(app_home["models"])} - before):
            assert time.monotonic() < deadline, "no run was started"
            page.wait_for_timeout(200)
        paths = runs.RunPaths(app_home["models"] / new.pop())
        assert runs.read_config(paths).data_version == version.id
        while runs.read_status(paths).state != "finished":
            assert time.monotonic() < deadline, "the run on the new version did not finish"
            page.wait_for_timeout(500)
        assert runs.read_manifest(paths).data_version == version.id

        _open(page, server, "Runs")
        raw = runs.run_summary(runs.RunPaths(app_home["models"] / trained_run)).label
        reviewed = runs.run_summary(paths).label
        _choose(page, "Runs to compare", raw)
        _choose(page, "Is run A", reviewed)
        _choose(page, "better than run B", raw)
        verdict = page.get_by_text(re.compile(r"McNemar's p = \d\.\d{3}")).first
        verdict.wait_for(timeout=_SLOW * 1000)
        assert re.search(
            r"is better than|The evidence is mixed|Neither run is shown to be better",
            verdict.inner_text(),
        )
        # Paired on the demo's whole Test split: the version changed a Train label only.
        page.get_by_text(
            re.compile(r"Paired on the 90 Test images both runs scored")
        ).first.wait_for()
        shot(page, "review-compare")
    finally:
        overrides.undo_last(root)  # later journeys train on the folder as it is
