"""Across many traces: service graph, critical-path time and its change, cohorts, sampling,
and logs beside spans. Exact values on small frames; the incident story on the demo."""

from __future__ import annotations

import pandas as pd
import pytest

from obslib import load, logs, trace_sets

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
    chosen = trace_sets.sample_traces(many, uniform=3, slow_quantile=0.95)
    assert set(chosen.loc[chosen["reason"] == "error", "trace_id"]) == {
        f"t2-{i}" for i in range(20)
    }
    assert chosen.loc[chosen["reason"] == "slow", "trace_id"].tolist() == ["t1-7"]
    assert chosen.attrs["counts"] == {"error": 20, "slow": 1, "uniform": 3}
    assert trace_sets.sample_traces(many.iloc[:0]).empty


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
    sample = trace_sets.sample_traces(window)
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
    assert versus.iloc[0]["service_name"] == "domain-service"
    assert versus.attrs["cohort_traces"] > 5


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
    per_trace = logs.logs_per_trace(records)
    assert per_trace["logs"].tolist() == [len(records)]
