"""The one safe image decoder: every image skinlab reads (training, explorer,
prediction) goes through :func:`decode_image`.

Contract:

* Only formats on :data:`ALLOWED_FORMATS` are opened (no SVG, PDF, EPS, HEIC, ...); a file
  Pillow cannot open is named for what it really is (an SVG drawing, a HEIC photo, a PDF,
  an HTML page, a zip, text, a damaged JPEG or PNG) from its first bytes.
* PNG chunk checksums are verified, so a damaged PNG is refused even where its pixels
  would still decode.
* The whole image is decoded inside the ``try`` (``Image.load()``), so truncated or
  corrupt files fail here, not later inside a training loop.
* A path is read only if it is a regular file (a FIFO named ``.jpg``, a link to
  ``/dev/zero`` or a folder is refused unread) of at most :data:`MAX_FILE_BYTES`.
* Dimensions, mode and format come from the header first: over :data:`MAX_PIXELS` pixels
  is refused before any decode (Pillow's decompression-bomb warning is an error too), and
  every decode in the process waits for its share of :data:`DECODE_MEMORY_BYTES`, so a
  scan's threads cannot each hold a 79 MP image at once.
* EXIF orientation is applied, and any mode (CMYK, P, RGBA, LA, I;16, I, F, L, 1, animated
  GIF/WebP first frame) becomes 8-bit RGB; 16/32-bit grey is scaled, not clipped.
* With ``max_side`` the result is at most that long on its longer side, reduced before any
  mode conversion: JPEGs are decoded at a reduced scale (``Image.draft``), other formats
  are reduced strip by strip right after decoding, so a 79 MP upload costs its decoded
  pixels once (~320 MB for RGBA), not several copies.
* Every failure raises :class:`~skinlab.core.errors.InvalidImageError` with one sentence.

Example::

    from skinlab.data.images import decode_image
    img = decode_image("lesion.jpg")          # PIL.Image.Image, mode "RGB"
    arr = load_rgb_array("lesion.jpg", 180)  # uint8 array (180, 180, 3)

Why one module: it is the one safe decoder: every limit and format rule in one place, so no
reader can skip one.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
from PIL import Image

from skinlab.core.atomic import RunFileError, open_regular
from skinlab.core.errors import InvalidImageError
from skinlab.data.sniff import sniff

#: Formats we decode. Anything else is refused before decoding.
ALLOWED_FORMATS: frozenset[str] = frozenset({"JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "MPO"})
#: How messages name :data:`ALLOWED_FORMATS` (MPO is a JPEG variant).
ALLOWED_TEXT = "JPEG, PNG, BMP, GIF, TIFF or WebP"

#: File suffixes treated as images during dataset discovery.
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
)

#: Largest image (in pixels) we agree to decode: ~ a 10000 x 8000 photo.
MAX_PIXELS = 80_000_000

#: Largest image file read (and, as ``server.maxUploadSize``, uploaded): a dermoscopy photo
#: is 0.1-10 MB, a 79 MP PNG ~40 MB.
MAX_FILE_BYTES = 50 * 1024 * 1024

#: Most bytes of pixels all decodes in this process hold at once (see :func:`_decode_cost`):
#: a scan's threads, every session's gallery and uploads wait their turn beyond it. One
#: 79 MP image needs at most ~1 GB (320 MB decoded, the rest only without ``max_side``).
DECODE_MEMORY_BYTES = 2**30

#: Pillow modes of more than 8 bits per sample, scaled to 8-bit grey before anything else.
_HIGH_BIT_MODES = frozenset({"I", "F", "I;16", "I;16B", "I;16L", "I;16N", "I;16S"})
#: Modes ``Image.reduce`` averages correctly (not palette indices, not 1-bit, not I;16).
_REDUCIBLE_MODES = frozenset({"L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"})
#: Bytes Pillow stores per pixel, by mode (every other mode: 4).
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, **{m: 2 for m in _HIGH_BIT_MODES if "16" in m}}
#: Pixels converted or reduced at a time: small strips keep conversions' copies small
#: (8 MB as float64).
_STRIP_PIXELS = 2**20
#: EXIF orientation -> the transpose that shows the picture upright (as ImageOps does).
_ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

ImageSource = str | Path | bytes | BinaryIO


@dataclass(frozen=True)
class ImageProbe:
    """Header facts about an image file, without its pixels."""

    width: int
    height: int
    mode: str
    format: str


def open_image_file(path: str | Path) -> BinaryIO:
    """Open the image file ``path`` for binary reading, if it is a regular file of at most
    :data:`MAX_FILE_BYTES`.

    The check is made on the open descriptor (:func:`skinlab.core.atomic.open_regular`), so a
    FIFO named ``.jpg`` (whose read waits forever), a link to ``/dev/zero`` (endless) or a
    folder is refused before a byte is read, and a 3 GB sparse file by its size.

    Raises:
        InvalidImageError: ``unreadable`` (missing, no permission), ``not_a_file`` or
            ``too_large``, one sentence naming the file.
    """
    name = Path(path).name
    try:
        handle = open_regular(Path(path))
    except RunFileError as exc:
        if isinstance(exc.__cause__, OSError):  # the open itself failed
            raise _unreadable(name, exc.__cause__) from exc
        raise InvalidImageError(
            f"{name} is not a regular file (a pipe, a device or a folder stands in its "
            "place), so it was not read; replace it with the image itself.",
            "not_a_file",
        ) from exc
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise _unreadable(name, exc) from exc
    size = os.fstat(handle.fileno()).st_size
    if size > MAX_FILE_BYTES:
        handle.close()
        raise _too_large(name, size)
    return handle


def _unreadable(name: str, exc: Exception) -> InvalidImageError:
    reason = getattr(exc, "strerror", None) or exc
    return InvalidImageError(
        f"{name} could not be read ({reason}); check that the file exists and is readable.",
        "unreadable",
    )


def _too_large(name: str, size: int) -> InvalidImageError:
    return InvalidImageError(
        f"{name} is {size / 2**20:.0f} MB; images over {MAX_FILE_BYTES // 2**20} MB are "
        "refused, resize it first.",
        "too_large",
    )


@contextmanager
def _opened(source: ImageSource) -> Iterator[tuple[BinaryIO, str]]:
    """``source`` as a seekable binary file of at most :data:`MAX_FILE_BYTES`, and a name
    for messages; a path is read from disk as Pillow needs it, never all at once."""
    if isinstance(source, bytes):
        yield io.BytesIO(source), "The image"
    elif isinstance(source, (str, Path)):
        with open_image_file(source) as handle:
            yield handle, Path(source).name
    else:
        name = str(getattr(source, "name", None) or "The upload")
        if not source.seekable():
            source = io.BytesIO(source.read(MAX_FILE_BYTES + 1))
        size = source.seek(0, os.SEEK_END)
        source.seek(0)
        if size > MAX_FILE_BYTES:
            raise _too_large(name, size)
        yield source, name


def _open_checked(handle: BinaryIO, name: str) -> Image.Image:
    """Open (header only) and check the format and pixel count; raises
    :class:`InvalidImageError`. Nothing is decoded here."""
    handle.seek(0)
    if not handle.read(1):
        raise InvalidImageError(f"{name} is empty (0 bytes); re-export or re-download it.", "empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(handle)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels(name) from exc
    except Exception as exc:  # noqa: BLE001 - any decoder fault is a bad file, not a crash
        raise _unopenable(handle, name, exc) from exc
    if img.format not in ALLOWED_FORMATS:
        raise InvalidImageError(
            f"{name} is a {img.format} file, which skinlab does not read; convert it to "
            f"{ALLOWED_TEXT}.",
            "unsupported_format",
        )
    if img.width * img.height > MAX_PIXELS:
        raise _too_many_pixels(name, img.width, img.height)
    if img.format == "PNG":
        _verify_png(handle, name)
        handle.seek(0)
        img = Image.open(handle)  # verify() used up the first one
    return img


def _unopenable(handle: BinaryIO, name: str, exc: Exception) -> InvalidImageError:
    """The error for a file Pillow could not open, naming what it is when known."""
    if "truncated" in str(exc).lower():
        return _truncated(name)
    handle.seek(0)
    kind = sniff(handle.read(1024))
    if kind is None:
        return InvalidImageError(
            f"{name} is not an image skinlab recognises; use a {ALLOWED_TEXT} file.",
            "not_an_image",
        )
    description, reason = kind
    remedy = {
        "unsupported_format": f", which skinlab does not read; convert it to {ALLOWED_TEXT}.",
        "corrupt": " (its header is broken); re-download or re-export it.",
    }.get(reason, f", not an image; use a {ALLOWED_TEXT} file.")
    return InvalidImageError(f"{name} is {description}{remedy}", reason)


def _verify_png(handle: BinaryIO, name: str) -> None:
    """Check every chunk's CRC: Pillow's decoder skips them, so a damaged PNG could load."""
    try:
        handle.seek(0)
        Image.open(handle).verify()
    except Exception as exc:  # noqa: BLE001 - any fault here is a damaged file
        if "truncated" in str(exc).lower():
            raise _truncated(name) from exc
        raise InvalidImageError(
            f"{name} is a damaged PNG file (a checksum does not match or data is missing); "
            "re-download or re-export it.",
            "corrupt",
        ) from exc


def _truncated(name: str) -> InvalidImageError:
    return InvalidImageError(
        f"{name} is truncated or corrupt (the file ends early); re-download or re-export it.",
        "truncated",
    )


def _too_many_pixels(
    name: str, width: int | None = None, height: int | None = None
) -> InvalidImageError:
    size = f" ({width}x{height})" if width else ""
    return InvalidImageError(
        f"{name}{size} has more than {MAX_PIXELS:,} pixels, which looks like a decompression "
        "bomb; resize it below that before using it.",
        "too_many_pixels",
    )


def probe_image(source: ImageSource, *, verify: bool = False) -> ImageProbe:
    """Read width, height, mode and format of ``source``.

    Args:
        verify: also decode the pixels (see :func:`probe_file`) so truncated or corrupt
            files are caught; without it only the header is read.

    Raises:
        InvalidImageError: as :func:`decode_image`.
    """
    with _opened(source) as (handle, name):
        return probe_file(handle, name, verify=verify)


def probe_file(handle: BinaryIO, name: str, *, verify: bool = False) -> ImageProbe:
    """:func:`probe_image` of an open, seekable file (from :func:`open_image_file`), read
    from its start; ``name`` is how messages call it.

    With ``verify`` JPEGs are decoded at a reduced scale; other formats are decoded whole,
    once, within :data:`DECODE_MEMORY_BYTES`, and converted only once shrunk to 64 px.
    """
    img = _open_checked(handle, name)
    probe = ImageProbe(img.width, img.height, img.mode, img.format or "")
    if verify:
        _decode(img, name, draft_size=(64, 64), max_side=64)
    return probe


def decode_image(
    source: ImageSource,
    *,
    draft_size: tuple[int, int] | None = None,
    max_side: int | None = None,
) -> Image.Image:
    """Decode ``source`` (path, bytes or binary file) to an 8-bit RGB :class:`PIL.Image.Image`.

    Args:
        source: a file path, the file's bytes, or an open binary file (an upload).
        draft_size: optional hint that the caller only needs about this size; JPEGs
            are then decoded at a reduced scale, which is several times faster.
        max_side: shrink (never enlarge) so the longer side is at most this, keeping the
            aspect ratio; how uploads stay cheap whatever their pixel count.

    Raises:
        InvalidImageError: the file is empty, truncated, not an image, not a regular file,
            of a refused format, too big, or otherwise undecodable.
    """
    if max_side is not None and draft_size is None:
        draft_size = (max_side, max_side)
    with _opened(source) as (handle, name):
        return _decode(_open_checked(handle, name), name, draft_size, max_side)


def _decode(
    img: Image.Image,
    name: str,
    draft_size: tuple[int, int] | None,
    max_side: int | None = None,
) -> Image.Image:
    """Decode an opened image to RGB; raises :class:`InvalidImageError` on any fault."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if draft_size is not None and img.format == "JPEG":
                img.draft("RGB", draft_size)
            img.seek(0)  # animated GIF/WebP: the first frame
            with _DECODE_BUDGET.hold(_decode_cost(img, max_side)):
                img.load()
                turn = _exif_turn(img)
                pixels = _grey8(img) if img.mode in _HIGH_BIT_MODES else img
                if max_side is not None and max(pixels.size) > max_side:
                    pixels = _shrink(pixels, max_side)
                rgb = _to_rgb(pixels)
                if turn is not None:
                    rgb = rgb.transpose(turn)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels(name) from exc
    except Exception as exc:  # noqa: BLE001 - a decoder fault of any kind is a bad file
        text = str(exc).lower()
        if (
            "truncated" in text
            or "premature" in text
            or "ended" in text
            or isinstance(exc, EOFError)
        ):
            raise _truncated(name) from exc
        raise InvalidImageError(
            f"{name} is corrupt and could not be decoded ({_first_line(exc)}); re-download or "
            "re-export it.",
            "corrupt",
        ) from exc
    if rgb.width < 1 or rgb.height < 1:
        raise InvalidImageError(f"{name} has no pixels.", "empty")
    return rgb


class _MemoryBudget:
    """Bytes of decoded pixels that decodes in this process may hold at once: a decode
    waits until its share is free. One decode alone always proceeds (its share is capped at
    the total), and no decode holds two shares, so nothing can deadlock."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._free = total
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, amount: int) -> Iterator[None]:
        amount = min(amount, self.total)
        with self._changed:
            self._changed.wait_for(lambda: self._free >= amount)
            self._free -= amount
        try:
            yield
        finally:
            with self._changed:
                self._free += amount
                self._changed.notify_all()


_DECODE_BUDGET = _MemoryBudget(DECODE_MEMORY_BYTES)


def _decode_cost(img: Image.Image, max_side: int | None) -> int:
    """Bytes a decode of the opened ``img`` holds at its peak, from the header: the decoded
    pixels (Pillow keeps 3- and 4-band images at 4 bytes a pixel), an 8-bit grey copy of a
    16/32-bit image, and the RGB result (twice when EXIF turns it)."""
    pixels = img.width * img.height
    raw = pixels * _BYTES_PER_PIXEL.get(img.mode, 4)
    grey = pixels if img.mode in _HIGH_BIT_MODES else 0
    out = pixels if max_side is None else min(pixels, max_side * max_side)
    return raw + grey + 8 * out


def _exif_turn(img: Image.Image) -> Image.Transpose | None:
    """The transpose that shows ``img`` upright, from its EXIF orientation (``None``: none),
    read before any shrink or conversion drops the EXIF."""
    try:
        orientation = img.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - a broken EXIF block does not spoil the pixels
        return None
    return _ORIENTATIONS.get(orientation) if isinstance(orientation, int) else None


def _strips(img: Image.Image, multiple: int = 1) -> Iterator[tuple[int, int]]:
    """``(top, bottom)`` of consecutive horizontal strips of ``img`` of about
    :data:`_STRIP_PIXELS` pixels each, ``multiple`` rows high or a multiple of it."""
    rows = multiple * max(1, _STRIP_PIXELS // (img.width * multiple or 1))
    for top in range(0, img.height, rows):
        yield top, min(top + rows, img.height)


def _grey8(img: Image.Image) -> Image.Image:
    """A 16/32-bit grey or float image as 8-bit grey, its real range scaled down instead of
    clipped, converted strip by strip (a 79 MP image at once took ~2 GB as float64)."""
    lo, hi = cast(tuple[float, float], img.getextrema())  # one band: (min, max)
    if img.mode == "F":
        offset, scale = float(lo), 255.0 / ((float(hi) - float(lo)) or 1.0)
    else:  # I: its own range; I;16*: 8-bit content stored in 16 bits keeps its values
        full = (float(hi) or 1.0) if img.mode == "I" else (65535.0 if hi > 255 else 255.0)
        offset, scale = 0.0, 255.0 / full
    grey = Image.new("L", img.size)
    for top, bottom in _strips(img):
        arr = np.asarray(img.crop((0, top, img.width, bottom)), dtype=np.float64)
        arr -= offset
        arr *= scale
        part = np.clip(arr, 0, 255, out=arr).astype(np.uint8)
        grey.paste(Image.fromarray(part, "L"), (0, top))
    return grey


def _shrink(img: Image.Image, max_side: int) -> Image.Image:
    """``img`` with its longer side cut to ``max_side``, before any mode conversion.

    An integer box reduction first, strip by strip (Pillow's own premultiplies a whole RGBA
    or LA image first: +320 MB at 79 MP) to within 2x of the target, then a proper filter
    for the last step; palette and 1-bit images are sampled (Pillow cannot filter them),
    which is fine at display size."""
    factor = max(img.size) // max_side
    if factor >= 2 and img.mode in _REDUCIBLE_MODES:
        small = Image.new(img.mode, (-(-img.width // factor), -(-img.height // factor)))
        for top, bottom in _strips(img, factor):
            part = img.crop((0, top, img.width, bottom)).reduce(factor)
            small.paste(part, (0, top // factor))
        img = small
    img.thumbnail((max_side, max_side), Image.Resampling.BICUBIC, reducing_gap=2.0)
    return img


def _first_line(exc: Exception) -> str:
    """A decoder's message cut to one short clause, so ours stays one sentence."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
    return text[:120]


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any 8-bit Pillow mode to 8-bit RGB, compositing transparency on white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    ):
        # Strip by strip: a whole RGBA copy, a white canvas and a composite cost ~1.2 GB at 79 MP.
        rgb = Image.new("RGB", img.size, (255, 255, 255))
        for top, bottom in _strips(img):
            part = img.crop((0, top, img.width, bottom)).convert("RGBA")
            rgb.paste(part, (0, top), part)
        return rgb
    return img.convert("RGB")


def load_rgb_array(source: ImageSource, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Decode ``source`` and return a ``uint8`` array of shape ``(H, W, 3)``.

    Args:
        size: resize to ``size x size`` (or ``(height, width)``) with bilinear
            filtering, as the training pipeline does; ``None`` keeps the original size.
    """
    if size is None:
        return np.asarray(decode_image(source), dtype=np.uint8)
    height, width = (size, size) if isinstance(size, int) else size
    img = decode_image(source, draft_size=(width, height))
    if img.size != (width, height):
        img = img.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)
