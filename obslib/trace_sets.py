"""Analysis across many traces: the service graph, where critical-path time goes in a
window and how that changed, a trace against its cohort, and which traces to look at.

What no single-trace viewer shows: these aggregate the per-trace functions of
``obslib.traces`` over every trace of a window.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from obslib import traces

_PATH_KEYS = ["service_name", "operation_name"]


def service_graph(spans: pd.DataFrame) -> pd.DataFrame:
    """Edges caller -> callee service, from each span whose parent is another service.

    Per edge: ``calls``, ``errors`` (callee status not ok), ``error_rate``, and the callee
    spans' ``p50_ms`` / ``p99_ms`` durations.
    """
    frame = spans.reset_index(drop=True)
    parent = traces.parent_index(frame)
    child = np.flatnonzero(parent >= 0)
    caller = frame["service_name"].to_numpy()[parent[child]].astype(str)
    callee = frame["service_name"].to_numpy()[child].astype(str)
    cross = caller != callee
    edges = pd.DataFrame(
        {
            "caller": caller[cross],
            "callee": callee[cross],
            "duration_ms": frame["duration_ms"].to_numpy()[child][cross].astype(float),
            "error": (frame["status"].to_numpy()[child][cross] != "ok"),
        }
    )
    graph = edges.groupby(["caller", "callee"]).agg(
        calls=("duration_ms", "size"),
        errors=("error", "sum"),
        p50_ms=("duration_ms", "median"),
        p99_ms=("duration_ms", lambda d: float(np.percentile(d, 99))),
    )
    graph["errors"] = graph["errors"].astype("int64")
    graph["error_rate"] = graph["errors"] / graph["calls"]
    return graph.reset_index().sort_values(
        ["calls", "caller"], ascending=[False, True], ignore_index=True
    )


def critical_path_time(spans: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Critical-path milliseconds per service/operation, summed over every trace in ``spans``.

    ``share`` is each group's part of all critical-path time in the window.
    """
    keys = by or _PATH_KEYS
    segments = traces.critical_path_segments(spans)
    total = segments.groupby(keys, dropna=False)["duration_ms"].agg(["sum", "count"])
    total = total.rename(columns={"sum": "path_ms", "count": "sections"})
    total["traces"] = segments.groupby(keys, dropna=False)["trace_id"].nunique()
    grand = total["path_ms"].sum()
    total["share"] = total["path_ms"] / grand if grand > 0 else 0.0
    return total.sort_values("path_ms", ascending=False).reset_index()


def compare_critical_paths(
    window: pd.DataFrame, baseline: pd.DataFrame, by: list[str] | None = None
) -> pd.DataFrame:
    """Critical-path time per group in ``window`` against ``baseline`` (e.g. the day before).

    Per group: path ms per trace in each, their difference, and each share. Sorted by the
    largest increase per trace first: where the incident's time went.
    """
    keys = by or _PATH_KEYS
    a, b = critical_path_time(window, keys), critical_path_time(baseline, keys)
    n_a = max(window["trace_id"].nunique(), 1)
    n_b = max(baseline["trace_id"].nunique(), 1)
    a = a.assign(per_trace_ms=a["path_ms"] / n_a)[[*keys, "per_trace_ms", "share"]]
    b = b.assign(per_trace_ms=b["path_ms"] / n_b)[[*keys, "per_trace_ms", "share"]]
    both = a.merge(b, on=keys, how="outer", suffixes=("", "_baseline")).fillna(
        {"per_trace_ms": 0.0, "share": 0.0, "per_trace_ms_baseline": 0.0, "share_baseline": 0.0}
    )
    both["delta_ms"] = both["per_trace_ms"] - both["per_trace_ms_baseline"]
    return both.sort_values("delta_ms", ascending=False, ignore_index=True)


def compare_to_cohort(trace: pd.DataFrame, cohort: pd.DataFrame) -> pd.DataFrame:
    """Self time per service of one trace against traces of the same root operation.

    ``cohort`` holds many traces (the trace itself is left out); per service: this trace's
    self time, the cohort's median and p90 per trace, and the excess over the median.
    """
    trace_id = trace["trace_id"].iloc[0] if len(trace) else None
    others = cohort[cohort["trace_id"] != trace_id]
    mine = trace.assign(self_ms=traces.self_time(trace)).groupby("service_name")["self_ms"].sum()
    per = others.assign(self_ms=traces.self_time(others))
    per_trace = per.groupby(["trace_id", "service_name"])["self_ms"].sum().unstack(fill_value=0.0)
    out = pd.DataFrame({"self_ms": mine})
    out = out.join(per_trace.median().rename("cohort_median_ms"), how="outer")
    out = out.join(per_trace.quantile(0.9).rename("cohort_p90_ms"), how="left")
    out = out.fillna(0.0)
    out["excess_ms"] = out["self_ms"] - out["cohort_median_ms"]
    out.index.name = "service_name"
    out.attrs["cohort_traces"] = int(per_trace.shape[0])
    return out.sort_values("excess_ms", ascending=False).reset_index()


def trace_summaries(spans: pd.DataFrame) -> pd.DataFrame:
    """One row per trace: root service/operation, start, duration, span and error counts."""
    frame = spans.reset_index(drop=True)
    parent = traces.parent_index(frame)
    root = frame[parent < 0].sort_values("start_time").drop_duplicates("trace_id")
    per = frame.groupby("trace_id").agg(
        start_time=("start_time", "min"),
        end_time=("end_time", "max"),
        spans=("span_id", "size"),
        errors=("status", lambda s: int((s != "ok").sum())),
        services=("service_name", "nunique"),
    )
    per["duration_ms"] = (per["end_time"] - per["start_time"]) / pd.Timedelta(milliseconds=1)
    names = root.set_index("trace_id")[["service_name", "operation_name"]]
    per = per.join(
        names.rename(columns={"service_name": "root_service", "operation_name": "root_operation"})
    )
    return per.reset_index()


def sample_traces(
    spans: pd.DataFrame, *, uniform: int = 20, slow_quantile: float = 0.99, seed: int = 0
) -> pd.DataFrame:
    """A representative set to investigate: every error trace, the slowest of the rest (the
    top ``1 - slow_quantile`` of them, at least one) and a uniform random sample of the rest.

    ``reason`` says why each trace is in; ``counts`` in ``attrs`` says how many of each.
    """
    summary = trace_summaries(spans)
    if summary.empty:
        summary["reason"] = pd.Series(dtype="str")
        summary.attrs["counts"] = {"error": 0, "slow": 0, "uniform": 0}
        return summary
    summary["reason"] = np.where(summary["errors"] > 0, "error", "")
    clean = summary[summary["reason"] == ""]
    top = np.ceil(round(len(clean) * (1.0 - slow_quantile), 9))  # 20 x 0.05 is 1, not 1.0000001
    slow_count = max(1, int(top)) if len(clean) else 0
    summary.loc[clean.nlargest(slow_count, "duration_ms").index, "reason"] = "slow"
    rest = summary[summary["reason"] == ""]
    picked = rest.sample(n=min(uniform, len(rest)), random_state=seed).index
    summary.loc[picked, "reason"] = "uniform"
    chosen = summary[summary["reason"] != ""].copy()
    order = {"error": 0, "slow": 1, "uniform": 2}
    chosen = chosen.sort_values(
        ["reason", "duration_ms"], key=lambda s: s.map(order) if s.name == "reason" else -s
    )
    chosen.attrs["counts"] = {k: int((chosen["reason"] == k).sum()) for k in order}
    return chosen.reset_index(drop=True)
