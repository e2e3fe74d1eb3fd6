"""The trace notebook's window-wide views computed by Spark, for windows too large to load.

``investigate_trace`` loads its whole window into pandas; past one machine's memory the
window-wide sections (the window against the day before, the service graph) come from a
Spark DataFrame of spans instead (the Parquet export, or ``obslib.spark.read_spans``),
while the per-trace views keep a narrow window around the trace. Same method names, same
tables and charts as ``TraceInvestigation``: a notebook swaps ``inv.`` for ``big.`` in
those cells. Only the aggregated rows (one per group or edge) reach the driver.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from obslib import charts, spark
from obslib.traces import sets as trace_sets
from obslib.values import Moment, window
from obslib.views.notes import Note, unless_empty
from obslib.views.trace_window import (
    DAY,
    NO_CALLS,
    View,
    change_chart,
    change_table,
    graph_chart,
    graph_table,
    no_day_before,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_GRAPH_COLUMNS = ["caller", "callee", "calls", "errors", "p50_ms", "p99_ms", "error_rate"]


@dataclass(frozen=True, eq=False)
class SparkWindow:
    """Window-wide views over ``spans`` (a Spark DataFrame holding the window and the day
    before it; more is filtered away, by ``day`` folder first when there is one).

    Built once by ``spark_window``; what Spark computes (the counts, the comparison, the
    service graph) runs on first use and is kept: it depends on the fields alone.
    """

    spans: DataFrame
    start: pd.Timestamp
    end: pd.Timestamp

    @functools.cached_property
    def _window(self) -> DataFrame:
        return spark.in_window(self.spans, self.start, self.end)

    @functools.cached_property
    def _counts(self) -> tuple[int, int]:
        return spark.span_and_trace_counts(self._window)

    def empty_note(self) -> Note | None:
        """Why the window-wide views have nothing to show (no span in the window), or None
        (``unless_empty``)."""
        if self._counts[0] == 0:
            return Note(
                f"No spans between {self.start:%Y-%m-%d %H:%M} and {self.end:%Y-%m-%d %H:%M} UTC."
            )
        return None

    def window_summary(self) -> Note:
        """How much Spark read: spans and traces in the window."""
        spans, traces = self._counts
        return Note(
            f"Spark read {spans:,} spans of {traces:,} traces between "
            f"{self.start:%Y-%m-%d %H:%M} and {self.end:%Y-%m-%d %H:%M} UTC."
        )

    @functools.cached_property
    def _window_change(self) -> pd.DataFrame | Note:
        """As ``TraceInvestigation``'s: the day before counts once its traces are cleaned
        (a day of unusable traces is no baseline)."""
        before = spark.in_window(self.spans, self.start - DAY, self.end - DAY)
        baseline, used = spark.critical_path_totals(before)
        if used == 0:
            return no_day_before(self.start, self.end)
        now = spark.critical_path_totals(self._window)
        return trace_sets.path_change(*now, baseline, used, trace_sets.path_keys(None))

    @unless_empty
    def window_versus_day_before(self) -> View:
        """Critical-path ms per trace and operation: the window against the day before."""
        return change_table(self._window_change)

    @unless_empty
    def window_versus_day_before_chart(self) -> View:
        """The same comparison as paired bars."""
        return change_chart(self._window_change)

    @functools.cached_property
    def _edges(self) -> pd.DataFrame | Note:
        edges = spark.service_graph(self._window).toPandas()[_GRAPH_COLUMNS]
        return NO_CALLS if edges.empty else edges

    @unless_empty
    def service_graph(self) -> View:
        """Who calls whom in the window: calls, errors, callee latency."""
        return graph_table(self._edges)

    @unless_empty
    def service_graph_chart(self) -> View:
        """The service graph drawn in layers from the entry point."""
        edges = self._edges
        services = [] if isinstance(edges, Note) else [*edges["caller"], *edges["callee"]]
        return graph_chart(edges, charts.service_colors(services))


def spark_window(spans_df: DataFrame, start: Moment, end: Moment) -> SparkWindow:
    """The window-wide views of ``[start, end)`` over a Spark DataFrame of spans."""
    return SparkWindow(spans_df, *window(start, end))
