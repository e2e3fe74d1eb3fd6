"""How fast OTLP telemetry gets in: ``obslib ingest otlp`` (file) and ``obslib collect``
(OTLP/HTTP receiver), in spans/s, against the COPY writer alone on the same rows.

Why: the importer decodes OTLP/JSON in Python, checks every record (ids, times, the count
rule, conflicts) and then writes through the same staged COPY writer as everything else.
This shows what the decoding and the bookkeeping cost on top of the write, and where the
time goes.

What it does: generates N spans of realistic OTLP (seed 7; six services, traces of 4-30
spans, HTTP/DB/messaging attributes, exception events on ~3 % of spans, error status on
~2 %) and writes them as JSON lines of 1,000 spans each (as the Collector's file exporter
does). Then, each run into an emptied ``distributed_traces`` (TRUNCATE + CHECKPOINT):

- ``import_file(path, "otlp")``: the whole file import (read, parse, decode, store);
- decode alone: ``orjson.loads`` + ``otlp.decode_json`` of every line, no database;
- the baseline: ``write_spans(frame)`` of the same decoded rows (frame built untimed): the
  staged COPY writer alone;
- the receiver: ``obslib collect --port 0`` in a subprocess, ``--clients`` threads POSTing
  the same spans as protobuf ``ExportTraceServiceRequest``s (1,000 spans each) on kept
  connections; timed from the first request to the last 200 (a 200 means committed).

Times are medians of ``--runs`` runs, methods interleaved. The last line printed is one
JSON object: ``{"spans", "import_spans_per_s", "write_spans_per_s", "import_vs_write",
"decode_share", "receiver_spans_per_s", "receiver_vs_write"}``.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import random
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c
import orjson

logger = logging.getLogger("bench.ingest_otlp")

T0_NS = 1_763_629_200_000_000_000  # 2025-11-20T09:00:00Z
SERVICES = {  # service -> (span names, attribute kind)
    "frontend": (["GET /", "GET /product/{id}", "POST /cart", "POST /checkout"], "http"),
    "cart": (["CartService/AddItem", "CartService/GetCart", "HGET"], "rpc"),
    "checkout": (["CheckoutService/PlaceOrder", "prepareOrder", "SELECT orders"], "db"),
    "payment": (["PaymentService/Charge", "POST /v1/charges"], "http"),
    "inventory": (["InventoryService/Reserve", "UPDATE stock"], "db"),
    "shipping": (["ShippingService/Quote", "orders publish"], "messaging"),
}
KINDS = (1, 2, 3, 4, 5)  # internal, server, client, producer, consumer
SCOPE = ("io.opentelemetry.contrib.bench", "1.32.0")


# -- the spans ------------------------------------------------------------------------------


def generate(n: int, seed: int = c.SEED) -> list[dict[str, Any]]:
    """``n`` spans as plain dicts (ids as bytes, times in ns), whole traces in order."""
    rng = random.Random(seed)
    spans: list[dict[str, Any]] = []
    start = T0_NS
    while len(spans) < n:
        size = min(rng.randint(4, 30), n - len(spans))
        trace_id = rng.randbytes(16)
        start += rng.randint(1, 50) * 1_000_000
        trace: list[dict[str, Any]] = []
        for i in range(size):
            parent = trace[rng.randrange(i)] if i else None
            service = "frontend" if parent is None else rng.choice(list(SERVICES))
            names, kind_of = SERVICES[service]
            begin = start if parent is None else parent["start"] + rng.randint(0, 2_000_000)
            length = rng.randint(50_000, 40_000_000)
            if parent is not None:  # inside its parent, as a real child is
                length = max(0, min(length, parent["end"] - begin))
            error = rng.random() < 0.02
            span = {
                "trace_id": trace_id,
                "span_id": rng.randbytes(8),
                "parent": parent["span_id"] if parent else b"",
                "service": service,
                "name": rng.choice(names),
                "kind": 2 if parent is None else rng.choice(KINDS),
                "start": begin,
                "end": begin + length,
                "error": error,
                "attributes": _attributes(rng, kind_of, error),
                "events": [],
            }
            if error or rng.random() < 0.01:
                span["events"].append(
                    (
                        begin + length // 2,
                        "exception",
                        [
                            ("exception.type", "s", "TimeoutError"),
                            ("exception.message", "s", "upstream timed out after 30s"),
                        ],
                    )
                )
            trace.append(span)
        spans.extend(trace)
    return spans


def _attributes(rng: random.Random, kind_of: str, error: bool) -> list[tuple[str, str, Any]]:
    """(key, type, value): s string, i int, b bool, d double."""
    if kind_of == "http":
        status = 500 if error else rng.choice((200, 200, 200, 201, 404))
        return [
            ("http.request.method", "s", rng.choice(("GET", "POST"))),
            ("http.response.status_code", "i", status),
            ("url.path", "s", f"/product/{rng.randint(1, 5000)}"),
            ("server.address", "s", "shop.example.com"),
        ]
    if kind_of == "db":
        return [
            ("db.system", "s", "postgresql"),
            ("db.statement", "s", "SELECT * FROM orders WHERE id = $1"),
            ("db.rows", "i", rng.randint(0, 50)),
        ]
    if kind_of == "messaging":
        return [
            ("messaging.system", "s", "kafka"),
            ("messaging.destination.name", "s", "orders"),
            ("messaging.batch", "b", rng.random() < 0.5),
        ]
    return [
        ("rpc.system", "s", "grpc"),
        ("rpc.grpc.status_code", "i", 2 if error else 0),
        ("cache.hit_ratio", "d", round(rng.random(), 3)),
    ]


def _groups(spans: list[dict[str, Any]], per_request: int) -> list[list[dict[str, Any]]]:
    return [spans[i : i + per_request] for i in range(0, len(spans), per_request)]


def _by_service(group: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for span in group:
        out.setdefault(span["service"], []).append(span)
    return out


_JSON_VALUE = {"s": "stringValue", "i": "intValue", "b": "boolValue", "d": "doubleValue"}


def _json_attrs(attrs: list[tuple[str, str, Any]]) -> list[dict[str, Any]]:
    return [{"key": k, "value": {_JSON_VALUE[t]: str(v) if t == "i" else v}} for k, t, v in attrs]


def _resource(service: str) -> list[tuple[str, str, Any]]:
    return [
        ("service.name", "s", service),
        ("service.version", "s", "2.4.1"),
        ("host.name", "s", f"{service}-7d9f8b-x2k4q"),
        ("telemetry.sdk.language", "s", "python"),
    ]


def json_request(group: list[dict[str, Any]]) -> dict[str, Any]:
    """An OTLP/JSON ExportTraceServiceRequest: hex ids, int64 as strings, enums as ints."""
    resource_spans = []
    for service, spans in _by_service(group).items():
        out = []
        for s in spans:
            span = {
                "traceId": s["trace_id"].hex(),
                "spanId": s["span_id"].hex(),
                "name": s["name"],
                "kind": s["kind"],
                "startTimeUnixNano": str(s["start"]),
                "endTimeUnixNano": str(s["end"]),
                "attributes": _json_attrs(s["attributes"]),
                "status": {"code": 2, "message": "upstream failed"} if s["error"] else {},
            }
            if s["parent"]:
                span["parentSpanId"] = s["parent"].hex()
            if s["events"]:
                span["events"] = [
                    {"timeUnixNano": str(t), "name": name, "attributes": _json_attrs(a)}
                    for t, name, a in s["events"]
                ]
            out.append(span)
        scope = {"scope": {"name": SCOPE[0], "version": SCOPE[1]}, "spans": out}
        resource = {"attributes": _json_attrs(_resource(service))}
        resource_spans.append({"resource": resource, "scopeSpans": [scope]})
    return {"resourceSpans": resource_spans}


def proto_request(group: list[dict[str, Any]]) -> bytes:
    """The same request as protobuf bytes, as an SDK's OTLP/HTTP exporter sends it."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    for service, spans in _by_service(group).items():
        rs = request.resource_spans.add()
        _proto_attrs(rs.resource.attributes, _resource(service))
        ss = rs.scope_spans.add()
        ss.scope.name, ss.scope.version = SCOPE
        for s in spans:
            span = ss.spans.add()
            span.trace_id, span.span_id, span.parent_span_id = (
                s["trace_id"],
                s["span_id"],
                s["parent"],
            )
            span.name, span.kind = s["name"], s["kind"]
            span.start_time_unix_nano, span.end_time_unix_nano = s["start"], s["end"]
            _proto_attrs(span.attributes, s["attributes"])
            if s["error"]:
                span.status.code, span.status.message = 2, "upstream failed"
            for t, name, attrs in s["events"]:
                event = span.events.add()
                event.time_unix_nano, event.name = t, name
                _proto_attrs(event.attributes, attrs)
    return request.SerializeToString()


def _proto_attrs(target: Any, attrs: list[tuple[str, str, Any]]) -> None:
    field = {"s": "string_value", "i": "int_value", "b": "bool_value", "d": "double_value"}
    for k, t, v in attrs:
        kv = target.add()
        kv.key = k
        setattr(kv.value, field[t], v)


# -- the timed parts ------------------------------------------------------------------------


def time_import(path: Path, url: str, n: int) -> float:
    from obslib.ingest import importer

    c.reset_table(url)
    start = time.perf_counter()
    report = importer.import_file(path, "otlp", url=url)
    seconds = time.perf_counter() - start
    got = (report.outcome.spans.accepted, report.outcome.rejected)
    if got != (n, 0):
        raise SystemExit(f"import_file: {got[0]} accepted, {got[1]} rejected; expected {n}, 0")
    return seconds


def time_decode(path: Path, n: int) -> tuple[float, list[dict[str, Any]]]:
    """Parse and decode every line, no database: (seconds, the span rows)."""
    from obslib.ingest import otlp

    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            decoded = otlp.decode_json(orjson.loads(line), str(path), f"line {number}")
            rows.extend(decoded.spans)
    seconds = time.perf_counter() - start
    if len(rows) != n:
        raise SystemExit(f"decode: {len(rows)} spans, expected {n}")
    return seconds, rows


def time_write(frame: Any, url: str) -> float:
    from obslib.ingest import write_spans

    c.reset_table(url)
    start = time.perf_counter()
    written = write_spans(frame, url=url)
    seconds = time.perf_counter() - start
    if written != len(frame):
        raise SystemExit(f"write_spans stored {written} rows, expected {len(frame)}")
    return seconds


class Receiver:
    """``obslib collect --port 0`` against the scratch database, in a subprocess."""

    def __init__(self, url: str) -> None:
        self.proc, self.port = c.start_collect(url)
        logger.info("receiver listening on port %d (pid %d)", self.port, self.proc.pid)

    def stop(self) -> str:
        """SIGTERM (it flushes, then exits); its last words."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return (out + err).strip()


def time_receiver(bodies: list[bytes], url: str, n: int, clients: int) -> float:
    """POST every body from ``clients`` threads on kept connections; seconds until the last
    200. The receiver answers 200 only once the spans are committed."""
    c.reset_table(url)
    receiver = Receiver(url)
    try:
        seconds = c.post_all(receiver.port, bodies, clients)
    finally:
        logger.info("%s", receiver.stop())
    stored = c.count_rows(url)
    if stored != n:
        raise SystemExit(f"receiver stored {stored} rows, expected {n}")
    return seconds


# -- the report -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000, help="spans to import")
    parser.add_argument("--per-line", type=int, default=1_000, help="spans per line / request")
    parser.add_argument("--runs", type=int, default=3, help="runs per method (median)")
    parser.add_argument("--clients", type=int, default=4, help="receiver client threads")
    parser.add_argument("--no-receiver", action="store_true", help="skip the receiver part")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    c.setup_logging(args.verbose)
    n = args.spans

    with (
        tempfile.TemporaryDirectory(prefix="obb-otlp-") as tmp,
        c.server() as server_url,
        c.scratch_database(server_url) as url,
    ):
        spans = generate(n)
        groups = _groups(spans, args.per_line)
        path = Path(tmp) / "traces.jsonl"
        with path.open("wb") as f:
            for group in groups:
                f.write(orjson.dumps(json_request(group)) + b"\n")
        bodies = [] if args.no_receiver else [proto_request(g) for g in groups]
        del spans
        file_mb = path.stat().st_size / c.MB
        logger.info("%d spans in %d lines (%.0f MB of OTLP/JSON)", n, len(groups), file_mb)

        from obslib.ingest import records

        # warm-up, untimed: loads the ADBC driver, pyarrow compute, the protobuf classes
        _, rows = time_decode(path, n)
        frame = records.spans_frame(rows)
        del rows
        time_write(frame.iloc[:100], url)
        gc.collect()

        imports, decodes, writes, receives = [], [], [], []
        for run in range(args.runs):  # interleaved, so background load spreads over all
            imports.append(time_import(path, url, n))
            logger.info("run %d import_file   %7.2f s", run + 1, imports[-1])
            decodes.append(time_decode(path, n)[0])
            logger.info("run %d decode only   %7.2f s", run + 1, decodes[-1])
            writes.append(time_write(frame, url))
            logger.info("run %d write_spans   %7.2f s", run + 1, writes[-1])
            if bodies:
                receives.append(time_receiver(bodies, url, n, args.clients))
                logger.info("run %d receiver      %7.2f s", run + 1, receives[-1])

    t_import, t_decode, t_write = c.median(imports), c.median(decodes), c.median(writes)
    t_receive = c.median(receives) if receives else None

    def line(label: str, runs: list[float], t: float) -> list[object]:
        return [
            label,
            len(runs),
            t,
            f"{n / t:,.0f}",
            t / t_write,
            " ".join(f"{s:.2f}" for s in runs),
        ]

    print(f"\nOTLP ingest benchmark: {n:,} spans, {args.per_line:,} per line/request")
    table = [
        line(f"import_file, OTLP/JSON lines ({file_mb:.0f} MB)", imports, t_import),
        line("  of which: parse + decode (no database)", decodes, t_decode),
        line("write_spans(frame) alone (COPY writer, baseline)", writes, t_write),
    ]
    if t_receive is not None:
        table.append(line(f"obslib collect, protobuf, {args.clients} clients", receives, t_receive))
    print(c.table(["method", "runs", "median s", "spans/s", "x write", "all runs s"], table))
    rest = t_import - t_decode - t_write
    print(
        f"  import_file = decode {t_decode:.2f} s ({t_decode / t_import:.0%})"
        f" + write {t_write:.2f} s ({t_write / t_import:.0%})"
        f" + the rest {rest:.2f} s ({rest / t_import:.0%}: frames, the count rule, reading)"
    )
    if t_receive is None:
        print("  receiver: not measured (--no-receiver)")
    print(
        json.dumps(
            {
                "spans": n,
                "import_spans_per_s": round(n / t_import),
                "write_spans_per_s": round(n / t_write),
                "import_vs_write": round(t_import / t_write, 3),
                "decode_share": round(t_decode / t_import, 3),
                "receiver_spans_per_s": None if t_receive is None else round(n / t_receive),
                "receiver_vs_write": None if t_receive is None else round(t_receive / t_write, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
