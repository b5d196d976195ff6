"""The seed notebook's way of training, kept only as the benchmark's baseline.

``image_dataset_from_directory`` without a cache (every epoch decodes every JPEG again),
Keras' own ``RandomFlip`` + ``RandomRotation`` + ``RandomZoom`` layers, float32, and a plain
``model.fit``. The model is skinlab's registry model of the same backbone, so the baseline
and skinlab train the same network with the same optimizer, batch size and augmentation
ranges; only the way of feeding and computing differs.

Run as a script, it prints one JSON object (what :mod:`skinlab.bench.training_bench` reads)::

    python -m skinlab.bench.notebook --train-dir data/isic/Train --epochs 4 --backbone custom
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402 - after quieting TensorFlow's start-up log

from skinlab.core.config import PRESETS  # noqa: E402
from skinlab.model.backbones import build_model  # noqa: E402


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def notebook_fit(
    train_dir: str, *, backbone: str, epochs: int, image_size: int = 180, seed: int = 123
) -> dict:
    """Train ``backbone`` the notebook's way on ``train_dir`` (class folders) and report.

    Returns:
        ``{"epoch_seconds": [...], "train_images": n, "val_accuracy": [...]}`` where the
        epoch time includes validation, as in a ``model.fit`` progress bar.
    """
    recipe = PRESETS["notebook"]
    keras.utils.set_random_seed(seed)
    train_ds, val_ds = keras.utils.image_dataset_from_directory(
        train_dir,
        validation_split=recipe["val_fraction"],
        subset="both",
        seed=seed,
        image_size=(image_size, image_size),
        batch_size=recipe["batch_size"],
    )
    augmentation = keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal_and_vertical", seed=seed),
            keras.layers.RandomRotation(0.2, seed=seed + 1),
            keras.layers.RandomZoom(0.2, seed=seed + 2),
        ],
        name="augmentation",
    )
    model = build_model(
        backbone,
        num_classes=len(train_ds.class_names),
        image_size=image_size,
        dropout=recipe["dropout"],
        augmentation=augmentation,
        seed=seed,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(recipe["learning_rate"], momentum=recipe["momentum"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    timer = _EpochTimer()
    history = model.fit(
        train_ds, validation_data=val_ds, epochs=epochs, callbacks=[timer], verbose=0
    )
    return {
        "epoch_seconds": timer.seconds,
        "train_images": len(train_ds.file_paths),
        "val_accuracy": [float(v) for v in history.history["val_accuracy"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-dir", required=True)
    parser.add_argument("--backbone", default="custom")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=180)
    args = parser.parse_args()
    result = notebook_fit(
        args.train_dir, backbone=args.backbone, epochs=args.epochs, image_size=args.image_size
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
