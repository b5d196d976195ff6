"""The class list: nine ISIC classes, their tiers, and graceful unknown classes."""

from skinlab.core.classes import (
    BENIGN,
    ISIC_CLASS_NAMES,
    MALIGNANT,
    PRE_MALIGNANT,
    UNKNOWN,
    class_info,
    closest_isic_class,
    risk_tier,
)


def test_nine_classes_in_keras_alphabetical_order() -> None:
    assert len(ISIC_CLASS_NAMES) == 9
    assert list(ISIC_CLASS_NAMES) == sorted(ISIC_CLASS_NAMES)


def test_risk_tiers_follow_the_clinical_grouping() -> None:
    malignant = {n for n in ISIC_CLASS_NAMES if risk_tier(n) == MALIGNANT}
    assert malignant == {"melanoma", "basal cell carcinoma", "squamous cell carcinoma"}
    assert risk_tier("actinic keratosis") == PRE_MALIGNANT
    assert sum(risk_tier(n) == BENIGN for n in ISIC_CLASS_NAMES) == 5


def test_every_class_has_a_display_name_and_description() -> None:
    for name in ISIC_CLASS_NAMES:
        info = class_info(name)
        assert info.display_name[0].isupper() and info.description


def test_unknown_class_gets_unknown_tier_not_an_error() -> None:
    assert class_info("cat_photos").risk_tier == UNKNOWN
    assert class_info("Cat_photos").display_name == "Cat photos"


def test_folder_name_variants_are_recognised() -> None:
    assert class_info("Basal_Cell_Carcinoma").name == "basal cell carcinoma"
    assert closest_isic_class("melonoma") == "melanoma"
    assert closest_isic_class("cats") is None
