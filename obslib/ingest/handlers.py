"""The OTLP/HTTP receiver's tornado request handlers: ``POST /v1/traces`` and ``/v1/logs``
(refusals from the headers, the body streamed in under its limits, the answer in the
request's encoding) and ``GET /metrics``.

Imported by ``receiver.Collector.app`` only when a receiver serves, so that importing the
receiver (or ``obslib collect --help``) does not load tornado.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
import tornado.web

from obslib.ingest.bodies import JSON, PROTOBUF
from obslib.ingest.group_commit import RETRY_AFTER_S, Answer

if TYPE_CHECKING:
    from obslib.ingest.receiver import Collector, Signal

logger = logging.getLogger(__name__)

GRPC_CODES = {400: 3, 413: 3, 415: 3, 500: 13, 503: 14}  # google.rpc.Code of each status


def media_type(header: str) -> str | None:
    """``application/x-protobuf`` or ``application/json`` (parameters ignored), else None."""
    value = header.split(";", 1)[0].strip().lower()
    return value if value in (PROTOBUF, JSON) else None


@tornado.web.stream_request_body
class ExportHandler(tornado.web.RequestHandler):
    """``POST /v1/traces`` or ``/v1/logs``; the body streams in so the limit holds."""

    SUPPORTED_METHODS = ("POST",)

    def initialize(self, collector: Collector, sig: Signal) -> None:
        self.collector, self.sig = collector, sig
        self.chunks: list[bytes] = []
        self.size = 0
        self.refusal: Answer | None = None
        self.ticket = collector.budget.ticket()
        self.exporting = False
        self.media: str | None = None
        self.encoding = ""

    def prepare(self) -> None:
        c, headers = self.collector, self.request.headers
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
        elif not self.ticket.hold_body(declared):
            self.refusal = self.busy()
        if declared > c.options.drain_bytes:  # too big to read and drop: answer, then close
            self.request.connection.set_max_body_size(declared)
            self.answer(self.refusal or Answer(413, "the body is too large"))

    def data_received(self, chunk: bytes) -> None:
        """Hold the chunk, unless the request is refused (then the body is read and
        dropped, so that the answer reaches the client)."""
        if self.refusal is not None:
            return
        c = self.collector
        self.size += len(chunk)
        if self.size > c.options.max_body_bytes:
            limit = c.options.max_body_bytes
            self.refusal = Answer(413, f"the body is more than the limit of {limit} bytes")
        elif not self.ticket.hold_body(self.size):  # no Content-Length, or past it
            self.refusal = self.busy()
        else:
            self.chunks.append(chunk)
            return
        self.chunks = []
        self.ticket.release()

    async def post(self) -> None:
        if self.refusal is not None:
            self.answer(self.refusal)
            return
        assert self.media is not None
        c = self.collector
        c.started()
        self.exporting = True
        try:
            body, self.chunks = b"".join(self.chunks), []
            answer = c.export(self.sig, body, self.media, self.encoding, self.ticket)
            del body  # export holds it while it decodes, no longer
            self.answer(await answer)
        finally:
            self.ticket.release()
            c.ended()

    def busy(self) -> Answer:
        message = f"{self.collector.budget.refusal()}; retry later"
        return Answer(503, message, retry_after=RETRY_AFTER_S)

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
        self.ticket.release()

    def on_connection_close(self) -> None:
        if not self.exporting:  # an export holds its bytes until it ends
            self.ticket.release()


class MetricsHandler(tornado.web.RequestHandler):
    """``GET /metrics`` in the Prometheus text format."""

    SUPPORTED_METHODS = ("GET",)

    def initialize(self, collector: Collector) -> None:
        self.collector = collector

    def get(self) -> None:
        body, content_type = self.collector.metrics.text()
        self.set_header("Content-Type", content_type)
        self.finish(body)
