"""Importing an uploaded zip: the bytes become a dataset in the data folder, or one sentence."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import pytest
from helpers import image_bytes

from skinlab.app import uploads
from skinlab.app.catalog import available_datasets
from skinlab.app.uploads import MAX_UPLOAD_MB, import_upload, safe_upload_name
from skinlab.core.errors import ArchiveError


def dataset_zip(members: dict[str, bytes]) -> bytes:
    """A zip archive, in memory, holding ``members`` (archive path -> bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _leftover_uploads() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob("skinlab-upload-*"))


def test_uploaded_zip_becomes_a_dataset_named_after_the_file(session_dirs) -> None:
    data = dataset_zip({f"wrapper/Train/melanoma/{i}.jpg": image_bytes(seed=i) for i in range(3)})
    before = _leftover_uploads()
    seen: list[float] = []

    root = import_upload("My Lesions.zip", io.BytesIO(data), progress=lambda f, m: seen.append(f))

    assert root == session_dirs["data"] / "my-lesions"
    assert len(list((root / "Train" / "melanoma").iterdir())) == 3
    assert "my-lesions" in [e.name for e in available_datasets()]
    assert seen[-1] == 1.0
    assert _leftover_uploads() == before


def test_uploaded_zip_escaping_its_folder_is_refused_with_one_sentence(session_dirs) -> None:
    data = dataset_zip(
        {"Train/nevus/a.jpg": image_bytes(), "../../escape.jpg": image_bytes(seed=1)}
    )

    with pytest.raises(ArchiveError) as caught:
        import_upload("../evil.zip", data, name="evil")

    message = str(caught.value)
    assert message.startswith("evil.zip is unsafe") and "nothing was imported" in message
    assert message.count(". ") == 0  # one sentence
    assert not (session_dirs["data"] / "evil").exists()


def test_upload_name_over_255_bytes_is_imported_under_a_shortened_name(session_dirs) -> None:
    data = dataset_zip({f"Train/melanoma/{i}.jpg": image_bytes(seed=i) for i in range(2)})
    filename = "é" * 200 + ".zip"  # 405 bytes in UTF-8: no file system takes the name
    root = import_upload(filename, data)
    assert root.parent == session_dirs["data"] and root.name.startswith("e")
    assert len(safe_upload_name(filename).encode()) <= 120
    assert safe_upload_name(filename).endswith(".zip")


def test_upload_name_loses_line_breaks_and_control_characters() -> None:
    assert safe_upload_name("my\nforged\r\x1bset.zip") == "myforgedset.zip"
    assert safe_upload_name("../../.hidden.zip") == "hidden.zip"


def test_upload_over_the_limit_is_refused_before_anything_is_imported(
    session_dirs, monkeypatch
) -> None:
    data = dataset_zip({"Train/melanoma/a.jpg": image_bytes()})
    monkeypatch.setattr(uploads, "MAX_FILE_BYTES", len(data) - 1)
    before = _leftover_uploads()
    for source in (data, io.BytesIO(data)):
        with pytest.raises(ArchiveError) as caught:
            import_upload("big.zip", source, name="big")
        assert str(caught.value).startswith(f"big.zip is over the {MAX_UPLOAD_MB} MB upload limit")
    assert not (session_dirs["data"] / "big").exists()
    assert _leftover_uploads() == before
