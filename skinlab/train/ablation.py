"""The recipe ablation: what each element of ``cpu-best`` is worth, by cross-validation.

Each :data:`VARIANTS` row takes one element out of the recipe (or, for the last row, trains
the ``cpu-best`` of before issue 14 instead) and is cross-validated on the same folds as the
whole recipe (:func:`skinlab.train.cv.cross_validate`, hash-grouped stratified k-fold). The table
says the mean ± sd of balanced accuracy over the folds, its change against the whole
recipe, and the mean minutes per fold. A row whose change is within about one sd of zero
is an element the data cannot tell from noise.

A full-budget ablation costs hours on a 2-core CPU, so the table in the README is run at a
reduced budget (smaller images, a minute or two per fold) where the ranking of the elements
is what is read, not the absolute scores.

Example::

    rows = run_ablation(preset("cpu-best", data_root="data/isic", time_budget_minutes=1.5,
                               image_size=64), folds=5)
    print(ablation_table(rows))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skinlab.core.config import RunConfig
from skinlab.train.cv import CVResult, cross_validate


@dataclass(frozen=True)
class Variant:
    """One row of the ablation: a name, what it changes and why it is a fair comparison."""

    name: str
    description: str
    overrides: dict[str, Any]


#: cpu-best of before issue 14 (skinlab.bench.recipe_bench.BASELINE), less what the
#: ablation's own budget and size decide.
_BEFORE = {
    "backbone": "skinlab_cnn",
    "optimizer": "adam",
    "learning_rate": 2e-3,
    "weight_decay": 0.0,
    "schedule": "cosine",
    "augmentation": "strong",
    "imbalance": "class_weights",
    "label_smoothing": 0.0,
}

#: The rows, in table order; the first is the whole recipe.
VARIANTS: tuple[Variant, ...] = (
    Variant("whole recipe", "cpu-best as it is", {}),
    Variant(
        "- class-balanced sampling", "class weights in the loss instead",
        {"imbalance": "class_weights"},
    ),
    Variant("- label smoothing", "hard targets", {"label_smoothing": 0.0}),
    Variant(
        "- AdamW weight decay", "Adam without weight decay",
        {"optimizer": "adam", "weight_decay": 0.0},
    ),
    Variant("- one-cycle schedule", "cosine decay, no warm-up", {"schedule": "cosine"}),
    Variant(
        "- dermoscopy augmentation", "the 'strong' preset (half-turn rotations, no saturation)",
        {"augmentation": "strong"},
    ),
    Variant("cpu-best before issue 14", "the old recipe, same minutes and size", _BEFORE),
)  # fmt: skip


@dataclass(frozen=True)
class AblationRow:
    """A variant and its cross-validation."""

    variant: Variant
    result: CVResult

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant.name,
            "description": self.variant.description,
            "overrides": self.variant.overrides,
            "cv": self.result.to_dict(),
        }


def run_ablation(
    config: RunConfig,
    folds: int = 5,
    *,
    variants: tuple[Variant, ...] | None = None,
    progress: Callable[[float, str], None] | None = None,
    root: Path | None = None,
) -> list[AblationRow]:
    """Cross-validate ``config`` and each variant of it on the same folds (same seed).

    ``variants`` defaults to :data:`VARIANTS`.

    Raises:
        SkinlabError: as :func:`skinlab.train.cv.cross_validate`.
    """
    variants = VARIANTS if variants is None else variants
    rows = []
    for i, variant in enumerate(variants):

        def step(fraction: float, message: str, i: int = i, name: str = variant.name) -> None:
            if progress:
                progress((i + fraction) / len(variants), f"{name}: {message}")

        result = cross_validate(
            config.replace(**variant.overrides),
            folds,
            progress=step,
            preset=f"ablation {variant.name}",
            root=root,
        )
        rows.append(AblationRow(variant, result))
    return rows


def ablation_table(rows: list[AblationRow]) -> str:
    """A Markdown table: balanced accuracy mean ± sd, change against the first row, minutes."""
    lines = [
        "| recipe | balanced accuracy (mean ± sd) | change | accuracy | minutes per fold |",
        "|---|---|---|---|---|",
    ]
    whole = rows[0].result.mean["balanced_accuracy"] if rows else 0.0
    for row in rows:
        mean, sd = row.result.mean, row.result.sd
        minutes = sum(f.minutes for f in row.result.folds) / len(row.result.folds)
        change = "" if row is rows[0] else f"{mean['balanced_accuracy'] - whole:+.3f}"
        lines.append(
            f"| {row.variant.name} ({row.variant.description}) | "
            f"{mean['balanced_accuracy']:.3f} ± {sd['balanced_accuracy']:.3f} | {change} | "
            f"{mean['accuracy']:.3f} ± {sd['accuracy']:.3f} | {minutes:.1f} |"
        )
    return "\n".join(lines)
