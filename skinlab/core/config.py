"""A training run's options: one frozen dataclass, saved as ``config.json`` beside the weights.

Every default lives here and nowhere else; presets are named partial overrides of it.

Example::

    cfg = preset("notebook", data_root="data/isic")
    cfg = cfg.replace(epochs=5)
    cfg.to_json()

Why one module: it is one frozen dataclass with the documentation of every run option, and
the presets table.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from typing import Any

from skinlab.core.errors import SkinlabError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "plateau", "one_cycle")
AUGMENTATIONS = ("none", "light", "strong", "notebook", "dermoscopy")
#: Kept in step with skinlab.model.colour.METHODS (this module loads no Keras).
COLOUR_CONSTANCY = ("none", "shades_of_gray")
IMBALANCE = ("none", "class_weights", "oversample", "balanced_sampling", "logit_adjustment")
WEIGHTS = ("imagenet", "none")
STRATEGIES = ("auto", "none", "mirrored", "multiworker")
FEATURE_CACHES = ("auto", "off")
KEEP_WEIGHTS = ("best", "last")
#: Kept in step with skinlab.model.precision.PRECISIONS (which measures the "auto" choice).
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
#: Kept in step with skinlab.model.views.MAX_TTA (written out: this module loads no NumPy).
MAX_TTA = 32
#: Longest run name: it shows in pickers, captions and legends, and lives in config.json
#: (a rename to 4.3 M characters made the file too big to read, so the run was broken and
#: could not be renamed back).
MAX_NAME_CHARS = 200


class RunNameError(SkinlabError, ValueError):
    """A run name longer than :data:`MAX_NAME_CHARS` (a ``ValueError``, as every invalid
    option is, and a :class:`SkinlabError`, so a rename shows it as one sentence)."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run.

    Attributes:
        data_root: dataset folder (``<root>/Train/<class>/...``); only Train is trained on.
        extra_data: other collections whose images are added to the training side only
            (:mod:`skinlab.data.extra_collections`): each a dataset folder (its Train split) or
            any layout an external set has (class folders, a Test split, HAM10000's images
            with their metadata CSV, an ISIC ground-truth CSV beside its images). Validation
            and cross-validation folds still come from ``data_root`` alone, and an extra image
            of a validation image's lesion is dropped. ``python -m skinlab train --data A
            --data B``; "Also train on" on the Train page.
        backbone: a name from :data:`skinlab.model.backbones.BACKBONES`.
        weights: ``"imagenet"`` (transfer learning) or ``"none"`` (random init).
        image_size: square input size in pixels.
        batch_size: images per step.
        epochs: epochs of the first (head / whole-model) phase.
        optimizer: ``"sgd"`` (with :attr:`momentum`, as in the notebook), ``"adam"`` or
            ``"adamw"`` (Adam with decoupled :attr:`weight_decay`).
        learning_rate: initial learning rate.
        momentum: SGD momentum.
        weight_decay: decoupled weight decay (each step shrinks every weight by
            ``learning_rate * weight_decay`` of itself); AdamW's point, also applied to SGD
            and Adam when set. 0 = none.
        schedule: ``"constant"``, ``"cosine"`` decay over all steps, or ``"plateau"``
            (halve when validation loss stalls) or ``"one_cycle"`` (linear warm-up over the
            first 10 % of the steps, then cosine decay to 0; see :mod:`skinlab.train.schedules`).
        label_smoothing: share of each label's probability spread evenly over all classes
            in the loss (0 = hard labels); accuracy is still scored on the hard labels.
        ema: evaluate and save an exponential moving average of the weights (momentum
            0.99) instead of the raw weights, see :func:`skinlab.train.training._callbacks`.
        dropout: dropout rate before the classifier.
        augmentation: preset name (``none``/``light``/``strong``/``notebook``/
            ``dermoscopy``), see :mod:`skinlab.model.augment`.
        augmentation_strength: multiplies rotation, zoom, contrast and brightness ranges.
        colour_constancy: ``"none"`` or ``"shades_of_gray"``: divide out each image's light
            (Shades of Gray, p = 6) at training and prediction alike, so the colour cast of a
            clinic's dermatoscope is no cue (:mod:`skinlab.model.colour`; a layer of the
            model, so exports carry it).
        frame_randomisation: share of training images (0-1) whose dermatoscope frame is
            randomised: half of them get a dark circular frame drawn, half have their corners
            cropped away, so a frame says nothing about the class
            (:mod:`skinlab.model.frames`). 0 = off.
        crop_area: random resized crops: each training image may be cut down to this share
            of its area (and its aspect stretched between 3:4 and 4:3) and scaled back up, on
            top of the augmentation's own zoom; 1 = off (see
            :func:`skinlab.model.augment.augmentation_layers`).
        imbalance: ``"none"``, ``"class_weights"`` (loss weights from counts) or
            ``"oversample"`` (minority classes repeated, training side only) or
            ``"balanced_sampling"`` (each epoch draws its images with probability
            proportional to 1 / class count, training side only) or
            ``"logit_adjustment"`` (the loss adds each class's log prior to its logit,
            so the logits answer as if the classes were balanced; every image seen once
            per epoch).
        collection_balance: draw the training images so that every collection (archive) of
            a class gets an equal share of that class's draws
            (:func:`skinlab.train.imbalance.collection_balanced_probabilities`); on top of
            ``imbalance``'s class shares, and only when the training rows come from several
            collections.
        collection_adjustment: while training, the loss adds to each image's logits what its
            collection says about the class, ``log p(class | collection) - log p(class)``
            clipped to ``±`` this many logits (after Hong & Yang's bias-balanced loss, 2021),
            so the network gains less by learning which collection means which class;
            prediction uses the raw logits (:func:`skinlab.train.imbalance.collection_offsets`).
            0 = off; only when the training rows come from several collections.
        val_fraction: share of Train held out for validation (hash-grouped, stratified).
        seed: seeds the split, shuffling, initialisation and augmentation.
        patience: early-stopping patience in epochs on validation loss (0 = off).
        fine_tune_layers: top backbone layers to unfreeze after the head phase (0 = none).
        fine_tune_epochs: epochs of the fine-tuning phase.
        fine_tune_lr_factor: fine-tuning learning rate = ``learning_rate * factor``.
        deterministic: ask TensorFlow for deterministic ops (slower, reproducible).
        strategy: ``tf.distribute`` strategy: ``auto``, ``none``, ``mirrored``, ``multiworker``.
        precision: arithmetic of training: ``auto`` (mixed precision where it measures faster
            on this machine, see :mod:`skinlab.model.precision`), ``float32``, ``mixed_bfloat16``
            or ``mixed_float16``. Evaluation and export always run in float32.
        time_budget_minutes: stop gracefully after this many minutes of training (0 = no
            limit); the best weights so far are kept, as with a stop request.
        keep_weights: which epoch's weights the run keeps, evaluates and exports: ``"best"``
            (the lowest validation loss) or ``"last"`` (the final whole epoch: for a
            ``one_cycle`` schedule, which ends at a learning rate of zero, and which picking
            by validation loss would second-guess on the very images it is scored on).
        tta: test-time augmentation views (1-32) the run's own validation and Test scores
            average: the image, its flips and quarter turns (8), then the same of the image
            turned by 45, 22.5 and 67.5 degrees (:func:`skinlab.model.views.tta_batch`, as
            ``evaluate --tta``). 1 scores the image alone. Calibration is fitted on single
            views either way.
        feature_cache: ``"auto"`` computes a frozen backbone's features once and trains only
            the head on them in every phase where the backbone is entirely frozen (an ImageNet
            transfer backbone's head phase; fine-tuning always runs the whole model), see
            :mod:`skinlab.train.features`; ``"off"`` runs the backbone every epoch.
        augmented_views: with augmentation and the feature cache, how many augmented views
            of each training image are computed once (each epoch trains on one of them).
            More views are closer to fresh augmentation every epoch but cost one backbone
            pass each up front and ``N * views * feature_dim * 4`` bytes of memory (2,000
            images, 4 views, MobileNetV2's 1,280 features: 41 MB).
        name: optional human name for the run.
        cv_fold, cv_folds: fold ``cv_fold`` (1-based) of ``cv_folds``-fold cross-validation
            (:mod:`skinlab.train.cv`) is this run's validation split instead of the random
            ``val_fraction`` split; ``0, 0`` for a normal run. Set by cross-validation, not on
            the Train page (fields with ``metadata["form"] == False`` are not on the form;
            their ``metadata["help"]`` is their command-line help).
        data_version: the dataset version trained on (:mod:`skinlab.data.overrides`): ``""`` or
            ``"raw"`` for the folder as it is, else the short id of the review decisions
            (relabels, exclusions) applied to it; chosen on the Train page.
        repeat_group: the id shared by runs of the same settings with seeds ``seed``,
            ``seed + 1``, ... (:mod:`skinlab.jobs.repeats`); ``""`` for a run on its own.
    """

    data_root: str = ""
    backbone: str = "custom"
    weights: str = "none"
    image_size: int = 180
    batch_size: int = 32
    epochs: int = 20
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    label_smoothing: float = 0.0
    ema: bool = False
    dropout: float = 0.2
    augmentation: str = "light"
    augmentation_strength: float = 1.0
    colour_constancy: str = "none"
    frame_randomisation: float = 0.0
    crop_area: float = 1.0
    imbalance: str = "none"
    collection_balance: bool = False
    collection_adjustment: float = 0.0
    val_fraction: float = 0.2
    seed: int = 123
    patience: int = 0
    fine_tune_layers: int = 0
    fine_tune_epochs: int = 0
    fine_tune_lr_factor: float = 0.1
    deterministic: bool = False
    strategy: str = "auto"
    precision: str = "auto"
    time_budget_minutes: float = 0.0
    keep_weights: str = "best"
    tta: int = 1
    feature_cache: str = "auto"
    augmented_views: int = 4
    name: str = ""
    cv_fold: int = field(
        default=0,
        metadata={"form": False, "help": "cross-validation fold used for validation (1-based)"},
    )
    cv_folds: int = field(
        default=0,
        metadata={"form": False, "help": "number of cross-validation folds (0: no folds)"},
    )
    data_version: str = field(
        default="",
        metadata={
            "form": False,
            "help": "dataset version to train on: an id from the Explore page's Review tab "
            "(its relabels and exclusions applied), or empty/'raw' for the folder as it is",
        },
    )
    repeat_group: str = field(
        default="",
        metadata={
            "form": False,
            "help": "seed-repeat group this run belongs to (set by --repeats; see skinlab.jobs.repeats)",
        },
    )
    # Not a flag of its own: the command line's second and later --data fill it, the Train
    # page's "Also train on" picker (not a field of the generated form) sets it.
    extra_data: tuple[str, ...] = field(default=(), metadata={"form": False})

    def __post_init__(self) -> None:
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("augmentation", self.augmentation, AUGMENTATIONS)
        _check_choice("imbalance", self.imbalance, IMBALANCE)
        _check_choice("colour_constancy", self.colour_constancy, COLOUR_CONSTANCY)
        _check_choice("weights", self.weights, WEIGHTS)
        _check_choice("strategy", self.strategy, STRATEGIES)
        _check_choice("feature_cache", self.feature_cache, FEATURE_CACHES)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("keep_weights", self.keep_weights, KEEP_WEIGHTS)
        if not 16 <= self.image_size <= 1024:
            raise ValueError(
                f"image_size must be between 16 and 1024 pixels, not {self.image_size}."
            )
        if isinstance(self.name, str) and len(self.name) > MAX_NAME_CHARS:
            raise RunNameError(
                f"A run name can be at most {MAX_NAME_CHARS} characters long, not "
                f"{len(self.name):,}; choose a shorter one."
            )
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {self.batch_size}.")
        if self.epochs < 0:
            raise ValueError(f"epochs cannot be negative, not {self.epochs}.")
        if self.fine_tune_epochs < 0:
            raise ValueError(f"fine_tune_epochs cannot be negative, not {self.fine_tune_epochs}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout}.")
        if not 0.0 <= self.frame_randomisation <= 1.0:
            raise ValueError(
                f"frame_randomisation must be in [0, 1], not {self.frame_randomisation}."
            )
        if not 0.0 <= self.collection_adjustment <= 10.0:
            raise ValueError(
                f"collection_adjustment must be in [0, 10] logits, not {self.collection_adjustment}."
            )
        if not 0.0 < self.crop_area <= 1.0:
            raise ValueError(f"crop_area must be in (0, 1], not {self.crop_area}.")
        if not 0.0 <= self.val_fraction < 0.9:
            raise ValueError(f"val_fraction must be in [0, 0.9), not {self.val_fraction}.")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, not {self.learning_rate}.")
        if not 0.0 <= self.weight_decay < 1.0:
            raise ValueError(f"weight_decay must be in [0, 1), not {self.weight_decay}.")
        if not 0.0 <= self.label_smoothing <= 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5], not {self.label_smoothing}.")
        if not 1 <= self.tta <= MAX_TTA:
            raise ValueError(f"tta must be between 1 and {MAX_TTA} views, not {self.tta}.")
        if self.augmented_views < 1:
            raise ValueError(f"augmented_views must be at least 1, not {self.augmented_views}.")
        if (self.cv_folds, self.cv_fold) != (0, 0) and not (
            self.cv_folds >= 2 and 1 <= self.cv_fold <= self.cv_folds
        ):
            raise ValueError(
                f"cv_fold must be a fold from 1 to cv_folds (at least 2), not fold "
                f"{self.cv_fold} of {self.cv_folds}."
            )

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build from a dict, ignoring unknown keys (configs written by newer versions).

        A name longer than :data:`MAX_NAME_CHARS` (written before names were bounded, or by
        hand) is shortened, so the run stays readable and can be renamed.
        """
        known = {f.name for f in fields(cls)}
        given = {k: v for k, v in data.items() if k in known}
        name = given.get("name")
        if isinstance(name, str) and len(name) > MAX_NAME_CHARS:
            given["name"] = name[: MAX_NAME_CHARS - 1] + "…"
        if "extra_data" in given:  # a JSON list (a lone string is one path)
            paths = given["extra_data"]
            given["extra_data"] = (paths,) if isinstance(paths, str) else tuple(map(str, paths))
        return cls(**given)

    @property
    def total_epochs(self) -> int:
        return self.epochs + (self.fine_tune_epochs if self.fine_tune_layers else 0)


def _check_choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{field} must be one of {', '.join(allowed)}; got '{value}'.")


#: The seed notebook's recipe (preset ``notebook``).
_NOTEBOOK: dict[str, Any] = {
    "backbone": "custom",
    "weights": "none",
    "image_size": 180,
    "batch_size": 32,
    "epochs": 30,
    "optimizer": "sgd",
    "learning_rate": 0.01,
    "momentum": 0.9,
    "dropout": 0.2,
    "augmentation": "notebook",
    "imbalance": "none",
    "val_fraction": 0.2,
}

#: Named recipes. Each is a set of overrides of the :class:`RunConfig` defaults.
PRESETS: dict[str, dict[str, Any]] = {
    # The seed notebook exactly: its CNN, 180 px, batch 32, augmentation + dropout 0.2,
    # SGD, 30 epochs, 20% validation.
    "notebook": _NOTEBOOK,
    # The notebook's lesson, in one click: the same recipe without augmentation overfits
    # (2026-11-29). On the synthetic demo training accuracy runs 0.15-0.25 above validation
    # accuracy from epoch ~20 and validation loss climbs back; on the real ISIC Train images
    # 0.71 against 0.50 at epoch 30, validation loss 1.41 -> 1.73 from epoch 23. With the
    # notebook's augmentation neither overfits in 30 epochs (ISIC: 0.50 against 0.49).
    "notebook-no-aug": {**_NOTEBOOK, "augmentation": "none"},
    # The best from-scratch recipe that finishes within 15 minutes on a 2-core CPU: the
    # recipe of the GPU study (issue 14) on the network that is fast on a CPU. Measured
    # (`python -m skinlab bench --only throughput`, docs/accuracy.md): the all-3x3
    # plain_cnn trains at 75 images/s at 64 px on 2 cores, skinlab_cnn at 376 at 96 px, so
    # ~150 epochs fit here. In a cross-validation fold, 128 px (~75 epochs fit) scored no
    # better (0.623 balanced against 0.626), nor did 85 epochs at 96 px (0.629). The
    # 14-minute budget fits the one-cycle schedule to the epochs that fit, so a busy machine
    # trains fewer epochs, still annealed to zero.
    "cpu-best": {
        "backbone": "skinlab_cnn",
        "weights": "none",
        "image_size": 96,
        "batch_size": 32,
        "epochs": 150,
        "optimizer": "adamw",
        # 6e-3, not the GPU study's 3e-3: the range test on ISIC (`lr-find --preset cpu-best`)
        # bottoms out at ~0.1, and on the same 3 CV folds 6e-3 scored 0.673 / 0.664 / 0.637
        # balanced (accuracy 0.649) against 0.675 / 0.672 / 0.606 (0.630) at 3e-3 (2026-11-29).
        "learning_rate": 6e-3,
        "weight_decay": 0.05,
        "schedule": "one_cycle",
        "dropout": 0.3,
        "augmentation": "dermoscopy",
        "imbalance": "balanced_sampling",
        "label_smoothing": 0.1,
        "patience": 0,
        "time_budget_minutes": 14.0,
        # The one-cycle's end, not the epoch of lowest validation loss: in CV folds 1-2 the
        # last epoch had 0.8-1.6 points more validation accuracy than the lowest-loss one.
        "keep_weights": "last",
        # Trained on every rotation and flip, the model is scored on 32 turned and flipped
        # views: 8 views gave +0.035 balanced accuracy in cross-validation fold 1 (0.626 ->
        # 0.661), and 32 another +0.010 over three folds (0.635 -> 0.646, 2026-11-29) for
        # ~35 s per 750 images.
        "tta": 32,
    },
    # A model in about a minute on a laptop CPU, for trying the Predict page.
    "quick": {
        "backbone": "skinlab_cnn",
        "weights": "none",
        "image_size": 64,
        "batch_size": 32,
        "epochs": 8,
        "optimizer": "adam",
        "learning_rate": 3e-3,
        "schedule": "cosine",
        "dropout": 0.2,
        "augmentation": "light",
        "imbalance": "class_weights",
    },
    # The from-scratch recipe of the GPU study in issue 14 (PyTorch, the same ISIC Train
    # images): 0.56-0.59 held-out accuracy, balanced 0.61-0.64, after 150 epochs; 30 epochs
    # gave ~0.40 and 75 ~0.49. Hours on a 2-core CPU: for a GPU or a patient user.
    "long": {
        "backbone": "plain_cnn",
        "weights": "none",
        "image_size": 128,
        "batch_size": 32,
        "epochs": 150,
        "optimizer": "adamw",
        "learning_rate": 3e-3,
        "weight_decay": 0.05,
        "schedule": "one_cycle",
        "dropout": 0.3,
        "augmentation": "dermoscopy",
        "imbalance": "balanced_sampling",
        "label_smoothing": 0.1,
        "keep_weights": "last",
        "tta": 32,
    },
    # ImageNet transfer learning: train the head, then fine-tune the top of the backbone.
    "transfer": {
        "backbone": "mobilenetv2",
        "weights": "imagenet",
        "image_size": 224,
        "batch_size": 32,
        "epochs": 10,
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "dropout": 0.3,
        "augmentation": "light",
        "imbalance": "class_weights",
        "fine_tune_layers": 30,
        "fine_tune_epochs": 10,
        "fine_tune_lr_factor": 0.05,
        "patience": 5,
    },
}
# cpu-best trained on two or more collections at once, each collection of a class drawn
# equally (issue 28): meant for the isic9 Train images plus ham10000-train (`train --preset
# multi-collection --data data/isic9 --data data/ham10000-train`), so which archive an image
# came from says less about its class. A preset names no paths: the extra collections come
# from the second --data or the Train page's "Also train on". 19 minutes of training, so the
# run stays within 20 with its set-up (reading the 6,651 ham10000-train images and checking
# them against isic9's validation images took 14 s on 2 cores) and scoring. Its figures
# (scores, whole-run time) are pending measurement.
PRESETS["multi-collection"] = {
    **PRESETS["cpu-best"],
    "collection_balance": True,
    "time_budget_minutes": 19.0,
}


def preset(name: str, /, **overrides: Any) -> RunConfig:
    """The :class:`RunConfig` of preset ``name`` with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset '{name}'; choose one of {', '.join(PRESETS)}.")
    return RunConfig(**{**PRESETS[name], **overrides})
