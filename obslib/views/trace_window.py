"""The window-wide views' shapes, shared by the trace investigation (pandas), its Spark
twin and the postmortem: the window against the day before, and the service graph."""

from __future__ import annotations

import altair as alt
import pandas as pd

from obslib import charts
from obslib.views.notes import Note
from obslib.views.tables import Table, table

DAY = pd.Timedelta(days=1)
View = Table | Note | alt.TopLevelMixin
CHANGE_LABELS = {  # the window against the same hours the day before
    "service_name": "service",
    "operation_name": "operation",
    "per_trace_ms": "window, per trace",
    "share": "window share",
    "per_trace_ms_baseline": "day before, per trace",
    "share_baseline": "day before share",
    "delta_ms": "change per trace",
}

NO_CALLS = Note("No span in the window calls another service.")


def no_day_before(start: pd.Timestamp, end: pd.Timestamp) -> Note:
    """Why the window cannot be compared with the day before."""
    return Note(
        f"No spans between {start - DAY:%Y-%m-%d %H:%M} and "
        f"{end - DAY:%Y-%m-%d %H:%M} UTC (the day before) to compare with."
    )


def change_table(change: pd.DataFrame | Note) -> View:
    """``compare_critical_paths`` rows as the report's table (the 12 largest increases)."""
    if isinstance(change, Note):
        return change
    return table(
        change.head(12),
        "Critical-path time per trace, window against the same hours the day before "
        "(largest increase first)",
        labels=CHANGE_LABELS,
    )


def change_chart(change: pd.DataFrame | Note) -> View:
    """The same comparison as paired bars."""
    if isinstance(change, Note):
        return change
    return charts.path_share_comparison(
        change, title="critical path per trace: window vs day before"
    )


def graph_table(edges: pd.DataFrame | Note) -> View:
    """``service_graph`` rows as the report's table."""
    if isinstance(edges, Note):
        return edges
    return table(edges, "Calls between services in the window")


def graph_chart(edges: pd.DataFrame | Note, colors: alt.Scale | None) -> View:
    """The service graph drawn in layers from the entry point."""
    if isinstance(edges, Note):
        return edges
    return charts.service_graph(edges, title="service dependencies in the window", colors=colors)
