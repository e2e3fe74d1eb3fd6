"""Analysis across many traces: the service graph, where critical-path time goes in a
window and how that changed, a trace against its cohort, which traces to look at and which
one to open first (with that trace at a glance).

What no single-trace viewer shows: these aggregate the per-trace functions of
``obslib.traces`` over every trace of a window. A window holds whatever was stored, so each
function first repairs every trace on its own (``clean_window``) and leaves out the few that
cannot be repaired: one bad trace never fails a window-wide view. Pass a ``CleanWindow`` to
do that work once for several views (and to show its notes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from obslib import schema
from obslib.errors import InputError, UsageError
from obslib.traces import path, repair, tree
from obslib.traces.tree import no_parent
from obslib.values import plural

logger = logging.getLogger(__name__)

_PATH_KEYS = ["service_name", "operation_name"]
# a request failed when its span says so: every stored status but ok (error, timeout)
FAILED_STATUSES = tuple(s for s in schema.SPAN_STATUSES if s != "ok")
_SUMMARY_COLUMNS = (*tree.REQUIRED, "service_name", "operation_name", "status")
COHORT_SIZE = 300  # traces of the same root operation the day before, enough for a p90


@dataclass(frozen=True)
class CleanWindow:
    """A window's spans with every trace repaired on its own (``repair.reconstruct``).

    ``repaired`` counts traces a repair changed (duplicates, shared ids, self-parents,
    cycles; an orphan is only flagged, not counted); ``skipped`` lists the trace ids left
    out because no repair makes them a tree; ``notes`` says what was done, for a report.
    """

    spans: pd.DataFrame
    repaired: int
    skipped: list[str]
    notes: list[str]

    @property
    def trace_count(self) -> int:
        """How many traces the window-wide views use (the skipped ones not)."""
        return int(self.spans["trace_id"].nunique())


@dataclass(frozen=True)
class TraceSample:
    """Traces worth investigating, one row each with ``reason``, and how many per reason."""

    traces: pd.DataFrame
    counts: dict[str, int]  # "error", "slow", "uniform"

    def reason_of(self, trace_id: str) -> str | None:
        """Why ``trace_id`` is in the sample (``"error"``, ``"slow"``, ``"uniform"``), or None
        when it is not (a trace chosen by id)."""
        picked = self.traces[self.traces["trace_id"] == trace_id]
        return None if picked.empty else str(picked.iloc[0]["reason"])


@dataclass(frozen=True)
class TraceOverview:
    """One trace at a glance: its root, when it started and how long it took, how wide it
    was, how many spans failed and which service its critical path spent most time in."""

    root_service: str
    root_operation: str
    start: pd.Timestamp
    duration_ms: float  # first start to last end
    spans: int
    services: int
    errors: int  # spans whose status is not ok
    path_mostly_in: str  # "" when the trace has no critical path


@dataclass(frozen=True)
class CohortComparison:
    """Self time per service of one trace against its cohort, and how many cohort traces."""

    table: pd.DataFrame
    cohort_traces: int


Spans = pd.DataFrame | CleanWindow


def clean_window(spans: Spans, *, what: str = "spans") -> CleanWindow:
    """Repair every trace of a window on its own; leave out the ones that cannot be repaired.

    Spans without a trace id are left out too (they belong to no trace). ``what`` names the
    frame in error messages (e.g. ``"baseline"``). A ``CleanWindow`` is returned as it is.
    """
    if isinstance(spans, CleanWindow):
        return spans
    schema.require_columns(spans, tree.REQUIRED, what)
    notes = []
    no_trace = spans["trace_id"].isna().to_numpy()
    if no_trace.any():
        notes.append(f"{plural(int(no_trace.sum()), 'span')} without a trace id left out")
        logger.warning("%s: %s", what, notes[0])  # reconstruct logs the rest
        spans = spans[~no_trace]
    rebuilt = repair.reconstruct(spans, skip_broken=True)
    if rebuilt.repaired_traces:
        notes.append(f"{plural(len(rebuilt.repaired_traces), 'trace')} repaired")
    notes += rebuilt.notes
    skipped = list(rebuilt.skipped_traces or {})
    return CleanWindow(rebuilt.spans, len(rebuilt.repaired_traces), skipped, notes)


def _clean(spans: Spans, what: str, columns: tuple[str, ...] | list[str]) -> CleanWindow:
    """Check the columns a function needs up front (naming the parameter), then clean."""
    frame = spans.spans if isinstance(spans, CleanWindow) else spans
    schema.require_columns(frame, columns, what)
    return clean_window(spans, what=what)


def _failed(status: pd.Series) -> np.ndarray:
    return status.isin(FAILED_STATUSES).to_numpy()


def service_edges(spans: Spans) -> pd.DataFrame:
    """One row per span whose parent is another service: ``caller``, ``callee``, the callee
    span's ``duration_ms`` (else end - start) and ``error`` (1 when error or timeout). What
    ``service_graph`` aggregates; ``obslib.spark`` computes it per trace and sums in Spark."""
    frame = _clean(spans, "spans", (*tree.REQUIRED, "service_name", "status")).spans
    parent = tree.parent_index(frame)
    child = np.flatnonzero(parent >= 0)
    caller = frame["service_name"].to_numpy()[parent[child]].astype(str)
    callee = frame["service_name"].to_numpy()[child].astype(str)
    cross = caller != callee
    if "duration_ms" in frame.columns:
        duration = frame["duration_ms"].to_numpy(dtype=float)
    else:
        duration = (tree.epoch_ns(frame["end_time"]) - tree.epoch_ns(frame["start_time"])) / 1e6
    return pd.DataFrame(
        {
            "caller": caller[cross],
            "callee": callee[cross],
            "duration_ms": duration[child][cross],
            "error": _failed(frame["status"])[child][cross].astype("int64"),
        }
    )


def service_graph(spans: Spans) -> pd.DataFrame:
    """Edges caller -> callee service, from each span whose parent is another service.

    Per edge: ``calls``, ``errors`` (callee status error or timeout), ``error_rate``, and
    the callee spans' ``p50_ms`` / ``p99_ms`` durations (``duration_ms``, else end - start).
    """
    edges = service_edges(spans)
    graph = edges.groupby(["caller", "callee"]).agg(
        calls=("duration_ms", "size"),
        errors=("error", "sum"),
        p50_ms=("duration_ms", "median"),
        p99_ms=("duration_ms", lambda d: float(np.percentile(d, 99))),
    )
    graph["errors"] = graph["errors"].astype("int64")
    graph["error_rate"] = graph["errors"] / graph["calls"]
    return graph.reset_index().sort_values(
        ["calls", "caller", "callee"], ascending=[False, True, True], ignore_index=True
    )


def critical_path_time(spans: Spans, by: list[str] | None = None) -> pd.DataFrame:
    """Critical-path milliseconds per service/operation, summed over every trace in ``spans``.

    ``share`` is each group's part of all critical-path time in the window.
    """
    keys = path_keys(by)
    frame = _clean(spans, "spans", [*tree.REQUIRED, *keys]).spans
    segments = path.critical_path_segments(frame)
    total = segments.groupby(keys, dropna=False)["duration_ms"].agg(["sum", "count"])
    total = total.rename(columns={"sum": "path_ms", "count": "sections"})
    total["traces"] = segments.groupby(keys, dropna=False)["trace_id"].nunique()
    grand = total["path_ms"].sum()
    total["share"] = total["path_ms"] / grand if grand > 0 else 0.0
    return total.sort_values("path_ms", ascending=False).reset_index()


def path_keys(by: str | list[str] | None) -> list[str]:
    """What critical-path time is grouped by: service and operation unless ``by`` says."""
    keys = list(_PATH_KEYS if by is None else [by] if isinstance(by, str) else by)
    if not keys:
        raise UsageError("by must name at least one column to group critical-path time by")
    return keys


def compare_critical_paths(
    window: Spans, baseline: Spans, by: list[str] | None = None
) -> pd.DataFrame:
    """Critical-path time per group in ``window`` against ``baseline`` (e.g. the day before).

    Per group: path ms per trace in each, their difference, and each share. Sorted by the
    largest increase per trace first: where the incident's time went. Traces left out as
    unrepairable count in neither.
    """
    keys = path_keys(by)
    clean_a = _clean(window, "window", [*tree.REQUIRED, *keys])
    clean_b = _clean(baseline, "baseline", [*tree.REQUIRED, *keys])
    a, b = critical_path_time(clean_a, keys), critical_path_time(clean_b, keys)
    n_a, n_b = clean_a.spans["trace_id"].nunique(), clean_b.spans["trace_id"].nunique()
    return path_change(a, n_a, b, n_b, keys)


def path_change(
    window: pd.DataFrame, window_traces: int, baseline: pd.DataFrame, baseline_traces: int,
    keys: list[str],
) -> pd.DataFrame:  # fmt: skip
    """``compare_critical_paths`` from two ``critical_path_time`` results and the number of
    traces each used (``obslib.spark`` computes those apart, then compares the same way)."""
    n_a, n_b = max(int(window_traces), 1), max(int(baseline_traces), 1)
    a = window.assign(per_trace_ms=window["path_ms"] / n_a)[[*keys, "per_trace_ms", "share"]]
    b = baseline.assign(per_trace_ms=baseline["path_ms"] / n_b)[[*keys, "per_trace_ms", "share"]]
    both = a.merge(b, on=keys, how="outer", suffixes=("", "_baseline")).fillna(
        {"per_trace_ms": 0.0, "share": 0.0, "per_trace_ms_baseline": 0.0, "share_baseline": 0.0}
    )
    both["delta_ms"] = both["per_trace_ms"] - both["per_trace_ms_baseline"]
    order = [False] + [True] * len(keys)  # ties by key: the same order on every engine
    return both.sort_values(["delta_ms", *keys], ascending=order, ignore_index=True)


def compare_to_cohort(trace: pd.DataFrame, cohort: Spans) -> CohortComparison:
    """Self time per service of one trace against traces of the same root operation.

    ``cohort`` holds many traces; the investigated trace is left out of it (it would pull
    the cohort towards itself). Per service: this trace's self time, the cohort's median and
    p90 per trace, and the excess over the median. The trace is repaired first (a trace that
    cannot be is an InputError); cohort traces that cannot be are left out.
    """
    needed = (*tree.REQUIRED, "service_name")
    schema.require_columns(trace, needed, "trace")
    if trace["trace_id"].nunique() > 1:
        raise InputError("compare_to_cohort: trace holds spans of several traces; pass one")
    own = repair.reconstruct(trace).spans
    others = _clean(cohort, "cohort", needed).spans
    if len(own):
        others = others[others["trace_id"].astype(str) != str(own["trace_id"].iloc[0])]
    mine = own.groupby("service_name", observed=True)["self_time_ms"].sum()
    per_trace = (
        others.groupby(["trace_id", "service_name"], observed=True)["self_time_ms"]
        .sum()
        .unstack(fill_value=0.0)
    )
    out = pd.DataFrame({"self_ms": mine})
    out = out.join(per_trace.median().rename("cohort_median_ms"), how="outer")
    out = out.join(per_trace.quantile(0.9).rename("cohort_p90_ms"), how="left")
    out = out.fillna(0.0)
    out["excess_ms"] = out["self_ms"] - out["cohort_median_ms"]
    out.index.name = "service_name"
    table = out.sort_values("excess_ms", ascending=False).reset_index()
    return CohortComparison(table, int(per_trace.shape[0]))


def trace_summaries(spans: Spans) -> pd.DataFrame:
    """One row per trace: root service/operation, start, duration, span and error counts
    (spans whose status is error or timeout)."""
    frame = _clean(spans, "spans", _SUMMARY_COLUMNS).spans
    root = tree.roots(frame)
    per = (
        frame.assign(failed=_failed(frame["status"]))
        .groupby("trace_id")
        .agg(
            start_time=("start_time", "min"),
            end_time=("end_time", "max"),
            spans=("span_id", "size"),
            errors=("failed", "sum"),
            services=("service_name", "nunique"),
        )
    )
    per["errors"] = per["errors"].astype("int64")
    per["duration_ms"] = (per["end_time"] - per["start_time"]) / pd.Timedelta(milliseconds=1)
    names = root.set_index("trace_id")[["service_name", "operation_name"]]
    per = per.join(
        names.rename(columns={"service_name": "root_service", "operation_name": "root_operation"})
    )
    return per.reset_index()


def sample_traces(
    spans: Spans, *, uniform: int = 20, slow_quantile: float = 0.99, seed: int = 0
) -> TraceSample:
    """A representative set to investigate: every error trace, the slowest of the rest (the
    top ``1 - slow_quantile`` of them, at least one) and a uniform random sample of the rest.

    ``reason`` says why each trace is in; ``counts`` how many of each.
    """
    if isinstance(uniform, bool) or not isinstance(uniform, (int, np.integer)) or uniform < 0:
        raise UsageError(f"uniform must be a whole number >= 0, not {uniform!r}")
    if not isinstance(slow_quantile, (int, float)) or not 0 <= slow_quantile <= 1:
        raise UsageError(f"slow_quantile must be between 0 and 1, not {slow_quantile!r}")
    order = {"error": 0, "slow": 1, "uniform": 2}
    summary = trace_summaries(spans)
    if summary.empty:
        summary["reason"] = pd.Series(dtype="str")
        return TraceSample(summary, dict.fromkeys(order, 0))
    summary["reason"] = np.where(summary["errors"] > 0, "error", "")
    clean = summary[summary["reason"] == ""]
    top = np.ceil(round(len(clean) * (1.0 - slow_quantile), 9))  # 20 x 0.05 is 1, not 1.0000001
    slow_count = max(1, int(top)) if len(clean) else 0
    summary.loc[clean.nlargest(slow_count, "duration_ms").index, "reason"] = "slow"
    rest = summary[summary["reason"] == ""]
    picked = rest.sample(n=min(int(uniform), len(rest)), random_state=seed).index
    summary.loc[picked, "reason"] = "uniform"
    chosen = summary[summary["reason"] != ""].copy()
    chosen = chosen.sort_values(
        ["reason", "duration_ms"], key=lambda s: s.map(order) if s.name == "reason" else -s
    )
    counts = {k: int((chosen["reason"] == k).sum()) for k in order}
    return TraceSample(chosen.reset_index(drop=True), counts)


def default_trace(sample: TraceSample) -> str | None:
    """The trace to open when none is named: the slowest failing trace of the sample, else
    the slowest; equally slow ones by trace id. None for an empty sample."""
    pool = sample.traces
    if pool.empty:
        return None
    errors = pool[pool["reason"] == "error"]
    pool = errors if len(errors) else pool
    ranked = pool.sort_values(["duration_ms", "trace_id"], ascending=[False, True])
    return str(ranked.iloc[0]["trace_id"])


# -- one trace, rebuilt -----------------------------------------------------------------------


def trace_root(trace: pd.DataFrame) -> pd.Series:
    """The root of one rebuilt trace (``repair.reconstruct``'s spans): ``tree.roots``
    among the spans the repair left as roots (a broken cycle's span among them)."""
    schema.require_columns(trace, (*tree.REQUIRED, "is_root"), "trace")
    return tree.roots(trace[trace["is_root"]]).iloc[0]


def trace_path_time(segments: pd.DataFrame) -> pd.DataFrame:
    """Critical-path time of one trace per service and operation, from its
    ``path.critical_path_segments``: ``path_ms``, ``sections`` and ``share`` of the whole
    path, the largest first (``critical_path_time`` does this for a window of traces)."""
    schema.require_columns(segments, (*_PATH_KEYS, "duration_ms"), "segments")
    per = (
        segments.groupby(_PATH_KEYS, observed=True)["duration_ms"]
        .agg(["sum", "size"])
        .rename(columns={"sum": "path_ms", "size": "sections"})
        .sort_values("path_ms", ascending=False)
        .reset_index()
    )
    total = per["path_ms"].sum()
    per["share"] = per["path_ms"] / total if total > 0 else 0.0
    return per


def trace_overview(trace: pd.DataFrame, segments: pd.DataFrame) -> TraceOverview:
    """One rebuilt trace (``repair.reconstruct``'s spans) at a glance, with its critical
    path's sections (``path.critical_path_segments``) for where its time went."""
    schema.require_columns(trace, (*_SUMMARY_COLUMNS, "is_root"), "trace")
    schema.require_columns(segments, ("service_name", "duration_ms"), "segments")
    root = trace_root(trace)
    top = segments.groupby("service_name")["duration_ms"].sum()
    first = trace["start_time"].min()
    return TraceOverview(
        root_service=root["service_name"],
        root_operation=root["operation_name"],
        start=first,
        duration_ms=(trace["end_time"].max() - first) / pd.Timedelta(milliseconds=1),
        spans=len(trace),
        services=trace["service_name"].nunique(),
        errors=int((trace["status"] != "ok").sum()),
        path_mostly_in=top.idxmax() if len(top) else "",
    )


def cohort_trace_ids(spans: pd.DataFrame, limit: int = COHORT_SIZE) -> list[str]:
    """The traces a trace is compared with: the first ``limit`` traces (in the frame's
    order) with a root span in ``spans`` (no parent id, or an empty one: OpenTelemetry's
    root). ``spans`` are those of the trace's root service and operation, e.g. the day
    before; a trace whose root lies outside them is no cohort member."""
    schema.require_columns(spans, ("trace_id", "parent_span_id"), "spans")
    roots = no_parent(spans["parent_span_id"])
    return list(spans.loc[roots, "trace_id"].unique()[: int(limit)])
