"""Saving and loading a run's model: rebuild from the registry, check the hash, load weights.

skinlab never calls ``keras.models.load_model`` on a file it did not write: a run's model
is rebuilt from :mod:`skinlab.model.backbones` using the run's manifest, and the weights file is
loaded only after its sha256 matches the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from skinlab.core import runs
from skinlab.core.config import RunConfig
from skinlab.core.errors import SkinlabError
from skinlab.core.manifest import Manifest
from skinlab.model.augment import augmentation_layers
from skinlab.model.backbones import BACKBONES, build_model
from skinlab.model.colour import colour_constancy_layer


class ModelFileError(SkinlabError):
    """A run's weights or manifest are missing, tampered with or inconsistent."""


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for prediction, with the facts that travel with its weights."""

    model: keras.Model
    manifest: Manifest
    paths: runs.RunPaths

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest.class_names)

    @property
    def image_size(self) -> int:
        return self.manifest.image_size

    @property
    def temperature(self) -> float:
        return self.manifest.temperature


def build_for_config(
    config: RunConfig, num_classes: int, *, weights: str | None = None
) -> keras.Model:
    """The run's architecture (augmentation included, so weight layouts always match)."""
    return build_model(
        config.backbone,
        num_classes=num_classes,
        image_size=config.image_size,
        dropout=config.dropout,
        augmentation=augmentation_layers(
            config.augmentation,
            config.augmentation_strength,
            config.seed,
            frame=config.frame_randomisation,
            crop_area=config.crop_area,
        ),
        preprocess=colour_constancy_layer(config.colour_constancy),
        weights=config.weights if weights is None else weights,
        seed=config.seed,
    )


def load_run_model(ref: str | runs.RunPaths) -> LoadedModel:
    """Rebuild a run's model and load its best weights after checking their sha256.

    Raises:
        RunNotFoundError: no such run.
        ModelFileError: no weights yet, a hash mismatch, or a manifest that cannot belong
            to the weights (unknown or other backbone, missing or duplicate class names, a
            class count, image size or temperature that does not fit).
        RunFileError: ``manifest.json`` or ``config.json`` is not valid JSON.
    """
    paths = ref if isinstance(ref, runs.RunPaths) else runs.resolve_run(ref)
    if not paths.manifest.exists() or not paths.weights.exists():
        raise ModelFileError(
            f"Run {paths.run_id} has no saved model yet (it may still be training or it "
            "failed before its first epoch); pick a finished run."
        )
    try:
        manifest = runs.read_manifest(paths)
    except runs.ManifestError as exc:
        raise ModelFileError(str(exc)) from exc
    config = runs.read_config(paths)
    _check_manifest(paths, manifest, config)
    expected = manifest.weights_sha256
    if not expected or runs.file_sha256(paths.weights) != expected:
        raise ModelFileError(
            f"The weights of run {paths.run_id} do not match the hash in its manifest; the file "
            "was changed after training, so skinlab refuses to load it; retrain the run."
        )
    class_names = manifest.class_names
    model = build_for_config(config, len(class_names), weights="none")
    try:
        model.load_weights(paths.weights)
    except (ValueError, OSError, KeyError) as exc:
        # Keras' message lists every tensor; the user needs the what and the remedy.
        raise ModelFileError(
            f"The weights of run {paths.run_id} do not fit its manifest ({len(class_names)} "
            f"classes, backbone {config.backbone}), so the manifest or the weights were "
            "edited after training; retrain the run."
        ) from exc
    return LoadedModel(model=model, manifest=manifest, paths=paths)


def _check_manifest(paths: runs.RunPaths, manifest: Manifest, config: RunConfig) -> None:
    """Refuse a manifest that could not have come with these weights (hand-edited, foreign);
    :meth:`Manifest.from_dict` already refused one that describes no model at all."""
    run = paths.run_id
    backbone = manifest.backbone
    if backbone not in BACKBONES:
        raise ModelFileError(
            f"Run {run} names an unknown backbone '{backbone}'; it was made by another "
            "version of skinlab or edited by hand."
        )
    if backbone != config.backbone:
        raise ModelFileError(
            f"Run {run}'s manifest says backbone '{backbone}' but its config says "
            f"'{config.backbone}'; one of them was edited by hand, so retrain the run."
        )
    if manifest.image_size != config.image_size:
        raise ModelFileError(
            f"Run {run}'s manifest gives image size {manifest.image_size!r} but the model was "
            f"trained at {config.image_size} px; restore the manifest or retrain the run."
        )
