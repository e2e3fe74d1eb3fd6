"""SLO definitions and measurements, and the span counts SLIs are made of (aggregated in
PostgreSQL: memory grows with buckets, not spans)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from obslib.load._core import _fetch, _Query, _texts, _typed, _window
from obslib.values import Moment, moment, positive_duration

_SLOS = """SELECT id, service_name, slo_name, slo_type, target_value::float8 AS target_value,
       measurement_window_hours, error_budget_percent::float8 AS error_budget_percent,
       alert_threshold_percent::float8 AS alert_threshold_percent, enabled,
       latency_threshold_ms::float8 AS latency_threshold_ms, created_at, updated_at
FROM service_level_objectives"""
_MEASUREMENTS = """SELECT m.id, m.slo_id, o.service_name, o.slo_name, o.slo_type,
       m.measurement_timestamp, m.actual_value::float8 AS actual_value,
       m.target_value::float8 AS target_value, m.compliance_status,
       m.error_budget_remaining::float8 AS error_budget_remaining,
       EXTRACT(EPOCH FROM m.measurement_period)::float8 AS measurement_period
FROM slo_measurements m JOIN service_level_objectives o ON o.id = m.slo_id"""


def slos(*, services: Iterable[str] | None = None, url: str | None = None) -> pd.DataFrame:
    """SLO definitions, by service and name."""
    q = _Query(_SLOS).where("service_name = ANY(?)", _texts(services))
    table = _fetch(q.sql(), q.params, url, order=("service_name", "slo_name"))
    return _typed(table, times=("created_at", "updated_at"))


def slo_measurements(
    start: Moment | None = None,
    end: Moment | None = None,
    *,
    services: Iterable[str] | None = None,
    slo_names: Iterable[str] | None = None,
    url: str | None = None,
) -> pd.DataFrame:
    """Recorded SLO measurements with their SLO's service and name; period as a Timedelta."""
    lo, hi = _window(start, end, required=False)
    q = _Query(_MEASUREMENTS)
    q.where("m.measurement_timestamp >= ?", lo).where("m.measurement_timestamp < ?", hi)
    q.where("o.service_name = ANY(?)", _texts(services))
    q.where("o.slo_name = ANY(?)", _texts(slo_names))
    order = ("service_name", "slo_name", "measurement_timestamp")
    table = _fetch(q.sql(), q.params, url, order=order)
    frame = _typed(table, times=("measurement_timestamp",))
    frame["measurement_period"] = pd.to_timedelta(frame["measurement_period"], unit="s")
    return frame


def _server_counts(
    start: Moment,
    end: Moment,
    *,
    by: str,
    bucket_s: float | None = None,
    services: Iterable[str] | None = None,
    thresholds: Sequence[float] = (),
    url: str | None = None,
) -> pd.DataFrame:
    """Server spans per service and ``bucket`` (every ``bucket_s`` seconds, aligned to
    2000-01-01) or ``operation_name``: ``total``, ``ok`` and one ``fast_<i>`` per latency
    threshold, all in ONE scan (a scan per threshold cost 4x at four thresholds).

    The statement's shape comes from our own arguments (which key, how many thresholds);
    every value is bound."""
    lo, hi = _window(start, end)
    params: list[object] = [lo, hi]
    if by == "bucket":
        params.append(float(bucket_s))
        key = "date_bin(make_interval(secs => $3), start_time, TIMESTAMPTZ '2000-01-01')"
    elif by == "operation_name":
        key = "operation_name"
    else:
        raise ValueError(f"no count by {by!r}")
    columns = ["service_name", key + " AS " + by, "count(*) AS total"]
    columns.append("count(*) FILTER (WHERE status = 'ok') AS ok")
    for i, threshold in enumerate(thresholds):
        params.append(float(threshold))
        columns.append(
            "count(*) FILTER (WHERE duration_ms <= $" + str(len(params)) + ") AS fast_" + str(i)
        )
    conditions = ["start_time >= $1", "start_time < $2", "span_kind = 'server'"]
    names = _texts(services)
    if names is not None:
        params.append(names)
        conditions.append("service_name = ANY($" + str(len(params)) + ")")
    sql = (
        "SELECT "
        + ", ".join(columns)
        + " FROM distributed_traces WHERE "
        + " AND ".join(conditions)
        + " GROUP BY 1, 2"
    )
    table = _fetch(sql, params, url, order=("service_name", by), planned=True)
    frame = _typed(table, times=("bucket",) if by == "bucket" else ())
    for col in frame.columns[2:]:
        frame[col] = frame[col].astype("int64")
    return frame


def _bucket_seconds(bucket: str) -> float:
    return positive_duration(bucket, "bucket").total_seconds()


def _with_fast(frame: pd.DataFrame, i: int | None) -> pd.DataFrame:
    """The counts with ``fast`` from threshold ``i`` (0 without a threshold)."""
    fast = frame["fast_" + str(i)] if i is not None else 0
    kept = [c for c in frame.columns if not c.startswith("fast_")]
    return frame[kept].assign(fast=fast).astype({"fast": "int64"})


def sli_counts(
    start: Moment,
    end: Moment,
    *,
    services: Iterable[str] | None = None,
    bucket: str = "1h",
    latency_threshold_ms: float | None = None,
    url: str | None = None,
) -> pd.DataFrame:
    """Server-span counts per service and time bucket, aggregated in PostgreSQL.

    ``ok`` counts spans with status ok (availability SLIs); ``fast`` those no slower than
    ``latency_threshold_ms`` (latency SLIs; 0 without a threshold). Memory grows with
    buckets, not spans.
    """
    thresholds = [] if latency_threshold_ms is None else [latency_threshold_ms]
    counts = _server_counts(
        start, end, by="bucket", bucket_s=_bucket_seconds(bucket), services=services,
        thresholds=thresholds, url=url,
    )  # fmt: skip
    return _with_fast(counts, 0 if thresholds else None)


def slo_counts(
    slos: pd.DataFrame,
    start: Moment,
    end: Moment,
    *,
    bucket: str = "1min",
    url: str | None = None,
) -> pd.DataFrame:
    """``sli_counts`` for every service with an SLO, once without a latency threshold and
    once per latency SLO's threshold, with a ``threshold`` column saying which (NaN: none):
    the counts ``slo.evaluate``, ``slo_status.evaluate_at`` and ``slo_replay.replay`` take.
    One scan of the spans for all of them."""
    services = sorted(set(slos["service_name"]))
    latency = slos.loc[slos["slo_type"] == "latency", "latency_threshold_ms"]
    thresholds = sorted(set(latency.dropna().astype(float)))
    counts = _server_counts(
        start, end, by="bucket", bucket_s=_bucket_seconds(bucket), services=services,
        thresholds=thresholds, url=url,
    )  # fmt: skip
    frames = [_with_fast(counts, None).assign(threshold=np.nan)]
    frames += [_with_fast(counts, i).assign(threshold=t) for i, t in enumerate(thresholds)]
    return pd.concat(frames, ignore_index=True)


def operation_counts(
    start: Moment,
    end: Moment,
    *,
    services: Iterable[str] | None = None,
    latency_threshold_ms: float | None = None,
    url: str | None = None,
) -> pd.DataFrame:
    """Server-span counts per service and operation in ``[start, end)``, aggregated in
    PostgreSQL: ``total``, ``ok`` and ``fast`` (no slower than the threshold; 0 without)."""
    thresholds = [] if latency_threshold_ms is None else [latency_threshold_ms]
    counts = _server_counts(
        start, end, by="operation_name", services=services, thresholds=thresholds, url=url
    )
    return _with_fast(counts, 0 if thresholds else None)


_SERVICES = """SELECT service_name, count(*) AS spans,
       count(*) FILTER (WHERE span_kind = 'server') AS server_spans
FROM distributed_traces"""


def services(start: Moment, end: Moment, *, url: str | None = None) -> pd.DataFrame:
    """The services seen in spans of ``[start, end)`` with their span counts."""
    lo, hi = _window(start, end)
    q = _Query(_SERVICES).where("start_time >= ?", lo).where("start_time < ?", hi)
    frame = _typed(_fetch(q.sql(group_by="1"), q.params, url, order=("service_name",)))
    for col in ("spans", "server_spans"):
        frame[col] = frame[col].astype("int64")
    return frame


def data_range(*, url: str | None = None) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The start times of the first and the latest stored span (None for an empty table):
    where the data begins, and "now" for data that stopped arriving, like the demo's."""
    table = _fetch(
        "SELECT min(start_time) AS first, max(start_time) AS last FROM distributed_traces",
        [],
        url,
        order=(),
        small=True,
    )
    first, last = table.column("first")[0].as_py(), table.column("last")[0].as_py()
    if first is None:
        return None
    return pd.Timestamp(first).tz_convert("UTC"), pd.Timestamp(last).tz_convert("UTC")


def data_end(
    end: Moment | None = None, *, url: str | None = None, name: str = "end"
) -> pd.Timestamp:
    """The instant a report or an evaluation ends at: ``end`` as given, else the minute after
    the latest stored span's start (the end of its minute, so the half-open window ending
    there holds it: the end of the data, "now" on a live system, the demo's end on the demo;
    the current minute for an empty table)."""
    if end is not None and str(end).strip():
        return moment(end, name)
    stored = data_range(url=url)
    if stored is None:
        return pd.Timestamp.now(tz="UTC").floor("min")
    return stored[1].floor("min") + pd.Timedelta(minutes=1)


def enabled_slos(services: list[str] | None = None, *, url: str | None = None) -> pd.DataFrame:
    """The enabled SLO definitions, of ``services`` when given (empty or None: all)."""
    frame = slos(services=services or None, url=url)
    return frame[frame["enabled"].fillna(True).astype(bool)].reset_index(drop=True)
