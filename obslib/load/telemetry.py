"""Spans, one trace and log records."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa

from obslib import schema
from obslib.load import archive as _archive
from obslib.load._core import (
    JsonMode,
    _checked,
    _fetch,
    _json_mode,
    _Query,
    _sorted,
    _texts,
    _typed,
    _window,
)
from obslib.values import Moment

_SPANS = """SELECT trace_id, span_id, parent_span_id, service_name, operation_name, span_kind,
       start_time, end_time, duration_ms::float8 AS duration_ms, status,
       tags::text AS tags, logs::text AS logs"""
_LOGS = """SELECT log_id, timestamp, level, service_name, trace_id, span_id, message,
       fields::text AS fields, error
FROM structured_logs"""


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
    archive: str | Path | None = None,
) -> pd.DataFrame:
    """Spans that start in ``[start, end)``, optionally narrowed; ordered by start time.

    ``tag_columns`` adds one text column per tag key (``tag:<key>``), extracted in SQL.
    Days ``obslib db retain`` dropped are read from its Parquet archive (``archive``,
    default ``$OBSLIB_ARCHIVE``, else the folder it recorded), merged with the hot rows.
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
    order = ("start_time", "trace_id", "span_id")
    where = _archive.condition(
        ("start_time", lo, hi),
        [
            ("service_name", _texts(services)),
            ("operation_name", _texts(operations)),
            ("status", _texts(statuses)),
            ("span_kind", _texts(kinds)),
            ("trace_id", _texts(trace_ids)),
        ],
    )
    table = _hot_and_cold(
        "spans", lo, hi, lambda: _fetch(q.sql(), q.params, url, order=order), where, order,
        tag_columns, archive, url,
    )  # fmt: skip
    frame = _spans_frame(table, json)
    return frame.rename(columns={f"tag_{i}": f"tag:{k}" for i, k in enumerate(tag_columns)})


def trace(
    trace_id: str,
    *,
    json: JsonMode = "dict",
    url: str | None = None,
    archive: str | Path | None = None,
) -> pd.DataFrame:
    """All spans of one trace, by start time (archived days included, as ``spans`` reads
    them); an unknown id gives an empty frame."""
    _json_mode(json)
    q = _Query(_SPANS + "\nFROM distributed_traces").where("trace_id = ?", str(trace_id))
    order = ("start_time", "span_id")
    where = _archive.condition(("start_time", None, None), equal=[("trace_id", str(trace_id))])
    table = _hot_and_cold(
        "spans", None, None, lambda: _fetch(q.sql(), q.params, url, order=order, small=True),
        where, order, (), archive, url,
    )  # fmt: skip
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
    archive: str | Path | None = None,
) -> pd.DataFrame:
    """Structured log records, by time; every filter optional; archived days included (see
    ``spans``).

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
    order = ("timestamp", "log_id")
    where = _archive.condition(
        ("timestamp", lo, hi),
        [
            ("service_name", _texts(services)),
            ("level", _texts(levels)),
            ("trace_id", _texts(trace_ids)),
        ],
        equal=[
            ("trace_id", None if trace_id is None else str(trace_id)),
            ("span_id", None if span_id is None else str(span_id)),
        ],
        null="trace_id" if untraced else None,
    )
    table = _hot_and_cold(
        "logs", lo, hi, lambda: _fetch(q.sql(), q.params, url, order=order), where, order, (),
        archive, url,
    )  # fmt: skip
    return _typed(table, times=("timestamp",), json_cols=("fields",), json=json)


def _hot_and_cold(table: str, lo, hi, hot, where, order, tag_columns, archive, url) -> pa.Table:
    """The hot rows, plus those of the window's archived days (filtered alike), in order."""
    rows, cold = _archive.with_cold(
        table,
        lo,
        hi,
        hot,
        lambda days: _archive.read_days(days, where, tag_columns),
        archive=archive,
        url=url,
    )
    return _sorted(rows, order) if cold else rows


def _spans_frame(table: pa.Table, json: JsonMode) -> pd.DataFrame:
    return _typed(table, times=("start_time", "end_time"), json_cols=("tags", "logs"), json=json)


# Each trace's root and span extent among the spans that start in the window: the root is
# obslib.traces.tree.roots' rule in SQL (no parent in the window's spans: an empty parent
# id, the span's own id, or one the window lacks; the earliest such span, ties by span id).
_TRACE_ROOTS = """WITH w AS MATERIALIZED (
    SELECT trace_id, span_id, parent_span_id, service_name, operation_name, start_time,
           end_time
    FROM distributed_traces WHERE start_time >= $1 AND start_time < $2
), root AS (
    SELECT DISTINCT ON (s.trace_id) s.trace_id, s.service_name, s.operation_name
    FROM w s
    WHERE s.parent_span_id IS NULL OR s.parent_span_id = '' OR s.parent_span_id = s.span_id
       OR NOT EXISTS (
           SELECT 1 FROM w p WHERE p.trace_id = s.trace_id AND p.span_id = s.parent_span_id)
    ORDER BY s.trace_id, s.start_time, s.span_id
), extent AS (
    SELECT trace_id, min(start_time) AS start_time,
           (extract(epoch FROM max(end_time) - min(start_time)) * 1000)::float8 AS duration_ms
    FROM w GROUP BY trace_id
)
SELECT root.trace_id, root.service_name, root.operation_name, extent.start_time,
       extent.duration_ms
FROM root JOIN extent USING (trace_id)"""


def trace_roots(start: Moment, end: Moment, *, url: str | None = None) -> pd.DataFrame:
    """One row per trace among the spans that start in ``[start, end)``: its root's
    ``service_name`` and ``operation_name`` (``obslib.traces.tree.roots``' rule, in SQL),
    its first ``start_time`` and its span extent ``duration_ms`` (first span start to last
    span end, as ``obslib.traces.trace_summaries`` measures a trace); by trace id.

    A trace the window cuts counts with the spans inside it. A trace whose every span has
    a parent in the window (a cycle) has no root and no row.
    """
    lo, hi = _window(start, end)
    table = _fetch(_TRACE_ROOTS, [lo, hi], url, order=("trace_id",))
    return _typed(table, times=("start_time",))
