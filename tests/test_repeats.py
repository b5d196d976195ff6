"""Seed repeats: N runs of one setting with seeds seed, seed+1, ..., one group id, and the
group's mean ± sd per epoch and over its final scores."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pandas as pd
import pytest

from skinlab.app import curves
from skinlab.core import runs
from skinlab.core.config import RunConfig
from skinlab.core.errors import SkinlabError
from skinlab.jobs import repeats


def test_repeats_share_one_group_and_differ_only_in_seed_and_name() -> None:
    config = RunConfig(backbone="custom", seed=7, name="mine", epochs=3)
    members = repeats.repeat_configs(config, 3)
    assert [m.seed for m in members] == [7, 8, 9]
    assert len({m.repeat_group for m in members}) == 1 and members[0].repeat_group
    assert [m.name for m in members] == ["mine · seed 7", "mine · seed 8", "mine · seed 9"]
    for member in members:
        assert member.replace(seed=7, name="mine", repeat_group="") == config
    assert repeats.repeat_configs(config, 1) == [config]  # one run is not a group
    unnamed = repeats.repeat_configs(RunConfig(seed=1), 2, group="g1")
    assert [m.name for m in unnamed] == ["repeats g1 · seed 1", "repeats g1 · seed 2"]


@pytest.mark.parametrize("count", [0, -1, repeats.MAX_REPEATS + 1])
def test_a_repeat_count_out_of_range_is_one_sentence(count: int) -> None:
    with pytest.raises(SkinlabError, match="Repeats must be between 1 and"):
        repeats.repeat_configs(RunConfig(), count)


def test_start_repeats_starts_every_member_in_seed_order() -> None:
    started: list[RunConfig] = []
    result = repeats.start_repeats(RunConfig(seed=3), 3, start=lambda c: started.append(c) or c)
    assert [c.seed for c in started] == [3, 4, 5] and result == started


def _history(values: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"epoch": range(1, len(values) + 1), "val_accuracy": values, "accuracy": values}
    )


def test_epoch_bands_are_the_mean_and_sample_sd_of_the_runs_that_reached_each_epoch() -> None:
    bands = repeats.epoch_bands(
        [_history([0.5, 0.6, 0.7]), _history([0.7, 0.8]), _history([0.6, 0.7])], "val_accuracy"
    )
    assert list(bands["epoch"]) == [1, 2, 3] and list(bands["n"]) == [3, 3, 1]
    assert bands["mean"].tolist() == pytest.approx([0.6, 0.7, 0.7])
    assert bands["sd"].iloc[0] == pytest.approx(0.1)  # sample sd of 0.5, 0.7, 0.6
    assert math.isnan(bands["sd"].iloc[2])  # one run alone has no spread
    assert repeats.epoch_bands([pd.DataFrame()], "val_accuracy").empty


def test_mean_sd_ignores_missing_scores_and_says_how_many_it_used() -> None:
    assert repeats.mean_sd([0.5, None, 0.7, float("nan")]) == (
        pytest.approx(0.6),
        pytest.approx(math.sqrt(0.02)),
        2,
    )
    assert repeats.format_mean_sd([0.5, 0.7]) == "60.0% ± 14.1% (n=2)"
    assert repeats.format_mean_sd([0.5]) == "50.0% (n=1)"
    assert repeats.format_mean_sd([None]) == "–"


def test_the_band_figure_shades_mean_plus_and_minus_one_sd() -> None:
    bands = repeats.epoch_bands([_history([0.5, 0.6]), _history([0.7, 0.8])], "val_accuracy")
    figure = curves.band_figure({"validation accuracy": bands}, title="t", yaxis="accuracy")
    band, mean = figure.data
    assert list(mean.y) == pytest.approx([0.6, 0.7])
    sd = math.sqrt(0.02)
    assert list(band.y) == pytest.approx([0.6 + sd, 0.7 + sd, 0.7 - sd, 0.6 - sd])
    assert band.fill == "toself"


def fake_group(count: int = 3, group: str = "g-test") -> list[runs.RunPaths]:
    """Finished runs of one group, with histories and validation scores, without training."""
    made = []
    for member in repeats.repeat_configs(RunConfig(backbone="custom", epochs=2), count, group):
        paths = runs.new_run(member)
        score = 0.5 + 0.1 * (member.seed - 123)
        for epoch in (1, 2):
            runs.append_history(
                paths,
                {"epoch": epoch, "loss": 1.0, "accuracy": score, "val_loss": 1.1}
                | {"val_accuracy": score, "learning_rate": 0.01, "phase": "train"},
            )
        runs.write_status(paths, runs.RunStatus("finished", epoch=2, total_epochs=2))
        made.append(paths)
        time.sleep(1.01)  # run ids have one-second resolution: keep the order certain
    return made


def test_groups_and_the_group_table_come_from_the_run_folders_alone(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(tmp_path / "models"))
    members = fake_group(2)
    runs.new_run(RunConfig(backbone="custom"))  # a run on its own is in no group
    from skinlab.jobs import manager

    summaries = manager.list_summaries()
    assert repeats.groups(s.run_id for s in summaries) == {"g-test": [p.run_id for p in members]}
    assert repeats.members("g-test") == [p.run_id for p in members]
    (row,) = repeats.group_table(summaries).to_dict("records")
    assert row["group"] == "g-test" and row["runs"] == 2 and row["states"] == "2 finished"
    assert row["best val accuracy"] == "55.0% ± 7.1% (n=2)"
    assert repeats.group_table([]).empty


def test_cli_train_repeats_trains_each_seed_and_prints_every_run_and_the_spread(
    make_dataset_folder, tmp_path, monkeypatch, capsys
) -> None:
    from skinlab.cli import main

    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(tmp_path / "models"))
    data = make_dataset_folder({"Train": {"melanoma": 6, "nevus": 6}})
    tiny = ["--backbone", "custom", "--image-size", "32", "--batch-size", "4", "--epochs", "1"]
    assert main(["train", "--data", str(data), *tiny, "--seed", "5", "--repeats", "2"]) == 0
    out, err = capsys.readouterr()
    folders = [line for line in out.splitlines() if line.startswith(str(tmp_path / "models"))]
    assert len(folders) == 2 and out.strip().endswith(folders[-1])  # Keras' lines too
    configs = [runs.read_config(runs.RunPaths(Path(f))) for f in folders]
    assert [c.seed for c in configs] == [5, 6]
    assert configs[0].repeat_group == configs[1].repeat_group != ""
    assert "mean ± sd over the seeds" in err and "validation balanced accuracy" in err


def test_cli_runs_start_repeats_queues_one_run_per_seed_and_refuses_a_bad_count(
    make_dataset_folder, tmp_path, monkeypatch, capsys
) -> None:
    from skinlab.cli import main
    from skinlab.jobs import manager

    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(tmp_path / "models"))
    started: list[RunConfig] = []
    monkeypatch.setattr(
        manager, "start_run", lambda c, key=None: started.append(c) or runs.new_run(c)
    )
    data = make_dataset_folder({"Train": {"melanoma": 3, "nevus": 3}})
    assert main(["runs", "start", "--data", str(data), "--repeats", "3"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert [c.seed for c in started] == [123, 124, 125]
    assert main(["runs", "start", "--data", str(data), "--repeats", "0"]) == 2
    assert "Repeats must be between 1 and" in capsys.readouterr().err
    assert len(started) == 3  # nothing started by the refused command
