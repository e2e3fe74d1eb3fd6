"""Bulk writers: stage a batch in temporary tables with ADBC, merge it in one transaction.

The merge skips rows whose natural key is already stored (first write wins), so writing a
batch twice stores it once; any failure rolls back the whole batch. ADBC's bulk ingest is
the fastest path measured into PostgreSQL (7.5 s per 1M spans direct, 13 s staged and merged,
against 65 s for DataFrame.to_sql); staging also sidesteps its type traps (no float ->
NUMERIC, no text -> JSONB) because PostgreSQL does those casts in the merge.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from obslib import schema
from obslib.errors import InputError
from obslib.ingest.frames import BOOL, FLOAT, INT, JSON, TIME, Col, to_arrow
from obslib.storage import db

logger = logging.getLogger(__name__)

SPAN_SPEC = (
    Col("trace_id", required=True),
    Col("span_id", required=True),
    Col("parent_span_id"),
    Col("service_name", required=True),
    Col("operation_name", required=True),
    Col("span_kind", default="internal", allowed=schema.SPAN_KINDS),
    Col("start_time", TIME, required=True),
    Col("end_time", TIME, required=True),
    Col("duration_ms", FLOAT),
    Col("status", default="ok", allowed=schema.SPAN_STATUSES),
    Col("tags", JSON, default={}),
    Col("logs", JSON, default=[]),
)
LOG_SPEC = (
    Col("log_id", required=True),
    Col("timestamp", TIME, required=True),
    Col("level", required=True, allowed=schema.LOG_LEVELS),
    Col("service_name", required=True),
    Col("trace_id"),
    Col("span_id"),
    Col("message", required=True),
    Col("fields", JSON, default={}),
    Col("error"),
)
SLO_SPEC = (
    Col("service_name", required=True),
    Col("slo_name", required=True),
    Col("slo_type", required=True, allowed=schema.SLO_TYPES),
    Col("target_value", FLOAT, required=True),
    Col("measurement_window_hours", INT, default=24),
    Col("error_budget_percent", FLOAT),
    Col("alert_threshold_percent", FLOAT, default=90.0),
    Col("enabled", BOOL, default=True),
    Col("latency_threshold_ms", FLOAT),
)
MEASUREMENT_SPEC = (
    Col("service_name", required=True),
    Col("slo_name", required=True),
    Col("measurement_timestamp", TIME, required=True),
    Col("actual_value", FLOAT, required=True),
    Col("target_value", FLOAT, required=True),
    Col("compliance_status", required=True, allowed=schema.COMPLIANCE_STATUSES),
    Col("error_budget_remaining", FLOAT, default=0.0),
    Col("measurement_period_s", FLOAT, required=True),
)
ALERT_SPEC = (
    Col("alert_name", required=True),
    Col("service_name", required=True),
    Col("alert_type", required=True, allowed=schema.ALERT_TYPES),
    Col("metric_name", required=True),
    Col("condition_expression", required=True),
    Col("severity", required=True, allowed=schema.SEVERITIES),
    Col("notification_channels", JSON, default=[]),
    Col("enabled", BOOL, default=True),
)
INCIDENT_SPEC = (
    Col("incident_id", required=True),
    Col("alert_name"),
    Col("status", default="open", allowed=schema.INCIDENT_STATUSES),
    Col("severity", required=True, allowed=schema.SEVERITIES),
    Col("triggered_at", TIME, required=True),
    Col("acknowledged_at", TIME),
    Col("resolved_at", TIME),
    Col("acknowledged_by"),
    Col("resolved_by"),
    Col("escalation_level", INT, default=1),
    Col("incident_data", JSON, default={}),
)

# Merge statements: fixed text, the staging table's name is ours; no value is interpolated.
_MERGE = {
    "spans": """
        INSERT INTO distributed_traces (trace_id, span_id, parent_span_id, service_name,
            operation_name, span_kind, start_time, end_time, duration_ms, status, tags, logs)
        SELECT trace_id, span_id, parent_span_id, service_name, operation_name, span_kind,
            start_time, end_time, duration_ms::numeric, status, tags::jsonb, logs::jsonb
        FROM obslib_stage
        ON CONFLICT (trace_id, span_id) DO NOTHING""",
    "logs": """
        INSERT INTO structured_logs (log_id, timestamp, level, service_name, trace_id, span_id,
            message, fields, error)
        SELECT log_id, timestamp, level, service_name, trace_id, span_id, message,
            fields::jsonb, error
        FROM obslib_stage
        ON CONFLICT (log_id) DO NOTHING""",
    "slos": """
        INSERT INTO service_level_objectives (service_name, slo_name, slo_type, target_value,
            measurement_window_hours, error_budget_percent, alert_threshold_percent, enabled,
            latency_threshold_ms)
        SELECT service_name, slo_name, slo_type, target_value::numeric, measurement_window_hours,
            COALESCE(error_budget_percent, 100 - target_value)::numeric,
            alert_threshold_percent::numeric, enabled, latency_threshold_ms::numeric
        FROM obslib_stage
        ON CONFLICT (service_name, slo_name) DO NOTHING""",
    "slo_measurements": """
        INSERT INTO slo_measurements (slo_id, measurement_timestamp, actual_value, target_value,
            compliance_status, error_budget_remaining, measurement_period)
        SELECT o.id, m.measurement_timestamp, m.actual_value::numeric, m.target_value::numeric,
            m.compliance_status, m.error_budget_remaining::numeric,
            make_interval(secs => m.measurement_period_s)
        FROM obslib_stage m
        JOIN service_level_objectives o USING (service_name, slo_name)
        ON CONFLICT (slo_id, measurement_timestamp) DO NOTHING""",
    "alert_definitions": """
        INSERT INTO alert_definitions (alert_name, service_name, alert_type, metric_name,
            condition_expression, severity, notification_channels, enabled)
        SELECT alert_name, service_name, alert_type, metric_name, condition_expression,
            severity, ARRAY(SELECT jsonb_array_elements_text(notification_channels::jsonb)),
            enabled
        FROM obslib_stage
        ON CONFLICT (alert_name) DO NOTHING""",
    "incidents": """
        INSERT INTO alert_incidents (incident_id, alert_id, status, severity, triggered_at,
            acknowledged_at, resolved_at, acknowledged_by, resolved_by, escalation_level,
            incident_data)
        SELECT i.incident_id, a.id, i.status, i.severity, i.triggered_at, i.acknowledged_at,
            i.resolved_at, i.acknowledged_by, i.resolved_by, i.escalation_level,
            i.incident_data::jsonb
        FROM obslib_stage i
        LEFT JOIN alert_definitions a ON a.alert_name = i.alert_name
        ON CONFLICT (incident_id) DO NOTHING""",
}

# Rows whose reference does not resolve: checked before merging, so nothing is dropped silently.
_UNRESOLVED = {
    "slo_measurements": """
        SELECT m.service_name || '/' || m.slo_name FROM obslib_stage m
        LEFT JOIN service_level_objectives o USING (service_name, slo_name)
        WHERE o.id IS NULL LIMIT 1""",
    "incidents": """
        SELECT i.alert_name FROM obslib_stage i
        LEFT JOIN alert_definitions a ON a.alert_name = i.alert_name
        WHERE i.alert_name IS NOT NULL AND a.id IS NULL LIMIT 1""",
}


def _all_or_nothing(
    write: Callable[[Batch, pd.DataFrame], int],
) -> Callable[[Batch, pd.DataFrame], int]:
    """A failed write poisons its batch: later writes are refused and nothing commits, even
    when the caller catches the error and carries on."""

    @functools.wraps(write)
    def guarded(self: Batch, frame: pd.DataFrame) -> int:
        if self.failed:
            raise InputError(f"this batch already failed ({self.failed}); start a new one")
        try:
            return write(self, frame)
        except InputError as err:
            self.failed = str(err)
            raise

    return guarded


class Batch:
    """Writes of one transaction: everything in a ``with batch()`` block lands, or nothing."""

    def __init__(self, conn) -> None:
        self._conn = conn
        self.written: dict[str, int] = {}
        self.failed: str | None = None  # once a write failed, the transaction is lost

    @_all_or_nothing
    def spans(self, frame: pd.DataFrame) -> int:
        """Stage and merge spans; ``duration_ms`` defaults to end - start."""
        table = to_arrow(frame, SPAN_SPEC, "spans")
        start, end = table["start_time"], table["end_time"]
        before = pc.less(end, start).to_numpy(zero_copy_only=False)
        if before.any():
            raise InputError(
                f"spans row {int(before.nonzero()[0][0])}: end_time is before start_time"
            )
        micros = pc.subtract(end.cast(pa.int64()), start.cast(pa.int64())).cast(pa.float64())
        derived = pc.divide(micros, 1000.0)
        duration = pc.coalesce(table["duration_ms"], derived)
        table = table.set_column(
            table.schema.get_field_index("duration_ms"), "duration_ms", duration
        )
        return self._merge("spans", table)

    @_all_or_nothing
    def logs(self, frame: pd.DataFrame) -> int:
        """Stage and merge log records; ``log_id`` defaults to a hash of the record."""
        if "log_id" not in frame.columns or frame["log_id"].isna().any():
            frame = frame.copy()
            derived = _log_ids(frame)
            frame["log_id"] = (
                derived
                if "log_id" not in frame.columns
                else frame["log_id"].fillna(pd.Series(derived, index=frame.index))
            )
        if "level" in frame.columns:
            frame = frame.assign(
                level=frame["level"]
                .astype("string")
                .str.lower()
                .replace({"warning": "warn", "critical": "fatal"})
            )
        return self._merge("logs", to_arrow(frame, LOG_SPEC, "logs"))

    @_all_or_nothing
    def slos(self, frame: pd.DataFrame) -> int:
        return self._merge("slos", to_arrow(frame, SLO_SPEC, "slos"))

    @_all_or_nothing
    def slo_measurements(self, frame: pd.DataFrame) -> int:
        """Measurements name their SLO by (service_name, slo_name); the period is in seconds."""
        if "measurement_period" in frame.columns and "measurement_period_s" not in frame.columns:
            seconds = pd.to_timedelta(frame["measurement_period"]).dt.total_seconds()
            frame = frame.assign(measurement_period_s=seconds)
        return self._merge(
            "slo_measurements", to_arrow(frame, MEASUREMENT_SPEC, "slo_measurements")
        )

    @_all_or_nothing
    def alert_definitions(self, frame: pd.DataFrame) -> int:
        return self._merge("alert_definitions", to_arrow(frame, ALERT_SPEC, "alert_definitions"))

    @_all_or_nothing
    def incidents(self, frame: pd.DataFrame) -> int:
        """Incidents name their alert by ``alert_name`` (resolved to ``alert_id``)."""
        return self._merge("incidents", to_arrow(frame, INCIDENT_SPEC, "incidents"))

    def _merge(self, kind: str, table: pa.Table) -> int:
        import adbc_driver_manager

        if table.num_rows == 0:
            return 0
        # On any error the caller's batch rolls back, which also drops the staging table.
        with self._conn.cursor() as cur:
            try:
                cur.adbc_ingest("obslib_stage", table, mode="create", temporary=True)
                check = _UNRESOLVED.get(kind)
                if check:
                    cur.execute(check)
                    row = cur.fetchone()
                    if row:
                        raise InputError(f"{kind}: {row[0]!r} names no stored definition")
                cur.execute(_MERGE[kind])
                inserted = cur.rowcount
                cur.execute("DROP TABLE obslib_stage")
            except adbc_driver_manager.Error as err:
                raise InputError(
                    f"{kind}: PostgreSQL refused the batch: {db.first_line(err)}"
                ) from err
        self.written[kind] = self.written.get(kind, 0) + inserted
        logger.info("%s: %d of %d rows new", kind, inserted, table.num_rows)
        return inserted


@contextmanager
def batch(url: str | None = None) -> Iterator[Batch]:
    """One transaction for several writes: commit at the end, roll back on any error."""
    import adbc_driver_postgresql.dbapi as adbc

    with db.adbc_connection(url) as conn:
        writes = Batch(conn)
        try:
            yield writes
        except BaseException:
            conn.rollback()
            raise
        if writes.failed:  # an error was caught inside the block: nothing of it may land
            conn.rollback()
            raise InputError(f"batch rolled back: {writes.failed}")
        try:
            conn.commit()
        except adbc.Error as err:
            raise InputError(f"batch rejected by PostgreSQL: {db.first_line(err)}") from err


def write_spans(spans: pd.DataFrame, *, url: str | None = None) -> int:
    """Store spans (columns of ``distributed_traces``); returns how many were new."""
    with batch(url) as b:
        return b.spans(spans)


def write_logs(logs: pd.DataFrame, *, url: str | None = None) -> int:
    """Store structured log records; returns how many were new."""
    with batch(url) as b:
        return b.logs(logs)


def _log_ids(frame: pd.DataFrame) -> list[str]:
    """A stable id from the record's content, for sources that carry none."""
    cols = [
        c for c in ("timestamp", "service_name", "trace_id", "span_id", "message") if c in frame
    ]
    parts = frame[cols].astype(object)
    rows = parts.where(parts.notna(), "").itertuples(index=False, name=None)
    return [hashlib.sha256("\x1f".join(map(str, r)).encode()).hexdigest()[:32] for r in rows]
