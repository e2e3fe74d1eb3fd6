"""Shared setup for the alert tests: incident frames built from hand-written rows."""

from __future__ import annotations

import pandas as pd


def incident_frame(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (id, alert_name, service, severity, triggered, resolved[, incident_data])."""
    out = []
    for row in rows:
        iid, name, service, severity, fired, resolved, *data = row
        out.append(
            {
                "incident_id": iid,
                "alert_name": name,
                "service_name": service,
                "alert_type": "threshold",
                "status": "open" if pd.isna(resolved) else "resolved",
                "severity": severity,
                "triggered_at": fired,
                "resolved_at": resolved,
                "incident_data": data[0] if data else {},
            }
        )
    frame = pd.DataFrame(out)
    for column in ("triggered_at", "resolved_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame
