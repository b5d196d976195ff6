"""Colour constancy inside the model: every image is seen under one neutral light.

Dermatoscopes of different clinics light and white-balance the skin differently, and a model
learns that cast as a cue for where an image came from (and, when a class comes from one clinic
only, for the class). Shades of Gray (Finlayson & Trezzi 2004; for dermoscopy Barata et al.
2015, and the ISIC 2019 winners' preprocessing) estimates the light of each image as the
Minkowski ``p``-norm mean of each channel and divides it out, so a grey world under any cast
comes out grey.

Contract:

* :class:`ShadesOfGray` takes raw RGB ``0..255`` images ``(B, H, W, 3)`` and returns the same
  shape and range: each channel multiplied by ``1 / (sqrt(3) * e_c)``, where ``e`` is the
  unit-length vector of the channels' ``p``-means (``p = 6`` by default). A neutral image is
  unchanged; black pixels (a dermatoscope's frame) count for nothing in ``e``.
* It acts at training *and* prediction (it is not an augmentation), so a model that was
  trained with it is scored, exported and served with it: it is a layer of the model.

Example::

    balanced = ShadesOfGray()(images)        # images: float32 0..255
"""

from __future__ import annotations

import math

import keras
from keras import ops

#: Choices of ``RunConfig.colour_constancy`` (kept in step with skinlab.core.config).
METHODS = ("none", "shades_of_gray")
#: The Minkowski norm of Shades of Gray: p = 6, the value the dermoscopy literature uses.
POWER = 6.0


@keras.saving.register_keras_serializable(package="skinlab")
class ShadesOfGray(keras.layers.Layer):
    """Divide out each image's light, estimated by the ``power``-mean of each channel.

    Args:
        power: the Minkowski norm ``p`` (1 is Grey World, large values approach max-RGB).
    """

    def __init__(self, power: float = POWER, **kwargs) -> None:
        kwargs["dtype"] = "float32"  # the 6th powers of 0..1 need float32's range
        super().__init__(**kwargs)
        if power < 1:
            raise ValueError(f"power must be at least 1, not {power}.")
        self.power = float(power)

    def call(self, images):
        x = ops.clip(ops.cast(images, "float32"), 0.0, 255.0)
        scaled = x / 255.0
        light = ops.power(
            ops.mean(ops.power(scaled, self.power), axis=(1, 2), keepdims=True), 1.0 / self.power
        )
        light = light / (ops.sqrt(ops.sum(ops.square(light), axis=-1, keepdims=True)) + 1e-6)
        gain = 1.0 / (light * math.sqrt(3.0) + 1e-6)
        return ops.clip(x * gain, 0.0, 255.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "power": self.power}


def colour_constancy_layer(method: str) -> keras.layers.Layer | None:
    """The layer of ``RunConfig.colour_constancy`` ``method``: ``None`` for ``"none"``.

    Raises:
        ValueError: an unknown method.
    """
    if method not in METHODS:
        raise ValueError(f"colour_constancy must be one of {', '.join(METHODS)}; got '{method}'.")
    return ShadesOfGray(name="colour_constancy") if method == "shades_of_gray" else None
