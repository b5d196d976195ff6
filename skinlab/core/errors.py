"""Exceptions the library raises; each message is one sentence a user can act on.

Pages and the CLI catch :class:`SkinlabError` and show ``str(error)`` as is, so every
message says what went wrong *and* what to do next.
"""

from __future__ import annotations


class SkinlabError(Exception):
    """Base class of every error skinlab raises on purpose."""


class InvalidImageError(SkinlabError):
    """A file or upload could not be decoded as a supported image.

    Attributes:
        reason: a short machine-readable kind (``"empty"``, ``"truncated"``,
            ``"not_an_image"``, ``"too_many_pixels"``, ``"unsupported_format"``,
            ``"corrupt"``, ``"unreadable"``, ``"too_large"``).
    """

    def __init__(self, message: str, reason: str = "unreadable") -> None:
        super().__init__(message)
        self.reason = reason


class DatasetLayoutError(SkinlabError):
    """A dataset folder does not have the ``<root>/<Split>/<class>/*.jpg`` layout."""


class ArchiveError(SkinlabError):
    """An archive to import is unsafe, too big, or not a dataset; nothing was written."""


class DownloadError(SkinlabError):
    """A dataset or weights file could not be downloaded (offline, no credentials, ...)."""


class PathNotAllowedError(SkinlabError):
    """A path typed or linked in the app lies outside the folders the app may read."""
