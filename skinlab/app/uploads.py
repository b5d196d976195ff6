"""Importing a dataset zip that arrived as an upload (bytes in memory, not a file on disk).

:func:`skinlab.data.importer.import_dataset` reads archives from disk, so the upload is
written to a private temporary folder first and always removed afterwards. The file keeps
the uploader's name (control characters dropped, cut to :data:`_MAX_NAME_BYTES`), so the
importer's messages and the default dataset name speak of ``my-lesions.zip``, not of a
random temporary name.

Every upload, image or zip, is at most :data:`MAX_UPLOAD_MB`: Streamlit's
``server.maxUploadSize`` (``.streamlit/config.toml``) is that number, so the browser refuses a
bigger file before sending it and the server before storing it. Bigger datasets are
imported from disk (a path in the data folder, or ``python -m skinlab data import``), which
streams instead of holding the file in the app's memory.

Example::

    root = import_upload("my-lesions.zip", uploaded.getvalue(), progress=bar_update)
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from skinlab.core.errors import ArchiveError
from skinlab.data.images import MAX_FILE_BYTES
from skinlab.data.importer import ProgressCallback, import_dataset

#: The largest upload the app takes, in MB (Streamlit counts 2**20 bytes): the largest image
#: file skinlab decodes, :data:`skinlab.data.images.MAX_FILE_BYTES`, and so also a zip's cap.
MAX_UPLOAD_MB = MAX_FILE_BYTES // 2**20
#: Longest upload file name kept, in UTF-8 bytes: file systems refuse names over 255.
_MAX_NAME_BYTES = 120
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CHUNK = 2**20


def import_upload(
    filename: str,
    data: bytes | BinaryIO,
    *,
    name: str | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Import an uploaded zip archive as a new dataset in the data folder.

    Args:
        filename: the name the user's browser sent (only its last part is used).
        data: the archive's bytes, or a binary file object positioned at its start.
        name: the new dataset's name; default the file name without ``.zip``.
        progress: as for :func:`~skinlab.data.importer.import_dataset`.

    Returns:
        The new dataset root (``data/<name>``).

    Raises:
        ArchiveError: over :data:`MAX_UPLOAD_MB`, or as
            :func:`~skinlab.data.importer.import_dataset`, one sentence.
    """
    safe_name = safe_upload_name(filename)
    with tempfile.TemporaryDirectory(prefix="skinlab-upload-") as folder:
        archive = Path(folder) / safe_name
        with open(archive, "wb") as out:
            if isinstance(data, bytes):
                written = out.write(data[: MAX_FILE_BYTES + 1])
            else:
                written = 0
                while written <= MAX_FILE_BYTES and (chunk := data.read(_CHUNK)):
                    written += out.write(chunk)
        if written > MAX_FILE_BYTES:
            raise ArchiveError(
                f"{safe_name} is over the {MAX_UPLOAD_MB} MB upload limit; copy it into the "
                "data folder and import it by its path, or run `python -m skinlab data import`."
            )
        return import_dataset(archive, name=name or None, progress=progress)


def safe_upload_name(filename: str) -> str:
    """The last part of a browser-sent ``filename``, usable as a file name here: no folders,
    no leading dot, no control characters (a NUL makes ``open()`` raise, a line break forges
    lines), at most :data:`_MAX_NAME_BYTES` bytes with its suffix kept."""
    plain = _CONTROL.sub("", filename.replace("\\", "/"))
    name = Path(plain).name.lstrip(".") or "upload.zip"
    suffix = Path(name).suffix if len(Path(name).suffix) <= 16 else ""
    stem = name.removesuffix(suffix).encode("utf-8")[: _MAX_NAME_BYTES - len(suffix.encode())]
    return (stem.decode("utf-8", "ignore") or "upload") + suffix
