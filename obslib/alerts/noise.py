"""Alert noise: false positives (and which alerts raise them), flapping, and the share of
pages that were noise; beside them, how fast the real pages came (``detection_times``) and
what a review of a window's alerts reads (``review_window``, ``review_reads``).

Pure functions on ``load.incidents`` frames and per-minute SLI counts (``load.slo_counts``);
no I/O.

**False positive, the one rule** (``false_positives``, ``FP_MARGIN``): an incident is a
false positive when no breach explains it: no firing interval of any burn-rate rule of an
SLO of its service (``slo.replay``'s ``firings``, read through ``breaches``) overlaps the
half-open window ``[page - FP_MARGIN, resolution)``, on exact timestamps (an open incident's
window runs to the end of the data replayed). It is ``real`` when one does, and
``unknown`` when its service has no SLO with a burn-rate rule (nothing to judge it by). The
replay's catch rests on the same firings, so no incident is both caught by an SLO rule and
a false positive.
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
from obslib.slo import replay as slo_replay
from obslib.values import positive_duration

# How long before the page a breach still explains it: the replay's catch window opens as
# early (``slo.replay.CATCH_LEAD``), so a caught incident is never a false positive.
FP_MARGIN = slo.replay.CATCH_LEAD
FLAP_WINDOW = pd.Timedelta(hours=1)
RESOLVED_STATUSES = ("resolved", "auto_resolved")
VERDICTS = ("real", "false_positive", "unknown")
# How far before a review window its SLI counts reach at least: an incident paged at the
# window's start has its timeline look LOOKBACK back (``detection_times``), and its 5-minute
# breach windows fit in the margin; the replay behind ``false_positives`` reads FP_MARGIN
# plus its longest rule window (``review_reads``' ``rule_lookback``).
COUNTS_MARGIN = FP_MARGIN + incident_facts.LOOKBACK
DETECTION_COLUMNS = ("incident_id", "severity", "time_to_detect", "outage", "pages")
# what ``breaches`` reads of the replay's ``firings``
BREACH_COLUMNS = ("service_name", "slo_name", "severity", "start", "end")
FP_COLUMNS = ("incident_id", "service_name", "alert_name", "verdict", "first_breach", "reason")
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


def breaches(
    firings: pd.DataFrame, service: object, start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame:
    """The firing intervals of ``service``'s burn-rate rules (``slo.replay``'s ``firings``:
    one row per interval a rule fired, ``end`` NaT while still firing) that overlap the
    half-open window ``[start, end)``: a firing ``[f.start, f.end)`` overlaps when
    ``f.start < end`` and ``f.end > start`` (NaT: no end). Exact timestamps, in the frame's
    order. The one place ``alerts`` reads the replay's breaches."""
    require_columns(firings, BREACH_COLUMNS, "firings")
    if incident_facts.missing(service):
        return firings.iloc[0:0]
    hit = (
        (firings["service_name"].astype(str) == str(service))
        & (firings["start"] < end)
        & (firings["end"].isna() | (firings["end"] > start))
    )
    return firings[hit.to_numpy()]


def judged_services(rules: pd.DataFrame) -> set[str]:
    """The services with at least one burn-rate rule that applies to one of their SLOs
    (``slo.replay``'s ``rules``): those a false positive can be judged for."""
    require_columns(rules, ("service_name",), "rules")
    applies = rules["applies"].astype(bool) if "applies" in rules else True
    return set(rules.loc[applies, "service_name"].astype(str)) if len(rules) else set()


def fp_window(incident: dict, data_end: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The window a false positive is judged on: ``[page - FP_MARGIN, resolution)``, an open
    incident up to ``data_end`` (the end of the data replayed)."""
    resolved = incident.get("resolved_at")
    closed = data_end if incident_facts.missing(resolved) else resolved
    return incident["triggered_at"] - FP_MARGIN, closed


def false_positives(
    incidents: pd.DataFrame, firings: pd.DataFrame, rules: pd.DataFrame, data_end: pd.Timestamp
) -> pd.DataFrame:
    """The module's false-positive rule per incident: ``verdict`` (``real``,
    ``false_positive`` or ``unknown``), ``first_breach`` (the start of the earliest firing
    that explains it, NaT for none) and ``reason`` in words. ``firings`` and ``rules`` are a
    ``slo.replay.replay``'s (run over the SLOs the report reads, reaching from ``FP_MARGIN``
    before the first page to ``data_end``); open incidents are judged up to ``data_end``."""
    frame = checked_incidents(incidents)
    judged = judged_services(rules)
    data_end = pd.Timestamp(data_end)
    rows = []
    for x in frame.to_dict("records"):
        service = x["service_name"]
        breach, verdict = pd.NaT, "unknown"
        if incident_facts.missing(service) or str(service) not in judged:
            reason = "no SLO with a burn-rate rule for its service"
        else:
            start, end = fp_window(x, data_end)
            found = breaches(firings, service, start, end)
            if found.empty:
                verdict = "false_positive"
                reason = "no burn-rate rule of its service fired in its window"
            else:
                first = found.sort_values("start", kind="stable").iloc[0]
                verdict, breach = "real", first["start"]
                rule = f"{first['service_name']}/{first['slo_name']} {first['severity']}"
                reason = f"{rule} rule fired"
        rows.append(
            {
                "incident_id": x["incident_id"],
                "service_name": service,
                "alert_name": x["alert_name"],
                "verdict": verdict,
                "first_breach": breach,
                "reason": reason,
            }
        )
    out = pd.DataFrame(rows, columns=list(FP_COLUMNS))
    out["first_breach"] = pd.to_datetime(out["first_breach"], utc=True)
    return out


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
class Judged:
    """Verdicts counted: ``real``, ``false_positive`` and ``unknown``; ``judged`` is the
    first two (an ``unknown`` verdict judges nothing)."""

    real: int
    false_positive: int
    unknown: int

    @property
    def judged(self) -> int:
        return self.real + self.false_positive


def judged(verdicts: pd.Series) -> Judged:
    """``false_positives``' ``verdict`` column counted (InputError for a verdict not in
    ``VERDICTS``). The false-positive rate is ``false_positive / judged``, ``unknown`` left
    out: ``false_positive_rate`` here, the health KPI in percent (``health``), each log
    rule's (``log_noise``)."""
    counted = pd.Series(verdicts, dtype=object).value_counts()
    strange = set(counted.index) - set(VERDICTS)
    if strange:
        raise InputError(f"verdicts: {sorted(map(str, strange))} not one of {', '.join(VERDICTS)}")
    real, fp, unknown = (int(counted.get(v, 0)) for v in VERDICTS)
    return Judged(real, fp, unknown)


def false_positive_rate(verdicts: pd.Series) -> float | None:
    """The share of false positives among the judged verdicts (``judged``):
    ``false_positive / (real + false_positive)``, ``unknown`` left out; None when nothing
    was judged. ``noise`` and each log rule's rate (``log_noise``) read this."""
    n = judged(verdicts)
    return n.false_positive / n.judged if n.judged else None


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
    counted = judged(verdicts["verdict"])
    real_ids = set(verdicts.loc[verdicts["verdict"] == "real", "incident_id"])
    with_real = set(groups.loc[groups["incident_id"].isin(real_ids), "group"])
    in_real_groups = int(groups["group"].isin(with_real).sum())
    flaps = flapping(frame)
    return Noise(
        incidents=len(frame),
        real=counted.real,
        false_positive=counted.false_positive,
        unknown=counted.unknown,
        false_positive_rate=false_positive_rate(verdicts["verdict"]),
        real_groups=len(with_real),
        alerts_per_real_incident=in_real_groups / len(with_real) if with_real else None,
        duplicates=len(duplicates(frame)),
        flapping_episodes=len(flaps),
        flapping_firings=int(flaps["firings"].sum()),
    )


# -- detection, and what a review of a window reads ----------------------------------------


def detection_times(
    incidents: pd.DataFrame,
    outages: pd.DataFrame,
    evidence: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]],
    counts: pd.DataFrame,
    slos: pd.DataFrame,
    *,
    severity: str,
) -> pd.DataFrame:
    """Time to detect per outage (``correlation.outages``) holding an incident of
    ``severity``, in the order the outages open: ``DETECTION_COLUMNS`` with
    ``incident_id`` the outage's first page, ``severity`` the one asked and
    ``time_to_detect`` from ``incidents.outage_detection`` (first page - the first bad
    minute of the SLI its alert watches; NaT when unknown: nothing bad at or before the
    page, or a first page whose alert is gone and so has no service), then ``outage`` and
    ``pages`` (the outage's incident ids). ``evidence`` holds per first page its service's
    failing server spans and logs over its ``review_reads`` window; ``counts`` (per-minute
    SLI counts) cover ``review_reads``' range; ``slos`` are the SLO definitions."""
    require_columns(
        incidents, ("incident_id", "service_name", "severity", "triggered_at"), "incidents"
    )
    require_columns(outages, ("incident_id", "outage", "outage_lead"), "outages")
    rows_of = {r["incident_id"]: r for r in incidents.to_dict("records")}
    of = outages.merge(incidents[["incident_id", "severity"]], on="incident_id")
    rows = []
    for number, same in of.groupby("outage", sort=True):
        if not (same["severity"] == severity).any():
            continue
        lead = rows_of[same["outage_lead"].iloc[0]]
        pages = tuple(same["incident_id"])
        if incident_facts.missing(lead["service_name"]):
            rows.append((lead["incident_id"], severity, pd.NaT, int(number), pages))
            continue
        if lead["incident_id"] not in evidence:
            raise InputError(f"detection times: no spans and logs read for {lead['incident_id']}")
        errors, logs = evidence[lead["incident_id"]]
        got = incident_facts.outage_detection(
            lead,
            errors=errors,
            logs=logs,
            counts=counts,
            slos=slos[slos["service_name"] == lead["service_name"]],
        )
        rows.append((lead["incident_id"], severity, got.time_to_detect, int(number), pages))
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
    start: pd.Timestamp,
    end: pd.Timestamp,
    incidents: pd.DataFrame,
    outages: pd.DataFrame,
    *,
    severity: str,
    rule_lookback: pd.Timedelta | None = None,
) -> ReviewReads:
    """The reads ``false_positives`` (through a replay of the burn-rate rules) and
    ``detection_times`` (of ``severity``) need for the ``incidents`` paged in
    ``[start, end)``, grouped into ``outages``: counts from ``COUNTS_MARGIN`` (or the
    replay's ``FP_MARGIN`` plus ``rule_lookback``, its longest rule window, when longer)
    before ``start`` to ``end`` or the last resolution, whichever is later; spans and logs
    of the service of each outage's first page, for the outages holding an incident of
    ``severity``, from ``incidents.LOOKBACK`` before that page to ``incidents.window_end``."""
    require_columns(
        incidents, ("incident_id", "service_name", "severity", "triggered_at", "resolved_at"),
        "incidents",
    )  # fmt: skip
    require_columns(outages, ("incident_id", "outage", "outage_lead"), "outages")
    last = incidents["resolved_at"].max() if len(incidents) else end
    of = outages.merge(incidents[["incident_id", "severity"]], on="incident_id")
    leads = set(of.loc[of["severity"] == severity, "outage_lead"])
    evidence = tuple(
        (
            row["incident_id"],
            row["service_name"],
            row["triggered_at"] - incident_facts.LOOKBACK,
            incident_facts.window_end(row),
        )
        for row in incidents[incidents["incident_id"].isin(leads)]
        .sort_values(["triggered_at", "incident_id"], kind="stable")
        .to_dict("records")
        if not incident_facts.missing(row["service_name"])
    )
    margin = max(COUNTS_MARGIN, FP_MARGIN + (rule_lookback or pd.Timedelta(0)))
    return ReviewReads(start - margin, max(end, last if pd.notna(last) else end), evidence)


def judge(
    incidents: pd.DataFrame,
    checked: slo.Objectives,
    counts: pd.DataFrame,
    start: pd.Timestamp,
    counts_end: pd.Timestamp,
) -> tuple[slo_replay.Replay, pd.DataFrame]:
    """The one false-positive rule on ``incidents`` paged from ``start``: the burn-rate
    rules of ``checked`` replayed on ``counts`` from ``FP_MARGIN`` before ``start`` to
    ``counts_end`` (``judge_reads``' range), then ``noise.false_positives`` on its firings:
    the replay and the verdicts (``FP_COLUMNS``). The observability health report and
    ``obslib alerts replay --compare`` both call this, so their verdicts are the same."""
    replayed = slo_replay.replay(
        counts, checked, incidents, start - FP_MARGIN, counts_end, bucket=slo.STEP
    )
    return replayed, false_positives(incidents, replayed.firings, replayed.rules, replayed.end)
