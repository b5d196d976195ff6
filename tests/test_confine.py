"""Path confinement: folders typed or linked in the app, import sources and run references
are used only inside the data and models folders and ``SKINLAB_EXTRA_DIRS``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import image_bytes
from streamlit.testing.v1 import AppTest

from skinlab.app.predict_view import predictor_for
from skinlab.app.train_monitor import load_run
from skinlab.core import runs
from skinlab.core.config import RunConfig
from skinlab.core.confine import allowed_roots, confine, confine_run, within
from skinlab.core.errors import PathNotAllowedError
from skinlab.core.manifest import Manifest
from skinlab.core.runs import RunNotFoundError

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Data and models folders of their own, a folder outside both, no extra folders."""
    dirs = {name: tmp_path / name for name in ("data", "models", "outside")}
    for folder in dirs.values():
        folder.mkdir()
    monkeypatch.setenv("SKINLAB_DATA_DIR", str(dirs["data"]))
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(dirs["models"]))
    monkeypatch.delenv("SKINLAB_EXTRA_DIRS", raising=False)
    return dirs


def _dataset(root: Path) -> Path:
    for split, label in (("Train", "melanoma"), ("Train", "nevus"), ("Test", "nevus")):
        (root / split / label).mkdir(parents=True, exist_ok=True)
        (root / split / label / "a.jpg").write_bytes(image_bytes(seed=len(label)))
    return root


def test_allowed_roots_are_data_models_and_the_extra_folders(home, monkeypatch) -> None:
    extra = [home["outside"] / "a", home["outside"] / "b"]
    monkeypatch.setenv("SKINLAB_EXTRA_DIRS", os.pathsep.join(map(str, extra)) + os.pathsep)
    assert allowed_roots() == [home["data"], home["models"], *extra]


def test_path_inside_the_data_folder_is_returned_resolved(home) -> None:
    assert confine(home["data"] / "isic" / ".." / "isic", "The folder") == home["data"] / "isic"


@pytest.mark.parametrize(
    "trick",
    ["{data}/../outside", "{data}/isic/../../../../etc", "/etc/passwd", "/", "~/"],
    ids=["dot-dot", "deep-dot-dot", "etc-passwd", "root", "home"],
)
def test_paths_leading_outside_are_refused_with_the_remedy(home, trick) -> None:
    path = trick.format(data=home["data"])
    with pytest.raises(PathNotAllowedError) as info:
        confine(path, "The dataset folder")
    message = str(info.value)
    assert message.startswith(f"The dataset folder {path} is outside the folders")
    assert str(home["data"]) in message and str(home["models"]) in message
    assert "SKINLAB_EXTRA_DIRS" in message and "python -m skinlab data import" in message


def test_symlink_inside_data_pointing_outside_is_refused(home) -> None:
    _dataset(home["outside"] / "private")
    (home["data"] / "link").symlink_to(home["outside"] / "private", target_is_directory=True)
    with pytest.raises(PathNotAllowedError, match="is outside the folders"):
        confine(home["data"] / "link" / "Train", "The dataset folder")


def test_extra_dirs_let_the_app_open_a_folder_in_place(home, monkeypatch) -> None:
    target = home["outside"] / "kaggle" / "isic"
    with pytest.raises(PathNotAllowedError):
        confine(target, "The dataset folder")
    monkeypatch.setenv("SKINLAB_EXTRA_DIRS", str(home["outside"] / "kaggle"))
    assert confine(target, "The dataset folder") == target
    with pytest.raises(PathNotAllowedError):  # a sibling sharing the prefix is not inside
        confine(home["outside"] / "kaggle-evil", "The dataset folder")


def _run(folder: Path) -> runs.RunPaths:
    return runs.new_run(RunConfig(backbone="custom"), root=folder)


def test_run_references_leading_outside_the_models_folder_are_refused(home) -> None:
    inside = _run(home["models"])
    assert confine_run(inside.run_id).root == inside.root
    outside = _run(home["outside"])
    (home["models"] / "sneaky").symlink_to(outside.root, target_is_directory=True)
    for ref in (
        str(outside.root),
        f"{home['models']}/../outside/{outside.run_id}",
        "../../etc",
        "..",
    ):
        with pytest.raises(PathNotAllowedError, match="pick a run listed in"):
            confine_run(ref)
    with pytest.raises(RunNotFoundError, match="sneaky"):  # a link in models/ is no run id
        confine_run("sneaky")
    for ui_entry in (predictor_for, load_run):  # what the Predict and Train pages call
        with pytest.raises(PathNotAllowedError):
            ui_entry(str(outside.root))


def _open(query: dict[str, str], page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("trick", ["/etc", "{data}/../outside/ds", "{data}/link"])
def test_dataset_link_outside_the_allowed_folders_is_refused_in_the_sidebar(home, trick):
    _dataset(home["outside"] / "ds")
    (home["data"] / "link").symlink_to(home["outside"] / "ds", target_is_directory=True)
    path = trick.format(data=home["data"])
    at = _open({"dataset": path})
    assert len(at.sidebar.error) == 1
    shown = path.replace(str(home["data"]), "data")  # server paths are shortened in the UI
    assert at.sidebar.error[0].value.startswith(f"The dataset folder {shown} is outside")
    assert not at.metric  # nothing of it was read
    assert "Type a dataset folder in the sidebar" in at.info[0].value


def test_dataset_link_inside_an_extra_folder_is_explored(home, monkeypatch) -> None:
    root = _dataset(home["outside"] / "ds")
    monkeypatch.setenv("SKINLAB_EXTRA_DIRS", str(home["outside"]))
    at = _open({"dataset": str(root)})
    assert not at.error
    assert at.metric[1].value == "3"


def test_import_from_a_path_outside_is_refused_and_nothing_is_copied(home) -> None:
    _dataset(home["outside"] / "ds")
    _dataset(home["data"] / "mine")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["dataset"] = str(home["data"] / "mine")
    at.session_state["explore_tab"] = "Import"
    at.run()
    at.text_input(key="import_path").input(str(home["outside"] / "ds")).run()
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert at.error[0].value.startswith(f"The zip or folder to import {home['outside']}")
    assert [p.name for p in home["data"].iterdir()] == ["mine"]


def test_run_query_parameter_with_dot_dot_shows_no_foreign_run(home) -> None:
    outside = _run(home["outside"])
    inside = _run(home["models"])
    _dataset(home["data"] / "mine")
    at = _open(
        {"dataset": str(home["data"] / "mine"), "run": f"../outside/{outside.run_id}"},
        "pages/train.py",
    )
    watched = [box.value for box in at.selectbox if box.label == "Run to watch"]
    assert watched == [inside.run_id]


def test_runs_gallery_never_opens_images_outside_the_allowed_folders(home) -> None:
    import pandas as pd

    from skinlab.app import compare

    inside = _dataset(home["data"] / "mine")
    outside = _dataset(home["outside"] / "ds")
    run = _run(home["models"])
    image = "Test/nevus/a.jpg"
    tricks = [str(outside / image), f"../../outside/ds/{image}", "Test/link/a.jpg"]
    (inside / "Test" / "link").symlink_to(outside / "Test" / "nevus", target_is_directory=True)
    rows = [{"path": p, "split": "Test", "true": "nevus", "predicted": "melanoma"} for p in tricks]
    rows.append({"path": image, "split": "Test", "true": "nevus", "predicted": "melanoma"})
    pd.DataFrame(rows).assign(confidence=0.9).to_csv(run.predictions, index=False)

    def record(data_root: Path) -> compare.RunRecord:
        manifest = Manifest("custom", ("nevus", "melanoma"), 64, data_root=str(data_root))
        return compare.RunRecord(run, runs.RunSummary(run.run_id), pd.DataFrame(), {}, manifest)

    images, _, unreadable = compare.gallery(compare.examples(record(inside), "Test"))
    assert (len(images), unreadable) == (1, 3)  # only data/mine/Test/nevus/a.jpg is opened
    images, _, unreadable = compare.gallery(compare.examples(record(outside), "Test"))
    assert (len(images), unreadable) == (0, 4)  # a manifest pointing outside opens nothing


def test_rename_through_a_linked_run_folder_is_refused_and_its_config_untouched(home) -> None:
    outside = _run(home["outside"])
    before = outside.config.read_bytes()
    (home["models"] / "sneaky").symlink_to(outside.root, target_is_directory=True)
    _dataset(home["data"] / "mine")
    at = _open({"dataset": str(home["data"] / "mine")}, "pages/runs.py")
    assert not at.exception, at.exception
    # A link in models/ is no run (runs.list_runs, runs.resolve_run): the page does not offer
    # it, and a rename by its name finds no run; a rename through it is refused by the write
    # path (skinlab.core.disk) in one sentence.
    assert not [o for s in at.selectbox for o in s.options if "sneaky" in str(o)]
    from skinlab.core.disk import UnsafeFileError
    from skinlab.jobs import manager

    with pytest.raises(RunNotFoundError, match="sneaky"):
        manager.rename_run("sneaky", "pwned")
    with pytest.raises(UnsafeFileError, match="'sneaky' there is a link"):
        manager.rename_run(home["models"] / "sneaky", "pwned")
    assert outside.config.read_bytes() == before


def test_dataset_dropdown_leaves_out_a_link_leading_outside(home) -> None:
    from skinlab.app.catalog import available_datasets

    _dataset(home["outside"] / "ds")
    _dataset(home["data"] / "mine")
    (home["data"] / "link").symlink_to(home["outside"] / "ds", target_is_directory=True)
    (home["data"] / "alias").symlink_to(home["data"] / "mine", target_is_directory=True)
    assert [e.name for e in available_datasets() if not e.is_demo] == ["alias", "mine"]
    at = _open({"dataset": str(home["data"] / "mine")})
    assert "link" not in at.sidebar.selectbox(key="dataset_choice").options


def test_null_byte_in_a_path_is_refused_in_one_sentence(home) -> None:
    nul = f"{home['data']}/isic\0/../../etc"
    with pytest.raises(PathNotAllowedError, match="holds a null character"):
        confine(nul, "The dataset folder")
    assert within(nul) is None
    with pytest.raises(PathNotAllowedError):
        confine_run("run\0id")


@pytest.mark.parametrize("where", ["query", "sidebar", "import"])
def test_null_byte_in_a_typed_path_is_one_sentence_not_a_crash(home, where) -> None:
    mine = _dataset(home["data"] / "mine")
    nul = f"{home['data']}/mi\0ne"
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["dataset"] = nul if where == "query" else str(mine)
    if where == "sidebar":  # what typing into the sidebar's folder box leaves
        at.session_state["dataset_choice"] = "A folder on this machine…"
        at.session_state["dataset_path"] = nul
    if where == "import":
        at.session_state["explore_tab"] = "Import"
    at.run()
    if where == "import":
        at.text_input(key="import_path").input(nul).run()
        at.button[0].click().run()
    assert not at.exception, at.exception
    errors = [e.value for e in [*at.error, *at.sidebar.error]]
    assert errors and all("holds a null character" in e for e in errors), errors
