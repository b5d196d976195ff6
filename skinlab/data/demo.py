"""The synthetic demo dataset: skinlab's embedded default when no real data is downloaded.

The demo has the ISIC layout (``<root>/Train/<class>/*.jpg`` and ``<root>/Test/...``, the
nine folder names of :data:`skinlab.core.classes.ISIC_CLASS_NAMES`), about a sixth of the ISIC
Train counts with the same imbalance, 10 Test images per class, mixed image sizes and
aspect ratios, and a few PNGs among the JPEGs. Images are drawn by
:func:`skinlab.data.demo_drawing.draw_lesion`; every byte is a function of the seed.

It is meant to teach, so it is not too easy: three pairs of classes overlap as ISIC's do
(melanoma and nevus, seborrheic and pigmented benign keratosis, actinic keratosis and
squamous cell carcinoma), the minority of each pair is scarce, and Train hides planted
problems (:func:`planted_problems`): lesions filed under the wrong class, byte-identical
copies, one picture filed under two classes, and re-saved near copies. The "quick" preset
scores about 75-81 % on its Test split (seeds 1-3, 2026-11-27), confusing exactly those
pairs. The notebook's recipe without augmentation (preset ``notebook-no-aug``) overfits it
within its 30 epochs, as the notebook teaches; with augmentation it does not, on the demo
as on the real ISIC images.

Writing is atomic: the dataset is built in a hidden sibling folder whose last file is the
marker :data:`MARKER_NAME`, and renaming that folder into place is the commit. A killed
generation therefore leaves only a hidden temporary folder (swept later), never a
half-filled dataset; of two processes racing, the loser finds the winner's identical copy
and discards its own.

Example::

    root = ensure_demo_dataset()        # data/skinlab-demo, generated on first use
    ds = discover(root)                 # 9 classes, ~490 images
    is_demo_dataset(root)               # True: label it DEMO_LABEL in the UI

Why one module: the demo's counts, planted problems and atomic writing belong together: the
tests assert the exact planted sets, so the plan and the files must come from one place (the
drawing is apart, in :mod:`skinlab.data.demo_drawing`).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from skinlab.core.classes import ISIC_CLASS_NAMES
from skinlab.core.errors import DatasetLayoutError
from skinlab.core.paths import data_dir
from skinlab.data.demo_drawing import draw_lesion
from skinlab.data.discovery import resolve_root

__all__ = [
    "DEFAULT_SEED",
    "DEMO_DIRNAME",
    "DEMO_LABEL",
    "MARKER_NAME",
    "PlantedProblems",
    "demo_root",
    "draw_lesion",
    "ensure_demo_dataset",
    "generate_demo_dataset",
    "is_demo_dataset",
    "planted_problems",
]

DEMO_LABEL = "synthetic demo data"
DEMO_DIRNAME = "skinlab-demo"
DEFAULT_SEED = 0

#: The file whose presence (written last, committed by the rename) marks a complete demo.
MARKER_NAME = "SYNTHETIC_DEMO_DATA.txt"

# Bump when the drawing or the counts change, so existing demos are regenerated.
_GENERATOR = "skinlab.data.demo/2"

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

# The planted problems at scale 1 (each count scales, at least one of each). Mislabels
# cross the easy groups (a vascular lesion filed as a nevus), so a model that learnt the
# classes sees them at once; the conflicts are the pairs ISIC itself files twice.
_MISLABELS = (
    ("nevus", "vascular lesion"),
    ("melanoma", "basal cell carcinoma"),
    ("pigmented benign keratosis", "dermatofibroma"),
    ("basal cell carcinoma", "melanoma"),
    ("squamous cell carcinoma", "nevus"),
    ("melanoma", "seborrheic keratosis"),
    ("vascular lesion", "actinic keratosis"),
    ("pigmented benign keratosis", "vascular lesion"),
    ("nevus", "squamous cell carcinoma"),
    ("basal cell carcinoma", "pigmented benign keratosis"),
    ("dermatofibroma", "melanoma"),
    ("melanoma", "dermatofibroma"),
)
_DUPLICATED = ("melanoma", "nevus", "basal cell carcinoma", "pigmented benign keratosis")
_CONFLICTS = (
    ("melanoma", "nevus"),
    ("pigmented benign keratosis", "seborrheic keratosis"),
    ("squamous cell carcinoma", "actinic keratosis"),
)
_NEAR = ("nevus", "melanoma", "squamous cell carcinoma", "vascular lesion")
#: Added to the image index in a planted mislabel's generator key (no class has this many).
_PLANTED_KEY = 100_000
_NEAR_QUALITY = 75
_NEAR_BRIGHTER = 1.04


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
    """Images per split and class for ``scale`` (before the planted extras)."""
    return {
        "Train": {
            name: max(_MIN_PER_CLASS, round(n * _TRAIN_FRACTION * scale))
            for name, n in _ISIC_TRAIN_COUNTS.items()
        },
        "Test": {
            name: max(_MIN_PER_CLASS, round(_TEST_PER_CLASS * scale)) for name in ISIC_CLASS_NAMES
        },
    }


@dataclass(frozen=True)
class PlantedProblems:
    """What the demo hides in its Train split on purpose, for the audit and the review
    queue to find (tests assert these exact sets). Paths are dataset-relative, ``/``-separated.

    Attributes:
        mislabelled: ``{relpath: class it was drawn as}``: a lesion of one class filed
            under another class's folder.
        exact_duplicates: groups of byte-identical files under one label (source first).
        label_conflicts: byte-identical files filed under two labels (source first), as
            the 137 images ISIC files under two classes.
        near_duplicates: ``(source, copy)`` pairs: the copy is the source 4 % brighter,
            saved again as a rougher JPEG, so its bytes differ but the picture does not.
    """

    mislabelled: dict[str, str]
    exact_duplicates: tuple[tuple[str, ...], ...]
    label_conflicts: tuple[tuple[str, ...], ...]
    near_duplicates: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Drawing:
    relpath: str
    label: str  # the class drawn, which is not the folder's for a planted mislabel
    key: tuple[int, ...]


@dataclass(frozen=True)
class _Copy:
    relpath: str
    source: str
    near: bool  # re-rendered (a near duplicate) rather than byte-identical


def planted_problems(*, seed: int = DEFAULT_SEED, scale: float = 1.0) -> PlantedProblems:
    """The problems :func:`generate_demo_dataset` plants for ``seed`` and ``scale``; a pure
    function of them (nothing is read from disk)."""
    return _plan(seed, scale)[2]


def _plan(seed: int, scale: float) -> tuple[list[_Drawing], list[_Copy], PlantedProblems]:
    """Every file of the dataset: the drawings, then the copies made from them."""
    counts = _counts(scale)
    drawings: list[_Drawing] = []
    for split_index, (split, per_class) in enumerate(counts.items()):
        for class_index, label in enumerate(ISIC_CLASS_NAMES):
            for i in range(per_class[label]):
                # One generator per image, keyed by its place: images do not depend on
                # the order the threads run in, and a larger scale only adds images.
                key = (seed, split_index, class_index, i)
                drawings.append(_Drawing(_relpath(split, label, i, key), label, key))
    train = counts["Train"]
    next_index = dict(train)  # extras are numbered after a folder's own images
    next_source = dict.fromkeys(ISIC_CLASS_NAMES, 0)  # each image is the source of one plant

    def extra(label: str, key: tuple[int, ...], suffix: str | None = None) -> str:
        index = next_index[label]
        next_index[label] += 1
        return _relpath("Train", label, index, key, suffix)

    def source(label: str) -> str:
        i = next_source[label] % train[label]
        next_source[label] += 1
        return _relpath("Train", label, i, (seed, 0, ISIC_CLASS_NAMES.index(label), i))

    def planted(base: int) -> int:
        return max(1, round(base * scale))

    mislabelled = {}
    for k in range(planted(len(_MISLABELS))):
        folder, drawn = _MISLABELS[k % len(_MISLABELS)]
        key = (seed, 0, ISIC_CLASS_NAMES.index(drawn), _PLANTED_KEY + k)
        relpath = extra(folder, key)
        drawings.append(_Drawing(relpath, drawn, key))
        mislabelled[relpath] = drawn
    copies: list[_Copy] = []
    exact, conflicts, near = [], [], []
    for k in range(planted(len(_DUPLICATED))):
        original = source(_DUPLICATED[k % len(_DUPLICATED)])
        copy = extra(_DUPLICATED[k % len(_DUPLICATED)], (), Path(original).suffix)
        copies.append(_Copy(copy, original, near=False))
        exact.append((original, copy))
    for k in range(planted(len(_CONFLICTS))):
        first, second = _CONFLICTS[k % len(_CONFLICTS)]
        original = source(first)
        copy = extra(second, (), Path(original).suffix)
        copies.append(_Copy(copy, original, near=False))
        conflicts.append((original, copy))
    for k in range(planted(len(_NEAR))):
        original = source(_NEAR[k % len(_NEAR)])
        copy = extra(_NEAR[k % len(_NEAR)], (), ".jpg")
        copies.append(_Copy(copy, original, near=True))
        near.append((original, copy))
    problems = PlantedProblems(mislabelled, tuple(exact), tuple(conflicts), tuple(near))
    return drawings, copies, problems


def _relpath(
    split: str, label: str, index: int, key: tuple[int, ...], suffix: str | None = None
) -> str:
    if suffix is None:
        suffix = ".png" if _is_png(key) else ".jpg"
    class_index = ISIC_CLASS_NAMES.index(label)
    return f"{split}/{label}/demo_{split.lower()}_{class_index}_{index:04d}{suffix}"


def _is_png(key: tuple[int, ...]) -> bool:
    # Its own generator, so the file name is known without drawing the image.
    return bool(np.random.default_rng((*key, 1)).random() < _PNG_SHARE)


def _write_images(root: Path, seed: int, scale: float) -> None:
    """Draw and save every image of the dataset under ``root``, then the planted copies."""
    drawings, copies, _ = _plan(seed, scale)
    for relpath in {Path(d.relpath).parent for d in drawings}:
        (root / relpath).mkdir(parents=True, exist_ok=True)
    # Drawing and encoding mostly run in numpy and Pillow with the GIL released.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
        list(pool.map(lambda d: _write_one(root / d.relpath, d.label, d.key), drawings))
    for copy in copies:
        if copy.near:
            with Image.open(root / copy.source) as image:
                brighter = ImageEnhance.Brightness(image.convert("RGB")).enhance(_NEAR_BRIGHTER)
            brighter.save(root / copy.relpath, "JPEG", quality=_NEAR_QUALITY)
        else:
            shutil.copyfile(root / copy.source, root / copy.relpath)


def _write_one(path: Path, label: str, key: tuple[int, ...]) -> None:
    rng = np.random.default_rng(key)
    long_side = int(rng.integers(_LONG_SIDE[0], _LONG_SIDE[1] + 1))
    across, down = _ASPECTS[rng.integers(len(_ASPECTS))]
    size = (long_side * across // max(across, down), long_side * down // max(across, down))
    image = draw_lesion(label, rng, size)
    if path.suffix == ".png":
        image.save(path, "PNG")
    else:
        image.save(path, "JPEG", quality=_JPEG_QUALITY)


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
