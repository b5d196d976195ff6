"""AppTests of the Explore page on a tiny real dataset with planted problems."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest
from helpers import image_bytes
from streamlit.testing.v1 import AppTest

from skinlab.app.catalog import available_datasets
from skinlab.data.discovery import discover

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train: melanoma 6, nevus 2 (+ the conflict copy), dermatofibroma 3; Test: 1 each.

    Planted: Train/melanoma/m0.jpg copied to Train/nevus/relabelled.jpg (label conflict),
    Train/dermatofibroma/d0.jpg copied to Test/dermatofibroma/leaked.jpg (leak), and a
    truncated Train/nevus/broken.jpg (unreadable).
    """
    root = tmp_path_factory.mktemp("explore") / "planted"
    layout = {
        "Train": {"melanoma": 6, "nevus": 2, "dermatofibroma": 3},
        "Test": {"melanoma": 1, "nevus": 1, "dermatofibroma": 1},
    }
    seed = 0
    for split, classes in layout.items():
        for label, count in classes.items():
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                seed += 1
                (folder / f"{label[0]}{i}.jpg").write_bytes(image_bytes(seed=seed))
    shutil.copyfile(root / "Train/melanoma/m0.jpg", root / "Train/nevus/relabelled.jpg")
    shutil.copyfile(root / "Train/dermatofibroma/d0.jpg", root / "Test/dermatofibroma/leaked.jpg")
    whole = image_bytes(seed=99)
    (root / "Train/nevus/broken.jpg").write_bytes(whole[: len(whole) // 2])
    return root


@pytest.fixture(autouse=True)
def _own_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The sidebar remembers the dataset picked; keep ours from leaking into other tests.
    monkeypatch.setenv("SKINLAB_SETTINGS_FILE", str(tmp_path / "settings.json"))


def _open(root: Path | str, tab: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["dataset"] = str(root)
    if tab:
        at.session_state["explore_tab"] = tab
    at.run()
    assert not at.exception, at.exception
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "success") for e in getattr(at, kind)]
    return "\n".join([*parts, *(c for img in at.image for c in img.captions)])


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def test_summary_shows_classes_imbalance_and_audit_counts(planted) -> None:
    at = _open(planted)

    assert _metrics(at) == {
        "Classes": "3",
        "Images": "16",
        "Imbalance (Train)": "2.0×",
        "Label conflicts": "1",
        "Train/Test leaks": "1",
        "Unreadable files": "1",
    }
    assert [t.label for t in at.tabs] == [
        "Distribution",
        "Gallery",
        "Audit",
        "Review",
        "Linked views",
        "Sizes & colours",
        "Import",
    ]
    assert (
        "the largest class, melanoma (6), has 2.0× the images of the smallest, dermatofibroma (3)"
        in (_texts(at))
    )


def test_percent_toggle_switches_the_counts_table_to_percentages(planted) -> None:
    at = _open(planted)
    assert at.dataframe[0].value.loc["melanoma", "Train"] == 6

    at.toggle(key="counts_percent").set_value(True).run()

    assert at.dataframe[0].value.loc["melanoma", "Train"] == pytest.approx(50.0)
    assert at.dataframe[0].value["Test"].sum() == pytest.approx(100.0)


def test_audit_shows_the_planted_conflict_and_leak_side_by_side(planted) -> None:
    at = _open(planted, "Audit")
    assert at.radio(key="audit_kind").options == [
        "Label conflicts (1)",
        "Train/Test leaks (1)",
        "Exact duplicates (2)",
    ]
    conflict = _texts(at)
    assert "melanoma ≠ nevus" in conflict
    assert "Train/melanoma/" in conflict and "Train/nevus/" in conflict
    assert "m0.jpg = relabelled.jpg" in conflict

    at.radio(key="audit_kind").set_value("Train/Test leaks").run()

    leak = _texts(at)
    assert "Train/dermatofibroma/" in leak and "Test/dermatofibroma/" in leak
    assert len(at.image) == 2  # the two copies, side by side


def test_audit_gives_the_reason_a_file_is_unreadable(planted) -> None:
    at = _open(planted, "Audit")

    unreadable = at.dataframe[-1].value
    assert list(unreadable["relpath"]) == ["Train/nevus/broken.jpg"]
    reason = discover(planted).unreadable["error"].iloc[0]
    assert reason.startswith("broken.jpg ")
    assert list(unreadable["reason"]) == [reason]


def test_gallery_shows_one_image_per_class_and_the_chosen_number(planted) -> None:
    at = _open(planted, "Gallery")
    overview, grid = at.image[:3], at.image[3:]
    assert [c for img in overview for c in img.captions] == [
        "Dermatofibroma (benign)",
        "Melanoma (malignant)",
        "Nevus (benign)",
    ]
    assert len(grid) == 5  # dermatofibroma: 3 in Train + 2 in Test (fewer than 12)
    assert all(" · 32×24 · " in img.captions[0] for img in grid)

    at.selectbox(key="gallery_class").set_value("melanoma")
    at.slider(key="gallery_n").set_value(4).run()
    first = [img.captions[0] for img in at.image[3:]]
    at.button[0].click().run()  # Reshuffle
    assert len(at.image[3:]) == 4
    assert [img.captions[0] for img in at.image[3:]] != first


def test_sizes_and_colours_tab_draws_its_charts(planted) -> None:
    at = _open(planted, "Sizes & colours")

    assert "distinct size" in _texts(at)
    assert at.dataframe[0].value.to_dict("records") == [{"size": "32×24", "images": 16}]
    assert [c for img in at.image for c in img.captions] == ["Dermatofibroma", "Melanoma", "Nevus"]


def test_uploaded_zip_is_imported_and_listed_in_the_sidebar(planted, session_dirs) -> None:
    data = _zip({f"lesions/Train/nevus/{i}.jpg": image_bytes(seed=i) for i in range(2)})
    at = _open(planted, "Import")

    at.file_uploader(key="import_zip").set_value(("Page Upload.zip", data, "application/zip"))
    at.run()
    at.button[0].click().run()

    assert not at.exception and not at.error
    assert "Imported **page-upload**" in at.success[0].value
    assert (session_dirs["data"] / "page-upload" / "Train" / "nevus").is_dir()
    # What the sidebar's Dataset list offers (AppTest drops router-drawn sidebar widgets).
    assert "page-upload" in [e.label for e in available_datasets()]


def test_zip_escaping_its_folder_shows_one_sentence(planted) -> None:
    data = _zip({"Train/nevus/a.jpg": image_bytes(), "../evil.jpg": image_bytes(seed=1)})
    at = _open(planted, "Import")

    at.file_uploader(key="import_zip").set_value(("evil.zip", data, "application/zip"))
    at.run()
    at.button[0].click().run()

    assert not at.exception
    assert at.error[0].value.startswith("evil.zip is unsafe: the member '../evil.jpg'")


def test_folder_path_is_imported_under_the_chosen_name(planted, session_dirs) -> None:
    at = _open(planted, "Import")

    at.text_input(key="import_path").input(str(planted))
    at.text_input(key="import_name").input("From Folder").run()
    at.button[0].click().run()

    assert "Imported **from-folder**" in at.success[0].value
    assert (session_dirs["data"] / "from-folder" / "Test").is_dir()
