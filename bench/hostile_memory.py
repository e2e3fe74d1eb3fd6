"""Peak memory (RSS) of hostile inputs, each case against a fresh process, beside a normal
request as the baseline measured in the same run.

The cases are a table (``CASES``): a name, the side it hits and a function that runs it and
returns an ``Outcome``. Receiver cases start ``obslib collect --port 0`` of their own
(against a scratch database), reset its peak RSS after start (``/proc/PID/clear_refs``),
send their requests, read the peak (VmHWM), then time SIGTERM to exit:

- ``normal``: one protobuf request of 1,000 spans (the baseline);
- ``gzip members``: two 20 MB bodies of a million empty gzip members each, sent at once,
  and a normal request beside them (its answer time is shown);
- ``many large``: ``--clients`` requests of ``--body-mib`` MiB of valid spans (each with a
  ``--padding``-byte attribute), all at once, no retries.

A file-import case adds a row to ``CASES`` with its own runner. The last stdout line is
JSON: ``{"cases": {name: {"peak_mb", "base_mb", "x_normal", "seconds", "answers",
"stop_s", "note"}}, "max_inflight_bytes"}``; ``x_normal`` is the case's peak over the
normal request's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import _common as c
import requests

logger = logging.getLogger("bench.hostile_memory")

T0_NS = 1_763_629_200_000_000_000  # 2025-11-20T09:00:00Z
PB = {"Content-Type": "application/x-protobuf"}
MEMBERS = 1_000_000


@dataclass(frozen=True)
class Outcome:
    """What one case did to the process under test."""

    peak_mb: float  # peak RSS while the case ran
    base_mb: float  # RSS before it (after start)
    seconds: float  # until the last answer
    answers: str  # HTTP statuses (or client errors) and how many
    stop_s: float | None = None  # SIGTERM to exit (receiver cases)
    note: str = ""


@dataclass(frozen=True)
class Case:
    name: str
    side: str  # receiver | import
    run: Callable[[argparse.Namespace, str], Outcome]


# -- requests -------------------------------------------------------------------------------


def spans_body(n: int, padding: int, first: int = 0) -> bytes:
    """``n`` valid spans (ten per trace, each with a ``padding``-byte attribute)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "hostile-bench"
    scope = rs.scope_spans.add()
    pad = "p" * padding
    for i in range(first, first + n):
        s = scope.spans.add()
        s.trace_id = (0xBE0C_0000_0000_0000_0000_0000_0000_0000 + i // 10).to_bytes(16, "big")
        s.span_id = (0x2000_0000_0000_0000 + i).to_bytes(8, "big")
        s.name, s.kind = f"op {i % 50}", 2
        s.start_time_unix_nano = T0_NS + i * 1000
        s.end_time_unix_nano = T0_NS + i * 1000 + 5_000_000
        if padding:
            a = s.attributes.add()
            a.key, a.value.string_value = "bench.padding", pad
    return req.SerializeToString()


def body_of_size(mib: float, padding: int) -> bytes:
    one = len(spans_body(100, padding)) / 100
    n = int(mib * 2**20 / one)
    body = spans_body(n, padding)
    while len(body) > mib * 2**20:  # legal: never past the size asked for
        n = int(n * 0.99)
        body = spans_body(n, padding)
    logger.info("body of %d spans, %.1f MiB", n, len(body) / 2**20)
    return body


def post(base: str, body: bytes, headers: dict[str, str]) -> str:
    try:
        return str(
            requests.post(base + "/v1/traces", data=body, headers=headers, timeout=300).status_code
        )
    except requests.RequestException as err:
        return type(err).__name__


def tally(answers: list[str]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(Counter(answers).items()))


# -- the receiver under test ----------------------------------------------------------------


class Receiver:
    """``obslib collect --port 0`` against ``url``, its peak RSS reset once it listens."""

    def __init__(self, url: str, options: list[str]) -> None:
        self.proc, port = c.start_collect(url, options)
        self.base = f"http://127.0.0.1:{port}"
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        self.base_mb = self.status_kib("VmRSS") / 1024

    def status_kib(self, field: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"no {field}")

    def peak_mb(self) -> float:
        return self.status_kib("VmHWM") / 1024

    def stop(self) -> float:
        """SIGTERM; seconds until it exited (killed after 120 s)."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            logger.warning("obslib collect ignored SIGTERM for 120 s; killing it")
            self.proc.kill()
            self.proc.communicate()
        return time.monotonic() - started


Sender = Callable[[str], tuple[list[str], str]]  # base URL -> answers, note


def receiver_case(
    make: Callable[[argparse.Namespace], Sender],
) -> Callable[[argparse.Namespace, str], Outcome]:
    """A case run against a fresh receiver: ``make(args)`` prepares the requests (untimed),
    then its sender sends them and gives the answers and a note."""

    def run(args: argparse.Namespace, url: str) -> Outcome:
        send = make(args)
        options = []
        if args.max_inflight_bytes:
            options = ["--max-inflight-bytes", str(args.max_inflight_bytes)]
        r = Receiver(url, options)
        try:
            started = time.monotonic()
            answers, note = send(r.base)
            seconds = time.monotonic() - started
            peak = r.peak_mb()
        finally:
            stop_s = r.stop()
        return Outcome(peak, r.base_mb, seconds, tally(answers), stop_s, note)

    return run


def normal(args: argparse.Namespace) -> Sender:
    def send(base: str) -> tuple[list[str], str]:
        return [post(base, spans_body(1000, 50), PB)], ""

    return send


def gzip_members(args: argparse.Namespace) -> Sender:
    bomb = gzip.compress(b"") * MEMBERS
    headers = {**PB, "Content-Encoding": "gzip"}

    def send(base: str) -> tuple[list[str], str]:
        with ThreadPoolExecutor(2) as pool:
            bombs = [pool.submit(post, base, bomb, headers) for _ in range(2)]
            time.sleep(0.5)
            started = time.monotonic()
            answer = post(base, spans_body(1000, 50, first=10**6), PB)
            took = time.monotonic() - started
            answers = [f.result() for f in bombs]
        return [*answers, answer], f"normal request beside them: {answer} in {took:.1f} s"

    return send


def many_large(args: argparse.Namespace) -> Sender:
    body = body_of_size(args.body_mib, args.padding)

    def send(base: str) -> tuple[list[str], str]:
        with ThreadPoolExecutor(args.clients) as pool:
            answers = list(pool.map(lambda _: post(base, body, PB), range(args.clients)))
        return answers, f"{args.clients} x {len(body) / 2**20:.1f} MiB"

    return send


CASES = [  # the first is the baseline
    Case("normal", "receiver", receiver_case(normal)),
    Case("gzip members", "receiver", receiver_case(gzip_members)),
    Case("many large", "receiver", receiver_case(many_large)),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=40, help="'many large': requests at once")
    parser.add_argument("--body-mib", type=float, default=19, help="'many large': body size")
    parser.add_argument(
        "--padding", type=int, default=200, help="'many large': bytes of attribute per span"
    )
    parser.add_argument(
        "--max-inflight-bytes",
        type=int,
        default=0,
        help="passed to obslib collect (0: its default)",
    )
    parser.add_argument("--cases", default="", help="comma-separated case names (default all)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    c.setup_logging(args.verbose)
    wanted = {n.strip() for n in args.cases.split(",") if n.strip()}
    cases = [CASES[0]] + [k for k in CASES[1:] if not wanted or k.name in wanted]

    results: dict[str, Outcome] = {}
    with c.server() as server_url, c.scratch_database(server_url) as url:
        for case in cases:
            logger.info("case %s", case.name)
            results[case.name] = case.run(args, url)
            logger.info("case %s: %s", case.name, results[case.name])

    baseline = results[CASES[0].name].peak_mb
    rows = [
        [
            name,
            o.base_mb,
            o.peak_mb,
            o.peak_mb / baseline,
            o.seconds,
            o.stop_s,
            o.answers,
            o.note,
        ]
        for name, o in results.items()
    ]
    print("\nPeak RSS of hostile inputs (MB), each against a fresh process")
    print(
        c.table(
            ["case", "start MB", "peak MB", "x normal", "answered s", "SIGTERM s", "answers", ""],
            rows,
        )
    )
    print(
        json.dumps(
            {
                "cases": {
                    name: {
                        "peak_mb": round(o.peak_mb, 1),
                        "base_mb": round(o.base_mb, 1),
                        "x_normal": round(o.peak_mb / baseline, 2),
                        "seconds": round(o.seconds, 2),
                        "answers": o.answers,
                        "stop_s": None if o.stop_s is None else round(o.stop_s, 2),
                        "note": o.note,
                    }
                    for name, o in results.items()
                },
                "max_inflight_bytes": args.max_inflight_bytes or None,
            }
        )
    )


if __name__ == "__main__":
    main()
