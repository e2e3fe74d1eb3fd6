"""Builders for the frames tests feed the analysis: per-minute SLI counts, SLO definitions,
incidents and spans, each with the defaults most tests want and keywords for the rest.

A test names only what it is about (``minute_counts(bad={5: 50})``: 50 of minute 5's
requests fail) instead of writing a frame's every column by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from tests.ids import sid, tid

T0 = pd.Timestamp("2026-11-01 00:00", tz="UTC")
MIN = pd.Timedelta(minutes=1)


def minute_counts(
    service: str = "api",
    minutes: Iterable[int] | Mapping[int, tuple[int, int]] = range(60),
    per_minute: int = 100,
    bad: Mapping[int, int] | None = None,
    *,
    start: pd.Timestamp = T0,
    fast: int | None = None,
) -> pd.DataFrame:
    """Per-minute server-span counts (``load.slo_counts``' shape) of ``service``.

    ``minutes`` are offsets from ``start``; each has ``per_minute`` requests of which
    ``bad[m]`` fail. A mapping ``{minute: (total, ok)}`` gives each minute's counts instead.
    ``fast`` (requests under the latency threshold) equals ``ok`` unless given.
    """
    if isinstance(minutes, Mapping):
        rows = [(m, total, ok) for m, (total, ok) in minutes.items()]
    else:
        bad = bad or {}
        rows = [(m, per_minute, per_minute - bad.get(m, 0)) for m in minutes]
    return pd.DataFrame(
        {
            "service_name": service,
            "bucket": [start + m * MIN for m, _, _ in rows],
            "total": [total for _, total, _ in rows],
            "ok": [ok for _, _, ok in rows],
            "fast": [ok if fast is None else fast for _, _, ok in rows],
            "threshold": np.nan,
        }
    )


def slo_definitions(*rows: Mapping[str, Any], **overrides: Any) -> pd.DataFrame:
    """SLO definitions (``load.slos``' shape): api's 30-day 99.9 % availability SLO, changed
    by ``overrides``; several ``rows`` (each a mapping of overrides) give several SLOs."""
    base = {
        "service_name": "api",
        "slo_name": "availability",
        "slo_type": "availability",
        "target_value": 99.9,
        "measurement_window_hours": 720,
        "latency_threshold_ms": np.nan,
        "alert_threshold_percent": 90.0,
        "enabled": True,
    }
    return pd.DataFrame([{**base, **overrides, **row} for row in (rows or ({},))])


def incidents(*rows: Mapping[str, Any]) -> pd.DataFrame:
    """Incidents (``load.incidents``' shape): each row names what differs from a critical
    threshold incident of api triggered at T0 and still open."""
    base = {
        "incident_id": "INC-1",
        "alert_name": "api errors",
        "service_name": "api",
        "alert_type": "threshold",
        "severity": "critical",
        "triggered_at": T0,
        "acknowledged_at": pd.NaT,
        "resolved_at": pd.NaT,
    }
    frame = pd.DataFrame([{**base, **row} for row in rows], columns=list(base))
    for column in ("triggered_at", "acknowledged_at", "resolved_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["status"] = np.where(frame["resolved_at"].isna(), "open", "resolved")
    return frame


def span(
    trace: str,
    name: str,
    parent: str | None = None,
    *,
    service: str = "api",
    operation: str = "GET /",
    kind: str = "server",
    start: datetime | pd.Timestamp = T0,
    duration_ms: float = 5.0,
    status: str = "ok",
    **extra: Any,
) -> dict[str, Any]:
    """One span as a row: span ``sid(name)`` of trace ``tid(trace)`` under ``sid(parent)``
    (a span name stands for the same id in every trace, as span ids are unique per trace)."""
    return {
        "trace_id": tid(trace),
        "span_id": sid(name),
        "parent_span_id": None if parent is None else sid(parent),
        "service_name": service,
        "operation_name": operation,
        "span_kind": kind,
        "start_time": start,
        "end_time": start + timedelta(milliseconds=duration_ms),
        "duration_ms": duration_ms,
        "status": status,
        **extra,
    }
