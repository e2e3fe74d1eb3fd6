"""Clock-skew adjustment by Jaeger's rule, reported span by span, never silent.

A child from another host that starts before or ends after its parent is moved into it:
centred when it is shorter (network latency split evenly between request and response),
aligned to the parent's start when it is longer and starts early. Spans on the same host as
their parent inherit its shift. Shifts larger than ``max_skew_ms`` are not applied (and are
reported as such). The stored data is untouched: this returns an adjusted copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from obslib import schema, traces
from obslib.errors import UsageError


@dataclass(frozen=True)
class SkewAdjustment:
    """The adjusted spans and one report row per host switch that needed a shift."""

    spans: pd.DataFrame
    adjustments: pd.DataFrame  # span_id, service_name, host, parent_host, delta_ms, applied


def host_of(spans: pd.DataFrame) -> np.ndarray:
    """Each span's host: its ``host.name`` tag (tags as dicts or JSON text), else its service
    (one clock per service)."""
    services = spans["service_name"].astype(str).to_numpy() if "service_name" in spans else None
    hosts = np.empty(len(spans), dtype=object)
    tags = spans["tags"] if "tags" in spans.columns else [None] * len(spans)
    for i, t in enumerate(tags):
        host = traces.tag_dict(t).get("host.name")
        hosts[i] = host if host else (services[i] if services is not None else "")
    return hosts


def check_max_skew_ms(value: object) -> float:
    """``value`` if it is a number >= 0 (inf allowed: no limit); a UsageError otherwise.
    Callers that load data first check it up front with this, the adjuster checks it too."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise UsageError(f"max_skew_ms must be a number >= 0, not {value!r}")  # NaN fails too
    return float(value)


def adjust_clock_skew(
    spans: pd.DataFrame, *, max_skew_ms: float = 1000.0, enabled: bool = True
) -> SkewAdjustment:
    """Shift spans from skewed hosts into their parents (Jaeger's adjuster), with a report."""
    schema.require_columns(spans, traces.REQUIRED, "spans")
    check_max_skew_ms(max_skew_ms)
    columns = ["span_id", "service_name", "host", "parent_host", "delta_ms", "applied"]
    frame = spans.reset_index(drop=True).copy()
    empty = pd.DataFrame(
        {
            c: pd.Series(dtype=t)
            for c, t in zip(columns, ["str", "str", "str", "str", "float64", "bool"], strict=True)
        }
    )
    if not enabled or frame.empty:
        return SkewAdjustment(frame, empty)
    rebuilt = traces.reconstruct(frame).spans  # depth, roots; duplicates already gone
    parent = traces.parent_index(rebuilt)
    parent = np.where(rebuilt["is_root"].to_numpy(), -1, parent)
    start = traces.epoch_ns(rebuilt["start_time"])
    end = traces.epoch_ns(rebuilt["end_time"])
    host = host_of(rebuilt)
    depth = rebuilt["depth"].to_numpy()
    delta = np.zeros(len(rebuilt), dtype=np.int64)
    computed = np.zeros(len(rebuilt), dtype=np.int64)
    switched = np.zeros(len(rebuilt), dtype=bool)
    applied = np.zeros(len(rebuilt), dtype=bool)
    limit = np.iinfo(np.int64).max if max_skew_ms == float("inf") else int(max_skew_ms * 1e6)
    for d in range(1, int(depth.max()) + 1 if len(depth) else 1):
        rows = np.flatnonzero((depth == d) & (parent >= 0))
        p = parent[rows]
        p_start, p_end = start[p] + delta[p], end[p] + delta[p]
        c_start, c_end = start[rows], end[rows]
        other = host[rows] != host[p]
        shift = _jaeger_skew(c_start, c_end, p_start, p_end)
        ok = np.abs(shift) <= limit
        own = other & (shift != 0)
        delta[rows] = np.where(other, np.where(ok, shift, 0), delta[p])
        computed[rows] = np.where(own, shift, 0)
        switched[rows] = own
        applied[rows] = own & ok
    out = rebuilt[frame.columns].copy()
    out["start_time"] = traces.from_epoch_ns(start + delta, frame["start_time"]).to_numpy()
    out["end_time"] = traces.from_epoch_ns(end + delta, frame["end_time"]).to_numpy()
    rows = np.flatnonzero(switched)
    report = pd.DataFrame(
        {
            "span_id": rebuilt["span_id"].to_numpy()[rows].astype(str),
            "service_name": (
                rebuilt["service_name"].to_numpy()[rows].astype(str)
                if "service_name" in rebuilt.columns
                else np.full(len(rows), "", dtype=object)
            ),
            "host": host[rows].astype(str),
            "parent_host": host[parent[rows]].astype(str),
            "delta_ms": computed[rows] / 1e6,
            "applied": applied[rows],
        }
    )
    return SkewAdjustment(
        out,
        report.astype(
            {"span_id": "str", "service_name": "str", "host": "str", "parent_host": "str"}
        ),
    )


def _jaeger_skew(c_start, c_end, p_start, p_end) -> np.ndarray:
    """The shift (ns) Jaeger's adjuster computes for a child from another host."""
    c_len, p_len = c_end - c_start, p_end - p_start
    fits = (c_start >= p_start) & (c_end <= p_end)
    centred = p_start + (p_len - c_len) // 2 - c_start
    longer = np.where(c_start < p_start, p_start - c_start, 0)
    return np.where(c_len > p_len, longer, np.where(fits, 0, centred))
