"""Jaeger JSON decoding (obslib.ingest.jaeger): exact rows from hand-built traces, every
reject with its position, structural errors, and the HotROD fixture."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obslib.errors import InputError
from obslib.ingest import jaeger, records
from obslib.traces import critical_path

HOTROD = Path(__file__).parents[1] / "data" / "jaeger" / "hotrod_trace.json"
T0 = 1_700_000_000_000_000  # µs: 2023-11-14T22:13:20Z
TRACE = "4bf92f3577b34da6"
TRACE32 = "0000000000000000" + TRACE
A, B, C = "a1a1a1a1a1a1a1a1", "b2b2b2b2b2b2b2b2", "c3c3c3c3c3c3c3c3"


def tag(key: str, value: Any, kind: str = "string") -> dict[str, Any]:
    return {"key": key, "type": kind, "value": value}


def three_span_trace() -> dict[str, Any]:
    """checkout's POST /checkout calls billing's charge (CHILD_OF) and starts billing's send
    receipt (FOLLOWS_FROM), which outlives it."""
    return {
        "data": [
            {
                "traceID": TRACE,
                "spans": [
                    {
                        "traceID": TRACE,
                        "spanID": A,
                        "operationName": "POST /checkout",
                        "references": [],
                        "startTime": T0,
                        "duration": 5000,
                        "tags": [
                            tag("span.kind", "server"),
                            tag("http.method", "POST"),
                            tag("hostname", "pod-a1"),
                        ],
                        "logs": [
                            {
                                "timestamp": T0 + 100,
                                "fields": [tag("event", "accepted"), tag("size", "12", "int64")],
                            }
                        ],
                        "processID": "p1",
                        "warnings": None,
                    },
                    {
                        "traceID": TRACE,
                        "spanID": B,
                        "operationName": "charge",
                        "references": [{"refType": "CHILD_OF", "traceID": TRACE, "spanID": A}],
                        "startTime": T0 + 1000,
                        "duration": 2000,
                        "tags": [tag("span.kind", "client"), tag("error", True, "bool")],
                        "logs": [],
                        "processID": "p2",
                    },
                    {
                        "traceID": TRACE,
                        "spanID": C,
                        "operationName": "send receipt",
                        "references": [{"refType": "FOLLOWS_FROM", "traceID": TRACE, "spanID": A}],
                        "startTime": T0 + 4000,
                        "duration": 3000,
                        "tags": [tag("retries", 2, "int64"), tag("ratio", "0.5", "float64")],
                        "processID": "p2",
                    },
                ],
                "processes": {
                    "p1": {
                        "serviceName": "checkout",
                        "tags": [tag("hostname", "host-a"), tag("ip", "10.0.0.1")],
                    },
                    "p2": {"serviceName": "billing", "tags": [tag("hostname", "host-b")]},
                },
                "warnings": None,
            }
        ],
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }


def one_span(**changes: Any) -> dict[str, Any]:
    """A bare trace of one valid root span, with ``changes`` applied to the span (a value of
    ``...`` removes the key)."""
    span = {
        "traceID": TRACE,
        "spanID": A,
        "operationName": "op",
        "references": [],
        "startTime": T0,
        "duration": 10,
        "tags": [],
        "processID": "p1",
    }
    for key, value in changes.items():
        if value is ...:
            span.pop(key, None)
        else:
            span[key] = value
    return {"traceID": TRACE, "spans": [span], "processes": {"p1": {"serviceName": "svc"}}}


def decode_one(**changes: Any) -> dict[str, Any]:
    """The row of ``one_span(**changes)``; fails the test when it was rejected."""
    out = jaeger.decode(one_span(**changes), "t.json", "")
    assert not out.rejects, out.rejects
    return out.spans[0]


def reason_of(**changes: Any) -> str:
    """The reject reason of ``one_span(**changes)``; fails the test when it was kept."""
    out = jaeger.decode(one_span(**changes), "t.json", "")
    assert not out.spans, out.spans
    return out.rejects[0].reason


def test_three_span_trace_across_two_processes_decodes_to_exact_rows() -> None:
    """Ids padded, process then span tags, typed values, kinds, status, parents and events."""
    out = jaeger.decode(three_span_trace(), "t.json", "line 2")
    assert out.rejects == [] and out.logs == [] and out.unlinked == 0
    assert out.spans == [
        {
            "trace_id": TRACE32,
            "span_id": A,
            "parent_span_id": None,
            "service_name": "checkout",
            "operation_name": "POST /checkout",
            "span_kind": "server",
            "start_time": T0,
            "end_time": T0 + 5000,
            "status": "ok",
            "tags": {
                "hostname": "pod-a1",
                "ip": "10.0.0.1",
                "span.kind": "server",
                "http.method": "POST",
            },
            "logs": [
                {
                    "event": "accepted",
                    "size": 12,
                    "timestamp": "2023-11-14T22:13:20.000100000+00:00",
                }
            ],
            "position": "line 2: data[0].spans[0]",
        },
        {
            "trace_id": TRACE32,
            "span_id": B,
            "parent_span_id": A,
            "service_name": "billing",
            "operation_name": "charge",
            "span_kind": "client",
            "start_time": T0 + 1000,
            "end_time": T0 + 3000,
            "status": "error",
            "tags": {"hostname": "host-b", "span.kind": "client", "error": True},
            "logs": [],
            "position": "line 2: data[0].spans[1]",
        },
        {
            "trace_id": TRACE32,
            "span_id": C,
            "parent_span_id": A,
            "service_name": "billing",
            "operation_name": "send receipt",
            "span_kind": "internal",
            "start_time": T0 + 4000,
            "end_time": T0 + 7000,
            "status": "ok",
            "tags": {"hostname": "host-b", "retries": 2, "ratio": 0.5, "ref_type": "follows_from"},
            "logs": [],
            "position": "line 2: data[0].spans[2]",
        },
    ]


def test_critical_path_keeps_the_follows_from_child_off_the_path() -> None:
    """send receipt outlives its parent but is FOLLOWS_FROM: the path is A, charge, A."""
    out = jaeger.decode(three_span_trace(), "t.json", "")
    path = critical_path(records.spans_frame(out.spans))
    us = [
        (s, int(a.value // 1000) - T0, int(b.value // 1000) - T0)
        for s, a, b in path.itertuples(index=False)
    ]
    assert us == [(A, 3000, 5000), (B, 1000, 3000), (A, 0, 1000)]


def test_a_bare_trace_without_the_data_wrapper_is_accepted() -> None:
    """One trace object alone (no data list) decodes, positions without data[i]."""
    out = jaeger.decode(three_span_trace()["data"][0], "t.json", "")
    assert [r["position"] for r in out.spans] == ["spans[0]", "spans[1]", "spans[2]"]


@pytest.mark.parametrize(
    ("field", "given", "stored"),
    [
        ("traceID", "4BF92F3577B34DA6", TRACE32),
        ("traceID", "ABC", "00000000000000000000000000000abc"),
        ("traceID", "5B8EFFF798038103D269B633813FC60C", "5b8efff798038103d269b633813fc60c"),
        ("spanID", "A", "000000000000000a"),
        ("spanID", "00F067AA0BA902B7", "00f067aa0ba902b7"),
    ],
    ids=[
        "a 16-digit trace id is padded to 32",
        "a short trace id is left-padded",
        "a 32-digit uppercase trace id is lowered",
        "a one-digit span id is left-padded",
        "an uppercase span id is lowered",
    ],
)
def test_ids_are_padded_and_lowered(field: str, given: str, stored: str) -> None:
    """Jaeger ids lose leading zeros and may be uppercase; stored ids are 32/16 lowercase."""
    column = {"traceID": "trace_id", "spanID": "span_id"}[field]
    assert decode_one(**{field: given})[column] == stored


@pytest.mark.parametrize(
    ("field", "given", "reason"),
    [
        ("traceID", "", "trace id is empty"),
        ("traceID", "0000000000000000", "trace id is all zeros"),
        ("traceID", "4bf92f3577b34dz6", "trace id '4bf92f3577b34dz6' is not hexadecimal"),
        ("traceID", "xyz", "trace id 'xyz' is not hexadecimal"),
        ("traceID", "1" * 33, f"trace id '{'1' * 33}' has 33 characters, not 32 hex digits"),
        ("traceID", 12, "trace id is a number, not a hex string"),
        ("spanID", "", "span id is empty"),
        ("spanID", "0", "span id is all zeros"),
        ("spanID", "g1", "span id 'g1' is not hexadecimal"),
        ("spanID", "1" * 17, f"span id '{'1' * 17}' has 17 characters, not 16 hex digits"),
        ("spanID", ..., "span id is missing, not a hex string"),
    ],
    ids=[
        "an empty trace id",
        "an all-zero trace id",
        "a non-hex trace id",
        "a short non-hex trace id",
        "a 33-digit trace id",
        "a numeric trace id",
        "an empty span id",
        "an all-zero span id",
        "a short non-hex span id",
        "a 17-digit span id",
        "a missing span id",
    ],
)
def test_a_bad_id_rejects_the_span_with_its_position(field: str, given: Any, reason: str) -> None:
    """The span is rejected (not the file), with where it was and the OTLP-style reason."""
    trace = three_span_trace()
    trace["data"][0]["spans"][1][field] = given
    if given is ...:
        del trace["data"][0]["spans"][1][field]
    out = jaeger.decode(trace, "t.json", "line 3")
    assert [r["span_id"] for r in out.spans] == [A, C]
    assert out.rejects == [records.Reject("t.json", "line 3: data[0].spans[1]", reason, "span")]


def test_a_span_without_a_trace_id_takes_its_traces() -> None:
    """The trace's traceID stands in for a span that omits its own."""
    assert decode_one(traceID=...)["trace_id"] == TRACE32


def test_a_span_whose_process_id_names_no_process_is_rejected() -> None:
    """The reason says which processID was not found."""
    assert reason_of(processID="p9") == "processID 'p9' names no process of the trace"
    assert reason_of(processID=["p1"]) == "processID [...] names no process of the trace"
    assert reason_of(processID=...) == "span has no processID and no process"


def test_an_inline_process_is_accepted() -> None:
    """A span carrying its own process object needs no processes map entry."""
    row = decode_one(processID=..., process={"serviceName": "inline", "tags": [tag("k", "v")]})
    assert (row["service_name"], row["tags"]) == ("inline", {"k": "v"})


def test_a_process_without_a_service_name_rejects_its_spans() -> None:
    """No serviceName, no service_name column: the span cannot be stored."""
    trace = one_span()
    trace["processes"]["p1"] = {"tags": []}
    out = jaeger.decode(trace, "t.json", "")
    assert [r.reason for r in out.rejects] == ["process has no serviceName"]


@pytest.mark.parametrize(
    ("kind", "value", "stored"),
    [
        ("string", "x", "x"),
        ("bool", True, True),
        ("bool", "true", True),
        ("bool", "FALSE", False),
        ("int64", 7, 7),
        ("int64", "-42", -42),
        ("int64", 3.0, 3),
        ("float64", 2, 2.0),
        ("float64", "1.5", 1.5),
        ("binary", "AAEC", "AAEC"),
        (None, 5, 5),
    ],
    ids=[
        "a string stays text",
        "a bool stays a bool",
        "a bool written as text becomes a bool",
        "a bool in capitals becomes a bool",
        "an int64 stays an int",
        "an int64 written as text becomes an int",
        "an integral float typed int64 becomes an int",
        "a float64 written as an integer becomes a float",
        "a float64 written as text becomes a float",
        "binary stays base64 text",
        "an untyped value is kept as it is",
    ],
)
def test_tag_values_are_converted_by_their_type(kind: Any, value: Any, stored: Any) -> None:
    """The stored tag has the Python type its Jaeger type names."""
    row = decode_one(tags=[{"key": "k", "type": kind, "value": value}])
    assert row["tags"]["k"] == stored and type(row["tags"]["k"]) is type(stored)


@pytest.mark.parametrize(
    ("tags", "reason"),
    [
        ([tag("k", "many", "int64")], "tags 'k' 'many' is not an integer"),
        ([tag("k", 2**63, "int64")], f"tags 'k' {2**63} does not fit in int64"),
        ([tag("k", "yes", "bool")], "tags 'k' of type bool has a string value 'yes'"),
        ([tag("k", "x", "float64")], "tags 'k' of type float64 has a string value 'x'"),
        ([tag("k", 5, "string")], "tags 'k' of type string has a number value 5"),
        (
            [tag("k", 1, "uint8")],
            "tags 'k' type 'uint8' is not one of " + ", ".join(jaeger.TAG_TYPES),
        ),
        ([{"type": "string", "value": "v"}], "tags[0] key is missing, not a string"),
        (["k=v"], "tags[0] is a string, not an object"),
        ({"k": "v"}, "tags is a JSON object, not a list"),
        ([tag("k", "a\x00b")], "attributes contains a NUL character"),
    ],
    ids=[
        "an int64 that is not a number",
        "an int64 out of range",
        "a bool that is neither true nor false",
        "a float64 that is not a number",
        "a string tag holding a number",
        "an unknown tag type",
        "a tag without a key",
        "a tag that is not an object",
        "tags that are not a list",
        "a tag value with a NUL",
    ],
)
def test_a_bad_tag_rejects_the_span(tags: Any, reason: str) -> None:
    """A tag whose value does not match its type is a record error, not a guess."""
    assert reason_of(tags=tags) == reason


@pytest.mark.parametrize(
    ("tags", "kind"),
    [
        ([tag("span.kind", "producer")], "producer"),
        ([tag("span.kind", "CONSUMER")], "consumer"),
        ([tag("span.kind", "rpc")], "internal"),
        ([], "internal"),
    ],
    ids=[
        "a known kind",
        "a kind in capitals",
        "an unknown kind is internal",
        "no kind is internal",
    ],
)
def test_span_kind_comes_from_the_span_kind_tag(tags: list, kind: str) -> None:
    """span.kind names the kind; the tag itself is kept as well."""
    row = decode_one(tags=tags)
    assert row["span_kind"] == kind
    assert row["tags"] == {t["key"]: t["value"] for t in tags}


@pytest.mark.parametrize(
    ("tags", "status"),
    [
        ([tag("error", True, "bool")], "error"),
        ([tag("error", "true", "bool")], "error"),
        ([tag("error", "true")], "error"),
        ([tag("otel.status_code", "ERROR")], "error"),
        ([tag("error", False, "bool")], "ok"),
        ([tag("otel.status_code", "OK")], "ok"),
        ([], "ok"),
    ],
    ids=[
        "error=true is an error",
        "error='true' typed bool is an error",
        "error='true' typed string is an error",
        "otel.status_code ERROR is an error",
        "error=false is ok",
        "otel.status_code OK is ok",
        "no error tag is ok",
    ],
)
def test_status_follows_the_error_tags(tags: list, status: str) -> None:
    """Jaeger marks failures with error=true; OpenTelemetry spans with otel.status_code."""
    assert decode_one(tags=tags)["status"] == status


def ref(kind: str, span_id: str, trace_id: str = TRACE) -> dict[str, str]:
    return {"refType": kind, "traceID": trace_id, "spanID": span_id}


def stored_ref(kind: str, span_id: str, trace_id: str = TRACE32) -> dict[str, str]:
    return {"ref_type": kind, "trace_id": trace_id, "span_id": span_id}


OTHER = "ffffffffffffffff"


@pytest.mark.parametrize(
    ("changes", "parent", "tags"),
    [
        ({"references": [ref("CHILD_OF", B)]}, B, {}),
        (
            {"references": [ref("FOLLOWS_FROM", C), ref("CHILD_OF", B)]},
            B,
            {"references": [stored_ref("follows_from", C)]},
        ),
        (
            {"references": [ref("FOLLOWS_FROM", C), ref("FOLLOWS_FROM", B)]},
            C,
            {"ref_type": "follows_from", "references": [stored_ref("follows_from", B)]},
        ),
        (
            {"references": [ref("CHILD_OF", B, OTHER), ref("CHILD_OF", C)]},
            C,
            {"references": [stored_ref("child_of", B, "0" * 16 + OTHER)]},
        ),
        (
            {"references": [ref("CHILD_OF", B, OTHER)]},
            None,
            {"references": [stored_ref("child_of", B, "0" * 16 + OTHER)]},
        ),
        ({"parentSpanID": "B2"}, "00000000000000b2", {}),
        ({"references": [], "parentSpanID": "0000000000000000"}, None, {}),
        ({"parentSpanID": ""}, None, {}),
        ({"references": [ref("CHILD_OF", C)], "parentSpanID": B}, C, {}),
        ({"references": None}, None, {}),
    ],
    ids=[
        "a CHILD_OF reference is the parent",
        "CHILD_OF wins over an earlier FOLLOWS_FROM, which is kept",
        "the first FOLLOWS_FROM is the parent when there is no CHILD_OF",
        "a CHILD_OF into another trace is not the parent but kept",
        "a lone reference into another trace leaves a root, the reference kept",
        "a legacy parentSpanID is the parent, padded and lowered",
        "an all-zero parentSpanID is a root",
        "an empty parentSpanID is a root",
        "references win over parentSpanID",
        "null references are none",
    ],
)
def test_the_parent_comes_from_the_references(
    changes: dict, parent: str | None, tags: dict
) -> None:
    """Jaeger's UI rule: first CHILD_OF, else first FOLLOWS_FROM (marked), else legacy."""
    row = decode_one(**changes)
    assert (row["parent_span_id"], row["tags"]) == (parent, tags)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"references": [ref("PARENT", B)]},
            "references[0] refType 'PARENT' is not CHILD_OF or FOLLOWS_FROM",
        ),
        ({"references": [ref("CHILD_OF", "")]}, "references[0] span id is empty"),
        ({"references": "B"}, "references is a string, not a list"),
        ({"references": [5]}, "references[0] is a number, not an object"),
        ({"parentSpanID": "zz"}, "parentSpanID 'zz' is not hexadecimal"),
        ({"duration": -1}, "span ends 1000 ns before it starts"),
        ({"duration": ...}, "duration is missing, not an integer"),
        ({"duration": "1.5"}, "duration '1.5' is not an integer"),
        ({"startTime": 0}, "startTime is 0 (unset)"),
        ({"startTime": ...}, "startTime is missing, not an integer"),
        ({"startTime": -5}, "startTime -5 is before 1970"),
        ({"startTime": 10**16}, f"startTime {10**16} µs is after 2262 (out of range)"),
        (
            {"startTime": 9_223_372_036_854_000, "duration": 1000},
            "span ends after 2262 (out of range)",
        ),
        ({"operationName": 5}, "span name is a number, not a string"),
        ({"logs": [{"timestamp": 0, "fields": []}]}, "logs[0] timestamp is 0 (unset)"),
        (
            {"logs": [{"timestamp": T0, "fields": [tag("n", "x", "int64")]}]},
            "logs[0] fields 'n' 'x' is not an integer",
        ),
        ({"logs": {"timestamp": T0}}, "logs is a JSON object, not a list"),
    ],
    ids=[
        "an unknown reference type",
        "a reference with an empty span id",
        "references that are not a list",
        "a reference that is not an object",
        "a non-hex parentSpanID",
        "a negative duration",
        "a missing duration",
        "a fractional duration",
        "a zero start time",
        "a missing start time",
        "a start before 1970",
        "a start after 2262",
        "an end after 2262",
        "a numeric operation name",
        "a log at time zero",
        "a log field with a bad value",
        "logs that are not a list",
    ],
)
def test_a_bad_field_rejects_the_span(changes: dict, reason: str) -> None:
    """Wrong references, times, names and logs are record errors with a one-line reason."""
    assert reason_of(**changes) == reason


def test_span_log_fields_become_events_with_the_log_time() -> None:
    """Each log is its fields plus its time; the log's own time wins over a field named so."""
    logs = [
        {"timestamp": T0 + 1, "fields": [tag("event", "a")]},
        {"timestamp": T0 + 2, "fields": [tag("timestamp", "yesterday")]},
        {"timestamp": T0 + 3},
    ]
    assert decode_one(logs=logs)["logs"] == [
        {"event": "a", "timestamp": "2023-11-14T22:13:20.000001000+00:00"},
        {"timestamp": "2023-11-14T22:13:20.000002000+00:00"},
        {"timestamp": "2023-11-14T22:13:20.000003000+00:00"},
    ]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "t.json: line 4: top level: is a JSON array, not a Jaeger trace or {data: [...]}"),
        ({"total": 1}, "t.json: line 4: top level: has neither data nor spans: not Jaeger's JSON"),
        ({"data": "x"}, "t.json: line 4: data: is a string, not a list of traces"),
        ({"data": [None]}, "t.json: line 4: data[0]: is missing, not a trace object"),
        (
            {"data": [{"traceID": TRACE}]},
            "t.json: line 4: data[0].spans: is missing, not a list of spans",
        ),
        (
            {"data": [{"spans": {}}]},
            "t.json: line 4: data[0].spans: is a JSON object, not a list of spans",
        ),
        (
            {"data": [{"spans": [{}, 3]}]},
            "t.json: line 4: data[0].spans[1]: is a number, not a span object",
        ),
        ({"spans": ["s"]}, "t.json: line 4: spans[0]: is a string, not a span object"),
        (
            {"spans": [], "processes": []},
            "t.json: line 4: processes: is a JSON array, not an object",
        ),
        (
            {"data": None, "errors": [{"code": 404, "msg": "trace not found"}]},
            "t.json: line 4: data: is null; the query reported errors: trace not found",
        ),
    ],
    ids=[
        "a document that is not an object",
        "an object that is neither a trace nor a response",
        "data that is not a list",
        "a trace that is not an object",
        "a trace without spans",
        "spans that are not a list",
        "a span that is not an object",
        "a bare trace's span that is not an object",
        "processes that are not an object",
        "a query API error response",
    ],
)
def test_a_document_that_is_not_jaeger_json_is_an_input_error(doc: Any, message: str) -> None:
    """The whole document is refused with one line naming the path, before any row is made."""
    with pytest.raises(InputError) as caught:
        jaeger.decode(doc, "t.json", "line 4")
    assert str(caught.value) == message


def test_without_where_the_message_and_positions_have_no_line() -> None:
    """A single-document file: positions and messages start at the path."""
    with pytest.raises(InputError, match=r"^t\.json: data: is a number, not a list of traces$"):
        jaeger.decode({"data": 1}, "t.json", "")


def test_every_span_is_a_row_or_a_reject() -> None:
    """The sum rule over a trace mixing good and bad spans, in two traces."""
    doc = three_span_trace()
    second = copy.deepcopy(doc["data"][0])
    second["spans"][0]["spanID"] = "nothex!"
    second["spans"][2]["startTime"] = 0
    doc["data"].append(second)
    doc["data"][0]["spans"][1]["processID"] = "p7"
    out = jaeger.decode(doc, "t.json", "")
    assert out.records == 6 and len(out.spans) == 3
    assert [r.position for r in out.rejects] == [
        "data[0].spans[1]",
        "data[1].spans[0]",
        "data[1].spans[2]",
    ]


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["CHILD_OF", "FOLLOWS_FROM", "p1", TRACE, A, "int64", "bool", "true"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "data",
                    "spans",
                    "processes",
                    "traceID",
                    "spanID",
                    "references",
                    "refType",
                    "parentSpanID",
                    "startTime",
                    "duration",
                    "tags",
                    "logs",
                    "fields",
                    "timestamp",
                    "key",
                    "type",
                    "value",
                    "processID",
                    "process",
                    "serviceName",
                    "p1",
                    "operationName",
                    "errors",
                ]
            ),
            inner,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(JSON)
def test_any_json_decodes_or_is_an_input_error(doc: Any) -> None:
    """Fuzzed documents never raise anything but InputError, and keep the sum rule."""
    try:
        out = jaeger.decode(doc, "f.json", "line 1")
    except InputError as err:
        assert "\n" not in str(err)
        return
    traces = doc.get("data", [doc])
    assert out.records == sum(len(t["spans"]) for t in traces)


def _places(value: Any, path: tuple = ()) -> list[tuple]:
    """Every path (keys and indexes) to a value inside ``value``."""
    found = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _places(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _places(v, (*path, i))
    return found


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_a_valid_trace_with_any_value_replaced_decodes_or_is_an_input_error(data: Any) -> None:
    """One value anywhere in a good trace replaced by fuzz: InputError or the sum rule."""
    doc = three_span_trace()
    path = data.draw(st.sampled_from(_places(doc)[1:]))
    holder = doc
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = data.draw(JSON)
    try:
        out = jaeger.decode(doc, "f.json", "")
    except InputError as err:
        assert "\n" not in str(err)
        return
    assert out.records == sum(len(t["spans"]) for t in doc["data"])


DEEP = orjson.loads(b"[" * 1000 + b"]" * 1000)  # as deep as orjson parses


def test_a_deeply_nested_value_anywhere_is_refused_without_a_crash() -> None:
    """No message quotes a value so deep its repr would overflow the stack."""
    doc = three_span_trace()
    for path in _places(doc)[1:]:
        changed = copy.deepcopy(doc)
        holder = changed
        for step in path[:-1]:
            holder = holder[step]
        holder[path[-1]] = DEEP
        try:
            out = jaeger.decode(changed, "f.json", "")
        except InputError:
            continue
        assert out.records == sum(len(t["spans"]) for t in changed["data"]), path
    for errors in (DEEP, [DEEP], [{"msg": DEEP}]):
        with pytest.raises(InputError, match=r"^f\.json: data: is null; the query reported"):
            jaeger.decode({"data": None, "errors": errors}, "f.json", "")


def test_the_hotrod_download_decodes_completely() -> None:
    """The fixture (a Jaeger UI download of HotROD's dispatch) decodes with no reject."""
    out = jaeger.decode(orjson.loads(HOTROD.read_bytes()), str(HOTROD), "")
    assert out.rejects == [] and len(out.spans) == 8
    assert {r["service_name"] for r in out.spans} == {"frontend", "driver", "redis"}
    assert {r["trace_id"] for r in out.spans} == {"00000000000000005a3c1f0e7b9d2c41"}
    failed = [r for r in out.spans if r["status"] == "error"]
    assert [(r["operation_name"], r["logs"][0]["error.object"]) for r in failed] == [
        ("GetDriver", "redis timeout")
    ]
    assert sum(r["parent_span_id"] is None for r in out.spans) == 1
    assert len(critical_path(records.spans_frame(out.spans))) > 0
