"""The Train page's form fields as data: one :class:`Field` per run option of
:class:`~skinlab.core.config.RunConfig`, with its widget kind, label, help, choices and range.

The page draws one widget per field (widget key :attr:`Field.key`) and never lists the
options itself, so every option the training engine has is on the form;
:mod:`skinlab.app.train_form` maps the values to and from a config.

Why one module: it is a declarative table, one ``Field`` per run option.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from skinlab.core.config import (
    AUGMENTATIONS,
    COLOUR_CONSTANCY,
    FEATURE_CACHES,
    IMBALANCE,
    KEEP_WEIGHTS,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    STRATEGIES,
    WEIGHTS,
)
from skinlab.model.backbones import BACKBONES

#: Prefix of the widget keys in ``st.session_state``.
KEY_PREFIX = "train_"


@dataclass(frozen=True)
class Field:
    """One run option on the form.

    Attributes:
        name: the :class:`RunConfig` attribute it sets.
        label: widget label.
        widget: ``"select"``, ``"radio"``, ``"number"``, ``"slider"``, ``"toggle"`` or
            ``"text"``.
        section: the form section it is drawn in (:data:`SECTIONS`).
        help: tooltip: what the option does and when to change it.
        options: choices of a select or radio.
        labels: display text of each choice (the choice itself when missing).
        min, max, step: range of a number or slider; ints give an int widget.
        format: printf-style display format of a number.
    """

    name: str
    label: str
    widget: str
    section: str
    help: str = ""
    options: tuple = ()
    labels: dict[Any, str] = field(default_factory=dict)
    min: float | None = None
    max: float | None = None
    step: float | None = None
    format: str | None = None

    @property
    def key(self) -> str:
        return KEY_PREFIX + self.name

    def option_label(self, value: Any) -> str:
        return self.labels.get(value, str(value))


SECTIONS = ("Model", "Optimisation", "Data and regularisation", "Fine-tuning", "Advanced")

FIELDS: tuple[Field, ...] = (
    Field(
        "backbone",
        "Backbone",
        "select",
        "Model",
        "The network architecture; its description is shown below.",
        options=tuple(BACKBONES),
        labels={name: b.title for name, b in BACKBONES.items()},
    ),
    Field(
        "weights",
        "Initial weights",
        "radio",
        "Model",
        "ImageNet weights start from features learnt on 1.2M photos (transfer learning); "
        "random initialisation learns everything from the skin images.",
        options=WEIGHTS,
        labels={"imagenet": "ImageNet (pretrained)", "none": "Random"},
    ),
    Field(
        "image_size",
        "Image size (pixels)",
        "number",
        "Model",
        "Images are resized to a square of this side. Larger sees more detail but trains "
        "slower; the notebook uses 180, ImageNet networks 224.",
        min=16,
        max=1024,
        step=8,
    ),
    Field(
        "dropout",
        "Dropout",
        "slider",
        "Model",
        "Share of features dropped at random before the classifier while training; more "
        "dropout fights overfitting.",
        min=0.0,
        max=0.8,
        step=0.05,
    ),
    Field(
        "epochs",
        "Epochs",
        "number",
        "Optimisation",
        "Passes over the training images (of the first phase, before any fine-tuning).",
        min=1,
        max=1000,
        step=1,
    ),
    Field(
        "batch_size",
        "Batch size",
        "number",
        "Optimisation",
        "Images per training step; lower it if training runs out of memory.",
        min=1,
        max=1024,
        step=1,
    ),
    Field(
        "optimizer",
        "Optimizer",
        "radio",
        "Optimisation",
        "SGD with momentum is the notebook's choice; Adam adapts the step size per weight; "
        "AdamW is Adam with decoupled weight decay, the usual choice for training from "
        "scratch for many epochs.",
        options=OPTIMIZERS,
        labels={"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"},
    ),
    Field(
        "learning_rate",
        "Learning rate",
        "number",
        "Optimisation",
        "Size of each update step. Too high and the loss jumps or becomes NaN; too low and "
        "nothing is learnt.",
        min=1e-5,
        max=1.0,
        step=1e-4,
        format="%.5f",
    ),
    Field(
        "momentum",
        "Momentum (SGD)",
        "slider",
        "Optimisation",
        "How much of the previous step SGD keeps.",
        min=0.0,
        max=0.99,
        step=0.01,
    ),
    Field(
        "weight_decay",
        "Weight decay",
        "number",
        "Optimisation",
        "Shrinks every weight a little each step (decoupled, as in AdamW), which fights "
        "overfitting on long from-scratch runs; try 0.05 with AdamW, 0 turns it off.",
        min=0.0,
        max=0.5,
        step=0.01,
        format="%.3f",
    ),
    Field(
        "schedule",
        "Learning-rate schedule",
        "select",
        "Optimisation",
        "Constant, cosine decay over all steps, halve it when the validation loss "
        "stops improving (plateau), or one cycle: warm up over the first 10 % of the steps, "
        "then cosine decay to zero, which lets a high learning rate (3e-3 with AdamW) train "
        "from scratch without diverging.",
        options=SCHEDULES,
        labels={
            "constant": "Constant",
            "cosine": "Cosine decay",
            "plateau": "Halve on plateau",
            "one_cycle": "One cycle (warm-up, cosine)",
        },
    ),
    Field(
        "patience",
        "Early-stopping patience (epochs)",
        "number",
        "Optimisation",
        "Stop after this many epochs without a better validation loss; 0 trains every epoch. "
        "The best epoch's weights are kept either way.",
        min=0,
        max=100,
        step=1,
    ),
    Field(
        "time_budget_minutes",
        "Time budget (minutes)",
        "number",
        "Optimisation",
        "Stop gracefully after this many minutes, keeping the best weights; 0 = no limit.",
        min=0.0,
        max=24 * 60.0,
        step=1.0,
        format="%.1f",
    ),
    Field(
        "augmentation",
        "Augmentation",
        "select",
        "Data and regularisation",
        "Random flips, rotations, zoom and colour changes applied to each training image, "
        "so the model sees new variants every epoch (previewed below).",
        options=AUGMENTATIONS,
        labels={
            "none": "None",
            "light": "Light",
            "strong": "Strong",
            "notebook": "Notebook (flips, rotation, zoom)",
            "dermoscopy": "Dermoscopy (any rotation, zoom, shift, colour)",
        },
    ),
    Field(
        "augmentation_strength",
        "Augmentation strength",
        "slider",
        "Data and regularisation",
        "Multiplies the rotation, zoom, contrast and brightness ranges (1 = the preset).",
        min=0.0,
        max=3.0,
        step=0.1,
    ),
    Field(
        "colour_constancy",
        "Colour constancy",
        "select",
        "Data and regularisation",
        "Divide out each image's light (Shades of Gray), at training and prediction alike, so "
        "the colour cast of one clinic's dermatoscope stops being a clue to the class.",
        options=COLOUR_CONSTANCY,
        labels={"none": "Off", "shades_of_gray": "Shades of Gray"},
    ),
    Field(
        "frame_randomisation",
        "Frame randomisation",
        "slider",
        "Data and regularisation",
        "Share of training images whose dermatoscope frame is changed: half get a dark "
        "circular frame drawn, half have their corners cropped away, so a frame says nothing "
        "about the class (HAM10000's images have one, the older ISIC archive's mostly not).",
        min=0.0,
        max=1.0,
        step=0.1,
    ),
    Field(
        "imbalance",
        "Class imbalance",
        "radio",
        "Data and regularisation",
        "Rare classes can be weighted up in the loss, repeated (oversampled) on the "
        "training side, drawn as often as common ones in every epoch (balanced sampling, "
        "best for long runs), or left as they are with the loss told each class's share "
        "(logit adjustment: the model answers as if the classes were balanced, without "
        "seeing rare images more often); validation always keeps the real class mix.",
        options=IMBALANCE,
        labels={
            "none": "As is",
            "class_weights": "Class weights",
            "oversample": "Oversample",
            "balanced_sampling": "Balanced sampling",
            "logit_adjustment": "Logit adjustment",
        },
    ),
    Field(
        "crop_area",
        "Random crops (smallest area kept)",
        "slider",
        "Data and regularisation",
        "Random resized crops: each training image may be cut down to this share of its area "
        "(aspect 3:4 to 4:3) and scaled back up, so zoom and framing stop being clues; 1 = off.",
        min=0.1,
        max=1.0,
        step=0.05,
    ),
    Field(
        "collection_balance",
        "Balance collections within each class",
        "toggle",
        "Data and regularisation",
        "Where a class's images come from several collections (archives), draw each "
        "collection equally often, so where an image came from says less about its class.",
    ),
    Field(
        "collection_adjustment",
        "Adjust for each collection's classes (logits)",
        "slider",
        "Data and regularisation",
        "While training, tell the loss (up to this many logits) which classes each image's "
        "collection favours, so the model gains less by learning 'this archive means "
        "melanoma'; predictions use the model alone. 0 = off; only with several collections.",
        min=0.0,
        max=3.0,
        step=0.5,
    ),
    Field(
        "label_smoothing",
        "Label smoothing",
        "slider",
        "Data and regularisation",
        "Trains towards 90 % sure instead of 100 % sure (at 0.1), so the model stops pushing "
        "its confidence up once right; helps long runs and noisy labels. 0 = off.",
        min=0.0,
        max=0.5,
        step=0.05,
    ),
    Field(
        "ema",
        "Average the weights (EMA)",
        "toggle",
        "Data and regularisation",
        "Validate and keep a moving average of the weights over the last ~100 steps instead "
        "of the latest weights: smoother, usually a little better at the end of long runs.",
    ),
    Field(
        "val_fraction",
        "Validation fraction",
        "slider",
        "Data and regularisation",
        "Share of Train held out to validate on (duplicates never straddle the split).",
        min=0.0,
        max=0.5,
        step=0.05,
    ),
    Field(
        "seed",
        "Seed",
        "number",
        "Data and regularisation",
        "Seeds the split, shuffling, initialisation and augmentation.",
        min=0,
        max=2**31 - 1,
        step=1,
    ),
    Field(
        "fine_tune_layers",
        "Layers to unfreeze",
        "number",
        "Fine-tuning",
        "After the head is trained, unfreeze this many top backbone layers and train on "
        "at a lower learning rate; 0 skips fine-tuning.",
        min=0,
        max=400,
        step=5,
    ),
    Field(
        "fine_tune_epochs",
        "Fine-tuning epochs",
        "number",
        "Fine-tuning",
        "Epochs of the fine-tuning phase.",
        min=0,
        max=500,
        step=1,
    ),
    Field(
        "fine_tune_lr_factor",
        "Fine-tuning learning-rate factor",
        "number",
        "Fine-tuning",
        "Fine-tuning learning rate = learning rate × this factor.",
        min=0.001,
        max=1.0,
        step=0.01,
        format="%.3f",
    ),
    Field(
        "deterministic",
        "Deterministic operations",
        "toggle",
        "Advanced",
        "Bit-for-bit reproducible runs, at some cost in speed.",
    ),
    Field(
        "strategy",
        "Distribution strategy",
        "select",
        "Advanced",
        "auto uses every GPU when there are several; none trains on one device.",
        options=STRATEGIES,
    ),
    Field(
        "precision",
        "Arithmetic precision",
        "select",
        "Advanced",
        "auto times a few steps once per machine and model and trains in mixed precision "
        "(bfloat16 on CPUs that have it, float16 on GPUs) only where that is faster; the "
        "weights, evaluation and export stay float32 either way.",
        options=PRECISIONS,
    ),
    Field(
        "feature_cache",
        "Cache frozen-backbone features",
        "radio",
        "Advanced",
        "While the ImageNet backbone is frozen, compute its features once and train only the "
        "head on them: each head epoch then takes a fraction of a second. Off runs the "
        "backbone every epoch (same model, much slower).",
        options=FEATURE_CACHES,
        labels={"auto": "On", "off": "Off"},
    ),
    Field(
        "keep_weights",
        "Weights kept",
        "select",
        "Advanced",
        "Which epoch the run keeps, evaluates and exports: the one with the lowest validation "
        "loss, or the last one (for the one-cycle schedule, built to end at its last epoch).",
        options=KEEP_WEIGHTS,
        labels={"best": "Lowest validation loss", "last": "Last epoch"},
    ),
    Field(
        "tta",
        "Test-time augmentation views",
        "number",
        "Advanced",
        "The run's validation and Test scores average the model's answers on this many views "
        "of each image: the image, its flips and quarter turns (8), then the same turned by "
        "45, 22.5 and 67.5 degrees (up to 32). Helps a model trained with rotations; 1 = the "
        "image alone. Prediction has its own setting.",
        min=1,
        max=32,
        step=1,
    ),
    Field(
        "augmented_views",
        "Augmented views per image",
        "number",
        "Advanced",
        "With augmentation and the feature cache: random variants of each training image "
        "computed up front (one backbone pass each); every epoch trains on one of them. "
        "More views, more variety, a longer first pass and more memory.",
        min=1,
        max=64,
        step=1,
    ),
    Field("name", "Run name", "text", "Advanced", "Optional; shown in the runs table."),
)

FIELDS_BY_NAME = {f.name: f for f in FIELDS}
