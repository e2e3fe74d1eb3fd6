"""Alert definitions and incidents."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import pyarrow as pa

from obslib import schema
from obslib.load._core import _checked, _fetch, _Query, _texts, _typed, _window
from obslib.values import Moment

_ALERTS = """SELECT id, alert_name, service_name, alert_type, metric_name, condition_expression,
       severity, notification_channels, enabled, created_at, updated_at
FROM alert_definitions"""
_INCIDENTS = """SELECT i.id, i.incident_id, i.alert_id, a.alert_name, a.service_name,
       a.alert_type, i.status, i.severity, i.triggered_at, i.acknowledged_at, i.resolved_at,
       i.acknowledged_by, i.resolved_by, i.escalation_level,
       i.incident_data::text AS incident_data, a.runbook
FROM alert_incidents i LEFT JOIN alert_definitions a ON a.id = i.alert_id"""


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
    """Alert incidents triggered in ``[start, end)`` with their alert's name, service and
    runbook (the notebook ``obslib triage`` runs for it; None: the postmortem)."""
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


def _incidents_frame(table: pa.Table) -> pd.DataFrame:
    times = ("triggered_at", "acknowledged_at", "resolved_at")
    return _typed(table, times=times, json_cols=("incident_data",))
