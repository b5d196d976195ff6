"""Procedural drawing of dermoscopy-like lesions for the synthetic demo dataset.

Each of the nine ISIC classes gets a painter that exaggerates the textbook traits of the
class (colour, border irregularity, size, texture). Three classes stand alone and are easy;
the other six come in the pairs that ISIC confuses (nevus and melanoma, seborrheic and
pigmented benign keratosis, actinic keratosis and squamous cell carcinoma): each pair
shares one painter that morphs from one class to the other along ``t`` in [0, 1], and the
two classes draw ``t`` from overlapping distributions, so some images of a class look like
its partner and no model can score 100 %. The pictures are cartoons, not medical images: skin-toned background with
uneven lighting, optional hairs and a dark dermoscope vignette, then a lesion whose
irregular border is a polar radius perturbed by a few random harmonics.

Everything is drawn with vectorised numpy plus Pillow's C drawing primitives (a few
milliseconds per image) and is a pure function of the ``rng`` passed in.

Example::

    rng = np.random.default_rng(0)
    img = draw_lesion("melanoma", rng, (224, 168))   # PIL RGB image, 224 wide

Why one module: one painter per class and their shared drawing primitives; each is short.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

_SKIN_LIGHT = np.array([238, 204, 182], np.float32)
_SKIN_DARK = np.array([128, 86, 62], np.float32)


@dataclass(frozen=True)
class _Blob:
    """A lesion outline: a rotated, stretched circle whose radius wobbles with angle."""

    cx: float
    cy: float
    radius: float
    angle: float
    stretch: float
    harmonics: tuple[tuple[int, float, float], ...]  # (order k, amplitude, phase)

    @staticmethod
    def random(rng: np.random.Generator, w: int, h: int, size: float, irregularity: float) -> _Blob:
        """``size`` is the radius as a fraction of the shorter side, jittered by +-15%."""
        short = min(w, h)
        ks = (2, 3, 4, 5, 7)
        amps = irregularity * rng.uniform(0.3, 1.0, len(ks)) / np.sqrt(ks)
        return _Blob(
            cx=float(w / 2 + rng.uniform(-0.05, 0.05) * short),
            cy=float(h / 2 + rng.uniform(-0.05, 0.05) * short),
            radius=float(size * short * rng.uniform(0.85, 1.15)),
            angle=float(rng.uniform(0, np.pi)),
            stretch=float(rng.uniform(1.0, 1.35)),
            harmonics=tuple(
                (k, float(a), float(p))
                for k, a, p in zip(ks, amps, rng.uniform(0, 2 * np.pi, len(ks)), strict=True)
            ),
        )

    def boundary(self, theta: np.ndarray) -> np.ndarray:
        wobble = sum(a * np.cos(k * theta + p) for k, a, p in self.harmonics)
        return self.radius * np.clip(1.0 + wobble, 0.35, None)

    def rho(self, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        """Distance from the centre as a fraction of the border (1.0 on the border)."""
        dx, dy = xx - self.cx, yy - self.cy
        c, s = np.cos(self.angle), np.sin(self.angle)
        u, v = dx * c + dy * s, (dy * c - dx * s) * self.stretch
        # The border sampled at 512 angles and looked up: far cheaper than the harmonics
        # evaluated per pixel, and finer than any pixel on a 256-pixel image.
        table = self.boundary(np.linspace(-np.pi, np.pi, 513, dtype=np.float32))
        index = ((np.arctan2(v, u) + np.pi) * (512 / (2 * np.pi))).astype(np.int32)
        return np.hypot(u, v) / table[index]

    def points(
        self, rng: np.random.Generator, n: int | np.integer, lo: float, hi: float
    ) -> np.ndarray:
        """``n`` random (x, y) points whose ``rho`` lies in ``[lo, hi)``."""
        theta = rng.uniform(0, 2 * np.pi, n)
        d = np.sqrt(rng.uniform(lo**2, hi**2, n)) * self.boundary(theta)
        u, v = d * np.cos(theta), d * np.sin(theta) / self.stretch
        c, s = np.cos(self.angle), np.sin(self.angle)
        return np.stack([self.cx + u * c - v * s, self.cy + u * s + v * c], axis=1)


class _Canvas:
    """The image being painted: a float RGB array, then a Pillow image for strokes."""

    def __init__(self, rng: np.random.Generator, w: int, h: int) -> None:
        self.rng, self.w, self.h = rng, w, h
        self.yy, self.xx = np.ogrid[0:h, 0:w]
        self.yy, self.xx = self.yy.astype(np.float32), self.xx.astype(np.float32)
        tone = _SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * rng.beta(1.4, 2.6)
        tone = tone + rng.normal(0, 6, 3).astype(np.float32)
        # squared distance from the centre, 1.0 in the corners
        self.r2 = ((self.xx - w / 2) ** 2 + (self.yy - h / 2) ** 2) / (0.25 * (w * w + h * h))
        light = (0.9 + 0.2 * self.noise(3)) * (1.04 - 0.14 * self.r2)
        self.rgb = tone * light[..., None]
        self.image: Image.Image | None = None

    def noise(self, cells: int) -> np.ndarray:
        """Smooth noise in [0, 1] with about ``cells`` blobs across the shorter side."""
        scale = cells / min(self.w, self.h)
        gw, gh = max(2, round(self.w * scale) + 1), max(2, round(self.h * scale) + 1)
        grid = Image.fromarray(self.rng.random((gh, gw), dtype=np.float32), "F")
        return np.asarray(grid.resize((self.w, self.h), Image.Resampling.BICUBIC)).clip(0, 1)

    def blob(self, size: float, irregularity: float) -> tuple[_Blob, np.ndarray]:
        blob = _Blob.random(self.rng, self.w, self.h, size, irregularity)
        return blob, blob.rho(self.xx, self.yy)

    def mix(self, colour, alpha: np.ndarray) -> None:
        """Blend ``colour`` (RGB triple or HxWx3 array) over the canvas with ``alpha``."""
        self.rgb += (np.asarray(colour, np.float32) - self.rgb) * alpha[..., None]

    def draw(self) -> ImageDraw.ImageDraw:
        """Switch to Pillow strokes; no numpy painting after this."""
        if self.image is None:
            self.image = Image.fromarray(self.rgb.clip(0, 255).astype(np.uint8), "RGB")
        return ImageDraw.Draw(self.image)

    def dots(self, points: np.ndarray, radius: tuple[float, float], colour) -> None:
        draw = self.draw()
        for (x, y), r in zip(points, self.rng.uniform(*radius, len(points)), strict=True):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=_rgb(colour))


def _rgb(colour) -> tuple[int, int, int]:
    return cast(tuple[int, int, int], tuple(int(c) for c in np.clip(colour, 0, 255)))


def _edge(rho: np.ndarray, softness: float) -> np.ndarray:
    """Lesion opacity: 1 inside, falling to 0 across a band ``softness`` wide at the border."""
    t = np.clip((1.0 - rho) / softness + 0.5, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _jitter(rng: np.random.Generator, colour, spread: float = 8) -> np.ndarray:
    return np.asarray(colour, np.float32) + rng.normal(0, spread, 3).astype(np.float32)


def _basal_cell_carcinoma(c: _Canvas) -> None:
    blob, rho = c.blob(0.36, 0.08)
    pearl = _jitter(c.rng, (238, 186, 200)) + (16 * (1 - rho).clip(0, 1))[..., None]
    c.mix(pearl, 0.95 * _edge(rho, 0.3))
    if c.rng.random() < 0.5:
        c.dots(blob.points(c.rng, c.rng.integers(1, 4), 0.2, 0.7), (2, 4), (92, 100, 122))
    draw = c.draw()
    for x, y in blob.points(c.rng, c.rng.integers(2, 5), 0.0, 0.6):
        _vessel(draw, c.rng, x, y, blob.radius * c.rng.uniform(0.35, 0.6), 2, 3)


def _vessel(draw, rng, x, y, length, width, depth) -> None:
    """A tortuous arborising vessel: a wiggly segment that forks into two thinner ones."""
    heading = rng.uniform(0, 2 * np.pi)
    points = [(x, y)]
    for _ in range(4):
        heading += rng.normal(0, 0.45)
        x, y = x + np.cos(heading) * length / 4, y + np.sin(heading) * length / 4
        points.append((x, y))
    draw.line(points, fill=(172, 28, 42), width=width)
    if depth > 1:
        for _ in range(2):
            _vessel(draw, rng, x, y, length * 0.6, max(1, width - 1), depth - 1)


def _dermatofibroma(c: _Canvas) -> None:
    _, rho = c.blob(0.25, 0.05)
    c.mix(_jitter(c.rng, (128, 82, 56)), 0.95 * _edge(rho, 0.4))
    c.mix(_jitter(c.rng, (244, 238, 232), 4), _edge(rho / c.rng.uniform(0.45, 0.55), 0.4))


def _naevoid(c: _Canvas, t: float) -> None:
    """Nevus (t = 0) to melanoma (t = 1): larger, more irregular, more colours, no network."""
    _, rho = c.blob(0.32 + 0.14 * t, 0.03 + 0.21 * t)
    inside = _edge(rho, 0.2 - 0.05 * t)
    brown = _jitter(c.rng, (142, 90, 58) + t * np.array([-54, -36, -20], np.float32), 6)
    period = c.rng.uniform(5, 8)
    net = np.sin(c.xx * 2 * np.pi / period) * np.sin(c.yy * 2 * np.pi / period)
    c.mix(brown * (1 - 0.07 * (1 - t) * net)[..., None], inside)
    for colour, cut in (((140, 92, 62), 0.62), ((34, 24, 24), 0.6), ((108, 114, 134), 0.7)):
        c.mix(_jitter(c.rng, colour, 6), t * inside * _edge(1 + cut - c.noise(6), 0.12))
    if c.rng.random() < 0.4 * t:
        c.mix((222, 212, 216), 0.8 * inside * (c.noise(5) > 0.8))


def _keratotic(c: _Canvas, t: float) -> None:
    """Seborrheic (t = 0) to pigmented benign keratosis (t = 1): from a yellow, fissured,
    sharply bordered plaque with milia to a flat brown fingerprint patch, moth-eaten border."""
    blob, rho = c.blob(0.38 + 0.06 * t, 0.06 + 0.12 * t)
    colour = _jitter(c.rng, (200, 158, 76) + t * np.array([-44, -50, 0], np.float32))
    fissures = np.abs(np.sin(c.noise(5) * 18)) < 0.25
    a = c.rng.uniform(0, np.pi)
    stripes = np.sin((c.xx * np.cos(a) + c.yy * np.sin(a)) * 1.3 + 8 * c.noise(3))
    mottle = 0.86 + 0.28 * c.noise(9) + 0.06 * stripes
    texture = (1 - t) * (1 - 0.2 * fissures) + t * mottle
    c.mix(colour * texture[..., None], (0.95 - 0.05 * t) * _edge(rho, 0.08 + 0.27 * t))
    milia = round((1 - t) * c.rng.integers(4, 10))
    c.dots(blob.points(c.rng, milia, 0.1, 0.8), (1.5, 3.5), (246, 240, 214))
    c.dots(
        blob.points(c.rng, round((1 - t) * c.rng.integers(2, 6)), 0.1, 0.8), (1.5, 3), (72, 50, 36)
    )


def _keratinising(c: _Canvas, t: float) -> None:
    """Actinic keratosis (t = 0) to squamous cell carcinoma (t = 1): from a mottled red
    patch with white scale to a pink nodule with a keratin core and dotted vessels."""
    blob, rho = c.blob(0.42, 0.14 - 0.04 * t)
    mottle = 0.88 + 0.24 * (1 - t) * c.noise(6)
    colour = _jitter(c.rng, (208, 92, 86) + t * np.array([14, 28, 46], np.float32))
    c.mix(colour * mottle[..., None], (0.9 + 0.05 * t) * _edge(rho, 0.4 - 0.1 * t))
    scale = (c.noise(max(c.w, c.h) // 7) > 0.7) & (rho < 0.9)
    c.mix((236, 226, 204), 0.85 * (1 - t) * scale)
    keratin = _edge(rho / c.rng.uniform(0.55, 0.7) + 0.3 * (c.noise(4) - 0.5), 0.3)
    c.mix(_jitter(c.rng, (244, 238, 216), 4), t * keratin)
    vessels = round(t * c.rng.integers(10, 26))
    c.dots(blob.points(c.rng, vessels, 0.7, 0.95), (0.8, 1.6), (184, 36, 48))


def _vascular_lesion(c: _Canvas) -> None:
    blob, rho = c.blob(0.32, 0.08)
    c.mix(_jitter(c.rng, (170, 72, 104)), _edge(rho, 0.15))
    palette = ((176, 30, 52), (112, 34, 86), (140, 24, 40), (84, 22, 46))
    for x, y in blob.points(c.rng, c.rng.integers(5, 11), 0.0, 0.7):
        r = blob.radius * c.rng.uniform(0.2, 0.34)
        colour = _jitter(c.rng, palette[c.rng.integers(len(palette))], 8)
        c.draw().ellipse((x - r, y - r, x + r, y + r), fill=_rgb(colour))


#: Where each class of a confusable pair sits on its pair's painter: ``t`` is drawn from
#: Beta(a, b), so the two classes of a pair overlap the way ISIC's do (a nevus can look
#: like a melanoma); with (2, 4) against (4, 2) about one image in five sits past the
#: midpoint, on its partner's side.
_TYPICAL_LOW, _TYPICAL_HIGH = (2.0, 4.0), (4.0, 2.0)

_Painter = Callable[[_Canvas], None]
_PairPainter = Callable[[_Canvas, float], None]

_PAINTERS: dict[str, _Painter | tuple[_PairPainter, tuple[float, float]]] = {
    "actinic keratosis": (_keratinising, _TYPICAL_LOW),
    "basal cell carcinoma": _basal_cell_carcinoma,
    "dermatofibroma": _dermatofibroma,
    "melanoma": (_naevoid, _TYPICAL_HIGH),
    "nevus": (_naevoid, _TYPICAL_LOW),
    "pigmented benign keratosis": (_keratotic, _TYPICAL_HIGH),
    "seborrheic keratosis": (_keratotic, _TYPICAL_LOW),
    "squamous cell carcinoma": (_keratinising, _TYPICAL_HIGH),
    "vascular lesion": _vascular_lesion,
}


def _hairs(c: _Canvas) -> None:
    draw = c.draw()
    for _ in range(c.rng.integers(1, 6)):
        x, y = c.rng.uniform(0, c.w), c.rng.uniform(0, c.h)
        heading, step = c.rng.uniform(0, 2 * np.pi), max(c.w, c.h) / 8
        points = [(x, y)]
        for _ in range(8):
            heading += c.rng.normal(0, 0.12)
            x, y = x + np.cos(heading) * step, y + np.sin(heading) * step
            points.append((x, y))
        draw.line(points, fill=_rgb(_jitter(c.rng, (48, 36, 30), 10)), width=1)


def draw_lesion(label: str, rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """Draw one synthetic lesion of class ``label``.

    Args:
        label: one of :data:`skinlab.core.classes.ISIC_CLASS_NAMES`.
        rng: the only source of randomness; the same generator state gives the same image.
        size: ``(width, height)`` in pixels, each at least 16.

    Returns:
        An RGB :class:`PIL.Image.Image` of exactly ``size``.

    Raises:
        ValueError: ``label`` is not an ISIC class name, or ``size`` is too small.
    """
    if label not in _PAINTERS:
        raise ValueError(f"{label!r} is not an ISIC class; use one of {', '.join(_PAINTERS)}.")
    w, h = size
    if min(w, h) < 16:
        raise ValueError(f"A demo image must be at least 16x16 pixels, not {w}x{h}.")
    c = _Canvas(rng, w, h)
    painter = _PAINTERS[label]
    if isinstance(painter, tuple):
        pair_painter, (a, b) = painter
        pair_painter(c, float(rng.beta(a, b)))
    else:
        painter(c)
    if rng.random() < 0.4:
        _hairs(c)
    c.draw()
    assert c.image is not None  # draw() made the Pillow image
    blurred = c.image.filter(ImageFilter.BoxBlur(rng.uniform(0.5, 1.0)))
    rgb = np.asarray(blurred, np.float32) * rng.uniform(0.95, 1.05)
    if rng.random() < 0.25:  # the dark ring a contact dermoscope leaves in the corners
        ring = np.clip((c.r2 - rng.uniform(0.6, 0.8)) / 0.08, 0, 0.92)
        rgb *= (1 - ring)[..., None]
    grain = rng.standard_normal((h, w, 1), dtype=np.float32) * 3.0
    return Image.fromarray((rgb + grain).clip(0, 255).astype(np.uint8), "RGB")
