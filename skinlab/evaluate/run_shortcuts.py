"""Shortcuts in a run's training data: can the label of the images a run learned from be
predicted without the lesion?

:func:`skinlab.data.shortcuts.label_without_lesion` answers it for a whole dataset;
:func:`shortcut_check_for_run` answers it for the rows one run trained and validated on
(rebuilt by :func:`skinlab.data.run_split.split_for_run`: its dataset version, split and
extra collections), and saves the answer in the run's ``metrics.json``
(:func:`skinlab.evaluate.saved_checks.record_shortcuts`) beside its lesion-masked test: the
check says a shortcut was there to learn, the masked test whether the run learned it.

Contract: no model is loaded (the check never looks at the weights); the score is
deterministic for the run's rows and ``seed``; each call recomputes and overwrites the saved
one.

Example::

    score = shortcut_check_for_run("20261105-1200-quick")
    print(score.sentence)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from skinlab.core import runs
from skinlab.data.run_split import split_for_run
from skinlab.data.shortcuts import ShortcutScore, label_without_lesion
from skinlab.evaluate.saved_checks import record_shortcuts


def shortcut_check_for_run(ref: str | Path, seed: int = 0) -> ShortcutScore:
    """:func:`~skinlab.data.shortcuts.label_without_lesion` of the training and validation
    rows of run ``ref`` (id, unique prefix or folder), saved in its ``metrics.json``.

    Raises:
        RunNotFoundError: no run, or several, match ``ref``.
        RunFileError: the run's ``config.json`` is missing or malformed, or its
            ``metrics.json`` cannot be read.
        DatasetLayoutError, OverridesError: the run's rows cannot be rebuilt (its dataset
            moved, lost its Train images or the version it trained on).
        ShortcutCheckError: fewer than two classes have two readable images.
    """
    paths = runs.resolve_run(ref)
    rows = split_for_run(runs.read_config(paths))
    table = pd.concat([rows.train, rows.val], ignore_index=True)
    score = label_without_lesion(table, seed, dataset_name=rows.dataset.root.name)
    record_shortcuts(paths, score)
    return score
