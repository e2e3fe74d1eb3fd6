"""Incidents as a person lists them (``obslib incidents list``), and the ids that are stored.

The list reads only what it shows: never the whole ``incident_data`` (which may carry
evidence), only the report ``obslib triage`` recorded under ``incident_data.report``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from obslib import schema
from obslib.load._core import _checked, _fetch, _Query, _texts, _typed
from obslib.values import Moment, moment

# incident_data is meant to be an object; on a string or an array `-> 'report'` is NULL, and
# so is `->> 'html'` on a report that is not an object: such a row lists with no report.
# 'infinity' holds no pandas time (the driver wraps it round to a year before Christ): blank.
_LIST = """SELECT i.incident_id, a.service_name, i.severity, i.status,
       CASE WHEN isfinite(i.triggered_at) THEN i.triggered_at END AS triggered_at,
       CASE WHEN isfinite(i.resolved_at) THEN i.resolved_at END AS resolved_at,
       i.incident_data -> 'report' ->> 'status' AS report_status,
       i.incident_data -> 'report' ->> 'html' AS report_html,
       i.incident_data -> 'report' ->> 'notebook' AS report_notebook
FROM alert_incidents i LEFT JOIN alert_definitions a ON a.id = i.alert_id"""
_IDS = "SELECT incident_id FROM alert_incidents"


def incident_list(
    since: Moment | None = None,
    *,
    statuses: Iterable[str] | None = None,
    services: Iterable[str] | None = None,
    url: str | None = None,
) -> pd.DataFrame:
    """Incidents triggered at or after ``since`` (default: all), oldest first: id, the
    alert's service, severity, status, triggered and resolved times (UTC; a time stored as
    ``infinity`` is blank), and the report triage recorded (``report_status`` done or
    failed, ``report_html``, ``report_notebook``; blank when triage never ran it).
    ``statuses`` must be schema.INCIDENT_STATUSES (UsageError naming them otherwise);
    ``services`` match the alert's service."""
    lo = None if since is None else moment(since, "since").to_pydatetime()
    q = _Query(_LIST).where("i.triggered_at >= ?", lo)
    q.where("i.status = ANY(?)", _checked(statuses, schema.INCIDENT_STATUSES, "incident status"))
    q.where("a.service_name = ANY(?)", _texts(services))
    table = _fetch(q.sql(), q.params, url, order=("triggered_at", "incident_id"))
    return _typed(table, times=("triggered_at", "resolved_at"))


def incident_ids(*, url: str | None = None) -> list[str]:
    """Every stored incident id, sorted (what an unknown id is compared with)."""
    table = _fetch(_IDS, [], url, order=("incident_id",), small=True)
    return [str(v) for v in table.column("incident_id").to_pylist() if v is not None]
