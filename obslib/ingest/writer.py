"""Bulk writers: a batch goes to a temporary staging table, then merges in one transaction.

The merge skips rows whose natural key is already stored, so writing the same batch twice
stores it once, and a failure anywhere leaves nothing of the batch behind.
"""

from __future__ import annotations

import json
import logging

import pandas as pd
import pyarrow as pa

from obslib import db, schema
from obslib.errors import InputError

logger = logging.getLogger(__name__)

_SPAN_MERGE = """
INSERT INTO distributed_traces (
    trace_id, span_id, parent_span_id, service_name, operation_name, span_kind,
    start_time, end_time, duration_ms, status, tags, logs)
SELECT trace_id, span_id, parent_span_id, service_name, operation_name, span_kind,
       start_time, end_time, duration_ms::numeric, status, tags::jsonb, logs::jsonb
FROM obslib_stage_spans
ON CONFLICT (trace_id, span_id) DO NOTHING
"""

_REQUIRED_SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "service_name",
    "operation_name",
    "start_time",
    "end_time",
)


def write_spans(spans: pd.DataFrame, *, url: str | None = None) -> int:
    """Store spans; returns how many were new (already stored ``(trace_id, span_id)`` are kept).

    ``spans`` has the columns of ``distributed_traces``; ``parent_span_id``, ``span_kind``
    (default ``internal``), ``duration_ms`` (default end - start), ``status`` (default
    ``ok``), ``tags`` and ``logs`` may be missing.
    """
    table = spans_to_arrow(spans)
    if table.num_rows == 0:
        return 0
    with db.adbc_connection(url) as conn, conn.cursor() as cur:
        cur.adbc_ingest("obslib_stage_spans", table, mode="create", temporary=True)
        cur.execute(_SPAN_MERGE)
        inserted = cur.rowcount
        cur.execute("DROP TABLE obslib_stage_spans")
        conn.commit()
    logger.info("stored %d of %d spans", inserted, table.num_rows)
    return inserted


def spans_to_arrow(spans: pd.DataFrame) -> pa.Table:
    """Validate a spans frame and convert it to the staging table's Arrow schema.

    Raises InputError naming the column and the first offending row.
    """
    missing = [c for c in _REQUIRED_SPAN_COLUMNS if c not in spans.columns]
    if missing:
        raise InputError(f"spans frame lacks column(s): {', '.join(missing)}")
    n = len(spans)
    frame = spans.reset_index(drop=True)

    def text(col: str, *, required: bool, default: str | None = None) -> pa.Array:
        values = frame[col] if col in frame.columns else pd.Series([default] * n, dtype=object)
        arr = pa.array(values.astype(object).where(values.notna(), None), type=pa.string())
        if required:
            bad = _first_true(pd.Series(arr.is_null().to_pandas()) | (values.astype(str) == ""))
            if bad is not None:
                raise InputError(f"spans row {bad}: {col} is empty")
        return arr

    def timestamps(col: str) -> pa.Array:
        try:
            values = pd.to_datetime(frame[col], utc=True)
        except (ValueError, TypeError) as err:
            raise InputError(f"spans column {col}: not a timestamp ({err})") from err
        bad = _first_true(values.isna())
        if bad is not None:
            raise InputError(f"spans row {bad}: {col} is missing")
        return pa.array(values.dt.tz_convert("UTC").astype("datetime64[us, UTC]"))

    start, end = timestamps("start_time"), timestamps("end_time")
    negative = _first_true(pd.Series(pa.compute.less(end, start).to_pandas()))
    if negative is not None:
        raise InputError(f"spans row {negative}: end_time is before start_time")
    if "duration_ms" in frame.columns and frame["duration_ms"].notna().all():
        duration = pa.array(frame["duration_ms"].astype("float64"))
    else:
        micros = pa.compute.subtract(end.cast(pa.int64()), start.cast(pa.int64()))
        duration = pa.compute.divide(micros.cast(pa.float64()), 1000.0)

    columns = {
        "trace_id": text("trace_id", required=True),
        "span_id": text("span_id", required=True),
        "parent_span_id": text("parent_span_id", required=False),
        "service_name": text("service_name", required=True),
        "operation_name": text("operation_name", required=True),
        "span_kind": _checked(frame, "span_kind", schema.SPAN_KINDS, "internal"),
        "start_time": start,
        "end_time": end,
        "duration_ms": duration,
        "status": _checked(frame, "status", schema.SPAN_STATUSES, "ok"),
        "tags": _json(frame, "tags", "{}"),
        "logs": _json(frame, "logs", "[]"),
    }
    return pa.table(columns)


def _checked(frame: pd.DataFrame, col: str, allowed: tuple[str, ...], default: str) -> pa.Array:
    if col not in frame.columns:
        return pa.array([default] * len(frame), type=pa.string())
    values = frame[col].astype(object).where(frame[col].notna(), default).astype(str)
    bad = _first_true(~values.isin(allowed))
    if bad is not None:
        raise InputError(
            f"spans row {bad}: {col} {values.iloc[bad]!r} is not one of {', '.join(allowed)}"
        )
    return pa.array(values, type=pa.string())


def _json(frame: pd.DataFrame, col: str, empty: str) -> pa.Array:
    if col not in frame.columns:
        return pa.array([empty] * len(frame), type=pa.string())
    out = []
    for i, value in enumerate(frame[col]):
        if value is None or (isinstance(value, float) and value != value):
            out.append(empty)
        elif isinstance(value, str):
            out.append(value)
        else:
            try:
                out.append(json.dumps(value, default=str))
            except (TypeError, ValueError) as err:
                raise InputError(f"spans row {i}: {col} is not JSON-serialisable ({err})") from err
    return pa.array(out, type=pa.string())


def _first_true(mask: pd.Series) -> int | None:
    hits = mask.to_numpy().nonzero()[0]
    return int(hits[0]) if len(hits) else None
