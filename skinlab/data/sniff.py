"""Naming a file by its first bytes, for files the image decoder cannot open.

A user who drops an iPhone photo, a PDF report or a saved web page deserves to hear what
the file is, not only that it is "not an image". :func:`sniff` recognises the usual
suspects; :mod:`skinlab.data.images` turns the answer into its error sentence.

Example::

    sniff(b"%PDF-1.7 ...")   # ("a PDF document", "unsupported_format")
"""

from __future__ import annotations

import codecs

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: ISO-BMFF brands (bytes 8-12 of a file whose bytes 4-8 are ``ftyp``).
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")
_AVIF_BRANDS = (b"avif", b"avis")


def sniff(data: bytes) -> tuple[str, str] | None:
    """What a file Pillow cannot open really is, from its first bytes.

    Returns:
        ``(description, reason)``, e.g. ``("an SVG drawing", "unsupported_format")``, or
        ``None`` when the bytes say nothing recognisable.
    """
    head = data[:1024]
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head[4:8] == b"ftyp":
        if head[8:12] in _AVIF_BRANDS:
            return "an AVIF image", "unsupported_format"
        if head[8:12] in _HEIF_BRANDS:
            return "a HEIC/HEIF photo (the iPhone camera format)", "unsupported_format"
        return "an MP4/QuickTime video", "unsupported_format"
    if head.startswith(b"%PDF"):
        return "a PDF document", "unsupported_format"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "an SVG drawing", "unsupported_format"
    if text.startswith((b"<!doctype html", b"<html")):
        return "an HTML page", "not_an_image"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "a zip archive", "not_an_image"
    if head.startswith(_PNG_SIGNATURE):
        return "a damaged PNG file", "corrupt"
    if head.startswith(b"\xff\xd8\xff"):
        return "a damaged JPEG file", "corrupt"
    try:
        # Incremental, so a character cut at the 1024-byte mark is not an error.
        decoded = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    return ("a text file", "not_an_image") if "\x00" not in decoded else None
