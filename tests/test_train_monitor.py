"""Watching runs from their files: which run to show, progress text, metrics, the table."""

from __future__ import annotations

import pandas as pd
import pytest

from skinlab.app import train_monitor
from skinlab.core import atomic, runs
from skinlab.core.config import RunConfig
from skinlab.core.errors import DatasetLayoutError
from skinlab.core.runs import RunStatus
from skinlab.data.discovery import discover
from skinlab.model import weights
from skinlab.model.weights import WeightsUnavailableError


def _summary(run_id: str, state: str) -> runs.RunSummary:
    return runs.RunSummary(run_id, state=state)


def test_the_chosen_run_is_shown_while_it_exists_else_the_newest_live_one() -> None:
    summaries = [_summary("c", "finished"), _summary("b", "running"), _summary("a", "stopped")]
    assert train_monitor.run_to_show(summaries, "a") == "a"
    assert train_monitor.run_to_show(summaries, None) == "b"
    assert train_monitor.run_to_show(summaries, "deleted") == "b"
    assert train_monitor.run_to_show(summaries[:1], None) == "c"
    assert train_monitor.run_to_show([], "a") is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "–"), (-1, "–"), (4.6, "5 s"), (125, "2 min 05 s"), (7260, "2 h 01 min")],
)
def test_durations_read_like_a_person_would_say_them(seconds, text: str) -> None:
    assert train_monitor.format_duration(seconds) == text


def test_progress_shows_epochs_with_eta_and_batches_with_speed() -> None:
    status = RunStatus(
        "running",
        epoch=3,
        total_epochs=10,
        batch=5,
        total_batches=20,
        images_per_second=84.4,
        eta_seconds=125,
        phase="train",
    )
    (overall, epochs), (within, batches) = train_monitor.progress_lines(status)
    assert overall == pytest.approx((2 + 5 / 20) / 10) and within == pytest.approx(0.25)
    assert epochs == "Epoch 3 of 10 · about 2 min 05 s left"
    assert batches == "Batch 5 of 20 · 84 images/s"
    fine = train_monitor.progress_lines(
        RunStatus("running", epoch=12, total_epochs=20, phase="fine-tune")
    )
    assert "(fine-tune)" in fine[0][1]


def test_progress_says_what_happens_before_the_first_and_after_the_last_epoch() -> None:
    assert "Starting" in train_monitor.progress_lines(RunStatus("running"))[0][1]
    assert (
        "evaluating" in train_monitor.progress_lines(RunStatus("stopping", phase="evaluate"))[0][1]
    )
    assert train_monitor.progress_lines(RunStatus("finished", epoch=3, total_epochs=3)) == []
    assert train_monitor.progress_lines(RunStatus("queued")) == []


def test_final_metrics_are_the_three_headline_validation_scores() -> None:
    metrics = {
        "validation": {"balanced_accuracy": 0.5, "macro_f1": 0.4, "melanoma": {"sensitivity": 0.75}}
    }
    assert train_monitor.final_metrics(metrics) == {
        "Balanced accuracy": 0.5,
        "Macro-F1": 0.4,
        "Melanoma sensitivity": 0.75,
    }
    no_melanoma = {"validation": {"balanced_accuracy": 0.5, "macro_f1": 0.4, "melanoma": None}}
    assert train_monitor.final_metrics(no_melanoma)["Melanoma sensitivity"] is None
    assert train_monitor.final_metrics(None) is None
    assert train_monitor.final_metrics({"test": {}}) is None


def test_latest_metrics_come_from_the_last_finished_epoch() -> None:
    history = pd.DataFrame(
        {
            "epoch": [1, 2],
            "loss": [1.0, 0.8],
            "accuracy": [0.5, 0.61],
            "val_loss": [1.1, None],
            "val_accuracy": [0.4, None],
            "learning_rate": [0.01, 0.005],
        }
    )
    assert train_monitor.latest_metrics(history) == [
        ("Training accuracy (epoch 2)", "61.0%"),
        ("Validation accuracy", "–"),
        ("Validation loss", "–"),
        ("Learning rate", "0.005"),
    ]
    assert train_monitor.latest_metrics(history.iloc[:0]) == []


def test_a_run_is_reported_ended_once_after_it_was_seen_live(tmp_path) -> None:
    def view(state: str) -> train_monitor.RunView:
        return train_monitor.RunView(
            "r", "r", RunStatus(state), RunConfig(), pd.DataFrame(), None, False
        )

    seen: dict = {}
    assert not train_monitor.just_ended(seen, view("finished"))  # never seen live
    assert not train_monitor.just_ended(seen, view("running"))
    assert train_monitor.just_ended(seen, view("finished"))
    assert not train_monitor.just_ended(seen, view("finished"))


def test_load_run_and_the_table_read_only_the_run_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(tmp_path))
    paths = runs.new_run(RunConfig(backbone="custom", epochs=2, name="mine"))
    runs.append_history(paths, {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_accuracy": 0.25})
    runs.write_status(paths, RunStatus("finished", epoch=2, total_epochs=2))
    atomic.write_json(paths.metrics, {"validation": {"balanced_accuracy": 0.3, "macro_f1": 0.2}})
    view = train_monitor.load_run(paths.run_id)
    assert view.name == "mine" and view.status.state == "finished" and not view.live
    assert view.metrics["Balanced accuracy"] == 0.3 and not view.can_predict  # no manifest
    summary = runs.run_summary(paths)
    table = train_monitor.runs_table([summary, runs.RunSummary("gone")])
    assert table["run"].tolist() == ["mine", "gone"]
    assert table.loc[0, "epochs"] == "2/2" and "Notebook CNN" in table.loc[0, "config"]
    assert table.loc[0, "best val accuracy"] == 0.25 and table.loc[1, "config"] == "–"
    assert train_monitor.run_labels([summary]) == {paths.run_id: "mine · finished"}


def test_launch_refuses_a_dataset_with_one_class(make_dataset_folder) -> None:
    dataset = discover(make_dataset_folder({"Train": {"melanoma": 3}}))
    with pytest.raises(DatasetLayoutError, match="two classes"):
        train_monitor.launch(RunConfig(data_root=str(dataset.root)), dataset)


def test_launch_refuses_offline_imagenet_weights_before_starting(
    make_dataset_folder, monkeypatch
) -> None:
    def offline(backbone: str, size: int):
        raise WeightsUnavailableError(f"ImageNet weights for {backbone} are not cached.")

    monkeypatch.setattr(weights, "ensure_imagenet_weights", offline)
    dataset = discover(make_dataset_folder({"Train": {"melanoma": 2, "nevus": 2}}))
    config = RunConfig(data_root=str(dataset.root), backbone="mobilenetv2", weights="imagenet")
    before = runs.list_runs()
    with pytest.raises(WeightsUnavailableError, match="not cached"):
        train_monitor.launch(config, dataset)
    assert runs.list_runs() == before  # nothing was started


def _ended(state: str, epochs: int, total: int, error: str | None = None):
    history = pd.DataFrame(
        {
            "epoch": range(1, epochs + 1),
            "loss": [1.0] * epochs,
            "val_loss": [0.9, 0.5, 0.7][:epochs],
        }
    )
    status = RunStatus(state, epoch=epochs, total_epochs=total, error=error)
    return train_monitor.RunView("r", "r", status, RunConfig(), history, None, True)


def test_the_ending_is_explained_when_the_state_alone_does_not_say_it() -> None:
    assert "Stopped on request after 2 of 30" in train_monitor.ending_note(_ended("stopped", 2, 30))
    assert train_monitor.ending_note(_ended("stopped", 2, 30, error="Killed.")) is None
    assert "Finished early, after 3 of 30" in train_monitor.ending_note(_ended("finished", 3, 30))
    assert train_monitor.ending_note(_ended("finished", 3, 3)) is None


def test_the_scores_heading_names_the_epoch_whose_weights_were_kept() -> None:
    assert "weights of epoch 2" in train_monitor.scores_heading(_ended("finished", 3, 3))


def test_the_page_looks_often_while_a_run_starts_less_once_it_moves_and_rarely_when_idle(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(tmp_path / "models"))
    paths = runs.new_run(RunConfig(backbone="custom", epochs=2))
    summaries = [_summary(paths.run_id, "running")]

    def every(**status) -> float:
        runs.write_status(paths, RunStatus("running", epoch=1, total_epochs=2, **status))
        return train_monitor.refresh_seconds(summaries)

    assert every() == train_monitor.STARTING_REFRESH_SECONDS  # no batch yet
    moving = every(batch=1, total_batches=10, running_loss=2.1, running_accuracy=0.2)
    assert moving == train_monitor.LIVE_REFRESH_SECONDS
    assert every(batch=10, total_batches=10) == train_monitor.LIVE_REFRESH_SECONDS  # validating
    assert train_monitor.refresh_seconds([_summary(paths.run_id, "finished")]) == 5.0
    assert train_monitor.refresh_seconds([]) == train_monitor.IDLE_REFRESH_SECONDS
    assert (
        train_monitor.STARTING_REFRESH_SECONDS
        < train_monitor.LIVE_REFRESH_SECONDS
        < train_monitor.IDLE_REFRESH_SECONDS
    )
