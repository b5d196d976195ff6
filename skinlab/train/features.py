"""Cached backbone features for head-only training.

While a transfer model's backbone is entirely frozen (the head phase of ImageNet transfer
learning), every epoch would push each training image through the same fixed network to get
the same pooled features, and only the small head after them learns. So the features are
computed once and the head is trained on them: a head epoch costs a matrix product per batch
instead of a backbone pass per image.

:func:`split_model` splits a model from :func:`skinlab.model.backbones.build_model` into

* an **extractor**, image → preprocessing → ``"backbone"`` → ``"avg_pool"``, without the
  augmentation block, and
* a **head**, pooled features → the layers after ``"avg_pool"`` (``"head_dropout"``,
  ``"logits"``): the full model's own layer objects, so fitting the head trains the full model
  in place. Evaluation, calibration, export and ``best.weights.h5`` use the full model as ever.

With augmentation, each epoch would see new random variants; :func:`extract_features` instead
computes ``views`` augmented variants of each training image once (the model's own
augmentation block with ``training=True``, then the extractor), and
:meth:`CachedFeatures.dataset` draws one of them per image each epoch. Validation features
are computed without augmentation. Memory: ``N * views * feature_dim * 4`` bytes.

Example::

    inputs = prepare_head(model, train_images, val_images, views=4, batch_size=32, seed=1)
    inputs.model.compile(...)
    inputs.model.fit(inputs.train, validation_data=inputs.validation, epochs=10)
    model.predict(images)            # the head's training shows in the full model

Why one module: computing, caching and training on backbone features share the cache's key
and the head model built on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from skinlab.core.config import RunConfig
from skinlab.data.pipeline import drawn_rows
from skinlab.model.augment import AUGMENTATION_LAYER
from skinlab.model.backbones import BACKBONES, POOL_LAYER, backbone_submodel
from skinlab.train.imbalance import balanced_probabilities

#: Status phase while the features are being computed.
FEATURES_PHASE = "features"

#: ``progress(batches_done, batches_total)``, called after each batch of the feature pass.
Progress = Callable[[int, int], None]


def caches_features(config: RunConfig, unfreeze: int | None) -> bool:
    """Whether a phase of ``config`` trains the head on cached features.

    True with ``feature_cache="auto"`` for a transfer backbone with ImageNet weights in a
    phase that unfreezes nothing: only then is the whole backbone frozen. A randomly
    initialised backbone trains with the head, and fine-tuning changes the features.
    """
    return (
        config.feature_cache == "auto"
        and config.weights == "imagenet"
        and BACKBONES[config.backbone].kind == "transfer"
        and not unfreeze
    )


@dataclass(frozen=True)
class HeadSplit:
    """A transfer model cut at its pooled features (see the module docstring).

    Attributes:
        extractor: image (``0..255``) → pooled features; call it with ``training=False``.
        head: pooled features → logits, sharing its layers with the full model.
        augmentation: the full model's augmentation block, or ``None``.
    """

    extractor: keras.Model
    head: keras.Model
    augmentation: keras.layers.Layer | None


def split_model(model: keras.Model) -> HeadSplit:
    """Split ``model`` into an extractor and a head that share its layers (no copies).

    Raises:
        ValueError: ``model`` is not a transfer model from :func:`build_model` (no
            ``"backbone"`` sub-model or no ``"avg_pool"`` layer).
    """
    base = backbone_submodel(model)
    # Functional models list their layers in call order, and transfer models are one chain.
    chain = [lay for lay in model.layers if not isinstance(lay, keras.layers.InputLayer)]
    names = [layer.name for layer in chain]
    if base is None or POOL_LAYER not in names:
        raise ValueError(
            f"Only transfer models can train on cached features; '{model.name}' has no "
            "backbone sub-model to freeze."
        )
    cut = names.index(POOL_LAYER) + 1
    augmentation = next((lay for lay in chain if lay.name == AUGMENTATION_LAYER), None)
    images = keras.Input(shape=model.input_shape[1:], dtype="float32", name="image")
    x = images
    for layer in chain[:cut]:
        if layer is augmentation:
            continue
        # The backbone runs in inference mode, as in build_model (BatchNorm statistics fixed).
        x = layer(x, training=False) if layer is base else layer(x)
    extractor = keras.Model(images, x, name=f"{model.name}_features")
    features = keras.Input(shape=x.shape[1:], dtype="float32", name="features")
    y = features
    for layer in chain[cut:]:
        y = layer(y)
    head = keras.Model(features, y, name=f"{model.name}_head")
    return HeadSplit(extractor=extractor, head=head, augmentation=augmentation)


@dataclass(frozen=True)
class CachedFeatures:
    """Features of N images, ``views`` variants each, with their labels.

    Attributes:
        features: ``float32 (views, N, feature_dim)``.
        labels: ``int32 (N,)`` class indices.
    """

    features: np.ndarray
    labels: np.ndarray

    @property
    def views(self) -> int:
        return int(self.features.shape[0])

    def dataset(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        draw_probabilities: np.ndarray | None = None,
    ) -> tf.data.Dataset:
        """Batches of ``(features, labels)``: each image once per epoch, as one of its views.

        The view of each image is drawn anew every epoch (deterministically for ``seed``).
        The order follows :func:`skinlab.data.pipeline.make_dataset`'s in-memory feed for the same
        ``shuffle`` and ``seed``, so with one view the head sees the same batches as the full
        model fitted on images would. With ``draw_probabilities`` (one per image) each epoch
        draws its images instead, as :func:`skinlab.data.pipeline.drawn_rows` does for images.
        """
        n, views = len(self.labels), self.views
        order = tf.data.Dataset.range(n)
        if draw_probabilities is not None:
            order = drawn_rows(draw_probabilities, seed)
        elif shuffle:
            order = order.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        if views > 1:
            draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            order = tf.data.Dataset.zip(order, draws).map(
                lambda i, draw: (i, tf.math.floormod(draw, views))
            )
        else:
            order = order.map(lambda i: (i, tf.constant(0, tf.int64)))
        order = order.batch(batch_size)

        def gather(index, view):
            x, y = tf.numpy_function(
                partial(_take, self.features, self.labels),
                [index, view],
                (tf.float32, tf.int32),
                stateful=False,
            )
            x.set_shape((None, self.features.shape[-1]))
            y.set_shape((None,))
            return x, y

        return order.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _take(
    features: np.ndarray, labels: np.ndarray, index: np.ndarray, view: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    return features[view, index], labels[index]


def extract_features(
    extractor: Callable[..., Any],
    images: tf.data.Dataset,
    *,
    augmentation: keras.layers.Layer | None = None,
    views: int = 1,
    progress: Progress | None = None,
) -> CachedFeatures:
    """Run every image of ``images`` through ``extractor`` once per view.

    Args:
        extractor: called as ``extractor(batch, training=False)``, e.g.
            :attr:`HeadSplit.extractor`.
        images: batches of ``(images, labels, ...)`` in a fixed order (not shuffled).
        augmentation: applied with ``training=True`` before each view; ``None`` computes one
            plain view whatever ``views`` says.
        views: variants per image with ``augmentation``.
        progress: called after each batch with the batches done and the total.

    Returns:
        The features in ``images``' order.
    """
    views = views if augmentation is not None else 1
    if augmentation is None:
        step = tf.function(lambda x: extractor(x, training=False))
    else:
        step = tf.function(lambda x: extractor(augmentation(x, training=True), training=False))
    total = int(images.cardinality())
    parts: list[list[np.ndarray]] = [[] for _ in range(views)]
    labels = []
    for done, (batch, batch_labels, *_) in enumerate(images, start=1):
        for part in parts:
            part.append(np.asarray(step(batch), np.float32))
        labels.append(np.asarray(batch_labels, np.int32))
        if progress is not None:
            progress(done, total)
    return CachedFeatures(
        features=np.stack([np.concatenate(part) for part in parts]),
        labels=np.concatenate(labels),
    )


@dataclass(frozen=True)
class HeadInputs:
    """What ``fit`` needs to train a model's head on cached features.

    Attributes:
        model: the head (its layers are the full model's).
        train: shuffled batches of ``(features, labels)``, one view per image per epoch.
        validation: batches of validation features, or ``None``.
        summary: ``views``, ``images``, ``megabytes`` of features and ``seconds`` the pass took.
    """

    model: keras.Model
    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    summary: dict[str, float]


def prepare_head(
    model: keras.Model,
    train_images: tf.data.Dataset,
    val_images: tf.data.Dataset | None,
    *,
    views: int,
    batch_size: int,
    seed: int,
    progress: Progress | None = None,
    balanced: bool = False,
) -> HeadInputs:
    """Compute the training and validation features of ``model`` once and batch them.

    Args:
        model: a transfer model whose backbone stays frozen while the head trains.
        train_images, val_images: batches of ``(images, labels)`` in a fixed order.
        views: augmented variants per training image (one when the model has no
            augmentation block).
        batch_size, seed: as for the image pipeline the head replaces.
        progress: see :func:`extract_features`; counts the validation batches too.
        balanced: draw each epoch's training images with probability proportional to
            1 / class count (``RunConfig.imbalance == "balanced_sampling"``).

    Raises:
        ValueError: as :func:`split_model`.
    """
    split = split_model(model)
    started = time.perf_counter()
    train_batches = int(train_images.cardinality())
    total = train_batches + (int(val_images.cardinality()) if val_images is not None else 0)

    def report(offset: int) -> Progress | None:
        return None if progress is None else lambda done, _: progress(offset + done, total)

    train = extract_features(
        split.extractor,
        train_images,
        augmentation=split.augmentation,
        views=views,
        progress=report(0),
    )
    validation = None
    if val_images is not None:
        validation = extract_features(split.extractor, val_images, progress=report(train_batches))
    summary = {
        "views": train.views,
        "images": len(train.labels),
        "megabytes": round(
            (train.features.nbytes + (validation.features.nbytes if validation else 0)) / 2**20, 1
        ),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return HeadInputs(
        model=split.head,
        train=train.dataset(
            batch_size,
            shuffle=True,
            seed=seed,
            draw_probabilities=balanced_probabilities(train.labels) if balanced else None,
        ),
        validation=validation.dataset(batch_size) if validation else None,
        summary=summary,
    )
