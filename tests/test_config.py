"""RunConfig: validated, JSON round-trips, presets match their promises."""

import json

import pytest

from skinlab.core.config import PRESETS, RunConfig, preset


def test_config_round_trips_through_json() -> None:
    cfg = preset("cpu-best", data_root="/data/isic", epochs=3)
    again = RunConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg


def test_unknown_keys_from_newer_versions_are_ignored() -> None:
    assert RunConfig.from_dict({"epochs": 2, "future_option": 1}).epochs == 2


def test_notebook_preset_is_the_seed_recipe() -> None:
    cfg = preset("notebook")
    assert (cfg.backbone, cfg.image_size, cfg.batch_size, cfg.epochs) == ("custom", 180, 32, 30)
    assert (cfg.optimizer, cfg.dropout, cfg.val_fraction) == ("sgd", 0.2, 0.2)
    assert cfg.augmentation == "notebook"


def test_transfer_preset_uses_imagenet_and_fine_tunes() -> None:
    cfg = preset("transfer")
    assert cfg.weights == "imagenet" and cfg.fine_tune_layers > 0 and cfg.fine_tune_epochs > 0
    assert cfg.total_epochs == cfg.epochs + cfg.fine_tune_epochs


@pytest.mark.parametrize(
    "bad",
    [
        {"optimizer": "rmsprop"},
        {"augmentation": "extreme"},
        {"imbalance": "smote"},
        {"dropout": 1.0},
        {"val_fraction": 0.95},
        {"image_size": 8},
        {"learning_rate": 0},
        {"weight_decay": -0.01},
        {"weight_decay": 1.0},
        {"label_smoothing": 0.6},
        {"label_smoothing": -0.1},
        {"tta": 0},
        {"keep_weights": "middle"},
        {"tta": 33},
    ],
)
def test_invalid_options_raise_a_clear_value_error(bad) -> None:
    with pytest.raises(ValueError, match="must"):
        RunConfig(**bad)


def test_unknown_preset_names_the_choices() -> None:
    with pytest.raises(ValueError, match=", ".join(PRESETS)):
        preset("best-ever")


def test_the_issue_14_options_default_to_off_so_old_configs_train_as_before() -> None:
    defaults = RunConfig.from_dict({"epochs": 2})
    assert (defaults.weight_decay, defaults.label_smoothing, defaults.ema) == (0.0, 0.0, False)


#: The GPU study's recipe (issue 14), shared by cpu-best and long: optimizer, weight decay,
#: schedule, imbalance, label smoothing, augmentation, dropout.
GPU_STUDY_RECIPE = ("adamw", 0.05, "one_cycle", "balanced_sampling", 0.1, "dermoscopy", 0.3)


def _recipe(cfg: RunConfig) -> tuple:
    return (
        cfg.optimizer,
        cfg.weight_decay,
        cfg.schedule,
        cfg.imbalance,
        cfg.label_smoothing,
        cfg.augmentation,
        cfg.dropout,
    )


def test_cpu_best_is_the_cross_validated_recipe_within_its_budget() -> None:
    cfg = preset("cpu-best", data_root="/data/isic")
    assert (cfg.backbone, cfg.weights, cfg.image_size, cfg.epochs) == (
        "skinlab_cnn",
        "none",
        96,
        150,
    )
    assert _recipe(cfg) == GPU_STUDY_RECIPE
    assert (cfg.learning_rate, cfg.time_budget_minutes) == (6e-3, 14.0)
    assert (cfg.keep_weights, cfg.tta) == ("last", 32)


def test_the_long_preset_is_the_gpu_studys_recipe_for_150_epochs() -> None:
    cfg = preset("long", data_root="/data/isic")
    assert (cfg.backbone, cfg.image_size, cfg.epochs) == ("plain_cnn", 128, 150)
    assert _recipe(cfg) == GPU_STUDY_RECIPE
    assert (cfg.learning_rate, cfg.keep_weights, cfg.tta) == (3e-3, "last", 32)


def test_extra_data_round_trips_through_json_as_a_tuple() -> None:
    cfg = preset("quick", data_root="/data/isic9", extra_data=("/data/ham", "/data/bcn"))
    text = cfg.to_json()
    assert json.loads(text)["extra_data"] == ["/data/ham", "/data/bcn"]  # a JSON list
    again = RunConfig.from_dict(json.loads(text))
    assert again == cfg and again.extra_data == ("/data/ham", "/data/bcn")
    assert RunConfig.from_dict({}).extra_data == ()  # configs written before it
    assert RunConfig.from_dict({"extra_data": "/data/ham"}).extra_data == ("/data/ham",)


def test_multi_collection_is_cpu_best_balancing_collections_within_20_minutes() -> None:
    cfg, best = preset("multi-collection"), preset("cpu-best")
    assert cfg.collection_balance and not best.collection_balance
    assert cfg.time_budget_minutes == 19.0 <= 20 and best.time_budget_minutes == 14.0
    same = {
        k: v
        for k, v in cfg.to_dict().items()
        if k not in ("collection_balance", "time_budget_minutes")
    }
    assert same == {k: v for k, v in best.to_dict().items() if k in same}
    assert cfg.extra_data == ()  # a preset names no paths
