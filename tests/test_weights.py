from __future__ import annotations

import time
from pathlib import Path

import keras
import keras.src.applications.efficientnet as keras_efficientnet
import keras.src.applications.mobilenet_v2 as keras_mobilenet_v2
import keras.src.applications.resnet as keras_resnet
import numpy as np
import pytest
from helpers import offline_keras_home, seed_keras_cache

from skinlab.core.errors import SkinlabError
from skinlab.model.backbones import backbone_submodel, build_model
from skinlab.model.registry import BACKBONES
from skinlab.model.weights import (
    WeightsUnavailableError,
    ensure_imagenet_weights,
    imagenet_weights_filename,
    imagenet_weights_url,
    keras_cache_dir,
)

APPLICATIONS = ("mobilenetv2", "efficientnetb0", "resnet50")


@pytest.fixture
def keras_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Keras cache, and no network: any download attempt fails at once."""
    return offline_keras_home(tmp_path / "keras-home", monkeypatch)


def test_filenames_are_the_ones_keras_applications_download():
    assert (
        imagenet_weights_filename("mobilenetv2", 160)
        == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160_no_top.h5"
    )
    # Any other size falls back to the 224 px file, as in Keras.
    assert imagenet_weights_filename("mobilenetv2", 180).endswith("_1.0_224_no_top.h5")
    assert imagenet_weights_filename("efficientnetb0", 180) == "efficientnetb0_notop.h5"
    assert (
        imagenet_weights_filename("resnet50", 180)
        == "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    )
    with pytest.raises(WeightsUnavailableError, match="weights: none"):
        imagenet_weights_filename("skinlab_cnn", 128)


def test_urls_and_hashes_still_match_installed_keras():
    assert imagenet_weights_url("mobilenetv2", 96).startswith(keras_mobilenet_v2.BASE_WEIGHT_PATH)
    assert imagenet_weights_url("efficientnetb0", 96).startswith(
        keras_efficientnet.BASE_WEIGHTS_PATH
    )
    assert imagenet_weights_url("resnet50", 96).startswith(keras_resnet.BASE_WEIGHTS_PATH)
    assert BACKBONES["efficientnetb0"].imagenet.md5 == keras_efficientnet.WEIGHTS_HASHES["b0"][1]
    assert BACKBONES["resnet50"].imagenet.md5 == keras_resnet.WEIGHTS_HASHES["resnet50"][1]


def test_cache_dir_is_keras_home_models(keras_home):
    assert keras_cache_dir() == keras_home / "models"


def test_missing_weights_offline_fail_fast_with_one_actionable_sentence(keras_home):
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as caught:
        ensure_imagenet_weights("mobilenetv2", 224)
    assert time.perf_counter() - start < 5
    message = str(caught.value)
    filename = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    assert filename in message
    assert str(keras_home / "models") in message
    assert imagenet_weights_url("mobilenetv2", 224) in message
    assert "weights: none" in message
    assert message.count(". ") == 0 and message.endswith(".")
    assert isinstance(caught.value, SkinlabError)
    assert not (keras_home / "models" / filename).exists()  # no partial file left behind


def test_building_an_imagenet_model_offline_raises_the_same_error(keras_home):
    with pytest.raises(WeightsUnavailableError, match="efficientnetb0_notop.h5"):
        build_model("efficientnetb0", num_classes=3, image_size=64, weights="imagenet")


@pytest.mark.slow
@pytest.mark.parametrize("backbone", APPLICATIONS)
def test_cached_weights_are_used_offline_and_start_frozen(backbone, keras_home, monkeypatch):
    size = 96
    seeded = seed_keras_cache(backbone, size, keras_home / "models", monkeypatch)
    assert ensure_imagenet_weights(backbone, size) == keras_cache_dir() / (
        imagenet_weights_filename(backbone, size)
    )

    keras.utils.set_random_seed(7)  # a different init, so equality means "loaded"
    model = build_model(backbone, num_classes=3, image_size=size, dropout=0.0, weights="imagenet")
    base = backbone_submodel(model)
    loaded = base.get_weights()
    assert len(loaded) == len(seeded)
    for ours, theirs in zip(loaded, seeded, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert not base.trainable and len(model.trainable_weights) == 2  # only the logits layer

    # Frozen and called with training=False: BatchNorm stays in inference mode in training.
    x = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(x, training=True)),
        keras.ops.convert_to_numpy(model(x, training=False)),
        rtol=1e-5,
        atol=1e-5,
    )
