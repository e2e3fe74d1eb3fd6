"""Loaders: typed frames, empty results shaped like full ones, filters bound as values."""

from __future__ import annotations

import pandas as pd
import psycopg
import pytest

from obslib import load
from obslib.errors import UsageError

WINDOW = ("2026-11-13T00:00:00Z", "2026-11-15T00:00:00Z")
NOWHERE = ("1999-01-01T00:00:00Z", "1999-01-02T00:00:00Z")
HOSTILE = "x'; DROP TABLE distributed_traces;--"

STRING, TIME = "str", "datetime64[us, UTC]"
SPAN_DTYPES = {
    "trace_id": STRING,
    "span_id": STRING,
    "parent_span_id": STRING,
    "service_name": STRING,
    "operation_name": STRING,
    "span_kind": STRING,
    "start_time": TIME,
    "end_time": TIME,
    "duration_ms": "float64",
    "status": STRING,
    "tags": "object",
    "logs": "object",
}


def dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {c: str(t) for c, t in frame.dtypes.items()}


def test_spans_are_typed_and_empty_windows_keep_the_shape(demo_db) -> None:
    """Same columns and dtypes whether the window holds spans or none."""
    url, _ = demo_db
    full = load.spans(*WINDOW, url=url)
    empty = load.spans(*NOWHERE, url=url)
    assert len(full) > 1000 and empty.empty
    assert dtypes(full) == SPAN_DTYPES == dtypes(empty)
    assert isinstance(full["tags"].iloc[0], dict) and isinstance(full["logs"].iloc[0], list)
    assert full["start_time"].is_monotonic_increasing
    assert (full["start_time"] >= pd.Timestamp(WINDOW[0])).all()
    assert (full["start_time"] < pd.Timestamp(WINDOW[1])).all()


def test_spans_come_in_the_order_the_server_would_sort_them(demo_db) -> None:
    """Sorting in Arrow gives the order ORDER BY start_time, trace_id, span_id gave."""
    url, _ = demo_db
    frame = load.spans(*WINDOW, services=["domain-service", "dns-resolver"], json="text", url=url)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT span_id FROM distributed_traces WHERE start_time >= %s AND start_time < %s"
            " AND service_name = ANY(%s) ORDER BY start_time, trace_id, span_id",
            (pd.Timestamp(WINDOW[0]), pd.Timestamp(WINDOW[1]), ["domain-service", "dns-resolver"]),
        ).fetchall()
    assert len(rows) > 1000 and frame["span_id"].tolist() == [r[0] for r in rows]
    assert frame["start_time"].duplicated().any()  # ties exist, and were broken the same way


def test_span_filters_narrow_the_rows(demo_db) -> None:
    """Each filter keeps only matching rows; a hostile value is just a value."""
    url, _ = demo_db
    errors = load.spans(*WINDOW, statuses=["error", "timeout"], url=url)
    assert len(errors) > 0 and set(errors["status"]) <= {"error", "timeout"}
    auth = load.spans(*WINDOW, services="auth-service", kinds=["server"], url=url)
    assert set(auth["service_name"]) == {"auth-service"} and set(auth["span_kind"]) == {"server"}
    some = list(auth["trace_id"].unique()[:3])
    picked = load.spans(*WINDOW, trace_ids=some, url=url)
    assert set(picked["trace_id"]) == set(some)
    assert load.spans(*WINDOW, services=[HOSTILE], url=url).empty
    assert not load.spans(*WINDOW, trace_ids=some, url=url).empty  # the table is still there


def test_tag_columns_and_the_lazy_json_form(demo_db) -> None:
    """json='text' keeps JSON text that parse_json turns into the dict form; tags extract."""
    url, _ = demo_db
    as_text = load.spans(
        *WINDOW,
        services=["api-gateway"],
        kinds=["server"],
        json="text",
        tag_columns=["http.route", "host.name"],
        url=url,
    )
    as_dict = load.spans(*WINDOW, services=["api-gateway"], kinds=["server"], url=url)
    assert isinstance(as_text["tags"].iloc[0], str)
    assert load.parse_json(as_text["tags"]).tolist() == as_dict["tags"].tolist()
    assert as_text["tag:http.route"].tolist() == [t["http.route"] for t in as_dict["tags"]]
    assert as_text["tag:host.name"].str.startswith("api-gateway-").all()


def test_one_trace(demo_db) -> None:
    """A trace comes back whole with its root; unknown or hostile ids give an empty frame."""
    url, _ = demo_db
    some = load.spans(*WINDOW, services=["api-gateway"], url=url)["trace_id"].iloc[0]
    trace = load.trace(some, url=url)
    assert set(trace["trace_id"]) == {some} and trace["parent_span_id"].isna().sum() == 1
    assert load.trace("no-such-trace", url=url).empty
    assert dtypes(load.trace(HOSTILE, url=url)) == SPAN_DTYPES


def test_logs_by_trace_span_and_level(demo_db) -> None:
    """Logs filter by trace, span, service and level; fields are dicts."""
    url, _ = demo_db
    errors = load.logs(*WINDOW, levels=["error"], url=url)
    assert len(errors) > 0 and set(errors["level"]) == {"error"}
    assert errors["error"].notna().all() and isinstance(errors["fields"].iloc[0], dict)
    one = errors.iloc[0]
    by_trace = load.logs(trace_id=one["trace_id"], url=url)
    assert set(by_trace["trace_id"]) == {one["trace_id"]}
    by_span = load.logs(trace_id=one["trace_id"], span_id=one["span_id"], url=url)
    assert by_span["log_id"].tolist() == [one["log_id"]]
    assert dtypes(load.logs(*NOWHERE, url=url)) == dtypes(errors)
    assert str(errors["timestamp"].dtype) == TIME


def test_definitions_measurements_and_incidents(demo_db) -> None:
    """SLOs, measurements, alert definitions and incidents load with their types."""
    url, summary = demo_db
    slos = load.slos(url=url)
    assert len(slos) == summary.slos and str(slos["target_value"].dtype) == "float64"
    measured = load.slo_measurements(*WINDOW, services=["domain-service"], url=url)
    assert set(measured["service_name"]) == {"domain-service"}
    assert str(measured["measurement_period"].dtype).startswith("timedelta64")
    assert measured["measurement_period"].iloc[0] == pd.Timedelta(hours=24)
    alerts = load.alert_definitions(url=url)
    assert all(isinstance(c, list) and c for c in alerts["notification_channels"])
    incidents = load.incidents(*WINDOW, statuses=["resolved"], url=url)
    assert summary.incident_id in set(incidents["incident_id"])
    assert str(incidents["escalation_level"].dtype) == "Int64"
    assert load.incident("INC-NOPE", url=url).empty
    assert list(load.incident("INC-NOPE", url=url).columns) == list(incidents.columns)


def test_sli_counts_agree_with_the_spans(demo_db) -> None:
    """SQL bucket counts equal the same counts computed from the loaded spans."""
    url, _ = demo_db
    counts = load.sli_counts(
        *WINDOW, services=["domain-service"], latency_threshold_ms=400, url=url
    )
    spans = load.spans(*WINDOW, services=["domain-service"], kinds=["server"], json="text", url=url)
    by_hour = spans.groupby(spans["start_time"].dt.floor("h")).agg(
        total=("span_id", "size"),
        ok=("status", lambda s: int((s == "ok").sum())),
        fast=("duration_ms", lambda d: int((d <= 400).sum())),
    )
    got = counts.set_index("bucket")[["total", "ok", "fast"]]
    pd.testing.assert_frame_equal(got, by_hour.astype("int64"), check_names=False, check_freq=False)


def test_one_scan_gives_the_counts_of_a_scan_per_threshold(demo_db) -> None:
    """slo_counts reads every threshold in one pass; each equals sli_counts of its own."""
    url, _ = demo_db
    slos = load.slos(url=url)
    together = load.slo_counts(slos, *WINDOW, url=url)
    thresholds = [None, *sorted(set(slos["latency_threshold_ms"].dropna()))]
    assert len(thresholds) > 2
    services = sorted(set(slos["service_name"]))
    for threshold in thresholds:
        alone = load.sli_counts(
            *WINDOW, services=services, bucket="1min", latency_threshold_ms=threshold, url=url
        )
        mine = together[
            together["threshold"].isna()
            if threshold is None
            else together["threshold"] == threshold
        ]
        pd.testing.assert_frame_equal(
            mine.drop(columns="threshold").reset_index(drop=True), alone, check_dtype=False
        )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: load.spans(*reversed(WINDOW)), "empty time window"),
        (lambda: load.spans("yesterday-ish", WINDOW[1]), "start is not a time"),
        (lambda: load.spans(*WINDOW, statuses=["broken"]), "unknown status 'broken'"),
        (lambda: load.spans(*WINDOW, json="yaml"), "json must be"),
        (lambda: load.sli_counts(*WINDOW, bucket="often"), "bucket must be a positive duration"),
        (lambda: load.incidents(statuses=["closed"]), "unknown incident status 'closed'"),
    ],
    ids=[
        "a reversed window",
        "a start that is no time",
        "an unknown span status",
        "an unknown JSON mode",
        "a bucket that is no duration",
        "an unknown incident status",
    ],
)
def test_bad_parameters_are_usage_errors(call, message: str) -> None:
    """Invalid parameters are refused with a one-line reason before any query runs."""
    with pytest.raises(UsageError, match=message):
        call()
