"""Everything the trace investigation notebook shows, assembled and tested here.

The notebook holds narrative and one call per view; the choices (which trace, which
baseline, what to say when there is no data) live in this module. Every view returns a
readable table, a chart or a ``Note`` saying why there is nothing, so a cell needs no guard.
Window-wide views run on the window after ``trace_sets.clean_window``: one broken trace is
repaired or skipped (and counted), never a failed report. ``investigate_trace`` builds the
investigation once (frozen); the picked trace is its one mutable part, its ``selection``,
which a pick in JupyterLab replaces. What the views show is computed in ``obslib.traces``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import pandas as pd

from obslib import charts, load, traces
from obslib import logs as log_analysis
from obslib.errors import UsageError
from obslib.traces import logs, skew
from obslib.traces import sets as trace_sets
from obslib.values import boolean, duration_text, plural, window
from obslib.views.live import LiveView, per_trace, redraw_all
from obslib.views.notes import Note, unless_empty
from obslib.views.picker import PickedTrace, TraceSelection, no_trace, pick_trace, trace_picker
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
_REASONS = {"error": "a failing trace", "slow": "one of the slowest", "uniform": "sampled"}


def _picked(name: str) -> property:
    """The picked trace's ``name``, read through the selection (it changes on a pick)."""
    return property(lambda inv: getattr(inv.selection.trace, name), doc=f"The picked {name}.")


@dataclass(frozen=True, eq=False)
class TraceInvestigation:
    """One trace in the context of its window, built once by ``investigate_trace``.

    The window, its repairs and its sample are fixed; the investigated trace lives in
    ``selection`` (``pick`` replaces it). Derived sections (the day before, the service
    graph) are computed on first use and kept: they depend on the window alone.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    skew_correction: bool
    max_skew_ms: float
    url: str | None
    live: bool  # views return LiveViews that the picker redraws
    cleaning: trace_sets.CleanWindow  # the window, each trace repaired
    sample: trace_sets.TraceSample
    selection: TraceSelection
    no_window: Note | None = None  # why the window-wide views have nothing to show

    trace_id = _picked("trace_id")
    found = _picked("found")
    message = _picked("message")
    spans = _picked("spans")
    notes = _picked("notes")
    adjustments = _picked("adjustments")
    path = _picked("path")
    colors = _picked("colors")  # one colour per service for every chart of the report

    @property
    def trace(self) -> PickedTrace:
        """The investigated trace, as picked last."""
        return self.selection.trace

    @property
    def window(self) -> pd.DataFrame:
        """The window's spans, each trace repaired (unrepairable ones left out)."""
        return self.cleaning.spans

    @property
    def views(self) -> dict[str, LiveView]:
        """The live per-trace outputs shown so far (``per_trace`` registers them)."""
        return self.selection.views

    def empty_note(self) -> Note | None:
        """Why the window-wide views have nothing to show, or None (``unless_empty``)."""
        return self.no_window

    # -- choosing the trace ----------------------------------------------------------------

    def pick(self, trace_id: str) -> list[str]:
        """Investigate another trace with the same window and skew parameters, and redraw
        every live per-trace view; returns the names of the views redrawn."""
        self.selection.trace = pick_trace(
            str(trace_id or "").strip(),
            self.window,
            skew_correction=self.skew_correction,
            max_skew_ms=self.max_skew_ms,
            url=self.url,
        )
        return redraw_all(self.selection.views)

    @per_trace
    def headline(self) -> View:
        """Which trace this is and why it was chosen, or why there is none."""
        reason = self.sample.reason_of(self.trace_id)
        why = "chosen by id" if reason is None else _REASONS.get(reason, reason)
        return Note(f"Investigating trace {self.trace_id} ({why}).")

    def picker(self) -> Any:
        """The JupyterLab trace picker (``obslib.views.picker``); a note in a static report."""
        if not self.live:
            shows = f"; this report shows trace {self.trace_id}" if self.found else ""
            return Note(f"The trace picker works when the notebook runs in JupyterLab{shows}.")
        return trace_picker(self, follows_picker())

    # -- per-trace views: they follow the picker --------------------------------------------

    @per_trace
    def summary(self) -> View:
        """The trace at a glance (one row): what, how long, how wide, how broken."""
        t = self.trace
        o = trace_sets.trace_overview(t.spans, t.segments)
        row = {
            "trace_id": self.trace_id,
            "root": f"{o.root_service}: {o.root_operation}",
            "start": o.start,
            "duration_ms": o.duration_ms,
            "spans": o.spans,
            "services": o.services,
            "errors": o.errors,
            "critical path mostly in": o.path_mostly_in,
            "repairs": len(t.notes) + skew.applied_shifts(t.adjustments),
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
        per = trace_sets.trace_path_time(self.trace.segments)
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
        records = self.trace.records
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
        records = self.trace.records
        if records.empty:
            return Note(f"Trace {self.trace_id} wrote no log records.")
        per = logs.logs_per_span(self.spans, records)
        per = per[per["log_count"] > 0].drop(columns="trace_id")
        return table(per, f"{plural(len(records), 'record')} of the trace, per span that logged")

    @per_trace
    def untraced_logs(self) -> View:
        """Records of the trace's services in its time range that carry no trace id."""
        start, end, services = logs.context_window(self.spans)
        around = load.logs(start, end, services=services, untraced=True, url=self.url)
        if around.empty:
            return Note(
                f"No record without a trace id from {', '.join(services)} between "
                f"{start:%H:%M:%S} and {end:%H:%M:%S} UTC (the trace's time range with a "
                f"{duration_text(logs.CONTEXT_MARGIN)} margin)."
            )
        grouped = log_analysis.template_counts(around)
        return table(
            grouped[["service_name", "level", "template", "records", "first", "sample"]],
            f"{plural(len(around), 'record')} without a trace id from the trace's services,"
            " during it, as templates (ids, numbers, durations and hosts masked)",
            labels={"service_name": "service", "sample": "first message"},
        )

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
        root = trace_sets.trace_root(self.spans)
        what = f"{root['service_name']}: {root['operation_name']}"
        before = load.spans(
            self.start - DAY,
            self.end - DAY,
            json="text",
            url=self.url,
            operations=[root["operation_name"]],
            services=[root["service_name"]],
        )
        ids = trace_sets.cohort_trace_ids(before)
        if not ids:
            return Note(f"No trace of {what} in the same hours of the day before to compare with.")
        cohort = load.spans(
            self.start - DAY,
            self.end - DAY + pd.Timedelta(minutes=5),
            trace_ids=ids,
            json="text",
            url=self.url,
        )
        compared = trace_sets.compare_to_cohort(self.spans, cohort)
        return table(
            compared.table,
            f"Self time per service against {compared.cohort_traces} traces of {what} "
            "the day before",
        )

    # -- window-wide views: they do not follow the picker -----------------------------------

    @unless_empty
    def sampled(self) -> View:
        """The traces worth a look: every error trace, the slowest, a uniform sample."""
        counts = self.sample.counts
        shown = self.sample.traces[list(_SAMPLE_COLUMNS)]
        return table(
            shown,
            f"{counts.get('error', 0)} failing, {counts.get('slow', 0)} slowest and "
            f"{counts.get('uniform', 0)} sampled of the window's {self.cleaning.trace_count:,} "
            "traces",
        )

    @unless_empty
    def window_repairs(self) -> Note:
        """How many window traces were repaired or skipped before the window-wide views."""
        c = self.cleaning
        n = c.trace_count
        if not c.repaired and not c.skipped and not c.notes:
            return Note(f"All {n:,} traces of the window were used as stored.")
        skipped = ""
        if c.skipped:
            more = ", ..." if len(c.skipped) > 3 else ""
            skipped = f"; {len(c.skipped)} skipped ({', '.join(c.skipped[:3])}{more})"
        detail = f" What was done: {'; '.join(c.notes)}." if c.notes else ""
        return Note(f"Window-wide views use {n:,} traces: {c.repaired} repaired{skipped}.{detail}")

    @unless_empty
    def window_versus_day_before(self) -> View:
        """Critical-path ms per trace and operation: the window against the day before."""
        return change_table(self._window_change)

    @unless_empty
    def window_versus_day_before_chart(self) -> View:
        """The same comparison as paired bars."""
        return change_chart(self._window_change)

    @functools.cached_property
    def _window_change(self) -> pd.DataFrame | Note:
        """Window against the day before: computed once for the table and the chart."""
        before = load.spans(self.start - DAY, self.end - DAY, json="text", url=self.url)
        day_before = trace_sets.clean_window(before, what="baseline")
        if day_before.spans.empty:
            return no_day_before(self.start, self.end)
        return trace_sets.compare_critical_paths(self.cleaning, day_before)

    @unless_empty
    def service_graph(self) -> View:
        """Who calls whom in the window: calls, errors, callee latency."""
        return graph_table(self._edges)

    @unless_empty
    def service_graph_chart(self) -> View:
        """The service graph drawn in layers from the entry point."""
        return graph_chart(self._edges, self.colors)

    @functools.cached_property
    def _edges(self) -> pd.DataFrame | Note:
        """The window's service graph: computed once for the table and the chart."""
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
    cleaning = trace_sets.clean_window(load.spans(lo, hi, json="text", url=url), what="window")
    sample = trace_sets.sample_traces(cleaning)
    chosen = str(trace_id or "").strip() or trace_sets.default_trace(sample)
    if chosen is None:
        message = f"No spans between {lo:%Y-%m-%d %H:%M} and {hi:%Y-%m-%d %H:%M} UTC."
        picked = no_trace("", message, cleaning.spans)
    else:
        picked = pick_trace(
            chosen,
            cleaning.spans,
            skew_correction=skew_correction,
            max_skew_ms=max_skew_ms,
            url=url,
        )
    no_window = Note(picked.message or "No spans in the window.") if cleaning.spans.empty else None
    return TraceInvestigation(
        lo,
        hi,
        skew_correction=skew_correction,
        max_skew_ms=max_skew_ms,
        url=url,
        live=live,
        cleaning=cleaning,
        sample=sample,
        selection=TraceSelection(picked),
        no_window=no_window,
    )


def follows_picker() -> list[str]:
    """The views a picked trace redraws (the notebook says so next to the picker)."""
    return [
        name
        for name, member in vars(TraceInvestigation).items()
        if getattr(member, "follows_picker", False)
    ]
