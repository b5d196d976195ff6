"""Cross-entropy on class-index labels with label smoothing and logit adjustment.

Keras 3's ``SparseCategoricalCrossentropy`` has no ``label_smoothing``, and one-hot labels in
the pipeline would change every batch, the feature cache and ``class_weight`` along with it.
So the labels stay class indices everywhere and this loss one-hots them itself: the
"accuracy" metric still compares indices, and ``class_weight`` still looks them up.

Example::

    model.compile(loss=SmoothedCrossentropy(0.1), metrics=["accuracy"], optimizer="adam")

Logit adjustment (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021) is the
other knob: ``logit_offsets=log(class priors)`` adds each class's log share of the training
rows to its logit inside the loss only. The network then has to out-shout the prior to
predict a common class, so its raw logits (what :meth:`keras.Model.predict` returns) estimate
the class-balanced posterior, as class-balanced sampling aims to, while every training image
is still seen once per epoch instead of the rare ones many times. The loss Keras reports,
validation loss included, is then the adjusted one (the training objective); accuracy and
every score after training use the raw logits.

Collection adjustment (``group_offsets``) is the same idea with the collection an image came
from as the prior's condition (the bias-balanced loss of Hong & Yang, NeurIPS 2021): each
training row's logits get ``log p(class | its collection)``, so where a class comes from one
archive only, the network is not rewarded for learning "this archive, so not melanoma". The
labels carry their group (:func:`encode_groups`) so the pipeline, ``class_weight`` and the
:class:`GroupedAccuracy` metric need nothing else; validation labels are plain (group 0, no
offsets).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="skinlab")
class SmoothedCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy of logits against smoothed one-hot labels.

    Each target is ``(1 - s) * one_hot + s / num_classes``, so even a perfectly confident,
    correct prediction keeps a positive loss (it is pushed back from infinite logits).
    ``s = 0`` equals ``SparseCategoricalCrossentropy(from_logits=True)``.

    Args:
        label_smoothing: ``s`` in ``[0, 1)``.
        logit_offsets: one number per class added to the logits before the softmax, in the
            loss only (logit adjustment: ``log`` of each class's share of the training
            rows, see :func:`skinlab.train.imbalance.logit_offsets`); None adds nothing.
        group_offsets: a table of per-class offsets, one row per group (collection
            adjustment, :func:`skinlab.train.imbalance.collection_offsets`; row 0 adds
            nothing). Labels then carry their group: ``class + num_classes * group``
            (:func:`encode_groups`), and each row's logits get its group's offsets.
            Replaces ``logit_offsets``.
    """

    def __init__(
        self,
        label_smoothing: float = 0.0,
        logit_offsets: Sequence[float] | None = None,
        name: str = "smoothed_crossentropy",
        group_offsets: Sequence[Sequence[float]] | None = None,
        **kw,
    ):
        super().__init__(name=name, **kw)
        self.label_smoothing = float(label_smoothing)
        self.logit_offsets = None if logit_offsets is None else [float(v) for v in logit_offsets]
        self.group_offsets = (
            None if group_offsets is None else [[float(v) for v in row] for row in group_offsets]
        )

    def call(self, y_true, y_pred):
        classes = ops.shape(y_pred)[-1]
        labels = ops.reshape(ops.cast(y_true, "int32"), ops.shape(y_pred)[:-1])
        logits = y_pred
        if self.group_offsets is not None:
            table = ops.convert_to_tensor(self.group_offsets, dtype=y_pred.dtype)
            logits = logits + ops.take(table, labels // classes, axis=0)
            labels = labels % classes
        elif self.logit_offsets is not None:
            logits = logits + ops.convert_to_tensor(self.logit_offsets, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            ops.one_hot(labels, classes, dtype=y_pred.dtype),
            logits,
            from_logits=True,
            label_smoothing=self.label_smoothing,
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "label_smoothing": self.label_smoothing,
            "logit_offsets": self.logit_offsets,
            "group_offsets": self.group_offsets,
        }


def encode_groups(labels: np.ndarray, groups: np.ndarray, num_classes: int) -> np.ndarray:
    """Labels that carry their group for :class:`SmoothedCrossentropy`'s ``group_offsets``:
    ``label + num_classes * group`` (group 0 is a plain label)."""
    return (np.asarray(labels, np.int64) + num_classes * np.asarray(groups, np.int64)).astype(
        np.int32
    )


@keras.saving.register_keras_serializable(package="skinlab")
class GroupedAccuracy(keras.metrics.SparseCategoricalAccuracy):
    """Sparse categorical accuracy of labels that may carry a group (:func:`encode_groups`):
    the class is the label modulo ``num_classes``. Named ``accuracy`` so the history keeps
    its columns."""

    def __init__(self, num_classes: int, name: str = "accuracy", **kw):
        super().__init__(name=name, **kw)
        self.num_classes = int(num_classes)

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(y_true, "int32") % self.num_classes
        return super().update_state(labels, y_pred, sample_weight)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes}
