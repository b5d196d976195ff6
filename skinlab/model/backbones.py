"""Model architectures, registered by name (timm style), and the one factory that builds them.

The registry rows (what each backbone is, its builder, weights source and sizes) are in
:mod:`skinlab.model.registry`; this module turns a row into a Keras model.

Every model has the same contract: raw RGB ``float32`` in ``0..255`` goes in through an input
named ``"image"``; augmentation (a block named ``"augmentation"``) and preprocessing are layers
inside the model; the output is ``num_classes`` **logits** from a ``Dense`` layer named
``"logits"`` (no softmax: training uses ``from_logits=True`` and calibration divides logits by
a temperature). A model is named after its backbone.

Transfer models wrap the ``keras.applications`` network as a nested sub-model named
``"backbone"``. With ImageNet weights it starts frozen and is called with ``training=False``,
so its BatchNormalization layers stay in inference mode even once the top is unfrozen for
fine-tuning (the keras-io transfer-learning recipe). With random initialisation the whole
network is trainable and its BatchNormalization trains normally: frozen running statistics
of a network that has never seen data would be meaningless.

Example::

    keras.utils.set_random_seed(123)
    model = build_model("mobilenetv2", num_classes=9, image_size=224, weights="imagenet")
    set_backbone_trainable(model, 30)     # then compile again
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers, ops

from skinlab.model.registry import BACKBONES, TRANSFER, Backbone
from skinlab.model.weights import WeightsUnavailableError, ensure_imagenet_weights

#: Name of the nested ``keras.applications`` sub-model in transfer models.
BACKBONE_LAYER = "backbone"
#: Name of the classifier layer; its outputs are logits.
LOGITS_LAYER = "logits"
#: Name of the global pooling layer whose output the head classifies (not in "custom").
POOL_LAYER = "avg_pool"


@keras.saving.register_keras_serializable(package="skinlab")
class CaffePreprocess(layers.Layer):
    """``keras.applications.resnet50.preprocess_input`` as a layer: RGB to BGR, minus means.

    Takes RGB in ``0..255``; subtracts the ImageNet channel means (BGR order). A registered
    layer rather than a ``Lambda``, so saved models load in safe mode without unpickling Python
    code. It has no arguments of its own, so ``Layer.get_config`` (name, dtype) rebuilds it.
    """

    #: ImageNet channel means in BGR order, as keras.applications' "caffe" mode uses them.
    MEAN_BGR = (103.939, 116.779, 123.68)

    def call(self, inputs):
        bgr = ops.flip(inputs, axis=-1)
        return bgr - ops.convert_to_tensor(self.MEAN_BGR, dtype=bgr.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def get_backbone(name: str) -> Backbone:
    """The registry entry ``name``; raises ``ValueError`` naming the choices otherwise."""
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone '{name}'; choose one of {', '.join(BACKBONES)}.")
    return BACKBONES[name]


def build_model(
    backbone: str,
    *,
    num_classes: int,
    image_size: int,
    dropout: float = 0.2,
    augmentation: keras.layers.Layer | None = None,
    weights: str = "none",
    seed: int = 0,
    preprocess: keras.layers.Layer | None = None,
) -> keras.Model:
    """A new, uncompiled model of ``backbone`` (see the module docstring for the contract).

    Args:
        backbone: a key of :data:`BACKBONES`.
        num_classes: outputs of the ``"logits"`` layer.
        image_size: square input size.
        dropout: rate of the dropout before the classifier.
        augmentation: the block from :func:`skinlab.model.augment.augmentation_layers`, or ``None``.
        weights: ``"imagenet"`` (transfer backbones only) or ``"none"`` (random init).
        seed: seeds the dropout layers. Initialisers follow Keras' global seed, so call
            ``keras.utils.set_random_seed`` first for a reproducible model.
        preprocess: a layer applied to every image before augmentation, at training and
            prediction alike (colour constancy, :mod:`skinlab.model.colour`), or ``None``.

    Returns:
        A model named ``backbone``; keep that name, :func:`gradcam_target` looks it up.

    Raises:
        ValueError: unknown backbone or weights.
        WeightsUnavailableError: ImageNet weights asked for but not available (offline), or
            asked for a scratch backbone.
    """
    spec = get_backbone(backbone)
    if weights not in ("imagenet", "none"):
        raise ValueError(f"weights must be 'imagenet' or 'none'; got '{weights}'.")
    if weights == "imagenet" and not spec.supports_imagenet:
        raise WeightsUnavailableError(
            f"The {spec.title} is trained from scratch and has no ImageNet weights; "
            "choose random initialisation (weights: none) or a transfer backbone."
        )
    if weights == "imagenet":
        ensure_imagenet_weights(backbone, image_size)  # fail here with a sentence, not a URL
    inputs = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="image")
    x = preprocess(inputs) if preprocess is not None else inputs
    x = augmentation(x) if augmentation is not None else x
    if spec.kind == TRANSFER:
        x = _transfer_features(backbone, x, image_size, weights)
    else:
        x = _SCRATCH_BUILDERS[spec.builder](x, dropout, seed)
    if backbone != "custom":  # the notebook CNN has its dropout earlier, after the conv stack
        x = layers.Dropout(dropout, seed=seed, name="head_dropout")(x)
    # float32 logits under any mixed-precision policy: the loss and calibration need them.
    outputs = layers.Dense(num_classes, name=LOGITS_LAYER, dtype="float32")(x)
    return keras.Model(inputs, outputs, name=backbone)


def _notebook_cnn(x, dropout: float, seed: int):
    # The seed notebook's network, layer for layer (its last Dense is the shared "logits").
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(name="pool1")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(name="pool2")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="last_conv")(x)
    x = layers.MaxPooling2D(name="pool3")(x)
    x = layers.Dropout(dropout, seed=seed, name="dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    return layers.Dense(128, activation="relu", name="dense")(x)


def _skinlab_cnn(x, dropout: float, seed: int):
    # keras-io's from-scratch recipe, slimmed for a 2-core CPU: a stride-2 stem, four stages of
    # two depthwise-separable Conv-BN-ReLU, then global average pooling instead of
    # Flatten + Dense. Measured faster per step at 128 px than the notebook CNN at 180 px (plain
    # convolutions in the stages took 1.5-2x as long) with 1/25 of its parameters.
    del dropout, seed  # the shared head applies its only dropout
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    x = _conv_bn(layers.Conv2D, x, 24, strides=2, name="stem")
    widths = (32, 64, 128, 256)
    for stage, width in enumerate(widths, start=1):
        last = stage == len(widths)
        x = _conv_bn(layers.SeparableConv2D, x, width, name=f"stage{stage}_a")
        x = _conv_bn(
            layers.SeparableConv2D, x, width, name="last_conv" if last else f"stage{stage}_b"
        )
        if not last:
            x = layers.MaxPooling2D(name=f"stage{stage}_pool")(x)
    return layers.GlobalAveragePooling2D(name=POOL_LAYER)(x)


def _plain_cnn(x, dropout: float, seed: int):
    # The from-scratch network of the GPU study in issue 14 (PyTorch, same ISIC images): four
    # blocks of two plain 3x3 Conv-BN-ReLU, 32->64->128->256, max-pooling between blocks,
    # global average pooling; 0.56-0.59 held-out accuracy after 150 epochs at 128 px, where
    # ResNet-18/50 from scratch reached 0.47-0.54.
    del dropout, seed  # the shared head applies its only dropout
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    widths = (32, 64, 128, 256)
    for block, width in enumerate(widths, start=1):
        last = block == len(widths)
        x = _conv_bn(layers.Conv2D, x, width, name=f"block{block}_a")
        x = _conv_bn(layers.Conv2D, x, width, name="last_conv" if last else f"block{block}_b")
        if not last:
            x = layers.MaxPooling2D(name=f"block{block}_pool")(x)
    return layers.GlobalAveragePooling2D(name=POOL_LAYER)(x)


def _conv_bn(conv, x, width: int, *, name: str, strides: int = 1):
    x = conv(width, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    # momentum 0.9 (not Keras' 0.99): on a few hundred images a run has only a few hundred
    # steps, and slower running statistics leave inference predicting one constant class.
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=name)(x)


#: The scratch builders by the name a registry row gives (``Backbone.builder``).
_SCRATCH_BUILDERS: dict[str, Callable] = {
    "notebook_cnn": _notebook_cnn,
    "skinlab_cnn": _skinlab_cnn,
    "plain_cnn": _plain_cnn,
}


#: The layer each ``Backbone.preprocess_layer`` names, put before a transfer network.
_PREPROCESS_LAYERS: dict[str, Callable[[], keras.layers.Layer]] = {
    "mobilenet": lambda: layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess"),
    "caffe": lambda: CaffePreprocess(name="preprocess"),
}


def _transfer_features(backbone: str, x, image_size: int, weights: str):
    spec = BACKBONES[backbone]
    assert spec.imagenet is not None  # every transfer row names its keras.applications network
    application = getattr(keras.applications, spec.imagenet.application)
    if spec.preprocess_layer is not None:
        x = _PREPROCESS_LAYERS[spec.preprocess_layer]()(x)
    base = application(
        include_top=False,
        weights="imagenet" if weights == "imagenet" else None,
        input_shape=(image_size, image_size, 3),
    )
    # Renamed afterwards: EfficientNet derives its weights file name from `name`.
    base.name = BACKBONE_LAYER
    pretrained = weights == "imagenet"
    base.trainable = not pretrained
    # Pretrained: BatchNorm in inference mode for good (see the module docstring).
    x = base(x, training=False) if pretrained else base(x)
    if pretrained:
        # Keras 3 passes fit's training=True down into nested models over the training=False
        # above; frozen BatchNorm ignores it, but EfficientNet's stochastic-depth Dropout would
        # drop blocks of the frozen backbone. Rates are not weights: layouts are unchanged.
        for layer in base.layers:
            if isinstance(layer, layers.Dropout):
                layer.rate = 0.0
    return layers.GlobalAveragePooling2D(name=POOL_LAYER)(x)


def backbone_submodel(model: keras.Model) -> keras.Model | None:
    """The nested ``"backbone"`` sub-model of a transfer model; ``None`` for scratch models."""
    try:
        return model.get_layer(BACKBONE_LAYER)
    except ValueError:
        return None


def set_backbone_trainable(model: keras.Model, top_n: int | None) -> int:
    """Freeze a transfer model's backbone, or unfreeze its top ``top_n`` layers.

    Layers are counted from the output down among those with weights, skipping
    BatchNormalization, which stays frozen always (with its statistics in inference mode, the
    keras-io fine-tuning recipe). The head (pooling, dropout, logits) is untouched. Compile the
    model again afterwards for the change to take effect.

    Args:
        model: from :func:`build_model`.
        top_n: layers to unfreeze; ``0`` or ``None`` freezes the whole backbone.

    Returns:
        The number of backbone layers left trainable (0 for scratch models, a no-op).
    """
    if top_n is not None and top_n < 0:
        raise ValueError(f"The number of layers to unfreeze cannot be negative, not {top_n}.")
    base = backbone_submodel(model)
    if base is None:
        return 0
    if not top_n:
        base.trainable = False
        return 0
    candidates = [
        layer
        for layer in base.layers
        if layer.weights and not isinstance(layer, layers.BatchNormalization)
    ]
    chosen = {id(layer) for layer in candidates[-top_n:]}
    base.trainable = True  # a frozen parent hides its children's trainable weights
    for layer in base.layers:
        layer.trainable = id(layer) in chosen
    return len(chosen)


def gradcam_target(model: keras.Model) -> tuple[keras.Model | None, str]:
    """Where Grad-CAM reads feature maps: ``(sub-model or None, layer name)``.

    For transfer models the layer lives in the nested ``"backbone"`` sub-model; for scratch
    models (``None``) it is a layer of ``model`` itself. The name comes from the registry, so
    Grad-CAM never guesses.

    Raises:
        ValueError: ``model`` is not named after a registered backbone.
    """
    spec = get_backbone(model.name)
    return (backbone_submodel(model) if spec.kind == "transfer" else None), spec.gradcam_layer
