"""The synthetic demo teaches the notebook's lesson: without augmentation the notebook's
recipe overfits it, visibly, within its 30 epochs (the "Watch it overfit" preset)."""

from __future__ import annotations

from skinlab.app.curves import overfitting_signal
from skinlab.core import runs
from skinlab.core.config import preset
from skinlab.data.demo import generate_demo_dataset
from skinlab.train.training import train


def test_the_notebook_recipe_without_augmentation_visibly_overfits_the_demo(tmp_path) -> None:
    root = generate_demo_dataset(tmp_path / "demo")  # the full demo the app starts on
    # The preset as the Train page's button sets it, at 128 px instead of 180 to halve the
    # test's time (at 180 px the gap opens earlier: the warning from epoch ~21).
    config = preset("notebook-no-aug", data_root=str(root), image_size=128, seed=1)
    assert (config.augmentation, config.epochs) == ("none", 30)
    history = runs.read_history(train(config).paths)
    assert len(history) == 30
    last = history.tail(5)
    gap = (last["accuracy"] - last["val_accuracy"]).mean()
    assert gap > 0.08, history  # training accuracy pulls away from validation accuracy
    assert history["val_loss"].iloc[-3:].mean() > history["val_loss"].min() + 0.05, history
    # ...and the Train page says so while the run trains, at some epoch of it.
    warned = [e for e in range(6, 31) if overfitting_signal(history.iloc[:e])]
    assert warned, history
