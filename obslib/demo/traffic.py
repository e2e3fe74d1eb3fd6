"""One day of DomainFlow traffic: span trees laid out per request kind with numpy.

Each day's traffic is drawn from its own generator seeded by (seed, day, request kind), so
scaling the span count or writing in chunks changes nothing else.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from obslib.demo import topology as topo
from obslib.demo.events import background_logs, incident_window, request_logs

DEFAULT_SEED = topo.DEFAULT_SEED
DEFAULT_SPANS = topo.DEFAULT_SPANS
GAP_MS = 0.15  # between consecutive calls of one parent
LOG_SHARE = 0.85  # requests whose services log; the rest are traces without logs
ORPHAN_SHARE = 0.003  # traces that lost a span (a collector dropped it)
_US = 1_000  # microseconds per millisecond


def traces_per_day(total_spans: int) -> int:
    """Traces a day so that the 14 days hold about ``total_spans`` spans."""
    per_trace = sum(t.weight * _expected_spans(t) for t in topo.templates())
    return max(1, round(total_spans / per_trace / topo.DEMO_DAYS))


def _expected_spans(template: topo.Template) -> float:
    p = np.ones(len(template.nodes))
    for k, node in enumerate(template.nodes):
        p[k] = node.present * (p[node.parent] if node.parent >= 0 else 1.0)
    return float(p.sum())


# -- one day of traffic -------------------------------------------------------------------


def generate_day(day: int, seed: int = DEFAULT_SEED, per_day: int | None = None):
    """Spans and logs of day ``day`` (0 = the first of the 14), as two DataFrames."""
    per_day = per_day or traces_per_day(DEFAULT_SPANS)
    day_start = topo.DEMO_END - pd.Timedelta(days=topo.DEMO_DAYS - day)
    spans, logs = [], []
    for index, template in enumerate(topo.templates()):
        rng = np.random.default_rng([seed, day, index])
        n = max(1, round(per_day * template.weight))
        s, lg = _template_day(template, rng, n, day, day_start)
        spans.append(s)
        logs.append(lg)
    logs.append(background_logs(np.random.default_rng([seed, day, 99]), day_start))
    span_frame = pd.concat(spans, ignore_index=True)
    log_frame = pd.concat(logs, ignore_index=True)
    return span_frame, log_frame


def _arrival_times_us(rng: np.random.Generator, n: int, day_start: pd.Timestamp) -> np.ndarray:
    """Request start times over one day, busier in the European/US afternoon (peak 15:00 UTC)."""
    minutes = np.arange(24 * 60)
    rate = 1.0 + 0.65 * np.sin(2 * np.pi * (minutes / 60.0 - 9.0) / 24.0)
    minute = rng.choice(minutes, size=n, p=rate / rate.sum())
    offset_us = (minute * 60 + rng.random(n) * 60) * 1e6
    return np.sort(day_start.value // 1000 + offset_us.astype(np.int64))


def _template_day(template, rng, n, day, day_start):
    nodes = template.nodes
    k_count = len(nodes)
    parent = np.array([nd.parent for nd in nodes])
    roots_us = _arrival_times_us(rng, n, day_start)
    inc_lo, inc_hi = incident_window()
    in_incident = (roots_us >= inc_lo.value // 1000) & (roots_us < inc_hi.value // 1000)
    day_fraction = day + (roots_us - day_start.value // 1000) / 86_400e6

    # which spans happen: a child only when its parent does
    present = np.ones((n, k_count), dtype=bool)
    for k, nd in enumerate(nodes):
        if nd.parent >= 0:
            present[:, k] = present[:, nd.parent] & (rng.random(n) < nd.present)

    # own time per span (lognormal around its median), the trend and the incident applied
    own = np.empty((n, k_count))
    fails = np.zeros((n, k_count), dtype=bool)
    for k, nd in enumerate(nodes):
        own[:, k] = nd.self_ms * np.exp(rng.normal(0.0, nd.sigma, n))
        p_fail = np.full(n, nd.error)
        if nd.trend:
            own[:, k] *= 1.0 + 0.06 * day_fraction
        if nd.incident:
            own[:, k] = np.where(in_incident, own[:, k] * 5.0 + 350.0, own[:, k])
            p_fail = np.where(in_incident, 0.15, p_fail)
        fails[:, k] = (rng.random(n) < p_fail) & present[:, k]

    # durations bottom-up: a parent spans its own time plus its (sequential or parallel) calls
    duration = own.copy()
    consumer = np.array([nd.kind == "consumer" for nd in nodes])
    child_max = np.zeros((n, k_count))
    for k in range(k_count - 1, -1, -1):  # children have higher indices than their parent
        if nodes[k].fanout:
            duration[:, k] += child_max[:, k]  # all of k's children are done by now
        p = parent[k]
        if p < 0 or consumer[k]:
            continue  # a message consumer runs after its producer, not inside it
        contribution = np.where(present[:, k], duration[:, k] + GAP_MS, 0.0)
        if nodes[p].fanout:
            child_max[:, p] = np.maximum(child_max[:, p], contribution)
        else:
            duration[:, p] += contribution

    # start times top-down: children one after another from a cursor inside the parent
    start = np.zeros((n, k_count))
    cursor = np.zeros((n, k_count))
    for k, nd in enumerate(nodes):
        p = nd.parent
        if p < 0:
            start[:, k] = 0.0
        elif consumer[k]:
            start[:, k] = start[:, p] + duration[:, p] + rng.lognormal(np.log(40.0), 0.6, n)
        elif nodes[p].fanout:
            start[:, k] = cursor[:, p] + rng.random(n) * GAP_MS * 0.5
        else:
            start[:, k] = cursor[:, p]
            cursor[:, p] += np.where(present[:, k], duration[:, k] + GAP_MS, 0.0)
        cursor[:, k] = start[:, k] + own[:, k] * (0.5 if nd.kind == "client" else 0.3)

    # a failure fails every synchronous caller up to the root
    failed = fails.copy()
    for k in range(k_count - 1, 0, -1):
        if not consumer[k]:
            failed[:, parent[k]] |= failed[:, k]

    # hosts: a span runs where its parent runs when it is the same service
    host_idx = np.zeros((n, k_count), dtype=np.int64)
    for k, nd in enumerate(nodes):
        p = nd.parent
        if p >= 0 and nodes[p].service == nd.service:
            host_idx[:, k] = host_idx[:, p]
        else:
            host_idx[:, k] = rng.integers(0, len(topo.HOSTS[nd.service]), n)

    trace_ids = _hex_ids(rng, n, 32)
    span_ids = np.array(_hex_ids(rng, n * k_count, 16), dtype=object).reshape(n, k_count)
    orphaned = rng.random(n) < ORPHAN_SHARE  # these traces lose their first client span
    has_logs = rng.random(n) < LOG_SHARE

    frames, log_frames = [], []
    for k, nd in enumerate(nodes):
        keep = present[:, k].copy()
        if k == 1:
            keep &= ~orphaned
        rows = np.flatnonzero(keep)
        if rows.size == 0:
            continue
        hosts = np.array(topo.HOSTS[nd.service], dtype=object)[host_idx[rows, k]]
        skew_us = np.array([topo.CLOCK_OFFSET_MS.get(h, 0.0) for h in topo.HOSTS[nd.service]])
        skew = (skew_us[host_idx[rows, k]] * _US).astype(np.int64)
        start_us = roots_us[rows] + (start[rows, k] * _US).astype(np.int64) + skew
        end_us = start_us + (duration[rows, k] * _US).astype(np.int64)
        self_failed = fails[rows, k]
        status = np.where(failed[rows, k], "error", "ok").astype(object)
        if nd.timeout:
            status[self_failed] = "timeout"
        frame = pd.DataFrame(
            {
                "trace_id": np.array(trace_ids, dtype=object)[rows],
                "span_id": span_ids[rows, k],
                "parent_span_id": span_ids[rows, nd.parent] if nd.parent >= 0 else None,
                "service_name": nd.service,
                "operation_name": nd.operation,
                "span_kind": nd.kind,
                "start_time": pd.to_datetime(start_us, unit="us", utc=True),
                "end_time": pd.to_datetime(end_us, unit="us", utc=True),
                "duration_ms": (end_us - start_us) / _US,
                "status": status,
                "tags": _tags(nd, hosts, failed[rows, k], in_incident[rows]),
                "logs": _span_events(nd, self_failed, end_us),
            }
        )
        frames.append(frame)
        if nd.kind == "server":
            log_frames.append(request_logs(nd, frame, has_logs[rows], self_failed, hosts))
    return pd.concat(frames, ignore_index=True), pd.concat(log_frames, ignore_index=True)


def _hex_ids(rng: np.random.Generator, n: int, width: int) -> list[str]:
    words = rng.integers(0, 2**63, size=(n, width // 16), dtype=np.int64)
    if width == 16:
        return [f"{a:016x}" for a in words[:, 0]]
    return [f"{a:016x}{b:016x}" for a, b in words]


def _tags(
    nd: topo.Node, hosts: np.ndarray, failed: np.ndarray, in_incident: np.ndarray
) -> list[str]:
    base = {"component": "http" if nd.kind in ("server", "client") else nd.kind}
    if nd.kind == "server" and nd.route:
        base |= {"http.method": nd.method, "http.route": nd.route}
    if nd.kind == "client":
        base["peer.service"] = nd.operation.split(" ", 1)[0]
    if nd.service == "postgres":
        base |= {"db.system": "postgresql", "db.statement": nd.operation}
    if nd.kind in ("producer", "consumer"):
        base |= {"messaging.system": "kafka", "messaging.destination": nd.operation.split(" ")[-1]}
    if nd.service == "domain-service":
        version_tags = [
            {"service.version": topo.BAD_VERSION if inc else topo.GOOD_VERSION}
            for inc in in_incident
        ]
    else:
        version_tags = [{}] * len(hosts)
    out = []
    for host, bad, version in zip(hosts, failed, version_tags, strict=True):
        tags = {**base, "host.name": host, **version}
        if nd.kind == "server" and nd.route:
            tags["http.status_code"] = 503 if bad else 200
        if bad:
            tags["error"] = True
        out.append(json.dumps(tags, sort_keys=True))
    return out


def _span_events(nd: topo.Node, failed: np.ndarray, end_us: np.ndarray) -> list[str]:
    message = topo.ERROR_MESSAGES.get(nd.service, "request failed")
    out = []
    for bad, end in zip(failed, end_us, strict=True):
        if bad:
            at = pd.Timestamp(int(end), unit="us", tz="UTC").isoformat()
            out.append(json.dumps([{"timestamp": at, "event": "error", "message": message}]))
        else:
            out.append("[]")
    return out
