"""Probabilities as people read them: never a certainty the model cannot have."""

from __future__ import annotations

import pytest

from skinlab.core.probability import format_probability


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (1.0, "> 99.9%"),
        (0.99996, "> 99.9%"),
        (0.9994, "99.9%"),
        (0.4213, "42.1%"),
        (0.0006, "0.1%"),
        (1e-108, "< 0.1%"),
        (0.0, "< 0.1%"),
        (None, "–"),
        (float("nan"), "–"),
    ],
)
def test_a_probability_is_never_shown_as_a_certainty(p, text) -> None:
    assert format_probability(p) == text
