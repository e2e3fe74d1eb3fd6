"""Logs <-> traces: which records belong to which span, what else was said meanwhile, and
which error messages a window repeated most."""

from __future__ import annotations

import pandas as pd

from obslib.errors import InputError
from obslib.schema import LOG_LEVELS, require_columns


def logs_per_span(spans: pd.DataFrame, logs: pd.DataFrame) -> pd.DataFrame:
    """The trace's spans with how many records each logged and the worst level among them."""
    require_columns(
        spans, ("trace_id", "span_id", "service_name", "operation_name", "status"), "spans"
    )
    require_columns(logs, ("span_id", "log_id", "level"), "logs")
    unknown = sorted(set(logs["level"].dropna().astype(str)) - set(LOG_LEVELS))
    if unknown:
        raise InputError(
            f"logs column level holds {unknown[0]!r}, not one of {', '.join(LOG_LEVELS)}"
        )
    rank = logs["level"].map({level: i for i, level in enumerate(LOG_LEVELS)})
    counts = (
        logs.assign(rank=rank)
        .groupby("span_id")
        .agg(log_count=("log_id", "size"), worst=("rank", "max"))
    )
    counts["worst_level"] = counts.pop("worst").map(dict(enumerate(LOG_LEVELS)))
    out = spans[["trace_id", "span_id", "service_name", "operation_name", "status"]].merge(
        counts, left_on="span_id", right_index=True, how="left"
    )
    out["log_count"] = out["log_count"].fillna(0).astype("int64")
    return out


def span_logs(spans: pd.DataFrame, logs: pd.DataFrame) -> pd.DataFrame:
    """Each record of the trace beside the span that wrote it (service, operation, status)."""
    require_columns(spans, ("span_id", "service_name", "operation_name", "status"), "spans")
    require_columns(logs, ("span_id", "timestamp"), "logs")
    info = spans[["span_id", "service_name", "operation_name", "status"]].rename(
        columns={"service_name": "span_service", "status": "span_status"}
    )
    return logs.merge(info, on="span_id", how="left").sort_values("timestamp", ignore_index=True)


CONTEXT_MARGIN = pd.Timedelta(seconds=5)


def context_window(
    spans: pd.DataFrame, margin: pd.Timedelta = CONTEXT_MARGIN
) -> tuple[pd.Timestamp, pd.Timestamp, list[str]]:
    """Start, end (with a margin) and services of a trace: where to look for untraced logs."""
    require_columns(spans, ("start_time", "end_time", "service_name"), "spans")
    start = spans["start_time"].min() - margin
    end = spans["end_time"].max() + margin
    return start, end, sorted(spans["service_name"].astype(str).unique())
