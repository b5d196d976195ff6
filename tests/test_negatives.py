"""The non-dermoscopy images the unfamiliar-image gate is measured on."""

from __future__ import annotations

import numpy as np

from skinlab.data.negatives import (
    FAMILIES,
    PHOTOS,
    SIDE_PX,
    crops,
    hue_rotated,
    negative_set,
    procedural_textures,
    sample_photographs,
    skin_tint,
)


def test_every_sample_photograph_loads_offline_as_rgb_of_the_common_size() -> None:
    photos = sample_photographs()
    assert [name for name, _ in photos] == list(PHOTOS)
    for _, image in photos:
        assert image.mode == "RGB" and min(image.size) == SIDE_PX


def test_the_default_set_holds_every_family_in_the_documented_numbers() -> None:
    negatives = negative_set(seed=3, textures=5)
    counts = {f: sum(n.family == f for n in negatives) for f in FAMILIES}
    assert counts == {"photo": 20, "crop": 40, "recolour": 40, "texture": 5}
    assert len({n.name for n in negatives}) == len(negatives)
    assert all(min(n.image.size) == SIDE_PX and n.image.mode == "RGB" for n in negatives)


def test_a_seed_draws_the_same_images_and_another_seed_other_ones() -> None:
    def pixels(seed):
        return [np.asarray(n.image) for n in negative_set(seed=seed, families=("texture",))]

    first, again, other = pixels(0), pixels(0), pixels(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_crops_are_square_and_recolourings_keep_the_size() -> None:
    photo = sample_photographs()[0][1]
    for crop in crops(photo, np.random.default_rng(0), count=3):
        assert crop.width == crop.height == SIDE_PX
    tinted = np.asarray(skin_tint(photo), dtype=float)
    assert skin_tint(photo).size == hue_rotated(photo).size == photo.size
    # Skin palette: red above green above blue everywhere.
    assert (tinted[..., 0] >= tinted[..., 1]).all() and (tinted[..., 1] >= tinted[..., 2]).all()


def test_textures_cycle_through_their_kinds() -> None:
    names = [name.split()[0] for name, _ in procedural_textures(5, seed=0)]
    assert names == ["noise", "stripes", "checkers", "blobs", "cells"]


def test_the_cached_set_is_a_tuple_so_no_caller_can_change_what_the_next_one_gets() -> None:
    # negative_set is lru_cached: a list would be one shared object every caller could append to.
    negatives = negative_set(seed=5, textures=2, families=("texture",))

    assert isinstance(negatives, tuple)
    assert negative_set(seed=5, textures=2, families=("texture",)) is negatives
