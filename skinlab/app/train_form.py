"""The Train page's form logic: which fields apply, presets as widget values, and the
mapping back to a :class:`~skinlab.core.config.RunConfig` (the fields themselves are data in
:mod:`skinlab.app.train_fields`). A script can build exactly the config the page would.

Example::

    values = form_values(preset("quick"))          # what the widgets show
    values["epochs"] = 3                           # the user edits one
    config = config_from_form(values, data_root="data/isic")
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, fields
from typing import Any

from skinlab.app.train_fields import FIELDS, FIELDS_BY_NAME, Field
from skinlab.core.config import PRESETS, RunConfig, preset
from skinlab.core.errors import SkinlabError
from skinlab.model.backbones import BACKBONES
from skinlab.model.weights import imagenet_weights_filename, keras_cache_dir

#: The preset the form starts from: a model in about a minute, so a first try is quick.
DEFAULT_PRESET = "quick"
#: The backbone whose ImageNet weights decide what "Best accuracy" means.
_TRANSFER_PRESET_BACKBONE = PRESETS["transfer"]["backbone"]


class FormError(SkinlabError):
    """The form's values do not make a valid run (the message names the option)."""


@dataclass(frozen=True)
class PresetChoice:
    """A preset button: what it is called on the page, the preset it applies, and why."""

    label: str
    preset: str
    why: str


def imagenet_weights_cached(backbone: str, image_size: int = 224) -> bool:
    """Whether ``backbone``'s ImageNet weights are already on this machine (never downloads)."""
    spec = BACKBONES.get(backbone)
    if spec is None or not spec.supports_imagenet:
        return False
    return (keras_cache_dir() / imagenet_weights_filename(backbone, image_size)).is_file()


def preset_choices(imagenet_available: bool | None = None) -> list[PresetChoice]:
    """The page's preset buttons. "Best accuracy" is transfer learning when the ImageNet
    weights of its backbone are cached (``imagenet_available``; looked up when ``None``),
    else the best from-scratch recipe."""
    if imagenet_available is None:
        imagenet_available = imagenet_weights_cached(
            _TRANSFER_PRESET_BACKBONE, PRESETS["transfer"]["image_size"]
        )
    if imagenet_available:
        best = PresetChoice(
            "Best accuracy",
            "transfer",
            "preset 'transfer': ImageNet features, a trained head, then the top of the "
            "backbone fine-tuned; the most accurate, slow on a CPU.",
        )
    else:
        title = BACKBONES[_TRANSFER_PRESET_BACKBONE].title
        best = PresetChoice(
            "Best accuracy",
            "cpu-best",
            f"preset 'cpu-best', because the {title} ImageNet weights are not on this machine "
            "(transfer learning would be better still): the best from-scratch recipe, the GPU "
            "study's (class-balanced batches, label smoothing, AdamW with a one-cycle schedule, "
            "full-turn dermoscopy augmentation) on the CPU-fast network at 96 px, as many of "
            "150 epochs as fit in 14 minutes. With a GPU or hours to spare, preset 'long' "
            "trains the study's all-3x3 network at 128 px for 150 epochs "
            "(python -m skinlab train --preset long).",
        )
    return [
        PresetChoice(
            "Reproduce the notebook",
            "notebook",
            "preset 'notebook': the seed notebook exactly, augmentation and dropout included; "
            "its training and validation curves stay together.",
        ),
        PresetChoice(
            "Watch it overfit",
            "notebook-no-aug",
            "preset 'notebook-no-aug': the same without augmentation; within 30 epochs its "
            "training accuracy pulls away from validation accuracy and validation loss climbs "
            "back (overfitting, the notebook's lesson). Compare the two runs on Runs.",
        ),
        PresetChoice(
            "Fast CPU",
            "quick",
            "preset 'quick': a usable model in about a minute on a laptop CPU, to try the "
            "Predict page.",
        ),
        best,
        PresetChoice(
            "Several collections",
            "multi-collection",
            "preset 'multi-collection': the best from-scratch recipe ('cpu-best') trained on "
            "this dataset and the collections picked under 'Also train on' (for isic9: "
            "ham10000-train), each collection of a class drawn equally often, so which "
            "archive an image came from says less about its class; validation stays this "
            "dataset's. Up to 19 minutes.",
        ),
    ]


def form_values(config: RunConfig) -> dict[str, Any]:
    """The widget value of every field for ``config`` (keyed by field name)."""
    return {f.name: getattr(config, f.name) for f in FIELDS}


def preset_values(name: str) -> dict[str, Any]:
    """:func:`form_values` of preset ``name``."""
    return form_values(preset(name))


def is_visible(field_: Field, values: dict[str, Any]) -> bool:
    """Whether ``field_`` applies given the other values: ImageNet weights only for backbones
    that have them, fine-tuning only for transfer backbones, momentum only for SGD, the
    strength only when there is augmentation, the feature cache only for a frozen ImageNet
    backbone (and its views only with augmentation)."""
    spec = BACKBONES.get(values.get("backbone", ""))
    if field_.name == "weights":
        return bool(spec and spec.supports_imagenet)
    if field_.section == "Fine-tuning":
        return bool(spec and spec.kind == "transfer")
    if field_.name == "momentum":
        return values.get("optimizer") == "sgd"
    if field_.name == "augmentation_strength":
        return values.get("augmentation") != "none"
    frozen = bool(spec and spec.kind == "transfer") and values.get("weights") == "imagenet"
    if field_.name == "feature_cache":
        return frozen
    if field_.name == "augmented_views":
        return (
            frozen
            and values.get("feature_cache") == "auto"
            and values.get("augmentation") != "none"
        )
    return True


def visible_fields(values: dict[str, Any], section: str | None = None) -> list[Field]:
    """The fields to draw (in form order), optionally only those of ``section``."""
    return [
        f for f in FIELDS if (section is None or f.section == section) and is_visible(f, values)
    ]


def config_from_form(values: dict[str, Any], data_root: str) -> RunConfig:
    """The :class:`RunConfig` the form describes.

    Values of hidden fields that would change training are neutralised: no ImageNet weights
    for a backbone without them, no fine-tuning for a scratch backbone. Other hidden values
    (momentum with Adam) are kept, harmlessly, so a preset round-trips exactly. Missing
    values take the :class:`RunConfig` defaults; numbers are cast to the field's type.

    Raises:
        FormError: a value is invalid (the sentence names it).
    """
    defaults = RunConfig()
    kwargs: dict[str, Any] = {"data_root": str(data_root)}
    for f in fields(RunConfig):
        if f.name in FIELDS_BY_NAME and values.get(f.name) is not None:
            kind = type(getattr(defaults, f.name))
            kwargs[f.name] = kind(values[f.name])
    spec = BACKBONES.get(kwargs.get("backbone", defaults.backbone))
    if spec is not None and not spec.supports_imagenet:
        kwargs["weights"] = "none"
    if spec is not None and spec.kind != "transfer":
        kwargs["fine_tune_layers"] = kwargs["fine_tune_epochs"] = 0
    kwargs["name"] = kwargs.get("name", "").strip()
    try:
        return RunConfig(**kwargs)
    except (TypeError, ValueError) as exc:
        raise FormError(f"This run cannot start: {exc}") from exc


def describe_config(config: RunConfig) -> str:
    """A one-line summary of a config, for captions and the runs table."""
    backbone = BACKBONES[config.backbone].title if config.backbone in BACKBONES else config.backbone
    parts = [
        backbone + (" (ImageNet)" if config.weights == "imagenet" else ""),
        f"{config.image_size} px",
        f"{config.epochs} epoch{'s' if config.epochs != 1 else ''}"
        + (f" + {config.fine_tune_epochs} fine-tuning" if config.fine_tune_layers else ""),
        f"{config.optimizer} lr {config.learning_rate:g}"
        + ("" if config.schedule == "constant" else f" ({config.schedule})"),
        f"batch {config.batch_size}",
        f"dropout {config.dropout:g}",
        "no augmentation"
        if config.augmentation == "none"
        else f"{config.augmentation} augmentation ×{config.augmentation_strength:g}",
        FIELDS_BY_NAME["imbalance"].option_label(config.imbalance).lower()
        if config.imbalance != "none"
        else "imbalance as is",
    ]
    if config.weight_decay:
        parts.append(f"weight decay {config.weight_decay:g}")
    if config.label_smoothing:
        parts.append(f"label smoothing {config.label_smoothing:g}")
    if config.ema:
        parts.append("EMA weights")
    if config.patience:
        parts.append(f"patience {config.patience}")
    if config.time_budget_minutes:
        parts.append(f"budget {config.time_budget_minutes:g} min")
    if config.extra_data:
        n = len(config.extra_data)
        parts.append(f"+ {n} more collection{'s' if n != 1 else ''} in training")
    return " · ".join(parts)


def backbone_note(backbone: str) -> str:
    """The backbone's title and description, for a caption under the picker."""
    spec = BACKBONES.get(backbone)
    return f"**{spec.title}**: {spec.description}" if spec else ""


def ensure_values(state: MutableMapping[Any, Any]) -> dict[str, Any]:
    """The form's values read from ``state`` (the widgets' session state, keyed by
    :attr:`Field.key`), after giving every missing key the :data:`DEFAULT_PRESET` value."""
    # Any keys: Streamlit's session state is keyed by str | int, and MutableMapping is
    # invariant in its key, so MutableMapping[str, Any] would refuse st.session_state.
    defaults = preset_values(DEFAULT_PRESET)
    for f in FIELDS:
        if f.key not in state:
            state[f.key] = defaults[f.name]
    return {f.name: state[f.key] for f in FIELDS}


def weights_for(backbone: str, image_size: int) -> str:
    """The initial weights to offer when ``backbone`` is picked: ImageNet when it has them and
    they are on this machine (transfer learning is the point of those backbones), else none."""
    return "imagenet" if imagenet_weights_cached(backbone, image_size) else "none"


def on_backbone_change(state: MutableMapping[str, Any]) -> None:
    """Widget callback: offer the new backbone's best initial weights (:func:`weights_for`)."""
    key = FIELDS_BY_NAME["backbone"].key, FIELDS_BY_NAME["image_size"].key
    state[FIELDS_BY_NAME["weights"].key] = weights_for(state[key[0]], int(state[key[1]]))


def weights_note(values: dict[str, Any]) -> str | None:
    """A caption when ImageNet weights are chosen but not on this machine yet."""
    backbone, size = values.get("backbone", ""), int(values.get("image_size") or 224)
    spec = BACKBONES.get(backbone)
    if not spec or not spec.supports_imagenet or values.get("weights") != "imagenet":
        return None
    if imagenet_weights_cached(backbone, size):
        return None
    return (
        f"The {spec.title} ImageNet weights are not on this machine: starting will try to "
        "download them, and says what to do if it cannot."
    )
