"""Which alerts belong together: related alerts (named, same service, caller or callee in
the service graph), correlation groups within a window and their summary, outages (the
related pages that overlap in time: one problem) and duplicates.

Pure functions on ``load.incidents`` frames and a service graph (``traces.sets.service_graph``:
``caller``, ``callee``); no I/O.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from obslib.alerts import incidents as incident_facts
from obslib.alerts._common import REQUIRED, checked_incidents
from obslib.errors import InputError
from obslib.schema import require_columns

CORRELATION_WINDOW = pd.Timedelta(minutes=15)
RELATIONS = ("named related", "same service", "calls", "called by")  # precedence order


def _named(data: object) -> set[str]:
    """The ids an incident's ``incident_data.related_to`` names (a string or a list)."""
    if not isinstance(data, dict):
        return set()
    named = data.get("related_to")
    if isinstance(named, str):
        return {named}
    if isinstance(named, list | tuple):
        return {str(n) for n in named}
    return set()


def _adjacency(edges: pd.DataFrame | None) -> set[tuple[str, str]]:
    """Caller -> callee pairs of the service graph (self-calls dropped)."""
    if edges is None or not len(edges):
        return set()
    require_columns(edges, ("caller", "callee"), "service graph")
    return {
        (str(a), str(b)) for a, b in zip(edges["caller"], edges["callee"], strict=True) if a != b
    }


def _relation(this: dict, other: dict, calls: set[tuple[str, str]]) -> str | None:
    """How ``other`` relates to ``this`` regardless of time, in ``RELATIONS`` precedence:
    named (either incident names the other), same service, this service calls the other's
    ("calls <svc>"), the other's calls this one ("called by <svc>")."""
    if other["incident_id"] in _named(this.get("incident_data")) or this["incident_id"] in _named(
        other.get("incident_data")
    ):
        return "named related"
    if incident_facts.missing(this.get("service_name")) or incident_facts.missing(
        other.get("service_name")
    ):
        return None  # an incident whose alert is gone has no service to relate by
    mine, theirs = str(this["service_name"]), str(other["service_name"])
    if mine == theirs:
        return "same service"
    if (mine, theirs) in calls:
        return f"calls {theirs}"
    if (theirs, mine) in calls:
        return f"called by {theirs}"
    return None


def related_alerts(
    incidents: pd.DataFrame,
    incident_id: str,
    edges: pd.DataFrame | None,
    *,
    window: pd.Timedelta = CORRELATION_WINDOW,
) -> pd.DataFrame:
    """The plan's FindRelatedAlerts for one incident: the others triggered within ``window``
    of it (either side, both ends included) on the same service or one adjacent in the
    service graph (either direction), plus any that names it in ``incident_data.related_to``
    (or that it names), at any time. ``relation`` says which (the first that holds, in
    ``RELATIONS`` order); ``offset`` is their triggered - this one's."""
    frame = checked_incidents(incidents)
    hits = frame.index[frame["incident_id"] == incident_id]
    if not len(hits):
        raise InputError(f"incidents: no incident {incident_id!r}")
    this = frame.loc[hits[0]].to_dict()
    calls = _adjacency(edges)
    keep, relations = [], []
    for at, other in zip(frame.index, frame.to_dict("records"), strict=True):
        if other["incident_id"] == incident_id:
            continue
        relation = _relation(this, other, calls)
        close = abs(other["triggered_at"] - this["triggered_at"]) <= window
        if relation == "named related" or (relation is not None and close):
            keep.append(at)
            relations.append(relation)
    columns = [c for c in (*REQUIRED, "severity", "status") if c in frame.columns]
    out = frame.loc[keep, columns]  # a selection keeps the dtypes, even when empty
    out["relation"] = pd.Series(relations, index=out.index, dtype=object)
    out["offset"] = out["triggered_at"] - this["triggered_at"]
    return out.reset_index(drop=True)


def correlate(
    incidents: pd.DataFrame,
    edges: pd.DataFrame | None,
    *,
    window: pd.Timedelta = CORRELATION_WINDOW,
) -> pd.DataFrame:
    """ProcessAlert's grouping: incidents in trigger order each join the group of an earlier
    one it relates to (same service, adjacent in ``edges``, or named) when that earlier one is
    still active as it fires (unresolved, or resolved at or after its trigger) or fired
    within ``window`` before it; otherwise it opens a new group.

    Ties: simultaneous incidents are taken in ``incident_id`` order; an incident related to
    several groups joins the one opened first, and groups never merge afterwards (as a live
    correlator, which cannot rewrite pages already sent). Groups are numbered 1, 2, ... in
    the order they open; ``group_lead`` is the incident that opened each.
    """
    frame = checked_incidents(incidents)
    calls = _adjacency(edges)
    records = frame.to_dict("records")
    group = np.zeros(len(records), dtype="int64")
    leads: list[str] = []
    fired = frame["triggered_at"]
    resolved = frame["resolved_at"]
    for i, x in enumerate(records):
        joined = 0
        earlier = slice(0, i)
        active = resolved.iloc[earlier].isna() | (resolved.iloc[earlier] >= x["triggered_at"])
        recent = x["triggered_at"] - fired.iloc[earlier] <= window
        for j in np.flatnonzero((active | recent).to_numpy()):
            if _relation(x, records[j], calls) is not None:
                joined = group[j] if not joined else min(joined, group[j])
        if not joined:
            leads.append(x["incident_id"])
            joined = len(leads)
        group[i] = joined
    out = frame[["incident_id", "alert_name", "service_name", "triggered_at"]].copy()
    out["group"] = group
    out["group_lead"] = [leads[g - 1] for g in group]
    return out


OUTAGE_COLUMNS = ("incident_id", "outage", "outage_lead")


def outages(incidents: pd.DataFrame, edges: pd.DataFrame | None) -> pd.DataFrame:
    """The pages of one outage grouped: two incidents belong to one outage when they overlap
    in time (each fired before the other resolved; an open one has not resolved) and are
    related (same service, adjacent in the service graph ``edges``, or named in
    ``incident_data.related_to``), and outages chain through such pairs. Per incident, in
    trigger order (ties by id): ``outage`` (1, 2, ... in the order they open) and
    ``outage_lead``, the outage's first page."""
    frame = checked_incidents(incidents)
    records = frame.to_dict("records")
    calls = _adjacency(edges)
    parent = list(range(len(records)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    ends = [
        pd.Timestamp.max.tz_localize("UTC")
        if incident_facts.missing(r["resolved_at"])
        else r["resolved_at"]
        for r in records
    ]
    for i, x in enumerate(records):
        for j in range(i):
            overlap = records[j]["triggered_at"] < ends[i] and x["triggered_at"] < ends[j]
            if overlap and _relation(x, records[j], calls) is not None:
                a, b = root(i), root(j)
                parent[max(a, b)] = min(a, b)  # the earlier page leads
    roots = [root(i) for i in range(len(records))]
    number = {r: k + 1 for k, r in enumerate(dict.fromkeys(roots))}
    return pd.DataFrame(
        {
            "incident_id": frame["incident_id"],
            "outage": [number[r] for r in roots],
            "outage_lead": [records[r]["incident_id"] for r in roots],
        },
        columns=list(OUTAGE_COLUMNS),
    )


GROUP_COLUMNS = ("group", "group_lead", "incident_id", "alert_name", "service_name", "triggered_at")


def correlated_groups(groups: pd.DataFrame, *, min_alerts: int = 2) -> pd.DataFrame:
    """One row per ``correlate`` group of at least ``min_alerts`` incidents (one problem,
    several pages), in the order the groups opened: ``opened_by`` (its lead), ``alerts``
    (incidents in it), ``alert_names`` and ``services`` (each distinct name once, sorted,
    comma-separated; an incident whose alert is gone adds no name), ``first`` and ``last``
    trigger."""
    require_columns(groups, GROUP_COLUMNS, "groups")
    if min_alerts < 1:
        raise InputError(f"correlated groups: min_alerts must be at least 1, not {min_alerts}")
    summary = groups.groupby("group", sort=True).agg(
        opened_by=("group_lead", "first"),
        alerts=("incident_id", "size"),
        alert_names=("alert_name", _names),
        services=("service_name", _names),
        first=("triggered_at", "min"),
        last=("triggered_at", "max"),
    )
    return summary[summary["alerts"] >= min_alerts].reset_index(drop=True)


def _names(values: pd.Series) -> str:
    """Distinct names, sorted, comma-separated; a NULL (NaN) is no name, never "nan"."""
    return ", ".join(sorted({str(v) for v in values if not incident_facts.missing(v)}))


def duplicates(incidents: pd.DataFrame) -> pd.DataFrame:
    """Incidents of an alert that fired while an earlier incident of the same alert was still
    unresolved (resolved strictly after this one fired): ``duplicate_of`` the earliest such
    one. Simultaneous firings: the later ``incident_id`` is the duplicate."""
    frame = checked_incidents(incidents)
    rows = []
    for _, same in frame.groupby("alert_name", sort=False, observed=True):
        records = same.to_dict("records")
        for i, x in enumerate(records):
            for m in records[:i]:
                if pd.isna(m["resolved_at"]) or m["resolved_at"] > x["triggered_at"]:
                    rows.append({**_pick(x), "duplicate_of": m["incident_id"]})
                    break
    columns = ["incident_id", "alert_name", "service_name", "triggered_at", "duplicate_of"]
    out = pd.DataFrame(rows, columns=columns)
    return out.sort_values(["triggered_at", "incident_id"], ignore_index=True)


def _pick(record: dict) -> dict:
    return {k: record[k] for k in ("incident_id", "alert_name", "service_name", "triggered_at")}
