"""Main journeys in a real Chromium against `streamlit run`."""

from __future__ import annotations

import time

from browser_helpers import open_page, shot, stop_button, uploader, wait_idle


def test_explore_shows_nine_classes_of_the_demo(page, server) -> None:
    page.goto(server)
    wait_idle(page)
    page.get_by_text("Explore the dataset").wait_for()
    page.get_by_text("synthetic demo data").first.wait_for()
    classes = page.locator("[data-testid='stMetric']").filter(has_text="Classes")
    assert "9" in classes.inner_text()
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()
    shot(page, "explore")


def test_predict_an_uploaded_image_shows_the_probability_chart(
    page, server, trained_run, tmp_path
) -> None:
    import numpy as np

    from skinlab.data.demo import draw_lesion

    lesion = tmp_path / "lesion.png"
    draw_lesion("melanoma", np.random.default_rng(3), (160, 140)).save(lesion)
    open_page(page, server, "Predict")
    uploader(page).set_input_files(str(lesion))
    wait_idle(page)
    # The sentence, not the results table's "Most probable class" header (hidden in the grid).
    page.get_by_text("The model's most probable class is").first.wait_for()
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()
    page.get_by_text("not a medical device").first.wait_for()
    shot(page, "predict")


def test_predict_a_non_image_upload_explains_the_error(page, server, trained_run, tmp_path) -> None:
    fake = tmp_path / "notes.jpg"
    fake.write_text("these are my notes, not a photo")
    open_page(page, server, "Predict")
    uploader(page).set_input_files(str(fake))
    wait_idle(page)
    page.get_by_text("could not be read").first.wait_for()
    page.get_by_text("notes.jpg is a text file, not an image").first.wait_for()


def test_runs_page_compares_the_trained_run(page, server, trained_run) -> None:
    open_page(page, server, "Runs")
    page.get_by_text(trained_run).first.wait_for()
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()
    shot(page, "runs")


def _set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def test_train_a_one_epoch_run_streams_its_curves_until_it_finishes(page, server) -> None:
    open_page(page, server, "Train")
    _set_number(page, "Epochs", 1)
    _set_number(page, "Image size (pixels)", 32)
    page.get_by_role("button", name="Start training").click()
    # The live panel streams the background run; the curves appear when the epoch ends.
    usable = page.get_by_role("button", name="Use this model for predictions")
    already_active = page.get_by_text("This run is the model the Predict page uses")
    usable.or_(already_active).first.wait_for(timeout=180_000)
    chart = page.locator("[data-testid='stPlotlyChart']").first
    chart.wait_for()
    wait_idle(page)
    chart.scroll_into_view_if_needed()
    page.mouse.wheel(0, -250)  # show the run's state line above the curves too
    page.wait_for_timeout(500)
    shot(page, "train", full_page=False)


def test_train_stop_ends_a_longer_run_as_stopped(page, server, app_home) -> None:
    from skinlab.core import runs

    open_page(page, server, "Train")
    _set_number(page, "Epochs", 300)
    _set_number(page, "Image size (pixels)", 32)
    before = {p.run_id for p in runs.list_runs(app_home["models"])}
    page.get_by_role("button", name="Start training").click()
    # The new run (the Stop button on screen may still be an earlier run's, ending).
    deadline = time.monotonic() + 300
    while not {p.run_id for p in runs.list_runs(app_home["models"])} - before:
        assert time.monotonic() < deadline, "no run was started"
        page.wait_for_timeout(200)
    (run_id,) = {p.run_id for p in runs.list_runs(app_home["models"])} - before
    newest = runs.RunPaths(app_home["models"] / run_id)
    # Let it finish a whole epoch (it may queue first): stopped before one, it has nothing
    # to resume.
    while not (newest.history.exists() and len(runs.read_history(newest)) >= 1):
        assert time.monotonic() < deadline, "no epoch finished"
        page.wait_for_timeout(200)
    # The page watches the new run; on a loaded machine its next rerun can take over a minute.
    page.get_by_text(run_id).filter(visible=True).first.wait_for(timeout=180_000)
    stop_button(page).click()
    page.get_by_role("button", name="Resume").wait_for(timeout=180_000)
    status = runs.read_status(newest)
    assert status.state == "stopped" and status.epoch < 300


def test_predict_shows_similar_training_cases_and_a_movable_threshold(
    page, server, trained_run, tmp_path
) -> None:
    import numpy as np

    from skinlab.data.demo import draw_lesion

    lesion = tmp_path / "lesion.png"
    draw_lesion("nevus", np.random.default_rng(5), (160, 140)).save(lesion)
    open_page(page, server, "Predict")
    uploader(page).set_input_files(str(lesion))
    wait_idle(page)
    page.get_by_text("Most similar training images").first.wait_for()
    captions = page.locator("[data-testid='stImageCaption']").filter(has_text="distance")
    captions.nth(4).wait_for()  # five similar cases, each with its class and distance
    assert captions.count() == 5

    page.get_by_text("Unfamiliar-image threshold").first.click()
    thumb = page.get_by_role("slider", name="Flag images scoring above")
    thumb.focus()
    thumb.press("Home")  # the lowest threshold: every image is flagged
    wait_idle(page)
    page.get_by_text("At threshold 0.00").first.wait_for()
    # The results table (a canvas grid) holds the same sentence in a hidden cell: wait for
    # the result box people read.
    page.get_by_text("unlike dermoscopy").filter(visible=True).first.wait_for()
    shot(page, "predict-threshold-low")
    thumb.press("End")
    wait_idle(page)
    page.get_by_text("At threshold 1.00").first.wait_for()
    assert page.get_by_text("unlike dermoscopy").count() == 0
    shot(page, "predict-threshold-high")
