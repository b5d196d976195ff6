from __future__ import annotations

import keras
import numpy as np
import pytest

from skinlab.model.augment import augmentation_layers
from skinlab.model.backbones import (
    BACKBONES,
    CaffePreprocess,
    backbone_submodel,
    build_model,
    gradcam_target,
    set_backbone_trainable,
)
from skinlab.model.weights import WeightsUnavailableError, imagenet_weights_filename

SCRATCH = [name for name, b in BACKBONES.items() if b.kind == "scratch"]
TRANSFER = [name for name, b in BACKBONES.items() if b.kind == "transfer"]
#: Slowest to build and step; still run by default.
SLOW = {"efficientnetb0", "resnet50"}


def _params(names):
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in names]


def _images(n: int = 4, size: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


@pytest.mark.parametrize("name", _params(BACKBONES))
def test_every_backbone_builds_trains_one_step_and_outputs_logits(name):
    keras.utils.set_random_seed(0)
    model = build_model(
        name, num_classes=3, image_size=64, augmentation=augmentation_layers("light")
    )
    assert model.name == name
    assert model.inputs[0].name == "image"
    assert model.inputs[0].dtype == "float32"
    assert model.get_layer("augmentation") is not None
    logits_layer = model.get_layer("logits")
    assert logits_layer.activation is keras.activations.linear
    # Tracing a train step of a big application takes 10-20 s on a CPU; eagerly it takes 1-3.
    # Scratch models still go through the compiled graph.
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=BACKBONES[name].kind == "transfer",
    )
    history = model.fit(_images(), np.array([0, 1, 2, 0]), epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    out = keras.ops.convert_to_numpy(model(_images(), training=False))
    assert out.shape == (4, 3)
    assert not np.allclose(out.sum(axis=1), 1.0)  # logits, not probabilities


@pytest.mark.parametrize("name", _params(BACKBONES))
def test_gradcam_target_is_a_4d_feature_map(name):
    model = build_model(name, num_classes=3, image_size=64)
    submodel, layer_name = gradcam_target(model)
    assert layer_name == BACKBONES[name].gradcam_layer
    assert (submodel is None) == (BACKBONES[name].kind == "scratch")
    layer = (submodel or model).get_layer(layer_name)
    assert len(layer.output.shape) == 4


def test_custom_is_the_seed_notebooks_cnn():
    model = build_model("custom", num_classes=9, image_size=180, dropout=0.2)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == [
        "Rescaling",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Flatten",
        "Dense",
        "Dense",
    ]
    assert [layer.filters for layer in model.layers if hasattr(layer, "filters")] == [16, 32, 64]
    assert model.get_layer("dense").units == 128
    assert model.count_params() == 3_989_801


def test_skinlab_cnn_is_far_smaller_than_the_notebook_cnn():
    small = build_model("skinlab_cnn", num_classes=9, image_size=180).count_params()
    notebook = build_model("custom", num_classes=9, image_size=180).count_params()
    assert small < notebook / 10


def test_model_without_augmentation_is_deterministic_and_augmentation_only_acts_in_training():
    keras.utils.set_random_seed(0)
    model = build_model(
        "skinlab_cnn",
        num_classes=3,
        image_size=64,
        dropout=0.0,
        augmentation=augmentation_layers("strong", seed=1),
    )
    x = _images()
    first = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_array_equal(first, keras.ops.convert_to_numpy(model(x, training=False)))
    augmented = model.get_layer("augmentation")(x, training=True)
    assert not np.allclose(keras.ops.convert_to_numpy(augmented), x)


def test_mobilenet_preprocessing_matches_keras():
    model = build_model("mobilenetv2", num_classes=3, image_size=64)
    x = _images()
    ours = keras.ops.convert_to_numpy(model.get_layer("preprocess")(x))
    expected = keras.applications.mobilenet_v2.preprocess_input(x.copy())
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_caffe_preprocess_matches_keras_resnet50_and_round_trips_through_config():
    x = _images()
    layer = CaffePreprocess(name="preprocess")
    expected = keras.applications.resnet50.preprocess_input(x.copy())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, atol=1e-4)
    clone = CaffePreprocess.from_config(layer.get_config())
    assert clone.name == "preprocess"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(x)), expected, atol=1e-4)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, CaffePreprocess)


@pytest.mark.slow
def test_resnet50_model_saves_and_loads_without_unsafe_deserialisation(tmp_path):
    model = build_model("resnet50", num_classes=3, image_size=32)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = _images(size=32)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-4, atol=1e-4
    )


def test_random_init_transfer_backbone_is_trainable_and_scratch_has_no_submodel():
    model = build_model("mobilenetv2", num_classes=3, image_size=64, weights="none")
    assert backbone_submodel(model).trainable
    assert backbone_submodel(build_model("custom", num_classes=3, image_size=64)) is None


def test_set_backbone_trainable_unfreezes_exactly_the_top_n_non_batchnorm_layers():
    model = build_model("mobilenetv2", num_classes=3, image_size=64)
    base = backbone_submodel(model)
    head = len(model.get_layer("logits").trainable_weights)

    assert set_backbone_trainable(model, 0) == 0
    assert not base.trainable_weights
    assert len(model.trainable_weights) == head

    assert set_backbone_trainable(model, 5) == 5
    trainable = [layer for layer in base.layers if layer.trainable_weights]
    weighted = [
        layer
        for layer in base.layers
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert trainable == weighted[-5:]
    assert all(
        not layer.trainable
        for layer in base.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )

    assert set_backbone_trainable(model, None) == 0
    assert not base.trainable_weights
    with pytest.raises(ValueError, match="negative"):
        set_backbone_trainable(model, -1)


def test_set_backbone_trainable_is_a_no_op_for_scratch_models():
    model = build_model("skinlab_cnn", num_classes=3, image_size=64)
    before = len(model.trainable_weights)
    assert set_backbone_trainable(model, 10) == 0
    assert len(model.trainable_weights) == before


def test_unknown_backbone_and_imagenet_for_scratch_models_are_rejected():
    with pytest.raises(ValueError, match="Unknown backbone"):
        build_model("vgg16", num_classes=3, image_size=64)
    with pytest.raises(ValueError, match="weights must be"):
        build_model("mobilenetv2", num_classes=3, image_size=64, weights="random")
    with pytest.raises(WeightsUnavailableError, match="weights: none"):
        build_model("custom", num_classes=3, image_size=64, weights="imagenet")


def test_registry_metadata_is_consistent():
    for name, backbone in BACKBONES.items():
        assert backbone.name == name
        assert backbone.kind in ("scratch", "transfer")
        assert backbone.supports_imagenet == (backbone.kind == "transfer")
        if backbone.supports_imagenet:
            assert imagenet_weights_filename(name, backbone.default_image_size).endswith(".h5")


def test_every_registry_row_is_the_only_table_its_facts_live_in():
    """One row per backbone: its builder, preprocessing layer and ImageNet network resolve,
    and the disk check reads the row's weights size."""
    import subprocess
    import sys

    from skinlab.core.config import RunConfig
    from skinlab.jobs.manager import required_free_bytes
    from skinlab.model import backbones

    for name, row in BACKBONES.items():
        if row.kind == "scratch":
            assert row.builder in backbones._SCRATCH_BUILDERS and row.imagenet is None
        else:
            assert row.imagenet is not None and hasattr(
                keras.applications, row.imagenet.application
            )
            assert row.preprocess_layer in (None, *backbones._PREPROCESS_LAYERS)
        need = required_free_bytes(RunConfig(backbone=name))
        assert need == (3 * row.weights_mb + 100) * 2**20
    # The registry is read by the pages and the CLI: it must not load Keras.
    probe = "import sys, skinlab.model.registry; print('keras' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
        == "False\n"
    )


def test_plain_cnn_is_the_gpu_studys_all_3x3_network():
    model = build_model("plain_cnn", num_classes=9, image_size=64)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 32, 64, 64, 128, 128, 256, 256]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert not any(isinstance(c, keras.layers.SeparableConv2D) for c in convs)
    assert 1.1e6 < model.count_params() < 1.3e6  # "~1.2 M parameters"
