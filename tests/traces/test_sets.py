"""Across many traces: service graph, critical-path time and its change, cohorts, sampling,
and logs beside spans. Exact values on small frames; the incident story on the demo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from obslib import load
from obslib.errors import ObslibError
from obslib.traces import logs
from obslib.traces import sets as trace_sets

T0 = pd.Timestamp("2026-11-14 14:00", tz="UTC")


def spans(rows: list[tuple]) -> pd.DataFrame:
    """(trace, span, parent, service, op, start_ms, end_ms, status) rows as a spans frame."""
    frame = pd.DataFrame(
        rows,
        columns=[
            "trace_id",
            "span_id",
            "parent_span_id",
            "service_name",
            "operation_name",
            "s",
            "e",
            "status",
        ],
    )
    frame["start_time"] = T0 + pd.to_timedelta(frame.pop("s"), unit="ms")
    frame["end_time"] = T0 + pd.to_timedelta(frame.pop("e"), unit="ms")
    frame["duration_ms"] = (frame["end_time"] - frame["start_time"]) / pd.Timedelta(milliseconds=1)
    frame["span_kind"] = "server"
    return frame


SMALL = spans(
    [
        ("t1", "a", None, "gw", "GET", 0, 100, "ok"),
        ("t1", "b", "a", "db", "q", 10, 90, "ok"),
        ("t2", "c", None, "gw", "GET", 0, 50, "error"),
        ("t2", "d", "c", "db", "q", 5, 45, "error"),
        ("t2", "e", "c", "gw", "render", 46, 49, "ok"),
    ]
)


def test_service_graph_edges() -> None:
    """One edge per caller/callee pair with calls, errors and latency of the callee."""
    graph = trace_sets.service_graph(SMALL)
    assert graph[["caller", "callee", "calls", "errors"]].values.tolist() == [["gw", "db", 2, 1]]
    assert graph.loc[0, "p50_ms"] == 60.0 and graph.loc[0, "error_rate"] == 0.5


def test_critical_path_time_and_its_change() -> None:
    """Path time per service/operation sums the traces; the comparison is per trace."""
    time = trace_sets.critical_path_time(SMALL).set_index(["service_name", "operation_name"])
    assert time.loc[("db", "q"), "path_ms"] == 80 + 40
    assert time["path_ms"].sum() == 150 and time["share"].sum() == pytest.approx(1.0)
    slower = SMALL.copy()
    slower.loc[slower["span_id"] == "b", "end_time"] += pd.Timedelta(milliseconds=5)
    slower.loc[slower["span_id"] == "a", "end_time"] += pd.Timedelta(milliseconds=5)
    change = trace_sets.compare_critical_paths(slower, SMALL)
    top = change.iloc[0]
    assert (top["service_name"], top["operation_name"], top["delta_ms"]) == ("db", "q", 2.5)


def test_sampling_keeps_every_error_and_the_slowest() -> None:
    """Error traces always, the slowest by quantile, then a uniform sample of the rest."""
    many = pd.concat(
        [SMALL.assign(trace_id=SMALL["trace_id"] + f"-{i}") for i in range(20)], ignore_index=True
    )
    many.loc[many["trace_id"] == "t1-7", "end_time"] += pd.Timedelta(seconds=1)
    sample = trace_sets.sample_traces(many, uniform=3, slow_quantile=0.95)
    chosen = sample.traces
    assert set(chosen.loc[chosen["reason"] == "error", "trace_id"]) == {
        f"t2-{i}" for i in range(20)
    }
    assert chosen.loc[chosen["reason"] == "slow", "trace_id"].tolist() == ["t1-7"]
    assert sample.counts == {"error": 20, "slow": 1, "uniform": 3}
    empty = trace_sets.sample_traces(many.iloc[:0])
    assert empty.traces.empty and "reason" in empty.traces.columns
    assert empty.counts == {"error": 0, "slow": 0, "uniform": 0}


def test_incident_window_against_the_day_before(demo_db) -> None:
    """On the demo, domain-service operations gain the most critical-path time per trace,
    and a slow incident trace's excess self time sits in domain-service."""
    url, summary = demo_db
    lo, hi = summary.incident_start, summary.incident_end
    day = pd.Timedelta(days=1)
    window = load.spans(lo, hi, json="text", url=url)
    before = load.spans(lo - day, hi - day, json="text", url=url)
    change = trace_sets.compare_critical_paths(window, before)
    assert change.iloc[0]["service_name"] == "domain-service"
    graph = trace_sets.service_graph(before)
    edges = set(zip(graph["caller"], graph["callee"], strict=True))
    assert {
        ("api-gateway", "auth-service"),
        ("domain-service", "dns-resolver"),
        ("domain-service", "notification-service"),
        ("campaign-service", "postgres"),
    } <= edges
    sample = trace_sets.sample_traces(window).traces
    worst = sample[sample["root_operation"] == "POST /api/v1/domains/generate"].iloc[0]
    trace = load.trace(worst["trace_id"], json="text", url=url)
    cohort = load.spans(
        lo - day,
        hi - day,
        trace_ids=before.loc[
            before["operation_name"] == "POST /api/v1/domains/generate", "trace_id"
        ].unique(),
        json="text",
        url=url,
    )
    versus = trace_sets.compare_to_cohort(trace, cohort)
    assert versus.table.iloc[0]["service_name"] == "domain-service"
    assert versus.cohort_traces > 5


def test_logs_beside_their_spans(demo_db) -> None:
    """Records join the spans that wrote them; untraced context comes from the same window."""
    url, summary = demo_db
    errors = load.logs(summary.incident_start, summary.incident_end, levels=["error"], url=url)
    trace_id = errors["trace_id"].dropna().iloc[0]
    trace = load.trace(trace_id, url=url)
    records = load.logs(trace_id=trace_id, url=url)
    per_span = logs.logs_per_span(trace, records)
    assert per_span["log_count"].sum() == len(records)
    assert "error" in set(per_span["worst_level"].dropna())
    joined = logs.span_logs(trace, records)
    assert joined["span_service"].notna().all()
    start, end, services = logs.context_window(trace)
    around = load.logs(start, end, services=services, untraced=True, url=url)
    assert around["trace_id"].isna().all()


# -- one bad trace never fails a window (issue 7) -------------------------------------------

BAD = spans(
    [
        ("cyc", "x", "y", "gw", "GET", 0, 95, "ok"),  # x and y are each other's parent
        ("cyc", "y", "x", "db", "q", 10, 90, "ok"),
        ("self", "s", "s", "gw", "GET", 0, 30, "timeout"),  # its own parent
        ("dup", "k", None, "gw", "GET", 0, 10, "ok"),  # one id, two different spans
        ("dup", "k", None, "gw", "GET", 2, 10, "ok"),
        ("orph", "o", "gone", "db", "q", 0, 20, "ok"),  # parent not stored
        (None, "n", None, "gw", "GET", 0, 5, "ok"),  # no trace at all
    ]
)
WINDOW = pd.concat([SMALL, BAD], ignore_index=True)


def test_clean_window_repairs_each_trace_and_leaves_out_the_unrepairable() -> None:
    """Cycle and self-parent repaired, the orphan flagged, the twice-used id left out."""
    clean = trace_sets.clean_window(WINDOW)
    assert (clean.repaired, clean.skipped) == (2, ["dup"])
    assert sorted(clean.spans["trace_id"].unique()) == ["cyc", "orph", "self", "t1", "t2"]
    assert clean.notes == [
        "1 span without a trace id left out",
        "2 traces repaired",
        "1 span naming itself as parent made roots (parent id cleared)",
        "1 orphan span (parent not in the trace) shown as roots",
        "1 parent cycle broken at their earliest span (its parent id cleared)",
        "1 trace left out, a span id used twice with different contents: dup",
    ]
    assert trace_sets.clean_window(clean) is clean


@pytest.mark.parametrize("passed", ["frame", "clean window"])
def test_window_views_survive_bad_traces(passed: str) -> None:
    """Every window-wide view answers over the repaired traces, with exact values, whether
    given the raw frame or a CleanWindow."""
    window = WINDOW if passed == "frame" else trace_sets.clean_window(WINDOW)
    graph = trace_sets.service_graph(window)
    assert graph[["caller", "callee", "calls", "errors", "p50_ms"]].values.tolist() == [
        ["gw", "db", 3, 1, 80.0]
    ]
    summary = trace_sets.trace_summaries(window).set_index("trace_id")
    assert summary[["errors", "root_service", "duration_ms"]].to_dict("index") == {
        "cyc": {"errors": 0, "root_service": "gw", "duration_ms": 95.0},
        "orph": {"errors": 0, "root_service": "db", "duration_ms": 20.0},
        "self": {"errors": 1, "root_service": "gw", "duration_ms": 30.0},
        "t1": {"errors": 0, "root_service": "gw", "duration_ms": 100.0},
        "t2": {"errors": 2, "root_service": "gw", "duration_ms": 50.0},
    }
    sample = trace_sets.sample_traces(window)
    assert sample.counts == {"error": 2, "slow": 1, "uniform": 2}
    assert sample.traces[["trace_id", "reason"]].values.tolist()[:3] == [
        ["t2", "error"],
        ["self", "error"],
        ["t1", "slow"],
    ]
    time = trace_sets.critical_path_time(window).set_index(["service_name", "operation_name"])
    assert time["path_ms"].to_dict() == {
        ("db", "q"): 220.0,
        ("gw", "GET"): 72.0,
        ("gw", "render"): 3.0,
    }
    change = trace_sets.compare_critical_paths(window, SMALL)
    got = {(r.service_name, r.operation_name): round(r.delta_ms, 9) for r in change.itertuples()}
    assert got == {("gw", "GET"): 0.9, ("gw", "render"): -0.9, ("db", "q"): -16.0}


def test_the_cohort_leaves_out_the_investigated_trace() -> None:
    """t1 against the window it belongs to: four cohort traces, not five, and their
    median self time per service (gw 10, 15, 30, 0; db 40, 80, 0, 20)."""
    trace = SMALL[SMALL["trace_id"] == "t1"]
    versus = trace_sets.compare_to_cohort(trace, WINDOW)
    assert versus.cohort_traces == 4
    assert versus.table.round(9).to_dict("records") == [
        {
            "service_name": "db",
            "self_ms": 80.0,
            "cohort_median_ms": 30.0,
            "cohort_p90_ms": 68.0,
            "excess_ms": 50.0,
        },
        {
            "service_name": "gw",
            "self_ms": 20.0,
            "cohort_median_ms": 12.5,
            "cohort_p90_ms": 25.5,
            "excess_ms": 7.5,
        },
    ]


def test_a_timeout_is_a_failure_like_an_error() -> None:
    """The schema's statuses are ok, error and timeout: a timed-out call counts as failed."""
    timed_out = spans(
        [
            ("t3", "f", None, "gw", "GET", 0, 100, "ok"),
            ("t3", "g", "f", "db", "q", 10, 100, "timeout"),
        ]
    )
    window = pd.concat([SMALL, timed_out], ignore_index=True)
    graph = trace_sets.service_graph(window)
    assert graph[["caller", "callee", "calls", "errors"]].values.tolist() == [["gw", "db", 3, 2]]
    summary = trace_sets.trace_summaries(window).set_index("trace_id")
    assert summary["errors"].to_dict() == {"t1": 0, "t2": 2, "t3": 1}
    assert trace_sets.sample_traces(window).counts["error"] == 2


LOGS = pd.DataFrame(
    {
        "log_id": [1, 2],
        "trace_id": ["t1", "t1"],
        "span_id": ["a", "b"],
        "timestamp": [T0, T0],
        "level": ["info", "error"],
        "service_name": ["gw", "db"],
        "message": ["hi", "bad"],
    }
)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: trace_sets.service_graph(SMALL.drop(columns="status")), "spans frame.*status"),
        (lambda: trace_sets.critical_path_time(SMALL, by=["host"]), "spans frame.*: host"),
        (
            lambda: trace_sets.compare_critical_paths(SMALL.drop(columns="end_time"), SMALL),
            "window frame lacks column.*: end_time",
        ),
        (
            lambda: trace_sets.compare_critical_paths(SMALL, SMALL.drop(columns="operation_name")),
            "baseline frame lacks column.*: operation_name",
        ),
        (
            lambda: trace_sets.compare_to_cohort(SMALL.drop(columns="service_name"), SMALL),
            "trace frame lacks column.*: service_name",
        ),
        (
            lambda: trace_sets.compare_to_cohort(
                SMALL[SMALL["trace_id"] == "t1"], SMALL.drop(columns="parent_span_id")
            ),
            "cohort frame lacks column.*: parent_span_id",
        ),
        (lambda: trace_sets.compare_to_cohort(SMALL, SMALL), "several traces"),
        (lambda: trace_sets.trace_summaries(SMALL.drop(columns="operation_name")), "operation"),
        (lambda: trace_sets.sample_traces(SMALL, uniform=-1), "uniform must be"),
        (lambda: trace_sets.sample_traces(SMALL, uniform=2.5), "uniform must be"),
        (lambda: trace_sets.sample_traces(SMALL, slow_quantile=1.5), "slow_quantile must be"),
        (
            lambda: logs.logs_per_span(SMALL, LOGS.drop(columns="level")),
            "logs frame lacks column.*: level",
        ),
        (lambda: logs.logs_per_span(SMALL, LOGS.assign(level="warning")), "'warning', not one"),
        (
            lambda: logs.span_logs(SMALL.drop(columns="status"), LOGS),
            "spans frame lacks column.*: status",
        ),
        (lambda: logs.context_window(SMALL.drop(columns="service_name")), "spans frame lacks"),
        (lambda: trace_sets.trace_root(SMALL), "trace frame lacks column.*: is_root"),
        (
            lambda: trace_sets.trace_path_time(SMALL.drop(columns="duration_ms")),
            "segments frame lacks column.*: duration_ms",
        ),
        (
            lambda: trace_sets.trace_overview(SMALL.drop(columns="status"), SMALL),
            "trace frame lacks column.*: status",
        ),
        (
            lambda: trace_sets.cohort_trace_ids(SMALL.drop(columns="parent_span_id")),
            "spans frame lacks column.*: parent_span_id",
        ),
    ],
    ids=[
        "a service graph without statuses",
        "path time by a column that is not there",
        "a window without end times",
        "a baseline without operations",
        "a trace without services",
        "a cohort without parents",
        "a 'trace' of two traces",
        "summaries without operations",
        "a negative uniform sample",
        "a fractional uniform sample",
        "a slow quantile above 1",
        "logs per span without levels",
        "logs per span with an unknown level",
        "span logs from spans without statuses",
        "a context window without services",
        "a trace's root from spans never rebuilt",
        "a trace's path time without section lengths",
        "a trace at a glance without statuses",
        "a cohort without parent ids",
    ],
)
def test_bad_input_names_the_parameter_or_column(call, message: str) -> None:
    """Up-front checks: an ObslibError naming what is wrong, never a KeyError from pandas."""
    with pytest.raises(ObslibError, match=message):
        call()


def test_logs_per_span_ranks_levels() -> None:
    """The worst level of each span's records by severity, not alphabetically."""
    records = pd.concat([LOGS, LOGS.assign(log_id=[3, 4], level=["warn", "debug"])])
    per_span = logs.logs_per_span(SMALL, records).set_index("span_id")
    assert per_span.loc[["a", "b", "c"], "worst_level"].fillna("").tolist() == ["warn", "error", ""]
    assert per_span["log_count"].to_dict() == {"a": 2, "b": 2, "c": 0, "d": 0, "e": 0}


def test_path_change_orders_equal_increases_by_key() -> None:
    """Groups whose change is equal come in key order, so pandas and Spark (whose rows
    arrive in no particular order) show the same table; 300 groups with 3 values tie a lot."""
    rng = np.random.default_rng(1)
    n = 300
    a = pd.DataFrame(
        {
            "service_name": [f"s{i:03d}" for i in rng.permutation(n)],
            "operation_name": "op",
            "path_ms": rng.integers(0, 3, n).astype(float),
            "share": 0.0,
        }
    )
    out = trace_sets.path_change(a, 1, a.iloc[:0], 1, ["service_name", "operation_name"])
    want = out.sort_values(["delta_ms", "service_name"], ascending=[False, True])
    assert out["service_name"].tolist() == want["service_name"].tolist()
    assert out["delta_ms"].tolist() == sorted(a["path_ms"], reverse=True)
