"""Which collection an image came from, and the diagnosis codes of the ISIC-family datasets.

A *collection* is the archive an image was published in. It matters because a model can learn
the collection instead of the lesion: in the Kaggle ISIC 9-class data every melanoma and
seborrheic keratosis comes from the older ISIC archive and every actinic keratosis, basal cell
carcinoma, dermatofibroma, pigmented benign keratosis, squamous cell carcinoma and vascular
lesion from HAM10000's, and the two look different (frame, colour cast, zoom).

Contract:

* :func:`collection_of` names the collection of one file from what its name and original size
  say: ISIC ids ``ISIC_0024306`` .. ``ISIC_0034320`` are HAM10000's (Tschandl et al. 2018),
  lower ids the older ISIC archive's, higher ids the later challenges'; a file without an ISIC id
  belongs to ``default`` (the dataset's own name), except a 600 x 450 image, HAM10000's size.
* :data:`DX_CODES` maps HAM10000's ``dx`` codes and the ISIC challenges' one-hot column names
  (lower-cased) to the nine class folder names; :func:`class_for_code` returns ``None`` for a
  code that maps to no class (``unk``), which callers count and skip.

Example::

    collection_of("Train/melanoma/ISIC_0000139.jpg")   # "ISIC archive"
    collection_of("ISIC_0024310.jpg")                  # "HAM10000"
    class_for_code("AKIEC")                            # "actinic keratosis"
"""

from __future__ import annotations

import re

#: The collections :func:`collection_of` can name from an ISIC id.
ISIC_ARCHIVE = "ISIC archive"
HAM10000 = "HAM10000"
ISIC_CHALLENGE = "ISIC 2019+"

#: HAM10000's images hold these ISIC ids (both ends included).
HAM10000_IDS = (24306, 34320)
#: HAM10000's original image size (width, height).
HAM10000_SIZE = (600, 450)

#: Diagnosis codes (HAM10000's ``dx``, the ISIC 2018/2019 ground-truth columns) -> class folder.
DX_CODES: dict[str, str] = {
    "akiec": "actinic keratosis",
    "ak": "actinic keratosis",
    "bcc": "basal cell carcinoma",
    "bkl": "pigmented benign keratosis",
    "df": "dermatofibroma",
    "mel": "melanoma",
    "nv": "nevus",
    "scc": "squamous cell carcinoma",
    "vasc": "vascular lesion",
}

_ISIC_ID = re.compile(r"ISIC_(\d{7})", re.IGNORECASE)


def isic_id(name: str) -> int | None:
    """The number of the ISIC id in ``name`` (a file name or path), or ``None``."""
    match = _ISIC_ID.search(name)
    return int(match.group(1)) if match else None


def collection_of(
    name: str, default: str = "", *, width: int | None = None, height: int | None = None
) -> str:
    """The collection of the image file ``name`` (see the module contract).

    Args:
        name: file name or path; only its ISIC id is read.
        default: the collection of a file whose name says nothing (the dataset's name).
        width, height: the image's original size, when known.
    """
    number = isic_id(name)
    if number is not None:
        low, high = HAM10000_IDS
        if number < low:
            return ISIC_ARCHIVE
        return HAM10000 if number <= high else ISIC_CHALLENGE
    if (width, height) == HAM10000_SIZE:
        return HAM10000
    return default


def class_for_code(code: str) -> str | None:
    """The class folder name of diagnosis code ``code`` (any case), or ``None`` for none."""
    return DX_CODES.get(code.strip().lower())
