"""The Train page's form as data: every run option has a widget, presets round-trip."""

from __future__ import annotations

import dataclasses

import pytest

from skinlab.app import train_form
from skinlab.app.train_fields import FIELDS, FIELDS_BY_NAME, SECTIONS
from skinlab.app.train_form import FormError, config_from_form, form_values
from skinlab.core.config import PRESETS, RunConfig, preset
from skinlab.model.backbones import BACKBONES


def test_every_run_option_except_the_dataset_has_a_field() -> None:
    on_form = [f.name for f in dataclasses.fields(RunConfig) if f.metadata.get("form", True)]
    options = set(on_form) - {"data_root"}
    assert set(FIELDS_BY_NAME) == options
    assert {f.section for f in FIELDS} <= set(SECTIONS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_round_trips_through_the_form(name: str) -> None:
    config = preset(name, data_root="/data/isic")
    assert config_from_form(form_values(config), "/data/isic") == config


def test_choices_are_offered_and_labelled_for_every_select_field() -> None:
    for field in FIELDS:
        if field.widget in ("select", "radio"):
            assert field.options, field.name
            assert all(field.option_label(option) for option in field.options)
    assert FIELDS_BY_NAME["backbone"].option_label("mobilenetv2") == "MobileNetV2"


def test_imagenet_and_fine_tuning_are_offered_only_for_transfer_backbones() -> None:
    scratch = form_values(preset("notebook")) | {"optimizer": "sgd"}
    shown = {f.name for f in train_form.visible_fields(scratch)}
    assert "weights" not in shown and "fine_tune_layers" not in shown
    assert "momentum" in shown
    transfer = form_values(preset("transfer"))
    shown = {f.name for f in train_form.visible_fields(transfer)}
    assert {"weights", "fine_tune_layers", "fine_tune_epochs", "fine_tune_lr_factor"} <= shown
    assert "momentum" not in shown  # Adam
    no_aug = transfer | {"augmentation": "none"}
    assert "augmentation_strength" not in {f.name for f in train_form.visible_fields(no_aug)}


def test_hidden_transfer_options_do_not_leak_into_a_scratch_run() -> None:
    values = form_values(preset("transfer")) | {"backbone": "custom"}
    config = config_from_form(values, "/d")
    assert config.weights == "none"
    assert config.fine_tune_layers == 0 and config.total_epochs == config.epochs


def test_numbers_are_cast_to_the_option_type_and_the_name_is_trimmed() -> None:
    values = form_values(preset("quick")) | {"image_size": 32.0, "epochs": 1.0, "name": "  a  "}
    config = config_from_form(values, "/d")
    assert config.image_size == 32 and isinstance(config.image_size, int)
    assert config.name == "a"


def test_an_invalid_value_is_one_sentence_naming_it() -> None:
    with pytest.raises(FormError, match="dropout"):
        config_from_form(form_values(preset("quick")) | {"dropout": 1.5}, "/d")


@pytest.mark.parametrize(("available", "best"), [(True, "transfer"), (False, "cpu-best")])
def test_best_accuracy_is_transfer_only_with_imagenet_weights(available: bool, best: str) -> None:
    choices = {c.label: c for c in train_form.preset_choices(available)}
    assert choices["Reproduce the notebook"].preset == "notebook"
    assert choices["Watch it overfit"].preset == "notebook-no-aug"
    assert choices["Fast CPU"].preset == "quick"
    assert choices["Best accuracy"].preset == best
    assert all(f"'{c.preset}'" in c.why for c in choices.values())  # the UI says which


def test_imagenet_weights_are_looked_up_in_the_keras_cache_without_downloading(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(train_form, "keras_cache_dir", lambda: tmp_path)
    assert not train_form.imagenet_weights_cached("mobilenetv2")
    assert not train_form.imagenet_weights_cached("custom")
    (tmp_path / train_form.imagenet_weights_filename("mobilenetv2", 224)).write_bytes(b"h5")
    assert train_form.imagenet_weights_cached("mobilenetv2")


def test_missing_widget_values_are_filled_from_the_default_preset() -> None:
    state = {"train_epochs": 3}
    values = train_form.ensure_values(state)
    assert values["epochs"] == 3
    assert values["backbone"] == PRESETS[train_form.DEFAULT_PRESET]["backbone"]
    assert all(f.key in state for f in FIELDS)


def test_config_summary_names_the_recipe() -> None:
    text = train_form.describe_config(preset("transfer"))
    assert "MobileNetV2 (ImageNet)" in text and "224 px" in text and "fine-tuning" in text
    assert "1 epoch ·" in train_form.describe_config(preset("quick", epochs=1))
    assert all(train_form.backbone_note(name) for name in BACKBONES)
    recipe = preset("quick", optimizer="adamw", weight_decay=0.05, label_smoothing=0.1, ema=True)
    text = train_form.describe_config(recipe)
    assert "adamw" in text and "weight decay 0.05" in text and "label smoothing 0.1" in text
    assert "EMA" in text and "EMA" not in train_form.describe_config(preset("quick"))


def test_picking_a_transfer_backbone_offers_imagenet_only_when_it_is_cached(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(train_form, "keras_cache_dir", lambda: tmp_path)
    state: dict = {}
    train_form.ensure_values(state)
    state["train_backbone"] = "mobilenetv2"
    train_form.on_backbone_change(state)
    assert state["train_weights"] == "none"
    values = {"backbone": "mobilenetv2", "image_size": 224, "weights": "imagenet"}
    assert "not on this machine" in train_form.weights_note(values)
    (tmp_path / train_form.imagenet_weights_filename("mobilenetv2", 224)).write_bytes(b"h5")
    state["train_image_size"] = 224
    train_form.on_backbone_change(state)
    assert state["train_weights"] == "imagenet"
    assert train_form.weights_note(values) is None
    state["train_backbone"] = "custom"
    train_form.on_backbone_change(state)
    assert state["train_weights"] == "none"
