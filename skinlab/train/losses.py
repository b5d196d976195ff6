"""Cross-entropy on class-index labels with label smoothing.

Keras 3's ``SparseCategoricalCrossentropy`` has no ``label_smoothing``, and one-hot labels in
the pipeline would change every batch, the feature cache and ``class_weight`` along with it.
So the labels stay class indices everywhere and this loss one-hots them itself: the
"accuracy" metric still compares indices, and ``class_weight`` still looks them up.

Example::

    model.compile(loss=SmoothedCrossentropy(0.1), metrics=["accuracy"], optimizer="adam")
"""

from __future__ import annotations

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
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "smoothed_crossentropy", **kw):
        super().__init__(name=name, **kw)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        classes = ops.shape(y_pred)[-1]
        labels = ops.reshape(ops.cast(y_true, "int32"), ops.shape(y_pred)[:-1])
        return keras.losses.categorical_crossentropy(
            ops.one_hot(labels, classes, dtype=y_pred.dtype),
            y_pred,
            from_logits=True,
            label_smoothing=self.label_smoothing,
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
