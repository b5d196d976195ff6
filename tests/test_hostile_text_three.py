"""Round two of hostile text, the places the shared helpers did not reach (issue 29, items 7,
8 and 14): run names and class names in the Runs page's figures, pickers and captions, a
confusion-matrix click on an escaped class name, a ``metrics.json`` gate summary with a rate
it could not measure, file names that are not UTF-8 inside a dataset, formulas in the CLI's
CSV export, and how many files one upload may hold."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import test_hostile_text_two
from helpers import image_bytes
from markdown_it import MarkdownIt
from test_hostile_text_two import HTML_LINK, PAGES, _dataset, _session

from skinlab.app import compare, gallery, ui
from skinlab.data.audit import audit_dataset
from skinlab.data.discovery import discover, fingerprint
from skinlab.jobs.manager import rename_run
from skinlab.predict.ood_report import summary_text

# The trained run of round two's tests, trained once more for this module (a fixture).
trained_run = test_hostile_text_two.trained_run


# --- a gate summary with a rate it could not measure (item 13) ---------------------------------


def test_a_gate_summary_with_unmeasured_rates_reads_as_n_a_not_a_crash() -> None:
    # As a run trained on a 2-class dataset with 3 images per class writes it.
    summary = {
        "held_out_false_alarm": None,
        "lesions": 3,
        "detection": None,
        "negatives": "many",
        "detection_by_family": {"photo": None, "texture": 0.5, "[x](https://evil.invalid)": 1.0},
    }
    text = summary_text(summary, text=lambda name: name.replace("[", "\\["))
    assert "**n/a** of 3" in text and "of n/a" in text and "photo n/a" in text
    assert "texture 50%" in text and "\\[x]" in text
    assert "n/a" in summary_text({"lesions": 10**5000, "detection_by_family": [1]})


# --- file and folder names that are not UTF-8 inside a dataset (item 8) -----------------------


def _with_undecodable_names(root: Path) -> Path:
    """``root`` (a dataset) plus a class folder and a file whose names hold the byte 0xff."""
    raw = os.fsencode(root)
    os.mkdir(raw + b"/Train/bad\xffclass")
    with open(raw + b"/Train/bad\xffclass/a.jpg", "wb") as out:
        out.write(image_bytes(seed=99))
    with open(raw + b"/Train/melanoma/bad\xffname.jpg", "wb") as out:
        out.write(image_bytes(seed=98))
    return root


def test_fingerprint_of_a_dataset_with_undecodable_names_changes_with_them(
    tmp_path: Path,
) -> None:
    root = _with_undecodable_names(_dataset(tmp_path / "ds"))
    before = fingerprint(root)
    os.utime(os.fsencode(root) + b"/Train/melanoma/bad\xffname.jpg", ns=(1, 1))
    assert fingerprint(root) != before


def test_a_dataset_holding_undecodable_names_crashes_no_page(tmp_path: Path) -> None:
    root = _with_undecodable_names(_dataset(tmp_path / "ds"))
    for page in PAGES:
        at = _session(root, page=page)  # which asserts that no exception was shown
        assert at.session_state["dataset_root"] == str(root)


def test_the_scan_skips_undecodable_names_with_a_note_that_is_text(tmp_path: Path) -> None:
    root = _with_undecodable_names(_dataset(tmp_path / "ds"))
    dataset = discover(root, workers=1)
    assert len(dataset.table) == 8  # the four readable images of each class, no other
    skipped = [n for n in dataset.notes if "not valid UTF-8" in n.reason]
    assert len(skipped) == 2
    assert all("\ufffd" in n.path and n.path.encode("utf-8") for n in skipped)


# --- how many files one upload may hold (item 5) ----------------------------------------------


class _Upload:
    """A stand-in for Streamlit's ``UploadedFile`` that counts reads."""

    reads = 0

    def __init__(self, name: str) -> None:
        self.name = name

    def getvalue(self) -> bytes:
        _Upload.reads += 1
        return image_bytes(seed=1)


def test_an_upload_of_too_many_files_is_refused_in_one_sentence_before_any_is_read() -> None:
    from skinlab.app.predict_view import MAX_UPLOAD_FILES, TooManyFilesError, uploaded_items

    _Upload.reads = 0
    with pytest.raises(TooManyFilesError, match=f"at most {MAX_UPLOAD_FILES} are predicted"):
        uploaded_items([_Upload(f"{i}.jpg") for i in range(MAX_UPLOAD_FILES + 1)])
    assert _Upload.reads == 0
    items = uploaded_items([_Upload(f"{i}.jpg") for i in range(MAX_UPLOAD_FILES)] + [None])
    assert len(items) == MAX_UPLOAD_FILES == _Upload.reads


# --- formulas in the CLI's CSV export (item 14) -----------------------------------------------


def test_the_cli_csv_export_shows_formula_like_names_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skinlab import cli
    from skinlab.core import runs
    from skinlab.predict import predictor

    class _Predictor:
        class_names = ("melanoma", "nevus")

        def predict_paths(self, images: list, tta: int = 1) -> list:
            return [predictor.PredictionError(str(p), "-1 is no image") for p in images]

    monkeypatch.setattr(runs, "resolve_run", lambda run: run)
    monkeypatch.setattr(predictor, "load_predictor", lambda run: _Predictor())
    out = tmp_path / "p.csv"
    names = ['=HYPERLINK("https://evil.invalid","x").jpg', "@SUM(1).jpg", "+1.jpg", "ok.jpg"]
    cli.main(["predict", "some-run", *names, "--csv", str(out), "--json"])
    with out.open(newline="") as table:
        cells = [(row["path"], row["error"]) for row in csv.DictReader(table)]
    assert [path for path, _ in cells] == ["'" + names[0], "'@SUM(1).jpg", "'+1.jpg", "ok.jpg"]
    assert all(error == "'-1 is no image" for _, error in cells)


# --- the Runs page: run names and class names (item 7) ----------------------------------------


def test_a_run_named_in_html_is_text_in_every_runs_page_figure_picker_and_caption(
    trained_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = trained_run.parents[1]
    for folder in ("data", "models"):  # the run's own, where it trained
        monkeypatch.setenv(f"SKINLAB_{folder.upper()}_DIR", str(base / folder))
    rename_run(trained_run.name, HTML_LINK + "\rsecond line")
    at = _session(base / "data" / "demo", page="pages/runs.py")
    at.multiselect(key="compare_runs").set_value([trained_run.name]).run()
    assert not at.exception, at.exception
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    titles = [json.dumps(s["layout"].get("title")) for s in specs]
    assert sum("Validation accuracy" in t or "Validation loss" in t for t in titles) == 2
    assert sum("&lt;a href=" in t for t in titles) >= 1  # the confusion matrix's
    for spec in specs:
        fields = ("name", "x", "y", "text", "customdata", "hovertemplate")
        shown = [{f: t.get(f) for f in fields} for t in spec["data"]]
        shown = json.dumps([shown, spec["layout"].get("title")])
        assert "<a " not in shown and "\\r" not in shown, shown
    curves = [s for s, t in zip(specs, titles, strict=True) if "Validation accuracy" in t]
    assert any(t.get("name", "").startswith("&lt;a href=") for t in curves[0]["data"])
    for key in ("manage_run", "gallery_run"):
        options = at.selectbox(key=key).options
        assert options and not [o for o in options if "\r" in o], options


def test_a_click_on_an_escaped_confusion_matrix_names_the_runs_own_classes() -> None:
    names = ["<b>bold</b> & co", "nevus"]
    figure = ui.plain_figure(compare.confusion_figure(np.eye(2), names))
    marker = figure.data[1]
    point = {"x": marker.x[1], "y": marker.y[1]}  # true <b>bold</b>, predicted nevus
    assert point["y"] == "&lt;b&gt;bold&lt;/b&gt; &amp; co"
    assert compare.clicked_cell({"selection": {"points": [point]}}) == (names[0], "nevus")


def test_class_names_in_the_imbalance_sentences_are_text(tmp_path: Path) -> None:
    name = "![x](evil.invalid)[Sign in](evil.invalid)"
    root = _dataset(tmp_path / "ds", classes=("nevus",))
    _dataset(root, classes=(name,))
    (root / "Train" / name / "Train_9.jpg").write_bytes(image_bytes(seed=77))
    (sentence, *_) = gallery.imbalance_sentences(audit_dataset(discover(root, workers=1)))
    html = MarkdownIt("commonmark").render(sentence)
    assert "<a " not in html and "<img" not in html and "Sign in" in html
