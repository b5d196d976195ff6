"""The learning-rate range test: its schedule, early stop and suggestion, and the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import open_app_page

from skinlab.train.lr_find import lr_schedule, range_test, suggest


def test_the_schedule_spans_the_range_geometrically() -> None:
    lrs = lr_schedule(1e-7, 10.0, 100)
    assert len(lrs) == 100
    assert lrs[0] == pytest.approx(1e-7) and lrs[-1] == pytest.approx(10.0)
    ratios = lrs[1:] / lrs[:-1]
    assert np.allclose(ratios, ratios[0]) and ratios[0] == pytest.approx(1e8 ** (1 / 99))
    with pytest.raises(ValueError):
        lr_schedule(1.0, 0.1, 10)


def _bowl(lr: float) -> float:
    """A loss that is flat for tiny rates, lowest at 1e-2 and explodes beyond 1."""
    return 2.0 - 1.5 * math.exp(-((math.log10(lr) + 2) ** 2) / 2) + max(0.0, lr - 1.0) * 50


def test_the_test_stops_once_the_smoothed_loss_passes_four_times_its_minimum() -> None:
    lrs = lr_schedule(1e-7, 10.0, 100)
    seen: list[float] = []
    result = range_test(lambda lr: seen.append(lr) or _bowl(lr), lrs)
    assert result.diverged_lr is not None and 1.0 < result.diverged_lr < 10.0
    assert seen[-1] == result.diverged_lr and len(seen) < 100  # no step after the stop
    assert max(result.losses) <= 4 * min(result.losses)
    assert result.learning_rates == tuple(seen[:-1])


def test_a_nan_loss_stops_the_test_at_once() -> None:
    lrs = lr_schedule(1e-3, 1.0, 10)
    result = range_test(lambda lr: math.nan if lr > 0.1 else 1.0, lrs)
    assert result.diverged_lr > 0.1 and all(lr <= 0.1 for lr in result.learning_rates)


def test_the_suggestion_is_the_steepest_descent_or_a_tenth_of_the_minimum() -> None:
    lrs = lr_schedule(1e-6, 1.0, 61)
    lr, method = suggest(lrs, [_bowl(x) for x in lrs])
    assert method == "steepest" and 1e-4 < lr < 1e-2
    rising = list(np.linspace(1.0, 2.0, 61))
    assert suggest(lrs, rising) == (pytest.approx(1e-6), "minimum/10")  # clamped to the range


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skinlab.data.demo import generate_demo_dataset

    return generate_demo_dataset(tmp_path_factory.mktemp("lr") / "demo", scale=0.3)


def test_on_a_tiny_real_model_the_cli_suggests_a_rate_inside_the_range_below_divergence(
    tiny_demo: Path,
) -> None:
    from skinlab.cli import main

    out = io.StringIO()
    argv = ["lr-find", "--data", str(tiny_demo), "--preset", "quick", "--image-size", "32"]
    with contextlib.redirect_stdout(out):
        assert main([*argv, "--batch-size", "16", "--steps", "60", "--json"]) == 0
    result = json.loads(out.getvalue())
    assert {"suggestion", "method", "learning_rates", "losses", "diverged_lr"} <= set(result)
    assert result["method"] in ("steepest", "minimum/10")
    assert 1e-7 <= result["suggestion"] <= 10.0
    assert result["suggestion"] <= result["min_loss_lr"]
    if result["diverged_lr"] is not None:
        assert result["suggestion"] < result["diverged_lr"]
    assert len(result["learning_rates"]) == len(result["losses"]) <= 60


def test_the_train_page_button_draws_the_curve_and_use_puts_the_rate_in_the_form(
    tiny_demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skinlab.app.train_lr_find import form_rate

    # A models folder of its own: a failed run another test left in the shared one would
    # show its error on the page (as it should) and be taken for the range test's.
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(tmp_path / "models"))
    at = open_app_page(tiny_demo, "pages/train.py")
    at.number_input(key="train_image_size").set_value(32)
    at.number_input(key="train_batch_size").set_value(16).run()
    charts = len(at.get("plotly_chart"))
    assert not [b for b in at.button if b.key == "train_lr_use"]
    at.button(key="train_lr_find").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert len(at.get("plotly_chart")) == charts + 1
    result = at.session_state["train_lr_find_result"]
    assert any("Suggested learning rate" in c.value for c in at.caption)
    before = at.number_input(key="train_learning_rate").value
    at.button(key="train_lr_use").click().run()
    after = at.number_input(key="train_learning_rate").value
    assert after == pytest.approx(form_rate(result.suggestion))
    assert after != before or form_rate(result.suggestion) == before
