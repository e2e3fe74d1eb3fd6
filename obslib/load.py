"""PostgreSQL -> typed DataFrames: one function per question, values always bound.

Reads go through ADBC, which hands PostgreSQL's binary COPY stream to Arrow (far faster than
pandas.read_sql for 1M spans; bench/load.py), on one connection per URL kept open for the
process (``db.adbc_read``). Rows are sorted in Arrow, not by the server: for 1M spans the
server's ``ORDER BY`` (default work_mem, spilling to disk) added 1.3-2.9 s, the Arrow sort
and reorder ~0.8 s (bench/load.py --breakdown, 2 shared cores). Then one
small type layer: timestamps tz-aware UTC, NUMERIC as float64, integers as nullable Int64,
text as pandas' ``str`` dtype, JSON columns as Python objects. An empty result is an empty
frame with the same columns and dtypes.

JSON costs: parsing ``tags``/``logs`` into dicts (orjson) still costs about as much as the
read itself. ``json="text"`` keeps the JSON text (the lazy form): parse later with
``parse_json``, or extract the one tag you need in SQL with ``tag_columns``.
"""

from __future__ import annotations

import json as _json
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Literal

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from obslib import schema
from obslib.errors import ObslibError, UsageError
from obslib.storage import db
from obslib.values import Moment, duration, utc

JsonMode = Literal["dict", "text"]

_SPANS = """SELECT trace_id, span_id, parent_span_id, service_name, operation_name, span_kind,
       start_time, end_time, duration_ms::float8 AS duration_ms, status,
       tags::text AS tags, logs::text AS logs"""
_LOGS = """SELECT log_id, timestamp, level, service_name, trace_id, span_id, message,
       fields::text AS fields, error
FROM structured_logs"""
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
_ALERTS = """SELECT id, alert_name, service_name, alert_type, metric_name, condition_expression,
       severity, notification_channels, enabled, created_at, updated_at
FROM alert_definitions"""
_INCIDENTS = """SELECT i.id, i.incident_id, i.alert_id, a.alert_name, a.service_name,
       a.alert_type, i.status, i.severity, i.triggered_at, i.acknowledged_at, i.resolved_at,
       i.acknowledged_by, i.resolved_by, i.escalation_level,
       i.incident_data::text AS incident_data
FROM alert_incidents i LEFT JOIN alert_definitions a ON a.id = i.alert_id"""


class _Query:
    """A fixed SELECT plus conditions from fixed fragments; every value is a $n parameter."""

    def __init__(self, select: str) -> None:
        self.select = select
        self.conditions: list[str] = []
        self.params: list[object] = []

    def where(self, fragment: str, value: object) -> _Query:
        """``fragment`` holds one ``?`` that becomes this value's ``$n``; None adds nothing."""
        if value is not None:
            self.params.append(value)
            self.conditions.append(fragment.replace("?", "$" + str(len(self.params))))
        return self

    def sql(self, group_by: str | None = None) -> str:
        """The statement, unordered: ``_fetch`` sorts the rows in Arrow."""
        clauses = [self.select]
        if self.conditions:
            clauses.append("WHERE " + " AND ".join(self.conditions))
        if group_by:
            clauses.append("GROUP BY " + group_by)
        return "\n".join(clauses)


def spans(
    start: Moment,
    end: Moment,
    *,
    services: Iterable[str] | None = None,
    operations: Iterable[str] | None = None,
    statuses: Iterable[str] | None = None,
    kinds: Iterable[str] | None = None,
    trace_ids: Iterable[str] | None = None,
    json: JsonMode = "dict",
    tag_columns: Sequence[str] = (),
    url: str | None = None,
) -> pd.DataFrame:
    """Spans that start in ``[start, end)``, optionally narrowed; ordered by start time.

    ``tag_columns`` adds one text column per tag key (``tag:<key>``), extracted in SQL.
    """
    _json_mode(json)
    lo, hi = _window(start, end)
    select = _SPANS + "".join(
        ", tags ->> $" + str(i + 3) + " AS tag_" + str(i) for i in range(len(tag_columns))
    )
    q = _Query(select + "\nFROM distributed_traces")
    q.where("start_time >= ?", lo).where("start_time < ?", hi)
    for key in tag_columns:  # placeholders $3.. were used in the SELECT list above
        q.params.append(str(key))
    q.where("service_name = ANY(?)", _texts(services))
    q.where("operation_name = ANY(?)", _texts(operations))
    q.where("status = ANY(?)", _checked(statuses, schema.SPAN_STATUSES, "status"))
    q.where("span_kind = ANY(?)", _checked(kinds, schema.SPAN_KINDS, "span kind"))
    q.where("trace_id = ANY(?)", _texts(trace_ids))
    table = _fetch(q.sql(), q.params, url, order=("start_time", "trace_id", "span_id"))
    frame = _spans_frame(table, json)
    return frame.rename(columns={f"tag_{i}": f"tag:{k}" for i, k in enumerate(tag_columns)})


def trace(trace_id: str, *, json: JsonMode = "dict", url: str | None = None) -> pd.DataFrame:
    """All spans of one trace, by start time; an unknown id gives an empty frame."""
    _json_mode(json)
    q = _Query(_SPANS + "\nFROM distributed_traces").where("trace_id = ?", str(trace_id))
    table = _fetch(q.sql(), q.params, url, order=("start_time", "span_id"), small=True)
    return _spans_frame(table, json)


def logs(
    start: Moment | None = None,
    end: Moment | None = None,
    *,
    services: Iterable[str] | None = None,
    levels: Iterable[str] | None = None,
    trace_id: str | None = None,
    span_id: str | None = None,
    trace_ids: Iterable[str] | None = None,
    untraced: bool = False,
    json: JsonMode = "dict",
    url: str | None = None,
) -> pd.DataFrame:
    """Structured log records, by time; every filter optional.

    ``untraced=True`` keeps only records that carry no trace id (the context around a trace).
    """
    _json_mode(json)
    lo, hi = _window(start, end, required=False)
    q = _Query(_LOGS).where("timestamp >= ?", lo).where("timestamp < ?", hi)
    q.where("service_name = ANY(?)", _texts(services))
    q.where("level = ANY(?)", _checked(levels, schema.LOG_LEVELS, "log level"))
    q.where("trace_id = ?", None if trace_id is None else str(trace_id))
    q.where("span_id = ?", None if span_id is None else str(span_id))
    q.where("trace_id = ANY(?)", _texts(trace_ids))
    if untraced:
        q.conditions.append("trace_id IS NULL")
    table = _fetch(q.sql(), q.params, url, order=("timestamp", "log_id"))
    return _typed(table, times=("timestamp",), json_cols=("fields",), json=json)


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


def alert_definitions(*, url: str | None = None) -> pd.DataFrame:
    """Alert definitions; notification channels as lists."""
    frame = _typed(
        _fetch(_Query(_ALERTS).sql(), [], url, order=("alert_name",)),
        times=("created_at", "updated_at"),
    )
    frame["notification_channels"] = [
        list(v) if v is not None else [] for v in frame["notification_channels"]
    ]
    return frame


def incidents(
    start: Moment | None = None,
    end: Moment | None = None,
    *,
    statuses: Iterable[str] | None = None,
    severities: Iterable[str] | None = None,
    services: Iterable[str] | None = None,
    url: str | None = None,
) -> pd.DataFrame:
    """Alert incidents triggered in ``[start, end)`` with their alert's name and service."""
    lo, hi = _window(start, end, required=False)
    q = _Query(_INCIDENTS).where("i.triggered_at >= ?", lo).where("i.triggered_at < ?", hi)
    q.where("i.status = ANY(?)", _checked(statuses, schema.INCIDENT_STATUSES, "incident status"))
    q.where("i.severity = ANY(?)", _checked(severities, schema.SEVERITIES, "severity"))
    q.where("a.service_name = ANY(?)", _texts(services))
    order = ("triggered_at", "incident_id")
    return _incidents_frame(_fetch(q.sql(), q.params, url, order=order))


def incident(incident_id: str, *, url: str | None = None) -> pd.DataFrame:
    """One incident by its id (a one-row frame; empty when the id is unknown)."""
    q = _Query(_INCIDENTS).where("i.incident_id = ?", str(incident_id))
    return _incidents_frame(_fetch(q.sql(), q.params, url, order=("incident_id",), small=True))


_SLI_COUNTS = """SELECT service_name,
       date_bin(make_interval(secs => $3), start_time, TIMESTAMPTZ '2000-01-01') AS bucket,
       count(*) AS total,
       count(*) FILTER (WHERE status = 'ok') AS ok,
       count(*) FILTER (WHERE duration_ms <= $4) AS fast
FROM distributed_traces"""


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
    lo, hi = _window(start, end)
    try:
        seconds = duration(bucket).total_seconds()
    except ValueError as err:
        raise UsageError(f"bucket is not a duration: {bucket!r}") from err
    if seconds <= 0:
        raise UsageError(f"bucket must be positive, not {bucket!r}")
    q = _Query(_SLI_COUNTS).where("start_time >= ?", lo).where("start_time < ?", hi)
    q.params += [seconds, latency_threshold_ms]
    q.conditions.append("span_kind = 'server'")
    q.where("service_name = ANY(?)", _texts(services))
    table = _fetch(q.sql(group_by="1, 2"), q.params, url, order=("service_name", "bucket"))
    frame = _typed(table, times=("bucket",))
    for col in ("total", "ok", "fast"):
        frame[col] = frame[col].astype("int64")
    return frame


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
    the counts ``slo.evaluate``, ``slo.evaluate_at`` and ``slo_replay.replay`` take."""
    services = sorted(set(slos["service_name"]))
    thresholds = slos.loc[slos["slo_type"] == "latency", "latency_threshold_ms"]
    frames = []
    for threshold in [None, *sorted(set(thresholds.dropna().astype(float)))]:
        counts = sli_counts(
            start, end, services=services, bucket=bucket, latency_threshold_ms=threshold, url=url
        )
        frames.append(counts.assign(threshold=np.nan if threshold is None else threshold))
    return pd.concat(frames, ignore_index=True)


_OPERATION_COUNTS = """SELECT service_name, operation_name,
       count(*) AS total,
       count(*) FILTER (WHERE status = 'ok') AS ok,
       count(*) FILTER (WHERE duration_ms <= $3) AS fast
FROM distributed_traces"""


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
    lo, hi = _window(start, end)
    q = _Query(_OPERATION_COUNTS).where("start_time >= ?", lo).where("start_time < ?", hi)
    q.params.append(latency_threshold_ms)
    q.conditions.append("span_kind = 'server'")
    q.where("service_name = ANY(?)", _texts(services))
    table = _fetch(q.sql(group_by="1, 2"), q.params, url, order=("service_name", "operation_name"))
    frame = _typed(table)
    for col in ("total", "ok", "fast"):
        frame[col] = frame[col].astype("int64")
    return frame


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


def parse_json(values: pd.Series) -> pd.Series:
    """Turn a JSON-text column (the ``json="text"`` form) into Python objects."""
    return pd.Series(_json_objects(values), index=values.index, dtype=object)


def _json_objects(values: Iterable[object]) -> list[object]:
    """JSON texts as Python objects with orjson (several times faster than ``json``).

    Empty containers, most of a spans frame's ``logs``, skip the parser (a new object each);
    a missing value stays as it is; an integer past 64 bits, which orjson refuses, goes
    through ``json``.
    """
    loads = orjson.loads
    out: list[object] = []
    append = out.append
    for v in values:
        if v == "[]":
            append([])
        elif v == "{}":
            append({})
        elif isinstance(v, str):
            try:
                append(loads(v))
            except orjson.JSONDecodeError:
                append(_json.loads(v))
        else:
            append(v)
    return out


# -- the type layer -------------------------------------------------------------------------


def _fetch(
    query: str,
    params: Sequence[object],
    url: str | None,
    *,
    order: Sequence[str],
    small: bool = False,
) -> pa.Table:
    """Run a query with its values bound, on the driver's COPY path; rows sorted by ``order``.

    ADBC streams a result through COPY only for a statement without parameters; with
    parameters libpq buffers the whole result first (3x the frame's memory, measured). So
    the values are bound to session settings in a first statement, and the query reads
    them back with ``current_setting``: still bound, never pasted into SQL. The settings are
    the session's (the kept connection is autocommit): each query reads only those it set.

    ``small=True`` (one trace, one incident; text values only) binds the values to the query
    itself: buffering a few rows costs nothing, and it saves the settings statement's round
    trips, about half of such a call.
    """
    import adbc_driver_manager

    if small:
        direct = tuple(str(p) for p in params)
    elif params:
        assignments = ", ".join(
            "set_config('obslib.p" + str(i) + "', $" + str(i) + ", false)"
            for i in range(1, len(params) + 1)
        )
        settings_sql = "SELECT " + assignments
        values = tuple(map(_as_setting, params))
        query = _PLACEHOLDER.sub(lambda m: _setting_ref(params, int(m.group(1))), query)

    def read(conn) -> pa.Table:
        with conn.cursor() as cur:
            if small:
                cur.execute(query, parameters=direct or None)
                return cur.fetch_arrow_table()
            if params:
                cur.execute(settings_sql, parameters=values)
                cur.fetchall()
            # one Arrow chunk per ~1 GB rather than per 16 MB: the sort's take then reorders
            # each column in place of concatenating its chunks first (peak 2.3x -> ~2x frame)
            cur.adbc_statement.set_options(**{_BATCH_HINT: str(_BATCH_BYTES)})
            cur.execute(query)
            return cur.fetch_arrow_table()

    try:
        table = db.adbc_read(read, url)
    except adbc_driver_manager.Error as err:
        if getattr(err, "sqlstate", None) == "42P01":  # undefined_table
            raise UsageError(
                "the database has no obslib schema yet: run `obslib db up` (or `obslib demo`)"
            ) from err
        raise ObslibError(f"query failed: {db.first_line(err)}") from err
    return _sorted(table, order)


def _sorted(table: pa.Table, keys: Sequence[str]) -> pa.Table:
    """Rows ascending by ``keys`` (each key breaking the ties of those before it), nulls
    last: the order an ``ORDER BY`` of the same keys gives under the C collation (text
    compares byte-wise; the embedded server's databases are C.UTF-8).

    A result that is already in order (a table written in time order often is) is not
    copied.
    """
    if table.num_rows < 2:
        return table
    indices = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys])
    if np.array_equal(indices.to_numpy(), np.arange(table.num_rows, dtype=np.uint64)):
        return table
    if table.num_rows < _PARALLEL_TAKE_ROWS:
        return table.take(indices)
    # Gathering rows is memory-bound and Table.take does one column after another; taking
    # the columns side by side cut the reorder of 1M spans by ~30 % on 2 cores (measured).
    with ThreadPoolExecutor(max_workers=min(4, pa.cpu_count(), table.num_columns)) as pool:
        columns = list(pool.map(lambda column: column.take(indices), table.columns))
    return pa.Table.from_arrays(columns, schema=table.schema)


_PARALLEL_TAKE_ROWS = 100_000


_PLACEHOLDER = re.compile(r"\$(\d+)")
_BATCH_HINT = "adbc.postgresql.batch_size_hint_bytes"
_BATCH_BYTES = 1 << 30


def _as_setting(value: object) -> str:
    """A parameter as the text a session setting holds (lists as JSON arrays)."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return _json.dumps([str(v) for v in value])
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _setting_ref(params: Sequence[object], n: int) -> str:
    """SQL that reads parameter ``n`` back from its setting, cast to the value's type.

    Always a sub-select, which PostgreSQL runs once per query (an InitPlan): a bare
    ``current_setting(...)::timestamptz`` in a WHERE clause is evaluated, and its text
    parsed, for every row scanned (2.7 s of a 5 s read of 1M spans, measured).
    """
    value = params[n - 1]
    ref = "current_setting('obslib.p" + str(n) + "')"
    if value is None:
        return "NULL"
    if isinstance(value, list | tuple):
        return "ARRAY(SELECT jsonb_array_elements_text(" + ref + "::jsonb))"
    if isinstance(value, datetime):
        cast = "::timestamptz"
    elif isinstance(value, bool):
        cast = "::boolean"
    elif isinstance(value, int):
        cast = "::int8"
    elif isinstance(value, float):
        cast = "::float8"
    else:
        cast = ""
    return "(SELECT " + ref + cast + ")"


_INT64 = pd.Int64Dtype()
_STR = pd.StringDtype(na_value=float("nan"))  # pandas' default "str" dtype, Arrow-backed


def _typed(
    table: pa.Table,
    *,
    times: Sequence[str] = (),
    json_cols: Sequence[str] = (),
    json: JsonMode = "dict",
) -> pd.DataFrame:
    """The frame for a result, built column by column from Arrow.

    One array per column through pandas' own Arrow hooks (``__from_arrow__``), then one
    DataFrame of arrays: a frame of Series, or ``Table.to_pandas`` plus per-column fixes,
    costs ~5 ms of pandas bookkeeping, more than a one-trace query itself.
    """
    n = table.num_rows
    columns: dict[str, object] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        kind = col.type
        if name in json_cols and json == "dict":
            objects = pd.Series(_json_objects(col.to_pylist()), dtype=object)
            columns[name] = objects.to_numpy()
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            columns[name] = _STR.__from_arrow__(col)
        elif pa.types.is_integer(kind):
            columns[name] = _INT64.__from_arrow__(col.cast(pa.int64()))
        elif pa.types.is_timestamp(kind):  # timestamptz arrives as UTC instants
            unit = kind.unit if kind.unit in ("s", "ms", "us", "ns") else "us"
            columns[name] = pd.DatetimeTZDtype(unit=unit, tz="UTC").__from_arrow__(
                col.cast(pa.timestamp(unit, tz="UTC"))
            )
        else:
            series = col.to_pandas()
            columns[name] = series.array if series.dtype == object else series.to_numpy()
    for name in times:
        if not isinstance(getattr(columns[name], "dtype", None), pd.DatetimeTZDtype):
            columns[name] = pd.to_datetime(pd.Series(columns[name]), utc=True).array
    return pd.DataFrame(columns, index=pd.RangeIndex(n), copy=False)


def _json_mode(json: str) -> None:
    if json not in ("dict", "text"):
        raise UsageError(f"json must be 'dict' or 'text', not {json!r}")


def _incidents_frame(table: pa.Table) -> pd.DataFrame:
    times = ("triggered_at", "acknowledged_at", "resolved_at")
    return _typed(table, times=times, json_cols=("incident_data",))


def _spans_frame(table: pa.Table, json: JsonMode) -> pd.DataFrame:
    return _typed(table, times=("start_time", "end_time"), json_cols=("tags", "logs"), json=json)


def _window(start: Moment | None, end: Moment | None, *, required: bool = True):
    if required and (start is None or end is None):
        raise UsageError("a time window needs both start and end")
    lo = None if start is None else utc(start, "start").to_pydatetime()
    hi = None if end is None else utc(end, "end").to_pydatetime()
    if lo is not None and hi is not None and hi <= lo:
        raise UsageError(
            f"empty time window: end {hi.isoformat()} is not after start {lo.isoformat()}"
        )
    return lo, hi


def _texts(values: Iterable[str] | None) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        return [values]
    return [str(v) for v in values]


def _checked(values: Iterable[str] | None, allowed: tuple[str, ...], what: str) -> list[str] | None:
    items = _texts(values)
    if items is not None:
        unknown = [v for v in items if v not in allowed]
        if unknown:
            raise UsageError(f"unknown {what} {unknown[0]!r} (one of {', '.join(allowed)})")
    return items
