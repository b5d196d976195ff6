"""How skinlab writes a probability for people: never "100.0 %" and never "0.0 %".

A classifier's softmax can round to 1.0 in float32 for any input at all (a photo of a
building included); printing that as "100.0 %" reads as certainty no model has. Values
that round to the ends at one decimal are shown as "> 99.9 %" and "< 0.1 %". Raw values
stay raw in CSV and JSON: this is only the text people read.

Example::

    format_probability(0.99996)   # '> 99.9%'
    format_probability(0.4213)    # '42.1%'
"""

from __future__ import annotations

import math

#: The largest and smallest probability shown as a number at one decimal.
SHOWN_MAX, SHOWN_MIN = 0.999, 0.001


def format_probability(p: float | None) -> str:
    """``p`` (0..1) as a percentage with one decimal, clipped to ``(0.1 %, 99.9 %)``;
    ``"–"`` for a missing or non-finite value."""
    if p is None or not math.isfinite(p):
        return "–"
    if p > SHOWN_MAX + 0.0005:
        return "> 99.9%"
    if p < SHOWN_MIN - 0.0005:
        return "< 0.1%"
    return f"{p:.1%}"
