"""Everything the trace investigation notebook shows, assembled and tested here.

The notebook holds narrative and one call per view; the choices (which trace, which
baseline, what to say when there is no data) live in this module. Every view returns a
readable table, a chart or a ``Note`` saying why there is nothing, so a cell needs no guard.
Window-wide views run on the window after ``trace_sets.clean_window``: one broken trace is
repaired or skipped (and counted), never a failed report.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import altair as alt
import pandas as pd

from obslib import charts, load, traces
from obslib.errors import UsageError
from obslib.traces import logs, skew
from obslib.traces import sets as trace_sets
from obslib.traces.tree import no_parent
from obslib.values import boolean, window
from obslib.views.live import LiveView, per_trace, redraw_all
from obslib.views.notes import Note
from obslib.views.picker import trace_picker
from obslib.views.tables import table
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

_SAMPLE_COLUMNS = (
    "reason", "trace_id", "root_service", "root_operation", "start_time",
    "duration_ms", "spans", "services", "errors",
)  # fmt: skip
COHORT_SIZE = 300  # traces of the same root operation the day before, enough for a p90


@dataclass
class TraceInvestigation:
    """One trace in the context of its window; ``found`` is False with a ``message`` when
    there is nothing to show (empty window, unknown trace id)."""

    start: pd.Timestamp
    end: pd.Timestamp
    skew_correction: bool = True
    max_skew_ms: float = 1000.0
    url: str | None = None
    live: bool = False  # views return LiveViews that the picker redraws
    trace_id: str = ""
    found: bool = False
    message: str = ""
    window: pd.DataFrame = field(default_factory=pd.DataFrame)  # cleaned window spans
    cleaning: trace_sets.CleanWindow | None = None  # the window, each trace repaired
    sample: trace_sets.TraceSample | None = None
    spans: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    adjustments: pd.DataFrame = field(default_factory=pd.DataFrame)
    path: pd.DataFrame = field(default_factory=pd.DataFrame)
    colors: alt.Scale | None = None  # one colour per service for every chart of the report
    views: dict[str, LiveView] = field(default_factory=dict)
    _logs: pd.DataFrame = field(default_factory=pd.DataFrame, init=False, repr=False)
    _logs_of: str | None = field(default=None, init=False, repr=False)  # whose _logs

    # -- choosing the trace ----------------------------------------------------------------

    def pick(self, trace_id: str) -> list[str]:
        """Investigate another trace with the same window and skew parameters, and redraw
        every live per-trace view; returns the names of the views redrawn."""
        self._load_trace(str(trace_id or "").strip())
        return redraw_all(self.views)

    def _load_trace(self, chosen: str) -> None:
        raw = load.trace(chosen, url=self.url) if chosen else pd.DataFrame()
        if raw.empty:
            self.trace_id, self.found = chosen, False
            self.message = f"No trace with id {chosen!r} in the database."
            self.spans, self.notes, self.adjustments = pd.DataFrame(), [], pd.DataFrame()
            self.path = pd.DataFrame()
            return
        adjusted = skew.adjust_clock_skew(
            raw, max_skew_ms=self.max_skew_ms, enabled=self.skew_correction
        )
        rebuilt = traces.reconstruct(adjusted.spans)
        self.trace_id, self.found, self.message = chosen, True, ""
        self.spans, self.notes, self.adjustments = (
            rebuilt.spans,
            rebuilt.notes,
            adjusted.adjustments,
        )
        self.path = traces.critical_path(rebuilt.spans)
        self.colors = charts.service_colors(
            self._window_services(), extra=self.spans["service_name"].astype(str)
        )

    def _window_services(self) -> set[str]:
        return set(self.window["service_name"].astype(str)) if len(self.window) else set()

    @per_trace
    def headline(self) -> View:
        """Which trace this is and why it was chosen, or why there is none."""
        how = "" if self.sample is None else f" ({self._why(self.trace_id)})"
        return Note(f"Investigating trace {self.trace_id}{how}.")

    def _why(self, trace_id: str) -> str:
        picked = self.sample.traces[self.sample.traces["trace_id"] == trace_id]
        if picked.empty:
            return "chosen by id"
        reason = str(picked.iloc[0]["reason"])
        return {"error": "a failing trace", "slow": "one of the slowest", "uniform": "sampled"}.get(
            reason, reason
        )

    def picker(self) -> Any:
        """The JupyterLab trace picker (``obslib.views.picker``); a note in a static report."""
        if not self.live:
            shows = f"; this report shows trace {self.trace_id}" if self.found else ""
            return Note(f"The trace picker works when the notebook runs in JupyterLab{shows}.")
        return trace_picker(self, follows_picker())

    # -- per-trace views: they follow the picker --------------------------------------------

    def _root(self) -> pd.Series:
        """The trace's root (``traces.roots``) among the spans the repair left as roots (a
        broken cycle's span among them)."""
        return traces.roots(self.spans[self.spans["is_root"]]).iloc[0]

    def _records(self) -> pd.DataFrame:
        """The trace's log records, loaded once per picked trace (two views show them)."""
        if self._logs_of != self.trace_id:
            self._logs = load.logs(trace_id=self.trace_id, url=self.url)
            self._logs_of = self.trace_id
        return self._logs

    @per_trace
    def summary(self) -> View:
        """The trace at a glance (one row): what, how long, how wide, how broken."""
        s = self.spans
        root = self._root()
        top = self.path_segments().groupby("service_name")["duration_ms"].sum()
        row = {
            "trace_id": self.trace_id,
            "root": f"{root['service_name']}: {root['operation_name']}",
            "start": s["start_time"].min(),
            "duration_ms": (s["end_time"].max() - s["start_time"].min())
            / pd.Timedelta(milliseconds=1),
            "spans": len(s),
            "services": s["service_name"].nunique(),
            "errors": int((s["status"] != "ok").sum()),
            "critical path mostly in": top.idxmax() if len(top) else "",
            "repairs": len(self.notes) + self._skew_shifts(),
        }
        return table(pd.DataFrame([row]), "The investigated trace")

    @per_trace
    def waterfall(self) -> View:
        """Spans in tree order with the critical path over them (folded when huge)."""
        rows = charts.waterfall_rows(self.spans, self.path)
        return charts.waterfall(rows, title=f"trace {self.trace_id}", colors=self.colors)

    @per_trace
    def critical_path(self) -> View:
        """Critical-path time per service and operation, largest first."""
        segments = self.path_segments()
        per = (
            segments.groupby(["service_name", "operation_name"], observed=True)["duration_ms"]
            .agg(["sum", "size"])
            .rename(columns={"sum": "path_ms", "size": "sections"})
            .sort_values("path_ms", ascending=False)
            .reset_index()
        )
        total = per["path_ms"].sum()
        per["share"] = per["path_ms"] / total if total > 0 else 0.0
        return table(per, "Where the request waited: critical-path time per operation")

    @per_trace
    def statistics(self, by: str = "service_name") -> View:
        """Jaeger's Trace Statistics: count, durations and self time per group."""
        stats = traces.statistics(self.spans, by=by)
        return table(stats, f"Span statistics per {by.replace('_', ' ')}")

    @per_trace
    def self_time_chart(self) -> View:
        """Self time per service as bars, in the report's service colours."""
        stats = traces.statistics(self.spans)
        return charts.self_time_bars(stats, title="self time by service", colors=self.colors)

    @per_trace
    def errors(self) -> View:
        """Failing spans with the log records they wrote."""
        failing = self.spans[self.spans["status"] != "ok"]
        if failing.empty:
            return Note(f"No span of trace {self.trace_id} failed.")
        records = self._records()
        joined = logs.span_logs(failing, records[records["span_id"].isin(failing["span_id"])])
        if joined.empty:
            return table(
                failing[["start_time", "service_name", "operation_name", "status"]],
                f"{len(failing)} failing spans; none of them logged anything",
            )
        shown = joined[["timestamp", "span_service", "operation_name", "level", "message", "error"]]
        return table(shown, f"Records written by the {len(failing)} failing spans")

    @per_trace
    def trace_logs(self) -> View:
        """Every span with how many records it logged and the worst level among them."""
        records = self._records()
        if records.empty:
            return Note(f"Trace {self.trace_id} wrote no log records.")
        per = logs.logs_per_span(self.spans, records)
        per = per[per["log_count"] > 0].drop(columns="trace_id")
        return table(per, f"{len(records)} records of the trace, per span that logged")

    @per_trace
    def untraced_logs(self) -> View:
        """Records of the trace's services in its time range that carry no trace id."""
        start, end, services = logs.context_window(self.spans)
        around = load.logs(start, end, services=services, untraced=True, url=self.url)
        if around.empty:
            return Note(
                f"No record without a trace id from {', '.join(services)} between "
                f"{start:%H:%M:%S} and {end:%H:%M:%S} UTC (the trace's time range with a "
                f"{logs.CONTEXT_MARGIN.total_seconds():g} s margin)."
            )
        return table(
            around[["timestamp", "service_name", "level", "message"]],
            "Records without a trace id from the trace's services, during it",
        )

    def _skew_shifts(self) -> int:
        """Shifts computed for a host switch; spans that moved with them are not repairs."""
        adj = self.adjustments
        if adj.empty:
            return 0
        return int((adj["applied"] & ~adj["inherited"]).sum())

    @per_trace
    def repairs(self) -> View:
        """Clock-skew adjustments and tree repairs, reported rather than silent."""
        said = "; ".join(self.notes)
        if self.adjustments.empty:
            why = (
                "clock-skew correction is off"
                if not self.skew_correction
                else "no span lay outside its parent"
            )
            return Note(f"No clock-skew adjustment ({why}). " + (said or "No repair needed."))
        caption = (
            "Clock-skew adjustments (spans shifted into their parents, or moved with their"
            " parent on the same host: inherited)"
        )
        return table(self.adjustments, caption + (f". Repairs: {said}" if said else ""))

    @per_trace
    def versus_cohort(self) -> View:
        """Self time per service against traces of the same root operation the day before."""
        root = self._root()
        what = f"{root['service_name']}: {root['operation_name']}"
        before = load.spans(
            self.start - DAY,
            self.end - DAY,
            json="text",
            url=self.url,
            operations=[root["operation_name"]],
            services=[root["service_name"]],
        )
        roots = no_parent(before["parent_span_id"])  # null or "" (OpenTelemetry's root)
        ids = before.loc[roots, "trace_id"].unique()[:COHORT_SIZE]
        if len(ids) == 0:
            return Note(f"No trace of {what} in the same hours of the day before to compare with.")
        cohort = load.spans(
            self.start - DAY,
            self.end - DAY + pd.Timedelta(minutes=5),
            trace_ids=list(ids),
            json="text",
            url=self.url,
        )
        compared = trace_sets.compare_to_cohort(self.spans, cohort)
        return table(
            compared.table,
            f"Self time per service against {compared.cohort_traces} traces of {what} "
            "the day before",
        )

    def path_segments(self) -> pd.DataFrame:
        """The trace's critical-path sections with service, operation and ms (data, not a view)."""
        return traces.critical_path_segments(self.spans)

    # -- window-wide views: they do not follow the picker -----------------------------------

    def _window_note(self) -> Note | None:
        if self.window.empty:
            return Note(self.message or "No spans in the window.")
        return None

    def sampled(self) -> View:
        """The traces worth a look: every error trace, the slowest, a uniform sample."""
        if (empty := self._window_note()) is not None:
            return empty
        counts = self.sample.counts
        n = self.window["trace_id"].nunique()
        shown = self.sample.traces[list(_SAMPLE_COLUMNS)]
        return table(
            shown,
            f"{counts.get('error', 0)} failing, {counts.get('slow', 0)} slowest and "
            f"{counts.get('uniform', 0)} sampled of the window's {n:,} traces",
        )

    def window_repairs(self) -> Note:
        """How many window traces were repaired or skipped before the window-wide views."""
        if (empty := self._window_note()) is not None:
            return empty
        c = self.cleaning
        n = self.window["trace_id"].nunique()
        if not c.repaired and not c.skipped and not c.notes:
            return Note(f"All {n:,} traces of the window were used as stored.")
        skipped = ""
        if c.skipped:
            more = ", ..." if len(c.skipped) > 3 else ""
            skipped = f"; {len(c.skipped)} skipped ({', '.join(c.skipped[:3])}{more})"
        detail = f" What was done: {'; '.join(c.notes)}." if c.notes else ""
        return Note(f"Window-wide views use {n:,} traces: {c.repaired} repaired{skipped}.{detail}")

    def window_versus_day_before(self) -> View:
        """Critical-path ms per trace and operation: the window against the day before."""
        return change_table(self._window_change)

    def window_versus_day_before_chart(self) -> View:
        """The same comparison as paired bars."""
        return change_chart(self._window_change)

    @functools.cached_property
    def _day_before(self) -> trace_sets.CleanWindow:
        before = load.spans(self.start - DAY, self.end - DAY, json="text", url=self.url)
        return trace_sets.clean_window(before, what="baseline")

    @functools.cached_property
    def _window_change(self) -> pd.DataFrame | Note:
        """Window against the day before: computed once for the table and the chart."""
        if (empty := self._window_note()) is not None:
            return empty
        if self._day_before.spans.empty:
            return no_day_before(self.start, self.end)
        return trace_sets.compare_critical_paths(self.cleaning, self._day_before)

    def service_graph(self) -> View:
        """Who calls whom in the window: calls, errors, callee latency."""
        return graph_table(self._edges)

    def service_graph_chart(self) -> View:
        """The service graph drawn in layers from the entry point."""
        return graph_chart(self._edges, self.colors)

    @functools.cached_property
    def _edges(self) -> pd.DataFrame | Note:
        """The window's service graph: computed once for the table and the chart."""
        if (empty := self._window_note()) is not None:
            return empty
        edges = trace_sets.service_graph(self.cleaning)
        return NO_CALLS if edges.empty else edges


def investigate_trace(
    trace_id: str,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    *,
    skew_correction: bool = True,
    max_skew_ms: float = 1000.0,
    url: str | None = None,
    live: bool = False,
) -> TraceInvestigation:
    """Load a window and one trace in it (by default the slowest error trace) and rebuild it.

    ``live=True`` (JupyterLab) makes the per-trace views follow the trace picker.
    """
    max_skew_ms = skew.check_max_skew_ms(max_skew_ms)
    try:
        skew_correction = boolean(skew_correction)
    except ValueError:
        raise UsageError(
            f"skew_correction must be true or false, not {skew_correction!r}"
        ) from None
    lo, hi = window(start, end)
    inv = TraceInvestigation(
        lo, hi, skew_correction=skew_correction, max_skew_ms=max_skew_ms, url=url, live=live
    )
    inv.cleaning = trace_sets.clean_window(load.spans(lo, hi, json="text", url=url), what="window")
    inv.window = inv.cleaning.spans
    inv.sample = trace_sets.sample_traces(inv.cleaning)
    inv.colors = charts.service_colors(inv._window_services())
    chosen = str(trace_id or "").strip()
    if not chosen:
        if inv.sample.traces.empty:
            inv.message = f"No spans between {lo:%Y-%m-%d %H:%M} and {hi:%Y-%m-%d %H:%M} UTC."
            return inv
        chosen = _default_trace(inv.sample.traces)
    inv._load_trace(chosen)
    return inv


def _default_trace(sample: pd.DataFrame) -> str:
    """The slowest error trace, else the slowest trace."""
    errors = sample[sample["reason"] == "error"]
    pool = errors if len(errors) else sample
    return str(
        pool.sort_values(["duration_ms", "trace_id"], ascending=[False, True]).iloc[0]["trace_id"]
    )


def follows_picker() -> list[str]:
    """The views a picked trace redraws (the notebook says so next to the picker)."""
    return [
        name
        for name, member in vars(TraceInvestigation).items()
        if getattr(member, "follows_picker", False)
    ]
