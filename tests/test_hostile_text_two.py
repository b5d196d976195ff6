"""Round two of text an attacker chooses (issue 29, items 7, 8 and parts of 14): every string
from a file, a folder name or a visitor is shown as text everywhere (markdown, Plotly,
spreadsheets), a folder name that is not UTF-8 crashes no page, and a ``?dataset=`` link to
nothing is refused and never becomes anyone's default."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pandas as pd
import plotly.express as px
import pytest
from helpers import image_bytes
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from skinlab.app import settings, ui
from skinlab.app.predict_view import csv_bytes
from skinlab.app.review_view import VERSION_KEY
from skinlab.data import overrides

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
LINK = "[Sign in](https://evil.invalid/p)"
IMAGE = "![x](https://evil.invalid/x.png)"
HTML_LINK = '<a href="https://evil.invalid">click</a>'
PAGES = ("pages/explore.py", "pages/train.py", "pages/predict.py", "pages/runs.py")


def _render(text: str) -> str:
    return MarkdownIt("commonmark").enable("linkify").render(text)


def _html(at: AppTest) -> str:
    """Every markdown-rendering element of the page, sidebar included, rendered."""
    shown = [*at.markdown, *at.caption, *at.warning, *at.error, *at.success, *at.info]
    return "\n".join(_render(e.value) for e in shown)


def _dataset(root: Path, classes: tuple[str, ...] = ("melanoma", "nevus")) -> Path:
    """A tiny dataset: three Train and one Test image per class."""
    for n, label in enumerate(classes):
        for split, count in (("Train", 3), ("Test", 1)):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                (folder / f"{split}_{i}.jpg").write_bytes(image_bytes(seed=10 * n + i + 1))
    return root


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A data and models folder of this test's own (the session's hold other tests' files)."""
    dirs = {"data": tmp_path / "data", "models": tmp_path / "models"}
    for name, folder in dirs.items():
        folder.mkdir()
        monkeypatch.setenv(f"SKINLAB_{name.upper()}_DIR", str(folder))
    return dirs


def _session(dataset: str | Path | None = None, page: str | None = None, **query: str) -> AppTest:
    """A new session's first run (as a browser's first load), then ``page`` if given;
    ``query`` adds query parameters (``explore_tab="Review"``)."""
    at = AppTest.from_file(APP, default_timeout=300)
    if dataset is not None:
        at.query_params["dataset"] = str(dataset)
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, at.exception
    if page is not None:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


# --- ui.literal, ui.plain ------------------------------------------------------------------


@pytest.mark.parametrize("brk", ["\r", "\r\n"])  # CommonMark's line endings besides \n
def test_literal_keeps_text_on_one_line_whatever_the_line_break(brk: str) -> None:
    for text, block in (
        (f"run{brk}===", "<h1>"),
        (f"run{brk}- item", "<li>"),
        (f"a{brk}***", "<hr"),
    ):
        html = _render(ui.literal(text))
        assert block not in html and html.count("<p>") == 1, (text, html)


def test_plain_shows_each_undecodable_byte_as_a_replacement_character() -> None:
    name = os.fsdecode(b"run\xff\xfe")  # what os.listdir gives for a non-UTF-8 name
    assert ui.plain(name) == "run\ufffd\ufffd"
    assert ui.literal(f"[{name}]") == "\\[run\ufffd\ufffd\\]"
    ui.literal(name).encode("utf-8")  # Streamlit sends text as UTF-8


def test_server_paths_are_shortened_in_plain_text_too(home: dict[str, Path]) -> None:
    assert ui.plain(f"trained on {home['models'] / 'run-1'}") == "trained on models/run-1"


# --- Plotly --------------------------------------------------------------------------------


# The figure's own markup, and ids Plotly never draws (which trace groups with which).
_NOT_SHOWN = ("hovertemplate", "texttemplate", "legendgroup", "offsetgroup", "alignmentgroup")


def _figure_strings(figure) -> list[str]:
    found: list[str] = []

    def walk(value) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key not in _NOT_SHOWN:
                    walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(figure.to_plotly_json())
    return found


def test_plotly_names_ticks_and_hover_values_are_escaped_once() -> None:
    frame = pd.DataFrame(
        {"Run": [HTML_LINK, "b<b>old</b>"], "Class": [f"<i>{LINK}</i>", "nevus"], "Recall": [1, 0]}
    )
    figure = px.bar(frame, x="Class", y="Recall", color="Run", title=f"<a href='x'>{LINK}</a>")
    figure.update_xaxes(ticktext=["<span style='color:red'>a</span> b", "c"], tickvals=[0, 1])
    ui.plain_figure(figure)
    shown = _figure_strings(figure)
    assert not [s for s in shown if "<a" in s or "<b>" in s or "<span" in s or "<i>" in s]
    assert '&lt;a href="https://evil.invalid"&gt;click&lt;/a&gt;' in shown  # the legend
    ui.plain_figure(figure)  # a cached figure drawn again is not escaped again
    assert "b&lt;b&gt;old&lt;/b&gt;" in _figure_strings(figure)


def test_data_that_plotly_express_writes_into_hover_templates_is_escaped() -> None:
    frame = pd.DataFrame({"Run": [HTML_LINK], "Class": ["nevus"], "Recall": [1]})
    figure = px.bar(frame, x="Class", y="Recall", color="Run")
    assert HTML_LINK in figure.data[0].hovertemplate  # px copies the run's name in
    template = ui.plain_figure(figure).data[0].hovertemplate
    assert "<a" not in template and "&lt;a" in template
    assert "%{x}" in template and "<br>" in template  # placeholders and breaks still work


# --- CSV downloads -------------------------------------------------------------------------


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_start_with_a_quote() -> None:
    frame = pd.DataFrame(
        {
            "path": ['=HYPERLINK("https://evil.invalid","x").jpg', "+1.jpg", "@SUM(A1).jpg"]
            + ["-2.jpg", "\tx.jpg", "ISIC_1.jpg"],
            "confidence": [0.5, -0.25, 1.0, 0.0, 0.1, 0.2],
        }
    )
    rows = csv_bytes(frame).decode().splitlines()[1:]
    cells = [row.lstrip('"').split(",")[0] for row in rows]
    assert cells[:5] == ['\'=HYPERLINK(""https://evil.invalid""', "'+1.jpg", "'@SUM(A1).jpg"] + [
        "'-2.jpg",
        "'\tx.jpg",
    ]
    assert rows[5] == "ISIC_1.jpg,0.2" and rows[1].endswith(",-0.25")  # numbers stay numbers


# --- ?dataset= and captions ------------------------------------------------------------------


def test_a_linked_dataset_that_does_not_exist_is_refused_and_never_made_default(
    home: dict[str, Path],
) -> None:
    _dataset(home["data"] / "mine")  # another dataset in the list: one "Make default" could store
    linked = f"{home['data']}/{IMAGE} {LINK}"
    at = _session(linked, page="pages/explore.py")
    assert at.session_state["dataset_root"] is None
    html = _html(at)
    assert "<img" not in html and "<a " not in html
    assert not [c for c in at.caption if c.value.startswith("Dataset:")]
    first = _session(linked)
    (error,) = first.sidebar.error
    assert "does not exist" in error.value and "data/" in error.value
    assert str(home["data"]) not in error.value  # the server's path stays private
    assert not [b for b in first.sidebar.button if b.label == "Make default"]
    assert "dataset_path" not in settings.load()


def test_the_dataset_caption_shows_its_path_shortened_and_as_text(home: dict[str, Path]) -> None:
    root = _dataset(home["data"] / "mine [x](https://evil.invalid)")
    at = _session(root, page="pages/explore.py")
    (caption,) = [c.value for c in at.caption if c.value.startswith("Dataset:")]
    assert str(home["data"]) not in caption
    assert _render(caption).count("<a ") == 0 and "data/mine" in caption


def test_a_run_renamed_to_markdown_is_text_in_the_predict_and_train_captions(
    trained_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skinlab.jobs import manager

    base = trained_run.parents[1]  # its data/ (the demo it trained on) and models/
    monkeypatch.setenv("SKINLAB_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(base / "models"))
    manager.rename_run(trained_run.name, f"{IMAGE}\r# {LINK}")
    demo = base / "data" / "demo"
    predict = _session(demo, page="pages/predict.py")
    (caption,) = [c.value for c in predict.caption if c.value.startswith("Model:")]
    assert "data/demo" in caption.split("trained on")[1] and str(base) not in caption
    for at in (predict, _session(demo, page="pages/train.py")):
        html = _html(at)
        assert "<img" not in html and "<a " not in html and "<h1>" not in html
        assert "Sign in" in html  # the name is shown, as text


# --- non-UTF-8 folder names (item 8) ---------------------------------------------------------


def _undecodable_dataset(data: Path) -> str:
    """A dataset in ``data/`` whose folder name holds the byte 0xff; returns its name as
    Python lists it (with a lone surrogate)."""
    folder = os.fsencode(data) + b"/bad\xffname"
    os.mkdir(folder)
    _dataset(Path(os.fsdecode(folder)))
    return os.fsdecode(b"bad\xffname")


def test_a_dataset_folder_named_in_another_encoding_crashes_no_page(home: dict[str, Path]) -> None:
    name = _undecodable_dataset(home["data"])
    mine = _dataset(home["data"] / "mine")
    for page in PAGES:
        at = _session(mine, page=page)
        assert at.session_state["dataset_root"] == str(mine)
    at = _session(mine)
    assert "bad\ufffdname" in at.sidebar.selectbox(key="dataset_choice").options
    settings.update(dataset_choice=name)  # picked and made default: every new session opens it
    for page in PAGES:
        at = _session(page=page)
        assert at.session_state["dataset_root"] is None
    (error,) = _session().sidebar.error
    assert "bad\ufffdname is not valid UTF-8" in error.value


def test_a_run_folder_named_in_another_encoding_crashes_no_page(
    home: dict[str, Path], trained_run: Path
) -> None:
    mine = _dataset(home["data"] / "mine")
    shutil.copytree(os.fsencode(trained_run), os.fsencode(home["models"]) + b"/run\xff")
    shutil.copytree(trained_run, home["models"] / "readable")
    for page in PAGES:
        _session(mine, page=page)
    assert _session(mine).sidebar.selectbox(key="active_model").options == ["readable"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch run on a small demo, in a models folder of its own."""
    from skinlab.bench.workspace import environ
    from skinlab.core.config import RunConfig
    from skinlab.data.demo import generate_demo_dataset
    from skinlab.train.training import train

    base = tmp_path_factory.mktemp("text-two-run")
    demo = generate_demo_dataset(base / "data" / "demo", scale=0.3)
    config = RunConfig(data_root=str(demo), backbone="custom", image_size=32, epochs=1)
    with environ(SKINLAB_MODELS_DIR=str(base / "models"), SKINLAB_DATA_DIR=str(base / "data")):
        return train(config).paths.root


# --- the Train page's dataset version (item 14) ----------------------------------------------


def test_the_version_picker_starts_on_the_folder_as_it_is_not_on_anothers_clicks(
    home: dict[str, Path],
) -> None:
    root = _dataset(home["data"] / "mine")
    overrides.record(root, "Train/nevus/Train_0.jpg", "exclude", reason="another visitor")
    newest = overrides.current_version(root).id
    at = _session(root, page="pages/train.py")
    picker = at.selectbox(key=VERSION_KEY)
    assert picker.value == overrides.RAW and newest in picker.options[0]  # listed, not chosen
    picker.set_value(newest).run()
    at.switch_page("pages/explore.py").run()
    at.switch_page("pages/train.py").run()
    assert at.selectbox(key=VERSION_KEY).value == newest  # this session's choice stays


def _reviewable(root: Path) -> Path:
    """A tiny dataset with one review card: the same picture filed under both classes."""
    _dataset(root)
    for label in ("melanoma", "nevus"):
        (root / "Train" / label / "twice.jpg").write_bytes(image_bytes(seed=99))
    return root


def test_the_version_picker_starts_on_the_version_this_sessions_own_review_made(
    home: dict[str, Path],
) -> None:
    from skinlab.app.review_view import _key

    root = _reviewable(home["data"] / "mine")
    at = _session(root, explore_tab="Review")
    at.button(key=f"review_exclude_{_key('Train/nevus/twice.jpg')}").click().run()
    assert not at.exception, at.exception
    made = overrides.current_version(root).id
    assert made != overrides.RAW
    at.switch_page("pages/train.py").run()
    assert at.selectbox(key=VERSION_KEY).value == made


def test_who_and_label_from_the_overrides_file_are_text_in_the_decided_line(
    home: dict[str, Path],
) -> None:
    root = _reviewable(home["data"] / "mine")
    twice = "Train/nevus/twice.jpg"
    overrides.record(root, twice, "relabel", label=f"mel{IMAGE}", who=f"{LINK} # x")
    at = _session(root, explore_tab="Review")
    at.toggle(key="review_hide_decided").set_value(False).run()
    (decided,) = [s.value for s in at.success if s.value.startswith("Decided:")]
    html = _render(decided)
    assert "<a " not in html and "<img" not in html and "<h1>" not in html
    assert "Sign in" in html and "evil.invalid" in html


def test_a_run_named_in_html_is_text_in_the_runs_pages_recall_and_calibration_legends(
    trained_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from skinlab.jobs import manager

    base = trained_run.parents[1]
    monkeypatch.setenv("SKINLAB_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(base / "models"))
    manager.rename_run(trained_run.name, HTML_LINK)
    at = _session(base / "data" / "demo", page="pages/runs.py")
    at.multiselect(key="compare_runs").set_value([trained_run.name]).run()
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    calibration = [s for s in specs if "perfect calibration" in json.dumps(s)]
    recall = [
        s for s in specs if s["layout"].get("yaxis", {}).get("title", {}).get("text") == "Recall"
    ]
    for spec in calibration + recall:
        names = [trace.get("name", "") for trace in spec["data"]]
        assert not [n for n in names if "<a" in n], names
        assert [n for n in names if n.startswith("&lt;a href=")], names
    assert calibration and recall


# GitHub's autolink literals, as mdast-util-gfm-autolink-literal finds them in a text node:
# Streamlit's markdown looks for them after escapes are read, so "https\://x" was still a link
# in the browser (seen by hand against `streamlit run`, issue 29).
_GFM_AUTOLINKS = re.compile(
    r"(https?://|www(?=\.))[-.\w]+|[-.+\w]+@[-\w]+(?:\.[-\w]+)+", re.IGNORECASE
)


@pytest.mark.parametrize(
    "text",
    [IMAGE, LINK, "see https://evil.invalid/p", "www.evil.invalid", "write to a@evil.invalid"],
)
def test_literal_text_holds_no_bare_link_once_escapes_are_read(text: str) -> None:
    shown = re.sub(r"\\(.)", r"\1", ui.literal(text))  # what markdown reads the escapes as
    assert not _GFM_AUTOLINKS.search(shown), shown
    assert shown.replace("\u2060", "") == text  # and it still reads as typed
