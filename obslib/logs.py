"""Logs <-> traces: which records belong to which span, and what else was said meanwhile."""

from __future__ import annotations

import pandas as pd

from obslib.schema import LOG_LEVELS


def logs_per_span(spans: pd.DataFrame, logs: pd.DataFrame) -> pd.DataFrame:
    """The trace's spans with how many records each logged and the worst level among them."""
    counts = logs.groupby("span_id").agg(
        log_count=("log_id", "size"),
        worst_level=("level", lambda s: max(s, key=LOG_LEVELS.index)),
    )
    out = spans[["trace_id", "span_id", "service_name", "operation_name", "status"]].merge(
        counts, left_on="span_id", right_index=True, how="left"
    )
    out["log_count"] = out["log_count"].fillna(0).astype("int64")
    return out


def span_logs(spans: pd.DataFrame, logs: pd.DataFrame) -> pd.DataFrame:
    """Each record of the trace beside the span that wrote it (service, operation, status)."""
    info = spans[["span_id", "service_name", "operation_name", "status"]].rename(
        columns={"service_name": "span_service", "status": "span_status"}
    )
    return logs.merge(info, on="span_id", how="left").sort_values("timestamp", ignore_index=True)


CONTEXT_MARGIN = pd.Timedelta(seconds=5)


def context_window(
    spans: pd.DataFrame, margin: pd.Timedelta = CONTEXT_MARGIN
) -> tuple[pd.Timestamp, pd.Timestamp, list[str]]:
    """Start, end (with a margin) and services of a trace: where to look for untraced logs."""
    start = spans["start_time"].min() - margin
    end = spans["end_time"].max() + margin
    return start, end, sorted(spans["service_name"].astype(str).unique())


def logs_per_trace(logs: pd.DataFrame) -> pd.DataFrame:
    """Records per trace id and how many are errors; untraced records are left out."""
    traced = logs[logs["trace_id"].notna()]
    return (
        traced.assign(is_error=traced["level"].isin(["error", "fatal"]))
        .groupby("trace_id")
        .agg(logs=("log_id", "size"), errors=("is_error", "sum"))
        .reset_index()
    )
