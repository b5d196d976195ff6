"""The model card of an exported model (Mitchell et al., 2019): a Markdown page that travels
with the model file and says what it is, how well it did, how to use it and where it fails.

It is generated from the run's ``config.json``, ``metrics.json`` and ``status.json`` and the
export bundle's manifest, so it never disagrees with them. The intended-use warning comes
first, in bold: skinlab models are for research and teaching, never for diagnosis.

Example::

    text = model_card(paths, bundle_manifest)     # written as MODEL_CARD.md by export_run
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from skinlab.core import atomic, runs
from skinlab.core.record import read_run
from skinlab.evaluate.saved_checks import saved_external, saved_masked, saved_shortcuts
from skinlab.model.backbones import BACKBONES

_SECTIONS = (("validation", "Validation split"), ("test", "Test split"))

_USAGE = {
    "keras": """import keras, numpy as np
import skinlab.model.backbones  # registers skinlab's custom layers (ResNet50's preprocessing)

model = keras.models.load_model("model.keras")
logits = model.predict(images)""",
    "tflite": """import numpy as np, tensorflow as tf

interpreter = tf.lite.Interpreter(model_path="model.tflite")
interpreter.allocate_tensors()
inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
interpreter.set_tensor(inp["index"], images[:1])  # one image at a time
interpreter.invoke()
logits = interpreter.get_tensor(out["index"])""",
    "savedmodel": """import numpy as np, tensorflow as tf

serve = tf.saved_model.load("saved_model").signatures["serving_default"]
logits = serve(image=tf.constant(images))["logits"].numpy()""",
}


def model_card(paths: runs.RunPaths, manifest: dict[str, Any]) -> str:
    """``MODEL_CARD.md`` for the run ``paths`` exported with the bundle ``manifest``.

    Args:
        paths: the run folder (its config, metrics and status are read; missing metrics or
            status only leave their sections short).
        manifest: the bundle's manifest (``format``, ``model_file``, ``temperature`` ...).

    Raises:
        RunFileError: the run's ``config.json`` is missing or malformed.
    """
    config = runs.read_config(paths)
    metrics = read_run(paths).metrics
    spec = BACKBONES[manifest["backbone"]]
    names = list(manifest["class_names"])
    counts = manifest.get("train_counts") or {}
    temperature = float(manifest.get("temperature") or 1.0)
    lines = [
        f"# Model card: {spec.title} (`{spec.name}`), skinlab run `{paths.run_id}`",
        "",
        "**Intended use: research and teaching only. This model is NOT for diagnosis and is "
        "not a medical device: it must not be used to diagnose anyone or to guide anyone's "
        "care.**",
        "",
        "## Model details",
        "",
        "| | |",
        "|---|---|",
        f"| Architecture | {spec.title} (`{spec.name}`): {spec.description} |",
        f"| Initial weights | {'ImageNet' if config.weights == 'imagenet' else 'random'} |",
        f"| Input | RGB float32 in 0..255, shape {_shape(manifest)} (`image`) |",
        f"| Preprocessing | inside the model: {manifest['preprocessing']} |",
        f"| Output | {len(names)} logits, in the order of `labels.txt` |",
        f"| Calibration temperature | {temperature:.4g} (probabilities = softmax(logits / T)) |",
        f"| OOD energy threshold | {_num(manifest.get('ood_threshold'))} |",
        f"| Unfamiliar-image gate | {_gate(metrics.get('ood_validation'))} |",
        f"| Training | {_training(config, manifest)} |",
        f"| Training data | `{manifest.get('data_root', config.data_root)}`: "
        f"{sum(counts.values())} training, {manifest.get('val_count', 'n/a')} validation images |",
        f"| Trained | {_trained(paths)} |",
        f"| Exported | {manifest.get('exported', 'n/a')} as `{manifest['model_file']}` "
        f"({manifest['format']}) |",
        f"| Software | skinlab {manifest.get('skinlab_version', 'n/a')}, "
        f"Keras {manifest.get('keras_version', 'n/a')} |",
        "",
        "### Training images per class",
        "",
        "| Class | Images |",
        "|---|---:|",
        *(f"| {name} | {counts.get(name, 'n/a')} |" for name in names),
        "",
        "## Evaluation",
        "",
        *_evaluation(metrics, names),
        *_other_collections(metrics),
        "## How to use",
        "",
        "```python",
        f"# images: float32 RGB in 0..255, shape {_shape(manifest)}",
        _USAGE[manifest["format"]],
        "",
        f"z = logits / {temperature:.6g}  # the calibration temperature",
        "probs = np.exp(z - z.max(-1, keepdims=True))",
        "probs /= probs.sum(-1, keepdims=True)  # calibrated probabilities",
        'labels = open("labels.txt").read().splitlines()',
        "```",
        "",
        *_limits(counts, names, manifest.get("ood_threshold"), bool(saved_external(metrics))),
    ]
    return "\n".join(lines) + "\n"


def _gate(summary: Any) -> str:
    """The skinlab familiarity gate's validated rates (it is used by skinlab's Predictor,
    not by the exported model alone)."""
    if not isinstance(summary, dict) or "held_out_false_alarm" not in summary:
        return "none fitted"
    return (
        f"threshold {_num(summary.get('threshold'))}: "
        f"{summary['held_out_false_alarm']:.1%} of held-out validation lesions and "
        f"{summary.get('detection', float('nan')):.1%} of non-dermoscopy images "
        "flagged (`familiarity.npz` in the run folder)"
    )


def _evaluation(metrics: dict[str, Any], names: list[str]) -> list[str]:
    lines: list[str] = []
    for key, title in _SECTIONS:
        section = metrics.get(key)
        if not isinstance(section, dict):
            continue
        melanoma = section.get("melanoma") or {}
        per_class = section.get("per_class") or {}
        lines += [
            f"### {title} ({section.get('n', 'n/a')} images)",
            "",
            f"- Accuracy: {_num(section.get('accuracy'))}",
            f"- Balanced accuracy (mean per-class recall): "
            f"{_num(section.get('balanced_accuracy'))}",
            f"- Macro F1: {_num(section.get('macro_f1'))}",
            f"- Melanoma sensitivity: {_num(melanoma.get('sensitivity'))}, "
            f"specificity: {_num(melanoma.get('specificity'))}",
            "",
            "| Class | Precision | Recall | F1 | Support |",
            "|---|---:|---:|---:|---:|",
        ]
        for name in names:
            row = per_class.get(name) or {}
            lines.append(
                f"| {name} | {_num(row.get('precision'))} | {_num(row.get('recall'))} | "
                f"{_num(row.get('f1'))} | {row.get('support', 'n/a')} |"
            )
        lines.append("")
    calibration = metrics.get("calibration")
    if isinstance(calibration, dict):
        lines += [
            f"Calibration (validation split): expected calibration error "
            f"{_num(calibration.get('ece_before'))} before and "
            f"{_num(calibration.get('ece_after'))} after temperature scaling "
            f"(T = {_num(calibration.get('temperature'))}).",
            "",
        ]
    return lines or ["No evaluation metrics were saved for this run.", ""]


def _other_collections(metrics: dict[str, Any]) -> list[str]:
    """The external sets the run was scored on, the shortcut check of its training images and
    its lesion-masked test, as saved in ``metrics.json`` (:mod:`skinlab.evaluate.saved_checks`);
    nothing when it has none of them."""
    external, masked = saved_external(metrics), saved_masked(metrics)
    shortcuts = saved_shortcuts(metrics)
    lines: list[str] = []
    if external:
        lines += [
            "## Other collections",
            "",
            "Scored on images from outside its own dataset (those it trained on left out):",
            "",
            *(f"- {summary.sentence}" for summary in external),
            "",
        ]
    if shortcuts:
        lines += ["## Shortcuts in the training data", "", shortcuts.sentence, ""]
    if masked:
        lines += ["## Lesion-masked test", "", masked.sentence, ""]
    return lines


def _limits(
    counts: dict[str, int], names: list[str], ood_threshold: Any, external: bool = False
) -> list[str]:
    present = {name: counts[name] for name in names if name in counts}
    imbalance = ""
    if present:
        rare = min(present, key=present.__getitem__)
        common = max(present, key=present.__getitem__)
        imbalance = (
            f" Here the rarest class ({rare}) had {present[rare]} training images and the "
            f"commonest ({common}) {present[common]}."
        )
    ood = (
        f"Images whose energy score (-T * logsumexp(logits / T)) is above {_num(ood_threshold)} "
        "look unfamiliar to the model and should be flagged (about 5% of validation images "
        "are); this is a heuristic, it does not certify an image."
        if ood_threshold is not None
        else "No out-of-distribution threshold was fitted for this run."
    )
    return [
        "## Known limits",
        "",
        "- **Small, imbalanced training data.** ISIC-style datasets hold a few thousand "
        "images at most, dominated by a few benign classes; rare classes' metrics rest on a "
        f"handful of images and carry wide uncertainty.{imbalance}",
        "- **Dermoscopy only.** The model saw dermoscopic close-ups; clinical or phone "
        "photographs, other body sites and non-skin pictures are outside what it learnt.",
        "- **Not validated on diverse skin tones.** Public dermoscopy collections are mostly "
        "of light skin; performance on darker skin (Fitzpatrick types IV to VI) is unknown.",
        f"- **Out-of-distribution inputs.** The model always answers one of its {len(names)} "
        f"classes, even for a picture that is not a skin lesion at all. {ood}",
        (
            "- **Little external validation.** Beyond the sets under Other collections, "
            "validation and test images come from the same source as the training images"
            if external
            else "- **No external validation.** Validation and test images come from the same "
            "source as the training images"
        )
        + "; the calibration temperature was fitted on the validation split and may not hold "
        "elsewhere.",
        "",
    ]


def _training(config, manifest: dict[str, Any]) -> str:
    epochs = f"{config.epochs} epoch{'' if config.epochs == 1 else 's'}"
    if config.fine_tune_layers and config.fine_tune_epochs:
        epochs += (
            f" + {config.fine_tune_epochs} fine-tuning the top {config.fine_tune_layers} layers"
        )
    return (
        f"{epochs} (best epoch {manifest.get('best_epoch', 'n/a')}), {config.optimizer} at "
        f"learning rate {config.learning_rate:g}, batch {config.batch_size}, augmentation "
        f"'{config.augmentation}', imbalance handling '{config.imbalance}', seed {config.seed}"
    )


def _trained(paths: runs.RunPaths) -> str:
    try:
        finished = runs.read_status(paths).finished
    except atomic.RunFileError:
        finished = None
    if finished is None:
        return "n/a"
    return datetime.fromtimestamp(finished, UTC).isoformat(timespec="seconds")


def _shape(manifest: dict[str, Any]) -> str:
    batch, *rest = manifest["input_shape"]
    return f"({'N' if batch is None else batch}, {', '.join(map(str, rest))})"


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"
