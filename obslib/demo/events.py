"""The demo's events around the spans: request and background logs, deploys, alert
incidents (the scripted one, flapping and false positives).

Incident ids read like a pager's: ``INC-<trigger day>-<number>``, numbered per UTC day in
trigger order. Nothing in an id says which incident is scripted noise: the demo's tests
know that from the alert and the time.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from obslib.demo import topology as topo


def incident_window() -> tuple[pd.Timestamp, pd.Timestamp]:
    """The scripted regression: from the bad deploy to its rollback."""
    return topo.DEPLOY_AT, topo.DEPLOY_AT + pd.Timedelta(minutes=topo.INCIDENT_MINUTES)


def main_incident_id() -> str:
    """The id of the scripted incident's page: the first incident of the incident day
    (background noise is kept off that day)."""
    return incident_id(topo.DEPLOY_AT, 1)


def incident_id(day: pd.Timestamp, number: int) -> str:
    """A pager-style incident id: the trigger's UTC day and its number on that day."""
    return f"INC-{day.strftime('%Y%m%d')}-{number:04d}"


def _numbered(rows: list[dict]) -> pd.DataFrame:
    """The incidents with ids numbered per trigger day in trigger order, rows in place."""
    frame = pd.DataFrame(rows)
    triggered = pd.to_datetime(frame["triggered_at"], utc=True)
    order = triggered.sort_values(kind="stable").index
    day = triggered.dt.floor("D")
    number = day.loc[order].groupby(day.loc[order]).cumcount() + 1
    frame.insert(0, "incident_id", [incident_id(day[i], int(number[i])) for i in frame.index])
    return frame


def request_logs(
    nd, frame: pd.DataFrame, logged: np.ndarray, reasons: np.ndarray, own: np.ndarray, hosts
):
    """One record per logged request: a failed one (``reasons``: why, None when it did not
    fail; ``own``: it failed itself, not through a call) logs its failure at error level
    with a stack; a slow one warns. From the bad deploy to its rollback, domain-service's
    own failures say something new (``pool_timeouts``): the template the log rules find."""
    reasons = pool_timeouts(nd, frame, reasons, own, hosts)
    failed = pd.notna(reasons)
    slow = frame["duration_ms"].to_numpy() > 1000
    level = np.where(failed, "error", np.where(slow, "warn", "info")).astype(object)
    text = np.where(
        failed, reasons, np.where(slow, f"slow request: {nd.operation}", f"{nd.operation} ok")
    ).astype(object)
    kind = np.where(own, "Error", "UpstreamError")
    error = np.array(
        [
            f"{nd.service}.{k}: {r}\n    at handler ({nd.operation})\n    at server.serve"
            if bad
            else None
            for bad, k, r in zip(failed, kind, reasons, strict=True)
        ],
        dtype=object,
    )
    fields = [
        json.dumps({"duration_ms": round(float(d), 3), "host": h, "status": s}, sort_keys=True)
        for d, h, s in zip(frame["duration_ms"], hosts, frame["status"], strict=True)
    ]
    logs = pd.DataFrame(
        {
            "log_id": frame["span_id"] + "-req",
            "timestamp": frame["end_time"],
            "level": level,
            "service_name": nd.service,
            "trace_id": frame["trace_id"],
            "span_id": frame["span_id"],
            "message": text,
            "fields": fields,
            "error": error,
        }
    )
    return logs[logged].reset_index(drop=True)


def pool_timeouts(nd, frame: pd.DataFrame, reasons: np.ndarray, own: np.ndarray, hosts):
    """``reasons`` with domain-service's own failures inside the incident window worded as
    the bad version logs them: a pool checkout that timed out, with the wait, the host and
    the span (no random draw: the demo's other numbers stay as they were)."""
    if nd.service != "domain-service":
        return reasons
    start, end = incident_window()
    at = frame["end_time"]
    new = own & pd.notna(reasons) & ((at >= start) & (at < end)).to_numpy()
    if not new.any():
        return reasons
    out = reasons.copy()
    waited = frame["duration_ms"].to_numpy()
    spans = frame["span_id"].to_numpy()
    for i in np.flatnonzero(new):
        out[i] = (
            f"pool checkout timed out after {waited[i]:.0f} ms: 64/64 connections in use"
            f" (pool=domains-rw host={hosts[i]} span={spans[i]})"
        )
    return out


def background_logs(rng: np.random.Generator, day_start: pd.Timestamp) -> pd.DataFrame:
    """Logs that belong to no request: health checks, pool stats, cache evictions, deploys."""
    rows = []
    for service in topo.HOSTS:
        for minute in range(0, 24 * 60, 30):
            at = day_start + pd.Timedelta(minutes=minute, seconds=int(rng.integers(0, 60)))
            rows.append(
                (
                    f"bg-{service}-{at.value // 1000}",
                    at,
                    "debug",
                    service,
                    "health check ok",
                    {"check": "liveness"},
                    None,
                )
            )
    for minute in np.sort(rng.choice(24 * 60, size=6, replace=False)):
        at = day_start + pd.Timedelta(minutes=int(minute))
        rows.append(
            (
                f"evict-cache-{at.value // 1000}",
                at,
                "warn",
                "cache",
                "evicted keys under memory pressure",
                {"evicted": int(rng.integers(100, 5000))},
                None,
            )
        )
    day_end = day_start + pd.Timedelta(days=1)
    for at, service, version, previous in topo.DEPLOYS:
        if day_start <= at < day_end:
            rows += _deploy_logs(at, service, version, previous)
    frame = pd.DataFrame(
        rows, columns=["log_id", "timestamp", "level", "service_name", "message", "fields", "error"]
    )
    frame["trace_id"] = None
    frame["span_id"] = None
    return frame


def _deploy_logs(at: pd.Timestamp, service: str, version: str, previous: str) -> list[tuple]:
    deploy = {
        "event": "deploy",
        "version": version,
        "previous_version": previous,
        "actor": "ci-pipeline",
    }
    rows = [
        (
            f"deploy-{service}-{version}-start",
            at,
            "info",
            service,
            f"deploy started: {service} {previous} -> {version}",
            deploy,
            None,
        ),
        (
            f"deploy-{service}-{version}-done",
            at + pd.Timedelta(seconds=50),
            "info",
            service,
            f"deploy finished: {service} {version} on all hosts",
            deploy,
            None,
        ),
    ]
    if version == topo.BAD_VERSION:
        _, end = incident_window()
        rollback = {
            "event": "rollback",
            "version": previous,
            "previous_version": version,
            "actor": "bob",
        }
        rows += [
            (
                f"rollback-{service}-{version}",
                end - pd.Timedelta(minutes=1),
                "warn",
                service,
                f"rollback started: {service} {version} -> {previous}",
                rollback,
                None,
            ),
            (
                f"rollback-{service}-{version}-done",
                end,
                "info",
                service,
                f"rollback finished: {service} {previous} on all hosts",
                rollback,
                None,
            ),
        ]
    return rows


def detection_time(spans: pd.DataFrame) -> pd.Timestamp:
    """When the error-rate alert fires: one evaluation (1 min) after the second
    domain-service error within 5 minutes of another, after the deploy.

    Derived from the generated spans, so the page follows the errors at any demo size;
    With thinner traffic, a minute after the first error (or 6 after the deploy).
    """
    deploy, end = incident_window()
    errors = spans.loc[
        (spans["service_name"] == "domain-service")
        & (spans["span_kind"] == "server")
        & (spans["status"] == "error")
        & (spans["start_time"] >= deploy)
        & (spans["start_time"] < end),
        "end_time",
    ].sort_values()
    close = errors.diff() <= pd.Timedelta(minutes=5)
    if close.any():
        return errors[close].iloc[0].ceil("min") + pd.Timedelta(minutes=1)
    if len(errors):  # thin traffic: the first error is all there is to see
        return errors.iloc[0].ceil("min") + pd.Timedelta(minutes=1)
    return deploy + pd.Timedelta(minutes=6)


def alert_incidents(
    seed: int = topo.DEFAULT_SEED, detected_at: pd.Timestamp | None = None
) -> pd.DataFrame:
    """The scripted incident, its correlated alerts, and two weeks of background noise.

    ``detected_at`` is when the page fires (``detection_time`` of the incident day's spans).
    """
    rng = np.random.default_rng([seed, 1000])
    _, end = incident_window()
    minute = pd.Timedelta(minutes=1)
    # times below are minutes after `paged` (the first page), which follows the errors
    paged = detected_at if detected_at is not None else topo.DEPLOY_AT + 6 * minute
    main = main_incident_id()
    rows = [
        dict(
            alert_name="domain-service-high-error-rate",
            status="resolved",
            severity="critical",
            triggered_at=paged,
            acknowledged_at=paged + 3 * minute,
            resolved_at=end + 2 * minute,
            acknowledged_by="alice",
            resolved_by="bob",
            escalation_level=2,
            incident_data={
                "summary": "domain-service 5xx after deploy " + topo.BAD_VERSION,
                "escalations": [
                    {
                        "at": (paged + 14 * minute).isoformat(),
                        "level": 2,
                        "to": "domain-service-secondary",
                    }
                ],
                "root_cause": "connection pool exhausted in " + topo.BAD_VERSION,
                "remediation": "rollback to " + topo.GOOD_VERSION,
            },
        ),
        dict(
            alert_name="api-gateway-latency-p99",
            status="resolved",
            severity="high",
            triggered_at=paged + 2 * minute,
            acknowledged_at=paged + 4 * minute,
            resolved_at=end + 3 * minute,
            acknowledged_by="alice",
            resolved_by="bob",
            escalation_level=1,
            incident_data={"related_to": main},
        ),
        dict(
            alert_name="domain-service-availability-burn",
            status="resolved",
            severity="critical",
            triggered_at=paged + 5 * minute,
            acknowledged_at=paged + 6 * minute,
            resolved_at=end + 5 * minute,
            acknowledged_by="alice",
            resolved_by="bob",
            escalation_level=1,
            incident_data={"related_to": main, "burn_rate_1h": 31.5},
        ),
    ]
    start = topo.DEMO_END - pd.Timedelta(days=topo.DEMO_DAYS)
    # the background noise stays off the incident day: the scripted page is its first incident
    # a flapping alert: bursts of short dns-resolver timeout incidents, auto-resolved
    hours = np.arange(1, topo.DEMO_DAYS * 24 - 1)
    for burst in _off_incident_day(np.sort(rng.choice(hours, size=5, replace=False))):
        t = start + pd.Timedelta(hours=int(burst), minutes=int(rng.integers(0, 50)))
        for _ in range(int(rng.integers(4, 8))):
            fired = t
            t = t + pd.Timedelta(seconds=int(rng.integers(60, 240)))
            rows.append(
                dict(
                    alert_name="dns-resolver-timeouts",
                    status="auto_resolved",
                    severity="low",
                    triggered_at=fired,
                    resolved_at=t,
                    resolved_by="automated_runbook",
                    incident_data={"runbook": "restart-resolver-cache"},
                )
            )
            t = t + pd.Timedelta(seconds=int(rng.integers(30, 300)))
    # false positives: anomaly alerts nobody needed
    hours = np.arange(2, topo.DEMO_DAYS * 24 - 2)
    for hour in _off_incident_day(np.sort(rng.choice(hours, 5, replace=False))):
        fired = start + pd.Timedelta(hours=int(hour), minutes=int(rng.integers(0, 59)))
        rows.append(
            dict(
                alert_name="auth-service-latency-anomaly",
                status="resolved",
                severity="medium",
                triggered_at=fired,
                acknowledged_at=fired + 3 * minute,
                resolved_at=fired + 9 * minute,
                acknowledged_by="carol",
                resolved_by="carol",
                incident_data={"false_positive": True, "note": "weekly batch job"},
            )
        )
    # still going at the end of the window: one open, one acknowledged
    rows.append(
        dict(
            alert_name="campaign-service-error-budget",
            status="open",
            severity="high",
            triggered_at=topo.DEMO_END - 40 * minute,
            incident_data={},
        )
    )
    rows.append(
        dict(
            alert_name="cache-hit-ratio-anomaly",
            status="acknowledged",
            severity="low",
            triggered_at=topo.DEMO_END - 130 * minute,
            acknowledged_at=topo.DEMO_END - 100 * minute,
            acknowledged_by="dave",
            incident_data={},
        )
    )
    frame = _numbered(rows)
    if frame.loc[0, "incident_id"] != main:  # the notebooks' default id names the page
        raise AssertionError(f"the scripted page is {frame.loc[0, 'incident_id']}, not {main}")
    return frame


def _off_incident_day(hours: np.ndarray) -> np.ndarray:
    """Hours of the window (from its start) with those on the incident day moved a day
    earlier, so that background noise never opens that day before the scripted page."""
    start = topo.DEMO_END - pd.Timedelta(days=topo.DEMO_DAYS)
    incident_day = (topo.DEPLOY_AT.normalize() - start) // pd.Timedelta(days=1)
    return np.where(hours // 24 == incident_day, hours - 24, hours)
