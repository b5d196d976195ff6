"""Streamlit glue shared by every page: the sidebar, the active dataset, cached scans and
errors shown as one sentence.

Pages import from here instead of touching files, Pillow or Keras themselves, so each
page stays a short function that reads widgets, calls the library and renders.

Text that comes from a file, a folder name or a visitor reaches the browser only through
:func:`literal` (markdown), :func:`plain` (plain-text widgets) or :func:`plain_figure` (Plotly).

Why one module: the sidebar, the active dataset and how outside text is shown are what every
page and view shares, and the sidebar is the first to need the text helpers.
"""

from __future__ import annotations

import gc
import html
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

import streamlit as st

from skinlab import NOT_A_MEDICAL_DEVICE
from skinlab.app import caches, catalog, settings
from skinlab.core import runs
from skinlab.core.confine import confine
from skinlab.core.errors import DatasetLayoutError, PathNotAllowedError, SkinlabError
from skinlab.core.paths import data_dir, models_dir
from skinlab.data.audit import AuditReport
from skinlab.data.discovery import Dataset, fingerprint

_CUSTOM = "A folder on this machine…"
_ROOT_KEY = "dataset_root"
_MODEL_KEY = "model_run"


def require_router() -> None:
    """Hand a page that Streamlit ran by itself back to the router (``streamlit_app.py``).

    Streamlit's first multipage design runs a file of a ``pages/`` folder on its own until
    some visit has run ``st.navigation``; so the first visit of a fresh server to a page's own
    address (a bookmark, a reload, a tab reconnecting after a restart) would get that page
    without the router's navigation and sidebar. The router clears Streamlit's flag for that
    design (``PagesManager.uses_pages_directory``) when it calls ``st.navigation``; a page
    that still finds it set on a session's first run was not run by the router, clears it
    the same way and reruns, and the router then serves the page the address names. Called
    first by every page.

    Only on a session's first run (no state yet), so no click is ever lost to the rerun:
    Streamlit's ``AppTest`` sets the flag again before each of its runs, and there a page
    after the first run keeps running by itself, as it always did in tests.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory and not st.session_state:
        PagesManager.uses_pages_directory = False
        st.rerun()


def load_dataset(root: str | Path) -> Dataset:
    """Scan ``root`` once per content change (cached across reruns and sessions)."""
    return caches.scan(str(root), fingerprint(root))


def load_scan(root: str | Path) -> tuple[Dataset, AuditReport]:
    """The scan and the audit of ``root``, each once per content change (cached across
    reruns and sessions); ``root`` is fingerprinted once, which on a warm rerun (one ``stat``
    per file) is most of the cost."""
    token = fingerprint(root)
    return caches.scan(str(root), token), caches.audit(str(root), token)


_modules_frozen = 0


def settle_heap() -> None:
    """Keep Streamlit's garbage collection after every run cheap; call at the end of a run.

    Streamlit runs a full ``gc.collect(2)`` after each script run, and its cost grows with
    every object alive: with TensorFlow imported (~400,000 objects) it took ~0.4 s on 2 cores,
    on every rerun of every page, far more than a warm Explore rerun itself. Whenever a run
    imported new modules, this collects once and freezes what survives (:func:`gc.freeze`),
    so later collections look only at objects made since. What is frozen is mostly modules
    and cached models that live as long as the process; an object frozen by chance that later
    dies in a reference cycle is not reclaimed, a bounded cost paid once per new import.
    """
    global _modules_frozen
    if len(sys.modules) > _modules_frozen:
        _modules_frozen = len(sys.modules)
        gc.collect()
        gc.freeze()


def dataset_sidebar() -> None:
    """Render the dataset and model pickers and the not-a-medical-device notice.

    Choices live in the session: one visitor's pick (or ``?dataset=/path`` link) never
    becomes another's. A new session starts on the shared default of
    :mod:`skinlab.app.settings`, which changes only through the sidebar's "Make default" button.
    A typed or linked folder is used only inside the folders
    :func:`skinlab.core.confine.allowed_roots` names; otherwise the sidebar says why and no
    dataset is active.
    """
    remembered = settings.load()
    requested = st.query_params.get("dataset") or (
        remembered.get("dataset_path") if remembered.get("dataset_choice") == _CUSTOM else None
    )
    if requested and "dataset_choice" not in st.session_state:
        st.session_state["dataset_choice"] = _CUSTOM
        st.session_state["dataset_path"] = requested
    with st.sidebar:
        entries = catalog.available_datasets()
        labels = [e.label for e in entries] + [_CUSTOM]
        if "dataset_choice" not in st.session_state and remembered.get("dataset_choice") in labels:
            st.session_state["dataset_choice"] = remembered["dataset_choice"]
        # Folder names are shown with plain(): one that is not UTF-8 cannot be sent as typed.
        choice = st.selectbox("Dataset", labels, key="dataset_choice", format_func=plain)
        if choice == _CUSTOM:
            typed = st.text_input(
                "Dataset folder",
                key="dataset_path",
                placeholder="/path/to/Skin cancer ISIC…",
                help="A folder holding Train/<class>/ and Test/<class>/ (or a folder wrapping it).",
            )
            root = _allowed_folder(typed.strip())
        else:
            entry = entries[labels.index(choice)]
            if entry.is_demo and not entry.root.exists():
                with st.spinner("Generating the synthetic demo data (first run only)…"):
                    catalog.default_dataset_root()
            root = str(entry.root)
        st.session_state[_ROOT_KEY] = _utf8_named(root)
        _model_picker(remembered)
        _default_button(remembered)
        st.caption(NOT_A_MEDICAL_DEVICE)


def _choices() -> dict:
    """This session's dataset and model, as :mod:`skinlab.app.settings` stores them; a
    dataset folder the sidebar refused (or none typed yet) is never offered to anyone."""
    state = st.session_state
    chosen = {}
    if state.get(_ROOT_KEY):
        path = state.get("dataset_path") if state.get("dataset_choice") == _CUSTOM else None
        chosen = {"dataset_choice": state.get("dataset_choice"), "dataset_path": path}
    if state.get(_MODEL_KEY):
        chosen["active_model"] = state[_MODEL_KEY]
    return chosen


def _default_button(remembered: dict) -> None:
    chosen = _choices()
    if all(remembered.get(key) == value for key, value in chosen.items()):
        return  # already the default: no button to wonder about
    st.button(
        "Make default",
        key="make_default",
        icon=":material/bookmark:",
        help="Open new sessions on this dataset and model; your choices otherwise stay yours.",
        on_click=settings.update,
        kwargs=chosen,
    )


def _allowed_folder(typed: str) -> str | None:
    """The typed or linked folder, resolved, or ``None`` (and the reason shown) when it lies
    outside the allowed folders or is no folder at all: a ``?dataset=`` link may name
    anything, and its text is never worth showing as the active dataset."""
    if not typed:
        return None
    try:
        folder = confine(typed, "The dataset folder")
        if not os.path.isdir(folder):  # never raises, even for a name too long
            raise DatasetLayoutError(
                f"The dataset folder {typed} does not exist; type the folder of a dataset or "
                "pick one in the list."
            )
    except (PathNotAllowedError, DatasetLayoutError) as exc:
        show_error(exc)
        return None
    return str(folder)


def _utf8_named(folder: str | None) -> str | None:
    """``folder``, or ``None`` (and why shown) when its name holds a byte that is not UTF-8:
    every table, chart and caption of a dataset carries its paths as text, and Streamlit
    sends text as UTF-8 only, so such a dataset could only fail later, on every page."""
    if folder is None or decodable(folder):
        return folder
    show_error(
        DatasetLayoutError(
            f"The folder name {folder} is not valid UTF-8 (shown with �), so the app cannot "
            "show its images; rename the folder and pick it again."
        )
    )
    return None


def decodable(name: str) -> bool:
    """Whether ``name`` (a path or folder name) is all text: False when a byte of it was not
    UTF-8, which Python keeps as a lone surrogate and no Streamlit message can carry."""
    return not _SURROGATES.search(name)


def usable_runs() -> list[runs.RunSummary]:
    """Summaries of runs that can predict (finished or stopped, with weights), newest first.

    Drawn on every page for every run, so no run's history or metrics is read: a picker
    needs the state and the model, and a damaged history does not stop a model predicting
    (the Runs page shows that run broken and why).
    """
    out = []
    for paths in runs.list_runs():
        summary = runs.run_summary(paths, scores=False)
        if summary.state in ("finished", "stopped") and paths.manifest.exists():
            out.append(summary)
    return out


def _model_picker(remembered: dict) -> None:
    options = [s.run_id for s in usable_runs()]
    if not options:
        st.session_state[_MODEL_KEY] = None
        st.caption("No trained model yet: train one on the Train page.")
        return
    if st.session_state.get("active_model") not in options:
        saved = remembered.get("active_model")
        st.session_state["active_model"] = saved if saved in options else options[0]
    chosen = st.selectbox("Model for predictions", options, key="active_model", format_func=plain)
    st.session_state[_MODEL_KEY] = chosen


def active_model() -> str | None:
    """The run id picked for predictions, or ``None`` when no run can predict yet."""
    return st.session_state.get(_MODEL_KEY)


def set_active_model(run_id: str) -> None:
    """Make ``run_id`` this session's model for predictions (the sidebar's "Make default"
    button makes it every new session's)."""
    st.session_state["active_model"] = run_id
    st.session_state[_MODEL_KEY] = run_id


def active_dataset_root() -> str | None:
    """The dataset root picked in the sidebar, or ``None`` when none is typed yet."""
    return st.session_state.get(_ROOT_KEY)


def show_error(error: SkinlabError) -> None:
    """Show a library error as the one sentence it is (never a traceback), as :func:`literal`
    text: it names files and folders, which an uploader or an archive chose."""
    st.error(literal(str(error)), icon=":material/error:")


# Markdown that could fetch or link elsewhere, or restyle the page: links and images need
# brackets, HTML and autolinks angle brackets, Streamlit directives (:red[...]) brackets
# too, math a dollar. Underscores stay: file names are full of them (ISIC_0024306.jpg) and
# inside a word they never start emphasis. Backticks stay: a code span shows its content
# as typed, and messages use them for commands.
_MARKDOWN = re.compile(r"([\\*\[\]<>$|#~]|:(?=//)|@|(?<=www)\.)", re.IGNORECASE)
# Streamlit's markdown (remark-gfm) finds bare links in the text *after* escapes are read, so
# "https\://evil.invalid" still became a link in the browser (seen by hand, issue 29). An
# invisible word joiner inside "://", after "www" and after "@" breaks the patterns GitHub's
# autolink literals need, and the text still reads as typed.
_AUTOLINK = re.compile(r"(?<=:)(?=\\?//)|(?<=www)(?=\\?\.)|(?<=@)", re.IGNORECASE)
_WORD_JOINER = "\u2060"
# Every character Python's str.splitlines() breaks at: a \r alone starts a new markdown line
# as surely as \n does.
_LINE_BREAKS = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
# A byte a file name could not decode as UTF-8 reaches Python as a lone surrogate
# (surrogateescape, PEP 383), which no UTF-8 encoder, so no Streamlit message, accepts.
_SURROGATES = re.compile("[\ud800-\udfff]")


def plain(text: object) -> str:
    """``text`` from files, file names, run folders or a visitor, as plain text any element
    can carry: one line, server paths shortened to ``data/...`` and ``models/...``, and each
    byte a file name could not decode shown as U+FFFD (the real name stays what the code
    uses). For elements that show text as typed: selectbox and multiselect options
    (``format_func=ui.plain``), table cells; anything that renders markdown takes
    :func:`literal`, a Plotly figure :func:`plain_figure`.
    """
    return _plain(text, _server_folders())


def _plain(text: object, folders: list[tuple[str, str]]) -> str:
    text = _LINE_BREAKS.sub(" ", str(text))
    for folder, short in folders:
        # Not inside a longer name: data-old/ or data.bak stay as they are.
        text = re.sub(re.escape(folder) + r"(?![\w-]|\.\w)", short, text)
    return _SURROGATES.sub("\ufffd", text)


def literal(text: object) -> str:
    """:func:`plain` ``text``, made safe for any element that renders markdown
    (``st.markdown``, ``st.error``, captions, titles, widget labels, radio options): shown as
    the characters it is.

    GitHub-style autolinks (``http://``, ``www.``, e-mail addresses) are broken by escaping
    too, so ``[click](http://evil.invalid)`` shows as typed and is no link.
    """
    return _AUTOLINK.sub(_WORD_JOINER, _MARKDOWN.sub(r"\\\1", plain(text)))


def _server_folders() -> list[tuple[str, str]]:
    """``(absolute folder, short name)``, longest first, resolved spellings included."""
    pairs = {}
    for folder, short in ((data_dir(), "data"), (models_dir(), "models")):
        for spelling in (str(folder), os.path.realpath(folder)):
            pairs[spelling.rstrip("/")] = short
    return sorted(pairs.items(), key=lambda pair: -len(pair[0]))


# What a Plotly figure shows of its data: trace names (the legend), category values (tick
# labels and hover values), texts and the custom data hover templates insert.
_FIGURE_TEXT = ("name", "x", "y", "text", "hovertext", "customdata", "labels")
_ESCAPED = "_skinlab_plain"
_BR_ESCAPED = html.escape("<br>")
_FIGURE_LOCK = threading.Lock()


def plain_figure(figure: Any) -> Any:
    """``figure`` (a Plotly figure, changed in place and returned) with every text it shows
    from its data, axes, annotations and titles escaped: ``st.plotly_chart(ui.plain_figure(f))``.
    Call it where the figure is drawn: a figure shared through ``st.cache_resource`` is
    escaped once (marked, under a lock), never twice.

    Plotly draws a subset of HTML in all of them, whatever the field: ``<a href>`` links
    (http, https, mailto), ``<b>``, ``<span style>``, ``<br>`` (and ``\\n`` as ``<br>``), and
    decodes entities; markdown means nothing to it. Text is :func:`plain` and then ``&``,
    ``<`` and ``>`` become entities, which Plotly shows as the characters they are; only
    ``<br>`` stays, a line break being all it can do (figures wrap long class names with it,
    as tick texts).
    """
    with _FIGURE_LOCK:
        if not getattr(figure, _ESCAPED, False):
            _escape_figure(figure)
            setattr(figure, _ESCAPED, True)  # Plotly allows attributes starting with "_"
    return figure


#: What a hover template may keep: Plotly's placeholders, line breaks and the <extra> box.
_TEMPLATE_PARTS = re.compile(r"(%\{[^}]*\}|<br>|<extra>|</extra>)")


def _escape_template(template: str, escape: Any) -> str:
    """A hover template with its literal text escaped: Plotly Express writes data values into
    it (``Run=<the run's name>`` for a trace coloured by run), not only placeholders."""
    parts = _TEMPLATE_PARTS.split(template)
    return "".join(part if i % 2 else escape(part) for i, part in enumerate(parts))


def _escape_figure(figure: Any) -> None:
    folders = _server_folders()

    def escape(value: Any) -> Any:
        if isinstance(value, str):
            return html.escape(_plain(value, folders), quote=False).replace(_BR_ESCAPED, "<br>")
        if getattr(value, "dtype", None) is not None and value.dtype.kind not in "OUS":
            return value  # numbers and dates: nothing Plotly could read as markup
        if isinstance(value, list | tuple) or hasattr(value, "dtype"):
            return [escape(item) for item in value]
        return value

    for trace in figure.data:
        for field in _FIGURE_TEXT:
            if field in trace and trace[field] is not None:
                trace[field] = escape(trace[field])
        if "hovertemplate" in trace and isinstance(trace.hovertemplate, str):
            trace.hovertemplate = _escape_template(trace.hovertemplate, escape)
    figure.for_each_annotation(lambda note: note.update(text=escape(note.text)))
    for axes in (figure.for_each_xaxis, figure.for_each_yaxis):
        axes(lambda axis: axis.update(title_text=escape(axis.title.text)))
        axes(lambda axis: axis.update(ticktext=escape(axis.ticktext)))
        # A category order names the escaped values, or Plotly would add them as new ones.
        axes(lambda axis: axis.update(categoryarray=escape(axis.categoryarray)))
    figure.update_layout(
        title_text=escape(figure.layout.title.text),
        legend_title_text=escape(figure.layout.legend.title.text),
    )
