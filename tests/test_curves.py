"""Learning curves: the train/validation gap is shaded and a widening gap is called out."""

import pandas as pd

from skinlab.curves import (
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
