"""Loader filters and windows on hand-built rows: exact rows back, in the documented order.

Every window is ``[start, end)``: a row stamped exactly at ``end`` is out, one at ``start``
is in. Every filter narrows; none is ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from obslib import load
from obslib.ingest import batch
from obslib.storage.migrate import Migrator
from tests.conftest import MIGRATIONS, scratch_database

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
START, END = T0, T0 + timedelta(minutes=10)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# (span_id, trace_id, service, operation, kind, status, start minute); span ids are unique;
# ties in start time are broken by trace_id, then span_id (the rows are listed out of order)
SPANS = [
    ("s-end", "t-4", "api-gateway", "GET /", "server", "ok", 10),  # exactly at END: out
    ("s-0", "t-2", "auth-service", "validate", "server", "error", 5),
    ("s-b", "t-1", "auth-service", "validate", "client", "ok", 5),
    ("s-a", "t-1", "api-gateway", "GET /", "server", "ok", 5),
    ("s-start", "t-1", "api-gateway", "GET /", "server", "timeout", 0),  # exactly at START: in
    ("s-before", "t-0", "api-gateway", "GET /", "server", "ok", -0.001),  # before START: out
    ("s-late", "t-3", "cache", "get", "internal", "ok", 9.999),
]
IN_WINDOW = ["s-start", "s-a", "s-b", "s-0", "s-late"]  # by start, trace_id, span_id

# (log_id, minute, level, service, trace_id, span_id)
LOGS = [
    ("l-end", 10, "info", "api-gateway", "t-4", "s-end"),
    ("l-2", 5, "error", "auth-service", "t-2", "s-0"),
    ("l-1b", 5, "info", "auth-service", None, None),
    ("l-1a", 5, "warn", "api-gateway", "t-1", "s-a"),
    ("l-start", 0, "info", "api-gateway", "t-1", "s-start"),
    ("l-before", -0.001, "info", "api-gateway", None, None),
    ("l-late", 9.999, "debug", "cache", "t-3", "s-late"),
]
LOGS_IN_WINDOW = ["l-start", "l-1a", "l-1b", "l-2", "l-late"]  # by timestamp, log_id

# The stored ids are hex (as write_spans requires), numbered in the names' order, so ties
# sort as the names do; tests speak in names.
TRACE = {name: f"{i + 1:032x}" for i, name in enumerate(sorted({t for _, t, *_ in SPANS}))}
SPAN = {name: f"{i + 1:016x}" for i, name in enumerate(sorted(s for s, *_ in SPANS))}
NAME = {hex_id: name for name, hex_id in (*TRACE.items(), *SPAN.items())}


def names(ids: pd.Series) -> list[str]:
    return [NAME[i] for i in ids]


def hex_filters(filters: dict) -> dict:
    """Filters written with names, as load takes them: with the stored hex ids."""
    out = dict(filters)
    if "trace_ids" in out:
        out["trace_ids"] = [TRACE[t] for t in out["trace_ids"]]
    if "trace_id" in out:
        out["trace_id"] = TRACE[out["trace_id"]]
    if "span_id" in out:
        out["span_id"] = SPAN[out["span_id"]]
    return out


# (incident_id, alert_name, status, severity, minute)
INCIDENTS = [
    ("INC-end", "gw-errors", "open", "critical", 10),
    ("INC-b", "auth-latency", "resolved", "high", 5),
    ("INC-a", "gw-errors", "acknowledged", "critical", 5),
    ("INC-start", "auth-latency", "auto_resolved", "low", 0),
    ("INC-before", "gw-errors", "resolved", "critical", -0.001),
]
INCIDENTS_IN_WINDOW = ["INC-start", "INC-a", "INC-b"]

# (service, slo_name, minute)
MEASUREMENTS = [
    ("api-gateway", "availability", 10),
    ("api-gateway", "availability", 0),
    ("api-gateway", "availability", -0.001),
    ("auth-service", "latency", 5),
    ("api-gateway", "latency", 5),
]


def _frames() -> dict[str, pd.DataFrame]:
    spans = pd.DataFrame(
        [
            dict(
                span_id=SPAN[s],
                trace_id=TRACE[t],
                service_name=svc,
                operation_name=op,
                span_kind=kind,
                status=status,
                start_time=at(m),
                end_time=at(m) + timedelta(milliseconds=5),
                tags={"span": s},
            )
            for s, t, svc, op, kind, status, m in SPANS
        ]
    )
    logs = pd.DataFrame(
        [
            dict(
                log_id=i,
                timestamp=at(m),
                level=lvl,
                service_name=svc,
                trace_id=TRACE.get(t),
                span_id=SPAN.get(s),
                message=f"log {i}",
                fields={"id": i},
            )
            for i, m, lvl, svc, t, s in LOGS
        ]
    )
    slos = pd.DataFrame(
        [
            dict(service_name="api-gateway", slo_name="availability", slo_type="availability"),
            dict(service_name="api-gateway", slo_name="latency", slo_type="latency"),
            dict(service_name="auth-service", slo_name="latency", slo_type="latency"),
        ]
    ).assign(target_value=99.0, latency_threshold_ms=300.0)
    measurements = pd.DataFrame(
        [
            dict(service_name=svc, slo_name=name, measurement_timestamp=at(m))
            for svc, name, m in MEASUREMENTS
        ]
    ).assign(
        actual_value=99.5, target_value=99.0, compliance_status="compliant", measurement_period_s=60
    )
    alerts = pd.DataFrame(
        [
            dict(alert_name="gw-errors", service_name="api-gateway", severity="critical"),
            dict(alert_name="auth-latency", service_name="auth-service", severity="high"),
        ]
    ).assign(
        alert_type="threshold",
        metric_name="errors",
        condition_expression="> 1",
        notification_channels=[["pager"]] * 2,
    )
    incidents = pd.DataFrame(
        [
            dict(incident_id=i, alert_name=a, status=st, severity=sev, triggered_at=at(m))
            for i, a, st, sev, m in INCIDENTS
        ]
    )
    return dict(
        spans=spans,
        logs=logs,
        slos=slos,
        slo_measurements=measurements,
        alert_definitions=alerts,
        incidents=incidents,
    )


@pytest.fixture(scope="module")
def small_db(server_url: str) -> Iterator[str]:
    """A migrated database holding the hand-built rows above; read-only for the tests."""
    with scratch_database(server_url) as url:
        Migrator(url, MIGRATIONS).up()
        frames = _frames()
        with batch(url) as b:
            for kind in (
                "spans",
                "logs",
                "slos",
                "slo_measurements",
                "alert_definitions",
                "incidents",
            ):
                getattr(b, kind)(frames[kind])
        yield url


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, IN_WINDOW),
        ({"services": ["auth-service"]}, ["s-b", "s-0"]),
        ({"services": "cache"}, ["s-late"]),
        ({"operations": ["GET /"]}, ["s-start", "s-a"]),
        ({"statuses": ["error", "timeout"]}, ["s-start", "s-0"]),
        ({"kinds": ["client", "internal"]}, ["s-b", "s-late"]),
        ({"trace_ids": ["t-1", "t-4"]}, ["s-start", "s-a", "s-b"]),
        ({"services": ["api-gateway"], "statuses": ["ok"]}, ["s-a"]),
        ({"services": []}, []),
    ],
    ids=[
        "the window is start-inclusive and end-exclusive, ties by trace then span id",
        "services narrow",
        "a single service name is one service",
        "operations narrow",
        "statuses narrow",
        "kinds narrow",
        "trace ids narrow (and the window still applies)",
        "filters combine",
        "an empty service list matches nothing",
    ],
)
def test_span_window_and_filters(small_db: str, filters: dict, expected: list[str]) -> None:
    """load.spans gives exactly the matching spans of [start, end), in start order."""
    frame = load.spans(START, END, url=small_db, **hex_filters(filters))
    assert names(frame["span_id"]) == expected


def test_span_window_end_is_exclusive_at_microseconds(small_db: str) -> None:
    """A window ending one microsecond after a span's start holds it; ending at it, not."""
    late = at(9.999)
    assert names(load.spans(START, late, url=small_db)["span_id"])[-1] == "s-0"
    just_after = late + timedelta(microseconds=1)
    assert names(load.spans(START, just_after, url=small_db)["span_id"])[-1] == "s-late"
    assert names(load.spans(late, just_after, url=small_db)["span_id"]) == ["s-late"]


def test_one_trace_in_start_order(small_db: str) -> None:
    """load.trace gives the trace's spans by start time, ties by span id."""
    trace = load.trace(TRACE["t-1"], url=small_db)
    assert names(trace["span_id"]) == ["s-start", "s-a", "s-b"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, LOGS_IN_WINDOW),
        ({"services": ["auth-service"]}, ["l-1b", "l-2"]),
        ({"services": "cache"}, ["l-late"]),
        ({"levels": ["warn", "error"]}, ["l-1a", "l-2"]),
        ({"trace_id": "t-1"}, ["l-start", "l-1a"]),
        ({"trace_id": "t-1", "span_id": "s-a"}, ["l-1a"]),
        ({"trace_ids": ["t-2", "t-3"]}, ["l-2", "l-late"]),
        ({"untraced": True}, ["l-1b"]),
        ({"services": ["api-gateway"], "levels": ["info"]}, ["l-start"]),
    ],
    ids=[
        "the window is start-inclusive and end-exclusive, ties by log id",
        "services narrow",
        "a single service name is one service",
        "levels narrow",
        "a trace id narrows",
        "a span id narrows",
        "trace ids narrow",
        "untraced keeps records without a trace",
        "filters combine",
    ],
)
def test_log_window_and_filters(small_db: str, filters: dict, expected: list[str]) -> None:
    """load.logs gives exactly the matching records of [start, end), by time."""
    assert (
        load.logs(START, END, url=small_db, **hex_filters(filters))["log_id"].tolist() == expected
    )


def test_logs_without_a_window(small_db: str) -> None:
    """Without start and end every record matches; an open end still excludes nothing."""
    everything = load.logs(url=small_db)["log_id"].tolist()
    assert everything == ["l-before", *LOGS_IN_WINDOW, "l-end"]
    assert load.logs(start=END, url=small_db)["log_id"].tolist() == ["l-end"]
    assert load.logs(end=START, url=small_db)["log_id"].tolist() == ["l-before"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, INCIDENTS_IN_WINDOW),
        ({"statuses": ["resolved", "auto_resolved"]}, ["INC-start", "INC-b"]),
        ({"severities": ["critical"]}, ["INC-a"]),
        ({"services": ["auth-service"]}, ["INC-start", "INC-b"]),
    ],
    ids=[
        "the window is start-inclusive and end-exclusive, ties by incident id",
        "statuses narrow",
        "severities narrow",
        "services (the alert's) narrow",
    ],
)
def test_incident_window_and_filters(small_db: str, filters: dict, expected: list[str]) -> None:
    """load.incidents gives exactly the matching incidents of [start, end), by trigger time."""
    frame = load.incidents(START, END, url=small_db, **filters)
    assert frame["incident_id"].tolist() == expected


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (
            {},
            [
                ("api-gateway", "availability", 0),
                ("api-gateway", "latency", 5),
                ("auth-service", "latency", 5),
            ],
        ),
        ({"services": ["auth-service"]}, [("auth-service", "latency", 5)]),
        (
            {"slo_names": ["latency"]},
            [("api-gateway", "latency", 5), ("auth-service", "latency", 5)],
        ),
    ],
    ids=[
        "the window is start-inclusive and end-exclusive, by service then SLO",
        "services narrow",
        "SLO names narrow",
    ],
)
def test_measurement_window_and_filters(small_db: str, filters: dict, expected: list) -> None:
    """load.slo_measurements gives exactly the matching measurements of [start, end)."""
    frame = load.slo_measurements(START, END, url=small_db, **filters)
    got = [
        (r.service_name, r.slo_name, (r.measurement_timestamp - START).total_seconds() / 60)
        for r in frame.itertuples()
    ]
    assert got == expected


def test_slos_alerts_and_one_incident(small_db: str) -> None:
    """SLOs filter by service and come by service then name; alerts by name; one incident."""
    assert load.slos(services=["api-gateway"], url=small_db)["slo_name"].tolist() == [
        "availability",
        "latency",
    ]
    everything = load.slos(url=small_db)
    assert list(zip(everything["service_name"], everything["slo_name"], strict=True)) == [
        ("api-gateway", "availability"),
        ("api-gateway", "latency"),
        ("auth-service", "latency"),
    ]
    assert load.alert_definitions(url=small_db)["alert_name"].tolist() == [
        "auth-latency",
        "gw-errors",
    ]
    assert load.incident("INC-end", url=small_db)["incident_id"].tolist() == ["INC-end"]


def test_sli_counts_window_and_services(small_db: str) -> None:
    """Server spans of [start, end) per service and bucket, by service then bucket."""
    counts = load.sli_counts(START, END, bucket="5min", latency_threshold_ms=10, url=small_db)
    got = [
        (r.service_name, (r.bucket - START).total_seconds() / 60, r.total, r.ok, r.fast)
        for r in counts.itertuples()
    ]
    assert got == [
        ("api-gateway", 0.0, 1, 0, 1),
        ("api-gateway", 5.0, 1, 1, 1),
        ("auth-service", 5.0, 1, 0, 1),
    ]
    only = load.sli_counts(START, END, services=["auth-service"], bucket="5min", url=small_db)
    assert only["service_name"].tolist() == ["auth-service"]
