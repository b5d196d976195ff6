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
* Pillow's decompression-bomb warning is turned into an error at
  :data:`MAX_PIXELS` pixels.
* EXIF orientation is applied, and any mode (CMYK, P, RGBA, LA, I;16, L, 1, animated
  GIF/WebP first frame) becomes 8-bit RGB.
* With ``max_side`` the result is at most that long on its longer side, reduced before any
  mode conversion: JPEGs are decoded at a reduced scale (``Image.draft``), other formats
  are shrunk right after decoding, so a 79 MP upload costs one 8-bit copy, not several.
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
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

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

#: Largest file we read into memory.
MAX_FILE_BYTES = 50 * 1024 * 1024

ImageSource = str | Path | bytes | BinaryIO


@dataclass(frozen=True)
class ImageProbe:
    """Header facts about an image file, without its pixels."""

    width: int
    height: int
    mode: str
    format: str


def _read_bytes(source: ImageSource) -> tuple[bytes, str]:
    """Return the raw bytes of ``source`` and a name for messages."""
    if isinstance(source, bytes):
        return source, "The image"
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = path.name
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise InvalidImageError(
                    f"{name} is {size / 2**20:.0f} MB; images over "
                    f"{MAX_FILE_BYTES // 2**20} MB are refused, resize it first.",
                    "too_large",
                )
            return path.read_bytes(), name
        except OSError as exc:
            raise InvalidImageError(
                f"{name} could not be read ({exc.strerror or exc}); check that the file exists "
                "and is readable.",
                "unreadable",
            ) from exc
    name = getattr(source, "name", None) or "The upload"
    data = source.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise InvalidImageError(
            f"{name} is over {MAX_FILE_BYTES // 2**20} MB; resize it first.", "too_large"
        )
    return data, str(name)


def _open_checked(data: bytes, name: str) -> Image.Image:
    """Open (header only) and check the format; raises :class:`InvalidImageError`."""
    if not data:
        raise InvalidImageError(f"{name} is empty (0 bytes); re-export or re-download it.", "empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels(name) from exc
    except Exception as exc:  # noqa: BLE001 - any decoder fault is a bad file, not a crash
        raise _unopenable(data, name, exc) from exc
    if img.format not in ALLOWED_FORMATS:
        raise InvalidImageError(
            f"{name} is a {img.format} file, which skinlab does not read; convert it to "
            f"{ALLOWED_TEXT}.",
            "unsupported_format",
        )
    if img.width * img.height > MAX_PIXELS:
        raise _too_many_pixels(name, img.width, img.height)
    if img.format == "PNG":
        _verify_png(data, name)
    return img


def _unopenable(data: bytes, name: str, exc: Exception) -> InvalidImageError:
    """The error for bytes Pillow could not open, naming what they are when known."""
    if "truncated" in str(exc).lower():
        return _truncated(name)
    kind = sniff(data)
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


def _verify_png(data: bytes, name: str) -> None:
    """Check every chunk's CRC: Pillow's decoder skips them, so a damaged PNG could load."""
    try:
        Image.open(io.BytesIO(data)).verify()
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
        verify: also decode the pixels (JPEGs at a reduced scale, which is cheap) so
            truncated or corrupt files are caught; without it only the header is read.

    Raises:
        InvalidImageError: as :func:`decode_image`.
    """
    data, name = _read_bytes(source)
    img = _open_checked(data, name)
    probe = ImageProbe(img.width, img.height, img.mode, img.format or "")
    if verify:
        _decode(img, name, draft_size=(64, 64))
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
        InvalidImageError: the file is empty, truncated, not an image, of a refused
            format, too big, or otherwise undecodable.
    """
    data, name = _read_bytes(source)
    if max_side is not None and draft_size is None:
        draft_size = (max_side, max_side)
    return _decode(_open_checked(data, name), name, draft_size, max_side)


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
            img.load()
            if max_side is not None and max(img.size) > max_side:
                _shrink(img, max_side)
            # In place: without it exif_transpose copies even an upright image (+4 bytes/pixel).
            ImageOps.exif_transpose(img, in_place=True)
            rgb = _to_rgb(img)
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


def _shrink(img: Image.Image, max_side: int) -> None:
    """Cut ``img``'s longer side to ``max_side`` in place, before any mode conversion (an RGBA
    composite at 79 MP would cost ~1.2 GB). ``reducing_gap`` box-averages by an integer
    factor first (cheap), then filters the last step properly; palette and 1-bit images
    are sampled (Pillow cannot filter them), which is fine at display size."""
    img.thumbnail((max_side, max_side), Image.Resampling.BICUBIC, reducing_gap=2.0)


def _first_line(exc: Exception) -> str:
    """A decoder's message cut to one short clause, so ours stays one sentence."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
    return text[:120]


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, compositing transparency on white."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale the real range down to 8 bits instead of clipping.
        arr = np.asarray(img, dtype=np.float64)
        top = float(arr.max()) or 1.0
        scale = 255.0 / (65535.0 if top > 255 else 255.0) if mode != "I" else 255.0 / top
        grey = np.clip(arr * scale, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        grey = ((arr - lo) / ((hi - lo) or 1.0) * 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
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
