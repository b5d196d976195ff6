"""Best-weights checkpointing that a kill can never corrupt.

Keras' ``ModelCheckpoint`` writes straight into the target file, so a run killed during
the write leaves a broken ``.weights.h5``. This callback writes to a temporary file in the
same folder and renames it over the previous best, so the best weights saved so far always
load. An epoch cut short by a stop request or the time budget is not saved at all.

Example::

    best = BestWeights(paths.weights, monitor="val_loss")
    model.fit(train, validation_data=val, callbacks=[best])
    best.restore(model)   # back to the best epoch
"""

from __future__ import annotations

import gc
import math
import shutil
import tempfile
from pathlib import Path

import h5py
import keras

from skinlab.core.atomic import atomic_path
from skinlab.train.callbacks import epoch_was_cut


class BestWeights(keras.callbacks.Callback):
    """Save the model's weights atomically whenever ``monitor`` improves.

    Args:
        path: target file; must end with ``.weights.h5`` (Keras' rule).
        monitor: a key of the epoch logs (``val_loss`` falls back to ``loss`` when there
            is no validation data).
        mode: ``"min"`` or ``"max"``, or ``"last"``: every whole epoch counts as the best, so
            the file holds the latest (for a schedule that anneals to zero, whose last epoch
            is the model it was built to end with).
        best: the best value so far (when resuming), so a worse epoch does not overwrite.
        best_epoch: the 1-based epoch that value came from (when resuming).
        last_path: if given, the latest epoch's weights are also saved there (atomically),
            which is what a stopped or crashed run resumes from.
        target: the model whose weights are saved; default: the model being fitted. Set it
            when ``fit`` trains part of a larger model, such as a head over cached features
            (:mod:`skinlab.train.features`), so the files always hold the whole model.
    """

    def __init__(
        self,
        path: Path,
        monitor: str = "val_loss",
        mode: str = "min",
        best: float | None = None,
        last_path: Path | None = None,
        best_epoch: int | None = None,
        target: keras.Model | None = None,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.last_path = Path(last_path) if last_path else None
        self.monitor = monitor
        self.mode = mode
        self.best = best
        self.best_epoch = best_epoch
        self.target = target
        self._template: _Template | None = None
        self._batches = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        # Fitting a part of the target (a head over cached features) leaves the rest of it
        # as it is now, so the rest is written once here and only the part each epoch:
        # Keras takes ~0.4 s to save all of MobileNetV2, several times a head epoch.
        fitted = self.target is not None and self.target is not self.model
        self._template = _Template.capture(self.target, self.model) if fitted else None

    def _better(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None or self.mode == "last":
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._batches = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches = batch + 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if epoch_was_cut(self, self._batches):
            return  # weights of a partial epoch are neither the best nor a resume point
        if self.last_path is not None:
            self._save(self.last_path)
        value = logs.get(self.monitor, logs.get(self.monitor.removeprefix("val_")))
        if value is None or not self._better(float(value)):
            return
        # The latest weights were just written: copying that file (~20 ms for the notebook
        # CNN's 16 MB) is several times quicker than serialising the model a second time.
        self._save(self.path, copy_of=self.last_path)
        self.best = float(value)
        self.best_epoch = epoch + 1

    def _save(self, path: Path, copy_of: Path | None = None) -> None:
        """Write the weights atomically (as a copy of ``copy_of``, a file just saved, if given).

        Raises:
            OSError: the write failed (a full disk); the previous file is unchanged.
        """
        try:
            with atomic_path(path) as tmp:
                if copy_of is not None:
                    shutil.copyfile(copy_of, tmp)
                elif self._template is not None:
                    self._template.write(tmp, self.model)
                else:
                    (self.target or self.model).save_weights(tmp)
            return
        except OSError as exc:
            error = OSError(exc.errno, exc.strerror, str(path))
        # h5py keeps a failed file open until its objects are collected, and the traceback
        # holds them; on a full disk, that deleted half-file's space is what the run needs
        # to record its failure. Drop the traceback (above), collect, then raise.
        gc.collect()
        raise error

    def restore(self, model: keras.Model) -> bool:
        """Load the best weights back into ``model``; False when none were saved."""
        if not self.path.exists():
            return False
        model.load_weights(self.path)
        return True


class _Template:
    """A target's weights file in memory, and where the fitted part's variables lie in it.

    The places come from the file itself: Keras names each layer's ``vars`` group after the
    layer (an ``h5`` attribute), and keys its datasets as the layer's own
    ``save_own_variables`` does. Anything unexpected (a name found twice, a shape that
    differs) means no template, and every save writes the whole target through Keras.
    """

    def __init__(self, data: bytes, places: list[tuple[str, keras.Variable]]) -> None:
        self.data = data
        self.places = places

    @classmethod
    def capture(cls, target: keras.Model, fitted: keras.Model) -> _Template | None:
        with tempfile.TemporaryDirectory() as folder:
            file = Path(folder) / "template.weights.h5"
            target.save_weights(file)
            with h5py.File(file, "r") as f:
                places = _places(f, fitted)
            return None if places is None else cls(file.read_bytes(), places)

    def write(self, path: Path, fitted: keras.Model) -> None:
        """Write the template to ``path`` with the fitted part's current values."""
        path.write_bytes(self.data)
        with h5py.File(path, "r+") as f:
            for name, variable in self.places:
                f[name][...] = keras.ops.convert_to_numpy(variable)


def _places(f: h5py.File, fitted: keras.Model) -> list[tuple[str, keras.Variable]] | None:
    """``(dataset name, variable)`` for every variable of ``fitted``'s layers in ``f``, or
    ``None`` when one cannot be placed for certain."""
    groups: dict[str, list[h5py.Group]] = {}

    def collect(_: str, obj: h5py.Group | h5py.Dataset) -> None:
        if isinstance(obj, h5py.Group) and "name" in obj.attrs:
            groups.setdefault(str(obj.attrs["name"]), []).append(obj)

    f.visititems(collect)
    places = []
    for layer in fitted.layers:
        own: dict[str, keras.Variable] = {}
        layer.save_own_variables(own)
        if not own:
            continue
        found = groups.get(layer.name, [])
        if len(found) != 1:
            return None
        for key, variable in own.items():
            dataset = found[0].get(key)
            if dataset is None or dataset.shape != tuple(variable.shape):
                return None
            places.append((dataset.name, variable))
    return places
