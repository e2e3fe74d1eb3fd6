"""The OTLP/HTTP receiver (obslib.ingest.receiver, its bodies and its group commit) run as ``obslib
collect``, a real process, against a real database, driven by a real HTTP client: encodings,
partial success, refusals, metrics, shutdown, load and bad settings."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import requests
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client.parser import text_string_to_metric_families

from obslib.errors import DatabaseUnreachable, UsageError
from obslib.ingest import batch, bodies, group_commit, otlp, receiver, records
from obslib.storage.migrate import Migrator
from tests.pg import MIGRATIONS, scratch_database

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = 1_700_000_000_123_456_789  # ns: 2023-11-14T22:13:20.123456789Z
LISTENING = re.compile(r"listening on http://([\d.]+):(\d+) ")
COLLECT = [sys.executable, "-m", "obslib", "collect"]


# -- the receiver as a process --------------------------------------------------------------


@dataclass
class Running:
    """A receiver process and its base URL."""

    proc: subprocess.Popen
    base: str
    url: str  # the database it writes to

    def post(self, path: str, body: bytes, headers: dict[str, str], **kw: Any) -> requests.Response:
        return requests.post(self.base + path, data=body, headers=headers, timeout=30, **kw)

    def metrics(self) -> dict[tuple[str, tuple], float]:
        """Every sample of /metrics by (name, sorted labels)."""
        text = requests.get(self.base + "/metrics", timeout=10).text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def stop(self, timeout: float = 30) -> tuple[int, str]:
        """SIGTERM, wait for the exit; (exit code, stdout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out


def collect_env(url: str) -> dict[str, str]:
    """This environment with ``url`` as the only obslib setting (no embedded server)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")}
    env["OBSLIB_DATABASE_URL"] = url
    return env


@contextmanager
def collector(url: str, *options: str) -> Iterator[Running]:
    """``obslib collect --port 0`` on loopback, writing to ``url``; stopped (by its pid) at
    the end whatever the test did."""
    proc = subprocess.Popen(
        [*COLLECT, "--host", "127.0.0.1", "--port", "0", *options],
        env=collect_env(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        found = LISTENING.search(line)
        if not found:
            proc.kill()
            raise AssertionError(f"no listening line: {line!r} {proc.stderr.read()}")
        yield Running(proc, f"http://127.0.0.1:{found.group(2)}", url)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def rows(url: str, query: str, *params: Any) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


# -- requests -------------------------------------------------------------------------------


def trace_id(n: int) -> bytes:
    return (0xABC0_0000_0000_0000_0000_0000_0000_0000 + n).to_bytes(16, "big")


def span_id(n: int) -> bytes:
    return (0x1000_0000_0000_0000 + n).to_bytes(8, "big")


def spans_request(first: int, n: int, *, service: str = "checkout", name: str = "op") -> bytes:
    """``n`` valid spans (ids first..first+n-1, ten per trace) as an OTLP protobuf body."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", service
    scope = rs.scope_spans.add()
    scope.scope.name = "tests"
    for i in range(first, first + n):
        s = scope.spans.add()
        s.trace_id, s.span_id = trace_id(i // 10), span_id(i)
        if i % 10:
            s.parent_span_id = span_id(i - i % 10)
        s.name, s.kind = f"{name} {i}", 2
        s.start_time_unix_nano = T0 + i * 1000
        s.end_time_unix_nano = T0 + i * 1000 + 5_000_999
    return req.SerializeToString()


def as_json(body: bytes) -> bytes:
    """The same request as OTLP/JSON (hex ids, as the spec wants, not protobuf's base64)."""
    req = ExportTraceServiceRequest.FromString(body)
    doc = {"resourceSpans": []}
    for rs in req.resource_spans:
        attrs = [
            {"key": kv.key, "value": {"stringValue": kv.value.string_value}}
            for kv in rs.resource.attributes
        ]
        out_spans = []
        for ss in rs.scope_spans:
            for s in ss.spans:
                span = {
                    "traceId": s.trace_id.hex(),
                    "spanId": s.span_id.hex(),
                    "name": s.name,
                    "kind": s.kind,
                    "startTimeUnixNano": str(s.start_time_unix_nano),
                    "endTimeUnixNano": str(s.end_time_unix_nano),
                }
                if s.parent_span_id:
                    span["parentSpanId"] = s.parent_span_id.hex()
                out_spans.append(span)
        doc["resourceSpans"].append(
            {"resource": {"attributes": attrs}, "scopeSpans": [{"spans": out_spans}]}
        )
    return orjson.dumps(doc)


def with_bad_spans(body: bytes) -> bytes:
    """The request with three invalid spans added at the end of its first scope."""
    req = ExportTraceServiceRequest.FromString(body)
    spans = req.resource_spans[0].scope_spans[0].spans
    zero = spans.add()
    zero.CopyFrom(spans[0])
    zero.span_id = bytes(8)  # all-zero span id
    backwards = spans.add()
    backwards.CopyFrom(spans[0])
    backwards.span_id = span_id(900_001)
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1  # ends before it starts
    no_trace = spans.add()
    no_trace.CopyFrom(spans[0])
    no_trace.span_id, no_trace.trace_id = span_id(900_002), b""
    return req.SerializeToString()


def logs_request(n: int, service: str, base: int) -> bytes:
    """``n`` ERROR log records naming trace ``base`` and spans from ``base``."""
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    kv = rl.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", service
    scope = rl.scope_logs.add()
    for i in range(n):
        rec = scope.log_records.add()
        rec.time_unix_nano = T0 + i
        rec.severity_number = 17  # ERROR
        rec.body.string_value = f"charge failed {i}"
        rec.trace_id, rec.span_id = trace_id(base), span_id(base + i)
    return req.SerializeToString()


# -- fixtures -------------------------------------------------------------------------------

_BASES = itertools.count(1)


@pytest.fixture(scope="module")
def shared_db(server_url: str) -> Iterator[str]:
    """One migrated database for this module: each test names its own service and ids."""
    with scratch_database(server_url) as url:
        Migrator(url, MIGRATIONS).up()
        yield url


@pytest.fixture(scope="module")
def running(shared_db: str) -> Iterator[Running]:
    """A receiver with a short group linger, shared by the tests that need no options."""
    with collector(shared_db, "--flush-ms", "20") as r:
        yield r


@pytest.fixture(scope="module")
def strict(shared_db: str) -> Iterator[Running]:
    """A receiver with a small body limit and a long group linger (groups form)."""
    with collector(shared_db, "--max-body-bytes", "60000", "--flush-ms", "500") as r:
        yield r


@pytest.fixture
def svc() -> tuple[str, int]:
    """A service name and first span number of this test's own."""
    n = next(_BASES)
    return f"svc-{n}", n * 10_000_000


def count(url: str, service: str | None = None, table: str = "distributed_traces") -> int:
    """Rows of one service (all rows when None) in the spans or logs table."""
    query = {
        "distributed_traces": "SELECT count(*) FROM distributed_traces",
        "structured_logs": "SELECT count(*) FROM structured_logs",
    }[table]
    if service is None:
        return rows(url, query)[0][0]
    return rows(url, query + " WHERE service_name = %s", service)[0][0]


def peak_memory(pid: int) -> int:
    """The process's peak resident memory in bytes (Linux VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


# -- encodings ------------------------------------------------------------------------------


def test_protobuf_spans_are_stored_and_answered_in_protobuf(
    running: Running, svc: tuple[str, int]
) -> None:
    """A protobuf export is stored exactly (ids, parent, kind, microsecond times) and
    answered with an empty ExportTraceServiceResponse in protobuf."""
    service, base = svc
    resp = running.post("/v1/traces", spans_request(base, 20, service=service), PB)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse.FromString(resp.content)
    assert not answer.HasField("partial_success")
    stored = rows(
        running.url,
        "SELECT trace_id, span_id, parent_span_id, service_name, operation_name, span_kind,"
        " start_time, end_time FROM distributed_traces WHERE span_id = %s",
        span_id(base + 13).hex(),
    )
    (tid, sid, parent, service_name, op, kind, start, end) = stored[0]
    assert (tid, sid, parent) == (
        trace_id((base + 13) // 10).hex(),
        span_id(base + 13).hex(),
        span_id(base + 10).hex(),
    )
    assert (service_name, op, kind) == (service, f"op {base + 13}", "server")
    micros = (
        (start - EPOCH) // timedelta(microseconds=1),
        (end - EPOCH) // timedelta(microseconds=1),
    )
    ns = T0 + (base + 13) * 1000
    assert micros == (ns // 1000, (ns + 5_000_999) // 1000)
    assert count(running.url, service) == 20


def test_the_receivers_spans_land_in_their_own_day_partition(
    running: Running, svc: tuple[str, int]
) -> None:
    """The receiver makes the day it writes before it merges (on a short connection of its
    own, the database given to the group commit), so its rows are in the day's partition,
    not left in the default one for a later write to move."""
    service, base = svc
    resp = running.post("/v1/traces", spans_request(base, 10, service=service), PB)
    assert resp.status_code == 200, resp.text
    where = rows(
        running.url,
        "SELECT DISTINCT tableoid::regclass::text FROM distributed_traces WHERE service_name = %s",
        service,
    )
    day = datetime.fromtimestamp((T0 + base * 1000) / 1e9, UTC)
    assert where == [(f"obslib_partitions.distributed_traces_p{day:%Y%m%d}",)]


@pytest.mark.parametrize(
    ("media", "gzipped"),
    [("json", False), ("protobuf", True), ("json", True)],
    ids=["OTLP/JSON", "gzip protobuf", "gzip OTLP/JSON"],
)
def test_json_and_gzip_bodies_store_the_same_spans(
    running: Running, svc: tuple[str, int], media: str, gzipped: bool
) -> None:
    """JSON and gzip bodies store what the plain protobuf body would; JSON is answered in
    JSON, protobuf in protobuf."""
    service, base = svc
    body = spans_request(base, 30, service=service)
    headers = dict(PB)
    if media == "json":
        body, headers = as_json(body), dict(JS)
    if gzipped:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    resp = running.post("/v1/traces", body, headers)
    assert resp.status_code == 200, resp.text
    if media == "json":
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.json() == {}
    else:
        assert resp.headers["Content-Type"] == "application/x-protobuf"
    assert count(running.url, service) == 30
    assert rows(
        running.url,
        "SELECT count(DISTINCT trace_id), min(operation_name) FROM distributed_traces"
        " WHERE service_name = %s",
        service,
    ) == [(3, f"op {base}")]


def test_logs_are_stored_with_their_trace_context(running: Running, svc: tuple[str, int]) -> None:
    """/v1/logs stores log records with the trace and span they name."""
    service, base = svc
    resp = running.post("/v1/logs", logs_request(4, service, base), PB)
    assert resp.status_code == 200, resp.text
    assert not ExportLogsServiceResponse.FromString(resp.content).HasField("partial_success")
    stored = rows(
        running.url,
        "SELECT level, trace_id, span_id, message FROM structured_logs"
        " WHERE service_name = %s ORDER BY message",
        service,
    )
    assert stored[0] == ("error", trace_id(base).hex(), span_id(base).hex(), "charge failed 0")
    assert len(stored) == 4


# -- partial success ------------------------------------------------------------------------


def test_partial_success_counts_and_names_the_rejected_spans(
    running: Running, svc: tuple[str, int]
) -> None:
    """Invalid spans are refused, counted in rejected_spans and named in error_message;
    the valid ones of the same request are stored."""
    service, base = svc
    resp = running.post("/v1/traces", with_bad_spans(spans_request(base, 7, service=service)), PB)
    assert resp.status_code == 200
    partial = ExportTraceServiceResponse.FromString(resp.content).partial_success
    assert partial.rejected_spans == 3
    assert partial.error_message.startswith("3 spans rejected: ")
    assert "spans[7]: spanId is all zeros" in partial.error_message
    assert "spans[8]: span ends 1 ns before it starts" in partial.error_message
    assert "spans[9]: traceId is empty" in partial.error_message
    assert count(running.url, service) == 7


def test_partial_success_in_json_spells_int64_as_a_string(
    running: Running, svc: tuple[str, int]
) -> None:
    """The JSON answer uses protobuf's JSON mapping: camelCase names, int64 as a string."""
    service, base = svc
    doc = orjson.loads(as_json(spans_request(base, 2, service=service)))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"] = "not-hex!"
    resp = running.post("/v1/traces", orjson.dumps(doc), JS)
    assert resp.status_code == 200
    body = resp.json()
    assert body["partialSuccess"]["rejectedSpans"] == "1"
    assert "spans[1]: spanId" in body["partialSuccess"]["errorMessage"]
    assert count(running.url, service) == 1


def test_rejects_are_counted_for_the_request_they_came_from(
    strict: Running, svc: tuple[str, int]
) -> None:
    """Two requests written in one group: only the one whose span conflicts with a stored
    span (same ids, other content) reports it; the other reports nothing."""
    service, base = svc
    assert strict.post("/v1/traces", spans_request(base, 1, service=service), PB).ok
    before = strict.metrics()
    conflicting = spans_request(base, 3, service=service, name="renamed")  # span 0 renamed
    clean = spans_request(base + 100, 3, service=service)
    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(strict.post, "/v1/traces", conflicting, PB)
        b = pool.submit(strict.post, "/v1/traces", clean, PB)
        first, second = a.result(), b.result()
    after = strict.metrics()
    one = ExportTraceServiceResponse.FromString(first.content).partial_success
    other = ExportTraceServiceResponse.FromString(second.content).partial_success
    assert (one.rejected_spans, other.rejected_spans) == (1, 0)
    assert "stored already with other content" in one.error_message
    assert delta(before, after, "obslib_collector_groups_total", result="committed") == 1
    assert count(strict.url, service) == 1 + 2 + 3


def _wait_for_a_lock_waiter(url: str, timeout: float = 60.0) -> None:
    """Until a session of ``url``'s database waits for a lock (another's row)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = rows(
            url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'",
        )[0][0]
        if waiting:
            return
        time.sleep(0.01)
    raise AssertionError(f"no session waiting for a lock after {timeout} s")


def test_a_span_another_writer_stores_before_the_commit_is_a_partial_success(
    running: Running, svc: tuple[str, int]
) -> None:
    """Another writer holds two of the request's spans stored but uncommitted (the first
    identical, the second with other content), so the group's commit waits for it and then
    finds them taken (first stored wins). The answer comes after the commit, so it says so:
    the second span is rejected in partial_success, the first a duplicate (it answered 200
    with no partial_success and counted all three accepted, the second span silently
    dropped)."""
    service, base = svc
    body = spans_request(base, 3, service=service)
    theirs = records.spans_frame(otlp.decode_traces_proto(body, "theirs").spans[:2])
    theirs.loc[1, "operation_name"] = "theirs"
    before = running.metrics()
    with ThreadPoolExecutor(1) as pool:
        with batch(running.url, one_write=True) as other:
            assert other.spans(theirs) == 2  # stored, not committed: it holds their keys
            answer = pool.submit(running.post, "/v1/traces", body, PB)
            _wait_for_a_lock_waiter(running.url)  # the receiver's commit waits for it
        resp = answer.result(timeout=60)
    after = running.metrics()
    assert resp.status_code == 200
    partial = ExportTraceServiceResponse.FromString(resp.content).partial_success
    assert partial.rejected_spans == 1
    assert partial.error_message == (
        "1 spans rejected: resourceSpans[0].scopeSpans[0].spans[1]: its trace and span id is"
        " stored already with other content: another writer stored it before this batch"
        " committed (kept, not overwritten)"
    )
    outcomes = {
        o: delta(before, after, "obslib_collector_spans_total", outcome=o)
        for o in ("accepted", "duplicate", "rejected")
    }
    assert outcomes == {"accepted": 1, "duplicate": 1, "rejected": 1}
    names = rows(
        running.url,
        "SELECT operation_name FROM distributed_traces WHERE service_name = %s ORDER BY span_id",
        service,
    )
    assert [n for (n,) in names] == [f"op {base}", "theirs", f"op {base + 2}"]


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers", "says"),
    [
        (b"\xff\xff\xff\xff garbage", PB, "not an OTLP protobuf trace request"),
        (b'{"resourceSpans": [', JS, "not JSON"),
        (b'["resourceSpans"]', JS, "not an OTLP/JSON object"),
        (gzip.compress(b"x" * 100)[:-12], {**PB, "Content-Encoding": "gzip"}, "gzip"),
    ],
    ids=["protobuf garbage", "truncated JSON", "JSON array", "truncated gzip"],
)
def test_malformed_bodies_get_400_with_a_status_and_store_nothing(
    running: Running, body: bytes, headers: dict[str, str], says: str
) -> None:
    """A body that is not OTLP is a 400 with a google.rpc.Status in the request's encoding;
    nothing is stored and the receiver goes on serving."""
    stored = count(running.url)
    resp = running.post("/v1/traces", body, headers)
    assert resp.status_code == 400
    if headers["Content-Type"] == JS["Content-Type"]:
        message = resp.json()["message"]
        assert resp.json()["code"] == 3
    else:
        message = Status.FromString(resp.content).message
    assert says in message and "\n" not in message
    assert count(running.url) == stored


def test_bodies_over_the_limit_get_413(strict: Running, svc: tuple[str, int]) -> None:
    """Over the limit is a 413: by Content-Length, by a chunked body that never said its
    size, and by a small gzip body that inflates past it (read with a cap, not whole)."""
    service, base = svc
    big = spans_request(base, 2000, service=service)
    assert len(big) > 60_000
    assert strict.post("/v1/traces", big, PB).status_code == 413
    chunked = strict.post("/v1/traces", iter([big[:50_000], big[50_000:]]), PB)
    assert chunked.status_code == 413
    bomb = gzip.compress(b"\0" * 50_000_000)
    assert len(bomb) < 60_000
    peak = peak_memory(strict.proc.pid)
    resp = strict.post("/v1/traces", bomb, {**PB, "Content-Encoding": "gzip"})
    assert resp.status_code == 413
    assert "inflates past 60000 bytes" in Status.FromString(resp.content).message
    assert peak_memory(strict.proc.pid) - peak < 20_000_000  # never the 50 MB inflated
    assert strict.post("/v1/traces", spans_request(base, 10, service=service), PB).ok
    assert count(strict.url, service) == 10


def test_other_content_types_and_encodings_get_415(running: Running) -> None:
    """Only application/x-protobuf and application/json, plain or gzip, are taken."""
    stored = count(running.url)
    body = spans_request(0, 2)
    assert running.post("/v1/traces", body, {"Content-Type": "text/plain"}).status_code == 415
    assert running.post("/v1/traces", body, {}).status_code == 415
    brotli = running.post("/v1/traces", body, {**PB, "Content-Encoding": "br"})
    assert brotli.status_code == 415
    assert "Content-Encoding br" in Status.FromString(brotli.content).message
    assert requests.get(running.base + "/v1/traces", timeout=10).status_code == 405
    assert running.post("/v1/metrics", body, PB).status_code == 404
    assert count(running.url) == stored


def test_a_lost_database_connection_is_a_503_then_the_writer_reconnects(
    running: Running, svc: tuple[str, int]
) -> None:
    """When the database drops the writer's connection, the requests of that group get a
    retryable 503 with Retry-After and nothing half-stored; the next group reconnects."""
    service, base = svc
    assert running.post("/v1/traces", spans_request(base, 5, service=service), PB).ok
    with psycopg.connect(running.url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    assert killed
    failed = running.post("/v1/traces", spans_request(base + 10, 5, service=service), PB)
    assert failed.status_code == 503
    assert failed.headers["Retry-After"] == str(group_commit.RETRY_AFTER_S)
    assert count(running.url, service) == 5
    again = running.post("/v1/traces", spans_request(base + 10, 5, service=service), PB)
    assert again.status_code == 200
    assert count(running.url, service) == 10


# -- metrics --------------------------------------------------------------------------------


def test_metrics_count_requests_and_records(running: Running, svc: tuple[str, int]) -> None:
    """/metrics has the plan's service metrics by method, endpoint and status, and the
    spans and logs accepted, duplicate and rejected."""
    service, base = svc
    before = running.metrics()
    body = spans_request(base, 10, service=service)
    running.post("/v1/traces", body, PB)
    running.post("/v1/traces", body, PB)  # all ten again: duplicates
    running.post("/v1/traces", with_bad_spans(spans_request(base + 20, 2, service=service)), PB)
    running.post("/v1/traces", b"\x00garbage", PB)
    running.post("/v1/logs", logs_request(3, service, base), PB)
    after = running.metrics()
    labels = {"service": group_commit.SERVICE, "method": "POST"}

    def requests_total(endpoint: str, status: str) -> float:
        return delta(
            before, after, "service_requests_total", endpoint=endpoint, status=status, **labels
        )

    assert requests_total("/v1/traces", "200") == 3
    assert requests_total("/v1/traces", "400") == 1
    assert requests_total("/v1/logs", "200") == 1
    name = "service_request_duration_seconds_count"
    assert delta(before, after, name, endpoint="/v1/traces", **labels) == 4
    spans = {
        o: delta(before, after, "obslib_collector_spans_total", outcome=o)
        for o in ("accepted", "duplicate", "rejected")
    }
    assert spans == {"accepted": 12, "duplicate": 10, "rejected": 3}
    assert delta(before, after, "obslib_collector_logs_total", outcome="accepted") == 3


# -- shutdown and load ----------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_flushes_and_answers_the_requests_in_flight(
    shared_db: str, svc: tuple[str, int]
) -> None:
    """SIGTERM while requests wait for a slow group: they are written at once and answered
    200, every answered span is stored, ``obslib collect`` prints its summary line last and
    exits 0."""
    service, base = svc
    with collector(shared_db, "--flush-ms", "20000") as r:
        with ThreadPoolExecutor(5) as pool:
            futures = [
                pool.submit(
                    r.post, "/v1/traces", spans_request(base + i * 100, 50, service=service), PB
                )
                for i in range(5)
            ]
            deadline = time.monotonic() + 20
            while r.metrics()[("obslib_collector_pending_rows", ())] < 250:
                assert time.monotonic() < deadline, "the requests never reached the group"
                time.sleep(0.05)
            started = time.monotonic()
            code, out = r.stop()
            answers = [f.result() for f in futures]
        took = time.monotonic() - started
    assert [a.status_code for a in answers] == [200] * 5
    assert took < 10  # not the 20 s linger
    assert code == 0
    assert out.splitlines()[-1] == (
        "obslib collect: stopped; spans 250 accepted, 0 duplicate, 0 rejected;"
        " log records 0 accepted, 0 duplicate, 0 rejected"
    )
    assert count(shared_db, service) == 250


@pytest.mark.slow
def test_bounded_load_stores_every_accepted_span_exactly_once(
    running: Running, svc: tuple[str, int]
) -> None:
    """4 clients x 25 requests x 100 spans, every fifth request a re-send of the one
    before: the database holds each distinct span once and the receiver counted them so."""
    service, base = svc
    clients, per_client, size = 4, 25, 100
    sent: set[int] = set()
    lock = threading.Lock()

    def client(c: int) -> list[int]:
        firsts = [
            base + (c * per_client + k - (1 if k % 5 == 4 else 0)) * size  # 5th: the 4th again
            for k in range(per_client)
        ]
        bodies = [spans_request(first, size, service=service) for first in firsts]
        codes = []
        for first, body in zip(firsts, bodies, strict=True):
            codes.append(running.post("/v1/traces", body, PB).status_code)
            with lock:
                sent.update(range(first, first + size))
        return codes

    before = running.metrics()
    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client, c) for c in range(clients)]
        codes = [code for f in futures for code in f.result()]
    after = running.metrics()
    assert codes == [200] * clients * per_client
    distinct = len(sent)
    assert distinct == clients * per_client * size * 4 // 5
    assert count(running.url, service) == distinct
    assert rows(
        running.url,
        "SELECT count(DISTINCT (trace_id, span_id)) FROM distributed_traces"
        " WHERE service_name = %s",
        service,
    ) == [(distinct,)]
    assert delta(before, after, "obslib_collector_spans_total", outcome="accepted") == distinct
    resent = clients * per_client * size // 5
    assert delta(before, after, "obslib_collector_spans_total", outcome="duplicate") == resent


def test_a_request_the_database_refuses_fails_alone_and_leaves_nothing(
    shared_db: str, svc: tuple[str, int]
) -> None:
    """When a group's write is refused as bad input, each request is written on its own:
    the one at fault gets a 400 with none of its rows stored, the others are stored."""
    service, base = svc

    def decoded(first: int, tag: str) -> Any:
        body = spans_request(first, 3, service=service)
        return bodies.decode_request(receiver.TRACES, body, bodies.PROTOBUF, "", 10**6, tag)

    good, bad = decoded(base, "good"), decoded(base + 10, "bad")
    bad.spans[1]["status"] = "bogus"  # passes nothing the decoder checks; the table refuses it

    async def run() -> list[group_commit.Answer]:
        writer = group_commit.GroupCommit(
            shared_db,
            group_commit.Metrics(),
            group_commit.Totals(),
            flush_rows=1000,
            flush_ms=200,
            max_pending_rows=10_000,
        )
        writer.start(asyncio.get_running_loop())
        try:
            futures = [writer.submit("good", receiver.TRACES, good)]
            futures.append(writer.submit("bad", receiver.TRACES, bad))
            return list(await asyncio.gather(*futures))
        finally:
            writer.stop()

    first, second = asyncio.run(run())
    assert (first.status, second.status) == (200, 400)
    assert "status" in second.message and "\n" not in second.message, second.message
    assert count(shared_db, service) == 3


def test_an_oversized_declared_body_is_refused_before_it_is_read(strict: Running) -> None:
    """A Content-Length far past what is worth draining gets its 413 at once, before a
    byte of the body is sent, and the connection is closed."""
    port = int(strict.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 10000000000\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"more than the limit of 60000" in answer


def test_serve_refuses_a_busy_port_and_an_unreachable_database(shared_db: str) -> None:
    """Before listening, serve() fails with one line: a port in use is a usage error, a
    database it cannot reach says where it tried."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(UsageError, match=re.escape(f"cannot listen on 127.0.0.1:{port}")):
            receiver.serve(port=port, url=shared_db, echo=lambda line: None)
    with pytest.raises(DatabaseUnreachable, match=re.escape("at 127.0.0.1:1:")):
        receiver.serve(port=0, url="postgresql://nobody@127.0.0.1:1/none", echo=print)
    with pytest.raises(UsageError, match="flush-rows must be at least 1"):
        receiver.serve(port=0, url=shared_db, flush_rows=0)


@pytest.mark.parametrize(
    ("option", "says"),
    [
        (("--port", "70000"), "port 70000 is not a TCP port (0..65535; 0 picks a free one)"),
        (("--flush-rows", "0"), "flush-rows must be at least 1"),
        (("--max-body-bytes", "0"), "max-body-bytes must be at least 1"),
        (("--max-pending-rows", "-5"), "max-pending-rows must be at least 1"),
        (("--flush-ms", "-1"), "flush-ms must not be negative"),
        (("--max-inflight-bytes", "0"), "max-inflight-bytes must be at least 1"),
    ],
    ids=[
        "a port past 65535 is refused",
        "groups of no rows are refused",
        "a body limit of no bytes is refused",
        "a negative pending-row limit is refused",
        "a negative linger is refused",
        "an in-flight cap of no bytes is refused",
    ],
)
def test_obslib_collect_refuses_bad_settings_with_exit_2_and_one_line(
    shared_db: str, option: tuple[str, str], says: str
) -> None:
    """``obslib collect`` with a setting the receiver refuses exits 2 without listening,
    saying why in one ``obslib: error:`` line, before it tries the database (here one that
    nothing listens for)."""
    done = subprocess.run(
        [*COLLECT, "--host", "127.0.0.1", "--port", "0", *option],
        env=collect_env("postgresql://obslib@127.0.0.1:1/nowhere"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr == f"obslib: error: {says}\n"
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("argv", "exit_code", "receiver_imported"),
    [
        (["-c", "import obslib.ingest.receiver"], 0, True),
        (["-m", "obslib", "collect", "--help"], 0, False),
        (["-m", "obslib", "collect", "--port", "0", "--flush-rows", "0"], 2, True),
    ],
    ids=[
        "importing the receiver",
        "collect --help",
        "collect refusing a bad setting (after importing the receiver)",
    ],
)
def test_tornado_loads_only_when_the_receiver_serves(
    argv: list[str], exit_code: int, receiver_imported: bool
) -> None:
    """The HTTP handlers live in ``ingest.handlers``, imported by ``Collector.app``: nothing
    short of serving imports tornado (``-X importtime`` lists every module imported)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        env=collect_env("postgresql://obslib@127.0.0.1:1/nowhere"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == exit_code, done.stderr[-500:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()]
    assert ("obslib.ingest.receiver" in imported) == receiver_imported
    assert [m for m in imported if m.split(".")[0] == "tornado"] == []
    assert "obslib.ingest.handlers" not in imported


def test_the_handlers_module_serves_the_routes() -> None:
    """``Collector.app`` routes both signals to ``handlers.ExportHandler`` and /metrics to
    ``handlers.MetricsHandler`` (the module that imports tornado)."""
    from obslib.ingest import handlers

    collector = receiver.Collector(receiver.Options())
    try:
        app = collector.app()
    finally:
        collector.decoders.stop()  # its daemon threads, started with it
    routes = {
        r.matcher.regex.pattern.rstrip("$"): r.target
        for r in app.default_router.rules[0].target.rules
    }
    assert routes == {
        "/v1/traces": handlers.ExportHandler,
        "/v1/logs": handlers.ExportHandler,
        "/metrics": handlers.MetricsHandler,
    }
    assert handlers.media_type("Application/JSON; charset=utf-8") == "application/json"
    assert handlers.media_type("text/plain") is None
