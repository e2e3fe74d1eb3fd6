"""The incident frame every alert analysis starts from, checked once."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from obslib.errors import InputError
from obslib.schema import require_columns

REQUIRED = ("incident_id", "alert_name", "service_name", "triggered_at", "resolved_at")


def checked_incidents(incidents: pd.DataFrame, extra: Iterable[str] = ()) -> pd.DataFrame:
    """The incidents in time order (ties by id), refused when a column or a trigger time is
    missing or an id repeats."""
    require_columns(incidents, (*REQUIRED, *extra), "incidents")
    if incidents["triggered_at"].isna().any():
        bad = incidents.loc[incidents["triggered_at"].isna(), "incident_id"].iloc[0]
        raise InputError(f"incidents: {bad} has no triggered_at")
    if incidents["incident_id"].duplicated().any():
        bad = incidents.loc[incidents["incident_id"].duplicated(), "incident_id"].iloc[0]
        raise InputError(f"incidents: incident_id {bad} appears more than once")
    return incidents.sort_values(["triggered_at", "incident_id"], kind="stable").reset_index(
        drop=True
    )
