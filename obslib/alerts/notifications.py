"""An Alertmanager replay: which incidents would have notified, merged into a group, been
inhibited or stayed silent under a route's grouping and timers and the inhibit rules.

Pure functions on ``load.incidents`` frames; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from obslib.alerts._common import checked_incidents
from obslib.alerts.amconfig import AlertmanagerConfig, InhibitMatchers, Matcher, match_routes
from obslib.errors import InputError
from obslib.schema import require_columns
from obslib.values import Moment, utc

GROUP_WAIT = pd.Timedelta(seconds=30)  # Alertmanager's route defaults
GROUP_INTERVAL = pd.Timedelta(minutes=5)
REPEAT_INTERVAL = pd.Timedelta(hours=4)
# Best first: an incident replayed in several routes keeps its best fate (``unpaged``,
# compare.py). ``muted`` (visible at a flush whose route a time interval held back) ranks
# above ``inhibited``: the alert itself was not muted, only the route's clock was.
FATES = ("notified", "merged", "muted", "inhibited", "silent")
UNPAGED_COLUMNS = ("incident_id", "alert_name", "triggered_at", "group", "fate")
LABELS = {  # Alertmanager label -> incident column
    "alertname": "alert_name",
    "service": "service_name",
    "severity": "severity",
    "alert_type": "alert_type",
}
_NEVER = np.iinfo("int64").min  # "no notification yet" in int64 nanoseconds
_FOREVER = np.iinfo("int64").max  # an open incident's end; "no further change"


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


def unpaged(replay: NotificationReplay, incidents: pd.DataFrame) -> pd.DataFrame:
    """The incidents ``replay`` did not page on their own (every fate but ``notified``), in
    the replay's (trigger) order, with the name and trigger time ``incidents`` holds for
    them: ``UNPAGED_COLUMNS``. A replay through a config counts an incident as paged when
    any route it reached paged it; otherwise its fate is the best it had in any route
    (in ``FATES`` order: merged, muted, inhibited, silent), with that route's group."""
    require_columns(incidents, ("incident_id", "alert_name", "triggered_at"), "incidents")
    fates = replay.fates
    if "route" in fates.columns:  # one row per incident and route: keep each one's best
        rank = fates["fate"].map({f: k for k, f in enumerate(FATES)})
        best = fates.assign(_rank=rank).sort_values("_rank", kind="stable")
        fates = best.drop_duplicates("incident_id").drop(columns="_rank").sort_index()
    quiet = fates[fates["fate"] != "notified"].drop(columns=["alert_name"])
    found = quiet.merge(incidents[["incident_id", "alert_name", "triggered_at"]], on="incident_id")
    return found[list(UNPAGED_COLUMNS)]


def _labels(record: dict) -> dict[str, str]:
    out = {}
    for label, column in LABELS.items():
        value = record.get(column)
        if value is not None and not (not isinstance(value, str) and pd.isna(value)):
            out[label] = str(value)
    return out


def _matchers(rule: InhibitRule | InhibitMatchers) -> tuple[tuple[Matcher, ...], ...]:
    """A rule's source and target sides as matchers (an ``InhibitRule``'s are equalities)."""
    if isinstance(rule, InhibitMatchers):
        return rule.source, rule.target
    return tuple(
        tuple(Matcher(k, "=", str(v)) for k, v in side.items())
        for side in (rule.source, rule.target)
    )


def _matches(labels: dict[str, str], matchers: tuple[Matcher, ...]) -> bool:
    return all(m.matches(labels) for m in matchers)


class _Muter:
    """inhibit.go's Mutes: a target is muted at ``t`` by any firing source with equal
    ``equal`` labels; when the target also matches the source side, sources that match the
    target side do not count (so an alert never mutes itself).

    Scales as a sweep: per rule, the sources are bucketed by their ``equal`` values and each
    bucket's firing spans merged into sorted disjoint ``[start, end)`` spans (once for every
    source, once for the sources that do not match the target side); a target then asks, per
    rule it matches, one bucket by binary search. Matchers run once per distinct label set."""

    def __init__(
        self, labels: list[dict], fired, ended, rules: Iterable[InhibitRule | InhibitMatchers]
    ):
        fps = [tuple(sorted(lab.items())) for lab in labels]
        sides = [(*_matchers(r), r.equal) for r in rules]
        memo: dict[tuple, list[tuple[bool, bool]]] = {}
        for fp, lab in zip(fps, labels, strict=True):
            if fp not in memo:
                memo[fp] = [(_matches(lab, src), _matches(lab, tgt)) for src, tgt, _ in sides]
        self.checks: list[list[tuple[np.ndarray, np.ndarray]]] = []
        spans: list[dict[tuple, tuple]] = []
        for r, (_, _, equal) in enumerate(sides):
            every: dict[tuple, list[int]] = {}
            for j, fp in enumerate(fps):
                if memo[fp][r][0]:
                    every.setdefault(tuple(labels[j].get(e, "") for e in equal), []).append(j)
            spans.append(
                {
                    key: (
                        _merged(fired, ended, members),
                        _merged(fired, ended, [j for j in members if not memo[fps[j]][r][1]]),
                    )
                    for key, members in every.items()
                }
            )
        for i, fp in enumerate(fps):
            mine = []
            for r, (_, _, equal) in enumerate(sides):
                is_source, is_target = memo[fp][r]
                if not is_target:
                    continue
                found = spans[r].get(tuple(labels[i].get(e, "") for e in equal))
                if found is not None:
                    mine.append(found[1] if is_source else found[0])
            self.checks.append(mine)

    def muted(self, i: int, t: int) -> bool:
        for starts, ends in self.checks[i]:
            k = int(np.searchsorted(starts, t, side="right")) - 1
            if k >= 0 and t < ends[k]:
                return True
        return False

    def next_change(self, i: int, t: int) -> int:
        """The first instant after ``t`` at which ``muted(i, ·)`` may change."""
        out = _FOREVER
        for starts, ends in self.checks[i]:
            k = int(np.searchsorted(starts, t, side="right")) - 1
            if k >= 0 and t < ends[k]:
                out = min(out, int(ends[k]))
            elif k + 1 < len(starts):
                out = min(out, int(starts[k + 1]))
        return out


def _merged(fired, ended, members: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The union of the members' ``[fired, ended)`` spans as sorted disjoint spans."""
    if not members:
        return np.empty(0, dtype="int64"), np.empty(0, dtype="int64")
    idx = np.asarray(members, dtype="int64")
    order = np.argsort(fired[idx], kind="stable")
    starts, ends = fired[idx][order], ended[idx][order]
    reach = np.maximum.accumulate(ends)
    # A span opens a new piece when it starts after everything before it has ended.
    new = np.ones(len(starts), dtype=bool)
    new[1:] = starts[1:] > reach[:-1]
    firsts = np.flatnonzero(new)
    lasts = np.append(firsts[1:], len(starts)) - 1
    return starts[firsts], reach[lasts]


def replay_notifications(
    incidents: pd.DataFrame,
    route: Route | None = None,
    inhibit: Iterable[InhibitRule] = (),
    *,
    until: Moment | None = None,
    config: AlertmanagerConfig | None = None,
) -> NotificationReplay:
    """Replay the incidents through an Alertmanager route (dispatch/group.go, notify.go's
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
    ``muted`` (never visible, but firing and not inhibited at a flush its route's time
    intervals held back), ``inhibited`` (inhibited at every flush while firing), ``silent``
    (resolved before any flush of its group saw it firing).

    Time intervals (config routes' ``mute_time_intervals``/``active_time_intervals``, read
    at the flush time, as notify.go's TimeMuteStage and TimeActiveStage read "now"): a held
    flush sends nothing and leaves the notification log as it was; the group keeps ticking,
    and its next flush outside the interval sends what is then new, firing or due (so an
    alert still firing when the mute ends is notified then: ``notified``, later).

    ``config`` (an ``amconfig.AlertmanagerConfig``, instead of ``route`` and ``inhibit``):
    each incident goes to the routes its labels match in the config's tree (``continue``
    included) and is replayed in each with that route's grouping and timers; groups are per
    route, and ``notifications`` and ``fates`` gain ``route`` (its path in the file) and
    ``receiver`` columns, ``fates`` one row per incident and route it reached, and ``waited``
    (from trigger to the first notification it was in). The config's inhibit rules apply
    across routes, as Alertmanager's do.

    Simplified: no silences; sends never fail; flushes
    follow the timer exactly (no jitter, no immediate flush for late-arriving alerts); an
    empty group ends at its last flush rather than at the next 30 s maintenance sweep.
    Open incidents fire until ``until`` (default: when the last flush after the last event
    is done); an incident no flush up to ``until`` saw firing counts as ``silent``.
    """
    if config is not None and (route is not None or tuple(inhibit)):
        raise InputError("replay_notifications: give a config, or a route and inhibit rules")
    frame = checked_incidents(incidents, ("severity",))
    records = frame.to_dict("records")
    ids = frame["incident_id"].astype(str).tolist()
    labels = [_labels(r) for r in records]
    fps = [tuple(sorted(lab.items())) for lab in labels]
    if config is None:
        route = route or Route()
        legs = [_Leg(None, None, route)] * len(ids)
        deliveries = [[leg] for leg in legs]
        rules: tuple = tuple(inhibit)
    else:
        routed: dict[tuple, list[_Leg]] = {}  # per distinct label set
        for fp, lab in zip(fps, labels, strict=True):
            if fp not in routed:
                routed[fp] = [_Leg.of(node, config) for node in match_routes(config.route, lab)]
        deliveries = [routed[fp] for fp in fps]
        rules = config.inhibit_rules
    fired = frame["triggered_at"].to_numpy(dtype="datetime64[ns]").astype("int64")
    if until is not None:
        stop = utc(until, "until").value
    else:  # the flushes after the last event have run
        last = pd.concat([frame["triggered_at"], frame["resolved_at"]]).max()
        longest = max(
            (leg.route.group_wait + leg.route.group_interval for ls in deliveries for leg in ls),
            default=pd.Timedelta(0),
        )
        stop = 0 if pd.isna(last) else (last + longest).value
    ended = np.where(
        frame["resolved_at"].isna().to_numpy(),
        _FOREVER,  # open: fires past any flush
        frame["resolved_at"].to_numpy(dtype="datetime64[ns]").astype("int64"),
    )
    muter = _Muter(labels, fired, ended, rules)
    # One delivery per incident and route it reaches; each is replayed in its route's group.
    owner = [i for i, legs in enumerate(deliveries) for _ in legs]
    legs = [leg for ls in deliveries for leg in ls]
    keys = [_group_key(labels[i], leg.route.group_by) for i, leg in zip(owner, legs, strict=True)]
    groups: dict[tuple, list[int]] = {}
    for d, (leg, key) in enumerate(zip(legs, keys, strict=True)):
        groups.setdefault((leg.path, key), []).append(d)
    state = _Replay(len(owner))
    view = _Deliveries(owner, fired, ended, fps, ids, muter)
    for (_, key), members in groups.items():
        _replay_group(key, members, legs[members[0]], view, stop, state)
    return state.result(frame.iloc[owner].reset_index(drop=True), keys, legs, config is not None)


@dataclass(frozen=True)
class _Leg:
    """A route an incident reached: its path, receiver and grouping and timers."""

    path: str | None
    receiver: str | None
    route: Route | _Timing
    sends: Callable[[datetime], bool] | None = None  # the route's time intervals; None: always

    @classmethod
    def of(cls, node, config: AlertmanagerConfig) -> _Leg:
        return cls(node.path, node.receiver, _Timing(node), config.schedule(node))

    def held(self, t: int) -> bool:
        """Whether the route's time intervals hold back a flush at ``t`` (ns)."""
        return self.sends is not None and not self.sends(datetime.fromtimestamp(t // 10**9, UTC))


class _Timing:
    """A config route's grouping and timers, shaped as a ``Route`` (its group_by may name
    labels obslib's incidents do not carry: those group as absent, as in Alertmanager)."""

    send_resolved = False

    def __init__(self, node) -> None:
        self.group_by = node.group_by
        self.group_wait, self.group_interval = node.group_wait, node.group_interval
        self.repeat_interval = node.repeat_interval


def _group_key(labels: dict[str, str], group_by: tuple[str, ...]) -> str:
    by = tuple(LABELS) if group_by == ("...",) else group_by
    return "{" + ",".join(f'{k}="{labels[k]}"' for k in sorted(by) if k in labels) + "}"


class _Deliveries:
    """Per-delivery views of the incidents' times, fingerprints and ids."""

    def __init__(self, owner, fired, ended, fps, ids, muter: _Muter) -> None:
        self.owner = np.asarray(owner, dtype="int64")
        self.fired, self.ended = fired[self.owner], ended[self.owner]
        self.fired_ns, self.ended_ns = self.fired.tolist(), self.ended.tolist()  # fast per item
        self.fps = [fps[i] for i in owner]
        self.ids = [ids[i] for i in owner]
        self.muter = muter

    def muted(self, d: int, t: int) -> bool:
        return self.muter.muted(int(self.owner[d]), t)

    def next_change(self, d: int, t: int) -> int:
        return self.muter.next_change(int(self.owner[d]), t)


class _Replay:
    """What the flushes found: notification rows and per-delivery marks."""

    def __init__(self, n: int) -> None:
        self.rows: list[dict] = []
        self.opened = np.zeros(n, dtype=bool)
        self.seen = np.zeros(n, dtype=bool)  # firing and not muted at some flush
        self.inhibited = np.zeros(n, dtype=bool)  # firing and inhibited at some flush
        self.held = np.zeros(n, dtype=bool)  # firing, not inhibited, route time-muted
        self.first_sent = np.full(n, _NEVER, dtype="int64")

    def result(
        self, frame: pd.DataFrame, keys: list[str], legs: list[_Leg], routed: bool
    ) -> NotificationReplay:
        """``frame``: one row per delivery (the incidents, repeated for each route)."""
        columns = ["at", "group", "reason", "alerts", "new", "opener", "route", "receiver"]
        notes = pd.DataFrame(self.rows, columns=columns)
        notes["at"] = pd.to_datetime(notes["at"].astype("int64"), unit="ns", utc=True)
        order = ["at", "route", "group"] if routed else ["at", "group"]
        notes = notes.sort_values(order, kind="stable", ignore_index=True)
        fate = np.where(
            self.opened,
            "notified",
            np.where(
                self.seen,
                "merged",
                np.where(self.held, "muted", np.where(self.inhibited, "inhibited", "silent")),
            ),
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
        if routed:
            fates.insert(2, "route", [leg.path for leg in legs])
            fates.insert(3, "receiver", [leg.receiver for leg in legs])
            fates["waited"] = fates["notified_at"] - frame["triggered_at"]
        else:
            notes = notes.drop(columns=["route", "receiver"])
        pages = int(notes["reason"].isin(("first", "new alerts", "repeat")).sum())
        incidents = int(frame["incident_id"].nunique()) if routed else len(frame)
        summary = {
            "incidents": incidents,
            "notifications": pages,
            "resolved_notifications": int((notes["reason"] == "resolved").sum()),
            "pages_saved": incidents - pages,
            **{f: int((fate == f).sum()) for f in FATES},
        }
        return NotificationReplay(notifications=notes, fates=fates, summary=summary)


def _replay_group(
    key: str, members: list[int], leg: _Leg, at: _Deliveries, stop: int, state: _Replay
) -> None:
    """One group key of one route through time (``members``: deliveries, in trigger
    order); the notification log entry outlives each group's life, as nflog's does."""
    route = leg.route
    fired, ended, fps, ids = at.fired_ns, at.ended_ns, at.fps, at.ids
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
        hushed = {f for f in live | quiet if at.muted(rep[f], t)}
        held = leg.held(t)  # the inhibition stage runs before the time stages (notify.go)
        for i in firing:
            if fps[i] in hushed:
                state.inhibited[i] = True
            elif held:
                state.held[i] = True
            else:
                state.seen[i] = True
        if held:  # nothing reaches the dedup stage: the log entry stays as it was
            present = [i for i in present if fps[i] not in quiet]
            continue
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
                        "route": leg.path,
                        "receiver": leg.receiver,
                    }
                )
            entry = (fire, done, t)
        elif not quiet:
            t = _skip_steady(t, interval, pending, firing, rep, entry, repeat, at)
            if t is None:
                return
        present = [i for i in present if fps[i] not in quiet]


def _skip_steady(t, interval, pending, firing, rep, entry, repeat, at: _Deliveries):
    """After a flush that sent nothing and removed nothing, every later flush finds the
    same until an input changes: an alert arrives or stops firing, an inhibition starts or
    ends, a repeat falls due. The flush before the first one at or after that instant
    (the loop then adds ``group_interval``); None when nothing will change. Only called
    after a flush the route's time intervals did not hold: flushes they hold in between
    send nothing and mark only alerts already seen. Keeps the replay linear in the
    incidents rather than in the flushes of long-open groups."""
    due = min(
        at.fired_ns[pending[0]] if pending else _FOREVER,
        min((at.ended_ns[i] for i in firing), default=_FOREVER),
        min((at.next_change(i, t) for i in rep.values()), default=_FOREVER),
        # a repeat already overdue is not sent when nothing fires: no change then
        _FOREVER if entry is None or entry[2] + repeat + 1 <= t else entry[2] + repeat + 1,
    )
    if due >= _FOREVER:
        return None
    return t + (-(-(due - t) // interval) - 1) * interval


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
