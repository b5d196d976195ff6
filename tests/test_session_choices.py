"""Per-session choices: one visitor's dataset (a ``?dataset=`` link, the sidebar) stays in
their session; the shared default in ``settings.json`` changes only through "Make default"."""

from __future__ import annotations

from pathlib import Path

from helpers import image_bytes
from streamlit.testing.v1 import AppTest

from skinlab.app import settings

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
CUSTOM = "A folder on this machine…"


def _dataset(root: Path) -> Path:
    for split, label in (("Train", "melanoma"), ("Train", "nevus"), ("Test", "nevus")):
        (root / split / label).mkdir(parents=True, exist_ok=True)
        (root / split / label / "a.jpg").write_bytes(image_bytes(seed=len(label)))
    return root


def _session(dataset: Path | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if dataset is not None:
        at.query_params["dataset"] = str(dataset)
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_linked_dataset_stays_in_its_session_until_made_default(tmp_path, monkeypatch):
    monkeypatch.setenv("SKINLAB_DATA_DIR", str(tmp_path / "data"))
    mine = _dataset(tmp_path / "data" / "mine")
    first = _session(mine)
    assert first.session_state["dataset_root"] == str(mine)
    assert not settings.settings_file().exists()  # nothing shared was written

    second = _session()
    assert second.session_state["dataset_root"] != str(mine)
    assert second.sidebar.selectbox(key="dataset_choice").value != CUSTOM

    next(b for b in first.sidebar.button if b.label == "Make default").click().run()
    assert settings.load()["dataset_path"] == str(mine)
    third = _session()
    assert third.session_state["dataset_root"] == str(mine)
    assert not [b for b in third.sidebar.button if b.label == "Make default"]  # already it
