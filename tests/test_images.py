"""The safe decoder: every mode becomes RGB, every bad file a specific InvalidImageError."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from helpers import image_bytes
from PIL import Image

from skinlab.core.errors import InvalidImageError
from skinlab.data import images
from skinlab.data.images import decode_image, load_rgb_array, probe_image


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("RGB", "JPEG"),
        ("L", "JPEG"),
        ("CMYK", "JPEG"),
        ("RGBA", "PNG"),
        ("LA", "PNG"),
        ("1", "PNG"),
        ("I;16", "PNG"),
        ("P", "PNG"),
        ("RGB", "WEBP"),
        ("RGB", "TIFF"),
        ("RGB", "BMP"),
    ],
)
def test_every_mode_decodes_to_8bit_rgb(mode: str, fmt: str) -> None:
    img = decode_image(image_bytes(mode, (20, 12), fmt))
    assert img.mode == "RGB"
    assert img.size == (20, 12)


def test_palette_png_with_transparency_is_composited_on_white() -> None:
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([255, 0, 0] * 256)
    buf = io.BytesIO()
    pal.save(buf, "PNG", transparency=0)
    arr = np.asarray(decode_image(buf.getvalue()))
    assert arr.min() == 255  # fully transparent red on white is white


def test_sixteen_bit_png_keeps_its_range_instead_of_clipping() -> None:
    arr16 = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    buf = io.BytesIO()
    Image.fromarray(arr16).save(buf, "PNG")
    arr = load_rgb_array(buf.getvalue())
    assert arr.min() == 0 and arr.max() == 255
    assert len(np.unique(arr[..., 0])) > 32


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (10, 10), c) for c in [(255, 0, 0), (0, 0, 255)]]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50)
    arr = load_rgb_array(buf.getvalue())
    assert arr[..., 0].mean() > 200 and arr[..., 2].mean() < 50


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    assert decode_image(buf.getvalue()).size == (20, 40)


def test_huge_png_is_decoded_at_reduced_size_with_its_aspect_ratio() -> None:
    # 64 MP of one colour: a ~0.2 MB file whose full decode would hold ~256 MB.
    data = image_bytes("RGB", (8000, 6000), "PNG", colour=(180, 90, 60), compress_level=1)
    img = decode_image(data, max_side=1000)
    assert img.size == (1000, 750) and img.mode == "RGB"
    assert img.getpixel((500, 375)) == (180, 90, 60)


def test_max_side_applies_exif_orientation_and_never_enlarges() -> None:
    img = Image.new("RGB", (400, 200), (0, 0, 255))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    assert decode_image(buf.getvalue(), max_side=100).size == (50, 100)
    assert decode_image(buf.getvalue(), max_side=1000).size == (200, 400)


def test_load_rgb_array_resizes_to_the_requested_square() -> None:
    arr = load_rgb_array(image_bytes(size=(300, 200)), 64)
    assert arr.shape == (64, 64, 3) and arr.dtype == np.uint8


def _bad(data: bytes) -> InvalidImageError:
    with pytest.raises(InvalidImageError) as info:
        decode_image(data)
    assert str(info.value).endswith(".")
    assert "Traceback" not in str(info.value)
    return info.value


def test_zero_byte_file_is_rejected_as_empty() -> None:
    assert _bad(b"").reason == "empty"


def test_truncated_jpeg_is_rejected_with_clear_message() -> None:
    data = image_bytes(size=(200, 200))
    error = _bad(data[: len(data) // 2])
    assert error.reason == "truncated"
    assert "truncated" in str(error)


def test_text_file_is_rejected_as_not_an_image() -> None:
    assert _bad(b"<html><body>not a picture</body></html>").reason == "not_an_image"


def test_format_outside_the_allow_list_is_refused() -> None:
    error = _bad(image_bytes(fmt="PPM"))
    assert error.reason == "unsupported_format"
    assert "PPM" in str(error)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_decompression_bomb_is_an_error_not_a_warning() -> None:
    error = _bad(_png_header_only(100_000, 100_000))
    assert error.reason == "too_many_pixels"


def test_pixel_limit_is_enforced_below_pillows_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "MAX_PIXELS", 100)
    assert _bad(image_bytes(size=(20, 20))).reason == "too_many_pixels"


def test_missing_file_is_unreadable_with_its_name(tmp_path) -> None:
    with pytest.raises(InvalidImageError, match="ghost.jpg") as info:
        decode_image(tmp_path / "ghost.jpg")
    assert info.value.reason == "unreadable"


def test_probe_reads_header_and_verify_catches_truncation() -> None:
    data = image_bytes(size=(120, 80))
    probe = probe_image(data)
    assert (probe.width, probe.height, probe.format) == (120, 80, "JPEG")
    probe_image(data[: len(data) // 3])  # header alone is fine
    with pytest.raises(InvalidImageError):
        probe_image(data[: len(data) // 3], verify=True)
