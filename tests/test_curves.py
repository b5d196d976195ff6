"""Learning curves: the train/validation gap is shaded and a widening gap is called out."""

import pandas as pd
import pytest

from skinlab.app.curves import (
    best_epoch,
    compare_curves_figure,
    learning_curve_figure,
    overfitting_signal,
)


def _history(train, val) -> pd.DataFrame:
    n = len(train)
    return pd.DataFrame(
        {
            "epoch": range(1, n + 1),
            "accuracy": train,
            "val_accuracy": val,
            "loss": [1.0] * n,
            "val_loss": [1.0 - i / 10 for i in range(n)],
        }
    )


def test_gap_between_training_and_validation_is_shaded() -> None:
    fig = learning_curve_figure(_history([0.5, 0.6], [0.4, 0.5]))
    assert [t.name for t in fig.data] == ["validation accuracy", "training accuracy"]
    assert fig.data[1].fill == "tonexty"


def test_without_validation_only_the_training_curve_is_drawn() -> None:
    fig = learning_curve_figure(_history([0.5, 0.6], [None, None]))
    assert [t.name for t in fig.data] == ["training accuracy"]


def test_widening_gap_is_reported_as_overfitting_and_a_steady_one_is_not() -> None:
    widening = _history([0.5, 0.6, 0.7, 0.8, 0.9, 0.95], [0.5, 0.55, 0.55, 0.55, 0.55, 0.55])
    assert "Overfitting" in overfitting_signal(widening)
    steady = _history([0.5, 0.55, 0.6, 0.65, 0.7, 0.75], [0.5, 0.55, 0.6, 0.65, 0.7, 0.75])
    assert overfitting_signal(steady) is None


def test_best_epoch_and_run_comparison_lines() -> None:
    history = _history([0.5, 0.6, 0.7], [0.4, 0.5, 0.45])
    assert best_epoch(history) == 3
    assert best_epoch(history, "val_accuracy", "max") == 2
    assert [t.name for t in compare_curves_figure({"a": history, "b": history}).data] == ["a", "b"]


def test_a_short_run_gets_one_whole_number_tick_per_epoch() -> None:
    history = _history([0.5, 0.6], [0.4, 0.5])
    for fig in (learning_curve_figure(history), compare_curves_figure({"a": history})):
        assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.tick0 == 1
        assert fig.layout.xaxis.tickformat == "d"


def test_a_long_run_keeps_plotlys_tick_spacing_in_whole_numbers() -> None:
    history = _history([0.5] * 40, [0.4] * 40)
    fig = learning_curve_figure(history)
    assert fig.layout.xaxis.dtick is None and fig.layout.xaxis.tickformat == "d"


def test_a_live_epoch_is_one_hollow_marker_from_its_first_batch_and_gone_when_the_run_ends():
    from skinlab.app.curves import in_progress_point, learning_curve_figure
    from skinlab.core.runs import RunStatus

    running = RunStatus(
        "running", epoch=1, total_epochs=6, batch=1, total_batches=10, running_loss=2.1
    )
    point = in_progress_point(running, "loss")
    assert point == pytest.approx((0.1, 2.1))
    figure = learning_curve_figure(
        pd.DataFrame(columns=["epoch", "loss"]), "loss", in_progress=point
    )
    marker = [t for t in figure.data if t.name == "epoch in progress"]
    assert len(marker) == 1 and marker[0].mode == "markers" and list(marker[0].y) == [2.1]
    assert in_progress_point(running, "accuracy") is None  # not measured yet
    stopped = RunStatus("stopped", epoch=3, batch=4, total_batches=10, running_loss=1.0)
    assert in_progress_point(stopped, "loss") is None
