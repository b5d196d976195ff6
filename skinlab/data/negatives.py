"""Images that are *not* dermoscopy, made offline, to measure the out-of-distribution gate.

An unfamiliar-image check is only as good as its measured detection rate, and measuring it
needs images a user might wrongly drop on the Predict page. Four families, all made here
without a network:

* ``photo``: scikit-image's bundled sample photographs (a person, a cat, coffee, a rocket,
  bricks, grass, the Hubble deep field, a retina, a microscope slide, text, ...).
* ``crop``: close crops of those photographs, which lose the scene's context as a lesion
  close-up does.
* ``recolour``: the photographs mapped onto a skin palette (dark brown to pink), so the
  colour checks of :mod:`skinlab.evaluate.ood` cannot catch them; and hue-rotated copies.
* ``texture``: procedural textures (smooth noise, stripes, checkers, blobs, cells) in skin
  and other colours, drawn from ``seed``.

Every image is RGB with a shorter side of :data:`SIDE_PX`, so the quality checks do not
reject it for its size alone.

Example::

    for negative in negative_set(seed=1):
        flagged = gate_flags(negative.image)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

#: Shorter side of every negative image (ISIC exports are 180 px).
SIDE_PX = 192
#: The bundled scikit-image samples used as photographs (none needs a download).
PHOTOS = (
    "astronaut",
    "camera",
    "coffee",
    "chelsea",
    "rocket",
    "brick",
    "grass",
    "gravel",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "cell",
    "coins",
    "moon",
    "page",
    "text",
    "colorwheel",
    "logo",
    "horse",
    "clock",
)
FAMILIES = ("photo", "crop", "recolour", "texture")
# A skin palette from dark brown (lesion) to light pink (skin), as RGB 0..255.
_SKIN_DARK = np.array([90.0, 50.0, 35.0])
_SKIN_LIGHT = np.array([235.0, 190.0, 170.0])


@dataclass(frozen=True)
class Negative:
    """One non-dermoscopy image: a readable ``name``, its ``family`` and the RGB ``image``."""

    name: str
    family: str
    image: Image.Image


def sample_photographs() -> list[tuple[str, Image.Image]]:
    """The :data:`PHOTOS` as RGB images (greyscale and binary ones expanded, alpha dropped)."""
    import skimage.data

    out = []
    for name in PHOTOS:
        array = np.asarray(getattr(skimage.data, name)())
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=-1)
        out.append((name, _sized(Image.fromarray(array[..., :3].astype(np.uint8), "RGB"))))
    return out


def crops(image: Image.Image, rng: np.random.Generator, count: int = 2) -> list[Image.Image]:
    """``count`` square crops of ``image`` covering 35-60 % of its shorter side each."""
    out = []
    short = min(image.size)
    for _ in range(count):
        side = int(short * rng.uniform(0.35, 0.6))
        left = int(rng.integers(0, image.width - side + 1))
        top = int(rng.integers(0, image.height - side + 1))
        out.append(_sized(image.crop((left, top, left + side, top + side))))
    return out


def skin_tint(image: Image.Image) -> Image.Image:
    """``image``'s brightness mapped onto the skin palette (dark brown to pink)."""
    grey = np.asarray(image.convert("L"), dtype=np.float64)[..., None] / 255.0
    return Image.fromarray((_SKIN_DARK + grey * (_SKIN_LIGHT - _SKIN_DARK)).astype(np.uint8))


def hue_rotated(image: Image.Image, turn: float = 0.5) -> Image.Image:
    """``image`` with every hue turned by ``turn`` of a full circle."""
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + round(255 * turn)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def procedural_textures(count: int, seed: int) -> list[tuple[str, Image.Image]]:
    """``count`` textures drawn from ``seed``: kinds in turn, colours and scales at random.

    Kinds: smooth noise, stripes, checkers, blobs (dark spots on a light ground, the
    closest to a lesion) and cells (a Voronoi pattern). Half are in the skin palette.
    """
    rng = np.random.default_rng(seed)
    kinds = (_noise, _stripes, _checkers, _blobs, _cells)
    out = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        field = kind(rng, SIDE_PX)  # (side, side) in 0..1
        dark, light = (
            (_SKIN_DARK, _SKIN_LIGHT)
            if i % 2 == 0
            else (rng.uniform(0, 255, 3), rng.uniform(0, 255, 3))
        )
        rgb = dark + field[..., None] * (light - dark)
        out.append((f"{kind.__name__.strip('_')} {i}", Image.fromarray(rgb.astype(np.uint8))))
    return out


@functools.lru_cache(maxsize=4)
def negative_set(
    *, seed: int = 0, textures: int = 20, families: tuple[str, ...] = FAMILIES
) -> tuple[Negative, ...]:
    """Non-dermoscopy images of the given ``families`` (see the module docstring).

    ``seed`` draws the crops' positions and the textures; the photographs are fixed. With
    the default four families: 20 photographs, 40 crops, 40 recolourings and ``textures``
    textures. Cached (a few seconds to draw); treat the images as read-only.
    """
    rng = np.random.default_rng(seed)
    out: list[Negative] = []
    if set(families) & {"photo", "crop", "recolour"}:
        for name, photo in sample_photographs():
            if "photo" in families:
                out.append(Negative(name, "photo", photo))
            if "crop" in families:
                for i, crop in enumerate(crops(photo, rng)):
                    out.append(Negative(f"{name} crop {i + 1}", "crop", crop))
            if "recolour" in families:
                out.append(Negative(f"{name} skin-tinted", "recolour", skin_tint(photo)))
                out.append(Negative(f"{name} hue-rotated", "recolour", hue_rotated(photo)))
    if "texture" in families:
        out.extend(
            Negative(name, "texture", img) for name, img in procedural_textures(textures, seed)
        )
    return tuple(out)


def _sized(image: Image.Image) -> Image.Image:
    """``image`` scaled so its shorter side is :data:`SIDE_PX`."""
    scale = SIDE_PX / min(image.size)
    size = (max(SIDE_PX, round(image.width * scale)), max(SIDE_PX, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR)


def _smooth(rng: np.random.Generator, side: int, radius: float) -> np.ndarray:
    noise = Image.fromarray((rng.random((side, side)) * 255).astype(np.uint8))
    blurred = np.asarray(noise.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float64)
    return (blurred - blurred.min()) / max(np.ptp(blurred), 1e-9)


def _noise(rng: np.random.Generator, side: int) -> np.ndarray:
    return _smooth(rng, side, rng.uniform(2, 12))


def _stripes(rng: np.random.Generator, side: int) -> np.ndarray:
    y, x = np.mgrid[0:side, 0:side]
    angle, period = rng.uniform(0, np.pi), rng.uniform(6, 40)
    return 0.5 + 0.5 * np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period)


def _checkers(rng: np.random.Generator, side: int) -> np.ndarray:
    y, x = np.mgrid[0:side, 0:side]
    cell = int(rng.integers(8, 48))
    return ((x // cell + y // cell) % 2).astype(np.float64)


def _blobs(rng: np.random.Generator, side: int) -> np.ndarray:
    # Dark spots where smooth noise is highest: small lesion-like islands on a light ground.
    field = _smooth(rng, side, rng.uniform(4, 10))
    return (field < np.quantile(field, rng.uniform(0.75, 0.95))).astype(np.float64)


def _cells(rng: np.random.Generator, side: int) -> np.ndarray:
    points = rng.uniform(0, side, (int(rng.integers(8, 40)), 2))
    y, x = np.mgrid[0:side, 0:side]
    distance = np.hypot(x[..., None] - points[:, 0], y[..., None] - points[:, 1])
    nearest = np.sort(distance, axis=-1)
    edge = nearest[..., 1] - nearest[..., 0]
    return np.clip(edge / max(edge.max(), 1e-9) * 3, 0, 1)
