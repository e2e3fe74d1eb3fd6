"""Alert noise: false positives (and which alerts raise them), flapping, and the share of
pages that were noise; beside them, how fast the real pages came (``detection_times``) and
what a review of a window's alerts reads (``review_window``, ``review_reads``).

Pure functions on ``load.incidents`` frames and per-minute SLI counts (``load.slo_counts``);
no I/O.

**False positive, the one rule** (``FP_MARGIN``, ``FP_MIN_EVENTS``): an incident is a
false positive when it was resolved (``resolved`` or ``auto_resolved``) and no budgeted SLO
of its service breached from ``FP_MARGIN`` before it fired until its resolution, where a
breach is a 5-minute window holding at least ``FP_MIN_EVENTS`` events that burns over 1
(``incidents.first_breach``), or the whole window, with at least ``FP_MIN_EVENTS`` events,
burning over 1. One slow request of three is no evidence; a quiet service's failures,
summed over the incident, are. It is ``unknown`` while open, when its service has no
budgeted SLO, or when the window holds fewer than ``FP_MIN_EVENTS`` events of its service
(too little data is no proof either way). Otherwise it is ``real``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from obslib import slo
from obslib.alerts import incidents as incident_facts
from obslib.alerts._common import checked_incidents
from obslib.alerts.correlation import duplicates
from obslib.errors import InputError
from obslib.schema import require_columns
from obslib.values import positive_duration

FP_MARGIN = pd.Timedelta(minutes=15)  # how long before the page a breach still explains it
FP_MIN_EVENTS = slo.DEFAULT_MIN_EVENTS  # a breach on fewer events in 5 minutes is no evidence
FLAP_WINDOW = pd.Timedelta(hours=1)
RESOLVED_STATUSES = ("resolved", "auto_resolved")
VERDICTS = ("real", "false_positive", "unknown")
# How far before a review window its SLI counts reach: an incident paged at the window's
# start is judged from FP_MARGIN before its page (``false_positives``) and its timeline
# looks LOOKBACK back (``detection_times``); both rules' own 5-minute breach windows fit in
# the sum.
COUNTS_MARGIN = FP_MARGIN + incident_facts.LOOKBACK
DETECTION_COLUMNS = ("incident_id", "severity", "time_to_detect")
FP_PER_ALERT_COLUMNS = ("alert_name", "service_name", "false_positives", "first", "last")


def flapping(
    incidents: pd.DataFrame, *, window: pd.Timedelta = FLAP_WINDOW, min_firings: int = 3
) -> pd.DataFrame:
    """Episodes of an alert changing state back and forth: ``min_firings`` consecutive
    firings of one ``alert_name`` within ``window`` (first to last trigger, both ends
    included), each resolved at or before the next fired. Overlapping runs form one episode;
    a gap longer than ``window``, an overlap or an open incident ends it.

    Per episode: ``alert_name``, ``first`` and ``last`` trigger, ``firings``,
    ``median_duration`` (triggered -> resolved) and the ``incident_ids``.
    """
    if min_firings < 2:
        raise InputError(f"flapping: min_firings must be at least 2, not {min_firings}")
    frame = checked_incidents(incidents)
    rows = []
    for name, same in frame.groupby("alert_name", sort=True, observed=True):
        fired = same["triggered_at"].tolist()
        ended = same["resolved_at"].tolist()
        n = len(fired)
        chained = [pd.notna(ended[k]) and ended[k] <= fired[k + 1] for k in range(n - 1)]
        flaps = np.zeros(n, dtype=bool)
        for k in range(min_firings - 1, n):
            lo = k - min_firings + 1
            if all(chained[lo:k]) and fired[k] - fired[lo] <= window:
                flaps[lo : k + 1] = True
        start = None
        for k in range(n + 1):
            joins = (
                k < n
                and flaps[k]
                and start is not None
                and chained[k - 1]
                and fired[k] - fired[k - 1] <= window
            )
            if start is not None and not joins:
                rows.append(_episode(str(name), same.iloc[start:k]))
                start = None
            if k < n and flaps[k] and start is None:
                start = k
    columns = ["alert_name", "first", "last", "firings", "median_duration", "incident_ids"]
    return pd.DataFrame(rows, columns=columns)


def _episode(name: str, rows: pd.DataFrame) -> dict:
    return {
        "alert_name": name,
        "first": rows["triggered_at"].iloc[0],
        "last": rows["triggered_at"].iloc[-1],
        "firings": len(rows),
        "median_duration": (rows["resolved_at"] - rows["triggered_at"]).median(),
        "incident_ids": tuple(rows["incident_id"]),
    }


def false_positives(
    incidents: pd.DataFrame, counts: pd.DataFrame, slos: pd.DataFrame
) -> pd.DataFrame:
    """The module's false-positive rule per incident: ``verdict`` (``real``,
    ``false_positive`` or ``unknown``), ``first_breach`` (the earliest breach of any
    budgeted SLO of its service in the window, NaT for none) and ``reason`` in words.
    ``counts`` are per-minute ``load.slo_counts`` reaching 5 minutes before
    ``triggered_at - FP_MARGIN``; ``slos`` the SLO definitions."""
    frame = checked_incidents(incidents, ("status",))
    require_columns(counts, slo.COUNT_COLUMNS, "SLI counts")
    budgeted = [d for d in slo.check_definitions(slos) if d["slo_type"] in slo.BUDGETED_TYPES]
    rows = []
    for x in frame.to_dict("records"):
        verdict, breach, reason = _verdict(x, counts, budgeted)
        rows.append(
            {
                "incident_id": x["incident_id"],
                "service_name": x["service_name"],
                "alert_name": x["alert_name"],
                "verdict": verdict,
                "first_breach": breach,
                "reason": reason,
            }
        )
    columns = ["incident_id", "service_name", "alert_name", "verdict", "first_breach", "reason"]
    out = pd.DataFrame(rows, columns=columns)
    out["first_breach"] = pd.to_datetime(out["first_breach"], utc=True)
    return out


def _verdict(x: dict, counts: pd.DataFrame, budgeted: list[dict]):
    if x["status"] not in RESOLVED_STATUSES or pd.isna(x["resolved_at"]):
        return "unknown", None, "still open"
    mine = [d for d in budgeted if d["service_name"] == x["service_name"]]
    if not mine:
        return "unknown", None, "no budgeted SLO for its service"
    start, end = x["triggered_at"] - FP_MARGIN, x["resolved_at"]
    seen = counts[
        (counts["service_name"] == x["service_name"])
        & (counts["bucket"] >= start - incident_facts.BREACH_WINDOW)
        & (counts["bucket"] < end)
    ]
    if not seen["total"].sum():
        return "unknown", None, "no SLI events in its window"
    found = [
        b
        for d in mine
        if (b := incident_facts.first_breach(seen, d, start, end, min_events=FP_MIN_EVENTS))
    ]
    if found:
        return "real", min(found), "an SLO of its service breached"
    quiet = True
    for d in mine:  # a service too quiet for 5-minute evidence: the whole window's burn
        series = slo.sli_series(seen, d)
        span = series[(series.index >= start) & (series.index < end)]
        total = float(span["total"].sum())
        if total < FP_MIN_EVENTS:
            continue
        quiet = False
        burn = slo.burn_rate(total - float(span["good"].sum()), total, slo.good_target(d))
        if burn > 1:
            return "real", None, f"{slo.slo_label(d)} burned {burn:.1f}x over the window"
    if quiet:  # three failed requests of three prove nothing either way
        return "unknown", None, f"fewer than {FP_MIN_EVENTS} SLI events in its window"
    return "false_positive", None, "no SLO of its service breached"


def false_positives_per_alert(verdicts: pd.DataFrame, incidents: pd.DataFrame) -> pd.DataFrame:
    """Which alerts page for nothing: per ``alert_name`` and ``service_name`` with at least
    one ``false_positive`` verdict, the ``false_positives`` and the ``first`` and ``last``
    trigger among them; the most first (ties: the order the alerts first appear in
    ``verdicts``)."""
    require_columns(verdicts, ("incident_id", "alert_name", "service_name", "verdict"), "verdicts")
    require_columns(incidents, ("incident_id", "triggered_at"), "incidents")
    fps = verdicts[verdicts["verdict"] == "false_positive"]
    times = fps.merge(incidents[["incident_id", "triggered_at"]], on="incident_id")
    per = times.groupby(["alert_name", "service_name"], sort=False).agg(
        false_positives=("incident_id", "size"),
        first=("triggered_at", "min"),
        last=("triggered_at", "max"),
    )
    per = per.reset_index().sort_values("false_positives", ascending=False, kind="stable")
    return per[list(FP_PER_ALERT_COLUMNS)].reset_index(drop=True)


@dataclass(frozen=True)
class Noise:
    """Alert noise: the false-positive rate over judged incidents (``unknown`` excluded,
    counted apart), alerts per real incident (incidents per correlated group holding at
    least one real verdict) and duplicate and flapping counts."""

    incidents: int
    real: int
    false_positive: int
    unknown: int
    false_positive_rate: float | None
    real_groups: int
    alerts_per_real_incident: float | None
    duplicates: int
    flapping_episodes: int
    flapping_firings: int


def noise(incidents: pd.DataFrame, verdicts: pd.DataFrame, groups: pd.DataFrame) -> Noise:
    """Noise of ``incidents`` given ``false_positives`` verdicts and ``correlate`` groups
    (both keyed by ``incident_id``); duplicates and flapping use the defaults."""
    require_columns(verdicts, ("incident_id", "verdict"), "verdicts")
    require_columns(groups, ("incident_id", "group"), "groups")
    frame = checked_incidents(incidents)
    counted = verdicts["verdict"].value_counts()
    real, fp = int(counted.get("real", 0)), int(counted.get("false_positive", 0))
    judged = real + fp
    real_ids = set(verdicts.loc[verdicts["verdict"] == "real", "incident_id"])
    with_real = set(groups.loc[groups["incident_id"].isin(real_ids), "group"])
    in_real_groups = int(groups["group"].isin(with_real).sum())
    flaps = flapping(frame)
    return Noise(
        incidents=len(frame),
        real=real,
        false_positive=fp,
        unknown=int(counted.get("unknown", 0)),
        false_positive_rate=fp / judged if judged else None,
        real_groups=len(with_real),
        alerts_per_real_incident=in_real_groups / len(with_real) if with_real else None,
        duplicates=len(duplicates(frame)),
        flapping_episodes=len(flaps),
        flapping_firings=int(flaps["firings"].sum()),
    )


# -- detection, and what a review of a window reads ----------------------------------------


def detection_times(
    incidents: pd.DataFrame,
    evidence: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]],
    counts: pd.DataFrame,
    slos: pd.DataFrame,
    *,
    severity: str,
) -> pd.DataFrame:
    """Time to detect (``incidents.timeline``: triggered - the first bad minute) of every
    incident of ``severity``, in the order of ``incidents``: ``DETECTION_COLUMNS``, NaT when
    unknown (no bad minute at or before the page, or an incident whose alert is gone and so
    has no service). ``evidence`` holds per incident id its service's failing server spans
    and logs over its ``review_reads`` window; ``counts`` (per-minute SLI counts) cover
    ``review_reads``' range; ``slos`` are the SLO definitions."""
    require_columns(
        incidents, ("incident_id", "service_name", "severity", "triggered_at"), "incidents"
    )
    rows = []
    for row in incidents[incidents["severity"] == severity].to_dict("records"):
        service = row["service_name"]
        if incident_facts.missing(service):
            rows.append((row["incident_id"], row["severity"], pd.NaT))
            continue
        if row["incident_id"] not in evidence:
            raise InputError(f"detection times: no spans and logs read for {row['incident_id']}")
        errors, logs = evidence[row["incident_id"]]
        got = incident_facts.timeline(
            row,
            errors=errors,
            logs=logs,
            counts=counts,
            slos=slos[slos["service_name"] == service],
        )
        rows.append((row["incident_id"], row["severity"], got.time_to_detect))
    frame = pd.DataFrame(rows, columns=list(DETECTION_COLUMNS))
    # as objects: a column of NaT alone would read as datetimes
    frame["time_to_detect"] = pd.to_timedelta(frame["time_to_detect"].astype(object))
    return frame


def review_window(
    length: pd.Timedelta | str, data_end: pd.Timestamp
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The half-open window a review of ``length`` (a duration or its text, e.g. "14d") up to
    ``data_end`` covers: ending at the start of ``data_end``'s SLI bucket (``slo.STEP``), so
    the counts read for it are whole buckets."""
    stop = pd.Timestamp(data_end).floor(slo.STEP)
    return stop - positive_duration(length, "window"), stop


@dataclass(frozen=True)
class ReviewReads:
    """What a review of a window reads beyond the window itself, given its incidents:
    per-minute SLI counts over ``[counts_start, counts_end)`` and, per incident whose
    detection time it measures, its service's spans and logs over ``[since, until)``
    (``evidence``: ``(incident_id, service_name, since, until)``, in incident order)."""

    counts_start: pd.Timestamp
    counts_end: pd.Timestamp
    evidence: tuple[tuple[str, str, pd.Timestamp, pd.Timestamp], ...]


def review_reads(
    start: pd.Timestamp, end: pd.Timestamp, incidents: pd.DataFrame, *, severity: str
) -> ReviewReads:
    """The reads ``false_positives`` and ``detection_times`` (of ``severity``) need for the
    ``incidents`` paged in ``[start, end)``: counts from ``COUNTS_MARGIN`` before ``start``
    to ``end`` or the last resolution, whichever is later; spans and logs of each incident's
    service from ``incidents.LOOKBACK`` before its page to ``incidents.window_end``."""
    require_columns(
        incidents, ("incident_id", "service_name", "severity", "triggered_at", "resolved_at"),
        "incidents",
    )  # fmt: skip
    last = incidents["resolved_at"].max() if len(incidents) else end
    evidence = tuple(
        (
            row["incident_id"],
            row["service_name"],
            row["triggered_at"] - incident_facts.LOOKBACK,
            incident_facts.window_end(row),
        )
        for row in incidents[incidents["severity"] == severity].to_dict("records")
        if not incident_facts.missing(row["service_name"])
    )
    return ReviewReads(start - COUNTS_MARGIN, max(end, last if pd.notna(last) else end), evidence)
