"""k-fold cross-validation of a recipe on the Train split: honest model selection.

One validation split says little on a few thousand images: a lucky split can move
balanced accuracy by several points. :func:`cross_validate` trains one ordinary run per
fold (fold k of hash-grouped stratified folds is that run's validation split, see
:func:`skinlab.data.splits.fold_split`; the Test split is never scored) and reports each fold
and the mean ± sd. The result is saved as ``models_dir()/cv/<UTC time>-<preset>.json``
(one writer: this module), where the Runs and Train pages read it.

Example::

    result = cross_validate(preset("quick", data_root="data/isic", epochs=3), folds=5)
    result.mean["balanced_accuracy"], result.sd["balanced_accuracy"]
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from skinlab.core import atomic
from skinlab.core.config import RunConfig
from skinlab.core.errors import SkinlabError
from skinlab.core.paths import models_dir

#: The scores reported per fold, in display order.
METRICS: tuple[str, ...] = ("accuracy", "balanced_accuracy", "macro_f1")
_TITLES = {"accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy", "macro_f1": "Macro-F1"}
_TIME = "%Y%m%d-%H%M%S"
#: Most folds a saved result is read with: a file in models/cv/ can be edited by anyone with
#: the models folder, and the review queue reads every fold run's predictions.
MAX_FOLDS = 100


@dataclass(frozen=True)
class FoldResult:
    """One fold's run and its validation scores."""

    fold: int
    run_id: str
    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    minutes: float


@dataclass(frozen=True)
class CVResult:
    """Every fold of a cross-validation and their summary.

    Attributes:
        preset: the preset the recipe started from (``"custom"`` when none).
        config: the recipe's :class:`RunConfig` as a dict (the fold fields unset).
        folds: one :class:`FoldResult` per fold, in fold order.
        created: UTC time it finished, ``yyyymmdd-HHMMSS``.
    """

    preset: str
    config: dict[str, Any]
    folds: tuple[FoldResult, ...]
    created: str

    @property
    def mean(self) -> dict[str, float]:
        return {m: statistics.fmean(getattr(f, m) for f in self.folds) for m in METRICS}

    @property
    def sd(self) -> dict[str, float]:
        """Sample standard deviation (n - 1) over the folds; 0 for a single fold."""
        return {
            m: statistics.stdev(getattr(f, m) for f in self.folds) if len(self.folds) > 1 else 0.0
            for m in METRICS
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "config": self.config,
            "folds": [asdict(f) for f in self.folds],
            "mean": self.mean,
            "sd": self.sd,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CVResult:
        """Parse :meth:`to_dict`'s output (``mean``/``sd`` are recomputed from the folds).

        Raises:
            KeyError, TypeError, ValueError: ``data`` is not a CV result, or lists more than
                :data:`MAX_FOLDS` folds (each would be a run whose predictions are read).
        """
        if len(data["folds"]) > MAX_FOLDS:
            raise ValueError(f"a CV result of more than {MAX_FOLDS} folds")
        folds = tuple(
            FoldResult(
                fold=int(f["fold"]),
                run_id=str(f["run_id"]),
                minutes=float(f["minutes"]),
                **{m: float(f[m]) for m in METRICS},
            )
            for f in data["folds"]
        )
        if not folds:
            raise ValueError("a CV result without folds")
        created = str(data["created"])
        datetime.strptime(created, _TIME)  # a ValueError now, not in every later label
        return cls(str(data["preset"]), dict(data["config"]), folds, created)

    def summary(self) -> str:
        """``accuracy 0.650 ± 0.020, balanced accuracy 0.612 ± 0.031, macro-F1 ...``."""
        mean, sd = self.mean, self.sd
        names = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy"}
        return ", ".join(f"{names.get(m, _TITLES[m])} {mean[m]:.3f} ± {sd[m]:.3f}" for m in METRICS)


def result_label(result: CVResult) -> str:
    """``quick · 5 folds · 2026-11-27 14:05 UTC · balanced accuracy 0.612 ± 0.031``."""
    mean, sd = result.mean["balanced_accuracy"], result.sd["balanced_accuracy"]
    return (
        f"{result.preset} · {len(result.folds)} folds · {when(result)} · balanced accuracy "
        f"{mean:.3f} ± {sd:.3f}"
    )


def when(result: CVResult) -> str:
    """When ``result`` was made, as ``2026-11-27 14:05 UTC``."""
    return datetime.strptime(result.created, _TIME).strftime("%Y-%m-%d %H:%M UTC")


def fold_name(preset: str, fold: int, folds: int) -> str:
    """The name every fold run carries, so the Runs page shows them as one family."""
    return f"cv {preset} fold {fold}/{folds}"


def cross_validate(
    config: RunConfig,
    folds: int = 5,
    seed: int | None = None,
    progress: Callable[[float, str], None] | None = None,
    *,
    preset: str = "custom",
    root: Path | None = None,
) -> CVResult:
    """Train ``config`` once per fold of Train and save and return the scores.

    Args:
        config: the recipe; its ``val_fraction`` is ignored (each fold is validation once).
        folds: number of folds, at least 2.
        seed: seeds the folds and every fold's training (default: ``config.seed``).
        progress: called with ``(fraction done, message)`` before each fold and at the end.
        preset: the preset name recorded with the result and in the runs' names.
        root: the models folder (default :func:`skinlab.core.paths.models_dir`).

    Raises:
        SkinlabError: too few images for ``folds`` folds, or a fold's run failed (that run
            is marked failed; the folds before it stay as runs).
    """
    from skinlab.train.training import train  # TensorFlow loads only when training

    if folds < 2:
        raise SkinlabError(f"Cross-validation needs at least 2 folds, not {folds}.")
    base = config.replace(cv_fold=0, cv_folds=0, seed=config.seed if seed is None else seed)
    results = []
    for k in range(1, folds + 1):
        if progress:
            progress((k - 1) / folds, f"training fold {k} of {folds}")
        fold_config = base.replace(cv_fold=k, cv_folds=folds, name=fold_name(preset, k, folds))
        started = time.monotonic()
        run = train(fold_config)
        scores = run.metrics.get("validation")
        if not scores:
            raise SkinlabError(f"Fold {k} of {folds} has no validation scores; use fewer folds.")
        results.append(
            FoldResult(
                fold=k,
                run_id=run.paths.run_id,
                minutes=(time.monotonic() - started) / 60,
                **{m: float(scores[m]) for m in METRICS},
            )
        )
    result = CVResult(preset, base.to_dict(), tuple(results), datetime.now(UTC).strftime(_TIME))
    save_result(result, root)
    if progress:
        progress(1.0, "cross-validation done")
    return result


def results_dir(root: Path | None = None) -> Path:
    """Where CV results are saved: ``<models>/cv`` (no ``config.json``, so never a run)."""
    return (Path(root) if root is not None else models_dir()) / "cv"


def save_result(result: CVResult, root: Path | None = None) -> Path:
    """Write ``result`` atomically as ``<created>-<preset>.json`` and return its path."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", result.preset) or "custom"
    path = results_dir(root) / f"{result.created}-{safe}.json"
    atomic.write_json(path, result.to_dict())
    return path


def load_results(root: Path | None = None) -> list[CVResult]:
    """Every saved CV result, newest first; unreadable files are skipped."""
    folder = results_dir(root)
    found = []
    for path in sorted(folder.glob("*.json"), reverse=True) if folder.is_dir() else []:
        try:
            # read_json, not read_text: a pipe, a device or 100,000 nested lists in place of
            # a result is refused in bounded time and memory (issue 29).
            found.append(CVResult.from_dict(atomic.read_json(path)))
        except (OSError, SkinlabError, ValueError, KeyError, TypeError):
            continue  # half-written by hand or by an older version: not worth a crash
    return sorted(found, key=lambda r: r.created, reverse=True)


def latest_result(preset: str, root: Path | None = None) -> CVResult | None:
    """The newest saved CV result of ``preset``, if any."""
    return next((r for r in load_results(root) if r.preset == preset), None)


def fold_table(result: CVResult) -> pd.DataFrame:
    """One row per fold and a last ``mean ± sd`` row, with display headers, for the pages."""
    rows = [
        {
            "Fold": str(f.fold),
            "Run": f.run_id,
            **{_TITLES[m]: f"{getattr(f, m):.3f}" for m in METRICS},
        }
        | {"Minutes": f"{f.minutes:.1f}"}
        for f in result.folds
    ]
    mean, sd = result.mean, result.sd
    rows.append(
        {"Fold": "mean ± sd", "Run": ""}
        | {_TITLES[m]: f"{mean[m]:.3f} ± {sd[m]:.3f}" for m in METRICS}
        | {"Minutes": f"{sum(f.minutes for f in result.folds):.1f} total"}
    )
    return pd.DataFrame(rows)
