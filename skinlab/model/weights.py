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
from pathlib import Path

import keras

from skinlab.core.errors import DownloadError
from skinlab.model.registry import BACKBONES, ImagenetSource


class WeightsUnavailableError(DownloadError):
    """ImageNet weights are neither cached nor downloadable (offline, blocked, corrupt)."""


def _source(backbone: str) -> ImagenetSource:
    """Where ``backbone``'s ImageNet weights come from (its registry row).

    Raises:
        WeightsUnavailableError: it has none (a scratch backbone) or is unknown.
    """
    spec = BACKBONES.get(backbone)
    if spec is None or spec.imagenet is None:
        names = ", ".join(b.name for b in BACKBONES.values() if b.imagenet is not None)
        raise WeightsUnavailableError(
            f"The '{backbone}' backbone has no ImageNet weights; choose random initialisation "
            f"(weights: none) or one of {names}."
        )
    return spec.imagenet


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
    return _source(backbone).file_for(image_size)


def imagenet_weights_url(backbone: str, image_size: int) -> str:
    """Where :func:`imagenet_weights_filename` is downloaded from."""
    filename = imagenet_weights_filename(backbone, image_size)
    return _source(backbone).base_url + filename


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
            file_hash=_source(backbone).md5,
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
    donor = getattr(keras.applications, _source(backbone).application)(
        include_top=False, weights=None, input_shape=size
    )
    # Fresh BatchNorm statistics (mean 0, variance 1) shrink the activations layer after layer
    # (MobileNetV2's features come out near 1e-12), so take one noise batch's instead.
    for layer in donor.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    low, high = _source(backbone).input_range
    donor(keras.random.uniform((8, *size), low, high, seed=0), training=True)
    folder = Path(folder) if folder is not None else keras_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / imagenet_weights_filename(backbone, image_size)
    # Keras 3's save_weights writes only ".weights.h5"; applications load the legacy ".h5".
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, donor)
    return path
