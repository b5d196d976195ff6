"""The safe decoder: every mode becomes RGB, every bad file a specific InvalidImageError."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import image_bytes
from PIL import Image

from skinlab.core.errors import InvalidImageError
from skinlab.data import images
from skinlab.data.discovery import discover
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


# --- issue 29 (5, 14): decodes bounded by the header, in memory and in number ---------------


def test_sixteen_bit_grey_png_over_4096_px_decodes_small_instead_of_corrupt() -> None:
    # Pillow cannot reduce "I;16" images: shrinking one raised "image has wrong mode",
    # which the decoder reported as a corrupt file.
    ramp = np.linspace(0, 65535, 4096, dtype=np.uint16)
    buf = io.BytesIO()
    Image.fromarray(np.tile(ramp, (48, 1))).save(buf, "PNG")
    img = decode_image(buf.getvalue(), max_side=1024)
    assert img.size == (1024, 12) and img.mode == "RGB"
    arr = np.asarray(img)
    assert arr.min() <= 2 and arr.max() >= 253  # the 16-bit range, scaled to 8 bits
    assert probe_image(buf.getvalue(), verify=True).mode == "I;16"


_PEAK = """
import sys
from skinlab.data.images import decode_image, probe_image

def status(key):
    with open("/proc/self/status") as lines:
        return 1024 * int(next(line for line in lines if line.startswith(key)).split()[1])

data = open(sys.argv[1], "rb").read()
with open("/proc/self/clear_refs", "w") as reset:
    reset.write("5")  # the peak (VmHWM) restarts from what is held now
before = status("VmRSS")
if sys.argv[2] == "probe":
    probe_image(data, verify=True)
else:
    decode_image(data, max_side=int(sys.argv[2]))
print(status("VmHWM") - before)
"""


def _peak_bytes(path, how: str) -> int:
    """Peak memory a fresh process adds to decode ``path`` (``how``: a max side or "probe")."""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, str(path), how],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],  # where `import skinlab` finds this checkout
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.mark.parametrize(("mode", "how"), [("RGBA", "1024"), ("LA", "1024"), ("RGBA", "probe")])
def test_transparent_png_costs_its_decoded_pixels_once(tmp_path, mode, how) -> None:
    # 6000 x 4000: Pillow holds RGBA and LA at 4 bytes a pixel, 96 MB; shrinking premultiplied
    # a whole copy first (2x), converting to RGB before shrinking took ~5x.
    path = tmp_path / "big.png"
    Image.new(mode, (6000, 4000), (90, 40, 20, 128)[: len(mode)]).save(path, compress_level=1)
    decoded = 6000 * 4000 * 4
    assert _peak_bytes(path, how) < 1.4 * decoded


@pytest.mark.parametrize(("mode", "fmt"), [("I;16", "PNG"), ("I", "TIFF")])
def test_deep_grey_image_is_verified_without_float_copies(tmp_path, mode, fmt) -> None:
    # The scan verifies every image: a 16/32-bit one was converted whole through float64
    # (a 79 MP 32-bit TIFF took 2.1 GB); now 8-bit grey, strip by strip.
    path = tmp_path / f"deep.{fmt.lower()}"
    values = np.random.default_rng(0).integers(0, 60000, (4000, 6000))
    Image.fromarray(values.astype(np.uint16 if mode == "I;16" else np.int32)).save(path)
    assert Image.open(path).mode == mode
    decoded = 6000 * 4000 * (2 if mode == "I;16" else 4)
    grey = 6000 * 4000  # the 8-bit copy
    assert _peak_bytes(path, "probe") < decoded + grey + 64 * 2**20


def test_concurrent_decodes_wait_for_their_share_of_the_memory_budget(
    make_dataset_folder, monkeypatch
) -> None:
    # A budget below one image's cost admits one decode at a time, whatever the threads.
    monkeypatch.setattr(images, "_DECODE_BUDGET", images._MemoryBudget(1))
    active, most, lock, second = [0], [0], threading.Lock(), threading.Event()
    waited: list[bool] = []
    to_rgb = images._to_rgb

    def counting(img):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
            first = not waited
            waited.append(True)
            if active[0] > 1:
                second.set()
        if first:
            second.wait(timeout=5)  # gives another thread every chance to come in
        with lock:
            active[0] -= 1
        return to_rgb(img)

    monkeypatch.setattr(images, "_to_rgb", counting)
    dataset = discover(make_dataset_folder({"Train": {"nevus": 6}}), workers=4)
    assert dataset.unreadable.empty and len(dataset.table) == 6
    assert most[0] == 1
