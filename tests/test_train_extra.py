"""AppTests of the Train page's "Also train on": the other datasets of the data folder and a
typed HAM10000 folder become the run's ``extra_data``; the multi-collection preset warns when
there is nothing to add."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import image_bytes, open_app_page
from streamlit.testing.v1 import AppTest

from skinlab.app import train_extra, train_monitor
from skinlab.core import runs
from skinlab.core.config import RunConfig
from skinlab.core.errors import SkinlabError

PAGE = "pages/train.py"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skinlab.data.demo import generate_demo_dataset

    return generate_demo_dataset(tmp_path_factory.mktemp("train-extra") / "demo", scale=0.3)


@pytest.fixture
def other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A second dataset, ``other``, in the data folder the page lists."""
    data = tmp_path / "data"
    for i in range(2):
        folder = data / "other" / "Train" / "nevus"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"ISIC_{24400 + i:07d}.jpg").write_bytes(image_bytes(seed=i))
    monkeypatch.setenv("SKINLAB_DATA_DIR", str(data))
    return data / "other"


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[RunConfig]:
    """The configs Start would launch; nothing is started."""
    configs: list[RunConfig] = []

    def launch(config: RunConfig, dataset, repeats: int = 1) -> runs.RunPaths:
        configs.append(config)
        raise SkinlabError("Captured by the test; nothing was started.")

    monkeypatch.setattr(train_monitor, "launch", launch)
    return configs


def _warnings(at: AppTest) -> str:
    return " | ".join(w.value for w in at.warning)


def test_also_train_on_offers_the_other_datasets_and_sets_extra_data(
    demo: Path, other: Path, started: list[RunConfig]
) -> None:
    at = open_app_page(demo, PAGE)
    picker = at.multiselect(key=train_extra.PICKED_KEY)
    assert picker.options == ["other"]  # the data folder's other dataset, not the demo
    picker.set_value([str(other)]).run()
    at.button(key="train_start").click().run()
    assert not at.exception, at.exception
    (config,) = started
    assert config.data_root == str(demo) and config.extra_data == (str(other),)


def test_a_typed_ham_folder_is_extra_data_too(
    demo: Path, other: Path, started: list[RunConfig], tmp_path: Path
) -> None:
    ham = tmp_path / "ham"
    ham.mkdir()
    at = open_app_page(demo, PAGE)
    at.text_input(key=train_extra.TYPED_KEY).set_value(str(ham)).run()
    at.button(key="train_start").click().run()
    (config,) = started
    assert config.extra_data == (str(ham.resolve()),)


def test_multi_collection_without_a_second_collection_warns_and_still_starts(
    demo: Path, other: Path, started: list[RunConfig]
) -> None:
    at = open_app_page(demo, PAGE)
    at.button(key="preset_multi-collection").click().run()
    assert "multi-collection trains on two or more collections" in _warnings(at)
    assert "'Also train on'" in _warnings(at)
    at.button(key="train_start").click().run()
    (config,) = started  # a warning, not a refusal
    assert config.collection_balance and config.extra_data == ()
    at.multiselect(key=train_extra.PICKED_KEY).set_value([str(other)]).run()
    assert "multi-collection" not in _warnings(at)
