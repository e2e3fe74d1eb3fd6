"""Everything the trace investigation notebook shows, assembled and tested here.

The notebook holds narrative and one call per view; the choices (which trace, which
baseline, what to say when there is no data) live in this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from obslib import charts, load, logs, skew, trace_sets, traces
from obslib.errors import UsageError
from obslib.values import utc

DAY = pd.Timedelta(days=1)


@dataclass
class TraceInvestigation:
    """One trace in the context of its window; ``found`` is False with a ``message`` when
    there is nothing to show (empty window, unknown trace id)."""

    start: pd.Timestamp
    end: pd.Timestamp
    trace_id: str = ""
    found: bool = False
    message: str = ""
    window: pd.DataFrame = field(default_factory=pd.DataFrame)
    sample: pd.DataFrame = field(default_factory=pd.DataFrame)
    spans: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    adjustments: pd.DataFrame = field(default_factory=pd.DataFrame)
    path: pd.DataFrame = field(default_factory=pd.DataFrame)
    url: str | None = None

    # -- the views, each a frame or a chart ------------------------------------------------

    def summary(self) -> pd.DataFrame:
        """The trace at a glance (one row): what, how long, how wide, how broken."""
        if not self.found:
            return pd.DataFrame()
        s = self.spans
        root = s[s["is_root"]].sort_values("start_time").iloc[0]
        top = (
            self.path_segments()
            .groupby("service_name")["duration_ms"]
            .sum()
            .sort_values(ascending=False)
        )
        return pd.DataFrame(
            [
                {
                    "trace_id": self.trace_id,
                    "root": f"{root['service_name']}: {root['operation_name']}",
                    "start (UTC)": s["start_time"].min().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                    "duration_ms": round(
                        (s["end_time"].max() - s["start_time"].min())
                        / pd.Timedelta(milliseconds=1),
                        3,
                    ),
                    "spans": len(s),
                    "services": s["service_name"].nunique(),
                    "errors": int((s["status"] != "ok").sum()),
                    "critical path mostly in": top.index[0] if len(top) else "",
                    "repairs": len(self.notes) + len(self.adjustments),
                }
            ]
        ).set_index("trace_id")

    def waterfall(self):
        rows = charts.waterfall_rows(self.spans, self.path)
        return charts.waterfall(rows, title=f"trace {self.trace_id}"), rows.note

    def path_segments(self) -> pd.DataFrame:
        return traces.critical_path_segments(self.spans)

    def statistics(self, by: str = "service_name") -> pd.DataFrame:
        return traces.statistics(self.spans, by=by)

    def errors(self) -> pd.DataFrame:
        """Failing spans with the log records they wrote."""
        failing = self.spans[self.spans["status"] != "ok"]
        records = load.logs(trace_id=self.trace_id, url=self.url)
        joined = logs.span_logs(failing, records[records["span_id"].isin(failing["span_id"])])
        return joined[["timestamp", "span_service", "operation_name", "level", "message", "error"]]

    def trace_logs(self) -> pd.DataFrame:
        return logs.logs_per_span(self.spans, load.logs(trace_id=self.trace_id, url=self.url))

    def untraced_logs(self) -> pd.DataFrame:
        """Records of the trace's services in its time range that carry no trace id."""
        start, end, services = logs.context_window(self.spans)
        around = load.logs(start, end, services=services, untraced=True, url=self.url)
        return around[["timestamp", "service_name", "level", "message"]]

    def versus_cohort(self) -> pd.DataFrame:
        """Self time per service against traces of the same root operation the day before."""
        root = self.spans[self.spans["is_root"]].sort_values("start_time").iloc[0]
        before = load.spans(
            self.start - DAY,
            self.end - DAY,
            json="text",
            url=self.url,
            operations=[root["operation_name"]],
            services=[root["service_name"]],
        )
        ids = before.loc[before["parent_span_id"].isna(), "trace_id"].unique()[:300]
        if len(ids) == 0:
            return pd.DataFrame()
        cohort = load.spans(
            self.start - DAY,
            self.end - DAY + pd.Timedelta(minutes=5),
            trace_ids=list(ids),
            json="text",
            url=self.url,
        )
        return trace_sets.compare_to_cohort(self.spans, cohort)

    def window_versus_day_before(self) -> pd.DataFrame:
        before = load.spans(self.start - DAY, self.end - DAY, json="text", url=self.url)
        return trace_sets.compare_critical_paths(self.window, before)


def investigate_trace(
    trace_id: str,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    *,
    skew_correction: bool = True,
    max_skew_ms: float = 1000.0,
    url: str | None = None,
) -> TraceInvestigation:
    """Load a window and one trace in it (by default the slowest error trace) and rebuild it."""
    if max_skew_ms < 0:
        raise UsageError(f"max_skew_ms must be >= 0, not {max_skew_ms}")
    lo, hi = utc(start, "start"), utc(end, "end")
    if hi <= lo:
        raise UsageError(f"end {hi.isoformat()} is not after start {lo.isoformat()}")
    inv = TraceInvestigation(lo, hi, url=url)
    inv.window = load.spans(lo, hi, json="text", url=url)
    inv.sample = trace_sets.sample_traces(inv.window)
    chosen = str(trace_id or "").strip()
    if not chosen:
        if inv.sample.empty:
            inv.message = f"No spans between {lo:%Y-%m-%d %H:%M} and {hi:%Y-%m-%d %H:%M} UTC."
            return inv
        chosen = _default_trace(inv.sample)
    raw = load.trace(chosen, url=url)
    if raw.empty:
        inv.message = f"No trace with id {chosen!r} in the database."
        return inv
    adjusted = skew.adjust_clock_skew(raw, max_skew_ms=max_skew_ms, enabled=skew_correction)
    rebuilt = traces.reconstruct(adjusted.spans)
    inv.trace_id, inv.found = chosen, True
    inv.spans, inv.notes, inv.adjustments = rebuilt.spans, rebuilt.notes, adjusted.adjustments
    inv.path = traces.critical_path(rebuilt.spans)
    return inv


def _default_trace(sample: pd.DataFrame) -> str:
    """The slowest error trace, else the slowest trace."""
    errors = sample[sample["reason"] == "error"]
    pool = errors if len(errors) else sample
    return str(
        pool.sort_values(["duration_ms", "trace_id"], ascending=[False, True]).iloc[0]["trace_id"]
    )


def trace_picker(inv: TraceInvestigation):
    """A dropdown over the sampled traces that redraws waterfall, path and statistics."""
    import ipywidgets as widgets
    from IPython.display import display

    options = [
        (f"{r.reason:7} {r.duration_ms:9.1f} ms  {r.root_operation}  {r.trace_id}", r.trace_id)
        for r in inv.sample.itertuples()
    ]
    picker = widgets.Dropdown(
        options=options,
        value=inv.trace_id if inv.found else None,
        description="trace",
        layout=widgets.Layout(width="95%"),
    )
    out = widgets.Output()

    def show(change) -> None:
        chosen = investigate_trace(change["new"], inv.start, inv.end, url=inv.url)
        out.clear_output()
        with out:
            chart, note = chosen.waterfall()
            display(chosen.summary(), chart)
            if note:
                print(note)
            display(chosen.statistics())

    picker.observe(show, names="value")
    return widgets.VBox([picker, out])
