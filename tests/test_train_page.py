"""AppTests of the Train page with the real library: the form, presets, and real background
runs on the small demo dataset (launched, streamed, stopped, watched from a second tab).

Every test gets its own models folder; whatever training it started is killed at the end.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from helpers import open_app_page
from streamlit.testing.v1 import AppTest

from skinlab.app import run_panel, train_form, train_monitor
from skinlab.app.train_fields import FIELDS
from skinlab.core import atomic, runs
from skinlab.core.config import PRESETS, RunConfig
from skinlab.core.manifest import Manifest
from skinlab.core.processes import is_alive
from skinlab.jobs import manager
from skinlab.model import weights
from skinlab.model.weights import WeightsUnavailableError

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
PAGE = "pages/train.py"
WIDGET_KINDS = ("selectbox", "number_input", "radio", "slider", "toggle", "text_input")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skinlab.data.demo import generate_demo_dataset

    return generate_demo_dataset(tmp_path_factory.mktemp("train-page") / "demo", scale=0.3)


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "models"
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(folder))
    yield folder
    for paths in runs.list_runs(folder):  # no training may outlive its test
        pid = runs.read_status(paths).supervisor_pid  # leads its own process group
        if pid and is_alive(pid):
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)


def open_page(dataset: Path) -> AppTest:
    """A fresh browser tab on the Train page (the router draws the sidebar first)."""
    return open_app_page(dataset, PAGE)


def watched(at: AppTest) -> str:
    """The run id the "Run to watch" picker shows."""
    return next(s.value for s in at.selectbox if s.key and s.key.startswith("train_pick_"))


def widget_values(at: AppTest) -> dict:
    return {w.key: w.value for kind in WIDGET_KINDS for w in getattr(at, kind) if w.key}


def launch(at: AppTest, **numbers: int) -> runs.RunPaths:
    """Fill in ``numbers`` on the Fast CPU preset, press Start and return the new run."""
    at.button(key="preset_quick").click().run()
    for name, value in numbers.items():
        at.number_input(key=f"train_{name}").set_value(value)
    began = time.monotonic()
    at.button(key="train_start").click().run()
    assert time.monotonic() - began < 15, "Start must not wait for training"
    assert not at.exception and not at.error, [e.value for e in at.error]
    return runs.resolve_run(at.session_state["train_run"])


def wait_for(at: AppTest, predicate: Callable[[], bool], timeout: float = 60) -> None:
    """Re-run the page (as its live fragment does) until ``predicate`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, at.exception
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out; page says {texts(at)}")


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [p.proto.text for p in at.get("progress")] + [e.value for e in at.error]
    parts += [w.value for w in at.warning]
    return " | ".join(parts)


def state_badge(at: AppTest) -> str | None:
    badges = [m.value for m in at.markdown if "-badge[" in m.value]
    return badges[0].split("[", 1)[1].rstrip("]") if badges else None


def test_form_offers_every_run_option_and_presets_fill_it(demo: Path, models: Path) -> None:
    at = open_page(demo)
    assert "synthetic demo data" in texts(at)
    assert widget_values(at)["train_epochs"] == PRESETS["quick"]["epochs"]  # the default
    at.selectbox(key="train_backbone").set_value("mobilenetv2").run()
    cached = train_form.imagenet_weights_cached("mobilenetv2", 64)
    assert widget_values(at)["train_weights"] == ("imagenet" if cached else "none")
    at.radio(key="train_optimizer").set_value("sgd").run()
    # The feature-cache options only apply to a frozen ImageNet backbone.
    frozen_only = set() if cached else {"train_feature_cache", "train_augmented_views"}
    assert {f.key for f in FIELDS} - frozen_only <= set(widget_values(at))
    assert "MobileNetV2" in texts(at)  # the backbone's description

    at.button(key="preset_notebook").click().run()
    assert "Preset **Reproduce the notebook** applied" in at.success[0].value
    assert "180 px · 30 epochs" in at.success[0].value  # what it set, not just its name
    values = widget_values(at)
    for name, value in PRESETS["notebook"].items():
        if f"train_{name}" in values:
            assert values[f"train_{name}"] == value, name
    assert "train_weights" not in values  # the notebook CNN has no ImageNet weights
    assert "train_fine_tune_layers" not in values
    assert "preset 'quick'" in texts(at) and "Best accuracy" in texts(at)
    assert len(at.get("plotly_chart")) == 1  # class counts before/after
    assert len(at.get("image")) == 3  # the originals, then two augmented views
    at.number_input(key="train_epochs").set_value(3).run()
    assert not at.success  # edited since: the form no longer holds the preset

    at.button(key="preset_notebook-no-aug").click().run()
    assert "Preset **Watch it overfit** applied" in at.success[0].value
    values = widget_values(at)
    assert values["train_augmentation"] == "none" and values["train_epochs"] == 30
    assert values["train_backbone"] == "custom" and values["train_image_size"] == 180


def test_start_trains_in_the_background_and_the_page_streams_it_to_finished(
    demo: Path, models: Path
) -> None:
    at = open_page(demo)
    paths = launch(at, image_size=32, epochs=1, batch_size=16)
    status = manager.refresh(paths)
    assert is_alive(status.supervisor_pid) and status.supervisor_pid != os.getpid()
    seen: set[str] = set()

    def finished() -> bool:
        seen.update(p.proto.text.split(" ")[0] for p in at.get("progress"))
        return state_badge(at) == "finished"

    wait_for(at, finished)
    assert seen & {"Starting:", "Epoch", "Training"}, "no progress was streamed"
    assert len(at.get("plotly_chart")) >= 3  # loss and accuracy curves, class counts
    scores = {m.label for m in at.metric}
    assert {"Balanced accuracy", "Macro-F1", "Melanoma sensitivity"} <= scores
    assert not any(p.proto.text for p in at.get("progress"))
    at.button(key="run_use").click().run()
    assert at.session_state["model_run"] == paths.run_id
    assert "the model the Predict page uses" in texts(at)

    # Leaving the page and coming back shows the same run and the form as it was.
    at.switch_page("pages/explore.py").run()
    at.switch_page(PAGE).run()
    assert watched(at) == paths.run_id
    assert state_badge(at) == "finished"
    assert widget_values(at)["train_image_size"] == 32
    table = at.dataframe[0].value
    assert table["run id"].tolist() == [paths.run_id] and table["state"][0] == "finished"
    assert at.dataframe[0].proto.placeholder == "—"  # a missing score is a dash, not "None"


def test_a_second_tab_shows_the_same_run_and_its_stop_button_ends_it_stopped(
    demo: Path, models: Path
) -> None:
    first = open_page(demo)
    paths = launch(first, image_size=32, epochs=300, batch_size=16)
    second = open_page(demo)  # a new session: no state but the files
    assert watched(second) == paths.run_id
    wait_for(second, lambda: len(runs.read_history(paths)) >= 1)
    wait_for(second, lambda: any(m.label.startswith("Training accuracy") for m in second.metric))

    second.button(key="run_stop").click().run()
    assert manager.refresh(paths).state in ("stopping", "stopped")
    wait_for(first, lambda: state_badge(first) == "stopped")
    assert "run_resume" in [b.key for b in first.button]
    assert {"Balanced accuracy", "Macro-F1"} <= {m.label for m in first.metric}
    assert len(runs.read_history(paths)) < 300


def test_a_second_stop_click_kills_the_run_at_once(demo: Path, models: Path) -> None:
    at = open_page(demo)
    paths = launch(at, image_size=32, epochs=300, batch_size=16)
    pid = manager.refresh(paths).supervisor_pid
    wait_for(at, lambda: len(runs.read_history(paths)) >= 1)  # a whole epoch to resume from
    at.button(key="run_stop").click().run()
    assert at.button(key="run_stop").label == "Force stop now"
    at.button(key="run_stop").click().run()
    assert state_badge(at) == "stopped" and "second stop request" in texts(at)
    assert not is_alive(pid)
    assert "run_resume" in [b.key for b in at.button]


def test_offline_imagenet_weights_are_one_sentence_and_start_nothing(
    demo: Path, models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(backbone: str, size: int) -> Path:
        raise WeightsUnavailableError(f"ImageNet weights for {backbone} are not cached.")

    monkeypatch.setattr(weights, "ensure_imagenet_weights", offline)
    at = open_page(demo)
    at.selectbox(key="train_backbone").set_value("mobilenetv2").run()
    at.radio(key="train_weights").set_value("imagenet").run()
    at.button(key="train_start").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["ImageNet weights for mobilenetv2 are not cached."]
    assert runs.list_runs(models) == []


@pytest.mark.parametrize(
    ("layout", "sentence"),
    [
        ({"Train": {"melanoma": 3}}, "at least two classes"),
        ({"Test": {"melanoma": 2, "nevus": 2}}, "no readable Train images"),
    ],
)
def test_a_dataset_that_cannot_be_trained_on_is_one_sentence(
    make_dataset_folder, models: Path, layout: dict, sentence: str
) -> None:
    at = open_page(make_dataset_folder(layout))
    at.button(key="train_start").click().run()
    assert not at.exception
    assert sentence in at.error[0].value
    assert runs.list_runs(models) == []


def fake_run(state: str, error: str | None = None, *, usable: bool = False) -> runs.RunPaths:
    """A run folder in ``state`` without training (what the page reads is only files)."""
    paths = runs.new_run(RunConfig(backbone="custom", epochs=2))
    runs.append_history(
        paths,
        {
            "epoch": 1,
            "loss": 1.2,
            "accuracy": 0.4,
            "val_loss": 1.3,
            "val_accuracy": 0.35,
            "learning_rate": 0.01,
            "phase": "train",
        },
    )
    runs.write_status(paths, runs.RunStatus(state, epoch=1, total_epochs=2, error=error))
    if usable:
        atomic.write_json(
            paths.metrics, {"validation": {"balanced_accuracy": 0.3, "macro_f1": 0.2}}
        )
        runs.write_manifest(paths, Manifest("custom", ("a", "b"), 32))
    time.sleep(1.01)  # run ids have one-second resolution: keep the order certain
    return paths


def test_use_this_model_makes_a_finished_run_the_active_model(demo: Path, models: Path) -> None:
    older, newer = fake_run("finished", usable=True), fake_run("finished", usable=True)
    at = open_page(demo)
    assert at.session_state["model_run"] == newer.run_id  # the sidebar's default
    assert watched(at) == newer.run_id
    picker = next(s for s in at.selectbox if s.key and s.key.startswith("train_pick_"))
    picker.set_value(older.run_id).run()
    assert watched(at) == older.run_id
    assert state_badge(at) == "finished" and "30.0%" in [m.value for m in at.metric]
    at.button(key="run_use").click().run()
    assert at.session_state["model_run"] == older.run_id
    assert "the model the Predict page uses" in texts(at)
    assert at.query_params["run"] == older.run_id  # a reload comes back to it


def test_a_link_with_a_run_id_opens_that_run(demo: Path, models: Path) -> None:
    older, _newer = fake_run("stopped", usable=True), fake_run("finished", usable=True)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["dataset"], at.query_params["run"] = str(demo), older.run_id
    at.run()
    at.switch_page(PAGE).run()
    assert watched(at) == older.run_id and state_badge(at) == "stopped"
    assert "Stopped on request" in texts(at)


def test_a_failed_run_without_a_saved_epoch_shows_its_sentence_and_no_resume_button(
    demo: Path, models: Path
) -> None:
    paths = fake_run("failed", "Loss became NaN at epoch 1, batch 3; lower the learning rate.")
    at = open_page(demo)
    assert state_badge(at) == "failed"
    assert at.error[0].value.startswith("Loss became NaN")
    assert "run_resume" not in [b.key for b in at.button]  # it would have nothing to resume
    with pytest.raises(manager.RunStateError, match="no saved epoch"):
        manager.resume_run(paths.run_id)  # what the CLI answers instead
    assert manager.refresh(paths).state == "failed"


def test_runs_table_has_human_headers_and_drops_columns_that_say_nothing() -> None:
    table = train_monitor.runs_table(
        [runs.RunSummary("20250101-000000-custom-aaaaaa", state="queued", total_epochs=3)]
    )
    config = run_panel.table_columns(table)
    assert config["run"]["label"] == "Run" and config["best val accuracy"]["label"]
    assert config["run id"] is None  # an unnamed run: the Run column already is its id
    assert config["error"] is None  # no run has an error
    named = table.assign(run="baseline", error="out of memory")
    assert run_panel.table_columns(named)["run id"] and run_panel.table_columns(named)["error"]


def test_a_run_stopped_before_its_first_whole_epoch_offers_no_resume_button(
    demo: Path, models: Path
) -> None:
    at = open_page(demo)
    paths = launch(at, image_size=32, epochs=300, batch_size=16)
    at.button(key="run_stop").click().run()
    at.button(key="run_stop").click().run()  # killed at once: usually before any epoch ends
    assert state_badge(at) == "stopped"
    # A Resume button exactly when a whole epoch was saved: never one that does nothing.
    whole_epochs = len(runs.read_history(paths))
    assert ("run_resume" in [b.key for b in at.button]) == (whole_epochs > 0)


@pytest.mark.parametrize("imbalance", ["balanced_sampling", "logit_adjustment"])
def test_the_issue_14_recipe_controls_reach_the_run_config(
    demo: Path, models: Path, monkeypatch: pytest.MonkeyPatch, imbalance: str
) -> None:
    from skinlab.core.errors import SkinlabError

    started: list[RunConfig] = []

    def launch(config: RunConfig, dataset, repeats: int = 1) -> runs.RunPaths:
        started.append(config)
        raise SkinlabError("Captured by the test; nothing was started.")

    monkeypatch.setattr(train_monitor, "launch", launch)
    at = open_page(demo)
    at.radio(key="train_optimizer").set_value("adamw").run()
    at.number_input(key="train_weight_decay").set_value(0.05)
    at.selectbox(key="train_schedule").set_value("one_cycle")
    at.selectbox(key="train_augmentation").set_value("dermoscopy")
    at.radio(key="train_imbalance").set_value(imbalance)
    at.slider(key="train_label_smoothing").set_value(0.1)
    at.toggle(key="train_ema").set_value(True)
    at.number_input(key="train_tta").set_value(8)
    at.selectbox(key="train_keep_weights").set_value("last")
    at.button(key="train_start").click().run()
    assert not at.exception, at.exception
    assert "Captured by the test" in texts(at)
    (config,) = started
    assert (config.optimizer, config.weight_decay, config.schedule) == ("adamw", 0.05, "one_cycle")
    assert (config.augmentation, config.imbalance) == ("dermoscopy", imbalance)
    assert (config.label_smoothing, config.ema, config.tta) == (0.1, True, 8)
    assert config.keep_weights == "last"


def test_the_page_readies_a_standby_only_while_no_run_is_going(
    demo: Path, models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[None] = []
    monkeypatch.setattr(manager, "ensure_standby", lambda: asked.append(None))
    open_page(demo)
    assert len(asked) == 1  # drawn with nothing going: TensorFlow loads while the user picks
    paths = fake_run("running")
    runs.write_status(paths, runs.RunStatus("queued", heartbeat=time.time()))
    asked.clear()
    open_page(demo)
    assert not asked


def test_repeat_x3_starts_three_runs_of_one_group_with_consecutive_seeds(
    demo: Path, models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runs are only created (queued), not trained: what is tested is what reaches them.
    monkeypatch.setattr(manager, "start_run", lambda config: runs.new_run(config))
    at = open_page(demo)
    at.button(key="preset_quick").click().run()
    at.radio(key="train_repeats").set_value(3).run()
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    configs = [runs.read_config(p) for p in reversed(runs.list_runs(models))]
    seed = PRESETS["quick"].get("seed", RunConfig().seed)
    assert [c.seed for c in configs] == [seed, seed + 1, seed + 2]
    assert len({c.repeat_group for c in configs}) == 1 and configs[0].repeat_group
    assert {c.epochs for c in configs} == {PRESETS["quick"]["epochs"]}
    assert watched(at) in {p.run_id for p in runs.list_runs(models)}


def test_a_seed_repeat_group_shows_mean_sd_bands_and_its_row_in_the_runs_table(
    demo: Path, models: Path
) -> None:
    from test_repeats import fake_group

    members = fake_group(3)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["dataset"], at.query_params["run"] = str(demo), members[0].run_id
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception and not at.error
    assert "**Seed repeats** (g-test): 3 runs" in texts(at)
    titles = [chart.proto.spec for chart in at.get("plotly_chart")]
    assert sum("mean ± sd over 3 seeds" in spec for spec in titles) == 2
    groups = [df.value for df in at.dataframe if "group" in df.value.columns]
    assert groups and groups[0].iloc[0]["best val accuracy"] == "60.0% ± 10.0% (n=3)"
