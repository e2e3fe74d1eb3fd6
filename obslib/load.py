"""PostgreSQL -> typed DataFrames, one function per question, values always bound.

Reads go through ADBC (Arrow) and one small type layer: timestamps tz-aware UTC,
durations float ms, JSON columns as Python objects.
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa

from obslib import db

_SPAN_SELECT = """
SELECT trace_id, span_id, parent_span_id, service_name, operation_name, span_kind,
       start_time, end_time, duration_ms::float8 AS duration_ms, status,
       tags::text AS tags, logs::text AS logs
FROM distributed_traces
"""


def trace(trace_id: str, *, url: str | None = None) -> pd.DataFrame:
    """All spans of one trace, ordered by start time; empty frame when the id is unknown."""
    query = _SPAN_SELECT + " WHERE trace_id = $1 ORDER BY start_time, span_id"
    return _spans_frame(_fetch(query, (str(trace_id),), url))


def _fetch(query: str, params: tuple, url: str | None) -> pa.Table:
    with db.adbc_connection(url) as conn, conn.cursor() as cur:
        cur.execute(query, parameters=params)
        return cur.fetch_arrow_table()


def _spans_frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    for col in (
        "trace_id",
        "span_id",
        "parent_span_id",
        "service_name",
        "operation_name",
        "span_kind",
        "status",
    ):
        frame[col] = frame[col].astype("string")
    for col in ("start_time", "end_time"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    frame["duration_ms"] = frame["duration_ms"].astype("float64")
    for col in ("tags", "logs"):
        frame[col] = [json.loads(v) if v is not None else None for v in frame[col]]
    return frame
