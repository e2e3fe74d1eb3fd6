"""The receiver's request bodies: gzip inflated under limits, decoded, their bytes capped."""

from __future__ import annotations

import queue
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from obslib.errors import InputError
from obslib.ingest import otlp
from obslib.ingest.group_commit import Unavailable
from obslib.ingest.records import Decoded
from obslib.values import json_value

PROTOBUF, JSON = "application/x-protobuf", "application/json"

# Gzip: one member is what clients send (bgzip-style blocks of 64 KiB make ~320 for a 20 MiB
# body); more is refused. Inflating 20 MiB takes ~0.1 s, so 5 s is a hostile body.
MAX_GZIP_MEMBERS = 1024
INFLATE_SECONDS = 5.0
_FIRST_SLICE, _LAST_SLICE = 64, 2**20  # input handed to zlib at a time (see inflate)
# In-flight bytes: requests being received, decoded or waiting for their commit. 256 MiB holds
# a dozen OpenTelemetry Collector batches (8,192 spans, ~1 MB of protobuf, ~20 MB decoded;
# its exporter sends 10 at once) and the 50,000 pending rows (~70 MB). Memory then peaks
# near 150 MB + the cap + the one request being written (bench/hostile_memory.py).
MAX_INFLIGHT_BYTES = 256 * 2**20
# What a decoded body holds per byte of it (Python dicts of rows), measured on small spans:
# a 6.6 MiB protobuf request decodes into 134 MB, a 10 MiB JSON one into 90 MB.
DECODED_PER_BYTE = {PROTOBUF: 20, JSON: 8}


class BodyTooLarge(InputError):
    """The body (or what its gzip inflates to) passes the size limit, or takes too long to
    inflate: 413."""


class Decoding(Protocol):
    """What decoding needs of a signal (``receiver.Signal``): the keys its JSON document
    holds its records under, and its protobuf decoder."""

    @property
    def json_keys(self) -> tuple[str, ...]: ...

    @property
    def decode_proto(self) -> Callable[[bytes, str], Decoded]: ...


# -- inflating and decoding -----------------------------------------------------------------


def inflate(
    body: bytes,
    limit: int,
    where: str,
    *,
    max_members: int = MAX_GZIP_MEMBERS,
    max_seconds: float = INFLATE_SECONDS,
    cancelled: Callable[[], bool] = lambda: False,
) -> bytes:
    """A gzip body inflated, refused past ``limit`` bytes without inflating the rest (a
    small bomb can expand a thousandfold), past ``max_members`` concatenated members or
    ``max_seconds`` of work. Linear in the body: each member gets the input in slices that
    start small and double, so what zlib hands back unused (a copy) stays within twice the
    member; slicing the whole rest for every member made 1M empty members quadratic."""
    view = memoryview(body)
    out = bytearray()
    pos = members = 0
    deadline = time.monotonic() + max_seconds
    while pos < len(view):
        members += 1
        if members > max_members:
            raise InputError(
                f"{where}: the gzip body has more than {max_members} members"
                " (a client compresses a request as one)"
            )
        unzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
        step = _FIRST_SLICE
        while not unzip.eof:
            if pos >= len(view):
                raise InputError(f"{where}: the gzip body is truncated")
            if cancelled():
                raise Unavailable("the collector is stopping")
            if time.monotonic() > deadline:
                raise BodyTooLarge(
                    f"{where}: the gzip body takes more than {max_seconds:g} s to inflate"
                )
            piece = view[pos : pos + step]
            try:
                out += unzip.decompress(piece, limit + 1 - len(out))
            except zlib.error as err:
                raise InputError(f"{where}: the gzip body is corrupt ({err})") from None
            if len(out) > limit:  # also when the output cap left input unread
                raise BodyTooLarge(f"{where}: the gzip body inflates past {limit} bytes")
            pos += len(piece) - len(unzip.unused_data)
            step = min(2 * step, _LAST_SLICE)
    return bytes(out)


def decode_request(
    sig: Decoding,
    body: bytes,
    media: str,
    encoding: str,
    limit: int,
    tag: str,
    *,
    admit: Callable[[int], None] = lambda estimate: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> Decoded:
    """One request's rows and rejects, each row tagged with the request (``source``) so a
    group write names the request a conflict came from. InputError: not OTLP at all.

    ``admit`` is told what the decoded request will hold (an estimate from the plain body's
    size) before it is decoded, and raises Unavailable to refuse it."""
    if encoding == "gzip":
        body = inflate(body, limit, tag, cancelled=cancelled)
    if cancelled():
        raise Unavailable("the collector is stopping")
    admit(len(body) * DECODED_PER_BYTE[media])
    if media == PROTOBUF:
        decoded = sig.decode_proto(body, tag)
    else:
        try:
            doc = json_value(body)
        except ValueError as err:
            raise InputError(f"{tag}: the body is not JSON ({err})") from None
        if isinstance(doc, dict):  # /v1/traces ignores logs in the document, and vice versa
            doc = {k: v for k, v in doc.items() if k in sig.json_keys}
        decoded = otlp.decode_json(doc, tag)
    for row in (*decoded.spans, *decoded.logs):
        row["source"] = tag
    return decoded


# -- in flight: the byte cap and the decoder threads ----------------------------------------


class InflightBytes:
    """The bytes held by requests in flight, under a cap. A request holds its body as it is
    received and, once its body is in, an estimate of the body decoded, until it is answered.
    A request that would take the total past the cap is refused (503) unless nobody else
    holds bytes of the same stage, so one request, however large, always gets through.
    Thread-safe: decoders admit from their threads."""

    def __init__(self, cap: int, gauge: Any = None) -> None:
        self.cap = cap
        self.held = 0
        self._decoded = 0  # requests holding a decoded estimate
        self._lock = threading.Lock()
        self._gauge = gauge

    def ticket(self) -> Ticket:
        return Ticket(self)

    def refusal(self) -> str:
        return (
            f"requests in flight hold {self.held} bytes; the max-inflight-bytes limit is {self.cap}"
        )

    def _take(self, ticket: Ticket, body: int, decoded: int) -> bool:
        with self._lock:
            if decoded:
                others = self._decoded - (1 if ticket.decoded else 0)
            else:
                others = self.held - ticket.body - ticket.decoded
            if self.held + body + decoded > self.cap and others > 0:
                return False
            if decoded and not ticket.decoded:
                self._decoded += 1
            ticket.body += body
            ticket.decoded += decoded
            self.held += body + decoded
            self._show()
            return True

    def _give(self, ticket: Ticket) -> None:
        with self._lock:
            self.held -= ticket.body + ticket.decoded
            if ticket.decoded:
                self._decoded -= 1
            ticket.body = ticket.decoded = 0
            self._show()

    def _show(self) -> None:
        if self._gauge is not None:
            self._gauge.set(self.held)


class Ticket:
    """What one request holds of the InflightBytes."""

    def __init__(self, budget: InflightBytes) -> None:
        self.budget = budget
        self.body = self.decoded = 0

    def hold_body(self, size: int) -> bool:
        """Hold the body up to ``size`` bytes; False (nothing taken) when over the cap."""
        more = size - self.body
        return more <= 0 or self.budget._take(self, more, 0)

    def hold_decoded(self, estimate: int) -> None:
        """Hold the decoded request's estimate, or raise Unavailable (503)."""
        if not self.budget._take(self, 0, estimate):
            raise Unavailable(self.budget.refusal())

    def release(self) -> None:
        if self.body or self.decoded:
            self.budget._give(self)


class Decoders:
    """Daemon threads that decode requests off the IO loop. Daemon, unlike a
    ThreadPoolExecutor's (joined at exit), so a decode still running never holds the process
    past SIGTERM's bound."""

    def __init__(self, workers: int) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future, Callable[..., Any], tuple] | None]
        self._jobs = queue.SimpleQueue()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"obslib-decode-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """``fn(*args)`` on a decoder thread (called from the IO loop, as ``stop`` is)."""
        future: Future = Future()
        if self._stopping:
            future.set_exception(Unavailable("the collector is stopping"))
        else:
            self._jobs.put((future, fn, args))
        return future

    def stop(self) -> None:
        """The threads end after their current decode; queued ones get Unavailable."""
        self._stopping = True
        for _ in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._run(*job)
            del job  # the body goes with it, not at the next request

    def _run(self, future: Future, fn: Callable[..., Any], args: tuple) -> None:
        if not future.set_running_or_notify_cancel():
            return
        if self._stopping:
            future.set_exception(Unavailable("the collector is stopping"))
            return
        try:
            future.set_result(fn(*args))
        except BaseException as err:  # handed to the request that waits for it
            future.set_exception(err)
