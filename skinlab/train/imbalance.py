"""Class-imbalance treatment for the training side: loss weights or oversampling.

ISIC's classes range from hundreds of images to a handful, so an unweighted model learns
to answer the common classes. Three remedies, picked by ``RunConfig.imbalance``
(:data:`skinlab.core.config.IMBALANCE`):

* ``"class_weights"``: :func:`class_weights` scales each example's loss by how rare its
  class is (scikit-learn's "balanced" rule), for ``model.fit(class_weight=...)``.
* ``"oversample"``: :func:`oversample_indices` repeats minority-class rows until every
  class has as many as the largest. The copies are not identical pixels: augmentation
  lives inside the model (random flips, rotations, zoom, contrast on every forward pass
  with ``training=True``), so each repeat is seen as a freshly augmented variant. This is
  "oversampling minority classes by augmentation" without writing new files to disk.
* ``"balanced_sampling"``: :func:`balanced_probabilities`; every epoch draws as many rows
  as there are, with replacement, each class equally likely. Unlike oversampling, an epoch
  is no longer and the big classes are not seen in full every epoch, but over many
  epochs every row is.

Both apply to the **training side only**. Split first (hash-grouped, so copies of one
image never straddle the split), then balance the training rows: validation never sees
a repeat of a training image, and its scores stay those of the real class mix.

Example::

    train, val = train_val_split(dataset.images("Train"), val_fraction=0.2, seed=42)
    labels = label_indices(train, class_names)
    train = train.iloc[oversample_indices(labels, seed=42)]          # or:
    model.fit(..., class_weight=class_weights(labels, len(class_names)))
"""

from __future__ import annotations

import numpy as np

from skinlab.core.config import IMBALANCE


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Per-class loss weights, ``n_samples / (n_classes_present * count_c)``.

    Rarer classes get larger weights, and the mean weight over the training examples is
    exactly 1, so the loss keeps its scale and the learning rate need not change. Every
    class index ``0..num_classes-1`` is a key (Keras wants one per class it may meet);
    a class without training examples gets 1.0, which no example ever uses.

    Args:
        labels: ``(N,)`` class indices of the training rows.
        num_classes: the number of classes of the model.

    Returns:
        ``{class index: weight}`` with plain ``int`` keys and ``float`` values.

    Raises:
        ValueError: ``labels`` is empty, not integer, or out of ``range(num_classes)``.
    """
    counts = _counts(labels, num_classes)
    present = counts > 0
    n = counts.sum()
    weights = np.ones(num_classes)
    weights[present] = n / (present.sum() * counts[present])
    return {k: float(w) for k, w in enumerate(weights)}


def oversample_indices(labels: np.ndarray, seed: int, target: str | int = "max") -> np.ndarray:
    """Row indices that repeat minority-class rows until each class has ``target`` rows.

    A class with ``count < target`` rows contributes each of its rows ``target // count``
    times, plus ``target % count`` of them once more, drawn without replacement; so repeats
    spread evenly and no row is copied twice more than another of its class. A class
    already at or above ``target`` keeps its rows as they are (this never undersamples).
    Every original index appears at least once. The result is shuffled and depends only
    on ``labels``, ``target`` and ``seed``.

    Args:
        labels: ``(N,)`` class indices of the **training** rows (after the split).
        seed: seeds the remainder draw and the shuffle.
        target: ``"max"`` (the largest class count) or a positive int.

    Returns:
        ``int64`` indices into ``labels`` (positions, for ``train.iloc[...]``).

    Raises:
        ValueError: ``labels`` is empty or not class indices, or ``target`` is invalid.
    """
    labels = _labels(labels)
    counts = np.bincount(labels)
    if isinstance(target, str) and target == "max":
        goal = int(counts.max())
    elif isinstance(target, int | np.integer) and not isinstance(target, bool) and target > 0:
        goal = int(target)
    else:
        raise ValueError(f'target must be "max" or a positive integer, got {target!r}.')
    rng = np.random.default_rng(seed)
    parts = []
    for k in np.flatnonzero(counts):
        rows = np.flatnonzero(labels == k)
        if rows.size >= goal:
            parts.append(rows)
            continue
        whole, rest = divmod(goal, rows.size)
        parts.append(np.tile(rows, whole))
        parts.append(rng.choice(rows, size=rest, replace=False))
    return rng.permutation(np.concatenate(parts)).astype(np.int64)


def balanced_probabilities(labels: np.ndarray) -> np.ndarray:
    """Per-row draw probabilities proportional to ``1 / count`` of the row's class.

    Drawing rows with these probabilities (with replacement) picks every present class
    equally often on average, each row of a class equally often within it: the
    ``"balanced_sampling"`` remedy, where each epoch draws afresh (see
    :func:`skinlab.data.pipeline.make_dataset`'s ``draw_probabilities``).

    Returns:
        ``float64 (N,)`` summing to 1.

    Raises:
        ValueError: ``labels`` is empty or not class indices.
    """
    labels = _labels(labels)
    counts = np.bincount(labels)
    weights = 1.0 / counts[labels]
    return weights / weights.sum()


def collection_balanced_probabilities(
    labels: np.ndarray, collections: np.ndarray, *, balance_classes: bool
) -> np.ndarray:
    """Per-row draw probabilities that give every collection of a class an equal share of
    that class's draws (``RunConfig.collection_balance``).

    A class's share of all draws is equal across classes with ``balance_classes`` (as
    :func:`balanced_probabilities`), else its share of the rows; within a class each
    collection present gets the same part of it, split evenly over its rows. Where one
    collection of nevi is four times the other, the rarer one's images are drawn four times
    as often, so "which archive" is less of a clue inside the class.

    Returns:
        ``float64 (N,)`` summing to 1.

    Raises:
        ValueError: ``labels`` is empty or not class indices, or ``collections`` is not one
            value per row.
    """
    labels = _labels(labels)
    collections = np.asarray(collections).astype(str)
    if collections.shape != labels.shape:
        raise ValueError("collections must hold one value per row of labels.")
    class_counts = np.bincount(labels)
    weights = np.zeros(len(labels), dtype=np.float64)
    for label in np.flatnonzero(class_counts):
        rows = labels == label
        share = 1.0 if balance_classes else class_counts[label] / len(labels)
        names, inverse, counts = np.unique(
            collections[rows], return_inverse=True, return_counts=True
        )
        weights[rows] = share / (len(names) * counts[inverse])
    return weights / weights.sum()


def collection_offsets(
    labels: np.ndarray,
    collections: np.ndarray,
    num_classes: int,
    draw_probabilities: np.ndarray | None = None,
    *,
    cap: float = 1.0,
) -> tuple[np.ndarray, list[list[float]]]:
    """Each training row's collection group and the table of what each collection says
    about the class, ``log p(class | collection) - log p(class)`` clipped to ``±cap``: the
    ``RunConfig.collection_adjustment`` remedy (after Hong & Yang's bias-balanced loss,
    NeurIPS 2021, with the collection as the bias).

    Added to a row's logits inside the loss, the offsets of its collection stand in for
    that cue, so the network gains less by learning it; prediction uses the raw logits.
    The clip is what makes it work where a class comes from one collection only: unclipped,
    a class a collection lacks gets an offset so low that the loss never asks the network to
    tell it from that collection's classes, and the raw logits stop ranking classes across
    collections (measured on isic9: validation accuracy 0.10-0.28 at epoch 22 against ~0.45).
    Shares are those of the rows as training draws them (``draw_probabilities``, else each
    row once); a class a collection lacks gets half a row's share before the clip.

    Returns:
        ``groups`` (``int32 (N,)``, 1-based: group ``k`` is row ``k`` of the table) and the
        table, ``1 + number of collections`` rows of ``num_classes`` floats; row 0 is all
        zeros, for rows (validation) that get no offsets.

    Raises:
        ValueError: ``labels`` is empty or not class indices, ``collections`` or
            ``draw_probabilities`` is not one value per row, or ``cap`` is not positive.
    """
    labels = _labels(labels)
    if cap <= 0:
        raise ValueError(f"cap must be positive, not {cap}.")
    collections = np.asarray(collections).astype(str)
    weights = (
        np.full(len(labels), 1.0 / len(labels))
        if draw_probabilities is None
        else np.asarray(draw_probabilities, np.float64)
    )
    if collections.shape != labels.shape or weights.shape != labels.shape:
        raise ValueError("collections and draw probabilities must hold one value per row.")
    overall = np.bincount(labels, weights=weights, minlength=num_classes)
    overall = np.log(np.where(overall > 0, overall, 0.5 * weights.mean()) / overall.sum())
    names, groups = np.unique(collections, return_inverse=True)
    table = [[0.0] * num_classes]
    for k in range(len(names)):
        rows = groups == k
        mass = np.bincount(labels[rows], weights=weights[rows], minlength=num_classes)
        mass = np.where(mass > 0, mass, 0.5 * weights[rows].mean())
        table.append(np.clip(np.log(mass / mass.sum()) - overall, -cap, cap).tolist())
    return (groups + 1).astype(np.int32), table


def logit_offsets(labels: np.ndarray, num_classes: int) -> list[float]:
    """``log`` of each class's share of the training rows: the ``"logit_adjustment"`` remedy.

    Added to the logits inside the loss only, these make the network's logits estimate the
    class-balanced posterior (Menon et al., ICLR 2021). A class without training rows gets
    the log share of half a row, so the offsets stay finite.

    Returns:
        ``num_classes`` floats, all ``<= 0``.

    Raises:
        ValueError: as in :func:`class_weights`.
    """
    counts = _counts(labels, num_classes).astype(np.float64)
    total = counts.sum()
    counts[counts == 0] = 0.5
    return [float(v) for v in np.log(counts / total)]


def counts_after(
    labels: np.ndarray, strategy: str, num_classes: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """Class counts before and after ``strategy``, for the before/after chart.

    Returns:
        ``{"before": counts, "after": counts}``, each of length ``num_classes``. For
        ``"none"`` they are equal; for ``"oversample"`` "after" counts the rows of
        :func:`oversample_indices` (target ``"max"``, ``seed``); for ``"class_weights"``
        it is the effective weighted count ``count * weight``, and for
        ``"balanced_sampling"`` the expected draws per epoch (both floats, equal for every
        present class, summing to the number of rows). ``"logit_adjustment"`` shows every
        row as it is (the counts stay; the loss does the balancing).

    Raises:
        ValueError: ``strategy`` is not one of :data:`skinlab.core.config.IMBALANCE`, or as in
            :func:`class_weights`.
    """
    if strategy not in IMBALANCE:
        raise ValueError(f"strategy must be one of {', '.join(IMBALANCE)}; got '{strategy}'.")
    before = _counts(labels, num_classes)
    if strategy == "class_weights":
        weights = class_weights(labels, num_classes)
        after = before * np.array([weights[k] for k in range(num_classes)])
    elif strategy == "oversample":
        resampled = _labels(labels)[oversample_indices(labels, seed)]
        after = np.bincount(resampled, minlength=num_classes)
    elif strategy == "balanced_sampling":
        after = np.bincount(_labels(labels), balanced_probabilities(labels), num_classes)
        after *= before.sum()
    else:
        after = before.copy()
    return {"before": before, "after": after}


def _labels(labels: np.ndarray) -> np.ndarray:
    """``labels`` as non-negative ``int64`` class indices, or a ValueError."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise ValueError("There are no training labels to balance; pass one index per row.")
    if y.dtype.kind not in "iu":
        raise ValueError(f"labels must be integer class indices, got dtype {y.dtype}.")
    if y.min() < 0:
        raise ValueError(f"labels must be class indices (0 or more), got {int(y.min())}.")
    return y.astype(np.int64)


def _counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Examples per class, length ``num_classes``; ValueError for an out-of-range label."""
    y = _labels(labels)
    if y.max() >= num_classes:
        raise ValueError(
            f"labels go up to {int(y.max())} but there are only {num_classes} classes "
            f"(0 to {num_classes - 1})."
        )
    return np.bincount(y, minlength=num_classes)
