"""SLO definitions and measurements, and the span counts SLIs are made of (aggregated in
PostgreSQL: memory grows with buckets, not spans)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from obslib.load import archive as _archive
from obslib.load import weights
from obslib.load._core import _fetch, _Query, _sorted, _texts, _typed, _window
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
    archive: str | Path | None = None,
) -> pd.DataFrame:
    """Server spans per service and ``bucket`` (every ``bucket_s`` seconds, aligned to
    2000-01-01) or ``operation_name``: ``total``, ``ok`` and one ``fast_<i>`` per latency
    threshold, all in ONE scan (a scan per threshold cost 4x at four thresholds). Archived
    days add their own counts (``_cold_server_counts``, the same rules), summed per key.
    Each span counts by its sampling weight (``weights``: 1 unsampled, 1 / p sampled), so
    the counts are whole ``int64`` for unsampled data and ``float64`` estimates otherwise.

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
    columns = ["service_name", key + " AS " + by, weights.weighted_count_sql() + " AS total"]
    columns.append(weights.weighted_count_sql("status = 'ok'") + " AS ok")
    for i, threshold in enumerate(thresholds):
        params.append(float(threshold))
        fast = weights.weighted_count_sql("duration_ms <= $" + str(len(params)))
        columns.append(fast + " AS fast_" + str(i))
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
    order = ("service_name", by)
    where = _archive.condition(
        ("start_time", lo, hi), [("service_name", names)], equal=[("span_kind", "server")]
    )
    needed = ["service_name", "start_time" if by == "bucket" else by, "status", "duration_ms"]

    def read(days: list[_archive.ColdDay]) -> pa.Table:
        hot = _fetch(sql, params, url, order=order, planned=True)
        if not days:
            return hot
        cold = [
            _cold_server_counts(rows, by, bucket_s, thresholds).cast(hot.schema)
            for rows in _archive.each_day(days, needed, where, optional=(weights.COLUMN,))
        ]
        sums = {c: "sum" for c in hot.column_names[2:]}
        return _sorted(_archive.regroup(pa.concat_tables([hot, *cold]), order, sums), order)

    table, _ = _archive.consistent("spans", lo, hi, read, archive=archive, url=url)
    frame = _typed(table, times=("bucket",) if by == "bucket" else ())
    return weights.whole(frame, frame.columns[2:])


_ORIGIN_US = 946_684_800_000_000  # date_bin's origin, 2000-01-01 UTC, in Unix microseconds


def _cold_server_counts(
    rows: pa.Table, by: str, bucket_s: float | None, thresholds: Sequence[float]
) -> pa.Table:
    """``_server_counts``' SELECT list over archived server spans: ``date_bin``'s bucket
    (an interval of whole microseconds, as ``make_interval`` rounds it), ``status = 'ok'``
    and ``duration_ms <= threshold`` (a missing value counts in neither, as in SQL), each
    span by its sampling weight (1 in a day archived before sampling existed)."""
    if by == "bucket":
        stride = round(float(bucket_s) * 1_000_000)
        micros = rows["start_time"].cast(pa.int64()).to_numpy() - _ORIGIN_US
        binned = micros - np.mod(micros, stride) + _ORIGIN_US
        key = pa.array(binned, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    else:
        key = rows[by]
    columns = {"service_name": rows["service_name"], by: key}
    weight = weights.weights_of(rows)
    columns["total"] = weight
    columns["ok"] = _weighted(pc.equal(rows["status"], "ok"), weight)
    for i, threshold in enumerate(thresholds):
        fast = pc.less_equal(rows["duration_ms"], float(threshold))
        columns[f"fast_{i}"] = _weighted(fast, weight)
    counts = pa.table(columns)
    sums = {c: "sum" for c in counts.column_names[2:]}
    return _archive.regroup(counts, ("service_name", by), sums)


def _weighted(condition: pa.ChunkedArray, weight) -> pa.ChunkedArray:
    """The weight where a condition holds, 0 where it does not or is unknown (NULL)."""
    return pc.if_else(condition.fill_null(False), weight, 0.0)


def _bucket_seconds(bucket: str) -> float:
    return positive_duration(bucket, "bucket").total_seconds()


def _with_fast(frame: pd.DataFrame, i: int | None) -> pd.DataFrame:
    """The counts with ``fast`` from threshold ``i`` (0 without a threshold)."""
    fast = frame["fast_" + str(i)] if i is not None else 0
    kept = [c for c in frame.columns if not c.startswith("fast_")]
    return weights.whole(frame[kept].assign(fast=fast), ["fast"])


def sli_counts(
    start: Moment,
    end: Moment,
    *,
    services: Iterable[str] | None = None,
    bucket: str = "1h",
    latency_threshold_ms: float | None = None,
    url: str | None = None,
    archive: str | Path | None = None,
) -> pd.DataFrame:
    """Server-span counts per service and time bucket, aggregated in PostgreSQL (archived
    days from the archive: ``archive``, default ``$OBSLIB_ARCHIVE``, else its own folder).

    ``ok`` counts spans with status ok (availability SLIs); ``fast`` those no slower than
    ``latency_threshold_ms`` (latency SLIs; 0 without a threshold). Memory grows with
    buckets, not spans.
    """
    thresholds = [] if latency_threshold_ms is None else [latency_threshold_ms]
    counts = _server_counts(
        start, end, by="bucket", bucket_s=_bucket_seconds(bucket), services=services,
        thresholds=thresholds, url=url, archive=archive,
    )  # fmt: skip
    return _with_fast(counts, 0 if thresholds else None)


def slo_counts(
    slos: pd.DataFrame,
    start: Moment,
    end: Moment,
    *,
    bucket: str = "1min",
    url: str | None = None,
    archive: str | Path | None = None,
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
        thresholds=thresholds, url=url, archive=archive,
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
    archive: str | Path | None = None,
) -> pd.DataFrame:
    """Server-span counts per service and operation in ``[start, end)``, aggregated in
    PostgreSQL: ``total``, ``ok`` and ``fast`` (no slower than the threshold; 0 without)."""
    thresholds = [] if latency_threshold_ms is None else [latency_threshold_ms]
    counts = _server_counts(
        start, end, by="operation_name", services=services, thresholds=thresholds, url=url,
        archive=archive,
    )  # fmt: skip
    return _with_fast(counts, 0 if thresholds else None)


# ``spans`` and ``server_spans`` say how much traffic a service has (the SLO review's
# coverage shows it beside each service without an SLO): counts by sampling weight, as
# every traffic count (``weights``); which services are seen is the same either way.
_SERVICES = f"""SELECT service_name, {weights.weighted_count_sql()} AS spans,
       {weights.weighted_count_sql("span_kind = 'server'")} AS server_spans
FROM distributed_traces"""


def services(
    start: Moment, end: Moment, *, url: str | None = None, archive: str | Path | None = None
) -> pd.DataFrame:
    """The services seen in spans of ``[start, end)`` with their span counts (archived days
    counted from the archive), each span by its sampling weight (``weights``: ``int64``
    without sampling, ``float64`` estimates with it)."""
    lo, hi = _window(start, end)
    q = _Query(_SERVICES).where("start_time >= ?", lo).where("start_time < ?", hi)
    order = ("service_name",)
    where = _archive.condition(("start_time", lo, hi))

    def read(days: list[_archive.ColdDay]) -> pa.Table:
        hot = _fetch(q.sql(group_by="1"), q.params, url, order=order)
        if not days:
            return hot
        cold = [
            _cold_services(rows).cast(hot.schema)
            for rows in _archive.each_day(
                days, ("service_name", "span_kind"), where, optional=(weights.COLUMN,)
            )
        ]
        sums = {"spans": "sum", "server_spans": "sum"}
        return _sorted(_archive.regroup(pa.concat_tables([hot, *cold]), order, sums), order)

    table, _ = _archive.consistent("spans", lo, hi, read, archive=archive, url=url)
    return weights.whole(_typed(table), ("spans", "server_spans"))


def _cold_services(rows: pa.Table) -> pa.Table:
    """``_SERVICES`` over archived spans: all spans, and those with ``span_kind = 'server'``,
    each by its sampling weight (1 in a day archived before sampling existed)."""
    weight = weights.weights_of(rows)
    counts = pa.table(
        {
            "service_name": rows["service_name"],
            "spans": weight,
            "server_spans": _weighted(pc.equal(rows["span_kind"], "server"), weight),
        }
    )
    return _archive.regroup(counts, ("service_name",), {"spans": "sum", "server_spans": "sum"})


# what ``stored_range`` reads per archive kind: its time column and query (constants only)
_RANGED = {
    kind: (column, f"SELECT min({column}) AS first, max({column}) AS last FROM {table}")
    for kind, table, column in (
        ("spans", "distributed_traces", "start_time"),
        ("logs", "structured_logs", "timestamp"),
    )
}


def stored_range(
    kind: str, *, url: str | None = None, archive: str | Path | None = None
) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The first and the latest time of ``kind``'s stored rows (``spans``: start times,
    ``logs``: timestamps), None for an empty table; archived days count (the first is then
    in the earliest archived day). ``data_range`` and ``log_range`` are this."""
    column, sql = _RANGED[kind]

    def read(days: list[_archive.ColdDay]) -> tuple[object, object]:
        table = _fetch(sql, [], url, order=(), small=True)
        times = [table.column("first")[0].as_py(), table.column("last")[0].as_py()]
        if days:  # days hold rows (the catalog lists no empty day) and do not overlap
            for day in {days[0], days[-1]}:
                (rows,) = _archive.each_day([day], (column,), None)
                times += [pc.min(rows[column]).as_py(), pc.max(rows[column]).as_py()]
        return times[0::2], times[1::2]

    (firsts, lasts), _ = _archive.consistent(kind, None, None, read, archive=archive, url=url)
    firsts, lasts = [t for t in firsts if t is not None], [t for t in lasts if t is not None]
    if not firsts:
        return None
    return pd.Timestamp(min(firsts)).tz_convert("UTC"), pd.Timestamp(max(lasts)).tz_convert("UTC")


def data_range(
    *, url: str | None = None, archive: str | Path | None = None
) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The start times of the first and the latest stored span (None for an empty table):
    where the data begins, and "now" for data that stopped arriving, like the demo's.
    Archived days count: the first is then in the earliest archived day."""
    return stored_range("spans", url=url, archive=archive)


def data_end(
    end: Moment | None = None,
    *,
    url: str | None = None,
    name: str = "end",
    archive: str | Path | None = None,
) -> pd.Timestamp:
    """The instant a report or an evaluation ends at: ``end`` as given, else the minute after
    the latest stored span's start (the end of its minute, so the half-open window ending
    there holds it: the end of the data, "now" on a live system, the demo's end on the demo;
    the current minute for an empty table; archived days count)."""
    if end is not None and str(end).strip():
        return moment(end, name)
    stored = data_range(url=url, archive=archive)
    if stored is None:
        return pd.Timestamp.now(tz="UTC").floor("min")
    return stored[1].floor("min") + pd.Timedelta(minutes=1)


def enabled_slos(services: list[str] | None = None, *, url: str | None = None) -> pd.DataFrame:
    """The enabled SLO definitions, of ``services`` when given (empty or None: all)."""
    frame = slos(services=services or None, url=url)
    return frame[frame["enabled"].fillna(True).astype(bool)].reset_index(drop=True)
