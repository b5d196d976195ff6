"""Seed repeats: the same settings trained with N seeds, so a learner sees how much of a
difference between two runs is noise.

A group is N runs whose configs differ only in ``seed`` (``seed``, ``seed + 1``, ...),
``name`` (the seed appended) and share one ``repeat_group`` id
(:attr:`skinlab.core.config.RunConfig.repeat_group`), so each run folder says which group it is
in and nothing else records the group. Everything shown of a group is computed from its
runs' files: per-epoch mean ± sd curves (:func:`epoch_bands`) and mean ± sd of the final
scores (:func:`group_table`).

Example::

    paths = start_repeats(preset("quick", data_root="data/skinlab-demo"), 3)
    group = runs.read_config(paths[0]).repeat_group
    histories = member_histories(members(group))
    epoch_bands(histories, "val_accuracy")      # epoch, mean, sd, n
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Iterable
from contextlib import suppress

import numpy as np
import pandas as pd

from skinlab.core import runs
from skinlab.core.config import RunConfig
from skinlab.core.errors import SkinlabError

#: The most seeds one click or command may start (each is a whole training run).
MAX_REPEATS = 10
#: The Train page's choices: one run, or three or five seeds.
PAGE_CHOICES = (1, 3, 5)


def new_group_id() -> str:
    """A short id, unique enough for one machine's runs: ``"r1795799419-3f9a"``."""
    return f"r{int(time.time())}-{secrets.token_hex(2)}"


def repeat_configs(config: RunConfig, repeats: int, group: str | None = None) -> list[RunConfig]:
    """``repeats`` copies of ``config`` with seeds ``seed .. seed + repeats - 1``, one group
    id (``group`` or a new one) and the seed in each name; ``[config]`` unchanged for 1.

    Raises:
        SkinlabError: ``repeats`` is below 1 or above :data:`MAX_REPEATS`.
    """
    if not 1 <= repeats <= MAX_REPEATS:
        raise SkinlabError(f"Repeats must be between 1 and {MAX_REPEATS}, not {repeats}.")
    if repeats == 1:
        return [config]
    group = group or new_group_id()
    base = config.name or f"repeats {group}"
    return [
        config.replace(
            seed=config.seed + i, repeat_group=group, name=f"{base} · seed {config.seed + i}"
        )
        for i in range(repeats)
    ]


def start_repeats(
    config: RunConfig, repeats: int, start: Callable[[RunConfig], runs.RunPaths] | None = None
) -> list[runs.RunPaths]:
    """Start (queue) every run of :func:`repeat_configs`; returns their paths in seed order.

    ``start`` defaults to :func:`skinlab.jobs.manager.start_run`; the runs queue behind each
    other under the usual concurrency limit.
    """
    if start is None:
        from skinlab.jobs.manager import start_run

        start = start_run
    return [start(member) for member in repeat_configs(config, repeats)]


def groups(run_ids: Iterable[str]) -> dict[str, list[str]]:
    """``{group id: [run ids, oldest first]}`` of the runs in ``run_ids`` (newest first)
    that belong to a group (unreadable configs are skipped)."""
    found: dict[str, list[str]] = {}
    for run_id in run_ids:
        with suppress(SkinlabError):
            config = runs.read_config(runs.resolve_run(run_id))
            if config.repeat_group:
                found.setdefault(config.repeat_group, []).insert(0, run_id)
    return found


def members(group: str) -> list[str]:
    """The run ids of ``group`` in the models folder, oldest first (configs only are read)."""
    return groups(paths.run_id for paths in runs.list_runs()).get(group, [])


def member_histories(run_ids: Iterable[str]) -> list[pd.DataFrame]:
    """The ``history.csv`` of each run (whole epochs only); unreadable ones are left out."""
    histories = []
    for run_id in run_ids:
        with suppress(SkinlabError):
            histories.append(runs.read_history(runs.resolve_run(run_id)))
    return histories


def epoch_bands(histories: Iterable[pd.DataFrame], metric: str) -> pd.DataFrame:
    """Per epoch, the ``mean`` and sample ``sd`` of ``metric`` over the runs that have it,
    and ``n``, how many they are; columns ``epoch, mean, sd, n``, one row per epoch.

    ``sd`` is NaN where only one run has the epoch (a spread needs two).
    """
    frames = [h[["epoch", metric]].dropna() for h in histories if metric in h and "epoch" in h]
    if not frames or all(f.empty for f in frames):
        return pd.DataFrame(columns=["epoch", "mean", "sd", "n"])
    stacked = pd.concat(frames, ignore_index=True)
    stats = stacked.groupby("epoch")[metric].agg(["mean", "std", "count"]).reset_index()
    stats.columns = ["epoch", "mean", "sd", "n"]
    stats["epoch"] = stats["epoch"].astype(int)
    return stats


def mean_sd(values: Iterable[float | None]) -> tuple[float | None, float | None, int]:
    """``(mean, sample sd, n)`` of the values that are numbers; ``sd`` is ``None`` under
    two values, and everything ``None`` (n 0) without any."""
    numbers = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if not numbers:
        return None, None, 0
    sd = float(np.std(numbers, ddof=1)) if len(numbers) > 1 else None
    return float(np.mean(numbers)), sd, len(numbers)


def format_mean_sd(values: Iterable[float | None], spec: str = ".1%") -> str:
    """``"71.2% ± 3.1% (n=3)"``; ``"–"`` without values, no ``±`` with one."""
    mean, sd, n = mean_sd(values)
    if mean is None:
        return "–"
    if sd is None:
        return f"{mean:{spec}} (n={n})"
    return f"{mean:{spec}} ± {sd:{spec}} (n={n})"


def group_table(summaries: list[runs.RunSummary]) -> pd.DataFrame:
    """One row per seed-repeat group in ``summaries`` (:func:`skinlab.jobs.manager.list_summaries`):
    its runs and states, and the mean ± sd over its runs of the best validation accuracy
    and of the final validation balanced accuracy. Empty when there are no groups."""
    by_id = {s.run_id: s for s in summaries}
    rows = []
    for group, members in groups(s.run_id for s in summaries).items():
        chosen = [by_id[m] for m in members]
        states = pd.Series([s.state for s in chosen]).value_counts()
        rows.append(
            {
                "group": group,
                "runs": len(chosen),
                "states": ", ".join(f"{n} {state}" for state, n in states.items()),
                "best val accuracy": format_mean_sd(s.best_val_accuracy for s in chosen),
                "balanced accuracy": format_mean_sd(s.balanced_accuracy for s in chosen),
            }
        )
    return pd.DataFrame(rows)
