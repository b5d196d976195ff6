"""How a cross-validation result reads on the pages: the recipe note and the one sentence
shown beside the presets (:mod:`skinlab.train.cv` runs and stores the result; this module words it
with the Train form's field labels, which is why it sits with the pages' modules).
"""

from __future__ import annotations

from pathlib import Path

from skinlab.core.config import PRESETS, RunConfig
from skinlab.train.cv import CVResult, when


def recipe_note(result: CVResult) -> str:
    """Where and how the recipe was cross-validated: its dataset folder and the options it
    changed from its preset (a CV run with ``--epochs 3`` is not the preset's 25 epochs)."""
    config = result.config
    parts = [f"{len(result.folds)} folds on {Path(str(config.get('data_root', ''))).name or '?'}"]
    if result.preset in PRESETS:
        own = RunConfig(**PRESETS[result.preset]).to_dict()
        skip = {"data_root", "name", "cv_fold", "cv_folds"}
        # Here, not at the top: the field table imports Keras, which the Runs page need not.
        from skinlab.app.train_fields import FIELDS_BY_NAME

        for name, value in sorted(config.items()):
            field = FIELDS_BY_NAME.get(name)
            if name not in skip and own.get(name) != value and field is not None:
                parts.append(f"{field.label.lower()} {field.option_label(value)}")
    return ", ".join(parts)


def describe(result: CVResult) -> str:
    """One sentence for beside the presets: the preset, how it was cross-validated, when,
    and the mean ± sd of each score."""
    return (
        f"Cross-validation of preset '{result.preset}' ({recipe_note(result)}; {when(result)}): "
        f"{result.summary()}."
    )
