"""The trace notebook's window-wide views on Spark, as a view: built once, and one note
for every section of an empty window (no Spark session needed for either)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from obslib.views.notes import Note
from obslib.views.spark_window import SparkWindow

T0 = pd.Timestamp("2026-11-14 14:00", tz="UTC")


def test_a_spark_window_is_built_once_and_says_when_it_is_empty() -> None:
    """Frozen; with no span in the window (its counts seeded, so no Spark runs) every
    window-wide view is the same note."""
    start, end = T0, T0 + pd.Timedelta(hours=1)
    big = SparkWindow(None, start, end)
    with pytest.raises(dataclasses.FrozenInstanceError):
        big.start = end  # type: ignore[misc]
    big.__dict__["_counts"] = (0, 0)  # what functools.cached_property keeps
    note = Note("No spans between 2026-11-14 14:00 and 2026-11-14 15:00 UTC.")
    assert big.empty_note() == note
    for view in ("window_versus_day_before", "window_versus_day_before_chart",
                 "service_graph", "service_graph_chart"):  # fmt: skip
        assert getattr(big, view)() == note, view
    assert str(big.window_summary()).startswith("Spark read 0 spans of 0 traces")
