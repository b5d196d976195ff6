"""The recipe ablation: each variant cross-validated on the same folds, one table."""

from __future__ import annotations

import contextlib
import io
import json

from skinlab.core.config import PRESETS, RunConfig
from skinlab.train import ablation
from skinlab.train.ablation import AblationRow, Variant, ablation_table
from skinlab.train.cv import CVResult, FoldResult


def _result(balanced: list[float], minutes: float = 2.0) -> CVResult:
    folds = tuple(
        FoldResult(
            k, f"run{k}", accuracy=b + 0.05, balanced_accuracy=b, macro_f1=b, minutes=minutes
        )
        for k, b in enumerate(balanced, start=1)
    )
    return CVResult("ablation", {}, folds, "20261127-120000")


def test_every_variant_takes_out_one_element_of_cpu_best_and_the_last_is_the_old_recipe() -> None:
    recipe = PRESETS["cpu-best"]
    whole, *removed, before = ablation.VARIANTS
    assert whole.overrides == {}
    for variant in removed:
        changed = {k for k, v in variant.overrides.items() if recipe.get(k) != v}
        assert changed, variant.name  # each row really changes the recipe
        RunConfig(**{**recipe, **variant.overrides})  # and is a valid config
    assert before.overrides["imbalance"] == "class_weights"
    assert "epochs" not in before.overrides and "image_size" not in before.overrides


def test_the_table_gives_mean_sd_the_change_against_the_whole_recipe_and_minutes() -> None:
    rows = [
        AblationRow(Variant("whole recipe", "as is", {}), _result([0.60, 0.62, 0.64])),
        AblationRow(Variant("- smoothing", "hard", {}), _result([0.55, 0.57, 0.59], 1.5)),
    ]
    table = ablation_table(rows).splitlines()
    assert table[2] == "| whole recipe (as is) | 0.620 ± 0.020 |  | 0.670 ± 0.020 | 2.0 |"
    assert table[3] == "| - smoothing (hard) | 0.570 ± 0.020 | -0.050 | 0.620 ± 0.020 | 1.5 |"


def test_the_cli_cross_validates_each_variant_of_the_recipe_on_the_same_folds(
    monkeypatch, tmp_path
) -> None:
    # cross_validate itself trains for real in test_cv.py; here, what reaches it.
    from skinlab.cli import main

    seen: list[tuple[RunConfig, int, str]] = []

    def fake_cv(config: RunConfig, folds: int, *, progress, preset: str, root) -> CVResult:
        seen.append((config, folds, preset))
        return _result([0.5 + 0.01 * len(seen)] * folds)

    monkeypatch.setattr(ablation, "cross_validate", fake_cv)
    (tmp_path / "data" / "Train" / "a").mkdir(parents=True)
    out = io.StringIO()
    argv = ["ablation", "--data", str(tmp_path / "data"), "--folds", "3", "--image-size", "64"]
    argv += ["--epochs", "20", "--time-budget-minutes", "0", "--json"]
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    rows = json.loads(out.getvalue())
    assert [row["variant"] for row in rows] == [v.name for v in ablation.VARIANTS]
    assert all(folds == 3 for _, folds, _ in seen)
    configs = [config for config, _, _ in seen]
    # The flags shape every row; each variant changes only its own element of cpu-best.
    assert {(c.image_size, c.epochs, c.time_budget_minutes, c.seed) for c in configs} == {
        (64, 20, 0.0, configs[0].seed)
    }
    assert configs[0].label_smoothing == 0.1 and configs[2].label_smoothing == 0.0
    assert configs[1].imbalance == "class_weights" and configs[2].imbalance == "balanced_sampling"
    assert configs[-1].optimizer == "adam" and configs[-1].schedule == "cosine"
