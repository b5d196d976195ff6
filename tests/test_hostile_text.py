"""Text an attacker chooses (an upload's file name, a run's error or name) is shown as the
characters it is: no markdown link or image, so the browser fetches nothing and nobody is
offered a link. Rendered with a CommonMark parser, as the browser would."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import open_app_page
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from skinlab.app import ui
from skinlab.bench.workspace import environ
from skinlab.core import runs
from skinlab.core.config import RunConfig

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
IMAGE_NAME = "![x](http://example.invalid/a.png)"
LINK = "[click](http://evil.invalid)"


def _html(at: AppTest) -> str:
    """Every markdown-rendering element of the page, rendered."""
    shown = [*at.markdown, *at.caption, *at.warning, *at.error, *at.success, *at.info]
    html = "\n".join(MarkdownIt("commonmark").render(e.value) for e in shown)
    return html.replace("\u2060", "")  # the invisible joiner that breaks bare links (ui.literal)


@pytest.mark.parametrize(
    "text",
    [IMAGE_NAME, LINK, "<img src=http://evil.invalid/x>", "see http://evil.invalid or a@b.invalid"],
)
def test_literal_text_renders_no_link_image_or_html(text: str) -> None:
    html = MarkdownIt("commonmark").enable("linkify").render(ui.literal(text))
    assert "<a " not in html and "<img" not in html
    assert "evil.invalid" in html or "example.invalid" in html  # still shown, as text


def test_server_paths_are_shortened_in_error_sentences(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SKINLAB_DATA_DIR", str(tmp_path / "data"))
    text = ui.literal(f"{tmp_path / 'data' / 'isic' / 'a.jpg'} is corrupt.")
    assert text == "data/isic/a.jpg is corrupt."


@pytest.fixture(scope="module")
def trained(tmp_path_factory, session_dirs) -> tuple[runs.RunPaths, Path]:
    from skinlab.data.demo import generate_demo_dataset
    from skinlab.train.training import train

    demo = generate_demo_dataset(tmp_path_factory.mktemp("text-demo") / "demo", scale=0.3)
    config = RunConfig(data_root=str(demo), backbone="custom", image_size=32, epochs=1)
    with environ(SKINLAB_MODELS_DIR=session_dirs["models"]):
        return train(config).paths, demo


def test_upload_file_names_are_shown_literally(trained) -> None:
    _, demo = trained
    lesion = next(iter(sorted((demo / "Test" / "melanoma").glob("*.jpg")))).read_bytes()
    at = open_app_page(demo, "pages/predict.py")
    at.file_uploader(key="predict_uploads").set_value(
        [
            (f"{IMAGE_NAME}.jpg", lesion, "image/jpeg"),
            (f"{LINK}.jpg", b"not an image", "image/jpeg"),
        ]
    ).run()
    assert not at.exception, at.exception
    html = _html(at)
    assert "<img" not in html and "<a " not in html
    assert IMAGE_NAME in html and LINK in html  # both names are there, as typed


def test_a_runs_error_and_name_are_shown_literally_on_manage(trained) -> None:
    _, demo = trained
    failed = runs.new_run(RunConfig(backbone="custom", name=f"{IMAGE_NAME} run"))
    runs.write_status(failed, runs.RunStatus("failed", error=f"Out of memory; {LINK}."))
    at = open_app_page(demo, "pages/runs.py")
    at.selectbox(key="manage_run").set_value(failed.run_id).run()
    assert not at.exception, at.exception
    html = _html(at)
    assert "<img" not in html and "<a " not in html
    assert LINK in html
