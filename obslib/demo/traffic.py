"""One day of DomainFlow traffic: span trees laid out per request kind with numpy.

Each day's traffic is drawn from its own generator seeded by (seed, day, request kind), so
scaling the span count or writing in chunks changes nothing else.
"""

from __future__ import annotations

import json
from typing import NamedTuple

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

    # which spans would happen if nothing failed (a child only when its parent does)
    happens = np.ones((n, k_count), dtype=bool)
    for k, nd in enumerate(nodes):
        if nd.parent >= 0:
            happens[:, k] = rng.random(n) < nd.present

    # own time per span (lognormal around its median), the trend and the incident applied
    own = np.empty((n, k_count))
    draws = np.zeros((n, k_count), dtype=bool)
    for k, nd in enumerate(nodes):
        own[:, k] = nd.self_ms * np.exp(rng.normal(0.0, nd.sigma, n))
        p_fail = np.full(n, nd.error)
        if nd.trend:
            own[:, k] *= 1.0 + 0.06 * day_fraction
        if nd.incident:
            own[:, k] = np.where(in_incident, own[:, k] * 5.0 + 350.0, own[:, k])
            p_fail = np.where(in_incident, 0.15, p_fail)
        draws[:, k] = rng.random(n) < p_fail
    out = _outcomes(nodes, happens, draws)
    present, fails, failed = out.present, out.fails, out.failed

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
            reasons = _failure_messages(nodes, k, out, rows)
            log_frames.append(request_logs(nd, frame, has_logs[rows], reasons, self_failed, hosts))
    return pd.concat(frames, ignore_index=True), pd.concat(log_frames, ignore_index=True)


class _Outcomes(NamedTuple):
    present: np.ndarray  # (trace, node): the span happened
    fails: np.ndarray  # it failed itself
    failed: np.ndarray  # it failed, itself or through a call it made (its status)
    via: np.ndarray  # the child whose failure failed it; -1 when its own or none
    timed_out: np.ndarray  # its failure is a timeout: its own, or its callee's for a client


def _outcomes(nodes: list[topo.Node], happens: np.ndarray, draws: np.ndarray) -> _Outcomes:
    """Which spans happen and fail, as a request runs: a failed call ends its caller's
    sequence of calls (parallel calls already started finish), a span that fails itself
    skips its ``on_success`` work (writes, publishes), and a failure fails every synchronous
    caller up to the root (a message consumer's never reaches its producer)."""
    n, k_count = happens.shape
    present = np.zeros((n, k_count), dtype=bool)
    fails, failed, timed_out = present.copy(), present.copy(), present.copy()
    via = np.full((n, k_count), -1)
    children: list[list[int]] = [[] for _ in nodes]
    for k, nd in enumerate(nodes):
        if nd.parent >= 0:
            children[nd.parent].append(k)

    def visit(k: int, runs: np.ndarray) -> None:
        present[:, k] = runs
        fails[:, k] = draws[:, k] & runs
        failed[:, k] = fails[:, k]
        timed_out[:, k] = fails[:, k] & nodes[k].timeout
        going = runs.copy()  # none of k's calls has failed yet
        for c in children[k]:
            allowed = going & happens[:, c]
            if nodes[c].on_success:
                allowed &= ~fails[:, k]
            visit(c, allowed)
            if nodes[c].kind == "consumer":
                continue  # runs after its producer: its failure is its own
            through = failed[:, c] & ~failed[:, k]
            via[through, k] = c
            if nodes[k].kind == "client":  # the callee timed out; a server answers an error
                timed_out[through, k] = timed_out[through, c]
            failed[:, k] |= failed[:, c]
            if not nodes[k].fanout:
                going &= ~failed[:, c]

    visit(0, np.ones(n, dtype=bool))
    return _Outcomes(present, fails, failed, via, timed_out)


def _failure_messages(
    nodes: list[topo.Node], k: int, out: _Outcomes, rows: np.ndarray
) -> np.ndarray:
    """Why each span of node ``k`` in ``rows`` failed (None: it did not): its service's own
    error, or the call that failed it."""
    nd = nodes[k]
    reasons = np.full(len(rows), None, dtype=object)
    reasons[out.fails[rows, k]] = topo.ERROR_MESSAGES.get(nd.service, "request failed")
    via = out.via[rows, k]
    for child in np.unique(via[via >= 0]):
        for timed, verb in ((False, "failed"), (True, "timed out")):
            hit = (via == child) & (out.timed_out[rows, child] == timed)
            reasons[hit] = f"{nd.operation} failed: {nodes[child].operation} {verb}"
    return reasons


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
