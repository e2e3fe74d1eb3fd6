"""Names in one place: tables, columns and the value lists the migrations' CHECKs enforce.

A test compares every list here with the CHECK constraints in a migrated database, so
code and schema cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from obslib.errors import InputError

SLOS = "service_level_objectives"
SLO_MEASUREMENTS = "slo_measurements"
SPANS = "distributed_traces"
ALERT_DEFINITIONS = "alert_definitions"
ALERT_INCIDENTS = "alert_incidents"
LOGS = "structured_logs"
ARCHIVED_DAYS = "archived_days"  # retention's catalog of archived days (migration 0013)
PACKED_DAYS = "packed_days"  # finished days whose indexes retain rebuilt (migration 0019)
# Tag sets spans share, each stored once (migration 0018); a span names its set in TAG_SET
# when its own ``tags`` are NULL. SPANS_TAGGED is the view that shows every span whole (its
# own tags, else its set's): what every reader of spans reads.
SPAN_TAG_SETS = "span_tag_sets"
TAG_SET = "tag_set"
SPANS_TAGGED = "distributed_traces_tagged"

# The upstream plan's five tables, plus the logs table its logging section needs, the
# archive's catalog, the spans' tag sets and the packed days. (The day partitions of spans
# and logs live in schema obslib_partitions.)
PLAN_TABLES = (SLOS, SLO_MEASUREMENTS, SPANS, ALERT_DEFINITIONS, ALERT_INCIDENTS)
TABLES = (*PLAN_TABLES, LOGS, ARCHIVED_DAYS, SPAN_TAG_SETS, PACKED_DAYS)

SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "service_name",
    "operation_name",
    "span_kind",
    "start_time",
    "end_time",
    "duration_ms",
    "status",
    "tags",
    "logs",
)

# The probability a span's trace was kept with by the collector's sampler (migration 0015; 1:
# not sampled). Stored and written, weighted by the SLI counts (``obslib.load.weights``); not
# a column of the loaders' spans frames.
SAMPLING_PROBABILITY = "sampling_probability"

SPAN_STATUSES = ("ok", "error", "timeout")
SPAN_KINDS = ("server", "client", "producer", "consumer", "internal")
SLO_TYPES = ("availability", "latency", "error_rate", "throughput")
COMPLIANCE_STATUSES = ("compliant", "at_risk", "violated")
ALERT_TYPES = ("threshold", "anomaly", "slo_violation", "log")  # log: migration 0016
SEVERITIES = ("critical", "high", "medium", "low")
INCIDENT_STATUSES = ("open", "acknowledged", "resolved", "auto_resolved")
LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")  # least to most severe
# the levels "an error log" means everywhere: error counts, log rules at level >= error,
# error rows in tables
ERROR_LEVELS = LOG_LEVELS[LOG_LEVELS.index("error") :]

# (table, column) -> allowed values, as the CHECK constraints state them
CHECKED_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    (SPANS, "status"): SPAN_STATUSES,
    (SPANS, "span_kind"): SPAN_KINDS,
    (SLOS, "slo_type"): SLO_TYPES,
    (SLO_MEASUREMENTS, "compliance_status"): COMPLIANCE_STATUSES,
    (ALERT_DEFINITIONS, "alert_type"): ALERT_TYPES,
    (ALERT_DEFINITIONS, "severity"): SEVERITIES,
    (ALERT_INCIDENTS, "status"): INCIDENT_STATUSES,
    (ALERT_INCIDENTS, "severity"): SEVERITIES,
    (LOGS, "level"): LOG_LEVELS,
}


def require_columns(frame: Any, columns: Iterable[str], what: str) -> None:
    """Refuse a frame without the columns an analysis needs, naming them (not a KeyError
    from deep inside pandas)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{what} frame lacks column(s): {', '.join(missing)}")
