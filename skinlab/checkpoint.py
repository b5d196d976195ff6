"""Best-weights checkpointing that a kill can never corrupt.

Keras' ``ModelCheckpoint`` writes straight into the target file, so a run killed during
the write leaves a broken ``.weights.h5``. This callback writes to a temporary file in the
same folder and renames it over the previous best, so the best weights saved so far always
load.

Example::

    best = BestWeights(paths.weights, monitor="val_loss")
    model.fit(train, validation_data=val, callbacks=[best])
    best.restore(model)   # back to the best epoch
"""

from __future__ import annotations

import math
from pathlib import Path

import keras

from skinlab.atomic import atomic_path


class BestWeights(keras.callbacks.Callback):
    """Save the model's weights atomically whenever ``monitor`` improves.

    Args:
        path: target file; must end with ``.weights.h5`` (Keras' rule).
        monitor: a key of the epoch logs (``val_loss`` falls back to ``loss`` when there
            is no validation data).
        mode: ``"min"`` or ``"max"``.
        best: the best value so far (when resuming), so a worse epoch does not overwrite.
        last_path: if given, the latest epoch's weights are also saved there (atomically),
            which is what a stopped or crashed run resumes from.
    """

    def __init__(
        self,
        path: Path,
        monitor: str = "val_loss",
        mode: str = "min",
        best: float | None = None,
        last_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.last_path = Path(last_path) if last_path else None
        self.monitor = monitor
        self.mode = mode
        self.best = best
        self.best_epoch: int | None = None

    def _better(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.last_path is not None:
            with atomic_path(self.last_path) as tmp:
                self.model.save_weights(tmp)
        value = logs.get(self.monitor, logs.get(self.monitor.removeprefix("val_")))
        if value is None or not self._better(float(value)):
            return
        with atomic_path(self.path) as tmp:
            self.model.save_weights(tmp)
        self.best = float(value)
        self.best_epoch = epoch + 1

    def restore(self, model: keras.Model) -> bool:
        """Load the best weights back into ``model``; False when none were saved."""
        if not self.path.exists():
            return False
        model.load_weights(self.path)
        return True
