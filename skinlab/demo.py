"""The synthetic demo dataset: skinlab's embedded default when no real data is downloaded.

The demo has the ISIC layout (``<root>/Train/<class>/*.jpg`` and ``<root>/Test/...``, the
nine folder names of :data:`skinlab.classes.ISIC_CLASS_NAMES`), about a sixth of the ISIC
Train counts with the same imbalance, 10 Test images per class, mixed image sizes and
aspect ratios, and a few PNGs among the JPEGs. Images are drawn by
:func:`skinlab.demo_drawing.draw_lesion`; every byte is a function of the seed.

Writing is atomic: the dataset is built in a hidden sibling folder whose last file is the
marker :data:`MARKER_NAME`, and renaming that folder into place is the commit. A killed
generation therefore leaves only a hidden temporary folder (swept later), never a
half-filled dataset; of two processes racing, the loser finds the winner's identical copy
and discards its own.

Example::

    root = ensure_demo_dataset()        # data/skinlab-demo, generated on first use
    ds = discover(root)                 # 9 classes, ~460 images
    is_demo_dataset(root)               # True: label it DEMO_LABEL in the UI
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from skinlab.classes import ISIC_CLASS_NAMES
from skinlab.demo_drawing import draw_lesion
from skinlab.discovery import resolve_root
from skinlab.errors import DatasetLayoutError
from skinlab.paths import data_dir

__all__ = [
    "DEFAULT_SEED",
    "DEMO_DIRNAME",
    "DEMO_LABEL",
    "MARKER_NAME",
    "demo_root",
    "draw_lesion",
    "ensure_demo_dataset",
    "generate_demo_dataset",
    "is_demo_dataset",
]

DEMO_LABEL = "synthetic demo data"
DEMO_DIRNAME = "skinlab-demo"
DEFAULT_SEED = 0

#: The file whose presence (written last, committed by the rename) marks a complete demo.
MARKER_NAME = "SYNTHETIC_DEMO_DATA.txt"

# Bump when the drawing or the counts change, so existing demos are regenerated.
_GENERATOR = "skinlab.demo/1"

#: Train images per class in the Kaggle ISIC download; the demo keeps a sixth of them.
_ISIC_TRAIN_COUNTS = {
    "actinic keratosis": 114,
    "basal cell carcinoma": 378,
    "dermatofibroma": 95,
    "melanoma": 438,
    "nevus": 357,
    "pigmented benign keratosis": 462,
    "seborrheic keratosis": 77,
    "squamous cell carcinoma": 181,
    "vascular lesion": 139,
}
_TRAIN_FRACTION = 1 / 6
_TEST_PER_CLASS = 10
_MIN_PER_CLASS = 2
_ASPECTS = ((1, 1), (4, 3), (3, 4))
_LONG_SIDE = (128, 256)  # so the short side of a 3:4 image is at least 96
_PNG_SHARE = 0.08
_JPEG_QUALITY = 90

# A temporary or discarded folder this old belongs to a process that died: generation
# takes seconds, so nothing alive is still writing into it.
_STALE_AFTER_S = 15 * 60


def demo_root() -> Path:
    """Where the app keeps its demo dataset: ``data_dir() / DEMO_DIRNAME``."""
    return data_dir() / DEMO_DIRNAME


def is_demo_dataset(root: str | Path) -> bool:
    """True when ``root``, or the dataset root it resolves to, holds the demo marker.

    Never raises: a missing folder or one that is not a dataset is simply not the demo.
    """
    root = Path(root)
    if (root / MARKER_NAME).is_file():
        return True
    try:
        return (resolve_root(root) / MARKER_NAME).is_file()
    except (DatasetLayoutError, OSError):
        return False


def ensure_demo_dataset(*, seed: int = DEFAULT_SEED) -> Path:
    """Return :func:`demo_root`, generating the demo first if it is absent or incomplete.

    A folder at :func:`demo_root` without a matching marker (from a killed older version,
    a different seed, or hands editing it) is discarded and regenerated: skinlab owns
    that folder. Cheap when the demo is already there: one small file is read.

    Raises:
        OSError: the data folder cannot be written (read-only, disk full).
    """
    root = demo_root()
    if _marker_matches(root, seed, 1.0):
        return root
    if root.exists() or root.is_symlink():
        _discard(root)
    return generate_demo_dataset(root, seed=seed)


def generate_demo_dataset(out: str | Path, *, seed: int = DEFAULT_SEED, scale: float = 1.0) -> Path:
    """Write the demo dataset at ``out`` atomically and return ``out``.

    Args:
        out: the dataset root to create; its parent is created if needed.
        seed: same seed and scale give byte-identical files.
        scale: multiplies every per-class count (at least 2 images per class and split);
            tests use small values such as 0.2.

    Returns:
        ``out``; it is left as is when it already holds the demo for ``seed`` and ``scale``,
        and an older demo (other seed, scale or generator version) there is replaced.

    Raises:
        ValueError: ``scale`` is not positive.
        FileExistsError: ``out`` exists and is not a demo dataset (it is never deleted),
            or a concurrent generation with other parameters committed first.
        OSError: the folder cannot be written.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, not {scale!r}.")
    out = Path(out)
    if _marker_matches(out, seed, scale):
        return out
    if out.exists():
        if not is_demo_dataset(out):
            raise FileExistsError(
                f"{out} already exists and is not a skinlab demo dataset; choose another folder."
            )
        _discard(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _sweep_leftovers(out)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex}")
    tmp.mkdir()  # not mkdtemp: its 0700 mode would stick to the committed dataset
    try:
        _write_images(tmp, seed, scale)
        (tmp / MARKER_NAME).write_text(_marker_text(seed, scale), encoding="utf-8")
        try:
            os.rename(tmp, out)
        except OSError as exc:
            if not _marker_matches(out, seed, scale):
                raise FileExistsError(
                    f"{out} was created by another process while the demo was generated; "
                    "delete it and try again."
                ) from exc
            # Another process committed the identical dataset first: keep theirs.
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _counts(scale: float) -> dict[str, dict[str, int]]:
    """Images per split and class for ``scale``."""
    return {
        "Train": {
            name: max(_MIN_PER_CLASS, round(n * _TRAIN_FRACTION * scale))
            for name, n in _ISIC_TRAIN_COUNTS.items()
        },
        "Test": {
            name: max(_MIN_PER_CLASS, round(_TEST_PER_CLASS * scale)) for name in ISIC_CLASS_NAMES
        },
    }


def _write_images(root: Path, seed: int, scale: float) -> None:
    """Draw and save every image of the dataset under ``root``."""
    jobs = []
    for split_index, (split, per_class) in enumerate(_counts(scale).items()):
        for class_index, label in enumerate(ISIC_CLASS_NAMES):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(per_class[label]):
                stem = folder / f"demo_{split.lower()}_{class_index}_{i:04d}"
                # One generator per image, keyed by its place: images do not depend on
                # the order the threads run in, and a larger scale only adds images.
                jobs.append((stem, label, (seed, split_index, class_index, i)))
    # Drawing and encoding mostly run in numpy and Pillow with the GIL released.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
        list(pool.map(_write_one, *zip(*jobs, strict=True)))


def _write_one(stem: Path, label: str, key: tuple[int, ...]) -> None:
    rng = np.random.default_rng(key)
    long_side = int(rng.integers(_LONG_SIDE[0], _LONG_SIDE[1] + 1))
    across, down = _ASPECTS[rng.integers(len(_ASPECTS))]
    size = (long_side * across // max(across, down), long_side * down // max(across, down))
    image = draw_lesion(label, rng, size)
    if rng.random() < _PNG_SHARE:
        image.save(stem.with_suffix(".png"), "PNG")
    else:
        image.save(stem.with_suffix(".jpg"), "JPEG", quality=_JPEG_QUALITY)


def _marker_text(seed: int, scale: float) -> str:
    return (
        f"This folder holds {DEMO_LABEL}: procedurally drawn pictures made by skinlab,\n"
        "not photographs of skin. Their classes are cartoons of the ISIC lesion types,\n"
        "for trying the workbench out only; nothing learnt from them applies to real\n"
        "patients. Delete this folder to have skinlab draw it again.\n"
        "\n"
        f"generator: {_GENERATOR}\n"
        f"seed: {seed}\n"
        f"scale: {float(scale)!r}\n"
    )


def _marker_matches(root: Path, seed: int, scale: float) -> bool:
    """True when ``root`` holds a complete demo drawn by this generator with these parameters."""
    try:
        text = (root / MARKER_NAME).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return text == _marker_text(seed, scale)


def _discard(folder: Path) -> None:
    """Remove ``folder`` without ever leaving a half-deleted dataset under its name."""
    trash = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex}")
    try:
        os.rename(folder, trash)
    except FileNotFoundError:
        return  # another process discarded it first
    if trash.is_symlink():
        trash.unlink()
    else:
        shutil.rmtree(trash, ignore_errors=True)


def _sweep_leftovers(out: Path) -> None:
    """Delete temporary and discarded siblings of ``out`` left by killed processes."""
    now = time.time()
    for pattern in (f".{out.name}.tmp-*", f".{out.name}.old-*"):
        for leftover in out.parent.glob(pattern):
            try:
                stale = now - leftover.stat().st_mtime > _STALE_AFTER_S
            except OSError:
                continue
            if stale:
                shutil.rmtree(leftover, ignore_errors=True)
