"""A folder in HAM10000's or an ISIC challenge's layout, planned as the files of a skinlab
dataset: what :func:`skinlab.data.importer.import_dataset` copies when such a folder is
imported.

Such a folder holds its images (in it or any subfolder: HAM10000's ``HAM10000_images_part_1/``,
an ``images/`` folder) beside one diagnosis CSV (:mod:`skinlab.data.ground_truth`): HAM10000's
``HAM10000_metadata.csv`` or an ISIC challenge's ground truth.

Contract:

* :func:`plan_labelled_folder` returns ``None`` for a folder without a label CSV directly in it,
  else a :class:`LabelledFolder`: each image of a labelled row goes to
  ``Train/<class>/<image id>.<suffix>`` (classes from :data:`skinlab.data.collections.DX_CODES`),
  and the CSV to the dataset's top under its own name, so lesion ids stay known
  (:func:`skinlab.data.extra_collections.lesion_ids`).
* Rows that map to no class, name no image or whose image file is missing are counted in
  :attr:`LabelledFolder.skipped` under their reason. Links and other non-regular files are
  never listed (the importer's rule), nor are hidden files.

Example::

    plan = plan_labelled_folder(Path("~/Downloads/HAM10000").expanduser())
    plan.files[0]       # (("Train", "nevus", "ISIC_0024306.jpg"), Path(".../ISIC_0024306.jpg"))
    plan.skipped        # {"no class (UNK)": 3}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from skinlab.data.discovery import is_hidden
from skinlab.data.ground_truth import find_label_file, match_images, read_label_file
from skinlab.data.images import IMAGE_SUFFIXES

#: The reason a row whose image is not in the folder is skipped.


@dataclass(frozen=True)
class LabelledFolder:
    """What importing a labelled folder copies.

    Attributes:
        kind: the CSV's kind (:data:`skinlab.data.ground_truth.HAM_METADATA` or
            :data:`~skinlab.data.ground_truth.ISIC_GROUND_TRUTH`).
        csv: the diagnosis CSV.
        files: ``(path parts in the dataset, source file)`` of every image to copy.
        skipped: ``{reason: rows}`` of the CSV's rows left out.
    """

    kind: str
    csv: Path
    files: tuple[tuple[tuple[str, ...], Path], ...]
    skipped: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """``"6,651 images in 3 classes; 3 rows left out (no class (UNK) 3)"``."""
        classes = len({parts[1] for parts, _ in self.files})
        text = f"{len(self.files):,} images in {classes} classes"
        if self.skipped:
            reasons = ", ".join(f"{r} {n:,}" for r, n in self.skipped.items())
            text += f"; {sum(self.skipped.values()):,} rows left out ({reasons})"
        return text


def plan_labelled_folder(folder: Path) -> LabelledFolder | None:
    """The import plan of ``folder`` when a label CSV lies directly in it, else ``None``.

    Raises:
        DatasetLayoutError: several label CSVs and none is HAM10000's own, or the CSV cannot
            be read.
    """
    csv_path = _label_csv(folder)
    if csv_path is None:
        return None
    labels = read_label_file(csv_path)
    images = _images_by_name(folder)
    matched, skipped = match_images(labels, images)
    # The file's own name, not the CSV's text: a name that exists is one path part.
    files = [
        (("Train", row.label, found.stem + found.suffix.lower()), found) for row, found in matched
    ]
    return LabelledFolder(labels.kind, csv_path, tuple(files), skipped)


def _label_csv(folder: Path) -> Path | None:
    """The one label CSV directly in ``folder`` (HAM10000's own name wins), links left out."""
    return find_label_file(folder, "keep only the one to import")


def _images_by_name(folder: Path) -> dict[str, Path]:
    """``{file name without suffix, lower case: file}`` of the regular image files under
    ``folder`` (links never followed; the first of two files of one name wins)."""
    index: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if is_hidden(name) or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if not path.is_symlink() and path.is_file():
                index.setdefault(path.stem.lower(), path)
    return index
