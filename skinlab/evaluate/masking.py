"""The lesion-masked test: does a trained run look at the lesion, or at what surrounds it?

After Bissoto et al., "(De)Constructing Bias on Skin Lesion Datasets" (CVPR workshops 2019):
score a run three ways on the same images: as is, with the centre (where dermoscopy puts
the lesion) covered, and with only the centre kept. A model that still scores well above
chance with the lesion hidden has learnt the context (frame, skin, colour cast, ruler) and
will carry that shortcut to any image it is shown.

Contract:

* :func:`hide_centre` and :func:`keep_centre` are pure NumPy on ``uint8`` images
  (``(H, W, 3)`` or ``(N, H, W, 3)``), returning a new array: the inside (or the outside) of
  an ellipse over the central :data:`CENTRE` share of the width and height is filled with
  each image's mean border colour (the outer ring of :func:`skinlab.data.shortcuts.border_ring`),
  so the filled area carries no edge and no colour the image did not already have.
* :func:`lesion_masked_test` scores a run with :func:`skinlab.evaluate.scoring.score_table`
  (the run's temperature, no test-time views) and returns a :class:`MaskedTest`; scored on
  a dataset's images (not a table passed in), it is also saved in the run's ``metrics.json``
  (:func:`skinlab.evaluate.saved_checks.record_masked`).

Example::

    result = lesion_masked_test("20261105-1200-quick")
    print(result.sentence)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import pandas as pd

from skinlab.core.errors import DatasetLayoutError
from skinlab.data.discovery import discover
from skinlab.data.pipeline import decode_table
from skinlab.data.shortcuts import WELL_ABOVE, border_ring
from skinlab.evaluate.saved_checks import record_masked
from skinlab.evaluate.scoring import VALIDATION, score_table

if TYPE_CHECKING:
    from skinlab.model.modelio import LoadedModel

#: The ellipse's axes as a share of the image's width and height.
CENTRE = 0.6
#: Images decoded (and masked two ways) at once.
_CHUNK = 256
#: How :attr:`MaskedTest.sentence` names the images scored ("given" for a table passed in).
_WHERE = {"Test": "of the Test split", VALIDATION: "the run was validated on"}


@dataclass(frozen=True)
class MaskedTest:
    """Balanced accuracy of one run on the same images, as is and masked.

    Attributes:
        run_id: the run scored.
        split: ``"Test"``, ``"validation"`` (the run's own validation images) or
            ``"given images"`` (a table passed in).
        images: images scored.
        chance: balanced accuracy of guessing (1 / classes among the images).
        as_is, centre_hidden, centre_only: balanced accuracy of each view.
        sentence: what the three numbers say, in plain words.
    """

    run_id: str
    split: str
    images: int
    chance: float
    as_is: float
    centre_hidden: float
    centre_only: float
    sentence: str

    @property
    def uses_context(self) -> bool:
        """With the centre hidden the run still scores :data:`WELL_ABOVE` above chance."""
        return self.centre_hidden - self.chance >= WELL_ABOVE

    def to_dict(self) -> dict[str, Any]:
        """The fields and :attr:`uses_context`, for ``--json``."""
        return {**asdict(self), "uses_context": self.uses_context}


def centre_ellipse(height: int, width: int, fraction: float = CENTRE) -> np.ndarray:
    """A ``(height, width)`` boolean mask, true inside the centred ellipse whose axes are
    ``fraction`` of the height and width."""
    rows = (np.arange(height) + 0.5 - height / 2) / (fraction * height / 2)
    cols = (np.arange(width) + 0.5 - width / 2) / (fraction * width / 2)
    return rows[:, None] ** 2 + cols[None, :] ** 2 <= 1.0


def hide_centre(images: np.ndarray, fraction: float = CENTRE) -> np.ndarray:
    """``images`` with the central ellipse filled with each image's mean border colour."""
    return _fill(images, fraction, inside=True)


def keep_centre(images: np.ndarray, fraction: float = CENTRE) -> np.ndarray:
    """``images`` with everything outside the central ellipse filled with each image's mean
    border colour."""
    return _fill(images, fraction, inside=False)


def _fill(images: np.ndarray, fraction: float, *, inside: bool) -> np.ndarray:
    batch = images[None] if images.ndim == 3 else images
    height, width = batch.shape[1:3]
    colour = np.rint(batch[:, border_ring(height, width)].mean(axis=1)).astype(np.uint8)
    region = centre_ellipse(height, width, fraction)
    out = batch.copy()
    out[:, region if inside else ~region] = colour[:, None, :]
    return out[0] if images.ndim == 3 else out


#: The three views, in the order :class:`MaskedTest` lists them.
VIEWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "as_is": lambda images: images,
    "centre_hidden": hide_centre,
    "centre_only": keep_centre,
}


def lesion_masked_test(ref: str, data: pd.DataFrame | str | Path | None = None) -> MaskedTest:
    """Score run ``ref`` as is, with the centre hidden and with only the centre kept.

    Args:
        ref: run id, unique prefix, or run folder.
        data: a table of readable images (``path``, ``relpath``, ``label``); or a dataset
            root, whose Test split is scored when it has one and otherwise the run's own
            validation images (split again from its config); ``None`` means the run's dataset.

    Raises:
        DatasetLayoutError: no images to score, or classes the run was not trained on.
        ModelFileError: the run's weights or manifest are missing or inconsistent.
    """
    from skinlab.model.modelio import load_run_model

    loaded = load_run_model(ref)
    table, split = _images(loaded, data)
    logits = _view_logits(loaded.model, table, loaded.image_size)
    scores = {}
    for view, view_logits in logits.items():
        metrics, _ = score_table(
            loaded.model,
            table,
            loaded.class_names,
            loaded.image_size,
            temperature=loaded.temperature,
            split=split,
            logits=view_logits,
        )
        scores[view] = float(metrics["balanced_accuracy"])
    chance = 1.0 / table["label"].nunique()
    result = MaskedTest(
        run_id=loaded.paths.run_id,
        split=split,
        images=len(table),
        chance=chance,
        **scores,
        sentence=_sentence(scores, chance, len(table), split),
    )
    if not isinstance(data, pd.DataFrame):  # a dataset's split, not a table handed in
        record_masked(loaded.paths, result)
    return result


def _images(
    loaded: LoadedModel, data: pd.DataFrame | str | Path | None
) -> tuple[pd.DataFrame, str]:
    """The table to score and its split's name."""
    if isinstance(data, pd.DataFrame):
        return data, "given images"
    from skinlab.core import runs

    config = runs.read_config(loaded.paths)
    root = str(data or config.data_root)
    dataset = discover(root)
    if "Test" in dataset.splits:
        return dataset.images("Test"), "Test"
    from skinlab.data.run_split import split_for_run

    try:
        return split_for_run(config.replace(data_root=root)).val, VALIDATION
    except DatasetLayoutError as exc:
        raise DatasetLayoutError(
            f"{dataset.root} has no Test split and its validation images cannot be split "
            f"again ({exc}); pass a dataset with a Test split."
        ) from exc


def _view_logits(model: keras.Model, table: pd.DataFrame, image_size: int) -> dict[str, np.ndarray]:
    """The logits of every row of ``table`` under each of :data:`VIEWS`, decoding once."""
    out: dict[str, list[np.ndarray]] = {view: [] for view in VIEWS}
    for start in range(0, len(table), _CHUNK):
        images = decode_table(table.iloc[start : start + _CHUNK], image_size)
        for view, transform in VIEWS.items():
            batch = transform(images).astype("float32")
            out[view].append(model.predict(batch, batch_size=64, verbose=0))
    empty = np.zeros((0, model.output_shape[-1]), "float32")
    return {view: np.concatenate(parts) if parts else empty for view, parts in out.items()}


def _sentence(scores: dict[str, float], chance: float, images: int, split: str) -> str:
    where = _WHERE.get(split, "given")
    text = (
        f"Balanced accuracy on the {images} images {where}: {scores['as_is']:.2f} as is, "
        f"{scores['centre_hidden']:.2f} with the centre hidden and {scores['centre_only']:.2f} "
        f"with only the centre kept, where guessing gives {chance:.2f}. "
    )
    if scores["centre_hidden"] - chance >= WELL_ABOVE:
        return text + (
            "Well above chance with the lesion hidden means the model uses the context (frame, "
            "skin, colour cast), not only the lesion: it can be right for the wrong reason."
        )
    return text + (
        "Near chance with the lesion hidden means the model does not lean on the context: "
        "what it knows comes from the centre of the image, where the lesion is."
    )
