"""``tf.data`` pipelines from the discovery table: decode once, resize, cache, batch, prefetch.

Every image goes through :func:`skinlab.data.images.load_rgb_array` (the one safe decoder: EXIF
orientation, any mode to RGB, bad files refused; bilinear resize), so training sees exactly
the pixels prediction sees. Rescaling and augmentation live inside the Keras model: batches
are raw RGB ``float32`` in ``0..255`` with ``int32`` class indices. Caches hold ``uint8`` (a
quarter of the memory) and each batch is cast on the way out.

:attr:`PipelineSpec.cache` picks how images are fed:

* ``"memory"`` (default): a thread pool decodes every image up front into one ``uint8``
  array (:func:`decode_table`) and batches are gathered from it; measured faster than a
  streaming ``Dataset.cache()``. Needs ``N * H * W * 3`` bytes (2,000 at 180 px: 190 MB).
* a file path prefix: images are decoded in a parallel ``map`` during the first epoch and
  written to a ``tf.data`` file cache that later epochs, and later runs over the same files,
  read instead. A fingerprint of the files, their order and the size is appended to the
  prefix, so a stale cache is never read. For datasets larger than RAM (100,000 images).
* ``None``: decode every epoch.

Shuffling reshuffles every epoch, deterministically for :attr:`PipelineSpec.seed`. The file
cache is written in one seeded random order and reshuffled each epoch through a buffer of
:data:`SHUFFLE_BUFFER_BYTES`, so memory stays flat; the other feeds shuffle everything.

Unreadable files: rows with an ``error`` from discovery are left out. A file that became
unreadable *since* discovery stops the pipeline with its path and reason, rather than training
on fewer images than the table lists: :func:`make_dataset` raises ``InvalidImageError`` on the
memory path; the streaming paths raise it during the first epoch, wrapped in a
``tf.errors.OpError``, and never leave a partial file cache behind for the next run to read.

Example::

    ds = discover("data/isic")
    train = make_dataset(ds.images("Train"), ds.class_names, PipelineSpec(shuffle=True))
    model.fit(train, epochs=10)

Why one module: decoding, resizing, the in-memory cache, class-balanced drawing and batching
are the stages of one ``tf.data`` pipeline and share its spec.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from skinlab.core.errors import InvalidImageError
from skinlab.data.images import load_rgb_array

#: Bytes of decoded images the file-cache path keeps in its shuffle buffer.
SHUFFLE_BUFFER_BYTES = 256 * 2**20

#: Threads decoding each streamed batch (tf.data also runs several batches at once); on
#: 2 cores, 2 measured faster than 1.
_DECODE_THREADS = 2

#: Suffix of the marker left beside a file cache whose writing pass met an unreadable file.
_INVALID = ".invalid"


@dataclass(frozen=True)
class PipelineSpec:
    """How to build a pipeline.

    Attributes:
        image_size: output size; an int means square, a pair is ``(height, width)``.
        batch_size: images per batch.
        shuffle: reshuffle every epoch (deterministically for ``seed``).
        seed: seed of the shuffle order.
        cache: ``"memory"``, a file path prefix for a ``tf.data`` file cache, or ``None``.
        drop_remainder: drop the last, smaller batch.
    """

    image_size: int | tuple[int, int] = 180
    batch_size: int = 32
    shuffle: bool = False
    seed: int = 0
    cache: str | None = "memory"
    drop_remainder: bool = False


def label_indices(table: pd.DataFrame, class_names: Sequence[str]) -> np.ndarray:
    """Index of each row's ``label`` in ``class_names``, as ``int32`` (one per row).

    Raises:
        ValueError: a label is not in ``class_names`` (the message names every such label).
    """
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(set(table["label"]) - index.keys())
    if unknown:
        raise ValueError(
            f"Labels {unknown} are not among the classes {list(class_names)}; "
            "pass the dataset's class names or drop those rows."
        )
    return np.fromiter((index[label] for label in table["label"]), np.int32, len(table))


def decode_table(
    table: pd.DataFrame, image_size: int | tuple[int, int], *, workers: int | None = None
) -> np.ndarray:
    """Decode every row's ``path`` into one ``uint8`` array ``(N, H, W, 3)``, in row order.

    Uses a thread pool (Pillow releases the GIL while decoding); ``workers`` defaults to the
    CPU count. Rows are not filtered: pass readable rows only.

    Raises:
        InvalidImageError: a file cannot be decoded; the message names its path.
    """
    images, problems = _decode_paths(list(table["path"]), _height_width(image_size), workers)
    for problem in problems:
        if problem is not None:
            raise problem
    return images


def _decode_paths(
    paths: Sequence[str], size: tuple[int, int], workers: int | None
) -> tuple[np.ndarray, list[InvalidImageError | None]]:
    """Decode ``paths``; a file that fails leaves black pixels and its error in the list."""
    images = np.zeros((len(paths), *size, 3), np.uint8)
    problems: list[InvalidImageError | None] = [None] * len(paths)

    def decode_into(i: int) -> None:
        try:
            images[i] = _load(paths[i], size)
        except InvalidImageError as exc:
            problems[i] = exc

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        list(pool.map(decode_into, range(len(paths))))
    return images, problems


def make_dataset(
    table: pd.DataFrame,
    class_names: Sequence[str],
    spec: PipelineSpec = PipelineSpec(),  # noqa: B008 - frozen, so a shared default is safe
    *,
    sample_weights: np.ndarray | None = None,
    draw_probabilities: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Build a batched, prefetched dataset of the table's readable images.

    Args:
        table: rows with ``path`` and ``label`` (a discovery table or a slice of it); rows
            whose ``error`` is set are left out.
        class_names: class order; a label's index in it is its class index.
        spec: size, batching, shuffling and caching.
        sample_weights: one weight per row of ``table`` (unreadable rows included); when
            given, batches are ``(images, labels, weights)``.
        draw_probabilities: one probability per row of ``table`` (unreadable rows
            included, renormalised over the readable ones); when given, each epoch draws as
            many rows as there are readable ones, with replacement and these probabilities,
            afresh every epoch (seeded by ``spec.seed``), instead of shuffling. Needs the
            memory cache. :func:`skinlab.train.imbalance.balanced_probabilities` balances classes.
        labels: one integer label per row of ``table`` (unreadable rows included) in place of
            the class indices (collection adjustment's labels that carry their group,
            :func:`skinlab.train.losses.encode_groups`).

    Returns:
        Batches of ``(images, labels)``: ``float32 (B, H, W, 3)`` in ``0..255`` and
        ``int32 (B,)``; with ``(B,)`` ``float32`` weights third when ``sample_weights`` is given.

    Raises:
        ValueError: unknown labels, no readable rows, weights or probabilities not one per
            row, draws without the memory cache, or a bad size or cache.
        InvalidImageError: (memory cache) a file became undecodable since discovery; the
            streaming paths raise it inside iteration, as a ``tf.errors.OpError`` whose
            message carries the same sentence.
    """
    if spec.cache == "":
        raise ValueError('cache must be "memory", a file path prefix or None, not "".')
    if sample_weights is not None and len(sample_weights) != len(table):
        raise ValueError(
            f"sample_weights has {len(sample_weights)} values but the table has "
            f"{len(table)} rows; give one weight per row."
        )
    if labels is not None and len(labels) != len(table):
        raise ValueError(f"labels has {len(labels)} values but the table has {len(table)} rows.")
    if draw_probabilities is not None and (
        len(draw_probabilities) != len(table) or spec.cache != "memory"
    ):
        raise ValueError(
            "draw_probabilities needs one probability per row of the table and the memory "
            f"cache; got {len(draw_probabilities)} for {len(table)} rows and cache {spec.cache!r}."
        )
    readable = table["error"].isna().to_numpy() if "error" in table else np.ones(len(table), bool)
    rows = table[readable]
    if rows.empty:
        raise ValueError("The table has no readable images to build a dataset from.")
    row_labels = (
        label_indices(rows, class_names)
        if labels is None
        else np.asarray(labels, np.int32)[readable]
    )
    columns: tuple[np.ndarray, ...] = (row_labels,)
    if sample_weights is not None:
        columns += (np.asarray(sample_weights, np.float32)[readable],)
    size = _height_width(spec.image_size)
    if spec.cache == "memory":
        draws = None if draw_probabilities is None else np.asarray(draw_probabilities)[readable]
        dataset = _in_memory(rows, size, columns, spec, draws)
    else:
        dataset = _streaming(rows, size, columns, spec)
    dataset = dataset.map(
        lambda images, *cols: (tf.cast(images, tf.float32), *cols),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    # A known length gives Keras real progress bars, and a cache that ever came back short
    # fails loudly instead of training on fewer images.
    batches = (
        len(rows) // spec.batch_size if spec.drop_remainder else -(-len(rows) // spec.batch_size)
    )
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _in_memory(
    rows: pd.DataFrame,
    size: tuple[int, int],
    columns: tuple[np.ndarray, ...],
    spec: PipelineSpec,
    draws: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Decode everything now; each batch of shuffled (or drawn) indices gathers its rows
    from numpy.

    Gathering in numpy avoids copying the whole array into a TensorFlow constant, which
    measured slower to build and iterate than this (and than ``from_tensor_slices``).
    """
    arrays = (decode_table(rows, size), *columns)
    if draws is not None:
        order = drawn_rows(draws, spec.seed)
    else:
        order = tf.data.Dataset.range(len(rows))
        if spec.shuffle:
            order = order.shuffle(len(rows), seed=spec.seed, reshuffle_each_iteration=True)
    order = order.batch(spec.batch_size, drop_remainder=spec.drop_remainder)

    def gather(index):
        dtypes = tuple(tf.as_dtype(a.dtype) for a in arrays)
        batch = tf.numpy_function(partial(_take, arrays), [index], dtypes, stateful=False)
        for tensor, array in zip(batch, arrays, strict=True):
            tensor.set_shape((index.shape[0], *array.shape[1:]))
        return tuple(batch)

    return order.map(gather, num_parallel_calls=tf.data.AUTOTUNE)


def drawn_rows(probabilities: np.ndarray, seed: int) -> tf.data.Dataset:
    """An epoch of ``len(probabilities)`` ``int64`` row indices drawn with replacement with
    these probabilities, drawn afresh every epoch and the same epochs for the same ``seed``.

    Inverse-CDF sampling of ``Dataset.random``'s seeded integers, vectorised in chunks.
    """
    cdf = np.cumsum(np.asarray(probabilities, np.float64))
    cdf = tf.constant(cdf / cdf[-1])
    last = len(probabilities) - 1

    def rows(random: tf.Tensor) -> tf.Tensor:
        uniform = tf.cast(random % 2**32, tf.float64) / 2**32  # its values are 32-bit
        found = tf.searchsorted(cdf, uniform, side="right", out_type=tf.int64)
        return tf.minimum(found, last)

    return (
        tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        .take(len(probabilities))
        .batch(1024)
        .map(rows)
        .unbatch()
    )


def _take(arrays: tuple[np.ndarray, ...], index: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(a[index] for a in arrays)


def _streaming(
    rows: pd.DataFrame, size: tuple[int, int], columns: tuple[np.ndarray, ...], spec: PipelineSpec
) -> tf.data.Dataset:
    """Decode a batch of paths at a time in a parallel ``map``; with a file cache, only once.

    Decode errors travel as values and are raised after batching (:func:`_raise_problems`):
    raised inside the cached part, ``tf.data`` would keep the images cached so far as if
    they were the whole dataset, and every later run would silently train on fewer images.
    """
    paths = rows["path"].astype(str).to_numpy()
    n = len(paths)
    if spec.cache is None:
        dataset = tf.data.Dataset.from_tensor_slices((paths, *columns))
        if spec.shuffle:
            # Paths are cheap to shuffle before decoding, so the buffer holds them all.
            dataset = dataset.shuffle(n, seed=spec.seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(spec.batch_size, drop_remainder=spec.drop_remainder)
        dataset = dataset.map(
            lambda batch, *cols: (*_decode(batch, size), *cols),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        return dataset.map(partial(_raise_problems, None), num_parallel_calls=tf.data.AUTOTUNE)
    # The cache replays the order it was written in, and discovery tables are sorted by
    # class, so it is written in a seeded random order for the bounded buffer below to mix.
    order = np.random.default_rng(spec.seed).permutation(n) if spec.shuffle else np.arange(n)
    cache_file = _cache_file(spec.cache, rows, order, size)
    decoded = (
        tf.data.Dataset.from_tensor_slices(paths[order])
        .batch(spec.batch_size)
        .map(lambda batch: _decode(batch, size), num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .cache(cache_file)
    )
    # Only images are cached, so new labels or weights reuse the same cache file.
    dataset = tf.data.Dataset.zip(
        decoded, tf.data.Dataset.from_tensor_slices(tuple(c[order] for c in columns))
    ).map(lambda image_problem, cols: (*image_problem, *cols))
    if spec.shuffle:
        buffer = max(spec.batch_size, SHUFFLE_BUFFER_BYTES // (size[0] * size[1] * 3))
        dataset = dataset.shuffle(min(n, buffer), seed=spec.seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(spec.batch_size, drop_remainder=spec.drop_remainder)
    return dataset.map(
        partial(_raise_problems, f"{cache_file}{_INVALID}"), num_parallel_calls=tf.data.AUTOTUNE
    )


def _decode(paths: tf.Tensor, size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Batch of paths -> ``uint8`` images and one error message per image (``""`` if fine).

    One Python call per batch measured 20-40% faster than one call per image.
    """
    images, problems = tf.numpy_function(
        partial(_decode_batch, size), [paths], (tf.uint8, tf.string), stateful=False
    )
    images.set_shape((paths.shape[0], *size, 3))
    problems.set_shape(paths.shape)
    return images, problems


def _decode_batch(size: tuple[int, int], paths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images, problems = _decode_paths([os.fsdecode(p) for p in paths], size, _DECODE_THREADS)
    return images, np.array([str(p or "").encode() for p in problems], dtype=object)


def _raise_problems(marker: str | None, images: tf.Tensor, problems: tf.Tensor, *columns):
    """Drop the batch's error messages, raising the first non-empty one."""
    check = tf.numpy_function(partial(_check, marker), [problems], tf.bool, stateful=True)
    with tf.control_dependencies([check]):
        return (tf.identity(images), *columns)


def _check(marker: str | None, messages: np.ndarray) -> np.bool_:
    # The cache may have been completed with this error in it: mark it for the next build
    # to delete (deleting it now could race the cache writer).
    for message in messages:
        if message:
            if marker:
                Path(marker).touch()
            raise InvalidImageError(message.decode())
    return np.True_


def _load(path: str, size: tuple[int, int]) -> np.ndarray:
    """:func:`load_rgb_array`, naming the full path (not just the file name) in errors."""
    try:
        return load_rgb_array(path, size)
    except InvalidImageError as exc:
        message, name = str(exc), Path(path).name
        message = message.replace(name, path, 1) if name in message else f"{path}: {message}"
        raise InvalidImageError(message, exc.reason) from exc


def _cache_file(prefix: str, rows: pd.DataFrame, order: np.ndarray, size: tuple[int, int]) -> str:
    """``prefix`` plus a fingerprint of the files (in cache order) and the size; a cache
    marked invalid by a failed pass is deleted so that this build rewrites it."""
    keys = rows["path"].astype(str)
    if "content_hash" in rows:
        keys = keys + ":" + rows["content_hash"].astype(str)
    digest = hashlib.blake2b(digest_size=8)
    digest.update(repr(size).encode())
    for key in keys.to_numpy()[order]:
        digest.update(key.encode() + b"\0")
    path = Path(f"{prefix}-{digest.hexdigest()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if Path(f"{path}{_INVALID}").exists():
        for file in path.parent.iterdir():
            if file.name.startswith(path.name):
                file.unlink(missing_ok=True)
    return str(path)


def _height_width(image_size: int | tuple[int, int]) -> tuple[int, int]:
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive, not {image_size!r}.")
    return int(height), int(width)
