"""Spans/s through ``obslib collect --sampling adaptive`` against the same receiver without
sampling, on the demo's traffic.

Why: the sampler holds every span of a ``/v1/traces`` request in memory until its trace is
decided (Python dicts, one ``offer`` per span on the event loop) and writes only what it
keeps; the plain receiver writes everything before it answers. This shows what the sampler
costs per span and what it saves in writes.

What it does: the demo's incident day (``--per-day`` traces, ~13.5 spans each) as OTLP
protobuf requests of 500 spans, in the order an SDK exports them (by end time), POSTed by
``--clients`` threads on kept connections to

- the baseline: ``obslib collect`` (a 200 means committed): first POST to last 200;
- the sampler: ``obslib collect --sampling adaptive --spans-per-second N`` with N a tenth of
  the baseline's rate (``--trace-idle 0.2``): first POST to last 200 (held by the sampler),
  and end to end, until ``/metrics`` shows no span pending or waiting for the writer;

each into an emptied table, methods interleaved, ``--runs`` times; medians. The last line
printed is one JSON object: ``{"spans", "plain_spans_per_s", "sampled_spans_per_s",
"sampled_vs_plain", "sampled_end_to_end_spans_per_s", "end_to_end_vs_plain",
"stored_share"}``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _common as c

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.ingest.demo_otlp

logger = logging.getLogger("bench.sampling")
DAY = 12  # the demo's incident day


def held(port: int) -> float:
    """Spans the sampler still holds (pending a decision or the writer) and rows waiting."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    names = ("obslib_sampler_pending_spans ", "obslib_sampler_outbox_spans ",
             "obslib_collector_pending_rows ")  # fmt: skip
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(names))


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def run_plain(url: str, bodies: list[bytes], n: int, clients: int) -> float:
    c.reset_table(url)
    proc, port = c.start_collect(url)
    try:
        seconds = c.post_all(port, bodies, clients)
    finally:
        stop(proc)
    stored = c.count_rows(url)
    if stored != n:
        raise SystemExit(f"the plain receiver stored {stored} rows, expected {n}")
    return seconds


def run_sampled(
    url: str, bodies: list[bytes], clients: int, target: float
) -> tuple[float, float, int]:
    """Seconds to the last 200, seconds until nothing is held, spans stored."""
    c.reset_table(url)
    options = ("--sampling", "adaptive", "--spans-per-second", f"{target:.0f}", "--trace-idle",
               "0.2")  # fmt: skip
    proc, port = c.start_collect(url, options)
    try:
        start = time.perf_counter()
        accepted = c.post_all(port, bodies, clients)
        while held(port) > 0:
            time.sleep(0.02)
        done = time.perf_counter() - start
    finally:
        stop(proc)
    return accepted, done, c.count_rows(url)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=8_000, help="demo traces of the day")
    parser.add_argument("--clients", type=int, default=4, help="client threads")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    c.setup_logging(args.verbose)
    from tests.ingest.demo_otlp import demo_hours, requests

    spans = demo_hours(DAY, args.per_day)
    bodies = [body for _, body in requests(spans)]
    n = len(spans)
    logger.info("%d spans in %d requests", n, len(bodies))
    plains, accepts, ends, shares = [], [], [], []
    with c.server() as server_url, c.scratch_database(server_url) as url:
        for run in range(args.runs):
            plains.append(run_plain(url, bodies, n, args.clients))
            target = n / plains[-1] / 10  # a tenth of what the plain receiver took
            accepted, done, stored = run_sampled(url, bodies, args.clients, target)
            accepts.append(accepted)
            ends.append(done)
            shares.append(stored / n)
            logger.info(
                "run %d: plain %.2f s, sampled %.2f s to the last 200, %.2f s end to end,"
                " %.1f %% stored", run + 1, plains[-1], accepted, done, 100 * stored / n,
            )  # fmt: skip
    plain, accept, end = (statistics.median(x) for x in (plains, accepts, ends))
    result = {
        "spans": n,
        "plain_spans_per_s": round(n / plain),
        "sampled_spans_per_s": round(n / accept),
        "sampled_vs_plain": round(plain / accept, 2),
        "sampled_end_to_end_spans_per_s": round(n / end),
        "end_to_end_vs_plain": round(plain / end, 2),
        "stored_share": round(statistics.median(shares), 3),
    }
    print(f"plain receiver:   {result['plain_spans_per_s']:>8,} spans/s (committed)")
    print(f"with the sampler: {result['sampled_spans_per_s']:>8,} spans/s (answered),"
          f" {result['sampled_end_to_end_spans_per_s']:,} end to end,"
          f" {100 * result['stored_share']:.1f} % stored")  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
