"""The group commit behind ``obslib collect``: decoded export requests join a pending group,
one writer thread writes each group in one transaction, and each request's Answer is settled
only once its group has committed. Also the collector's metrics and run totals, which the
writes keep.

A group is written when it holds ``flush_rows`` rows or its oldest request has waited
``flush_ms``, by one writer thread on one kept connection (reconnecting after a failure).
Past ``max_pending_rows`` waiting rows a request is refused as Unavailable (503,
back-pressure). A bad row (InputError) sends each request of the group back alone, so only
the request at fault gets its 400; a database failure answers the whole group 503.

The metrics (a Prometheus registry of its own, served by the receiver at ``/metrics``): the
plan's ``service_request_duration_seconds{service,method,endpoint}`` and
``service_requests_total{service,method,endpoint,status}``, plus
``obslib_collector_spans_total{outcome}`` and ``obslib_collector_logs_total{outcome}``
(outcome: accepted, duplicate, rejected), ``obslib_collector_groups_total{result}``
(committed, failed), ``obslib_collector_pending_rows`` and
``obslib_collector_inflight_bytes`` (what the receiver's in-flight cap counts).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol

from obslib.errors import InputError, ObslibError
from obslib.ingest import writer
from obslib.ingest.records import Decoded, Reject
from obslib.ingest.store import Counts, settle, store
from obslib.storage import db

logger = logging.getLogger(__name__)

SERVICE = "obslib-collector"  # the service label of the plan's standard metrics
FLUSH_ROWS = 5_000
FLUSH_MS = 200.0
MAX_PENDING_ROWS = 50_000  # rows waiting for a commit; past it requests get 503 (back-pressure)
RETRY_AFTER_S = 2
MESSAGE_REASONS = 5  # rejected records named in an error_message


class Unavailable(ObslibError):
    """The receiver cannot take the request now (database down, queue full, stopping): 503."""


class Kind(Protocol):
    """What the writer needs of a signal (``receiver.Signal``): the Reject kind its answer
    counts, and the noun its error_message uses."""

    @property
    def kind(self) -> str: ...

    @property
    def noun(self) -> str: ...


@dataclass(frozen=True)
class Answer:
    """How one export request ends: its HTTP status, and its rejects or error message."""

    status: int = 200
    message: str = ""
    rejected: int = 0
    retry_after: int | None = None


def reject_message(sig: Kind, rejects: list[Reject]) -> str:
    """One line for ``error_message``: how many were refused and the first few reasons."""
    if not rejects:
        return ""
    shown = "; ".join(f"{r.position}: {r.reason}" for r in rejects[:MESSAGE_REASONS])
    more = f"; and {len(rejects) - MESSAGE_REASONS} more" if len(rejects) > MESSAGE_REASONS else ""
    return f"{len(rejects)} {sig.noun} rejected: {shown}{more}"


# -- metrics --------------------------------------------------------------------------------


class Metrics:
    """The collector's Prometheus metrics, in a registry of its own (not the global one)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.duration = Histogram(
            "service_request_duration_seconds",
            "HTTP request duration",
            ["service", "method", "endpoint"],
            registry=self.registry,
        )
        self.requests = Counter(
            "service_requests_total",
            "HTTP requests answered",
            ["service", "method", "endpoint", "status"],
            registry=self.registry,
        )
        self.spans = Counter(
            "obslib_collector_spans_total", "Spans received", ["outcome"], registry=self.registry
        )
        self.logs = Counter(
            "obslib_collector_logs_total",
            "Log records received",
            ["outcome"],
            registry=self.registry,
        )
        self.groups = Counter(
            "obslib_collector_groups_total", "Group commits", ["result"], registry=self.registry
        )
        self.pending = Gauge(
            "obslib_collector_pending_rows", "Rows waiting for a commit", registry=self.registry
        )
        self.inflight_bytes = Gauge(
            "obslib_collector_inflight_bytes",
            "Bytes held by requests in flight (bodies, decoded estimates)",
            registry=self.registry,
        )
        for counter in (self.spans, self.logs):
            for outcome in ("accepted", "duplicate", "rejected"):
                counter.labels(outcome=outcome)  # present at 0 from the start
        for result in ("committed", "failed"):
            self.groups.labels(result=result)

    def request(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        self.duration.labels(SERVICE, method, endpoint).observe(seconds)
        self.requests.labels(SERVICE, method, endpoint, str(status)).inc()

    def records(self, spans: Counts, logs: Counts) -> None:
        for counter, counts in ((self.spans, spans), (self.logs, logs)):
            for outcome in ("accepted", "duplicate", "rejected"):
                counter.labels(outcome=outcome).inc(getattr(counts, outcome))

    def text(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


@dataclass
class Totals:
    """What the receiver did over its life, per kind (the summary line at exit)."""

    spans: Counts = field(default_factory=Counts)
    logs: Counts = field(default_factory=Counts)

    def summary(self) -> str:
        def part(name: str, c: Counts) -> str:
            return f"{name} {c.accepted} accepted, {c.duplicate} duplicate, {c.rejected} rejected"

        return f"{part('spans', self.spans)}; {part('log records', self.logs)}"


# -- group commit ---------------------------------------------------------------------------


@dataclass
class _Pending:
    tag: str
    sig: Kind
    decoded: Decoded
    rows: int
    arrived: float
    future: asyncio.Future


class GroupCommit:
    """One writer thread and connection; requests wait on futures settled at commit."""

    def __init__(
        self,
        url: str | None,
        metrics: Metrics,
        totals: Totals,
        *,
        flush_rows: int,
        flush_ms: float,
        max_pending_rows: int,
    ) -> None:
        self.url, self.metrics, self.totals = url, metrics, totals
        self.flush_rows, self.flush_s = flush_rows, flush_ms / 1000
        self.max_pending_rows = max_pending_rows
        self._queue: deque[_Pending] = deque()
        self._rows = 0
        self._cond = threading.Condition()
        self._hurry = False  # shutting down: write what is pending without lingering
        self._stopped = False
        self._conn: ExitStack | None = None
        self._connection: Any = None
        # a daemon: a commit the database never finishes cannot hold the process past SIGTERM
        self._thread = threading.Thread(
            target=self._run, name="obslib-collector-writer", daemon=True
        )
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Connect (failing fast when the database is unreachable) and start writing."""
        self._loop = loop
        self._connect()
        self._thread.start()

    def submit(self, tag: str, sig: Kind, decoded: Decoded) -> asyncio.Future:
        """Queue a decoded request; the future gives its Answer once its group is written."""
        assert self._loop is not None
        rows = len(decoded.spans) + len(decoded.logs)
        with self._cond:
            if self._stopped:
                raise Unavailable("the collector is stopping")
            if self._rows >= self.max_pending_rows:
                raise Unavailable(f"{self._rows} rows are waiting for the database")
            future = self._loop.create_future()
            self._queue.append(_Pending(tag, sig, decoded, rows, time.monotonic(), future))
            self._rows += rows
            self.metrics.pending.set(self._rows)
            if len(self._queue) == 1 or self._rows >= self.flush_rows:
                self._cond.notify()
        return future

    def hurry(self) -> None:
        """Write whatever is pending now (shutdown): requests in flight get their answer."""
        with self._cond:
            self._hurry = True
            self._cond.notify()

    def stop(self, timeout: float | None = None) -> bool:
        """Write what is pending, then end the thread and close the connection (blocks up to
        ``timeout``); False when the thread is still writing."""
        self.close()
        return self.join(timeout)

    def close(self) -> None:
        """Refuse new requests; the thread writes what is pending, then ends."""
        with self._cond:
            self._hurry = self._stopped = True
            self._cond.notify()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` for the thread to end, then close the connection; False
        (connection left to the thread) when it is still writing."""
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
        self._disconnect()
        return True

    def _take(self) -> list[_Pending] | None:
        with self._cond:
            while not self._queue and not self._stopped:
                self._cond.wait()
            if not self._queue:
                return None
            deadline = self._queue[0].arrived + self.flush_s
            while self._rows < self.flush_rows and not self._hurry:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            group, rows = [], 0
            while self._queue and (not group or rows + self._queue[0].rows <= self.flush_rows):
                pending = self._queue.popleft()
                group.append(pending)
                rows += pending.rows
            self._rows -= rows
            self.metrics.pending.set(self._rows)
            return group

    def _run(self) -> None:
        while (group := self._take()) is not None:
            try:
                answers = self._write(group)
            except BaseException as err:  # never leave a request waiting forever
                logger.error("the writer failed: %s", err)
                answers = [Answer(500, "internal error in the collector")] * len(group)
            for pending, answer in zip(group, answers, strict=True):
                assert self._loop is not None
                self._loop.call_soon_threadsafe(_settle, pending.future, answer)

    def _write(self, group: list[_Pending]) -> list[Answer]:
        """Store the group in one transaction; a bad row (InputError) sends each request
        back alone, so only the request at fault gets its 400."""
        combined = Decoded()
        for pending in group:
            combined.extend(pending.decoded)
        try:
            if self._connection is None:
                self._connect()
            with writer.transaction(
                self._connection, every_conflict=True, url=self.url or db.database_url()
            ) as batch:
                outcome = store(batch, combined, "collector")
            settle(outcome, batch, "collector")  # what the commit found another writer stored
        except InputError as err:
            if len(group) > 1:
                return [answer for pending in group for answer in self._write([pending])]
            logger.warning("%s refused: %s", group[0].tag, err)
            return [Answer(400, str(err))]
        except Exception as err:  # the database failed (or our connection to it)
            logger.warning("a write of %d request(s) failed; answering 503: %s", len(group), err)
            self.metrics.groups.labels(result="failed").inc()
            self._disconnect()
            message = "the database failed the write; retry later"
            return [Answer(503, message, retry_after=RETRY_AFTER_S)] * len(group)
        self.metrics.groups.labels(result="committed").inc()
        self.metrics.records(outcome.spans, outcome.logs)
        self.totals.spans += outcome.spans
        self.totals.logs += outcome.logs
        by_request: dict[str, list[Reject]] = {}
        for reject in outcome.rejects:
            by_request.setdefault(reject.source, []).append(reject)
        answers = []
        for pending in group:
            mine = [r for r in by_request.get(pending.tag, []) if r.kind == pending.sig.kind]
            answers.append(Answer(200, reject_message(pending.sig, mine), len(mine)))
        return answers

    def _connect(self) -> None:
        stack = ExitStack()
        self._connection = stack.enter_context(db.adbc_connection(self.url))
        self._conn = stack

    def _disconnect(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception as err:  # a dead connection may fail to close; it is gone anyway
                logger.debug("closing the database connection: %s", err)
        self._conn = self._connection = None


def _settle(future: asyncio.Future, answer: Answer) -> None:
    if not future.done():
        future.set_result(answer)
