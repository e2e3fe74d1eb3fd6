"""Closing the incidents a job opened once their condition has ended: the one "resolve these
incidents" step of ``obslib slo evaluate --record`` and ``obslib alerts evaluate-logs
--record``."""

from __future__ import annotations

import pandas as pd

from obslib.ingest.writer import Batch


def auto_resolve(b: Batch, incidents: pd.DataFrame, at: pd.Timestamp, by: str) -> list[str]:
    """Close ``incidents`` (their ``incident_id``s) as ``auto_resolved`` at ``at`` by ``by``
    (the job's name, stored in ``resolved_by``) within the open batch ``b``, so the closing
    lands with the rest of the job's writes or not at all. The ids asked for, in order."""
    ids = list(incidents["incident_id"])
    if ids:
        b.resolve_incidents(
            pd.DataFrame({"incident_id": ids, "resolved_at": at, "resolved_by": by})
        )
    return ids
