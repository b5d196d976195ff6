"""Data augmentation as Keras layers, placed inside the model (keras-io style).

The layers are the first block of every skinlab model, so training and prediction share one
graph and cannot drift apart. They act only when the model is called with ``training=True``
(``model.fit``); ``predict`` and ``model(x, training=False)`` pass images through untouched.
Inputs are raw RGB ``float32`` in ``0..255``, so the colour layers use that value range.

Presets (``s`` is the strength multiplier, ``RunConfig.augmentation_strength``):

* ``"notebook"``: the seed notebook exactly at ``s = 1``: flips, rotation ``0.2 s``,
  zoom ``0.2 s``.
* ``"light"``: flips, rotation ``0.1 s``, zoom ``0.1 s``, contrast ``0.1 s``.
* ``"strong"``: flips, rotation ``0.5 s`` (a dermoscopic lesion has no "up", so a full turn
  is fair), zoom ``0.2 s``, translation ``0.1 s``, contrast ``0.2 s``, brightness ``0.2 s``.
* ``"dermoscopy"``: the recipe of the GPU experiment (issue 14): flips, any rotation (a full
  turn whatever ``s``), translation ``0.1 s``, the image shown at 0.75 to 1.1 times its size
  (zoom ``(-0.09, 0.33) s`` in Keras' terms; the gaps filled by reflection), contrast,
  brightness and saturation ``0.2 s`` each.

Example::

    aug = augmentation_layers("light", strength=1.0, seed=123)
    model = build_model("skinlab_cnn", num_classes=9, image_size=128, augmentation=aug)
"""

from __future__ import annotations

import math

import keras
from keras import ops

from skinlab.core.config import AUGMENTATIONS
from skinlab.model.frames import RandomFrame
from skinlab.model.geometry import RandomGeometry

#: Name of the augmentation block inside every model (prediction code can look it up).
AUGMENTATION_LAYER = "augmentation"

#: Per-preset base factors, multiplied by the strength. Keys are Keras layer kinds; a zoom
#: may be a ``(low, high)`` range (see :class:`~skinlab.model.geometry.RandomGeometry`).
_PRESETS: dict[str, dict[str, float | tuple[float, float]]] = {
    "notebook": {"rotation": 0.2, "zoom": 0.2},
    "light": {"rotation": 0.1, "zoom": 0.1, "contrast": 0.1},
    "strong": {
        "rotation": 0.5,
        "zoom": 0.2,
        "translation": 0.1,
        "contrast": 0.2,
        "brightness": 0.2,
    },
    "dermoscopy": {
        "rotation": 0.5,
        # Keras zooms by the inverse of the image's scale: shown at 1.1x is 1/1.1 - 1.
        "zoom": (1 / 1.1 - 1, 1 / 0.75 - 1),
        "translation": 0.1,
        "contrast": 0.2,
        "brightness": 0.2,
        "saturation": 0.2,
    },
}

#: Largest aspect change of a random resized crop: log(4/3), from 3:4 to 4:3.
CROP_ASPECT = math.log(4 / 3)

#: Presets whose rotation is any angle at every strength (a lesion has no "up").
_FULL_TURN = ("dermoscopy",)

#: Kinds applied by the one geometric warp; the rest are colour layers.
_GEOMETRIC = ("rotation", "zoom", "translation")

#: Largest factor of each layer: Keras wants fractions; a rotation of 0.5 is already a full turn.
_LIMITS = {
    "rotation": 0.5,
    "zoom": 0.9,
    "translation": 0.9,
    "contrast": 1.0,
    "brightness": 1.0,
    "saturation": 1.0,
}


def augmentation_layers(
    preset: str,
    strength: float = 1.0,
    seed: int = 0,
    frame: float = 0.0,
    crop_area: float = 1.0,
) -> keras.Sequential | None:
    """The augmentation block of preset ``preset``.

    Args:
        preset: one of :data:`skinlab.core.config.AUGMENTATIONS`.
        strength: multiplies every range except the flips (``1.0`` = the preset as listed);
            ranges are capped (rotation at a full turn, the rest where Keras needs a fraction).
        seed: each random layer gets its own seed, ``seed + i`` for the ``i``-th layer.
        frame: share of the images whose dermatoscope frame is randomised after the warp
            (:class:`skinlab.model.frames.RandomFrame`; ``RunConfig.frame_randomisation``).
        crop_area: random resized crops (``RunConfig.crop_area``): the warp may zoom in until
            only this share of the image's area is left, and stretch the aspect ratio between
            3:4 and 4:3, as torchvision's ``RandomResizedCrop``; 1 = off.

    Returns:
        ``None`` for ``"none"`` without ``frame`` or ``crop_area``, else a ``keras.Sequential``
        named ``"augmentation"``.

    Raises:
        ValueError: unknown preset or negative strength.
    """
    if preset not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {', '.join(AUGMENTATIONS)}; got '{preset}'.")
    if strength < 0:
        raise ValueError(f"augmentation strength cannot be negative, not {strength}.")
    if not 0.0 < crop_area <= 1.0:
        raise ValueError(f"crop area must be in (0, 1], not {crop_area}.")
    if preset == "none" and not frame and crop_area == 1.0:
        return None
    factors = {
        kind: _scaled(base, strength, _LIMITS[kind])
        for kind, base in _PRESETS.get(preset, {}).items()
    }
    if preset in _FULL_TURN:
        factors["rotation"] = _LIMITS["rotation"]
    # Flips, rotation, zoom and shift are one warp (see skinlab.model.geometry for why and the cost).
    layers: list[keras.layers.Layer] = []
    if preset != "none" or crop_area < 1.0:
        layers.append(_geometry(factors, crop_area, flip=preset != "none", seed=seed))
    if frame:
        # After the warp: a real frame is a centred circle, not a reflected one.
        layers.append(RandomFrame(frame, seed=seed + len(factors) + 1, name="frame"))
    colour = [kind for kind in factors if kind not in _GEOMETRIC]
    for i, kind in enumerate(colour, start=1):
        layers.append(_colour_layer(kind, factors[kind], seed + i))
    return keras.Sequential(layers, name=AUGMENTATION_LAYER)


def _geometry(factors: dict, crop_area: float, *, flip: bool, seed: int) -> RandomGeometry:
    zoom = factors.get("zoom", 0.0)
    aspect = 0.0
    if crop_area < 1.0:
        # Shown at sqrt(area) of its side at most: Keras' zoom of sqrt(area) - 1.
        low, high = (-zoom, zoom) if isinstance(zoom, int | float) else zoom
        zoom = (min(low, math.sqrt(crop_area) - 1), high)
        aspect = CROP_ASPECT
    return RandomGeometry(
        flip=flip,
        rotation=factors.get("rotation", 0.0),
        zoom=zoom,
        translation=factors.get("translation", 0.0),
        aspect=aspect,
        seed=seed,
        name="geometry",
    )


def _scaled(base, strength: float, limit: float):
    """``base * strength`` capped at ``limit`` (each end of a range, within ``±limit``)."""
    if isinstance(base, tuple):
        return tuple(max(-limit, min(end * strength, limit)) for end in base)
    return min(base * strength, limit)


def _colour_layer(kind: str, factor: float, seed: int) -> keras.layers.Layer:
    if kind == "contrast":
        # A pair: Keras 3 reads a single number f as [1, 1 + f], i.e. only ever more contrast.
        return keras.layers.RandomContrast(
            (factor, factor), value_range=(0, 255), seed=seed, name="contrast"
        )
    if kind == "brightness":
        return keras.layers.RandomBrightness(
            factor, value_range=(0, 255), seed=seed, name="brightness"
        )
    if kind == "saturation":
        return RandomSaturation(factor, seed=seed, name="saturation")
    raise AssertionError(f"no colour layer for augmentation kind '{kind}'")


@keras.saving.register_keras_serializable(package="skinlab")
class RandomSaturation(keras.layers.Layer):
    """Scale each image's saturation by ``U(1 - factor, 1 + factor)``, as torchvision's
    ``ColorJitter`` does: a blend with the image's grey version, clipped to ``0..255``.

    Keras' own ``RandomSaturation`` goes through HSV and does not clip, so more saturation
    leaves negative pixels (Keras 3.15).

    Args:
        factor: largest relative change, in ``[0, 1]``.
        seed: seeds the layer's random generator.
    """

    def __init__(self, factor: float, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.factor, self.seed = float(factor), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        shape = (ops.shape(images)[0], 1, 1, 1)
        amount = keras.random.uniform(
            shape, 1 - self.factor, 1 + self.factor, seed=self.seed_generator, dtype=images.dtype
        )
        luma = ops.convert_to_tensor([0.299, 0.587, 0.114], images.dtype)
        grey = ops.sum(images * luma, axis=-1, keepdims=True)
        return ops.clip(grey + amount * (images - grey), 0, 255)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}
