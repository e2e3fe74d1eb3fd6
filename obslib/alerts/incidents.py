"""Incidents from the data itself: response times, a timeline, and the budget each burned.

Pure functions on frames the loaders return (``load.incidents``, ``load.spans``,
``load.logs``, ``load.slo_counts``); no I/O. What a postmortem states as fact comes from
here, so no number in it is typed in by hand.

- **Response times**: time to acknowledge (triggered -> acknowledged) and to resolve
  (triggered -> resolved) per incident, and their means (MTTA, MTTR) by service and severity.
- **Timeline**: the first SLI breach of each SLO of the service (its short-window burn above
  1, that is faster than the budget allows), the first failing server span, the first error
  log, deploy-like log events in the hour before, then the incident's own triggered,
  acknowledged, escalations and resolved. Time to detect = triggered - the first bad minute.
- **Budget burned**: per SLO, the bad events between the first bad minute and the
  resolution, as a percent of the budget the SLO's whole period allows; for a postmortem,
  the SLOs of the paged service and the services linked to it, and which it overspent.
- **Impact**: user requests, each counted once at its entry span, that failed or were slow
  against the entry service's latency SLO (``user_impact``, from ``alerts.impact``, where the
  rule is stated whole); failed and slow *calls* per service and operation of the paged
  service and its neighbourhood in the service graph, each against that service's own
  threshold (``impact``); failed calls per minute of the paged service; spans and failures
  per service against the same hours the day before.
- **Trigger**: the changes up to the first bad minute (or the page) against those after.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from obslib import slo
from obslib.alerts.impact import (  # the user-impact rule, re-exported: incidents.user_impact
    USER_COLUMNS,  # noqa: F401
    UserImpact,  # noqa: F401
    entry_spans,  # noqa: F401
    latency_thresholds,
    user_impact,  # noqa: F401
)
from obslib.errors import InputError
from obslib.schema import ERROR_LEVELS, require_columns
from obslib.slo import status as slo_status

BREACH_WINDOW = pd.Timedelta(minutes=5)  # the short window whose burn above 1 is a breach
LOOKBACK = pd.Timedelta(hours=1)  # how far before the page the timeline looks for causes
PAGE_MINUTE = pd.Timedelta(minutes=1)  # the least an incident's window reaches past its page
DEPLOY_EVENTS = ("deploy", "rollback", "rollout", "release", "config_change")
_DEPLOY_WORDS = ("deploy", "rollback", "rollout", "release")
_INCIDENT_COLUMNS = ("incident_id", "service_name", "severity", "triggered_at")


def response_times(incidents: pd.DataFrame) -> pd.DataFrame:
    """Per incident: ``time_to_acknowledge`` and ``time_to_resolve`` (NaT while open)."""
    require_columns(incidents, (*_INCIDENT_COLUMNS, "acknowledged_at", "resolved_at"), "incidents")
    out = incidents[list(_INCIDENT_COLUMNS)].copy()
    out["time_to_acknowledge"] = incidents["acknowledged_at"] - incidents["triggered_at"]
    out["time_to_resolve"] = incidents["resolved_at"] - incidents["triggered_at"]
    return out.reset_index(drop=True)


def mean_times(incidents: pd.DataFrame, by: tuple[str, ...] = ("service_name", "severity")):
    """MTTA and MTTR per group: ``incidents``, ``acknowledged``, ``resolved`` (counts) and
    ``mtta``/``mttr`` over the incidents that were acknowledged/resolved (NaT for none)."""
    times = response_times(incidents)
    grouped = times.groupby(list(by), dropna=False, sort=True)
    out = grouped.agg(
        incidents=("incident_id", "size"),
        acknowledged=("time_to_acknowledge", "count"),
        resolved=("time_to_resolve", "count"),
        mtta=("time_to_acknowledge", "mean"),
        mttr=("time_to_resolve", "mean"),
    )
    return out.reset_index()


def first_breach(
    counts: pd.DataFrame,
    definition: dict,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    min_events: int = 0,
) -> pd.Timestamp | None:
    """The first minute in ``[start, end)`` whose short-window burn (5 minutes ending with
    it) exceeds 1: the SLO starts losing budget faster than it may. None when it never does
    (or the SLO has no budget to burn). ``min_events``: a window with fewer events is no
    evidence (one slow request of three burns at 30x on a 99 % SLO)."""
    if definition["slo_type"] not in slo.BUDGETED_TYPES:
        return None
    step = pd.Timedelta(minutes=1)
    series = slo.sli_series(counts, definition)
    grid = slo_status.burn_grid(series, start, end, step=step, lookback=BREACH_WINDOW)
    good, total = grid.sums(BREACH_WINDOW)
    burning = slo.burn_rate(total - good, total, slo.good_target(definition)) > 1
    burning &= total >= min_events
    hits = np.flatnonzero(burning)
    if not len(hits):
        return None
    return grid.first_bad(grid.first + int(hits[0]), BREACH_WINDOW)


@dataclass(frozen=True)
class Timeline:
    """An incident's events in time order (``time``, ``kind``, ``what``) and the times a
    postmortem states: ``first_bad`` (the earliest breach or failing span), ``time_to_detect``
    (triggered - first_bad), ``time_to_acknowledge``, ``time_to_resolve``."""

    events: pd.DataFrame
    first_bad: pd.Timestamp | None
    time_to_detect: pd.Timedelta | None
    time_to_acknowledge: pd.Timedelta | None
    time_to_resolve: pd.Timedelta | None


def timeline(
    incident: dict,
    *,
    errors: pd.DataFrame,
    logs: pd.DataFrame,
    counts: pd.DataFrame,
    slos: pd.DataFrame,
    lookback: pd.Timedelta = LOOKBACK,
    min_events: int = slo.DEFAULT_MIN_EVENTS,
) -> Timeline:
    """The timeline of one incident (a row of ``load.incidents`` as a dict) from the data:
    ``errors`` are failing spans, ``logs`` log records and ``counts`` per-minute SLI counts
    (``load.slo_counts``), all covering ``lookback`` before the page to ``window_end``;
    ``slos`` the SLOs of the incident's service. A breach needs ``min_events`` in its
    5-minute window. The first bad minute is the earliest breach or failing request at or
    before the page (what came after it is in the timeline, but the page did not miss it)."""
    for column in ("triggered_at", "service_name", "incident_id"):
        if column not in incident:
            raise InputError(f"incident lacks {column}")
    require_columns(errors, ("start_time", "service_name", "span_kind", "status"), "errors")
    require_columns(logs, ("timestamp", "level", "service_name", "message"), "logs")
    service = incident["service_name"]
    triggered = incident["triggered_at"]
    since = triggered - lookback
    until = window_end(incident)
    rows: list[tuple[pd.Timestamp, str, str]] = []
    breaches = []
    kind = alert_kind(incident)
    for d in slo.check_definitions(slos[slos["service_name"] == service]):
        at = first_breach(counts, d, since, until, min_events=min_events)
        if at is not None:
            if d["slo_type"] in KIND_SLO_TYPES[kind]:
                breaches.append(at)
            rows.append((at, "sli_breach", f"{slo.slo_label(d)} burns its budget over 1x"))
    failing = errors[
        (errors["service_name"] == service)
        & (errors["span_kind"] == "server")
        & (errors["status"] != "ok")
        & (errors["start_time"] >= since)
        & (errors["start_time"] < until)
    ]
    first_error = failing["start_time"].min() if len(failing) else None
    if first_error is not None:
        rows.append((first_error, "first_error_span", f"{len(failing)} failing {service} calls"))
    mine = logs[(logs["service_name"] == service) & (logs["timestamp"] >= since)]
    mine = mine[mine["timestamp"] < until]
    bad_logs = mine[mine["level"].isin(ERROR_LEVELS)]
    if len(bad_logs):
        first_log = bad_logs.sort_values("timestamp").iloc[0]
        rows.append((first_log["timestamp"], "first_error_log", str(first_log["message"])))
    for record in mine[_deploy_like(mine)].sort_values("timestamp").to_dict("records"):
        rows.append((record["timestamp"], "change", str(record["message"])))
    rows += _incident_events(incident)
    events = pd.DataFrame(rows, columns=["time", "kind", "what"])
    events["time"] = pd.to_datetime(events["time"], utc=True)
    events = events.sort_values(["time", "kind"], kind="stable").reset_index(drop=True)
    failed = first_error if kind == AVAILABILITY else None  # a failure is no slow request
    candidates = [
        t for t in [*breaches, failed] if t is not None and pd.notna(t) and t <= triggered
    ]
    first_bad = min(candidates) if candidates else None
    acknowledged, resolved = incident.get("acknowledged_at"), incident.get("resolved_at")
    return Timeline(
        events=events,
        first_bad=first_bad,
        time_to_detect=None if first_bad is None else triggered - first_bad,
        time_to_acknowledge=None if missing(acknowledged) else acknowledged - triggered,
        time_to_resolve=None if missing(resolved) else resolved - triggered,
    )


# -- the alert's kind, outages and their detection time --------------------------------------

LATENCY = "latency"
AVAILABILITY = "availability"
# the SLO types whose bad events an alert of each kind is about
KIND_SLO_TYPES = {AVAILABILITY: ("availability", "error_rate"), LATENCY: ("latency",)}
_LATENCY_WORDS = ("latency", "slow", "duration", "p50", "p90", "p95", "p99", "response_time")


def alert_kind(incident: dict) -> str:
    """What an alert watches: ``"latency"`` when its ``alert_name``, ``alert_type`` or
    ``incident_data`` (``kind``, ``metric``, ``metric_name``) names a latency word
    (latency, slow, duration, p50/p90/p95/p99, response_time), else ``"availability"``
    (error rates, 5xx, timeouts, burn and budget alerts: failed requests)."""
    data = incident.get("incident_data")
    said = [incident.get("alert_name"), incident.get("alert_type")]
    if isinstance(data, dict):
        said += [data.get(k) for k in ("kind", "metric", "metric_name")]
    text = " ".join(str(s).lower() for s in said if not missing(s))
    return LATENCY if any(w in text for w in _LATENCY_WORDS) else AVAILABILITY


@dataclass(frozen=True)
class Detection:
    """An outage's detection: its first page (``lead``), the ``kind`` of that page's alert,
    the ``first_bad`` minute of the matching SLI and ``time_to_detect`` (first page -
    first_bad; None when nothing bad came at or before the page)."""

    lead: str
    kind: str
    first_bad: pd.Timestamp | None
    time_to_detect: pd.Timedelta | None


def outage_detection(
    lead: dict,
    *,
    errors: pd.DataFrame,
    logs: pd.DataFrame,
    counts: pd.DataFrame,
    slos: pd.DataFrame,
) -> Detection:
    """The detection time of the outage whose first page is ``lead`` (a ``load.incidents``
    row as a dict): ``timeline``'s first bad minute of that page, which follows its alert's
    kind. ``errors``, ``logs`` and ``counts`` cover ``LOOKBACK`` before its page to its
    ``window_end``; what the health scorecard and the postmortem both state."""
    got = timeline(lead, errors=errors, logs=logs, counts=counts, slos=slos)
    return Detection(str(lead["incident_id"]), alert_kind(lead), got.first_bad, got.time_to_detect)


def missing(value: object) -> bool:
    """None, NaN or NaT: a loader's NULL (text NULLs arrive as NaN, which is truthy)."""
    return value is None or (not isinstance(value, str) and pd.isna(value))


def name_or(value: object, fallback: str) -> str:
    """A name for a sentence: ``fallback`` for a NULL (None or NaN, never the text 'nan')."""
    return fallback if missing(value) or not str(value).strip() else str(value)


def window_end(incident: dict) -> pd.Timestamp:
    """Where an incident's data ends (exclusive): its resolution, or LOOKBACK after the page
    while open; never less than PAGE_MINUTE after the page, so what happened at the page
    instant is inside the window even for an incident resolved the moment it paged."""
    triggered, resolved = incident["triggered_at"], incident.get("resolved_at")
    if missing(resolved):
        return triggered + LOOKBACK
    return max(resolved, triggered + PAGE_MINUTE)


def _deploy_like(logs: pd.DataFrame) -> pd.Series:
    """Records of a change: ``fields.event`` names one (deploy, rollback, ...), or the
    message starts with one of their words."""
    event = [
        isinstance(f, dict) and str(f.get("event", "")).lower() in DEPLOY_EVENTS
        for f in logs.get("fields", pd.Series([None] * len(logs), index=logs.index))
    ]
    said = logs["message"].astype(str).str.lower().str.startswith(_DEPLOY_WORDS)
    return pd.Series(event, index=logs.index) | said


def _incident_events(incident: dict) -> list[tuple[pd.Timestamp, str, str]]:
    """Triggered, acknowledged (by whom), each escalation in ``incident_data``, resolved."""
    rows = [(incident["triggered_at"], "triggered", f"{incident['incident_id']} paged")]
    if not missing(incident.get("acknowledged_at")):
        who = name_or(incident.get("acknowledged_by"), "someone")
        rows.append((incident["acknowledged_at"], "acknowledged", f"acknowledged by {who}"))
    data = incident.get("incident_data") or {}
    for step in data.get("escalations", []) if isinstance(data, dict) else []:
        try:
            at = pd.Timestamp(step["at"])
        except (KeyError, TypeError, ValueError):
            continue  # an escalation without a time cannot be placed
        at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
        to = step.get("to", "the next level")
        rows.append((at, "escalated", f"escalated to level {step.get('level', '?')} ({to})"))
    if not missing(incident.get("resolved_at")):
        who = name_or(incident.get("resolved_by"), "someone")
        rows.append((incident["resolved_at"], "resolved", f"resolved by {who}"))
    return rows


def budget_burned(
    counts: pd.DataFrame, slos: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame:
    """Per budgeted SLO: the ``bad`` events in ``[start, end)`` and the share of the SLO's
    whole-period budget they spent (``burned_pct``: bad / (budget share x the events of
    the period ending at ``end``)). ``counts`` per minute must reach back one period."""
    rows = []
    step = pd.Timedelta(minutes=1)
    for d in slo.check_definitions(slos):
        if d["slo_type"] not in slo.BUDGETED_TYPES:
            continue
        series = slo.sli_series(counts, d)
        grid = slo_status.burn_grid(series, end, end, step=step, lookback=slo.period(d))
        _, period_total = grid.at_end(slo.period(d))
        span = series[(series.index >= start) & (series.index < end)]
        bad = int((span["total"] - span["good"]).sum())
        allowed = float(slo.error_budget(slo.good_target(d))) * period_total
        burned = 100.0 * bad / allowed if allowed > 0 else (np.inf if bad else 0.0)
        rows.append(
            {
                "service_name": d["service_name"],
                "slo_name": d["slo_name"],
                "bad": bad,
                "events": int(span["total"].sum()),
                "budget_events": allowed,
                "burned_pct": burned,
            }
        )
    columns = ["service_name", "slo_name", "bad", "events", "budget_events", "burned_pct"]
    return pd.DataFrame(rows, columns=columns)


def neighbourhood(edges: pd.DataFrame, service: str) -> dict[str, str]:
    """How each service of the graph relates to ``service``: ``"paged"`` itself,
    ``"upstream"`` when it calls it (directly or through others: its requests wait on it),
    ``"downstream"`` when ``service`` calls it; services in neither are left out."""
    require_columns(edges, ("caller", "callee"), "edges")
    callers: dict[str, set[str]] = {}
    callees: dict[str, set[str]] = {}
    for a, b in zip(edges["caller"].astype(str), edges["callee"].astype(str), strict=True):
        callers.setdefault(b, set()).add(a)
        callees.setdefault(a, set()).add(b)
    out = {service: "paged"}
    for graph, name in ((callers, "upstream"), (callees, "downstream")):
        todo = [service]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in out:
                    out[nxt] = name
                    todo.append(nxt)
    return out


CALL_COLUMNS = (
    "service_name", "relation", "operation_name", "calls", "failed_calls", "slow_calls",
    "slow_over_ms", "first_failure", "last_failure",
)  # fmt: skip


def impact(
    spans: pd.DataFrame,
    edges: pd.DataFrame,
    service: str,
    slos: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> pd.DataFrame:
    """Failed and slow *calls* (server spans) in ``[start, end)`` per service and operation,
    for the paged service and every service linked to it in the service graph (``edges``):
    ``CALL_COLUMNS``. One user request makes calls in several services, so these never add
    up to requests (``user_impact`` counts those, once each).

    A slow call is one of that service's own: longer than *its* latency SLO threshold
    (``latency_thresholds``: the lowest of its latency SLOs, ``slow_over_ms``), failed or
    not, so an upstream service with a tighter threshold can count slow calls where the
    service it waits on counts none. Exactly at the threshold is not slow. A service
    without a latency SLO has no slow count (blank, not 0: nobody said what slow is). Rows
    with neither failed nor slow calls are left out; most failed first.
    """
    require_columns(
        spans, ("service_name", "operation_name", "span_kind", "status", "start_time"), "spans"
    )
    related = neighbourhood(edges, service)
    server = spans[
        (spans["span_kind"] == "server")
        & (spans["start_time"] >= start)
        & (spans["start_time"] < end)
        & spans["service_name"].astype(str).isin(related)
    ]
    thresholds = latency_thresholds(slos)
    if server.empty:
        return pd.DataFrame(columns=list(CALL_COLUMNS))
    frame = server.assign(
        service_name=server["service_name"].astype(str),
        operation_name=server["operation_name"].astype(str),
        failed=(server["status"] != "ok").to_numpy(),
    )
    frame["slow_over_ms"] = frame["service_name"].map(thresholds).astype(float)
    limit = frame["slow_over_ms"]
    frame["slow"] = np.where(limit.isna(), np.nan, frame["duration_ms"].to_numpy() > limit)
    frame["failed_at"] = frame["start_time"].where(frame["failed"])
    out = frame.groupby(["service_name", "operation_name"], observed=True, sort=True).agg(
        calls=("failed", "size"),
        failed_calls=("failed", "sum"),
        slow_calls=("slow", lambda s: np.nan if s.isna().all() else s.sum()),
        slow_over_ms=("slow_over_ms", "first"),
        first_failure=("failed_at", "min"),
        last_failure=("failed_at", "max"),
    )
    out = out.reset_index()
    out["failed_calls"] = out["failed_calls"].astype("int64")
    out["relation"] = out["service_name"].map(related)
    hit = (out["failed_calls"] > 0) | (out["slow_calls"].fillna(0) > 0)
    out = out[hit].sort_values(
        ["failed_calls", "slow_calls", "service_name"], ascending=[False, False, True]
    )
    return out[list(CALL_COLUMNS)].reset_index(drop=True)


MINUTE = pd.Timedelta(minutes=1)
MINUTE_COLUMNS = ("minute", "requests", "failed")


def failures_per_minute(
    spans: pd.DataFrame, service: str, step: pd.Timedelta = MINUTE
) -> pd.DataFrame:
    """The calls (server spans) of ``service`` per minute (or per ``step``) and how many
    failed: ``minute`` (each bucket's start, floored to the step), ``requests`` (calls; the
    chart's column name), ``failed``. A bucket without a call is left out; no call at all is
    an empty frame with those columns."""
    require_columns(spans, ("service_name", "span_kind", "status", "start_time"), "spans")
    server = spans[(spans["service_name"] == service) & (spans["span_kind"] == "server")]
    if server.empty:
        return pd.DataFrame(columns=list(MINUTE_COLUMNS))
    minute = server["start_time"].dt.floor(step)
    per = server.assign(minute=minute, bad=server["status"] != "ok").groupby("minute")
    return per.agg(requests=("bad", "size"), failed=("bad", "sum")).reset_index()


def errors_by_service(window: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    """Spans and failed spans (status not ``ok``) per service in ``window`` against
    ``baseline`` (the same hours the day before): ``service_name``, ``spans``, ``failed``,
    ``error_rate`` and the same three with ``_day_before``. A service without a span in the
    baseline has 0 spans and failures there and no error rate (blank, not 0 %); a service
    only in the baseline is left out. Most failed first, then most spans."""
    both = _error_counts(window).join(_error_counts(baseline).add_suffix("_day_before"), how="left")
    both = both.reset_index()
    counts = ["spans_day_before", "failed_day_before"]
    both[counts] = both[counts].fillna(0)
    both = both.sort_values(["failed", "spans"], ascending=False, ignore_index=True)
    for column in ("spans", "failed", *counts):
        both[column] = both[column].astype("int64")
    return both


def _error_counts(spans: pd.DataFrame) -> pd.DataFrame:
    """Per service (the index): ``spans``, ``failed`` and their ratio ``error_rate``."""
    if spans.empty:
        return pd.DataFrame(columns=["spans", "failed", "error_rate"]).rename_axis("service_name")
    require_columns(spans, ("service_name", "status"), "spans")
    grouped = spans.assign(
        service_name=spans["service_name"].astype(str), bad=spans["status"] != "ok"
    ).groupby("service_name")
    out = grouped.agg(spans=("bad", "size"), failed=("bad", "sum"))
    out["error_rate"] = out["failed"] / out["spans"]
    return out


def linked_slos(slos: pd.DataFrame, edges: pd.DataFrame, service: str) -> pd.DataFrame:
    """The SLOs of ``service`` and of every service linked to it in the service graph
    (``neighbourhood``): those whose budget an incident of ``service`` can burn."""
    if slos.empty:
        return slos
    require_columns(slos, ("service_name",), "slos")
    return slos[slos["service_name"].isin(neighbourhood(edges, service))]


def budgeted_services(slos: pd.DataFrame, edges: pd.DataFrame, service: str) -> list[str]:
    """The services among ``service`` and those linked to it that have a budgeted SLO
    (availability, latency, error rate), sorted: what an empty budget table is about."""
    linked = linked_slos(slos, edges, service)
    if linked.empty:
        return []
    budgeted = linked[linked["slo_type"].isin(slo.BUDGETED_TYPES)]
    return sorted(set(budgeted["service_name"].astype(str)))


def incident_budget(
    counts: pd.DataFrame,
    slos: pd.DataFrame,
    edges: pd.DataFrame,
    service: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    data_start: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """``budget_burned`` in ``[start, end)`` for the SLOs of ``service`` and the services
    linked to it: each SLO that lost events, and the paged service's own even when they
    lost none (a postmortem says so); most burned first.

    ``period`` is each SLO's period and ``covered`` the share of it (ending at ``end``) the
    stored data covers (``slo.status.period_covered``, given ``data_start``: the first span):
    a budget judged on 12.6 of 30 days of data is a share of those days' events, and says
    so. 1.0 when ``data_start`` is None."""
    burned = budget_burned(counts, linked_slos(slos, edges, service), start, end)
    burned = burned[(burned["bad"] > 0) | (burned["service_name"] == service)]
    burned = burned.sort_values("burned_pct", ascending=False, ignore_index=True)
    definitions = (
        {(d["service_name"], d["slo_name"]): d for d in slo.check_definitions(slos)}
        if len(slos)
        else {}
    )
    keys = list(zip(burned["service_name"], burned["slo_name"], strict=True))
    burned["period"] = pd.to_timedelta(
        [slo.period(definitions[k]) if k in definitions else pd.NaT for k in keys]
    )
    burned["covered"] = [
        slo_status.period_covered(definitions[k], end, data_start) if k in definitions else 1.0
        for k in keys
    ]
    return burned


OVERSPENT_PCT = 100.0  # an incident that alone spent a whole period's budget


def overspent(budget: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``incident_budget`` (or ``budget_burned``) whose SLO this incident alone
    overspent: ``OVERSPENT_PCT`` (100 %) or more of its whole period's budget, in their
    order."""
    require_columns(budget, ("burned_pct",), "budget")
    return budget[budget["burned_pct"] >= OVERSPENT_PCT]


def changes_around(
    timeline: Timeline, triggered: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The timeline's changes split at the first bad minute (without one, at the page):
    those up to it may have triggered the incident; those after it belong to its
    resolution (a rollback). Each in time order."""
    changes = timeline.events[timeline.events["kind"] == "change"]
    cut = timeline.first_bad if timeline.first_bad is not None else triggered
    return changes[changes["time"] <= cut], changes[changes["time"] > cut]
