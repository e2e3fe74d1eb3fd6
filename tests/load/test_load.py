"""Loaders: typed frames, empty results shaped like full ones, filters bound as values."""

from __future__ import annotations

import json

import pandas as pd
import psycopg
import pytest

from obslib import load
from obslib.errors import UsageError
from obslib.load._core import _fetch

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


def _containers(value: object) -> list[object]:
    """Every dict and list inside ``value``, itself included."""
    found: list[object] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            found.append(item)
            stack.extend(item)
    return found


REPEATED = ['{"component": "http", "n": 1}', "[]", '{"a": [1, {"b": 2}]}'] * 40
JSON_TEXTS = {
    "flat dicts that repeat": ['{"component": "http", "n": 1}', '{"component": "db"}'] * 50,
    "empty lists that repeat": ["[]"] * 100,
    "nested values that repeat": ['{"a": [1, {"b": 2}]}', '[{"event": "error"}]'] * 50,
    "a mix that repeats": REPEATED,
    "64-bit integers": ['{"big": 18446744073709551615, "low": -9223372036854775808}'] * 20,
    "integers past 64 bits": ['{"id": 123456789012345678901234567890, "n": [-1' + "9" * 22 + "]}"]
    * 20,
    "a number past a double": ['{"n": [-1e400], "m": 1}'] * 20,
    "scalars": ['"text"', "12", "true", "null", "1.5"] * 20,
    "texts that never repeat": [f'{{"i": {i}, "tags": [{i}]}}' for i in range(100)],
}


@pytest.mark.parametrize("texts", list(JSON_TEXTS.values()), ids=list(JSON_TEXTS))
@pytest.mark.parametrize("dtype", ["str", "object"], ids=["Arrow text", "Python text"])
def test_parsed_json_equals_each_text_parsed_and_no_two_rows_share_a_container(
    texts: list[str], dtype: str
) -> None:
    """Each row's value equals its own text parsed, and owns every dict and list in it
    (texts that repeat are parsed once and copied, so changing one row changes no other)."""
    with_missing = [*texts, None]
    parsed = load.parse_json(pd.Series(with_missing, dtype=dtype)).tolist()
    assert parsed[:-1] == [json.loads(t) for t in texts]
    assert pd.isna(parsed[-1])
    owned = [id(c) for value in parsed for c in _containers(value)]
    assert len(owned) == len(set(owned))


def test_dict_json_rows_own_their_values(demo_db) -> None:
    """Spans whose tags are the same text get equal dicts that are not the same object."""
    url, _ = demo_db
    spans = load.spans(*WINDOW, services=["api-gateway"], url=url)
    text = load.spans(*WINDOW, services=["api-gateway"], json="text", url=url)
    assert spans["tags"].tolist() == [json.loads(t) for t in text["tags"]]
    assert spans["logs"].tolist() == [json.loads(t) for t in text["logs"]]
    repeated = text["tags"].duplicated(keep=False)
    assert repeated.sum() > 100  # the demo repeats its tags: the copies are exercised
    owned = [id(c) for column in ("tags", "logs") for v in spans[column] for c in _containers(v)]
    assert len(owned) == len(set(owned))


SPANS_SQL = (
    "SELECT trace_id, span_id, start_time, tags::text AS tags FROM distributed_traces_tagged"
    " WHERE start_time >= $1 AND start_time < $2 AND service_name = ANY($3)"
)


def test_a_window_read_in_slices_equals_it_read_whole(demo_db) -> None:
    """Slices of time, each sorted, give the rows and order of one statement sorted."""
    url, _ = demo_db
    lo, hi = (pd.Timestamp(t).to_pydatetime() for t in WINDOW)
    params = [lo, hi, ["domain-service", "dns-resolver"]]
    order = ("start_time", "trace_id", "span_id")
    whole = _fetch(SPANS_SQL, params, url, order=order)
    sliced = _fetch(SPANS_SQL, params, url, order=order, split=("start_time", lo, hi))
    assert whole.num_rows > 1000 and sliced.column("trace_id").num_chunks > 1
    assert sliced.equals(whole)
    with pytest.raises(ValueError, match="first sort key"):
        _fetch(SPANS_SQL, params, url, order=("trace_id",), split=("start_time", lo, hi))
