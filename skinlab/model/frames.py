"""Frame randomisation: the dermatoscope's dark circular frame stops being a class cue.

Some dermatoscopes leave a dark circle around the field of view (most of HAM10000's images
have one; the older ISIC archive's mostly do not). Where a class comes from one collection
only, a model learns "frame, so not melanoma". :class:`RandomFrame` breaks that link at
training time: on a random share of the images it draws such a frame, on another share of the
same size it zooms in until the corners (where a frame would be) are cropped away, so a frame
is as likely on any class.

Contract:

* Input and output: raw RGB ``0..255`` images ``(B, H, W, 3)``, ``float32``.
* ``rate`` in ``[0, 1]``: each image gets a frame drawn with probability ``rate / 2`` and
  its corners cropped away with probability ``rate / 2``; the rest pass unchanged.
* A drawn frame is a dark (``0..40`` grey) disc complement centred on the image, of radius
  ``U(0.8, 1.25)`` times the half side (corners are at 1.41), with a soft edge; a crop keeps
  the central ``U(0.7, 0.85)`` of each side and scales it back up.
* Only when called with ``training=True``; prediction passes images untouched.

Example::

    layer = RandomFrame(0.5, seed=1)
    augmented = layer(images, training=True)
"""

from __future__ import annotations

import keras
from keras import ops

#: Radius of a drawn frame, in half sides of the image (1.41 reaches the corners).
RADIUS = (0.8, 1.25)
#: Share of each side a crop keeps.
CROP = (0.7, 0.85)
#: Grey level of a drawn frame.
FRAME_GREY = (0.0, 40.0)
#: Width of the frame's soft edge, in half sides.
EDGE = 0.04


@keras.saving.register_keras_serializable(package="skinlab")
class RandomFrame(keras.layers.Layer):
    """Draw a dark circular frame on ``rate / 2`` of the images, crop the corners of another
    ``rate / 2`` away (see the module contract).

    Args:
        rate: share of the images whose frame is changed, in ``[0, 1]``.
        seed: seeds the layer's random generator.
    """

    def __init__(self, rate: float = 0.5, seed: int | None = None, **kwargs) -> None:
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"frame rate must be in [0, 1], not {rate}.")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training or not self.rate:
            return images
        x = ops.cast(images, "float32")
        shape = ops.shape(x)
        batch = shape[0]
        choice = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator)
        framed = self._draw(x, batch, shape[1], shape[2])
        cropped = self._crop(x, batch)
        out = ops.where(choice < self.rate / 2, framed, x)
        return ops.where((choice >= self.rate / 2) & (choice < self.rate), cropped, out)

    def _draw(self, x, batch, height, width):
        ys = ops.linspace(-1.0, 1.0, height)
        xs = ops.linspace(-1.0, 1.0, width)
        distance = ops.sqrt(ops.square(ys)[:, None] + ops.square(xs)[None, :])[None, :, :, None]
        radius = keras.random.uniform((batch, 1, 1, 1), *RADIUS, seed=self.seed_generator)
        grey = keras.random.uniform((batch, 1, 1, 1), *FRAME_GREY, seed=self.seed_generator)
        outside = ops.sigmoid((distance - radius) / (EDGE / 4))
        return x * (1.0 - outside) + grey * outside

    def _crop(self, x, batch):
        keep = keras.random.uniform((batch,), *CROP, seed=self.seed_generator)
        height = ops.cast(ops.shape(x)[1], "float32")
        width = ops.cast(ops.shape(x)[2], "float32")
        cx, cy = (width - 1) / 2, (height - 1) / 2
        zeros = ops.zeros_like(keep)
        transforms = ops.stack(
            [keep, zeros, cx - keep * cx, zeros, keep, cy - keep * cy, zeros, zeros], axis=1
        )
        return ops.image.affine_transform(
            x, transforms, interpolation="bilinear", fill_mode="reflect"
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
