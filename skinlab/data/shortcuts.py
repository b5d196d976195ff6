"""Shortcuts: can a dataset's labels be told apart without looking at the lesion?

A model learns whatever separates the classes, and in public skin-lesion data much of that is
not the lesion: in the Kaggle ISIC 9-class data every melanoma comes from the older ISIC
archive (dark circular frames, another colour cast) and every actinic keratosis from
HAM10000, so "which archive is this?" already answers "which class is this?". Two checks
say so before any training:

* :func:`collection_table` counts each class's images per collection
  (:func:`skinlab.data.collections.collection_of`), and :func:`one_collection_warnings` names
  in plain words each class that comes from one collection while others come only from
  another.
* :func:`label_without_lesion` cross-validates a small classifier (standardised logistic
  regression) on :func:`global_statistics`, numbers that never look at the lesion (colour of
  the whole image and of its border, the corners' darkness, the share of black, the original
  size), and scores it against chance.

Contract:

* Tables are discovery rows (``path``, ``relpath``, ``label``, ``width``, ``height``); pass
  readable rows only. An image that no longer decodes counts as black (as the review queue).
* Classes and collections with fewer than two images are left out of the cross-validation
  (one image cannot be both trained and tested on); with fewer than two classes left,
  :class:`ShortcutCheckError` is raised.
* Deterministic for ``seed``; 2,241 images take a few seconds on 2 cores (decoding dominates).

Example::

    ok = discover("data/isic").images()
    counts = collection_table(ok, "isic")
    one_collection_warnings(counts)        # ["Every melanoma image (438) comes from ...", ...]
    print(label_without_lesion(ok).explanation)

Why one module: the collection table and the statistics-only classifier are two views of one
question (does something other than the lesion give the label away?) and share their tables.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from skinlab.core.errors import SkinlabError
from skinlab.data.collections import ISIC_ARCHIVE, collection_of
from skinlab.data.near_duplicates import tiny_images

#: Side of the square each image is decoded at for :func:`global_statistics`.
STAT_SIZE = 64
#: Width of the border ring and of the corner squares, as a share of the shorter side.
BORDER = 0.10
#: Luma (0-255) below which a pixel counts as near black (frames, vignettes).
NEAR_BLACK = 40.0
#: Cross-validation folds, fewer when a class has fewer images.
FOLDS = 5
#: How far above chance a score must be to count as "well above".
WELL_ABOVE = 0.10

#: The columns of :func:`global_statistics`, in order.
FEATURES: tuple[str, ...] = (
    *(f"image_{s}_{c}" for s in ("mean", "std") for c in "rgb"),
    *(f"border_{s}_{c}" for s in ("mean", "std") for c in "rgb"),
    *(
        f"corner_darkness_{corner}"
        for corner in ("top_left", "top_right", "bottom_left", "bottom_right")
    ),
    "near_black_share",
    "log_width",
    "log_height",
    "aspect",
)

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


class ShortcutCheckError(SkinlabError):
    """A dataset has too little to cross-validate the statistics-only classifier on."""


@dataclass(frozen=True)
class ShortcutScore:
    """How well numbers that ignore the lesion predict the class (and the collection).

    Attributes:
        images: images scored (classes of one image left out).
        classes: classes scored.
        folds: cross-validation folds of the class score.
        class_balanced_accuracy: out-of-fold balanced accuracy predicting the class.
        class_chance: balanced accuracy of guessing (1 / ``classes``).
        collections: collections among the images.
        collection_accuracy: out-of-fold accuracy predicting the collection (``None`` with
            fewer than two collections).
        collection_base_rate: accuracy of always guessing the commonest collection.
        explanation: one paragraph a learner understands, with the numbers.
    """

    images: int
    classes: int
    folds: int
    class_balanced_accuracy: float
    class_chance: float
    collections: int
    collection_accuracy: float | None
    collection_base_rate: float | None
    explanation: str

    @property
    def label_predictable(self) -> bool:
        """The class score is at least :data:`WELL_ABOVE` above chance."""
        return self.class_balanced_accuracy - self.class_chance >= WELL_ABOVE

    def to_dict(self) -> dict[str, Any]:
        """The fields and :attr:`label_predictable`, for ``--json``."""
        return {**asdict(self), "label_predictable": self.label_predictable}

    @property
    def sentence(self) -> str:
        """The two scores and what they mean, in one sentence (the model card's): ``"20
        numbers that never look at the lesion (...) predict the class with balanced accuracy
        0.46 (chance 0.11) and the collection with accuracy 0.92 (...): ..."``."""
        text = (
            f"{len(FEATURES)} numbers that never look at the lesion (colour of the image and "
            "its border, darkness of its corners, size) predict the class with balanced "
            f"accuracy {self.class_balanced_accuracy:.2f} (chance {self.class_chance:.2f})"
        )
        accuracy, base = self.collection_accuracy, self.collection_base_rate
        if accuracy is not None and base is not None:
            text += (
                f" and the collection with accuracy {accuracy:.2f} (always guessing the "
                f"commonest {base:.2f})"
            )
        if not self.label_predictable:
            return (
                text + ": close to chance, so these simple shortcuts give the labels little away."
            )
        if accuracy is not None and base is not None and accuracy - base >= WELL_ABOVE:
            return text + ": the labels can be told apart by where the images came from."
        return text + (
            ": the labels can be told apart by the frame, colour cast and size of the "
            "photographs, without the lesion."
        )


def collection_table(table: pd.DataFrame, dataset_name: str) -> pd.DataFrame:
    """Images per class (rows, sorted) and collection (columns, largest first), as ``int``.

    Files whose name says nothing belong to the collection ``dataset_name``.
    """
    frame = pd.DataFrame({"label": table["label"], "collection": collections(table, dataset_name)})
    counts = frame.groupby(["label", "collection"]).size().unstack("collection", fill_value=0)
    order = counts.sum().sort_values(ascending=False, kind="stable").index
    return counts[order].sort_index().astype(int)


def one_collection_warnings(counts: pd.DataFrame) -> list[str]:
    """Sentences naming each class of ``counts`` (:func:`collection_table`) whose images all
    come from one collection while other classes come only from other collections; classes
    with the same collection and the same other classes share one sentence. None when the
    whole dataset is one collection."""
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for label, row in counts.iterrows():
        present = row[row > 0]
        if len(present) != 1:
            continue
        home = str(present.index[0])
        others = tuple(map(str, counts.index[(counts[home] == 0) & (counts.sum(axis=1) > 0)]))
        if others:
            groups.setdefault((home, others), []).append(f"{label} ({int(present.iloc[0])})")
    sentences = []
    for (home, others), members in groups.items():
        where = [c for c in map(str, counts.columns) if (counts.loc[list(others), c] > 0).any()]
        if len(members) == 1:
            label, count = members[0].rsplit(" ", 1)
            subject = f"Every {label} image {count}"
        else:
            subject = f"Every image of {_listed(members)}"
        sentences.append(
            f"{subject} comes from {_named(home)}, while {_listed(list(others))} images come "
            f"only from {_listed([_named(c) for c in where], 'or')}: a model can tell these classes "
            "apart by where the image came from instead of the lesion."
        )
    return sentences


def collections(table: pd.DataFrame, dataset_name: str) -> pd.Series:
    """The collection of each row of ``table`` (index kept): its ``collection`` column when it
    has one (a run's rows, :func:`skinlab.data.run_split.split_for_run`, extra collections
    included), else from its ``relpath`` (else ``path``) and original ``width`` and ``height``
    when the table has them."""
    if "collection" in table:
        return pd.Series(table["collection"].astype(str), name="collection", dtype=object)
    names = table["relpath"] if "relpath" in table else table["path"]
    widths = table["width"] if "width" in table else pd.Series(None, index=table.index)
    heights = table["height"] if "height" in table else pd.Series(None, index=table.index)
    values = [
        collection_of(str(name), dataset_name, width=_int(w), height=_int(h))
        for name, w, h in zip(names, widths, heights, strict=True)
    ]
    return pd.Series(values, index=table.index, name="collection", dtype=object)


def global_statistics(table: pd.DataFrame, *, size: int = STAT_SIZE) -> np.ndarray:
    """Numbers per image that do not look at the lesion: ``(N, len(FEATURES))`` ``float64``.

    Each row of ``table`` (``path``, ``width``, ``height``) is decoded by the safe decoder at
    ``size`` x ``size``; see :data:`FEATURES` for the columns.
    """
    images = tiny_images([str(p) for p in table["path"]], size).astype(np.float32)
    return np.column_stack([_pixel_statistics(images), _size_statistics(table)])


def border_ring(height: int, width: int, border: float = BORDER) -> np.ndarray:
    """A ``(height, width)`` boolean mask of the outer ``border`` share of an image."""
    band = max(1, round(border * min(height, width)))
    ring = np.ones((height, width), bool)
    ring[band : height - band, band : width - band] = False
    return ring


def label_without_lesion(
    table: pd.DataFrame, seed: int = 0, *, dataset_name: str = ""
) -> ShortcutScore:
    """Cross-validate a standardised logistic regression on :func:`global_statistics`
    predicting each row's ``label`` (balanced accuracy) and its collection (accuracy).

    Raises:
        ShortcutCheckError: fewer than two classes have two images or more.
    """
    features = global_statistics(table)
    labels = table["label"].astype(str).to_numpy()
    kept = _enough(labels)
    if len(set(labels[kept])) < 2:
        raise ShortcutCheckError(
            "Checking for shortcuts needs at least two classes with two readable images each; "
            "add images or choose another dataset."
        )
    balanced, folds = _cross_validated(features[kept], labels[kept], seed, balanced=True)
    chance = 1.0 / len(set(labels[kept]))
    where = collections(table, dataset_name).to_numpy()
    accuracy = base_rate = None
    if len(set(where[_enough(where)])) >= 2:
        mask = _enough(where)
        accuracy, _ = _cross_validated(features[mask], where[mask], seed, balanced=False)
        base_rate = float(pd.Series(where[mask]).value_counts(normalize=True).iloc[0])
    return ShortcutScore(
        images=int(kept.sum()),
        classes=len(set(labels[kept])),
        folds=folds,
        class_balanced_accuracy=balanced,
        class_chance=chance,
        collections=len(set(where)),
        collection_accuracy=accuracy,
        collection_base_rate=base_rate,
        explanation=_explain(balanced, chance, folds, accuracy, base_rate),
    )


def _pixel_statistics(images: np.ndarray) -> np.ndarray:
    """The 17 pixel columns of :data:`FEATURES` for ``(N, H, W, 3)`` float images."""
    n, height, width, _ = images.shape
    flat = images.reshape(n, -1, 3)
    ring = images[:, border_ring(height, width)]
    luma = images @ _LUMA
    side = max(1, round(BORDER * min(height, width)))
    corners = [
        luma[:, rows, cols].mean(axis=(1, 2))
        for rows in (slice(0, side), slice(height - side, height))
        for cols in (slice(0, side), slice(width - side, width))
    ]
    return np.column_stack(
        [
            flat.mean(axis=1),
            flat.std(axis=1),
            ring.mean(axis=1),
            ring.std(axis=1),
            *(1.0 - c / 255.0 for c in corners),
            (luma < NEAR_BLACK).reshape(n, -1).mean(axis=1),
        ]
    )


def _size_statistics(table: pd.DataFrame) -> np.ndarray:
    """Log width, log height and aspect (width / height) of the original images."""
    width = pd.to_numeric(table["width"], errors="coerce").astype(float).fillna(1.0).to_numpy()
    height = pd.to_numeric(table["height"], errors="coerce").astype(float).fillna(1.0).to_numpy()
    width, height = np.maximum(width, 1.0), np.maximum(height, 1.0)
    return np.column_stack([np.log(width), np.log(height), width / height])


def _cross_validated(
    features: np.ndarray, targets: np.ndarray, seed: int, *, balanced: bool
) -> tuple[float, int]:
    """Out-of-fold balanced accuracy (``balanced``) or accuracy, and the number of folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds = int(min(FOLDS, pd.Series(targets).value_counts().min()))
    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(max_iter=2000, class_weight="balanced" if balanced else None),
    )
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    predicted = cross_val_predict(model, features, targets, cv=split)
    score = balanced_accuracy_score if balanced else accuracy_score
    return float(score(targets, predicted)), folds


def _enough(values: np.ndarray) -> np.ndarray:
    """Rows whose value occurs at least twice."""
    counts = pd.Series(values).value_counts()
    return np.isin(values, counts[counts >= 2].index)


def _explain(
    balanced: float, chance: float, folds: int, accuracy: float | None, base_rate: float | None
) -> str:
    text = (
        f"We measured {len(FEATURES)} numbers per image that never look at the lesion: the "
        "colour of the whole image and of its border, how dark its corners are, how much of it "
        "is near black, and its original size. A simple classifier (logistic regression, "
        f"{folds}-fold cross-validation) given only those numbers predicts the class with "
        f"balanced accuracy {balanced:.2f}, where guessing gives {chance:.2f}."
    )
    if accuracy is not None and base_rate is not None:
        text += (
            f" It tells which collection an image came from with accuracy {accuracy:.2f}, where "
            f"always guessing the commonest collection gives {base_rate:.2f}."
        )
    if balanced - chance >= WELL_ABOVE:
        return text + (
            " That is well above chance: part of what separates the classes here lies in the "
            "frame, colour cast and size of the photographs, not in the lesion, and a model "
            "trained on them can learn that shortcut. The lesion-masked test of a trained run "
            "shows whether it did, and a test set from another collection shows what it costs."
        )
    return text + (
        " That is close to chance: these simple shortcuts give little away, though a deep "
        "model can still find subtler ones."
    )


def _named(collection: str) -> str:
    return f"the {collection}" if collection == ISIC_ARCHIVE else collection


def _listed(items: list[str], last: str = "and") -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def _int(value: object) -> int | None:
    return None if value is None or pd.isna(value) else int(value)  # type: ignore[call-overload]
