"""AppTests: the app starts on the synthetic demo with no dataset configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def test_app_starts_on_demo_dataset_and_shows_nine_classes(app: AppTest) -> None:
    assert app.title[0].value == "Explore the dataset"
    assert app.metric[0].label == "Classes" and app.metric[0].value == "9"
    assert "synthetic demo data" in " ".join(c.value for c in app.caption)
    assert len(app.dataframe[0].value) == 9


def test_sidebar_says_it_is_not_a_medical_device(app: AppTest) -> None:
    assert any("not a medical device" in c.value for c in app.sidebar.caption)


def test_folder_that_is_not_a_dataset_shows_one_clear_sentence(tmp_path) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["dataset"] = str(tmp_path / "nothing")
    at.run()
    assert not at.exception
    assert at.sidebar.text_input(key="dataset_path").value == str(tmp_path / "nothing")
    assert "does not exist" in at.error[0].value


def test_real_dataset_folder_given_by_link_is_explored(make_dataset_folder) -> None:
    root = make_dataset_folder({"Train": {"melanoma": 2, "nevus": 3}, "Test": {"nevus": 1}})
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["dataset"] = str(root)
    at.run()
    assert not at.exception
    assert at.metric[0].value == "2" and at.metric[1].value == "6"


@pytest.mark.parametrize("page", ["pages/train.py", "pages/predict.py", "pages/runs.py"])
def test_every_page_renders_without_exception(app: AppTest, page: str) -> None:
    app.switch_page(page).run()
    assert not app.exception
    assert app.title


def test_favicon_is_a_local_file_so_the_browser_fetches_nothing_from_the_internet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import streamlit as st

    seen: dict = {}
    real = st.set_page_config

    def spy(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(st, "set_page_config", spy)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    icon = seen["page_icon"]
    assert isinstance(icon, Path) and icon.is_file() and icon.suffix == ".png"
