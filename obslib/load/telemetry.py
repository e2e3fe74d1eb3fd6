"""Spans, one trace and log records."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from obslib import schema
from obslib.errors import UsageError
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
    q = _Query(select + "\nFROM " + schema.SPANS_TAGGED)
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
    # in time slices, one snapshot (``_fetch``'s ``split``): each slice reads its own day
    # partitions and is sorted while the next streams in (bench/load.py --baseline)
    split = ("start_time", lo, hi)
    table = _hot_and_cold(
        "spans", lo, hi, lambda: _fetch(q.sql(), q.params, url, order=order, split=split),
        where, order, tag_columns, archive, url,
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
    wanted = str(trace_id)
    order = ("start_time", "span_id")
    where = _archive.condition(("start_time", None, None), equal=[("trace_id", wanted)])
    try:
        # one statement: the hot rows and the archive's catalog in one snapshot, one round trip
        both = _fetch(_TRACE, (wanted,), url, order=order, small=True)
    except UsageError:  # no catalog (before migration 0013), or no schema at all
        q = _Query(_SPANS + "\nFROM " + schema.SPANS_TAGGED).where("trace_id = ?", wanted)
        table = _hot_and_cold(
            "spans", None, None, lambda: _fetch(q.sql(), q.params, url, order=order, small=True),
            where, order, (), archive, url,
        )  # fmt: skip
        return _spans_frame(table, json)
    catalog = next((v for v in both["obslib_cold"].to_pylist() if v is not None), None)
    rows = both.filter(pc.is_valid(both["trace_id"])).select(list(schema.SPAN_COLUMNS))
    days = _archive.days_with_trace(
        _archive.days_from_json("spans", catalog, archive=archive), wanted
    )
    extra = _archive.read_days(days, where) if days else None
    if extra is not None and extra.num_rows:
        extra = extra.select(rows.column_names).cast(rows.schema)
        rows = _sorted(pa.concat_tables([rows, extra]), order)
    return _spans_frame(rows, json)


# One trace's spans with the archive's catalog (``archive.catalog_json``) riding on the first
# row, or on the only row, all its span columns NULL, when PostgreSQL holds none of the trace.
_TRACE = f"""SELECT s.trace_id, s.span_id, s.parent_span_id, s.service_name, s.operation_name,
       s.span_kind, s.start_time, s.end_time, s.duration_ms, s.status, s.tags, s.logs,
       CASE WHEN s.n IS NULL OR s.n = 1 THEN c.cold END AS obslib_cold
FROM ({_archive.catalog_json("spans")}) AS c (cold)
LEFT JOIN LATERAL ({_SPANS}, row_number() OVER () AS n
    FROM {schema.SPANS_TAGGED} WHERE trace_id = $1) AS s ON true"""


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
# ``_window_roots`` is the same rule in pandas, for archived days.
_WINDOW_ROOTS = """WITH w AS MATERIALIZED (
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
    SELECT trace_id, min(start_time) AS start_time, max(end_time) AS last_end
    FROM w GROUP BY trace_id
)"""
_TRACE_ROOTS = (
    _WINDOW_ROOTS
    + """
SELECT root.trace_id, root.service_name, root.operation_name, extent.start_time,
       (extract(epoch FROM extent.last_end - extent.start_time) * 1000)::float8 AS duration_ms
FROM root JOIN extent USING (trace_id)"""
)
# With archived days: every trace of the hot spans, rooted or not, and its last span end, to
# be merged with the archived days' own (``_roots_across``).
_TRACE_PARTS = (
    _WINDOW_ROOTS
    + """
SELECT extent.trace_id, root.trace_id IS NOT NULL AS rooted, root.service_name,
       root.operation_name, extent.start_time, extent.last_end
FROM extent LEFT JOIN root USING (trace_id)"""
)
_ROOT_SPANS = """SELECT trace_id, span_id, parent_span_id, service_name, operation_name,
       start_time, end_time
FROM distributed_traces"""
_SPAN_COLUMNS = ("trace_id", "span_id", "parent_span_id", "service_name", "operation_name",
                 "start_time", "end_time")  # fmt: skip
_PART_COLUMNS = ("trace_id", "rooted", "service_name", "operation_name", "start_time", "last_end")


def trace_roots(
    start: Moment, end: Moment, *, url: str | None = None, archive: str | Path | None = None
) -> pd.DataFrame:
    """One row per trace among the spans that start in ``[start, end)``: its root's
    ``service_name`` and ``operation_name`` (``obslib.traces.tree.roots``' rule, in SQL),
    its first ``start_time`` and its span extent ``duration_ms`` (first span start to last
    span end, as ``obslib.traces.trace_summaries`` measures a trace); by trace id.

    A trace the window cuts counts with the spans inside it. A trace whose every span has
    a parent in the window (a cycle) has no root and no row. Archived days count as if
    they were still in PostgreSQL (see ``_roots_across``).
    """
    lo, hi = _window(start, end)

    def read(days: list[_archive.ColdDay]) -> pa.Table:
        if not days:
            return _fetch(_TRACE_ROOTS, [lo, hi], url, order=("trace_id",))
        parts = _typed(
            _fetch(_TRACE_PARTS, [lo, hi], url, order=("trace_id",)),
            times=("start_time", "last_end"),
        )
        return _roots_across(parts, days, lo, hi, url)

    table, _ = _archive.consistent("spans", lo, hi, read, archive=archive, url=url)
    return _typed(table, times=("start_time",))


def _roots_across(hot: pd.DataFrame, days, lo, hi, url) -> pa.Table:
    """``_TRACE_ROOTS`` over the hot spans and those of the archived ``days``.

    Each day (and the hot rows) gives each of its traces' extent and root on its own, one
    day in memory at a time. A trace found in one of them only is done; one found in
    several (it crossed midnight) is taken again from all of its spans in the window, where
    a span whose parent is in another day is no root."""
    where = _archive.condition(("start_time", lo, hi))
    parts = [hot[list(_PART_COLUMNS)]]
    for rows in _archive.each_day(days, _SPAN_COLUMNS, where):
        parts.append(_window_roots(_typed(rows, times=("start_time", "end_time"))))
    merged = pd.concat(parts, ignore_index=True)
    shared = merged["trace_id"].duplicated(keep=False)
    whole = merged[~shared]
    crossing = sorted(set(merged.loc[shared, "trace_id"]))
    if crossing:
        q = _Query(_ROOT_SPANS).where("start_time >= ?", lo).where("start_time < ?", hi)
        q.where("trace_id = ANY(?)", crossing)
        spans = [_fetch(q.sql(), q.params, url, order=("trace_id",))]
        where = _archive.condition(("start_time", lo, hi), [("trace_id", crossing)])
        spans += list(_archive.each_day(days, _SPAN_COLUMNS, where))
        rows = pa.concat_tables([t.cast(spans[0].schema) for t in spans])
        again = _window_roots(_typed(rows, times=("start_time", "end_time")))
        whole = pd.concat([whole, again], ignore_index=True)
    whole = whole[whole["rooted"].astype(bool)]
    # extract(epoch ...) * 1000 is exact in numeric, then rounded once to float8: the
    # microseconds (exact as a float) divided by 1000 round the same way
    micros = (whole["last_end"] - whole["start_time"]) / pd.Timedelta(microseconds=1)
    out = pa.table(
        {
            "trace_id": pa.array(whole["trace_id"], pa.string()),
            "service_name": pa.array(whole["service_name"], pa.string()),
            "operation_name": pa.array(whole["operation_name"], pa.string()),
            "start_time": pa.array(whole["start_time"], pa.timestamp("us", tz="UTC")),
            "duration_ms": pa.array(micros / 1000.0, pa.float64()),
        }
    )
    return _sorted(out, ("trace_id",))


def _window_roots(rows: pd.DataFrame) -> pd.DataFrame:
    """``_WINDOW_ROOTS`` over these spans: per trace, ``rooted`` and its root's service and
    operation (no parent among ``rows``: none, empty, its own id, or one ``rows`` lack; the
    earliest, ties by span id), its first ``start_time`` and ``last_end``."""
    parent = rows["parent_span_id"]
    top = (parent.isna() | (parent == "") | (parent == rows["span_id"])).to_numpy(bool)
    ids = pd.MultiIndex.from_arrays([rows["trace_id"], rows["span_id"]])
    up = pd.MultiIndex.from_arrays([rows["trace_id"], parent])
    candidates = rows[top | ~up.isin(ids)]
    roots = candidates.sort_values(["trace_id", "start_time", "span_id"], kind="stable")
    roots = roots.drop_duplicates("trace_id").set_index("trace_id")
    extent = rows.groupby("trace_id", sort=False).agg(
        start_time=("start_time", "min"), last_end=("end_time", "max")
    )
    out = extent.join(roots[["service_name", "operation_name"]], how="left")
    out["rooted"] = out.index.isin(roots.index)
    return out.reset_index()[list(_PART_COLUMNS)]
