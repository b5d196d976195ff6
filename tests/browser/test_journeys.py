"""Main journeys in a real Chromium against `streamlit run`."""

from __future__ import annotations

from browser_helpers import open_page, shot, wait_idle


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

    from skinlab.demo import draw_lesion

    lesion = tmp_path / "lesion.png"
    draw_lesion("melanoma", np.random.default_rng(3), (160, 140)).save(lesion)
    open_page(page, server, "Predict")
    page.locator("[data-testid='stFileUploader'] input[type=file]").first.set_input_files(
        str(lesion)
    )
    wait_idle(page)
    page.get_by_text("most probable class").first.wait_for()
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()
    page.get_by_text("not a medical device").first.wait_for()
    shot(page, "predict")


def test_predict_a_non_image_upload_explains_the_error(page, server, trained_run, tmp_path) -> None:
    fake = tmp_path / "notes.jpg"
    fake.write_text("these are my notes, not a photo")
    open_page(page, server, "Predict")
    page.locator("[data-testid='stFileUploader'] input[type=file]").first.set_input_files(str(fake))
    wait_idle(page)
    page.get_by_text("could not be read").first.wait_for()
    page.get_by_text("notes.jpg is not an image").first.wait_for()


def test_runs_page_compares_the_trained_run(page, server, trained_run) -> None:
    open_page(page, server, "Runs")
    page.get_by_text(trained_run).first.wait_for()
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()
    shot(page, "runs")
