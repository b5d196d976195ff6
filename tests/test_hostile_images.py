"""Hostile and odd images, end to end: odd-but-valid files are predicted exactly like the
plain RGB picture they hold; invalid ones get one specific sentence from the library, the
CLI and the Predict page, never a traceback. Every file is generated here."""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers import train_quick_run
from PIL import Image
from streamlit.testing.v1 import AppTest

from skinlab.core.errors import InvalidImageError
from skinlab.data.images import decode_image
from skinlab.evaluate.ood import check_quality
from skinlab.predict.predictor import Prediction, load_predictor

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "streamlit_app.py")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, session_dirs):
    """One real run (quick preset, 1 epoch) and the demo it was trained on."""
    return train_quick_run(tmp_path_factory.mktemp("hostile-images"), session_dirs["models"])


@pytest.fixture(scope="module")
def picture(trained) -> np.ndarray:
    """A real lesion-like RGB picture (a demo Test image), as a uint8 array."""
    first = sorted((trained[1] / "Test").rglob("*.jpg"))[0]
    return np.asarray(decode_image(first))


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def pillow_rgb(data: bytes) -> np.ndarray:
    """Pillow's own decode of ``data`` (no EXIF rotation): the pixels a lossy file holds."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


# --- valid but odd: each builder returns (odd file, the plain RGB picture it shows) -----


def grayscale_jpeg(pic: np.ndarray) -> tuple[bytes, np.ndarray]:
    data = encode(Image.fromarray(pic).convert("L"), "JPEG")
    grey = np.asarray(Image.open(io.BytesIO(data)))
    return data, np.stack([grey] * 3, axis=-1)


def sixteen_bit_png(pic: np.ndarray) -> tuple[bytes, np.ndarray]:
    grey = np.asarray(Image.fromarray(pic).convert("L"))
    data = encode(Image.fromarray(grey.astype(np.uint16) * 257), "PNG")  # 8 -> 16 bit exactly
    return data, np.stack([grey] * 3, axis=-1)


def cmyk_jpeg(pic: np.ndarray) -> tuple[bytes, np.ndarray]:
    data = encode(Image.fromarray(pic).convert("CMYK"), "JPEG", quality=95)
    # JPEG is lossy, so the reference is the file's own pixels; the colours are checked
    # against the original picture separately (an inverted CMYK would fail that).
    return data, pillow_rgb(data)


def palette_png_with_transparency(pic: np.ndarray) -> tuple[bytes, np.ndarray]:
    paletted = Image.fromarray(pic).quantize(64)
    indices = np.asarray(paletted).copy()
    indices[: indices.shape[0] // 3] = 0  # the top third shows palette entry 0: transparent
    image = Image.fromarray(indices, "P")
    image.putpalette(paletted.getpalette())
    colours = np.array(paletted.getpalette()[: 256 * 3]).reshape(-1, 3)
    reference = colours[indices].astype(np.uint8)
    reference[indices == 0] = 255  # transparency is composited on white
    return encode(image, "PNG", transparency=0), reference


def animated_gif(pic: np.ndarray) -> tuple[bytes, np.ndarray]:
    first = Image.fromarray(pic).quantize(200)
    second = Image.new("RGB", first.size, (0, 0, 255))
    data = encode(first, "GIF", save_all=True, append_images=[second], duration=50)
    return data, np.asarray(first.convert("RGB"))  # the first frame is the picture


def exif_rotated_jpeg(pic: np.ndarray) -> tuple[bytes, np.ndarray]:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    data = encode(Image.fromarray(pic), "JPEG", exif=exif)
    return data, np.rot90(pillow_rgb(data), k=-1)


def lossless_webp(pic: np.ndarray) -> tuple[bytes, np.ndarray]:
    return encode(Image.fromarray(pic), "WEBP", lossless=True), pic


def lzw_tiff(pic: np.ndarray) -> tuple[bytes, np.ndarray]:
    return encode(Image.fromarray(pic), "TIFF", compression="tiff_lzw"), pic


def one_pixel_png(pic: np.ndarray) -> tuple[bytes, np.ndarray]:
    colour = pic[pic.shape[0] // 2, pic.shape[1] // 2]
    one = np.broadcast_to(colour, (1, 1, 3)).astype(np.uint8)
    return encode(Image.fromarray(one), "PNG"), np.broadcast_to(colour, (32, 32, 3)).copy()


def ten_thousand_by_ten_png(pic: np.ndarray) -> tuple[bytes, np.ndarray]:
    # Rows of one colour each: squashing 10000 x 10 to the model's square gives exactly
    # what squashing the same rows at 10 x 10 gives (the horizontal pass sees constants).
    rows = np.asarray(Image.fromarray(pic).resize((1, 10), Image.Resampling.BOX))
    return encode(Image.fromarray(np.repeat(rows, 10_000, axis=1)), "PNG"), np.repeat(rows, 10, 1)


ODD: dict[str, Callable[[np.ndarray], tuple[bytes, np.ndarray]]] = {
    "grayscale JPEG": grayscale_jpeg,
    "16-bit PNG": sixteen_bit_png,
    "CMYK JPEG": cmyk_jpeg,
    "palette PNG with transparency": palette_png_with_transparency,
    "animated GIF": animated_gif,
    "EXIF-rotated JPEG": exif_rotated_jpeg,
    "WebP": lossless_webp,
    "TIFF": lzw_tiff,
    "1x1 PNG": one_pixel_png,
    "10000x10 PNG": ten_thousand_by_ten_png,
}


@pytest.mark.parametrize("kind", list(ODD))
def test_odd_but_valid_image_is_predicted_like_its_plain_rgb_picture(kind, trained, picture):
    odd, reference = ODD[kind](picture)
    plain = encode(Image.fromarray(reference), "PNG")
    predictor = load_predictor(trained[0])
    got, want = predictor.predict_sources([("odd", odd), ("plain", plain)])
    assert isinstance(got, Prediction) and isinstance(want, Prediction)
    # Identical pixels go through the same graph; only float summation order can differ.
    for name, p in want.probabilities.items():
        assert got.probabilities[name] == pytest.approx(p, abs=1e-5), kind
    assert got.top_class == want.top_class


def test_cmyk_jpeg_keeps_its_colours() -> None:
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 200, 40
    decoded = decode_image(cmyk_jpeg(rgb)[0])
    # A few levels of JPEG loss at most; an inverted CMYK file would be off by ~150.
    assert np.abs(np.asarray(decoded, int) - rgb).max() <= 8


def test_images_too_small_or_too_thin_are_predicted_but_flagged(trained, picture):
    predictor = load_predictor(trained[0])
    tiny_bytes, thin_bytes = one_pixel_png(picture)[0], ten_thousand_by_ten_png(picture)[0]
    tiny, thin = predictor.predict_sources([("tiny", tiny_bytes), ("thin", thin_bytes)])
    assert tiny.ood and "too small" in tiny.ood_reason
    assert thin.ood
    assert {q.kind for q in check_quality(decode_image(thin_bytes))} == {"tiny", "aspect_ratio"}


# --- invalid: each refused with a specific sentence ------------------------------------


def _png_with_bad_crc() -> bytes:
    data = bytearray(encode(Image.new("RGB", (16, 16), (90, 40, 30)), "PNG"))
    idat = data.find(b"IDAT")
    crc_at = idat + 4 + int.from_bytes(data[idat - 4 : idat], "big")
    data[crc_at] ^= 0xFF  # pixels intact, checksum wrong: Pillow alone would decode it
    return bytes(data)


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("lesion.jpg", b"inside")
    return buf.getvalue()


def _bomb() -> bytes:
    # 100 million 1-bit pixels compress to a few kilobytes: refused from the header alone.
    return encode(Image.new("1", (20_000, 5_000)), "PNG")


_JPEG = encode(Image.new("RGB", (200, 200), (120, 60, 40)), "JPEG")
_SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>'

#: name -> (bytes, InvalidImageError.reason, words the sentence must hold)
INVALID: dict[str, tuple[bytes, str, str]] = {
    "zero-byte.jpg": (b"", "empty", "empty (0 bytes)"),
    "truncated.jpg": (_JPEG[: len(_JPEG) // 2], "truncated", "truncated"),
    "bad-crc.png": (_png_with_bad_crc(), "corrupt", "damaged PNG"),
    "notes.jpg": (b"Patient notes: lesion on the left arm.\n", "not_an_image", "text file"),
    "page.jpg": (b"<!DOCTYPE html><html><body>hi</body></html>", "not_an_image", "HTML page"),
    "archive.jpg": (_zip_bytes(), "not_an_image", "zip archive"),
    "report.jpg": (
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
        "unsupported_format",
        "PDF",
    ),
    "drawing.svg": (_SVG, "unsupported_format", "SVG"),
    "iphone.heic": (
        struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0mif1heic" + bytes(64),
        "unsupported_format",
        "HEIC",
    ),
    "bomb.png": (_bomb(), "too_many_pixels", "decompression bomb"),
}


def assert_one_sentence(text: str) -> None:
    assert "Traceback" not in text and "\n" not in text.strip()
    assert text.endswith("."), text
    assert not re.search(r"[.!?]\s+[A-Z]", text), f"more than one sentence: {text}"


@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_image_is_refused_with_one_specific_sentence(name: str) -> None:
    data, reason, words = INVALID[name]
    with pytest.raises(InvalidImageError) as info:
        decode_image(data)
    assert info.value.reason == reason
    assert words in str(info.value)
    assert_one_sentence(str(info.value))
    if reason == "unsupported_format":  # says what would work instead
        assert "JPEG, PNG" in str(info.value)


def test_refused_file_on_disk_is_named_in_its_sentence(tmp_path: Path) -> None:
    path = tmp_path / "drawing.jpg"
    path.write_bytes(_SVG)
    with pytest.raises(InvalidImageError, match=r"^drawing\.jpg is an SVG drawing"):
        decode_image(path)


def test_cli_prints_one_error_line_per_invalid_file_and_no_traceback(trained, tmp_path):
    for name, (data, _, _) in INVALID.items():
        (tmp_path / name).write_bytes(data)
    files = [str(tmp_path / name) for name in INVALID]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-m", "skinlab", "predict", str(trained[0].root), *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 1  # nothing could be predicted
    assert "Traceback" not in out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == len(INVALID)
    for line, (name, (_, _, words)) in zip(lines, INVALID.items(), strict=True):
        path, sentence = line.split(": error: ")
        assert path.endswith(name) and words in sentence
        assert_one_sentence(sentence)
    assert "no image could be predicted" in out.stderr


def test_predict_page_lists_every_invalid_upload_with_its_sentence(trained, picture):
    paths, demo = trained
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["dataset"] = str(demo)
    at.session_state["active_model"] = paths.run_id
    at.run()
    at.switch_page("pages/predict.py").run()
    uploader = at.file_uploader(key="predict_uploads")
    allowed = {kind.lstrip(".") for kind in uploader.allowed_type}
    assert "jpg" in allowed and not {"svg", "heic", "pdf"} & allowed  # the browser refuses those
    # ...so they arrive renamed, which the decoder sees through.
    renamed = {f"{Path(name).stem}.jpg": value for name, value in INVALID.items()}
    uploads = [(name, data, "image/jpeg") for name, (data, _, _) in renamed.items()]
    good = ("lesion.png", encode(Image.fromarray(picture), "PNG"), "image/png")
    uploader.set_value([*uploads, good]).run()
    assert not at.exception, at.exception
    warning = at.warning[0].value
    assert f"{len(INVALID)} of {len(INVALID) + 1} files could not be read" in warning
    for name, (_, _, words) in renamed.items():
        line = next(row for row in warning.splitlines() if row.startswith(f"- {name}"))
        assert words in line, line
    assert len(at.get("plotly_chart")) == 1  # the good one is still predicted
