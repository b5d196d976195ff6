"""ImageNet weights for the transfer backbones: where Keras caches them, and failing fast offline.

``keras.applications`` downloads its weights on first use into Keras' cache
(``$KERAS_HOME/models``, else ``~/.keras/models``). Offline, that download fails deep inside
model building with a bare URL error; :func:`ensure_imagenet_weights` is called before
training instead, and turns the failure into one sentence that says which file to put where.

Example::

    path = ensure_imagenet_weights("mobilenetv2", 224)   # cached, or downloaded now
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras

from skinlab.core.errors import DownloadError

#: Sizes MobileNetV2 has ImageNet weights for; Keras uses the 224 px file for any other size.
MOBILENET_V2_SIZES = (96, 128, 160, 192, 224)


class WeightsUnavailableError(DownloadError):
    """ImageNet weights are neither cached nor downloadable (offline, blocked, corrupt)."""


@dataclass(frozen=True)
class _Source:
    base_url: str
    md5: str | None  # the hash keras.applications checks; Keras has none for MobileNetV2
    application: str  # the keras.applications constructor
    input_range: tuple[float, float]  # what the constructor's network expects to be given


# Copied from keras/src/applications/{mobilenet_v2,efficientnet,resnet}.py (Keras 3.15);
# tests/test_weights.py checks they still match the installed Keras.
_SOURCES = {
    "mobilenetv2": _Source(
        "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/",
        None,
        "MobileNetV2",
        (-1.0, 1.0),  # skinlab's "preprocess" layer rescales first
    ),
    "efficientnetb0": _Source(
        "https://storage.googleapis.com/keras-applications/",
        "50bc09e76180e00e4465e1a485ddc09d",
        "EfficientNetB0",
        (0.0, 255.0),  # it normalises inside
    ),
    "resnet50": _Source(
        "https://storage.googleapis.com/tensorflow/keras-applications/resnet/",
        "4d473c1dd8becc155b73f8504c6f6626",
        "ResNet50",
        (-124.0, 152.0),  # after the caffe mean subtraction
    ),
}


def keras_cache_dir() -> Path:
    """The folder ``keras.applications`` reads and downloads weights files into.

    Keras' rule: ``$KERAS_HOME`` (read once, when Keras is imported), else ``~/.keras``
    (``/tmp/.keras`` if the home folder is read-only), then ``/tmp/.keras`` if that folder is
    not writable; weights go in its ``models`` subfolder.
    """
    home = _keras_home()
    if not os.access(home, os.W_OK):
        home = Path("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()) / ".keras"
    return home / "models"


def _keras_home() -> Path:
    # Ask Keras rather than the environment: it reads KERAS_HOME once, at import, and this must
    # be the folder keras.applications will look in. The environment rule is the fallback
    # should a later Keras move its private accessor.
    try:
        from keras.src.backend.config import keras_home
    except ImportError:
        return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()
    return Path(keras_home()).expanduser()


def imagenet_weights_filename(backbone: str, image_size: int) -> str:
    """The file ``keras.applications`` downloads for ``backbone`` without its top.

    Raises:
        WeightsUnavailableError: ``backbone`` has no ImageNet weights (a scratch model).
    """
    if backbone == "mobilenetv2":
        rows = image_size if image_size in MOBILENET_V2_SIZES else 224
        return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"
    if backbone == "efficientnetb0":
        return "efficientnetb0_notop.h5"
    if backbone == "resnet50":
        return "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    raise WeightsUnavailableError(
        f"The '{backbone}' backbone has no ImageNet weights; choose random initialisation "
        f"(weights: none) or one of {', '.join(_SOURCES)}."
    )


def imagenet_weights_url(backbone: str, image_size: int) -> str:
    """Where :func:`imagenet_weights_filename` is downloaded from."""
    filename = imagenet_weights_filename(backbone, image_size)
    return _SOURCES[backbone].base_url + filename


def ensure_imagenet_weights(backbone: str, image_size: int) -> Path:
    """The cached ImageNet weights file of ``backbone``, downloading it if it is missing.

    A cached file whose hash does not match Keras' is downloaded again, as Keras would.

    Returns:
        The file's path in :func:`keras_cache_dir`.

    Raises:
        WeightsUnavailableError: the file is not cached and could not be downloaded (or
            ``backbone`` has no ImageNet weights); the message names the file, the folder and
            the URL.
    """
    filename = imagenet_weights_filename(backbone, image_size)
    url = imagenet_weights_url(backbone, image_size)
    folder = keras_cache_dir()
    try:
        path = keras.utils.get_file(
            filename,
            url,
            cache_dir=str(folder.parent),
            cache_subdir=folder.name,
            file_hash=_SOURCES[backbone].md5,
        )
    except Exception as error:  # urllib, OSError, hash mismatch: all mean "not available"
        raise WeightsUnavailableError(
            f"ImageNet weights for {backbone} are not cached and could not be downloaded: "
            f"put {filename} (from {url}) into {folder}, or choose random initialisation "
            "(weights: none)."
        ) from error
    return Path(path)


def write_stand_in_weights(backbone: str, image_size: int, folder: Path | None = None) -> Path:
    """Save random weights under the name, and in the layout, of ``backbone``'s ImageNet file.

    For offline tests and benchmarks only: a model built with ``weights="imagenet"`` then
    loads them as if they were ImageNet's (same shapes, so the same speed) but knows nothing;
    its features are random, at a realistic scale.
    Keras hash-checks the EfficientNet and ResNet files when it loads them, so those also need
    their hash accepted; MobileNetV2's files have no hash. Initialisers follow Keras' global
    seed (``keras.utils.set_random_seed``).

    Returns:
        The file written, in ``folder`` (default: :func:`keras_cache_dir`).
    """
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    size = (image_size, image_size, 3)
    donor = getattr(keras.applications, _SOURCES[backbone].application)(
        include_top=False, weights=None, input_shape=size
    )
    # Fresh BatchNorm statistics (mean 0, variance 1) shrink the activations layer after layer
    # (MobileNetV2's features come out near 1e-12), so take one noise batch's instead.
    for layer in donor.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    low, high = _SOURCES[backbone].input_range
    donor(keras.random.uniform((8, *size), low, high, seed=0), training=True)
    folder = Path(folder) if folder is not None else keras_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / imagenet_weights_filename(backbone, image_size)
    # Keras 3's save_weights writes only ".weights.h5"; applications load the legacy ".h5".
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, donor)
    return path
