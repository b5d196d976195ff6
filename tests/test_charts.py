"""Explore's figures: what the user sees at the edges of a chart."""

from __future__ import annotations

import pandas as pd

from skinlab.app import charts


def test_size_histograms_keep_the_largest_value_inside_a_bar_with_room_to_the_right() -> None:
    sizes = pd.DataFrame(
        {"width": [96, 120, 200, 256], "height": [96, 96, 180, 256], "aspect_ratio": [1.0] * 4}
    )
    fig = charts.image_size_figure(sizes)
    for trace, axis in zip(fig.data, ("xaxis", "xaxis2", "xaxis3"), strict=True):
        largest = max(trace.x)
        bins = trace.xbins
        assert bins.start < min(trace.x) and largest < bins.end  # no value on a bin's edge
        assert (bins.end - largest) < bins.size  # ...and no empty bin past the last bar
        assert fig.layout[axis].range[1] > bins.end  # the last bar is not at the border
