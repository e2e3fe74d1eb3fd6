"""Hostile clients against ``obslib collect`` (a real process on loopback): gzip bodies of a
million members, SIGTERM with requests that never finish in flight, and many large bodies
at once against the in-flight byte cap."""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests
from google.rpc.status_pb2 import Status

from obslib.errors import InputError
from obslib.ingest import bodies, receiver
from obslib.storage.migrate import Migrator
from tests.ingest.test_receiver import PB, Running, collector, count, spans_request
from tests.pg import MIGRATIONS, scratch_database

GZIP_PB = {**PB, "Content-Encoding": "gzip"}
MEMBERS = 1_000_000  # empty gzip members: a 20 MB body that inflates to nothing


@pytest.fixture(scope="module")
def db(server_url: str) -> Iterator[str]:
    """One migrated database for this module; each test names its own service."""
    with scratch_database(server_url) as url:
        Migrator(url, MIGRATIONS).up()
        yield url


def many_members(n: int = MEMBERS) -> bytes:
    return gzip.compress(b"") * n


def port_of(r: Running) -> int:
    return int(r.base.rsplit(":", 1)[1])


def head(r: Running, length: int, gz: bool = False) -> bytes:
    """A POST /v1/traces request line and headers declaring ``length`` body bytes."""
    encoding = b"Content-Encoding: gzip\r\n" if gz else b""
    return (
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        + encoding
        + f"Content-Length: {length}\r\n\r\n".encode()
    )


def read_answer(sock: socket.socket) -> bytes:
    """The whole HTTP answer (headers and body: the receiver gives Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    headers, _, rest = data.partition(b"\r\n\r\n")
    length = int(headers.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-answer"
        rest += chunk
    return headers + b"\r\n\r\n" + rest


def rss(pid: int) -> int:
    """The process's resident memory now, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


# -- gzip -----------------------------------------------------------------------------------


def test_inflating_many_members_takes_linear_time() -> None:
    """400,000 empty members (no member cap) inflate in a second or two, not the ~40 s that
    re-slicing the rest of the body for every member took; the member cap refuses them at
    once, and each member's output is kept."""
    body = many_members(400_000)
    started = time.monotonic()
    assert bodies.inflate(body, 2**20, "r", max_members=10**7) == b""
    assert time.monotonic() - started < 15  # generous: ~1 s here, quadratic was ~40 s
    with pytest.raises(InputError, match="more than 1024 members"):
        bodies.inflate(body, 2**20, "r")
    parts = b"".join(gzip.compress(bytes([i]) * 70_000) for i in range(200))
    assert bodies.inflate(parts, 2**24, "r") == b"".join(bytes([i]) * 70_000 for i in range(200))


@pytest.mark.slow
def test_many_member_gzip_bodies_are_refused_fast_and_a_normal_request_gets_through(
    db: str,
) -> None:
    """Two 20 MB bodies of a million empty gzip members each, sent at once, are answered 400
    (too many members) within seconds, and a normal request sent beside them is stored."""
    bomb = many_members()
    assert len(bomb) == 20_000_000
    with collector(db) as r, ThreadPoolExecutor(3) as pool:
        started = time.monotonic()
        hostile = [
            pool.submit(
                requests.post, r.base + "/v1/traces", data=bomb, headers=GZIP_PB, timeout=40
            )
            for _ in range(2)
        ]
        time.sleep(0.5)  # the bombs are on their way (or already refused)
        normal = r.post("/v1/traces", spans_request(1, 10, service="beside-bombs"), PB)
        normal_s = time.monotonic() - started
        answers = [f.result() for f in hostile]
        hostile_s = time.monotonic() - started
    assert normal.status_code == 200
    assert normal_s < 25  # generous: ~1 s; the two bombs held both decoders for minutes
    for answer in answers:
        assert answer.status_code == 400
        assert "more than 1024 members" in Status.FromString(answer.content).message
    assert hostile_s < 30
    assert count(db, "beside-bombs") == 10


# -- SIGTERM --------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_ends_collect_within_its_bound_whatever_is_in_flight(db: str) -> None:
    """SIGTERM with a body that stopped arriving, a gzip bomb and a request whose commit the
    database holds (its table locked): ``obslib collect`` is gone within 10 s (+ margin for
    the interpreter's exit), says it stopped, and leaves the stuck request unanswered
    rather than answered 200."""
    lock = psycopg.connect(db)
    try:
        with collector(db, "--flush-ms", "10") as r, ThreadPoolExecutor(2) as pool:
            stalled = socket.create_connection(("127.0.0.1", port_of(r)), timeout=30)
            stalled.sendall(head(r, 1_000_000) + b"x" * 1000)
            lock.execute("LOCK TABLE distributed_traces IN ACCESS EXCLUSIVE MODE")
            body = spans_request(2, 10, service="locked-out")
            stuck = pool.submit(r.post, "/v1/traces", body, PB)
            bomb = pool.submit(r.post, "/v1/traces", many_members(), GZIP_PB)
            time.sleep(2)  # the request reaches the writer, which waits for the lock
            started = time.monotonic()
            code, out = r.stop(timeout=40)
            took = time.monotonic() - started
            stalled.close()
            try:
                status = stuck.result().status_code
            except requests.RequestException:
                status = None  # dropped unanswered: the SDK retries
            bomb.exception()
    finally:
        lock.close()
    assert took < receiver.STOP_S + 5, f"SIGTERM took {took:.1f} s"
    assert code == 0
    assert out.splitlines()[-1].startswith("obslib collect: stopped; ")
    assert status != 200
    assert count(db, "locked-out") == 0


# -- in-flight bytes ------------------------------------------------------------------------


def test_past_the_inflight_cap_a_request_gets_503_with_retry_after(db: str) -> None:
    """With a 1 MB cap, a body arriving while another 600 kB one is held gets 503 with
    Retry-After (declared or chunked); the held one, though its decoded estimate alone
    passes the cap, is stored; once it is answered the refused one goes through."""
    first = spans_request(3_000_000, 9000, service="capped")
    second = spans_request(3_100_000, 9000, service="capped")
    assert 500_000 < len(first) < 1_000_000
    with collector(db, "--max-inflight-bytes", "1000000") as r:
        held = socket.create_connection(("127.0.0.1", port_of(r)), timeout=30)
        held.sendall(head(r, len(first)) + first[:1000])
        time.sleep(0.3)  # the receiver has the headers: the body's bytes are held
        for data in (second, iter([second[:300_000], second[300_000:]])):
            refused = r.post("/v1/traces", data, PB)
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "2"
            message = Status.FromString(refused.content).message
            assert "the max-inflight-bytes limit is 1000000; retry later" in message, message
        held.sendall(first[1000:])
        assert read_answer(held).startswith(b"HTTP/1.1 200 ")
        held.close()
        assert r.post("/v1/traces", second, PB).status_code == 200
        assert r.metrics()[("obslib_collector_inflight_bytes", ())] == 0
    assert count(db, "capped") == 18_000


@pytest.mark.slow
def test_many_large_bodies_at_once_stay_within_the_cap(db: str) -> None:
    """Twenty 4 MiB bodies arriving at once (each stalled just short of its end) against an
    8 MiB cap: the receiver holds two, its memory grows by far less than the 80 MB the
    twenty are, and the other eighteen get 503 with Retry-After once sent."""
    size = 4 * 2**20
    with collector(db, "--max-inflight-bytes", str(8 * 2**20)) as r:
        before = rss(r.proc.pid)
        socks = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", port_of(r)), timeout=60)
            s.sendall(head(r, size) + b"\0" * (size - 10))
            socks.append(s)
        deadline = time.monotonic() + 60
        while r.metrics()[("obslib_collector_inflight_bytes", ())] < 8 * 2**20:
            assert time.monotonic() < deadline, "the two admitted bodies never arrived"
            time.sleep(0.1)
        time.sleep(1)  # the refused bodies are read (and dropped) too
        grown = rss(r.proc.pid) - before
        answers = []
        for s in socks:
            s.sendall(b"\0" * 10)
            answers.append(read_answer(s))
            s.close()
    assert grown < 40 * 2**20, f"grew {grown / 2**20:.0f} MiB holding 2 of 20 bodies"
    statuses = [a.split(b" ", 2)[1] for a in answers]
    assert statuses.count(b"503") == 18, statuses
    assert statuses.count(b"400") == 2, statuses  # zeros are no OTLP request: 400 once read
    assert all(b"\r\nRetry-After: 2\r\n" in a for a in answers if b" 503 " in a[:20])
