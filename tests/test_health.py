"""Health KPIs: the SQL counts from hand-built spans and logs, every target's boundary, the
"no data" cases, bad input, the charts, and one check against the demo."""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import vl_convert
from hypothesis import given
from hypothesis import strategies as st

from obslib import health, load
from obslib.charts import health as charts
from obslib.charts import render
from obslib.errors import InputError, UsageError
from obslib.ingest import write_logs, write_spans
from obslib.load import health_data
from tests import builders
from tests.ids import sid, tid

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
WINDOW = (T0, T0 + timedelta(hours=1))
NOWHERE = ("1999-01-01T00:00:00Z", "1999-01-02T00:00:00Z")
GATEWAY, DOMAIN = "api-gateway", "domain-service"


def span(trace, span_id, parent, service, operation, kind, at=0) -> dict:
    """Span ``sid(span_id)`` of trace ``tid(trace)``: a span name is the same id in every
    trace, as span ids are unique per trace only."""
    start = (T0 if at >= 0 else T0 - timedelta(hours=2)) + timedelta(milliseconds=abs(at))
    return dict(
        trace_id=tid(trace),
        span_id=sid(span_id),
        parent_span_id=None if parent is None else sid(parent),
        service_name=service,
        operation_name=operation,
        span_kind=kind,
        start_time=start,
        end_time=start + timedelta(milliseconds=5),
    )


def served_call(trace: str, at: int = 0) -> list[dict]:
    """A gateway request whose call to auth-service has its server span."""
    return [
        span(trace, "r", None, GATEWAY, "GET /", "server", at),
        span(trace, "c", "r", GATEWAY, "auth-service validate", "client", at),
        span(trace, "s", "c", "auth-service", "validate", "server", at),
    ]


def traffic() -> pd.DataFrame:
    """12 client spans in the window, 9 with a server child (75 %), and every trap:
    - c2's call was retried: two server children, still one served call;
    - d2's only child is another client span (p2, itself unserved): not served;
    - d3 has no child in its trace; trace t2 has a server span whose parent_span_id is "d3"
      (span ids are unique per trace only): not served;
    - a server span whose child is a server span (its client span was lost) is no call;
    - t0 is before the window: its spans count for nothing."""
    t1 = [
        span("t1", "r", None, GATEWAY, "GET /domains", "server"),
        span("t1", "c1", "r", GATEWAY, "auth-service validate", "client"),
        span("t1", "s1", "c1", "auth-service", "validate", "server"),
        span("t1", "c2", "r", GATEWAY, "auth-service validate", "client"),
        span("t1", "s2", "c2", "auth-service", "validate", "server"),
        span("t1", "s2b", "c2", "auth-service", "validate", "server"),
        span("t1", "c3", "r", GATEWAY, "domain-service list", "client"),
        span("t1", "s3", "c3", DOMAIN, "list", "server"),
        span("t1", "d1", "s3", DOMAIN, "cache GET", "client"),
        span("t1", "k1", "d1", "cache", "GET", "server"),
        span("t1", "d2", "s3", DOMAIN, "postgres SELECT", "client"),
        span("t1", "p2", "d2", DOMAIN, "pg driver", "client"),
        span("t1", "d3", "s3", DOMAIN, "cache GET", "client"),
    ]
    t2 = [span("t2", "x", "d3", "cache", "GET", "server"), *served_call("t2")]
    t2 += [  # a server span whose client span was lost: neither a call nor a served one
        span("t2", "o", None, GATEWAY, "GET /orphan", "server"),
        span("t2", "o2", "o", "auth-service", "validate", "server"),
    ]
    rows = t1 + t2
    for trace in ("t3", "t4", "t5", "t6"):
        rows += served_call(trace, at=30)
    rows += served_call("t0", at=-1)  # two hours before the window
    rows.append(span("t0", "lost", "r", GATEWAY, "postgres SELECT", "client", at=-1))
    return pd.DataFrame(rows)


EXPECTED_COVERAGE = pd.DataFrame(
    {
        "service_name": [GATEWAY, GATEWAY, DOMAIN, DOMAIN, DOMAIN],
        "operation_name": [
            "auth-service validate",
            "domain-service list",
            "cache GET",
            "pg driver",
            "postgres SELECT",
        ],
        "client_spans": [7, 1, 2, 1, 1],
        "served": [7, 1, 1, 0, 0],
    }
)


def log_rows(traces: list[str | None], *, at: datetime = T0) -> pd.DataFrame:
    """A log record per trace name (``tid(name)``; None: a record without a trace id)."""
    return pd.DataFrame(
        dict(
            timestamp=[at + timedelta(seconds=i) for i in range(len(traces))],
            level="info",
            service_name=GATEWAY,
            trace_id=[None if t is None else tid(t) for t in traces],
            span_id=None,
            message=[f"log {i}" for i in range(len(traces))],
            fields=[{"i": i} for i in range(len(traces))],
        )
    )


@pytest.fixture
def health_db(migrated_db: str) -> str:
    """Hand-built traffic: the coverage traps above, and logs for 3 of the window's 6
    traces (t1 twice, t2 from a day later, t3) plus logs that must not count (no trace id,
    the out-of-window trace t0, a trace id with no spans)."""
    write_spans(traffic(), url=migrated_db)
    write_logs(log_rows(["t1", "t1", "t3", None, "t0", "nope"]), url=migrated_db)
    write_logs(log_rows(["t2"], at=T0 + timedelta(days=1)), url=migrated_db)
    return migrated_db


# -- the loaders, on a real PostgreSQL ------------------------------------------------------


def test_client_coverage_counts_served_calls_per_caller_operation(health_db: str) -> None:
    """Exact counts: a retried call counts once; a client child, a server span of another
    trace and spans outside the window do not serve a call.

    Planted and seen failing: dropping ``s.span_kind = 'server'`` (postgres SELECT served),
    dropping ``s.trace_id = c.trace_id`` (cache GET 2 of 2), joining the child on
    ``c.parent_span_id``, dropping either ``span_kind = 'client'`` (server spans counted as
    calls or as served calls), a JOIN in place of EXISTS (the retry counted twice)."""
    counts = health_data.client_coverage(*WINDOW, url=health_db)
    assert {c: str(t) for c, t in counts.dtypes.items()} == {
        "service_name": "str",
        "operation_name": "str",
        "client_spans": "int64",
        "served": "int64",
    }
    pd.testing.assert_frame_equal(counts, EXPECTED_COVERAGE, check_dtype=False)
    kpi = health.trace_coverage(counts)
    assert (kpi.value, kpi.passed) == (75.0, False)
    assert kpi.detail == (
        "9 of 12 client spans have a server span as child; most unserved:"
        " domain-service 'cache GET' (1 of 2), 2 more caller operations with gaps"
    )


def test_log_correlation_counts_traces_with_any_log(health_db: str) -> None:
    """6 traces have a span in the window; t1 (two logs), t2 (a log a day later) and t3 have
    logs: 50 %. Logs without a trace id, or of a trace outside the window, add nothing.

    Planted and seen failing: a JOIN on the logs instead of EXISTS (t1 counted twice),
    no DISTINCT (spans counted instead of traces)."""
    counts = health_data.log_correlation(*WINDOW, url=health_db)
    assert counts.to_dict("records") == [{"traces": 6, "logged": 3}]
    kpi = health.log_correlation(counts)
    assert (kpi.value, kpi.passed) == (50.0, False)
    assert kpi.detail == "3 of 6 traces have at least one log record with their trace_id"


def test_service_edges_count_calls_between_services(health_db: str) -> None:
    """A span whose parent belongs to another service of the same trace is a call.

    Planted and seen failing: the parent joined on span_id alone (t2's server span "x"
    would become a second domain-service -> cache call)."""
    edges = health_data.service_edges(*WINDOW, url=health_db)
    assert edges.to_dict("records") == [
        {"caller": GATEWAY, "callee": "auth-service", "calls": 9},
        {"caller": GATEWAY, "callee": DOMAIN, "calls": 1},
        {"caller": DOMAIN, "callee": "cache", "calls": 1},
    ]
    assert str(edges["calls"].dtype) == "int64"
    assert health_data.service_edges(*NOWHERE, url=health_db).empty


def test_an_empty_window_is_no_data_not_zero(health_db: str) -> None:
    """No client span and no trace: shaped frames, KPIs with no value that neither pass
    nor fail."""
    coverage = health_data.client_coverage(*NOWHERE, url=health_db)
    assert coverage.empty and list(coverage.columns) == list(EXPECTED_COVERAGE.columns)
    assert str(coverage["served"].dtype) == "int64"
    correlation = health_data.log_correlation(*NOWHERE, url=health_db)
    assert correlation.to_dict("records") == [{"traces": 0, "logged": 0}]
    for kpi in (health.trace_coverage(coverage), health.log_correlation(correlation)):
        assert math.isnan(kpi.value) and kpi.passed is None
    assert health.trace_coverage(coverage).detail == "no client spans in the window"
    assert health.log_correlation(correlation).detail == "no traces in the window"


def test_loaders_refuse_a_bad_window(migrated_db: str) -> None:
    """A window is two times, end after start; nothing reaches SQL otherwise."""
    with pytest.raises(UsageError, match="start is not a time"):
        health_data.client_coverage("x'; DROP TABLE distributed_traces;--", T0, url=migrated_db)
    with pytest.raises(UsageError, match="empty time window"):
        health_data.log_correlation(T0, T0, url=migrated_db)


def test_incident_evidence_reads_each_incidents_failing_requests_and_logs(
    migrated_db: str,
) -> None:
    """Per planned window: only the service's server spans that failed (error or timeout),
    and its logs, each in the window's half-open bounds.

    Planted and seen failing: dropping the kind filter (api's failed client span), the
    status filter (its ok request), the service filter (db's spans and logs), reading every
    window's rows for every incident."""
    at = [T0 + timedelta(minutes=m) for m in range(6)]
    rows = [
        builders.span("e1", "s", start=at[1], status="error"),
        builders.span("e2", "s", start=at[2], status="timeout"),
        builders.span("ok", "s", start=at[2]),
        builders.span("cl", "c", kind="client", start=at[3], status="error"),
        builders.span("db", "s", service="db", start=at[3], status="error"),
        builders.span("late", "s", start=at[5], status="error"),
    ]
    write_spans(pd.DataFrame(rows), url=migrated_db)
    logs = log_rows([None, None, None])
    logs["timestamp"] = [at[0], at[1], at[5]]
    logs["service_name"] = ["api", "db", "api"]
    write_logs(logs, url=migrated_db)
    got = load.incident_evidence(
        [
            ("A", "api", at[0], at[5]),
            ("B", "db", at[0], at[5]),
            ("C", "api", at[5], at[5] + timedelta(minutes=1)),
        ],
        url=migrated_db,
    )
    assert list(got) == ["A", "B", "C"]
    spans, logs = got["A"]
    assert spans["span_id"].tolist() == [sid("s"), sid("s")]
    assert spans["trace_id"].tolist() == [tid("e1"), tid("e2")]
    assert logs["timestamp"].tolist() == [at[0]] and set(logs["service_name"]) == {"api"}
    assert got["B"][0]["trace_id"].tolist() == [tid("db")]
    assert got["B"][1]["timestamp"].tolist() == [at[1]]
    assert got["C"][0]["trace_id"].tolist() == [tid("late")]
    assert load.incident_evidence([], url=migrated_db) == {}


def test_the_demo_counts_match_a_count_of_its_loaded_spans(demo_db) -> None:
    """On one realistic day of the demo, the SQL aggregates equal the same KPIs computed in
    pandas from the loaded spans and logs (an independent count)."""
    url, _ = demo_db
    start, end = pd.Timestamp("2026-11-14", tz="UTC"), pd.Timestamp("2026-11-15", tz="UTC")
    spans = load.spans(start, end, json="text", url=url)
    every = load.spans(start - pd.Timedelta(hours=1), end + pd.Timedelta(hours=1), url=url)
    servers = every[every["span_kind"] == "server"]
    served_keys = set(zip(servers["trace_id"], servers["parent_span_id"], strict=True))
    clients = spans[spans["span_kind"] == "client"]
    served = [
        (t, s) in served_keys for t, s in zip(clients["trace_id"], clients["span_id"], strict=True)
    ]
    counts = health_data.client_coverage(start, end, url=url)
    assert counts["client_spans"].sum() == len(clients) > 1000
    assert counts["served"].sum() == sum(served)

    logs = load.logs(start - pd.Timedelta(days=1), end + pd.Timedelta(days=1), url=url)
    traces = set(spans["trace_id"])
    logged = traces & set(logs["trace_id"].dropna())
    correlation = health_data.log_correlation(start, end, url=url)
    assert correlation.to_dict("records") == [{"traces": len(traces), "logged": len(logged)}]
    # the demo's story: 85 % of requests log, so log correlation fails its 90 % target
    kpi = health.log_correlation(correlation)
    assert 80 < kpi.value < 90 and kpi.passed is False


# -- the targets' boundaries ----------------------------------------------------------------


def coverage_counts(served: int, total: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "service_name": ["a"],
            "operation_name": ["call"],
            "client_spans": [total],
            "served": [served],
        }
    )


def verdicts(real: int, fp: int, unknown: int = 0) -> pd.DataFrame:
    kinds = ["real"] * real + ["false_positive"] * fp + ["unknown"] * unknown
    return pd.DataFrame({"incident_id": [f"i{i}" for i in range(len(kinds))], "verdict": kinds})


def detections(seconds: list[float | None], severity: str = "critical") -> pd.DataFrame:
    times = [pd.NaT if s is None else pd.Timedelta(seconds=s) for s in seconds]
    return pd.DataFrame(
        {
            "incident_id": [f"i{i}" for i in range(len(times))],
            "severity": severity,
            "time_to_detect": pd.Series(times, dtype="timedelta64[ns]"),
        }
    )


@pytest.mark.parametrize(
    ("kpi", "value", "passed"),
    [
        pytest.param(lambda: health.trace_coverage(coverage_counts(95, 100)), 95.0, False,
                     id="exactly 95 % trace coverage fails (the target is > 95 %)"),
        pytest.param(lambda: health.trace_coverage(coverage_counts(191, 200)), 95.5, True,
                     id="95.5 % trace coverage passes"),
        pytest.param(lambda: health.trace_coverage(coverage_counts(19, 20)), 95.0, False,
                     id="19 of 20 is exactly 95 %, not a float just below or above it"),
        pytest.param(lambda: health.log_correlation(pd.DataFrame({"traces": [10], "logged": [9]})),
                     90.0, False, id="exactly 90 % log correlation fails"),
        pytest.param(lambda: health.log_correlation(pd.DataFrame({"traces": [11], "logged": [10]})),
                     100 * 10 / 11, True, id="10 of 11 traces logged passes"),
        pytest.param(lambda: health.false_positive_rate(verdicts(19, 1)), 5.0, False,
                     id="exactly 5 % false positives fails (the target is < 5 %)"),
        pytest.param(lambda: health.false_positive_rate(verdicts(20, 1)), 100 / 21, True,
                     id="1 false positive in 21 passes"),
        pytest.param(lambda: health.false_positive_rate(verdicts(19, 1, unknown=5)), 5.0, False,
                     id="unknown verdicts are left out of the rate, not counted as real"),
        pytest.param(lambda: health.detection_time(detections([60.0])), 60.0, False,
                     id="exactly 60 s detection fails (the target is < 1 min)"),
        pytest.param(lambda: health.detection_time(detections([59.999])), 59.999, True,
                     id="59.999 s detection passes"),
        pytest.param(lambda: health.detection_time(detections([10.0, 50.0, 70.0, None])), 70.0,
                     False, id="the worst critical detection counts, not the median"),
        pytest.param(lambda: health.slo_coverage(slos(["a", "b"]), ["a", "b"]), 100.0, True,
                     id="every critical service with an SLO passes"),
        pytest.param(lambda: health.slo_coverage(slos(["a", "b"]), ["a", "b", "c"]), 200 / 3,
                     False, id="two of three critical services covered fails"),
    ],
)  # fmt: skip
def test_targets_are_strict_at_their_boundaries(kpi, value: float, passed: bool) -> None:
    """Planted and seen failing: ``>`` as ``>=`` and ``<`` as ``<=`` in TARGETS'
    comparators, unknown verdicts in the denominator, the median in place of the max."""
    result = kpi()
    assert result.value == pytest.approx(value, abs=1e-12)
    assert result.passed is passed


@given(
    total=st.integers(min_value=1, max_value=10**12),
    share=st.floats(min_value=0, max_value=1),
)
def test_coverage_passes_exactly_when_the_ratio_is_above_95_percent(
    total: int, share: float
) -> None:
    """Against the integer rule served * 100 > 95 * total: no float rounding at the target
    flips a verdict."""
    served = min(total, int(total * share))
    for n in {served, total * 95 // 100, -(-total * 95 // 100)}:  # near the boundary too
        kpi = health.trace_coverage(coverage_counts(n, total))
        assert kpi.passed is (n * 100 > 95 * total)


@given(percent=st.integers(min_value=0, max_value=100), scale=st.integers(1, 10**9))
def test_a_whole_percentage_is_exact(percent: int, scale: int) -> None:
    """57 of 100 is 57.0, not 56.99999999999999, so a target of that value compares right.

    Planted and seen failing: ``part / whole * 100``."""
    kpi = health.trace_coverage(coverage_counts(percent * scale, 100 * scale))
    assert kpi.value == percent


# -- no data, and the details a person reads ------------------------------------------------


def slos(services: list[str], enabled: list[object] | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "service_name": services,
            "slo_name": ["availability"] * len(services),
            "enabled": enabled if enabled is not None else [True] * len(services),
        }
    )


def test_no_data_never_passes_and_never_fails() -> None:
    """Each KPI without data: NaN, passed None, and a detail saying why."""
    card = health.scorecard(
        coverage=coverage_counts(0, 0).iloc[:0],
        correlation=pd.DataFrame({"traces": [0], "logged": [0]}),
        slos=slos([]),
        verdicts=verdicts(0, 0, unknown=2),
        detections=pd.concat([detections([None]), detections([30.0], severity="high")]),
        critical=[],
    )
    assert card["value"].isna().all()
    assert card["passed"].tolist() == [None] * 5
    assert card["detail"].tolist() == [
        "no client spans in the window",
        "no traces in the window",
        "no critical services configured",
        "no incident judged real or false positive; 2 unknown left out",
        "no critical outage with a known detection time; 1 without a known time,"
        " 1 less severe not counted",
    ]


def test_the_scorecard_has_one_row_per_kpi_in_plan_order() -> None:
    """Columns, order, units, target texts and details of a mixed card."""
    card = health.scorecard(
        coverage=coverage_counts(99, 100),
        correlation=pd.DataFrame({"traces": [4], "logged": [3]}),
        slos=slos(["api-gateway", "auth-service", "campaign-service"], [True, None, False]),
        verdicts=verdicts(3, 1, unknown=1),
        detections=pd.concat([detections([20.0, 40.0, 45.0, None]), detections([500.0], "high")]),
        critical=["api-gateway", "auth-service", "campaign-service", "notification-service"],
    )
    assert list(card.columns) == list(health.SCORECARD_COLUMNS)
    assert card["kpi"].tolist() == list(health.TARGETS)
    assert card["unit"].tolist() == ["%", "%", "%", "%", "s"]
    assert card["target"].tolist() == ["> 95 %", "> 90 %", "100 %", "< 5 %", "< 1 min"]
    assert card["value"].tolist() == [99.0, 75.0, 50.0, 25.0, 45.0]
    assert card["passed"].tolist() == [True, False, False, False, True]
    assert card["detail"].tolist() == [
        "99 of 100 client spans have a server span as child; most unserved: a 'call' (1 of 100)",
        "3 of 4 traces have at least one log record with their trace_id",
        "2 of 4 critical services have an enabled SLO; without: campaign-service"
        " (only disabled SLOs), notification-service",
        "1 false positive of 4 judged incidents; 1 unknown left out",
        "worst 45 s over 3 critical outages, median 40 s; 1 without a known time,"
        " 1 less severe not counted",
    ]


TALLY_CASES = {
    "every KPI passing": ([True] * 5, (5, 0, 0, ())),
    "a failing KPI is named": ([True, False, True, True, True], (4, 1, 0, ("b",))),
    "no data neither passes nor fails": ([None, True, None, True, True], (3, 0, 2, ())),
    "failing KPIs in scorecard order": ([False, True, None, False, True], (2, 2, 1, ("a", "d"))),
    "a NaN is no data, not a pass": ([math.nan, True, True, True, True], (4, 0, 1, ())),
}


@pytest.mark.parametrize(("results", "expected"), TALLY_CASES.values(), ids=TALLY_CASES)
def test_tally(results: list, expected: tuple) -> None:
    rows = pd.DataFrame({"kpi": list("abcde"), "passed": pd.Series(results, dtype=object)})
    got = health.tally(rows)
    assert (got.passed, got.failed, got.no_data, got.failing) == expected
    assert got.kpis == 5


def test_the_tally_of_a_scorecard() -> None:
    """A card with a pass, failures and no data, as ``scorecard`` builds it."""
    card = health.scorecard(
        coverage=coverage_counts(99, 100),
        correlation=pd.DataFrame({"traces": [4], "logged": [3]}),
        slos=slos(["api-gateway"]),
        verdicts=verdicts(0, 0),
        detections=detections([None]),
        critical=["api-gateway", "billing"],
    )
    got = health.tally(card)
    assert (got.passed, got.failed, got.no_data) == (1, 2, 2)
    assert got.failing == (health.LOG_CORRELATION, health.SLO_COVERAGE)


def test_slo_coverage_takes_the_critical_services_from_its_caller() -> None:
    """The critical services are an argument (the views pass $OBSLIB_CRITICAL_SERVICES):
    a list counts each name once, a string is one service."""
    kpi = health.slo_coverage(slos(["api-gateway"]), ["api-gateway", "billing", "billing"])
    assert (kpi.value, kpi.passed) == (50.0, False)
    assert health.uncovered_services(slos(["api-gateway"]), "billing") == ["billing"]


def test_values_are_never_rounded_onto_their_target() -> None:
    """94.96 % fails, so it must not read "95.0 %"; 60.4 s is not "1 min"; times read in
    obslib.values.duration_text's style."""
    assert health.shown(94.96, health.TRACE_COVERAGE) == "94.96 %"
    assert health.shown(95.0, health.TRACE_COVERAGE) == "95.0 %"
    assert health.shown(60.4, health.DETECTION_TIME) == "60.4 s"
    assert health.shown(125.0, health.DETECTION_TIME) == "2 min 5 s"
    assert health.shown(60.0, health.DETECTION_TIME) == "1 min"  # the threshold itself
    assert health.shown(59.7, health.DETECTION_TIME) == "59.7 s"  # would read "1 min" too
    assert health.shown(math.nan, health.DETECTION_TIME) == "no data"


# -- bad input: one line naming what and where ----------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda: health.false_positive_rate(
            pd.DataFrame({"incident_id": ["a", "b"], "verdict": ["real", "maybe"]})),
            "verdicts row 1: verdict 'maybe' is not one of real, false_positive, unknown",
            id="an unknown verdict"),
        pytest.param(lambda: health.false_positive_rate(
            pd.DataFrame({"incident_id": ["a", "a"], "verdict": ["real", "real"]})),
            "verdicts row 1: incident 'a' is judged twice", id="an incident judged twice"),
        pytest.param(lambda: health.false_positive_rate(pd.DataFrame({"verdict": ["real"]})),
            "verdicts frame lacks column(s): incident_id", id="a missing column"),
        pytest.param(lambda: health.detection_time(pd.DataFrame(
            {"incident_id": ["a"], "severity": ["critical"], "time_to_detect": [30.0]})),
            "detection times row 0: time_to_detect 30.0 is not a duration",
            id="seconds as a bare number (pandas would read nanoseconds)"),
        pytest.param(lambda: health.detection_time(pd.DataFrame(
            {"incident_id": ["a"], "severity": ["urgent"], "time_to_detect": [pd.NaT]})),
            "detection times row 0: severity 'urgent' is not one of critical, high, medium, low",
            id="an unknown severity"),
        pytest.param(lambda: health.trace_coverage(coverage_counts(5, 4)),
            "client coverage row 0: served exceeds client_spans", id="more served than calls"),
        pytest.param(lambda: health.trace_coverage(coverage_counts(-1, 4)),
            "client coverage row 0: served -1 is not a count", id="a negative count"),
        pytest.param(lambda: health.log_correlation(
            pd.DataFrame({"traces": [1, 2], "logged": [0, 0]})),
            "log correlation frame has 2 rows; expected one", id="per-group rows summed"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_naming_what_and_where(call, message: str) -> None:
    with pytest.raises(InputError) as err:
        call()
    assert str(err.value) == message


# -- charts ---------------------------------------------------------------------------------


def mixed_card() -> pd.DataFrame:
    return health.scorecard(
        coverage=coverage_counts(95, 100),
        correlation=pd.DataFrame({"traces": [10], "logged": [10]}),
        slos=slos(["a"]),
        verdicts=verdicts(0, 0),
        detections=detections([30.0]),
        critical=["a"],
    )


def _layers(row: dict) -> dict[str, dict]:
    return {layer["mark"]["type"]: layer for layer in row["layer"]}


def test_kpi_chart_draws_each_kpi_against_its_target() -> None:
    """A row per KPI: bar coloured by the verdict (none for no data), a tick at the target,
    the verdict in words; the alt text states every KPI."""
    spec = charts.kpi_chart(mixed_card()).to_dict()
    rows = spec["vconcat"]
    assert len(rows) == 5
    marks = [_layers(row) for row in rows]
    colours = [m["bar"]["mark"]["color"] if "bar" in m else None for m in marks]
    red, green = charts.RESULT_COLORS["failed"], charts.RESULT_COLORS["passed"]
    assert colours == [red, green, green, None, green]
    data = [spec["datasets"][row["data"]["name"]][0] for row in rows]
    assert [d["threshold"] for d in data] == [95.0, 90.0, 100.0, 5.0, 60.0]
    labels = [d["label"] for d in data]
    assert labels[0] == "95.0 % \u2014 failed (target > 95 %)"
    assert labels[3] == "no data (target < 5 %)"
    assert spec["description"] == (
        "Observability health KPIs against their targets: 3 of 5 passed, 1 failed, 1 without"
        " data. trace coverage 95.0 % against > 95 %: failed; log correlation 100.0 % against"
        " > 90 %: passed; SLO coverage of critical services 100.0 % against 100 %: passed;"
        " alert false-positive rate no data against < 5 %: no data; detection time (critical)"
        " 30 s against < 1 min: passed."
    )
    bundle = render.svg_with_alt(spec)
    assert f'alt="{html.escape(spec["description"])}"' in bundle["text/html"]


def test_coverage_chart_shows_the_worst_calls_and_says_what_it_left_out() -> None:
    """The most unserved calls first, at most max_rows, the rest counted in the subtitle."""
    chart = charts.coverage_chart(EXPECTED_COVERAGE, max_rows=2)
    spec = chart.to_dict()
    bars = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "bar")
    drawn = spec["datasets"][bars["data"]["name"]]
    assert [(r["call"], r["coverage"]) for r in drawn] == [
        ("domain-service \u2192 cache GET", 50.0),
        ("domain-service \u2192 pg driver", 0.0),
    ]
    assert (
        spec["title"]["subtitle"][-1] == "3 more caller operations not shown, 1 of them with gaps"
    )
    assert spec["description"].startswith(
        "Trace coverage per caller operation: 9 of 12 client spans have a server child (75.0 %)"
    )
    assert vl_convert.vegalite_to_svg(spec).startswith("<svg")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda: charts.kpi_chart(mixed_card().iloc[:0]),
                     "scorecard frame is empty", id="an empty scorecard"),
        pytest.param(lambda: charts.coverage_chart(EXPECTED_COVERAGE.iloc[:0]),
                     "client coverage frame is empty", id="a window without client spans"),
    ],
)  # fmt: skip
def test_charts_refuse_empty_frames_for_the_view_to_explain(call, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()


def test_a_no_data_card_still_charts() -> None:
    """Every KPI without data: no bars, five "no data" rows, still an SVG."""
    card = mixed_card()
    card["value"], card["passed"] = np.nan, None
    spec = charts.kpi_chart(card).to_dict()
    assert all("bar" not in _layers(row) for row in spec["vconcat"])
    assert "0 of 5 passed, 0 failed, 5 without data" in spec["description"]
    assert vl_convert.vegalite_to_svg(spec).startswith("<svg")


@pytest.mark.parametrize(
    ("real", "fp", "unknown"),
    [(19, 1, 0), (20, 1, 0), (19, 1, 5), (0, 3, 2), (7, 0, 1)],
    ids=["1 in 20", "1 in 21", "unknown left out", "all false", "none false"],
)
def test_the_kpi_and_the_noise_table_read_one_false_positive_rate(real, fp, unknown):
    """The scorecard's KPI (percent) and the noise table's rate come from one count of the
    verdicts (``alerts.noise.judged``): they cannot disagree on the same incidents."""
    from obslib import alerts

    frame = verdicts(real, fp, unknown=unknown)
    kpi = health.false_positive_rate(frame)
    assert kpi.value == pytest.approx(100 * alerts.false_positive_rate(frame["verdict"]))
    assert kpi.detail.startswith(f"{fp} false positive")
