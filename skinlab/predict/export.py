"""Exporting a run's model as a self-contained bundle: a model file, its labels, its facts and
a model card, ready to be used outside skinlab.

A bundle is a folder (by default ``<run>/export-<format>/``) holding:

* the model: ``model.keras`` (Keras 3 native), ``model.tflite`` (TFLite builtins, float32,
  input ``(1, size, size, 3)``) or ``saved_model/`` (a TF SavedModel whose
  ``serving_default`` signature takes ``image`` and returns ``{"logits": ...}``); each takes
  RGB ``float32`` in ``0..255`` and returns **logits**;
* ``labels.txt``: the class names in output order, one per line;
* ``manifest.json``: the run's manifest (input size, preprocessing, ``temperature``,
  ``ood_threshold``, class names) plus ``format``, ``model_file`` and ``source_run``;
* ``MODEL_CARD.md``: what the model is, how well it did, how to use it, and its limits
  (:mod:`skinlab.predict.modelcard`).

The model is rebuilt and its weights hash-checked by :func:`skinlab.model.modelio.load_run_model`
first, so a tampered run is never exported. Augmentation layers are inside every skinlab
model and act whenever it is called without ``training=False``; the TFLite and SavedModel
exports therefore trace ``model(x, training=False)`` explicitly (``Model.export`` alone would
bake random flips and rotations into the served graph).

Example::

    bundle = export_run("20250101-120000-custom-ab12cd", "tflite")
    logits = tflite_predict(bundle / "model.tflite", images)      # (N, 9)
"""

from __future__ import annotations

import os
import secrets
import shutil
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from skinlab.core import atomic, runs
from skinlab.core.errors import SkinlabError
from skinlab.core.manifest import Manifest
from skinlab.model.modelio import load_run_model
from skinlab.predict.modelcard import model_card

#: Export formats, as the CLI's ``--format`` names them.
FORMATS = ("keras", "tflite", "savedmodel")
#: The model's file (or folder) name inside a bundle, per format.
MODEL_FILES = {"keras": "model.keras", "tflite": "model.tflite", "savedmodel": "saved_model"}
LABELS = "labels.txt"
MANIFEST = "manifest.json"
MODEL_CARD = "MODEL_CARD.md"


class ExportError(SkinlabError):
    """A run cannot be exported as asked (unknown format, unsafe destination)."""


def export_run(ref: str | Path | runs.RunPaths, fmt: str, out_dir: Path | None = None) -> Path:
    """Export run ``ref`` as a ``fmt`` bundle and return the bundle folder.

    Args:
        ref: a run id, id prefix, run folder or :class:`~skinlab.core.runs.RunPaths`.
        fmt: one of :data:`FORMATS`.
        out_dir: the bundle folder to write; default ``<run folder>/export-<fmt>``. It is
            built in a hidden sibling folder and renamed into place, so readers never see
            half a bundle; an existing bundle there is replaced.

    Raises:
        ExportError: unknown format, or ``out_dir`` exists and is neither empty nor an export
            bundle (it is never deleted).
        RunNotFoundError: no such run.
        ModelFileError: the run has no weights yet, or they fail their hash check.
    """
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format '{fmt}'; choose one of {', '.join(FORMATS)}.")
    paths = ref if isinstance(ref, runs.RunPaths) else runs.resolve_run(ref)
    bundle = Path(out_dir) if out_dir is not None else paths.root / f"export-{fmt}"
    if bundle.exists() and not _replaceable(bundle):
        raise ExportError(
            f"{bundle} already exists and is not a skinlab export bundle; choose another folder."
        )
    loaded = load_run_model(paths)
    bundle.parent.mkdir(parents=True, exist_ok=True)
    staging = bundle.with_name(f".{bundle.name}.tmp-{secrets.token_hex(6)}")
    staging.mkdir()
    try:
        _WRITERS[fmt](loaded.model, staging / MODEL_FILES[fmt])
        manifest = _bundle_manifest(loaded.manifest, fmt, paths.run_id)
        atomic.write_text(staging / LABELS, "".join(f"{name}\n" for name in loaded.class_names))
        atomic.write_json(staging / MANIFEST, manifest)
        atomic.write_text(staging / MODEL_CARD, model_card(paths, manifest))
        _swap_in(staging, bundle)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return bundle


def tflite_predict(tflite_path: Path, images: np.ndarray) -> np.ndarray:
    """Logits of the TFLite model at ``tflite_path`` for ``images``.

    Args:
        tflite_path: a ``model.tflite`` from :func:`export_run`.
        images: ``(N, H, W, 3)`` (or one ``(H, W, 3)``) RGB in ``0..255`` at the model's size.

    Returns:
        ``float32`` logits ``(N, num_classes)``; the model (batch size 1, as skinlab exports
        it) is run image by image.

    Raises:
        ValueError: the images do not fit the model's input.
    """
    interpreter = _interpreter(Path(tflite_path))
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    batch = np.asarray(images, dtype=np.float32)
    batch = batch[None] if batch.ndim == 3 else batch
    if tuple(batch.shape[1:]) != tuple(source["shape"][1:]):
        raise ValueError(
            f"The TFLite model takes images of shape {tuple(source['shape'][1:])}; "
            f"got {tuple(batch.shape[1:])}."
        )
    out = []
    for image in batch:
        interpreter.set_tensor(source["index"], image[None])
        interpreter.invoke()
        out.append(np.array(interpreter.get_tensor(target["index"])))
    return np.concatenate(out).astype(np.float32)


def _serving_signature(model: keras.Model, batch: int | None) -> tf.TensorSpec:
    return tf.TensorSpec((batch, *model.input_shape[1:]), tf.float32, name="image")


def _write_keras(model: keras.Model, target: Path) -> None:
    model.save(target)


def _write_tflite(model: keras.Model, target: Path) -> None:
    serve = tf.function(
        lambda image: model(image, training=False),
        input_signature=[_serving_signature(model, 1)],
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], model
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    target.write_bytes(converter.convert())


def _write_savedmodel(model: keras.Model, target: Path) -> None:
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serve",
        fn=lambda image: {"logits": model(image, training=False)},
        input_signature=[_serving_signature(model, None)],
    )
    archive.write_out(str(target), verbose=False)


_WRITERS: dict[str, Callable[[keras.Model, Path], None]] = {
    "keras": _write_keras,
    "tflite": _write_tflite,
    "savedmodel": _write_savedmodel,
}


def _bundle_manifest(manifest: Manifest, fmt: str, run_id: str) -> dict[str, Any]:
    """The run's manifest as it applies to the bundle (the run's weights file is not in it),
    with the bundle's own facts: format, model file, input shape, source run, time."""
    bundle = {key: value for key, value in manifest.to_dict().items() if key != "weights_file"}
    size = manifest.image_size
    bundle.update(
        format=fmt,
        model_file=MODEL_FILES[fmt],
        input_shape=[1 if fmt == "tflite" else None, size, size, 3],
        source_run=run_id,
        exported=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return bundle


def _replaceable(folder: Path) -> bool:
    """True for an empty folder or a bundle this module wrote: replacing it loses nothing."""
    if not folder.is_dir():
        return False
    if not any(folder.iterdir()):
        return True
    try:
        manifest = atomic.read_json(folder / MANIFEST, default=None)
    except atomic.RunFileError:
        return False
    return (
        isinstance(manifest, dict)
        and manifest.get("format") in FORMATS
        and "source_run" in manifest
    )


def _swap_in(staging: Path, bundle: Path) -> None:
    # A folder cannot replace a non-empty one in a single rename: the old bundle is moved
    # aside first, so for a moment neither exists, but never a half-written one.
    retired = None
    if bundle.exists():
        retired = bundle.with_name(f".{bundle.name}.old-{secrets.token_hex(6)}")
        os.replace(bundle, retired)
    os.replace(staging, bundle)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def _interpreter(path: Path) -> tf.lite.Interpreter:
    with warnings.catch_warnings():
        # TF 2.21 still ships tf.lite.Interpreter but warns on every use that it is deprecated
        # in favour of LiteRT (the ai_edge_litert package, not a skinlab dependency).
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return interpreter
