"""The OTLP/HTTP receiver behind ``obslib collect``: the HTTP side. It owns the routes, the
settings and the life cycle (``serve``); reading bodies under their limits and answering in
the request's encoding are ``handlers``'s (tornado, imported only when serving), gzip
inflation, decoding and the in-flight byte cap ``bodies``'s, the group-committed writes and
the metrics ``group_commit``'s.
A request is answered 200 only once what it answers for is committed; with ``--sampling
adaptive`` (``sampling``), a ``/v1/traces`` request is answered once its spans are held by
the sampler, in memory, waiting for their trace's decision: what is kept is written by the
same group commit, and what the database then refuses is counted in ``/metrics``, not
answered (as the OpenTelemetry Collector's tail sampling acknowledges spans it holds).

Protocol (the OTLP specification, "OTLP/HTTP"): ``POST /v1/traces`` and ``POST /v1/logs``
take ``application/x-protobuf`` or ``application/json`` bodies, plain or
``Content-Encoding: gzip``; the answer is an ``Export*ServiceResponse`` in the request's
encoding, with ``partial_success`` (``rejected_spans`` / ``rejected_log_records`` and an
``error_message``) when some records were refused. Malformed bodies get 400 with a
``google.rpc.Status`` (not retryable), bodies over the size limit 413 (also when gzip
inflates past it: inflation is capped, a decompression bomb never fills memory), other
content types or encodings 415. A database failure, a full queue or requests in flight
holding more than ``max_inflight_bytes`` is 503 with Retry-After: the SDKs retry, and a
re-sent span is idempotent by its key.

Hostile bodies: inflation is linear in the body and bounded by size, by gzip members
(``bodies.MAX_GZIP_MEMBERS``, else 400) and by time (``bodies.INFLATE_SECONDS``, else 413).
A request is decoded first, on one of two daemon threads (so the IO loop stays responsive; a
malformed request never joins a group), then handed to the group commit. ``GET /metrics``
serves the collector's metrics in the Prometheus text format.

SIGTERM or SIGINT stops listening and, within ``STOP_S`` (10 s) whatever is in flight:
stops inflating, answers the requests already decoded once their group is flushed, and
returns. What is still undecided then (a commit the database does not finish, a body still
arriving) is dropped unanswered: its client retries.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from obslib.errors import InputError, UsageError
from obslib.ingest import otlp
from obslib.ingest import sampling as sampling_rules
from obslib.ingest.bodies import (
    MAX_INFLIGHT_BYTES,
    BodyTooLarge,
    Decoders,
    InflightBytes,
    Ticket,
    decode_request,
)
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
from obslib.ingest.sampled import SampledTraces

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 20 * 2**20  # the OpenTelemetry Collector's default request limit
# An oversized body up to this (or the limit, when larger) is read and dropped so that the 413
# reaches the client; a bigger one is answered at once and the connection closed.
DRAIN_BYTES = 64 * 2**20
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")  # others: "other"
STOP_S = 10.0  # SIGTERM or SIGINT ends serve() within this, whatever is in flight
WRITER_GRACE_S = 1.0  # of it, kept for the last group's commit after the requests' answers
BODY_TIMEOUT_S = 60.0  # a client that stops sending its body is dropped
SAMPLING = ("off", "adaptive")


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


@dataclass
class Options:
    """The receiver's settings (``serve``'s keyword arguments)."""

    url: str | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    flush_rows: int = FLUSH_ROWS
    flush_ms: float = FLUSH_MS
    max_pending_rows: int = MAX_PENDING_ROWS
    max_inflight_bytes: int = MAX_INFLIGHT_BYTES
    sampling: str = "off"  # off | adaptive
    spans_per_second: float | None = None  # the sampler's target (adaptive only)
    trace_idle_s: float = sampling_rules.IDLE_S
    decision_wait_s: float = sampling_rules.WAIT_S
    max_pending_traces: int = sampling_rules.MAX_TRACES

    @property
    def drain_bytes(self) -> int:
        return max(DRAIN_BYTES, self.max_body_bytes)

    def check(self) -> None:
        for name in ("max_body_bytes", "flush_rows", "max_pending_rows", "max_inflight_bytes"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name.replace('_', '-')} must be at least 1")
        if self.flush_ms < 0:
            raise UsageError("flush-ms must not be negative")
        if self.sampling not in SAMPLING:
            raise UsageError(f"sampling {self.sampling} is not one of {', '.join(SAMPLING)}")
        if self.sampling == "off" and self.spans_per_second is not None:
            raise UsageError("spans-per-second needs --sampling adaptive")
        if self.sampling == "adaptive":
            if self.spans_per_second is None:
                raise UsageError("--sampling adaptive needs --spans-per-second N")
            sampling_rules.check(
                self.spans_per_second,
                self.trace_idle_s,
                self.decision_wait_s,
                self.max_pending_traces,
            )


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
        self.budget = InflightBytes(options.max_inflight_bytes, self.metrics.inflight_bytes)
        self.sampled: SampledTraces | None = None
        if options.sampling == "adaptive":
            self.sampled = SampledTraces(options, self.writer, self.metrics, self.totals)
        self.decoders = Decoders(2)
        self.closing = False
        self.inflight = 0
        self._writer_stopped = False
        self._idle = asyncio.Event()
        self._ids = itertools.count(1)

    def app(self) -> Any:
        """The routes (tornado and the handlers are imported here: only a serving receiver
        loads them)."""
        import tornado.web

        from obslib.ingest.handlers import ExportHandler, MetricsHandler

        return tornado.web.Application(
            [
                (TRACES.path, ExportHandler, {"collector": self, "sig": TRACES}),
                (LOGS.path, ExportHandler, {"collector": self, "sig": LOGS}),
                ("/metrics", MetricsHandler, {"collector": self}),
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

    async def export(
        self, sig: Signal, body: bytes, media: str, encoding: str, ticket: Ticket
    ) -> Answer:
        """Decode off the IO loop (admitted under the in-flight cap first), join the pending
        group, answer once it is committed."""
        tag = f"request {next(self._ids)}"
        limit = self.options.max_body_bytes
        try:
            decoded = await asyncio.wrap_future(
                self.decoders.submit(
                    partial(
                        decode_request,
                        admit=ticket.hold_decoded,
                        cancelled=lambda: self.closing,
                    ),
                    sig,
                    body,
                    media,
                    encoding,
                    limit,
                    tag,
                )
            )
            del body  # the decoded rows are what is held from here
            if not decoded.records:
                return Answer(200)
            if self.sampled is not None and sig is TRACES:
                return self.sampled.offer(sig, decoded)
            future = self.writer.submit(tag, sig, decoded)
        except BodyTooLarge as err:
            return Answer(413, str(err))
        except InputError as err:
            logger.info("%s", err)
            return Answer(400, str(err))
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
        try:
            self.writer.start(loop)
            if self.sampled is not None:
                await self.sampled.start(loop)
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
            await self.shutdown(server, loop.time() + STOP_S)
        finally:  # whatever happened, the threads are told to end (the writer flushing first)
            if self.sampled is not None:
                self.sampled.stop()
            self.closing = True
            self.decoders.stop()
            if not self._writer_stopped:  # shutdown() did, within its bound
                await self._stop_writer(loop.time() + WRITER_GRACE_S)
        echo(f"obslib collect: stopped; {self.totals.summary()}")
        return self.totals

    async def shutdown(self, server: Any, deadline: float) -> None:
        """Stop listening, answer what is in flight (flushing its group now), then close,
        all by ``deadline`` (loop time). Requests still sending their body are not waited
        for; a decode still running past the deadline is left to its daemon thread."""
        loop = asyncio.get_running_loop()
        server.stop()
        self.closing = True  # inflation stops; a request not yet decoded gets 503
        self.writer.hurry()
        self.decoders.stop()
        if self.inflight == 0:
            self._idle.set()
        wait = deadline - WRITER_GRACE_S - 0.5 - loop.time()
        try:
            await asyncio.wait_for(self._idle.wait(), max(wait, 0))
        except TimeoutError:
            logger.warning("%d request(s) still in flight at exit; clients retry", self.inflight)
        if self.sampled is not None:  # every waiting trace decided, the kept ones written
            await self.sampled.drain(deadline - WRITER_GRACE_S - 0.5)
        await self._stop_writer(deadline - 0.5)
        try:
            await asyncio.wait_for(server.close_all_connections(), max(deadline - loop.time(), 0.1))
        except TimeoutError:
            logger.warning("connections still open at exit")

    async def _stop_writer(self, deadline: float) -> None:
        """Let the writer commit what it holds and end, waiting for it until ``deadline``."""
        loop = asyncio.get_running_loop()
        self._writer_stopped = True
        self.writer.close()
        while self.writer.running and loop.time() < deadline:
            await asyncio.sleep(0.02)  # the IO loop runs on: the commit's answers go out
        if not self.writer.join(0):
            logger.warning("the writer's last commit did not end in time; its requests retry")


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
    max_inflight_bytes: int = MAX_INFLIGHT_BYTES,
    sampling: str = "off",
    spans_per_second: float | None = None,
    trace_idle_s: float = sampling_rules.IDLE_S,
    decision_wait_s: float = sampling_rules.WAIT_S,
    max_pending_traces: int = sampling_rules.MAX_TRACES,
    echo: Callable[[str], None] | None = None,
) -> Totals:
    """Run the OTLP/HTTP receiver until SIGTERM or SIGINT (blocks; it returns within
    ``STOP_S``, 10 s, of the signal); returns what it stored.

    ``echo`` shows the listening line and the summary (default: stdout, flushed, so a
    parent process reading the port sees it at once). Port 0 picks a free port.
    ``sampling="adaptive"`` keeps about ``spans_per_second`` spans a second, whole traces
    (``obslib.ingest.sampling``).

    Raises UsageError for bad settings or a port in use, DatabaseUnreachable when the
    database cannot be reached at start."""
    check_port(port)
    options = Options(
        url,
        max_body_bytes,
        flush_rows,
        flush_ms,
        max_pending_rows,
        max_inflight_bytes,
        sampling,
        spans_per_second,
        trace_idle_s,
        decision_wait_s,
        max_pending_traces,
    )
    options.check()
    say = echo or (lambda line: print(line, flush=True))

    async def main() -> Totals:
        return await Collector(options).run(host, port, say)

    return asyncio.run(main())
