"""The first hour of a new user, in a real Chromium (issue 12): the demo, the one-minute model
stopped mid-epoch, a lesion, an everyday photo and a text file on Predict, then Runs. None of
the rough edges that hour once had: no partial epoch shown as one, no probability shown as a
certainty, no run left behind by a start that failed, no raw column names."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import numpy as np
from browser_helpers import ROOT, open_page, stop_button, uploader, wait_idle

#: Column names of the library's tables that a page must never show as they are.
RAW_NAMES = (
    "top_class",
    "malignant_probability",
    "ood_reason",
    "best_val_accuracy",
    "balanced_accuracy",
    "run_id",
    "total_epochs",
    "risk_tier",
)


def _no_raw_names(page) -> None:
    text = page.locator("[data-testid='stMain']").inner_text()
    shown = [name for name in RAW_NAMES if re.search(rf"\b{name}\b", text)]
    assert shown == [], shown


def _set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def _wait(condition, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_the_first_hour_has_no_partial_epoch_no_false_certainty_no_junk_no_raw_names(
    page, server, app_home, app_env, tmp_path
) -> None:
    from skinlab.core import runs
    from skinlab.data.demo import draw_lesion

    models = app_home["models"]
    before = {p.run_id for p in runs.list_runs(models)}

    # A start that cannot work, from the CLI: one sentence, and nothing for the pages to list.
    out = subprocess.run(
        [sys.executable, "-m", "skinlab", "train", "--data", str(tmp_path / "nonexistent")],
        env={**os.environ, **app_env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2 and out.stderr.startswith("error: "), out.stderr
    assert {p.run_id for p in runs.list_runs(models)} == before

    # Fast CPU, long enough to be stopped mid-epoch on any machine.
    open_page(page, server, "Train")
    page.get_by_role("button", name="Fast CPU").click()
    wait_idle(page)
    _set_number(page, "Epochs", 60)
    page.get_by_role("button", name="Start training").click()
    _wait(lambda: {p.run_id for p in runs.list_runs(models)} - before)
    (run_id,) = {p.run_id for p in runs.list_runs(models)} - before
    paths = runs.RunPaths(models / run_id)

    def into_a_later_epoch() -> bool:
        status = runs.read_status(paths)
        whole = len(runs.read_history(paths)) if paths.history.exists() else 0
        return whole >= 1 and status.epoch > whole and status.batch > 0

    _wait(into_a_later_epoch)
    stop_button(page).click()
    page.get_by_role("button", name="Resume").wait_for(timeout=180_000)
    wait_idle(page)
    status, history = runs.read_status(paths), runs.read_history(paths)
    assert status.state == "stopped"
    assert list(history["epoch"]) == list(range(1, len(history) + 1))
    cut = status.batch < status.total_batches
    assert len(history) == status.epoch - (1 if cut else 0), (status, len(history))
    # The headline and the curves end at the last whole epoch; no marker of a live epoch.
    page.get_by_text(f"Training accuracy (epoch {len(history)})").first.wait_for()
    main = page.locator("[data-testid='stMain']")
    assert "epoch in progress" not in main.inner_text()
    _no_raw_names(page)

    # Predict: a demo lesion, an everyday photograph, and a text file that calls itself a JPEG.
    from PIL import Image
    from skimage import data as samples

    lesion, photo, notes = (
        tmp_path / "lesion.png",
        tmp_path / "astronaut.jpg",
        tmp_path / "notes.jpg",
    )
    draw_lesion("melanoma", np.random.default_rng(3), (160, 140)).save(lesion)
    Image.fromarray(samples.astronaut()).save(photo)
    notes.write_text("these are my notes, not a photo")
    open_page(page, server, "Predict")
    files = uploader(page)
    files.set_input_files([str(lesion), str(photo), str(notes)])
    wait_idle(page)
    page.get_by_text("notes.jpg is a text file, not an image").first.wait_for()
    page.get_by_text("The model's most probable class is").first.wait_for()
    text = main.inner_text()
    assert run_id in text or (runs.read_config(paths).name or "") in text
    assert not re.search(r"100\.0\s?%", text), "a probability was shown as a certainty"
    _no_raw_names(page)

    # Runs: the stopped run is there, and nothing the failed CLI start could have left.
    open_page(page, server, "Runs")
    page.get_by_text(run_id).filter(visible=True).first.wait_for()
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()
    assert "nonexistent" not in main.inner_text()
    _no_raw_names(page)
