"""Grad-CAM (Selvaraju et al., 2017): which parts of an image pushed the model to its answer.

The class score's gradient with respect to the last convolutional feature map, averaged over
space, weighs that map's channels; the ReLU of the weighted sum is the heatmap. The feature
map is the one the registry names (:func:`skinlab.model.backbones.gradcam_target`), never a guess.
Augmentation is off: every layer runs with ``training=False``.

Transfer models keep the feature map *inside* their nested ``"backbone"`` sub-model, which
Keras cannot expose as an output of the outer model. For those the outer model's layers are
run one by one (they form a plain chain, as :func:`skinlab.model.backbones.build_model` makes
them), with the backbone replaced by a copy that also returns the feature map.

Example::

    heatmap = gradcam(model, load_rgb_array("lesion.jpg", size=224))   # (224, 224) in [0, 1]
    overlay(decode_image("lesion.jpg"), heatmap).save("explained.png")
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from skinlab.model.backbones import gradcam_target

# Google's Turbo colormap as the polynomial fit by Ruofei Du (a smooth, perceptually ordered
# rainbow: dark blue -> cyan -> green -> yellow -> red), so no matplotlib is needed.
# Rows are red, green, blue; columns the coefficients of x**0 .. x**5.
_TURBO = np.array(
    [
        [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
        [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
        [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
    ]
)


def gradcam(model: keras.Model, image: np.ndarray, class_index: int | None = None) -> np.ndarray:
    """The Grad-CAM heatmap of ``class_index`` for ``image``.

    Args:
        model: a model from :func:`skinlab.model.backbones.build_model` (any registered backbone),
            whatever its weights.
        image: ``(H, W, 3)`` RGB, ``float32`` or ``uint8`` in ``0..255``, at the model's
            input size.
        class_index: the class to explain; ``None`` explains the top-scoring class.

    Returns:
        ``float32`` array ``(H, W)`` in ``[0, 1]``: the ReLU of the gradient-weighted feature
        map, upsampled bilinearly to the image size and divided by its maximum. A map with
        no positive evidence stays all zeros (never NaN).

    Raises:
        ValueError: the image does not fit the model's input, or ``class_index`` is out of
            range.
    """
    image = np.asarray(image)
    expected = tuple(model.input_shape[1:])
    if image.shape != expected:
        raise ValueError(
            f"Grad-CAM needs an image of shape {expected} (the model's input); got {image.shape}."
        )
    x = tf.convert_to_tensor(image[None], dtype=tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)  # records the whole chain even when every weight is frozen
        features, logits = feature_forward(model, x)
        num_classes = int(logits.shape[-1])
        if class_index is None:
            class_index = int(tf.argmax(logits[0]))
        if not 0 <= class_index < num_classes:
            raise ValueError(
                f"class_index must be between 0 and {num_classes - 1}, not {class_index}."
            )
        score = logits[0, class_index]
    grads = tape.gradient(score, features)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # one weight per channel
    cam = tf.nn.relu(tf.reduce_sum(features * weights, axis=-1, keepdims=True))
    cam = tf.image.resize(cam, image.shape[:2], method="bilinear")[0, :, :, 0].numpy()
    peak = float(cam.max())
    if not np.isfinite(peak) or peak <= 0:
        return np.zeros(image.shape[:2], dtype=np.float32)
    return np.clip(cam / peak, 0.0, 1.0).astype(np.float32)


def feature_forward(model: keras.Model, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``(feature map, logits)`` of ``model`` on the batch ``x``, with ``training=False``.

    The logits equal ``model(x, training=False)``; the feature map is the registry's Grad-CAM
    layer, ``(N, h, w, channels)``.
    """
    submodel, layer_name = gradcam_target(model)
    if submodel is None:
        probe = keras.Model(model.inputs, [model.get_layer(layer_name).output, model.output])
        features, logits = probe(x, training=False)
        return features, logits
    inner = keras.Model(submodel.inputs, [submodel.get_layer(layer_name).output, submodel.output])
    features = None
    h = x
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if layer is submodel:
            features, h = inner(h, training=False)
        else:
            h = layer(h, training=False)
    return features, h


def colormap(values: np.ndarray) -> np.ndarray:
    """Turbo colours of ``values`` in ``[0, 1]`` (clipped): ``uint8`` RGB, shape ``(..., 3)``."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)[..., None]
    powers = v ** np.arange(6)  # (..., 6)
    rgb = np.clip(powers @ _TURBO.T, 0.0, 1.0)
    return np.round(rgb * 255).astype(np.uint8)


def overlay(
    image: np.ndarray | Image.Image, heatmap: np.ndarray, opacity: float = 0.4
) -> Image.Image:
    """``image`` with ``heatmap`` drawn over it in Turbo colours.

    Args:
        image: the original RGB image at any size (a PIL image or an ``(H, W, 3)`` array in
            ``0..255``); the heatmap is resized (bilinearly) to it.
        heatmap: ``(h, w)`` values in ``[0, 1]``, e.g. from :func:`gradcam`.
        opacity: weight of the colours, from ``0`` (the image unchanged) to ``1`` (only the
            heatmap).

    Returns:
        An RGB PIL image of the original size.

    Raises:
        ValueError: ``opacity`` outside ``[0, 1]`` or a heatmap that is not 2-D.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, not {opacity}.")
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap must be a 2-D array, got shape {heatmap.shape}.")
    if isinstance(image, Image.Image):
        base = np.asarray(image.convert("RGB"), dtype=np.float32)
    else:
        base = np.asarray(image, dtype=np.float32)[..., :3]
    height, width = base.shape[:2]
    resized = np.asarray(
        Image.fromarray(heatmap).resize((width, height), Image.Resampling.BILINEAR)
    )
    colours = colormap(resized).astype(np.float32)
    blended = (1.0 - opacity) * base + opacity * colours
    return Image.fromarray(np.clip(np.round(blended), 0, 255).astype(np.uint8), "RGB")
