"""The nine ISIC classes: the one place that names them, describes them and tiers them.

Folder names on disk are the lower-case names used by the Kaggle "Skin cancer ISIC"
download (``"basal cell carcinoma"``); everything else (display names, tiers,
descriptions) is looked up here so it never drifts between pages.

Datasets with other class sets still work: :func:`class_info` returns a generic entry
with risk tier ``"unknown"`` for any name it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass

MALIGNANT = "malignant"
PRE_MALIGNANT = "pre-malignant"
BENIGN = "benign"
UNKNOWN = "unknown"

#: Risk tiers in order of concern, for sorting and colouring.
RISK_TIERS: tuple[str, ...] = (MALIGNANT, PRE_MALIGNANT, BENIGN, UNKNOWN)

#: One colour per tier, shared by every chart.
TIER_COLOURS: dict[str, str] = {
    MALIGNANT: "#c0392b",
    PRE_MALIGNANT: "#e67e22",
    BENIGN: "#2e86c1",
    UNKNOWN: "#7f8c8d",
}


@dataclass(frozen=True)
class ClassInfo:
    """What skinlab knows about one class folder name."""

    name: str
    display_name: str
    description: str
    risk_tier: str


ISIC_CLASSES: tuple[ClassInfo, ...] = (
    ClassInfo(
        "actinic keratosis",
        "Actinic keratosis",
        "Rough, scaly sun-damage patch; can progress to squamous cell carcinoma.",
        PRE_MALIGNANT,
    ),
    ClassInfo(
        "basal cell carcinoma",
        "Basal cell carcinoma",
        "The most common skin cancer; pearly nodule, often with fine branching vessels.",
        MALIGNANT,
    ),
    ClassInfo(
        "dermatofibroma",
        "Dermatofibroma",
        "Firm benign nodule; central white patch with a delicate pigment ring.",
        BENIGN,
    ),
    ClassInfo(
        "melanoma",
        "Melanoma",
        "Malignant melanocytic tumour; asymmetric, irregular border, several colours.",
        MALIGNANT,
    ),
    ClassInfo(
        "nevus",
        "Nevus",
        "Common mole; symmetric, regular pigment network, one or two colours.",
        BENIGN,
    ),
    ClassInfo(
        "pigmented benign keratosis",
        "Pigmented benign keratosis",
        "Benign pigmented keratinocytic lesion (solar lentigo, lichen planus-like keratosis).",
        BENIGN,
    ),
    ClassInfo(
        "seborrheic keratosis",
        "Seborrheic keratosis",
        "Waxy 'stuck-on' benign growth; milia-like cysts and comedo-like openings.",
        BENIGN,
    ),
    ClassInfo(
        "squamous cell carcinoma",
        "Squamous cell carcinoma",
        "Keratinising skin cancer; scaly, white structureless areas, dotted vessels.",
        MALIGNANT,
    ),
    ClassInfo(
        "vascular lesion",
        "Vascular lesion",
        "Benign blood-vessel lesion (angioma, angiokeratoma); red-purple lacunae.",
        BENIGN,
    ),
)

#: The class folder names in the canonical (alphabetical, Keras-compatible) order.
ISIC_CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in ISIC_CLASSES)

_BY_KEY = {c.name: c for c in ISIC_CLASSES}


def normalise_class_name(name: str) -> str:
    """Map a folder name to its lookup key: lower case, single spaces, no ``_``/``-``."""
    return " ".join(name.replace("_", " ").replace("-", " ").lower().split())


def class_info(name: str) -> ClassInfo:
    """Return what skinlab knows of ``name``; unknown names get tier ``"unknown"``."""
    known = _BY_KEY.get(normalise_class_name(name))
    if known is not None:
        return known
    return ClassInfo(name, name.replace("_", " ").strip().capitalize(), "", UNKNOWN)


def risk_tier(name: str) -> str:
    """Risk tier of a class name (``"malignant"``, ``"pre-malignant"``, ``"benign"``, ``"unknown"``)."""
    return class_info(name).risk_tier


def is_isic_class(name: str) -> bool:
    """True when ``name`` (after normalising) is one of the nine ISIC classes."""
    return normalise_class_name(name) in _BY_KEY


def closest_isic_class(name: str) -> str | None:
    """Suggest the ISIC class a misspelled folder name probably meant, or ``None``."""
    import difflib

    matches = difflib.get_close_matches(
        normalise_class_name(name), ISIC_CLASS_NAMES, n=1, cutoff=0.8
    )
    return matches[0] if matches else None
