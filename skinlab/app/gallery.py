"""What the Explore page shows of the images themselves: samples, thumbnails, sizes, and
the audit's duplicate groups laid out for viewing (colours are in :mod:`skinlab.app.colours`).

Everything here reads a :class:`~skinlab.data.discovery.Dataset` table (or a slice of it) and
returns plain data (DataFrames, JPEG bytes, arrays), so the page only renders and tests
need no Streamlit. Only readable rows are sampled: unreadable files are the audit's
business, not the gallery's. Images are decoded through :func:`skinlab.data.images.decode_image`
at a reduced scale (JPEGs by draft, other formats reduced before conversion), so a thumbnail
of a 4000 px photo costs little more than one of a 180 px crop.

Example::

    ds = discover("data/isic")
    rows = sample_images(ds.table, label="melanoma", n=12, seed=1)
    jpeg = thumbnail(rows.iloc[0]["path"])          # bytes for st.image
    members = duplicate_members(ds.root, audit_dataset(ds).label_conflicts)
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from PIL import Image

from skinlab.data.audit import AuditReport, DuplicateGroup
from skinlab.data.discovery import SPLITS
from skinlab.data.images import decode_image

#: Longest side of a gallery thumbnail, in pixels.
THUMB_SIZE = 192
#: Colour around thumbnails that are not square (Streamlit's light secondary background).
THUMB_BACKGROUND = (240, 242, 246)


def _readable(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["error"].isna()]


def sample_images(
    table: pd.DataFrame,
    *,
    label: str | None = None,
    split: str | None = None,
    n: int = 12,
    seed: int = 0,
) -> pd.DataFrame:
    """Up to ``n`` readable rows of ``table``, drawn at random (same ``seed``, same draw).

    Args:
        label, split: keep only this class / split (``None``: any).
    """
    rows = _readable(table)
    if label is not None:
        rows = rows[rows["label"] == label]
    if split is not None:
        rows = rows[rows["split"] == split]
    return rows.sample(n=min(n, len(rows)), random_state=seed)


def one_per_class(
    table: pd.DataFrame, class_names: Sequence[str], *, seed: int = 0
) -> pd.DataFrame:
    """One readable row per class, in ``class_names`` order, preferring the earliest split
    (Train); classes with no readable image are left out."""
    rows = _readable(table)
    picked = []
    for i, label in enumerate(class_names):
        of_class = rows[rows["label"] == label]
        for split in SPLITS:
            candidates = of_class[of_class["split"] == split]
            if len(candidates):
                picked.append(candidates.sample(n=1, random_state=seed + i))
                break
    return pd.concat(picked) if picked else rows.iloc[:0]


def sample_per_class(table: pd.DataFrame, per_class: int, *, seed: int = 0) -> pd.DataFrame:
    """Up to ``per_class`` readable rows of every class (all splits), for colour statistics."""
    rows = _readable(table)
    return (
        rows.groupby("label", group_keys=False, sort=True)[list(rows.columns)]
        .apply(lambda g: g.sample(n=min(per_class, len(g)), random_state=seed))
        .reset_index(drop=True)
    )


def human_size(n_bytes: float) -> str:
    """``12544`` -> ``"12.2 KB"``."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{int(n_bytes)} B"


def file_name(path: str) -> str:
    """The last part of a path or relpath: ``"Train/nevus/a.jpg"`` -> ``"a.jpg"``."""
    return Path(path).name


def caption(row: pd.Series) -> str:
    """``"ISIC_0025780.jpg · 180×180 · 12.2 KB"`` for a table row."""
    return (
        f"{file_name(row['path'])} · {row['width']}×{row['height']} · "
        f"{human_size(row['file_size'])}"
    )


def thumbnail(path: str | Path, size: int = THUMB_SIZE) -> bytes:
    """JPEG bytes of the image at ``path`` shrunk to fit ``size`` x ``size`` and centred on
    a square light-grey canvas: grids stay tidy while each image keeps its aspect ratio.

    Raises:
        InvalidImageError: the file cannot be decoded (it changed since the scan).
    """
    img = decode_image(path, max_side=size)  # reduced while decoding, whatever the format
    canvas = Image.new("RGB", (size, size), THUMB_BACKGROUND)
    canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=88)
    return out.getvalue()


#: The audit's "same picture, several files" findings, with why each matters to a model.
PROBLEM_KINDS: dict[str, str] = {
    "Label conflicts": "The same picture is filed under different classes: at most one label "
    "is right, and the model is taught both.",
    "Train/Test leaks": "The same picture sits in more than one split, so the Test score "
    "overstates how well a model does on new images (training also reports a clean score).",
    "Exact duplicates": "Identical files, within or across splits; the copies weigh more in "
    "training.",
}


def problem_groups(report: AuditReport) -> dict[str, tuple[DuplicateGroup, ...]]:
    """``{kind: groups}`` for each of :data:`PROBLEM_KINDS`, in that order."""
    found = (report.label_conflicts, report.cross_split_leaks, report.exact_duplicates)
    return dict(zip(PROBLEM_KINDS, found, strict=True))


def imbalance_sentences(report: AuditReport) -> list[str]:
    """One markdown sentence per split with images, e.g. ``"**Train**: the largest class,
    nevus (357), has 4.6× the images of the smallest, dermatofibroma (77)."`` or
    ``"**Test**: balanced, 10 images in each class."``; class names are folder names, so
    they are shown as text (:func:`skinlab.app.ui.literal`)."""
    # Imported here: ui imports caches, which imports this module.
    from skinlab.app.ui import literal

    sentences = []
    for split, imb in report.imbalance.items():
        if imb.ratio is None or imb.largest is None or imb.smallest is None:  # all or none
            continue
        counts = report.counts[split]
        if imb.ratio == 1:
            sentences.append(f"**{split}**: balanced, {counts[imb.largest]} images in each class.")
            continue
        sentences.append(
            f"**{split}**: the largest class, {literal(imb.largest)} ({counts[imb.largest]}), "
            f"has {imb.ratio:.1f}× the images of the smallest, {literal(imb.smallest)} "
            f"({counts[imb.smallest]})."
        )
    return sentences


def duplicate_members(root: str | Path, groups: Sequence[DuplicateGroup]) -> pd.DataFrame:
    """One row per file of each group: ``group`` (1-based), ``content_hash``, ``path``,
    ``relpath``, ``split``, ``label``, ``folder`` (inside the dataset) and the group's
    ``labels`` joined with ``" ≠ "``."""
    rows = [
        {
            "group": number,
            "content_hash": group.content_hash,
            "path": str(Path(root, f.relpath)),
            "relpath": f.relpath,
            "split": f.split,
            "label": f.label,
            "folder": str(Path(f.relpath).parent.as_posix()),
            "labels": " ≠ ".join(group.labels),
        }
        for number, group in enumerate(groups, 1)
        for f in group.files
    ]
    columns = ["group", "content_hash", "path", "relpath", "split", "label", "folder", "labels"]
    return pd.DataFrame(rows, columns=columns)


def size_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Readable images' geometry: ``split``, ``label``, ``width``, ``height``,
    ``aspect_ratio`` (width / height), ``megapixels``, ``mode``, ``format``, ``file_kb``."""
    rows = _readable(table)
    width = rows["width"].astype(float)
    height = rows["height"].astype(float)
    return pd.DataFrame(
        {
            "split": rows["split"],
            "label": rows["label"],
            "width": width,
            "height": height,
            "aspect_ratio": width / height,
            "megapixels": width * height / 1e6,
            "mode": rows["mode"],
            "format": rows["format"],
            "file_kb": rows["file_size"] / 1024,
        }
    ).reset_index(drop=True)


def common_sizes(table: pd.DataFrame, top: int = 5) -> pd.DataFrame:
    """The ``top`` most frequent ``width × height`` of readable images, with counts."""
    frame = size_frame(table)
    sizes = (
        frame.groupby(["width", "height"]).size().sort_values(ascending=False).head(top)
    ).reset_index(name="images")
    sizes["size"] = [
        f"{w:.0f}×{h:.0f}" for w, h in zip(sizes["width"], sizes["height"], strict=True)
    ]
    return sizes[["size", "images"]]
