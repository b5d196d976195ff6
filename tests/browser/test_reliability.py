"""Reliability in a real Chromium: a background run outlives the app server, and several
sessions predicting at the same moment each see their own answer."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import numpy as np
from browser_helpers import open_page, start_app, stop_button, wait_idle
from helpers import kill_run_processes, wait_for_run

from skinlab.core import runs
from skinlab.core.probability import format_probability
from skinlab.core.processes import is_alive

EPOCHS = 300  # far more than the test waits for: the run is still going at the end
LESIONS = ("melanoma", "nevus", "vascular lesion", "dermatofibroma")


def _set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def _shown_epoch(page) -> int:
    """The epoch the Train page's live panel shows now (it re-reads the run every 1.5 s)."""
    line = page.get_by_text(re.compile(rf"^Epoch \d+ of {EPOCHS}")).first
    line.wait_for(timeout=60_000)
    return int(re.match(r"Epoch (\d+)", line.inner_text()).group(1))


def _wait_for_change(read, before, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while (now := read()) == before:
        assert time.monotonic() < deadline, f"no progress from {before} in {timeout:.0f} s"
        time.sleep(0.3)
    return now


def _progress(paths: runs.RunPaths) -> tuple[int, int]:
    status = runs.read_status(paths)
    return status.epoch, status.batch


def test_a_background_run_survives_an_app_restart_and_the_new_app_shows_it_live(
    browser, app_env, tmp_path
) -> None:
    models = tmp_path / "models"
    env = {**app_env, "SKINLAB_MODELS_DIR": str(models)}
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    servers = []
    try:
        with open(tmp_path / "first-app.log", "wb") as log:
            first, url = start_app(env, log)
        servers.append(first)
        page = context.new_page()
        page.set_default_timeout(60_000)
        open_page(page, url, "Train")
        _set_number(page, "Epochs", EPOCHS)
        _set_number(page, "Image size (pixels)", 32)
        page.get_by_role("button", name="Start training").click()
        stop_button(page).wait_for(timeout=120_000)
        (paths,) = runs.list_runs(models)
        wait_for_run(paths, lambda s: s.epoch >= 1 and s.batch >= 1)

        os.killpg(first.pid, signal.SIGKILL)  # the app server and everything in its group
        first.wait(timeout=30)
        status = runs.read_status(paths)
        assert is_alive(status.pid) and is_alive(status.supervisor_pid)
        _wait_for_change(lambda: _progress(paths), _progress(paths))

        with open(tmp_path / "second-app.log", "wb") as log:
            second, url = start_app(env, log)
        servers.append(second)
        page = context.new_page()  # the old tab lost its server; a new visit
        page.set_default_timeout(60_000)
        open_page(page, url, "Train")
        page.get_by_text(paths.run_id).filter(visible=True).first.wait_for()
        _wait_for_change(lambda: _shown_epoch(page), _shown_epoch(page))
        assert runs.read_status(paths).state == "running"
    finally:
        context.close()
        for server in servers:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
        kill_run_processes(models)


def test_sessions_predicting_at_the_same_moment_each_show_their_own_image(
    browser, server, trained_run, app_home, tmp_path
) -> None:
    from skinlab.app.prediction_report import display_name
    from skinlab.data.demo import draw_lesion
    from skinlab.predict.predictor import load_predictor

    predictor = load_predictor(runs.RunPaths(Path(app_home["models"]) / trained_run))
    # Every new session predicts with the default model: make it this one, as the sidebar's
    # "Make default" does (other tests leave newer runs behind).
    settings = Path(app_home["data"]) / "settings.json"
    saved = json.loads(settings.read_text()) if settings.exists() else {}
    settings.write_text(json.dumps({**saved, "active_model": trained_run}))
    images, expected = [], []
    for i, lesion in enumerate(LESIONS):
        image = tmp_path / f"session{i}-{lesion.replace(' ', '_')}.png"
        draw_lesion(lesion, np.random.default_rng(i), (160, 140)).save(image)
        result = predictor.predict_paths([image])[0]
        images.append(image)
        expected.append(
            f"most probable class is {display_name(result.top_class)}, with a calibrated "
            f"probability of {format_probability(result.confidence)}"
        )
    assert len(set(expected)) == len(LESIONS), "the images must be told apart by their answer"

    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in LESIONS]
    try:
        pages = [context.new_page() for context in contexts]
        for page in pages:
            page.set_default_timeout(300_000)  # four sessions on a busy 2-core machine
            open_page(page, server, "Predict")
        uploader = "[data-testid='stFileUploader'] input[type=file]"
        for page, image in zip(pages, images, strict=True):  # all predict at once
            page.locator(uploader).first.set_input_files(str(image))
        for page, image, answer in zip(pages, images, expected, strict=True):
            page.get_by_text(answer).first.wait_for()
            page.get_by_role("heading", name=image.name).wait_for()
            others = [a for a in expected if a != answer] + [p.name for p in images if p != image]
            assert not any(page.get_by_text(other).count() for other in others)
    finally:
        for context in contexts:
            context.close()
