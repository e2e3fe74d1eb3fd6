"""Alert analytics over stored incidents: correlation, duplicates, flapping, an Alertmanager
replay, false positives and noise.

Pure functions on ``load.incidents`` frames (``incident_id``, ``alert_name``,
``service_name``, ``alert_type``, ``status``, ``severity``, ``triggered_at``,
``resolved_at``, ``incident_data``), a service graph (``trace_sets.service_graph``:
``caller``, ``callee``) and per-minute SLI counts (``load.slo_counts``); no I/O.

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

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from obslib import slo
from obslib.alerts import incidents as incident_facts
from obslib.errors import InputError
from obslib.schema import require_columns
from obslib.values import Moment, utc

FP_MARGIN = pd.Timedelta(minutes=15)  # how long before the page a breach still explains it
FP_MIN_EVENTS = slo.DEFAULT_MIN_EVENTS  # a breach on fewer events in 5 minutes is no evidence
CORRELATION_WINDOW = pd.Timedelta(minutes=15)
FLAP_WINDOW = pd.Timedelta(hours=1)
GROUP_WAIT = pd.Timedelta(seconds=30)  # Alertmanager's route defaults
GROUP_INTERVAL = pd.Timedelta(minutes=5)
REPEAT_INTERVAL = pd.Timedelta(hours=4)
RESOLVED_STATUSES = ("resolved", "auto_resolved")
RELATIONS = ("named related", "same service", "calls", "called by")  # precedence order
FATES = ("notified", "merged", "inhibited", "silent")
VERDICTS = ("real", "false_positive", "unknown")
LABELS = {  # Alertmanager label -> incident column
    "alertname": "alert_name",
    "service": "service_name",
    "severity": "severity",
    "alert_type": "alert_type",
}
_NEVER = np.iinfo("int64").min  # "no notification yet" in int64 nanoseconds
_REQUIRED = ("incident_id", "alert_name", "service_name", "triggered_at", "resolved_at")


def _frame(incidents: pd.DataFrame, extra: Iterable[str] = ()) -> pd.DataFrame:
    """The incidents in time order (ties by id), refused when a column or a trigger time is
    missing or an id repeats."""
    require_columns(incidents, (*_REQUIRED, *extra), "incidents")
    if incidents["triggered_at"].isna().any():
        bad = incidents.loc[incidents["triggered_at"].isna(), "incident_id"].iloc[0]
        raise InputError(f"incidents: {bad} has no triggered_at")
    if incidents["incident_id"].duplicated().any():
        bad = incidents.loc[incidents["incident_id"].duplicated(), "incident_id"].iloc[0]
        raise InputError(f"incidents: incident_id {bad} appears more than once")
    return incidents.sort_values(["triggered_at", "incident_id"], kind="stable").reset_index(
        drop=True
    )


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
    frame = _frame(incidents)
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
    columns = [c for c in (*_REQUIRED, "severity", "status") if c in frame.columns]
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
    frame = _frame(incidents)
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


def duplicates(incidents: pd.DataFrame) -> pd.DataFrame:
    """Incidents of an alert that fired while an earlier incident of the same alert was still
    unresolved (resolved strictly after this one fired): ``duplicate_of`` the earliest such
    one. Simultaneous firings: the later ``incident_id`` is the duplicate."""
    frame = _frame(incidents)
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
    frame = _frame(incidents)
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


# --- Alertmanager replay ---------------------------------------------------------------


def _delta(value: pd.Timedelta | str, name: str) -> pd.Timedelta:
    try:
        delta = pd.Timedelta(value)
    except (TypeError, ValueError) as err:
        raise InputError(f"Route.{name} is not a duration: {value!r}") from err
    if delta is pd.NaT or delta < pd.Timedelta(0):
        raise InputError(f"Route.{name} must be a duration of 0 or more, not {value!r}")
    return delta


def _check_labels(names: Iterable[str], where: str) -> None:
    unknown = [n for n in names if n not in LABELS]
    if unknown:
        raise InputError(
            f"{where}: unknown label(s) {', '.join(unknown)}; known: {', '.join(LABELS)}"
        )


@dataclass(frozen=True)
class Route:
    """One Alertmanager route's grouping and timing (``group_by=("...",)`` groups by every
    label). ``send_resolved``: whether the receiver is told when alerts resolve."""

    group_by: tuple[str, ...] = ("alertname",)
    group_wait: pd.Timedelta = GROUP_WAIT
    group_interval: pd.Timedelta = GROUP_INTERVAL
    repeat_interval: pd.Timedelta = REPEAT_INTERVAL
    send_resolved: bool = False

    def __post_init__(self) -> None:
        for name in ("group_wait", "group_interval", "repeat_interval"):
            object.__setattr__(self, name, _delta(getattr(self, name), name))
        if self.group_interval <= pd.Timedelta(0):
            raise InputError("Route.group_interval must be positive")
        object.__setattr__(self, "group_by", tuple(self.group_by))
        if self.group_by != ("...",):
            _check_labels(self.group_by, "Route.group_by")


@dataclass(frozen=True)
class InhibitRule:
    """Mute alerts matching every ``target`` label while an alert matching every ``source``
    label fires with the same values of the ``equal`` labels (equality matchers only)."""

    source: dict
    target: dict
    equal: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_labels(self.source, "InhibitRule.source")
        _check_labels(self.target, "InhibitRule.target")
        _check_labels(self.equal, "InhibitRule.equal")
        object.__setattr__(self, "equal", tuple(self.equal))


@dataclass(frozen=True)
class NotificationReplay:
    """What a route would have sent: ``notifications`` (``at``, ``group``, ``reason``,
    ``alerts`` firing in it, ``new`` ones, ``opener``), ``fates`` (per incident: ``group``,
    ``fate``, ``notified_at``) and ``summary`` (counts, ``pages_saved``)."""

    notifications: pd.DataFrame
    fates: pd.DataFrame
    summary: dict = field(default_factory=dict)


def _labels(record: dict) -> dict[str, str]:
    out = {}
    for label, column in LABELS.items():
        value = record.get(column)
        if value is not None and not (not isinstance(value, str) and pd.isna(value)):
            out[label] = str(value)
    return out


def _matches(labels: dict[str, str], matchers: dict) -> bool:
    return all(labels.get(k, "") == str(v) for k, v in matchers.items())


class _Muter:
    """inhibit.go's Mutes: a target is muted at ``t`` by any firing source with equal
    ``equal`` labels; when the target also matches the source side, sources that match the
    target side do not count (so an alert never mutes itself)."""

    def __init__(self, labels: list[dict], fired, ended, rules: Iterable[InhibitRule]):
        self.fired, self.ended = fired, ended
        self.sources: list[np.ndarray] = []
        for mine in labels:
            found: set[int] = set()
            for r in rules:
                if not _matches(mine, r.target):
                    continue
                two_sided = _matches(mine, r.source)
                found |= {
                    j
                    for j, theirs in enumerate(labels)
                    if _matches(theirs, r.source)
                    and all(theirs.get(e, "") == mine.get(e, "") for e in r.equal)
                    and not (two_sided and _matches(theirs, r.target))
                }
            self.sources.append(np.array(sorted(found), dtype="int64"))

    def muted(self, i: int, t: np.int64) -> bool:
        s = self.sources[i]
        return bool(len(s)) and bool(((self.fired[s] <= t) & (t < self.ended[s])).any())


def replay_notifications(
    incidents: pd.DataFrame,
    route: Route | None = None,
    inhibit: Iterable[InhibitRule] = (),
    *,
    until: Moment | None = None,
) -> NotificationReplay:
    """Replay the incidents through one Alertmanager route (dispatch/group.go, notify.go's
    DedupStage, inhibit.go). Each incident is an alert firing from ``triggered_at`` to
    ``resolved_at`` with the labels alertname, service, severity and alert_type; incidents
    with equal labels are one alert (one fingerprint), as in Alertmanager.

    A group (same ``group_by`` labels) opens with its first alert and flushes
    ``group_wait`` later, then every ``group_interval``. At a flush, inhibited alerts are
    dropped; a notification goes out when a firing alert is not in the group's last one
    (reason ``first`` if that one had none firing, else ``new alerts``), when all alerts
    resolved after firing ones were sent (``resolved``; also when some resolved and
    ``send_resolved``), or when nothing changed and the last notification is older than
    ``repeat_interval`` (strictly, so a repeat lands on the first flush after it:
    ``repeat``). Resolved alerts leave the group after the flush; the group ends when none
    is left. Tie: an alert firing exactly at a flush is in it. ``resolved`` notifications
    are listed only with ``send_resolved`` (they are never pages).

    Fates: ``notified`` (it opened a ``first``/``new alerts`` notification: the earliest new
    incident in it), ``merged`` (it was firing and visible at a flush without being that
    opener: it rode in a notification another opened, or one already sent for its alert),
    ``inhibited`` (muted at every flush while firing), ``silent`` (resolved before any flush
    of its group saw it firing).

    Simplified: one route and receiver (no routing tree, ``continue`` or matchers on the
    route); equality matchers only; no silences or time intervals; sends never fail; flushes
    follow the timer exactly (no jitter, no immediate flush for late-arriving alerts); an
    empty group ends at its last flush rather than at the next 30 s maintenance sweep.
    Open incidents fire until ``until`` (default: when the last flush after the last event
    is done); an incident no flush up to ``until`` saw firing counts as ``silent``.
    """
    route = route or Route()
    rules = tuple(inhibit)
    frame = _frame(incidents, ("severity",))
    records = frame.to_dict("records")
    ids = frame["incident_id"].astype(str).tolist()
    labels = [_labels(r) for r in records]
    fired = frame["triggered_at"].to_numpy(dtype="datetime64[ns]").astype("int64")
    if until is not None:
        stop = utc(until, "until").value
    else:  # the flushes after the last event have run
        last = pd.concat([frame["triggered_at"], frame["resolved_at"]]).max()
        stop = 0 if pd.isna(last) else (last + route.group_wait + route.group_interval).value
    ended = np.where(
        frame["resolved_at"].isna().to_numpy(),
        np.iinfo("int64").max,  # open: fires past any flush
        frame["resolved_at"].to_numpy(dtype="datetime64[ns]").astype("int64"),
    )
    fps = [tuple(sorted(lab.items())) for lab in labels]
    by = tuple(LABELS) if route.group_by == ("...",) else route.group_by
    keys = [
        "{" + ",".join(f'{k}="{lab[k]}"' for k in sorted(by) if k in lab) + "}" for lab in labels
    ]
    muter = _Muter(labels, fired, ended, rules)
    state = _Replay(len(ids))
    for key in dict.fromkeys(keys):
        members = [i for i, k in enumerate(keys) if k == key]
        _replay_group(key, members, route, fired, ended, fps, muter, stop, ids, state)
    return state.result(frame, keys)


class _Replay:
    """What the flushes found: notification rows and per-incident marks."""

    def __init__(self, n: int) -> None:
        self.rows: list[dict] = []
        self.opened = np.zeros(n, dtype=bool)
        self.seen = np.zeros(n, dtype=bool)  # firing and not muted at some flush
        self.muted = np.zeros(n, dtype=bool)  # firing and muted at some flush
        self.first_sent = np.full(n, _NEVER, dtype="int64")

    def result(self, frame: pd.DataFrame, keys: list[str]) -> NotificationReplay:
        columns = ["at", "group", "reason", "alerts", "new", "opener"]
        notes = pd.DataFrame(self.rows, columns=columns)
        notes["at"] = pd.to_datetime(notes["at"].astype("int64"), unit="ns", utc=True)
        notes = notes.sort_values(["at", "group"], kind="stable", ignore_index=True)
        fate = np.where(
            self.opened,
            "notified",
            np.where(self.seen, "merged", np.where(self.muted, "inhibited", "silent")),
        )
        never = self.first_sent == _NEVER
        fates = pd.DataFrame(
            {
                "incident_id": frame["incident_id"],
                "alert_name": frame["alert_name"],
                "group": keys,
                "fate": fate,
                "notified_at": pd.to_datetime(np.where(never, pd.NaT, self.first_sent), utc=True),
            }
        )
        pages = int(notes["reason"].isin(("first", "new alerts", "repeat")).sum())
        summary = {
            "incidents": len(frame),
            "notifications": pages,
            "resolved_notifications": int((notes["reason"] == "resolved").sum()),
            "pages_saved": len(frame) - pages,
            **{f: int((fate == f).sum()) for f in FATES},
        }
        return NotificationReplay(notifications=notes, fates=fates, summary=summary)


def _replay_group(
    key: str,
    members: list[int],
    route: Route,
    fired: np.ndarray,
    ended: np.ndarray,
    fps: list[tuple],
    muter: _Muter,
    stop: int,
    ids: list[str],
    state: _Replay,
) -> None:
    """One group key through time; the notification log entry outlives each group's life,
    as nflog's does."""
    wait, interval = route.group_wait.value, route.group_interval.value
    repeat = route.repeat_interval.value
    entry: tuple[frozenset, frozenset, int] | None = None
    pending = list(members)  # in trigger order
    present: list[int] = []
    t = 0
    while pending or present:
        if not present:
            t = int(fired[pending[0]]) + wait
        else:
            t += interval
        if t > stop:
            return
        while pending and fired[pending[0]] <= t:
            present.append(pending.pop(0))
        firing = [i for i in present if fired[i] <= t < ended[i]]
        live = {fps[i] for i in firing}
        quiet = {fps[i] for i in present} - live
        rep = {fps[i]: i for i in present}
        hushed = {f for f in live | quiet if muter.muted(rep[f], t)}
        for i in firing:
            if fps[i] in hushed:
                state.muted[i] = True
            else:
                state.seen[i] = True
        fire, done = frozenset(live - hushed), frozenset(quiet - hushed)
        reason = _needs_update(entry, fire, done, t, repeat, route.send_resolved)
        if reason:
            visible = sorted(
                (i for i in firing if fps[i] in fire), key=lambda i: (fired[i], ids[i])
            )
            new = [i for i in visible if entry is None or fps[i] not in entry[0]]
            opener = new[0] if reason in ("first", "new alerts") else None
            if opener is not None:
                state.opened[opener] = True
            for i in visible:
                if state.first_sent[i] == _NEVER:
                    state.first_sent[i] = t
            if reason != "resolved" or route.send_resolved:
                state.rows.append(
                    {
                        "at": t,
                        "group": key,
                        "reason": reason,
                        "alerts": tuple(ids[i] for i in visible),
                        "new": tuple(ids[i] for i in new) if opener is not None else (),
                        "opener": None if opener is None else ids[opener],
                    }
                )
            entry = (fire, done, t)
        present = [i for i in present if fps[i] not in quiet]


def _needs_update(
    entry: tuple[frozenset, frozenset, int] | None,
    firing: frozenset,
    resolved: frozenset,
    now: int,
    repeat: int,
    send_resolved: bool,
) -> str | None:
    """notify.go's DedupStage.needsUpdate, returning the reason (None: send nothing)."""
    if entry is None:
        return "first" if firing else None
    if not firing <= entry[0]:
        return "new alerts" if entry[0] else "first"
    if not firing:
        return "resolved" if entry[0] else None
    if send_resolved and not resolved <= entry[1]:
        return "resolved"
    return "repeat" if entry[2] < now - repeat else None


# --- false positives and noise -----------------------------------------------------------


def false_positives(
    incidents: pd.DataFrame, counts: pd.DataFrame, slos: pd.DataFrame
) -> pd.DataFrame:
    """The module's false-positive rule per incident: ``verdict`` (``real``,
    ``false_positive`` or ``unknown``), ``first_breach`` (the earliest breach of any
    budgeted SLO of its service in the window, NaT for none) and ``reason`` in words.
    ``counts`` are per-minute ``load.slo_counts`` reaching 5 minutes before
    ``triggered_at - FP_MARGIN``; ``slos`` the SLO definitions."""
    frame = _frame(incidents, ("status",))
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
    frame = _frame(incidents)
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
