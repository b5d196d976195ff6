"""Importing a dataset zip that arrived as an upload (bytes in memory, not a file on disk).

:func:`skinlab.data.importer.import_dataset` reads archives from disk, so the upload is
written to a private temporary folder first and always removed afterwards. The file keeps
the uploader's name, so the importer's messages and the default dataset name speak of
``my-lesions.zip``, not of a random temporary name.

Example::

    root = import_upload("my-lesions.zip", uploaded.getvalue(), progress=bar_update)
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from skinlab.data.importer import ProgressCallback, import_dataset


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
        ArchiveError: as :func:`~skinlab.data.importer.import_dataset`, one sentence.
    """
    plain = filename.replace("\\", "/").replace("\0", "")  # a NUL would make open() raise
    safe_name = Path(plain).name.lstrip(".") or "upload.zip"
    with tempfile.TemporaryDirectory(prefix="skinlab-upload-") as folder:
        archive = Path(folder) / safe_name
        with open(archive, "wb") as out:
            if isinstance(data, bytes):
                out.write(data)
            else:
                shutil.copyfileobj(data, out)
        return import_dataset(archive, name=name or None, progress=progress)
