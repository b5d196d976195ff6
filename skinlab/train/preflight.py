"""The one pre-flight check of a run: what would make training fail at once, found before
a run folder or a process exists.

``python -m skinlab train``, ``python -m skinlab runs start`` and the Train page all call
:func:`preflight` first, so a start that cannot work leaves nothing behind (no "failed" run
folder, no Resume button that has nothing to resume) and says why in one sentence.
Training checks the data again once it runs (:func:`skinlab.train.training.prepare_data`): the
folder can change in between.

Example::

    dataset = preflight(config)       # raises DatasetLayoutError, WeightsUnavailableError...
    manager.start_run(config)
"""

from __future__ import annotations

from skinlab.core.config import RunConfig
from skinlab.core.errors import DatasetLayoutError, SkinlabError
from skinlab.data.discovery import Dataset, discover
from skinlab.data.extra_collections import check_extra_paths
from skinlab.model import weights
from skinlab.model.backbones import BACKBONES


def check_trainable(dataset: Dataset) -> None:
    """Raise :class:`DatasetLayoutError` when ``dataset`` cannot be trained on: no readable
    Train images, or fewer than two classes in them."""
    train = dataset.images("Train")
    if "error" in train.columns:
        train = train[train["error"].isna()]
    if train.empty:
        raise DatasetLayoutError(
            f"{dataset.root} has no readable Train images to learn from; pick another dataset."
        )
    if train["label"].nunique() < 2:
        raise DatasetLayoutError(
            "Training needs at least two classes in the Train split; this dataset has "
            f"{train['label'].nunique()}."
        )


def preflight(config: RunConfig, dataset: Dataset | None = None) -> Dataset:
    """Check ``config`` can start training and return its dataset (``dataset`` if given,
    already discovered from ``config.data_root``).

    Raises:
        SkinlabError: the backbone is unknown.
        DatasetLayoutError: the dataset folder is missing or cannot be trained on, or an
            extra training path is missing or is that dataset.
        WeightsUnavailableError: ImageNet weights asked for but not available (offline).
    """
    if config.backbone not in BACKBONES:
        raise SkinlabError(
            f"Unknown backbone '{config.backbone}'; choose one of {', '.join(BACKBONES)}."
        )
    dataset = dataset or discover(config.data_root)
    check_trainable(dataset)
    check_extra_paths(dataset.root, config.extra_data)
    if config.weights == "imagenet":
        weights.ensure_imagenet_weights(config.backbone, config.image_size)
    return dataset
