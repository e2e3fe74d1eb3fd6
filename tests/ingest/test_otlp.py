"""OTLP mapping (JSON and protobuf) and the file importer, against the OTLP data model."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pandas as pd
import pytest

from obslib import load
from obslib.errors import InputError
from obslib.ingest import importer, otlp, records
from tests.conftest import run_cli

TRACE = "5B8EFFF798038103D269B633813FC60C"
ROOT, CHILD = "EEE19B7EC3C1B173", "EEE19B7EC3C1B174"
T0 = 1_763_640_000_000_000_000  # 2025-11-20T12:00:00Z in ns


def _kv(key: str, value: dict) -> dict:
    return {"key": key, "value": value}


def _span(span_id: str, parent: str = "", **extra) -> dict:
    return {
        "traceId": TRACE,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": "GET /domains",
        "kind": 2,
        "startTimeUnixNano": str(T0),
        "endTimeUnixNano": str(T0 + 2_500_999),
        **extra,
    }


def _doc(*spans: dict, service: str = "api-gateway", logs: tuple = ()) -> dict:
    resource = {
        "attributes": [
            _kv("service.name", {"stringValue": service}),
            _kv("host.name", {"stringValue": "gw-1"}),
            _kv("host.ip", {"arrayValue": {"values": [{"stringValue": "10.0.0.1"}]}}),
        ]
    }
    doc: dict = {
        "resourceSpans": [
            {
                "resource": resource,
                "scopeSpans": [{"scope": {"name": "lib", "version": "1.2"}, "spans": list(spans)}],
            }
        ]
    }
    if logs:
        doc["resourceLogs"] = [
            {
                "resource": resource,
                "scopeLogs": [{"scope": {"name": "log"}, "logRecords": list(logs)}],
            }
        ]
    return doc


def test_a_span_maps_to_the_spans_table_columns() -> None:
    """Resource, scope and span attributes become tags (the span's win), events keep their
    nanoseconds, times floor to the microsecond, ids are lowered, ERROR is an error."""
    span = _span(
        CHILD,
        ROOT,
        attributes=[
            _kv("http.route", {"stringValue": "/domains"}),
            _kv("http.status_code", {"intValue": "503"}),
            _kv("retry", {"boolValue": True}),
            _kv("ratio", {"doubleValue": 0.5}),
            _kv("host.name", {"stringValue": "override"}),
            _kv("tags", {"kvlistValue": {"values": [_kv("a", {"intValue": 1})]}}),
            _kv("empty", {}),
        ],
        events=[
            {
                "timeUnixNano": str(T0 + 1_000_123),
                "name": "exception",
                "attributes": [_kv("exception.type", {"stringValue": "Timeout"})],
            }
        ],
        links=[{"traceId": TRACE, "spanId": ROOT}],
        traceState="k=v",
        status={"code": 2, "message": "upstream timed out"},
    )
    decoded = otlp.decode_json(_doc(span), "f.json")
    assert decoded.rejects == []
    row = decoded.spans[0]
    assert row == {
        "trace_id": TRACE.lower(),
        "span_id": CHILD.lower(),
        "parent_span_id": ROOT.lower(),
        "service_name": "api-gateway",
        "operation_name": "GET /domains",
        "span_kind": "server",
        "start_time": T0 // 1000,
        "end_time": (T0 + 2_500_999) // 1000,  # 2,500.999 us -> floored: 2,500 us
        "status": "error",
        "tags": {
            "service.name": "api-gateway",
            "host.name": "override",
            "host.ip": ["10.0.0.1"],
            "otel.scope.name": "lib",
            "otel.scope.version": "1.2",
            "http.route": "/domains",
            "http.status_code": 503,
            "retry": True,
            "ratio": 0.5,
            "tags": {"a": 1},
            "empty": None,
            "otel.status_description": "upstream timed out",
            "w3c.tracestate": "k=v",
            "otel.links": [{"trace_id": TRACE.lower(), "span_id": ROOT.lower()}],
        },
        "logs": [
            {
                "timestamp": "2025-11-20T12:00:00.001000123+00:00",
                "event": "exception",
                "attributes": {"exception.type": "Timeout"},
            }
        ],
        "position": "resourceSpans[0].scopeSpans[0].spans[0]",
    }


@pytest.mark.parametrize(
    ("kind", "expected"),
    [(0, "internal"), (1, "internal"), (2, "server"), (3, "client"), (4, "producer"),
     (5, "consumer"), ("SPAN_KIND_CONSUMER", "consumer"), ("3", "client")],
)  # fmt: skip
def test_span_kinds(kind, expected) -> None:
    decoded = otlp.decode_json(_doc(_span(CHILD, kind=kind)), "f")
    assert decoded.spans[0]["span_kind"] == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [({}, "ok"), ({"code": 1}, "ok"), ({"code": 2}, "error"), ({"code": "STATUS_CODE_ERROR"},
     "error"), (None, "ok")],
)  # fmt: skip
def test_status_codes(status, expected) -> None:
    decoded = otlp.decode_json(_doc(_span(CHILD, status=status)), "f")
    assert decoded.spans[0]["status"] == expected


def test_protobuf_and_json_decode_to_the_same_rows() -> None:
    """The receiver's protobuf path and the importer's JSON path share one mapping."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    log = {
        "timeUnixNano": str(T0),
        "severityNumber": 17,
        "traceId": TRACE,
        "spanId": CHILD,
        "body": {"kvlistValue": {"values": [_kv("k", {"stringValue": "v"})]}},
        "attributes": [_kv("exception.message", {"stringValue": "boom"})],
    }
    span = _span(
        CHILD,
        ROOT,
        attributes=[_kv("n", {"intValue": "7"}), _kv("b", {"bytesValue": "AAEC"})],
        events=[{"timeUnixNano": str(T0 + 5), "name": "e"}],
        status={"code": 2},
    )
    doc = _doc(span, logs=(log,))
    from_json = otlp.decode_json(doc, "f")
    # protobuf's JSON spelling has base64 ids: turn the hex of OTLP/JSON into bytes first
    proto_doc = json.loads(json.dumps(doc))
    for rs in proto_doc["resourceSpans"]:
        for s in rs["scopeSpans"][0]["spans"]:
            for k in ("traceId", "spanId", "parentSpanId"):
                s[k] = _b64(s[k])
    proto_doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["traceId"] = _b64(TRACE)
    proto_doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["spanId"] = _b64(CHILD)
    traces = json_format.ParseDict(
        {"resourceSpans": proto_doc["resourceSpans"]}, ExportTraceServiceRequest()
    )
    logs = json_format.ParseDict(
        {"resourceLogs": proto_doc["resourceLogs"]}, ExportLogsServiceRequest()
    )
    from_proto_spans = otlp.decode_traces_proto(traces.SerializeToString(), "req")
    from_proto_logs = otlp.decode_logs_proto(logs.SerializeToString(), "req")
    assert from_proto_spans.spans == from_json.spans
    assert from_proto_logs.logs == from_json.logs
    assert from_json.logs[0]["error"] == "boom"
    assert from_json.logs[0]["message"] == '{"k":"v"}'
    assert from_json.logs[0]["level"] == "error"


def _b64(hex_id: str) -> str:
    import base64

    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def test_protobuf_garbage_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not an OTLP protobuf trace request"):
        otlp.decode_traces_proto(b"\xff\xff\xff\xff garbage", "POST /v1/traces")


@pytest.mark.parametrize(
    ("number", "text", "level"),
    [(1, "", "trace"), (4, "", "trace"), (5, "", "debug"), (8, "", "debug"), (9, "", "info"),
     (12, "", "info"), (13, "", "warn"), (16, "", "warn"), (17, "", "error"), (20, "", "error"),
     (21, "", "fatal"), (24, "", "fatal"), (0, "", "info"), (0, "WARNING", "warn"),
     (0, "Critical", "fatal"), (0, "whatever", "info"), (9, "ERROR", "info")],
)  # fmt: skip
def test_severity_numbers_map_to_levels(number, text, level) -> None:
    """The log data model's ranges; 0 is unspecified (the text decides, else info); the
    number wins over the text when both are given."""
    log = {"timeUnixNano": str(T0), "severityNumber": number, "severityText": text}
    decoded = otlp.decode_json(_doc(logs=(log,)), "f")
    assert decoded.logs[0]["level"] == level
    assert decoded.logs[0]["fields"]["otel.severity_number"] == number


def test_severity_above_24_and_log_time_rules() -> None:
    logs = (
        {"timeUnixNano": str(T0), "severityNumber": 25},
        {"timeUnixNano": "0", "observedTimeUnixNano": str(T0 + 1000)},  # observed time used
        {"timeUnixNano": "-5"},
        {"body": {"stringValue": ""}, "timeUnixNano": str(T0), "eventName": "login"},
        {"body": {"stringValue": ""}, "timeUnixNano": str(T0)},
    )
    decoded = otlp.decode_json(_doc(logs=logs), "f.json")
    assert [str(r) for r in decoded.rejects] == [
        "f.json: resourceLogs[0].scopeLogs[0].logRecords[0]: severity number 25 is outside 0..24",
        "f.json: resourceLogs[0].scopeLogs[0].logRecords[2]: timeUnixNano -5 is before 1970",
    ]
    assert [r["timestamp"] for r in decoded.logs] == [(T0 + 1000) // 1000, T0 // 1000, T0 // 1000]
    assert [r["message"] for r in decoded.logs[1:]] == ["login", records.NO_MESSAGE]


def test_span_whose_end_precedes_its_start_is_rejected_not_clipped() -> None:
    bad = _span(CHILD, endTimeUnixNano=str(T0 - 1))
    decoded = otlp.decode_json(_doc(bad, _span(ROOT)), "f")
    assert decoded.rejects[0].position == "resourceSpans[0].scopeSpans[0].spans[0]"
    assert decoded.rejects[0].reason == "span ends 1 ns before it starts"
    assert [s["span_id"] for s in decoded.spans] == [ROOT.lower()]


# -- the importer against the database ------------------------------------------------------


def _write_lines(path: Path, docs: list[dict], compress: bool = False) -> Path:
    data = b"".join(orjson.dumps(d) + b"\n" for d in docs)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def _stored(url: str) -> pd.DataFrame:
    spans = load.trace(TRACE.lower(), url=url)
    return spans.sort_values("span_id").reset_index(drop=True)


def test_import_counts_add_up_and_reimport_changes_nothing(migrated_db, tmp_path) -> None:
    """JSON lines, gzip, chunks smaller than the file: new, duplicate within the file,
    rejected; the second import stores nothing and counts everything as duplicate."""
    docs = [
        _doc(_span(ROOT), _span(CHILD, ROOT)),
        _doc(_span(ROOT)),  # the same span again: a duplicate, not an error
        _doc(_span("0000000000000000"), logs=({"timeUnixNano": str(T0), "traceId": "zz"},)),
    ]
    path = _write_lines(tmp_path / "otlp.jsonl.gz", docs, compress=True)
    first = importer.import_file(path, "otlp", url=migrated_db, chunk=2)
    o = first.outcome
    assert (o.spans.input, o.spans.accepted, o.spans.duplicate, o.spans.rejected) == (4, 2, 1, 1)
    assert (o.logs.input, o.logs.accepted, o.unlinked) == (1, 1, 1)
    assert [str(r) for r in first.rejects] == [
        f"{path}: line 3: resourceSpans[0].scopeSpans[0].spans[0]: spanId is all zeros"
    ]
    before = _stored(migrated_db)
    again = importer.import_file(path, "otlp", url=migrated_db).outcome
    assert (again.accepted, again.duplicate, again.rejected) == (0, 4, 1)
    pd.testing.assert_frame_equal(_stored(migrated_db), before)
    assert list(before["parent_span_id"].fillna("")) == ["", ROOT.lower()]


def test_a_conflicting_duplicate_is_reported_not_overwritten(migrated_db, tmp_path) -> None:
    one = _write_lines(tmp_path / "a.json", [_doc(_span(ROOT))])
    importer.import_file(one, "otlp", url=migrated_db)
    other = _write_lines(tmp_path / "b.json", [_doc(_span(ROOT, name="POST /other"))])
    report = importer.import_file(other, "otlp", url=migrated_db)
    assert (report.outcome.spans.rejected, report.outcome.spans.accepted) == (1, 0)
    assert report.rejects[0].reason == (
        "its trace and span id is stored already with other content (kept, not overwritten)"
    )
    assert _stored(migrated_db)["operation_name"].tolist() == ["GET /domains"]


def test_same_ids_twice_in_one_file_with_other_content(migrated_db, tmp_path) -> None:
    path = _write_lines(tmp_path / "c.json", [_doc(_span(ROOT), _span(ROOT, name="other"))])
    report = importer.import_file(path, "otlp", url=migrated_db)
    assert [str(r) for r in report.rejects] == [
        f"{path}: line 1: resourceSpans[0].scopeSpans[0].spans[1]: same trace and span id as"
        " the record at line 1: resourceSpans[0].scopeSpans[0].spans[0] with other content"
        " (the first is kept)"
    ]


def test_a_malformed_file_stores_nothing_even_after_earlier_chunks(migrated_db, tmp_path):
    path = tmp_path / "cut.jsonl"
    good = b"".join(orjson.dumps(_doc(_span(f"{i:016x}"))) + b"\n" for i in range(1, 6))
    path.write_bytes(good + orjson.dumps(_doc(_span(ROOT)))[:-20] + b"\n")
    with pytest.raises(InputError, match=r"cut.jsonl: line 6: not valid JSON"):
        importer.import_file(path, "otlp", url=migrated_db, chunk=2)
    assert load.trace(TRACE.lower(), url=migrated_db).empty


def test_a_pretty_printed_document_is_one_document(migrated_db, tmp_path) -> None:
    path = tmp_path / "pretty.json"
    path.write_text(json.dumps(_doc(_span(ROOT), _span(CHILD, ROOT)), indent=2))
    report = importer.import_file(path, "otlp", url=migrated_db)
    assert report.outcome.spans.accepted == 2
    assert report.rejects == []


def test_cli_reports_counts_rejects_and_exit_codes(migrated_db, tmp_path) -> None:
    env = {"OBSLIB_DATABASE_URL": migrated_db}
    good = _write_lines(tmp_path / "good.json", [_doc(_span(ROOT))])
    bad = _write_lines(tmp_path / "bad.json", [_doc(_span("xyz"), _span(CHILD, ROOT))])
    empty = tmp_path / "empty.json"
    empty.write_text("\n  \n")
    nothing = tmp_path / "nothing.json"
    nothing.write_text('{"resourceSpans": []}')
    done = run_cli("ingest", "otlp", str(good), str(empty), env=env)
    assert done.returncode == 0, done.stderr
    assert f"{good}: 1 spans: 1 accepted, 0 duplicate, 0 rejected" in done.stdout
    assert f"{empty}: empty, nothing to import" in done.stdout
    rejects = tmp_path / "rejects.jsonl"
    mixed = run_cli("ingest", "otlp", str(bad), str(nothing), "--rejects", str(rejects), env=env)
    assert mixed.returncode == 2
    assert (
        f"rejected span: {bad}: line 1: resourceSpans[0].scopeSpans[0].spans[0]: spanId 'xyz'"
        " has 3 characters, not 16 hex digits"
    ) in mixed.stderr
    assert f"{nothing}: no spans or log records in it (is it OTLP/JSON?)" in mixed.stderr
    assert "total, 2 file(s), 1 refused whole: 2 records: 1 accepted, 0 duplicate, 1 rejected" in (
        mixed.stdout
    )
    assert [orjson.loads(line) for line in rejects.read_bytes().splitlines()] == [
        {
            "source": str(bad),
            "position": "line 1: resourceSpans[0].scopeSpans[0].spans[0]",
            "kind": "span",
            "reason": "spanId 'xyz' has 3 characters, not 16 hex digits",
        }
    ]


HOTROD = Path(__file__).parents[1] / "data" / "jaeger" / "hotrod_trace.json"
HOTROD_TRACE = "00000000000000005a3c1f0e7b9d2c41"


def test_a_jaeger_download_imports_with_its_references(migrated_db, tmp_path) -> None:
    """HotROD's /dispatch as the Jaeger UI downloads it: the tree comes back whole (one
    root, every other span under it), the failed Redis call is an error; a FOLLOWS_FROM
    child added to the file is stored with the ref_type tag the critical path reads."""
    from obslib import traces

    doc = orjson.loads(HOTROD.read_bytes())
    trace = doc["data"][0]
    late = dict(trace["spans"][-1], spanID="7a1b2c3d4e5f6071", operationName="audit")
    late["references"] = [{"refType": "FOLLOWS_FROM", "traceID": trace["traceID"],
                           "spanID": trace["spans"][0]["spanID"]}]  # fmt: skip
    trace["spans"].append(late)
    path = tmp_path / "hotrod.json"
    path.write_bytes(orjson.dumps(doc))
    report = importer.import_file(path, "jaeger", url=migrated_db)
    assert (report.outcome.spans.input, report.outcome.spans.accepted) == (9, 9)
    spans = load.trace(HOTROD_TRACE, url=migrated_db)
    rebuilt = traces.reconstruct(spans)
    assert rebuilt.notes == [] or not any("orphan" in n for n in map(str, rebuilt.notes))
    assert int(spans["parent_span_id"].isna().sum()) == 1
    assert set(spans["service_name"]) == {"frontend", "driver", "redis"}
    audit = spans.set_index("span_id").loc["7a1b2c3d4e5f6071"]
    assert audit["tags"]["ref_type"] == "follows_from"
    assert "7a1b2c3d4e5f6071" not in set(traces.critical_path(spans)["span_id"])
    failed = spans[spans["status"] == "error"]
    assert failed["operation_name"].tolist() == ["GetDriver"]
    again = run_cli("ingest", "jaeger", str(path), env={"OBSLIB_DATABASE_URL": migrated_db})
    assert again.returncode == 0, again.stderr
    assert f"{path}: 9 spans: 0 accepted, 9 duplicate, 0 rejected" in again.stdout


def test_json_lines_logs_import_and_link_to_their_trace(migrated_db, tmp_path) -> None:
    lines = [
        {"timestamp": "2024-11-27T09:33:20.124661123Z", "level": "ERROR",
         "service_name": "driver", "trace_id": HOTROD_TRACE.upper(),
         "span_id": "1F2A3B4C5D6E7F80", "message": "redis timeout", "fields": {"retry": 1},
         "error": "i/o timeout"},
        {"timestamp": "2024-11-27T09:33:20Z", "level": "info", "service_name": "driver",
         "trace_id": "not-a-trace", "message": "kept, unlinked"},
        {"timestamp": "1969-12-31T23:59:59Z", "level": "info", "service_name": "driver",
         "message": "too early"},
    ]  # fmt: skip
    path = _write_lines(tmp_path / "app.log.jsonl", lines)
    report = importer.import_file(path, "logs", url=migrated_db)
    o = report.outcome
    assert (o.logs.input, o.logs.accepted, o.logs.rejected, o.unlinked) == (3, 2, 1, 1)
    assert report.rejects[0].position == "line 3"
    linked = load.logs(trace_id=HOTROD_TRACE, url=migrated_db)
    assert linked[["level", "span_id", "message", "error"]].values.tolist() == [
        ["error", "1f2a3b4c5d6e7f80", "redis timeout", "i/o timeout"]
    ]
    assert linked["timestamp"].iloc[0] == pd.Timestamp("2024-11-27T09:33:20.124661Z")


@pytest.mark.slow
def test_a_large_file_shows_a_progress_bar_on_a_terminal_only(migrated_db, tmp_path) -> None:
    """On a terminal (a pty here) a file over PROGRESS_BYTES shows tqdm's bar on stderr;
    piped to a file or a CI log, the same import prints no bar."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    pad = [_kv(f"attr.{i}", {"stringValue": "x" * 40}) for i in range(8)]
    docs, n = [], 0
    while sum(len(orjson.dumps(d)) for d in docs) < importer.PROGRESS_BYTES:
        spans = [_span(f"{n + i + 1:016x}", attributes=pad) for i in range(500)]
        n += len(spans)
        docs.append(_doc(*spans))
    path = _write_lines(tmp_path / "large.jsonl", docs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")}
    env["OBSLIB_DATABASE_URL"] = migrated_db
    leader, follower = pty.openpty()
    # a terminal 100 columns wide (a pty starts at 0 columns, where tqdm draws nothing)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    child = subprocess.Popen(
        [sys.executable, "-m", "obslib", "ingest", "otlp", str(path)],
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    assert child.wait(timeout=120) == 0, out.decode(errors="replace")
    os.close(leader)
    assert b"large.jsonl:" in out and b"B/s" in out  # the bar: name, rate
    assert f"{n} spans: {n} accepted".encode() in out
    piped = run_cli("ingest", "otlp", str(path), env={"OBSLIB_DATABASE_URL": migrated_db})
    assert piped.returncode == 0
    assert "B/s" not in piped.stderr and piped.stderr == ""


@pytest.mark.parametrize("bad", ["--5", "1" * 5000, "12a", "", "-"])
def test_integers_as_text_are_checked_not_crashed_on(bad) -> None:
    """Times and tag values spelled as text: malformed or absurdly long ones are rejects
    (int() raises on '--5' and on thousands of digits)."""
    from obslib.ingest import jaeger

    span = _span(ROOT, startTimeUnixNano=bad)
    assert otlp.decode_json(_doc(span), "f").rejects[0].reason.startswith("startTimeUnixNano")
    trace = orjson.loads(HOTROD.read_bytes())["data"][0]
    trace["spans"][0]["startTime"] = bad
    trace["spans"][1]["tags"] = [{"key": "n", "type": "int64", "value": bad}]
    decoded = jaeger.decode(trace, "j", "")
    assert [r.position for r in decoded.rejects] == ["spans[0]", "spans[1]"]


@pytest.mark.parametrize(("text", "stored"), [("7", 7), ("-7", -7), ("1_000", None), ("0x1", None)])
def test_int_values_as_text_follow_protobufs_json_parser(text, stored) -> None:
    """Python's int() takes '1_000'; protobuf's JSON parser, the reference, does not."""
    span = _span(ROOT, attributes=[_kv("n", {"intValue": text})])
    decoded = otlp.decode_json(_doc(span), "f")
    if stored is None:
        assert decoded.rejects[0].reason == f"attributes 'n': intValue {text!r} is not an integer"
    else:
        assert decoded.spans[0]["tags"]["n"] == stored


@pytest.mark.slow
def test_the_trace_report_runs_on_an_imported_jaeger_trace(migrated_db, tmp_path) -> None:
    """Imported data comes out in the notebooks: the trace investigation report of the
    HotROD trace names its services and its failed Redis call, and shows no traceback."""
    from obslib import reports

    importer.import_file(HOTROD, "jaeger", url=migrated_db)
    params = {"trace_id": HOTROD_TRACE, "start": "2024-11-27T09:00Z", "end": "2024-11-27T10:00Z"}
    report = reports.run_report("trace", params, tmp_path, database_url=migrated_db)
    cells = json.loads(report.notebook.read_text())["cells"]
    outputs = [o for c in cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error" or o.get("name") == "stderr"]
    html = report.html.read_text()
    for text in ("frontend: HTTP GET /dispatch", "GetDriver", "(a failing trace)"):
        assert text in html
