"""The SLO review's text and stacking helpers."""

from __future__ import annotations

import altair as alt
import pandas as pd

from obslib.views.notes import Note
from obslib.views.slo_text import stack


def _chart(window: str, colour: str) -> alt.Chart:
    frame = pd.DataFrame({"x": [0, 1], "y": [1.0, 2.0], "window": [window, window]})
    scale = alt.Scale(domain=[window], range=[colour])
    return (
        alt.Chart(frame)
        .mark_line()
        .encode(x="x:Q", y="y:Q", color=alt.Color("window:N", scale=scale))
        .properties(description=f"burn rate over {window}")
    )


def test_stacked_charts_keep_their_own_colours_and_legends() -> None:
    spec = stack([_chart("1h", "#d62728"), _chart("6h", "#1f77b4")], "none").to_dict()
    assert spec["resolve"]["scale"]["color"] == "independent"


def test_stacked_charts_share_one_alt_text() -> None:
    spec = stack([_chart("1h", "#d62728"), _chart("6h", "#1f77b4")], "none").to_dict()
    assert spec["description"] == "burn rate over 1h burn rate over 6h"


def test_one_chart_is_not_stacked_and_none_is_a_note() -> None:
    one = _chart("1h", "#d62728")
    assert stack([one], "none") is one
    assert isinstance(stack([], "no SLOs"), Note)
