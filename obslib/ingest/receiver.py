"""The OTLP/HTTP receiver behind ``obslib collect``: the HTTP side. It owns the routes, reading
bodies (size limits, gzip inflated with a cap), the answers in the request's encoding, and the
life cycle (``serve``); the group-committed writes and the metrics are ``group_commit``'s.
A request is answered 200 only once what it answers for is committed.

Protocol (the OTLP specification, "OTLP/HTTP"): ``POST /v1/traces`` and ``POST /v1/logs``
take ``application/x-protobuf`` or ``application/json`` bodies, plain or
``Content-Encoding: gzip``; the answer is an ``Export*ServiceResponse`` in the request's
encoding, with ``partial_success`` (``rejected_spans`` / ``rejected_log_records`` and an
``error_message``) when some records were refused. Malformed bodies get 400 with a
``google.rpc.Status`` (not retryable), bodies over the size limit 413 (also when gzip
inflates past it: inflation is capped, a decompression bomb never fills memory), other
content types or encodings 415. A database failure or a full queue is 503 with Retry-After:
the SDKs retry, and a re-sent span is idempotent by its key.

A request is decoded first, in a thread pool (so the IO loop stays responsive; a malformed
request never joins a group), then handed to the group commit. ``GET /metrics`` serves the
collector's metrics in the Prometheus text format.

SIGTERM or SIGINT stops listening, flushes what was accepted, answers the requests in
flight and returns.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from obslib.errors import InputError, UsageError
from obslib.ingest import otlp
from obslib.ingest.group_commit import (
    FLUSH_MS,
    FLUSH_ROWS,
    MAX_PENDING_ROWS,
    RETRY_AFTER_S,
    Answer,
    GroupCommit,
    Metrics,
    Totals,
    Unavailable,
)
from obslib.ingest.records import Decoded

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 20 * 2**20  # the OpenTelemetry Collector's default request limit
# An oversized body up to this (or the limit, when larger) is read and dropped so that the 413
# reaches the client; a bigger one is answered at once and the connection closed.
DRAIN_BYTES = 64 * 2**20
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")  # others: "other"
SHUTDOWN_WAIT_S = 30.0  # how long SIGTERM waits for requests in flight
BODY_TIMEOUT_S = 60.0  # a client that stops sending its body is dropped
PROTOBUF, JSON = "application/x-protobuf", "application/json"
GRPC_CODES = {400: 3, 413: 3, 415: 3, 500: 13, 503: 14}  # google.rpc.Code of each status


class BodyTooLarge(InputError):
    """The body (or what its gzip inflates to) passes the size limit: 413."""


@dataclass(frozen=True)
class Signal:
    """What differs between ``/v1/traces`` and ``/v1/logs``."""

    path: str
    kind: str  # the Reject kind: span | log
    noun: str
    json_keys: tuple[str, ...]
    decode_proto: Callable[[bytes, str], Decoded]
    rejected_field: str

    def response(self, rejected: int, message: str) -> Any:
        """The ``Export*ServiceResponse`` (partial success set only when it has something)."""
        if self.kind == "span":
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                ExportTraceServiceResponse as Response,
            )
        else:
            from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
                ExportLogsServiceResponse as Response,
            )
        answer = Response()
        if rejected or message:
            setattr(answer.partial_success, self.rejected_field, rejected)
            answer.partial_success.error_message = message
        return answer


TRACES = Signal(
    "/v1/traces",
    "span",
    "spans",
    ("resourceSpans", "resource_spans"),
    otlp.decode_traces_proto,
    "rejected_spans",
)
LOGS = Signal(
    "/v1/logs",
    "log",
    "log records",
    ("resourceLogs", "resource_logs"),
    otlp.decode_logs_proto,
    "rejected_log_records",
)

# -- bodies ---------------------------------------------------------------------------------


def inflate(body: bytes, limit: int, where: str) -> bytes:
    """A gzip body inflated, refused past ``limit`` bytes without inflating the rest (a
    small bomb can expand a thousandfold). Concatenated gzip members are read in turn."""
    out = bytearray()
    data = body
    while data:
        unzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            while True:
                out += unzip.decompress(data, limit + 1 - len(out))
                if len(out) > limit:
                    raise BodyTooLarge(f"{where}: the gzip body inflates past {limit} bytes")
                if unzip.eof or not unzip.unconsumed_tail:
                    break
                data = unzip.unconsumed_tail
        except zlib.error as err:
            raise InputError(f"{where}: the gzip body is corrupt ({err})") from None
        if not unzip.eof:
            raise InputError(f"{where}: the gzip body is truncated")
        data = unzip.unused_data
    return bytes(out)


def decode_request(
    sig: Signal, body: bytes, media: str, encoding: str, limit: int, tag: str
) -> Decoded:
    """One request's rows and rejects, each row tagged with the request (``source``) so a
    group write names the request a conflict came from. InputError: not OTLP at all."""
    if encoding == "gzip":
        body = inflate(body, limit, tag)
    if media == PROTOBUF:
        decoded = sig.decode_proto(body, tag)
    else:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as err:
            raise InputError(f"{tag}: the body is not JSON ({err})") from None
        if isinstance(doc, dict):  # /v1/traces ignores logs in the document, and vice versa
            doc = {k: v for k, v in doc.items() if k in sig.json_keys}
        decoded = otlp.decode_json(doc, tag)
    for row in (*decoded.spans, *decoded.logs):
        row["source"] = tag
    return decoded


def media_type(header: str) -> str | None:
    """``application/x-protobuf`` or ``application/json`` (parameters ignored), else None."""
    value = header.split(";", 1)[0].strip().lower()
    return value if value in (PROTOBUF, JSON) else None


# -- HTTP -----------------------------------------------------------------------------------


@dataclass
class Options:
    """The receiver's settings (``serve``'s keyword arguments)."""

    url: str | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    flush_rows: int = FLUSH_ROWS
    flush_ms: float = FLUSH_MS
    max_pending_rows: int = MAX_PENDING_ROWS

    @property
    def drain_bytes(self) -> int:
        return max(DRAIN_BYTES, self.max_body_bytes)

    def check(self) -> None:
        for name in ("max_body_bytes", "flush_rows", "max_pending_rows"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name.replace('_', '-')} must be at least 1")
        if self.flush_ms < 0:
            raise UsageError("flush-ms must not be negative")


class Collector:
    """The tornado application, its writer and its life cycle."""

    def __init__(self, options: Options) -> None:
        options.check()
        self.options = options
        self.metrics = Metrics()
        self.totals = Totals()
        self.writer = GroupCommit(
            options.url,
            self.metrics,
            self.totals,
            flush_rows=options.flush_rows,
            flush_ms=options.flush_ms,
            max_pending_rows=options.max_pending_rows,
        )
        self.decoders = ThreadPoolExecutor(max_workers=2, thread_name_prefix="obslib-decode")
        self.closing = False
        self.inflight = 0
        self._idle = asyncio.Event()
        self._ids = itertools.count(1)

    def app(self) -> Any:
        import tornado.web

        export, metrics = _handlers()
        return tornado.web.Application(
            [
                (TRACES.path, export, {"collector": self, "sig": TRACES}),
                (LOGS.path, export, {"collector": self, "sig": LOGS}),
                ("/metrics", metrics, {"collector": self}),
            ],
            log_function=self.log_request,
        )

    def log_request(self, handler: Any) -> None:
        """Every answered request, known route or not, into the standard service metrics."""
        path = handler.request.path
        endpoint = path if path in (TRACES.path, LOGS.path, "/metrics") else "other"
        status = handler.get_status()
        method = handler.request.method if handler.request.method in METHODS else "other"
        self.metrics.request(method, endpoint, status, handler.request.request_time())
        logger.debug("%s %s %d", handler.request.method, path, status)

    async def export(self, sig: Signal, body: bytes, media: str, encoding: str) -> Answer:
        """Decode off the IO loop, join the pending group, answer once it is committed."""
        tag = f"request {next(self._ids)}"
        loop = asyncio.get_running_loop()
        limit = self.options.max_body_bytes
        try:
            decoded = await loop.run_in_executor(
                self.decoders, decode_request, sig, body, media, encoding, limit, tag
            )
        except BodyTooLarge as err:
            return Answer(413, str(err))
        except InputError as err:
            logger.info("%s", err)
            return Answer(400, str(err))
        if not decoded.records:
            return Answer(200)
        try:
            future = self.writer.submit(tag, sig, decoded)
        except Unavailable as err:
            return Answer(503, f"{err}; retry later", retry_after=RETRY_AFTER_S)
        return await future

    def started(self) -> None:
        self.inflight += 1
        self._idle.clear()

    def ended(self) -> None:
        self.inflight -= 1
        if self.inflight == 0:
            self._idle.set()

    async def run(self, host: str, port: int, echo: Callable[[str], None]) -> Totals:
        """Listen until SIGTERM/SIGINT, then drain and flush; the totals of the run."""
        import tornado.httpserver
        import tornado.netutil

        loop = asyncio.get_running_loop()
        self.writer.start(loop)
        try:
            try:
                sockets = tornado.netutil.bind_sockets(port, address=host)
            except OSError as err:
                raise UsageError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
            server = tornado.httpserver.HTTPServer(
                self.app(), max_body_size=self.options.drain_bytes, body_timeout=BODY_TIMEOUT_S
            )
            server.add_sockets(sockets)
            bound = sockets[0].getsockname()[1]
            shown = f"[{host}]" if ":" in host else host
            echo(
                f"obslib collect: listening on http://{shown}:{bound}"
                " (OTLP/HTTP /v1/traces /v1/logs, /metrics)"
            )
            stop = asyncio.Event()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
            await self.shutdown(server)
        finally:  # whatever happened, the writer thread ends and its connection closes
            await loop.run_in_executor(None, self.writer.stop)
            self.decoders.shutdown(wait=False)
        echo(f"obslib collect: stopped; {self.totals.summary()}")
        return self.totals

    async def shutdown(self, server: Any) -> None:
        """Stop listening, answer what is in flight (flushing its group now), then close."""
        server.stop()
        self.closing = True
        self.writer.hurry()
        if self.inflight == 0:
            self._idle.set()
        try:
            await asyncio.wait_for(self._idle.wait(), SHUTDOWN_WAIT_S)
        except TimeoutError:
            logger.warning(
                "%d request(s) still in flight after %.0f s", self.inflight, SHUTDOWN_WAIT_S
            )
        await asyncio.get_running_loop().run_in_executor(None, self.writer.stop)
        self.decoders.shutdown(wait=True)
        await server.close_all_connections()


def _handlers() -> tuple[type, type]:
    """The request handlers (tornado imported only when a receiver runs)."""
    import tornado.web

    @tornado.web.stream_request_body
    class ExportHandler(tornado.web.RequestHandler):
        """``POST /v1/traces`` or ``/v1/logs``; the body streams in so the limit holds."""

        SUPPORTED_METHODS = ("POST",)

        def initialize(self, collector: Collector, sig: Signal) -> None:
            self.collector, self.sig = collector, sig
            self.chunks: list[bytes] = []
            self.size = 0
            self.refusal: Answer | None = None
            self.counted = False
            self.media: str | None = None
            self.encoding = ""

        def prepare(self) -> None:
            c, headers = self.collector, self.request.headers
            c.started()
            self.counted = True
            self.media = media_type(headers.get("Content-Type", ""))
            self.encoding = headers.get("Content-Encoding", "").strip().lower()
            limit = c.options.max_body_bytes
            length = headers.get("Content-Length", "")
            declared = int(length) if length.isdigit() else 0
            if c.closing:
                self.set_header("Connection", "close")
                message = "the collector is stopping; retry later"
                self.refusal = Answer(503, message, retry_after=RETRY_AFTER_S)
            elif self.media is None:
                shown = headers.get("Content-Type", "") or "none"
                self.refusal = Answer(
                    415, f"Content-Type {shown} is not supported: send {PROTOBUF} or {JSON}"
                )
            elif self.encoding not in ("", "identity", "gzip"):
                self.refusal = Answer(
                    415, f"Content-Encoding {self.encoding} is not supported: send gzip or none"
                )
            elif declared > limit:
                self.refusal = Answer(
                    413, f"the body is {declared} bytes, more than the limit of {limit}"
                )
            if declared > c.options.drain_bytes:  # too big to read and drop: answer, then close
                self.request.connection.set_max_body_size(declared)
                self.answer(self.refusal or Answer(413, "the body is too large"))

        def data_received(self, chunk: bytes) -> None:
            if self.refusal is not None:
                return
            self.size += len(chunk)
            if self.size > self.collector.options.max_body_bytes:
                limit = self.collector.options.max_body_bytes
                self.refusal = Answer(413, f"the body is more than the limit of {limit} bytes")
                self.chunks = []
                return
            self.chunks.append(chunk)

        async def post(self) -> None:
            if self.refusal is not None:
                self.answer(self.refusal)
                return
            body = b"".join(self.chunks)
            self.chunks = []
            assert self.media is not None
            self.answer(await self.collector.export(self.sig, body, self.media, self.encoding))

        def answer(self, answer: Answer) -> None:
            """The answer in the request's encoding: a response, or a google.rpc.Status."""
            from google.protobuf import json_format

            self.set_status(answer.status)
            if answer.retry_after is not None:
                self.set_header("Retry-After", str(answer.retry_after))
            if answer.status == 200:
                message = self.sig.response(answer.rejected, answer.message)
            else:
                from google.rpc.status_pb2 import Status

                message = Status(code=GRPC_CODES.get(answer.status, 2), message=answer.message)
            if self.media == JSON:
                self.set_header("Content-Type", JSON)
                self.finish(orjson.dumps(json_format.MessageToDict(message)))
            elif self.media == PROTOBUF:
                self.set_header("Content-Type", PROTOBUF)
                self.finish(message.SerializeToString())
            else:  # the client's encoding is unknown: plain text
                self.set_header("Content-Type", "text/plain; charset=utf-8")
                self.finish(answer.message + "\n")

        def write_error(self, status_code: int, **kwargs: Any) -> None:
            self.answer(Answer(status_code, self._reason))

        def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
            logger.error(
                "%s %s failed: %s: %s",
                self.request.method,
                self.request.path,
                getattr(typ, "__name__", typ),
                value,
            )

        def on_finish(self) -> None:
            self._done()

        def on_connection_close(self) -> None:
            self._done()

        def _done(self) -> None:
            if self.counted:
                self.counted = False
                self.collector.ended()

    class MetricsHandler(tornado.web.RequestHandler):
        """``GET /metrics`` in the Prometheus text format."""

        SUPPORTED_METHODS = ("GET",)

        def initialize(self, collector: Collector) -> None:
            self.collector = collector

        def get(self) -> None:
            body, content_type = self.collector.metrics.text()
            self.set_header("Content-Type", content_type)
            self.finish(body)

    return ExportHandler, MetricsHandler


def check_port(port: int) -> None:
    """A UsageError unless ``port`` is a TCP port (the CLI checks before it connects)."""
    if not 0 <= port <= 65535:
        raise UsageError(f"port {port} is not a TCP port (0..65535; 0 picks a free one)")


def serve(
    host: str = "127.0.0.1",
    port: int = 4318,
    *,
    url: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    flush_rows: int = FLUSH_ROWS,
    flush_ms: float = FLUSH_MS,
    max_pending_rows: int = MAX_PENDING_ROWS,
    echo: Callable[[str], None] | None = None,
) -> Totals:
    """Run the OTLP/HTTP receiver until SIGTERM or SIGINT (blocks); returns what it stored.

    ``echo`` shows the listening line and the summary (default: stdout, flushed, so a
    parent process reading the port sees it at once). Port 0 picks a free port.
    Raises UsageError for bad settings or a port in use, DatabaseUnreachable when the
    database cannot be reached at start."""
    check_port(port)
    options = Options(url, max_body_bytes, flush_rows, flush_ms, max_pending_rows)
    options.check()
    say = echo or (lambda line: print(line, flush=True))

    async def main() -> Totals:
        return await Collector(options).run(host, port, say)

    return asyncio.run(main())
