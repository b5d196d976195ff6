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
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
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
    """

    def __init__(
        self,
        label_smoothing: float = 0.0,
        logit_offsets: Sequence[float] | None = None,
        name: str = "smoothed_crossentropy",
        **kw,
    ):
        super().__init__(name=name, **kw)
        self.label_smoothing = float(label_smoothing)
        self.logit_offsets = None if logit_offsets is None else [float(v) for v in logit_offsets]

    def call(self, y_true, y_pred):
        classes = ops.shape(y_pred)[-1]
        labels = ops.reshape(ops.cast(y_true, "int32"), ops.shape(y_pred)[:-1])
        logits = y_pred
        if self.logit_offsets is not None:
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
        }
