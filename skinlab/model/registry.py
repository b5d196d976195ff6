"""The backbone registry: one row per architecture with every fact skinlab keeps about it.

A row says what a backbone is (title, description, scratch or transfer), how it is built
(the builder's name in :mod:`skinlab.model.backbones`, and for a transfer backbone its
``keras.applications`` network and the preprocessing layer put in front of it), where its
ImageNet weights come from, and how big a run's weights files are. The module imports no
Keras, so the pages and the command line read the registry without loading TensorFlow;
:mod:`skinlab.model.backbones` builds from it and :mod:`skinlab.model.weights` downloads
from it.

Example::

    BACKBONES["mobilenetv2"].imagenet.application     # 'MobileNetV2'
    BACKBONES["skinlab_cnn"].weights_mb               # 5
"""

from __future__ import annotations

from dataclasses import dataclass

SCRATCH, TRANSFER = "scratch", "transfer"


@dataclass(frozen=True)
class ImagenetSource:
    """Where ``keras.applications`` fetches a network's ImageNet weights from.

    Attributes:
        base_url: the folder URL the weights file name is appended to.
        md5: the hash ``keras.applications`` checks (Keras has none for MobileNetV2).
        application: the ``keras.applications`` constructor's name.
        input_range: what that network expects to be given (after skinlab's preprocessing).
        filename: the weights file without the classifier top; ``{size}`` stands for the
            input size when the network has a file per size.
        sizes: the sizes with a file of their own; any other size uses 224's.
    """

    base_url: str
    md5: str | None
    application: str
    input_range: tuple[float, float]
    filename: str
    sizes: tuple[int, ...] = ()

    def file_for(self, image_size: int) -> str:
        """The weights file ``keras.applications`` reads for ``image_size``."""
        return self.filename.format(size=image_size if image_size in self.sizes else 224)


@dataclass(frozen=True)
class Backbone:
    """What travels with an architecture's name.

    Attributes:
        name: registry key, also the Keras model's name.
        title: short human name.
        description: one sentence for the UI.
        kind: :data:`SCRATCH` (trained from random init) or :data:`TRANSFER`
            (``keras.applications``).
        preprocessing: what the model does to the 0..255 input, for humans and manifests.
        gradcam_layer: the last convolutional feature map; for transfer models a layer of the
            nested ``"backbone"`` sub-model.
        default_image_size: the size it is usually trained at.
        weights_mb: rough size of one weights file in MB (a run keeps three copies: best,
            last, export); used to refuse starting on a nearly full disk.
        builder: the function of :mod:`skinlab.model.backbones` that builds its features
            (named, not imported, so this module needs no Keras).
        preprocess_layer: the layer put before a transfer network (``"mobilenet"``:
            ``x/127.5 - 1``, ``"caffe"``: BGR mean subtraction), or ``None``.
        imagenet: where its ImageNet weights come from; ``None`` for scratch backbones.
    """

    name: str
    title: str
    description: str
    kind: str
    preprocessing: str
    gradcam_layer: str
    default_image_size: int
    weights_mb: int
    builder: str
    preprocess_layer: str | None = None
    imagenet: ImagenetSource | None = None

    @property
    def supports_imagenet(self) -> bool:
        """ImageNet weights exist for it."""
        return self.imagenet is not None


def _scratch(name: str, title: str, description: str, size: int, mb: int, builder: str):
    return Backbone(
        name, title, description, SCRATCH, "rescale 1/255", "last_conv", size, mb, builder
    )


def _transfer(
    name: str,
    title: str,
    description: str,
    preprocessing: str,
    gradcam: str,
    mb: int,
    preprocess_layer: str | None,
    source: ImagenetSource,
):
    return Backbone(
        name,
        title,
        description,
        TRANSFER,
        preprocessing,
        gradcam,
        224,
        mb,
        "keras_application",
        preprocess_layer,
        source,
    )


# The ImageNet sources are copied from keras/src/applications/{mobilenet_v2,efficientnet,
# resnet}.py (Keras 3.15); tests/test_weights.py checks they still match the installed Keras.
BACKBONES: dict[str, Backbone] = {
    b.name: b
    for b in (
        _scratch(
            "custom",
            "Notebook CNN",
            "The seed notebook's three-convolution network with a large dense layer "
            "(3.99M parameters at 180 px).",
            180,
            50,
            "notebook_cnn",
        ),
        _scratch(
            "skinlab_cnn",
            "skinlab CNN",
            "A small batch-normalised separable CNN with global average pooling, built for "
            "small data and a laptop CPU (0.14M parameters at any size).",
            128,
            5,
            "skinlab_cnn",
        ),
        _scratch(
            "plain_cnn",
            "Plain 3x3 CNN",
            "Four blocks of two plain 3x3 Conv-BN-ReLU (32 to 256 filters) with global average "
            "pooling (1.2M parameters): the best from-scratch network of a GPU study on ISIC, "
            "about 6x the compute of the skinlab CNN per image.",
            128,
            15,
            "plain_cnn",
        ),
        _transfer(
            "mobilenetv2",
            "MobileNetV2",
            "A light ImageNet network (2.3M parameters); the quickest to fine-tune on a CPU.",
            "mobilenet_v2: x/127.5-1",
            "out_relu",
            15,
            "mobilenet",
            ImagenetSource(
                "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/",
                None,
                "MobileNetV2",
                (-1.0, 1.0),  # skinlab's "preprocess" layer rescales first
                "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5",
                (96, 128, 160, 192, 224),
            ),
        ),
        _transfer(
            "efficientnetb0",
            "EfficientNetB0",
            "An accurate ImageNet network (4.0M parameters) with its normalisation built in.",
            "efficientnet: built-in (rescale 1/255, ImageNet mean/std)",
            "top_activation",
            25,
            None,  # it expects 0..255 itself
            ImagenetSource(
                "https://storage.googleapis.com/keras-applications/",
                "50bc09e76180e00e4465e1a485ddc09d",
                "EfficientNetB0",
                (0.0, 255.0),  # it normalises inside
                "efficientnetb0_notop.h5",
            ),
        ),
        _transfer(
            "resnet50",
            "ResNet50",
            "The classic ImageNet baseline (23.6M parameters); slow on a CPU.",
            "resnet50: caffe BGR mean subtraction",
            "conv5_block3_out",
            100,
            "caffe",
            ImagenetSource(
                "https://storage.googleapis.com/tensorflow/keras-applications/resnet/",
                "4d473c1dd8becc155b73f8504c6f6626",
                "ResNet50",
                (-124.0, 152.0),  # after the caffe mean subtraction
                "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
            ),
        ),
    )
}
