"""The adaptive sampler inside the receiver (``obslib collect --sampling adaptive``): spans of
``/v1/traces`` requests are offered to ``sampling.Sampler``; every ``TICK_S`` the traces
whose wait is over are decided on the event loop and the kept ones handed to the group
commit, one trace per write request, so a span the writer refuses costs its own trace only.

A kept trace the writer cannot take now (queue full, database down: 503) waits in an outbox
and is sent again; while the outbox holds ``max_pending_rows`` spans, new trace requests are
answered 503 (back-pressure, as without sampling). The latency SLO thresholds that make a
trace ``slow`` are read from ``service_level_objectives`` at start and every ``REFRESH_S``.

Metrics (at ``/metrics``, read from the sampler when scraped):
``obslib_sampler_traces_total{decision,reason}`` and ``obslib_sampler_spans_total{decision,
reason}`` (kept: error, slow, sampled; dropped: sampled), ``obslib_sampler_decisions_total
{trigger}`` (complete, waited, cap, shutdown), ``obslib_sampler_late_spans_total{decision}``,
``obslib_sampler_pending_traces``, ``obslib_sampler_pending_spans``,
``obslib_sampler_outbox_spans``, ``obslib_sampler_target_spans_per_second`` and
``obslib_sampler_kept_spans_per_second`` (the averaged stored rate), and
``obslib_sampler_write_lost_spans_total`` (kept spans the writer refused as bad: 400/500).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from functools import partial
from typing import Any

from obslib.ingest.group_commit import Answer, GroupCommit, Kind, Metrics, Totals, Unavailable
from obslib.ingest.group_commit import reject_message as _reject_message
from obslib.ingest.records import Decoded
from obslib.ingest.sampling import Decision, Sampler
from obslib.storage import db

logger = logging.getLogger(__name__)

TICK_S = 0.1
REFRESH_S = 60.0
RETRY_AFTER_S = 2
_THRESHOLDS = """SELECT service_name, min(latency_threshold_ms)::float8
FROM service_level_objectives
WHERE slo_type = 'latency' AND enabled AND latency_threshold_ms IS NOT NULL
GROUP BY service_name"""


def latency_thresholds(url: str | None) -> dict[str, float]:
    """Each service's strictest enabled latency SLO threshold (ms): slower server spans make
    their trace ``slow``, kept whole."""
    with db.connection(url) as conn:
        return {name: float(ms) for name, ms in conn.execute(_THRESHOLDS).fetchall()}


class SampledTraces:
    """The sampler, its outbox and its metrics, driven from the receiver's event loop."""

    def __init__(self, options: Any, writer: GroupCommit, metrics: Metrics, totals: Totals):
        self.url = options.url
        self.writer, self.metrics, self.totals = writer, metrics, totals
        self.max_outbox = options.max_pending_rows
        self.sampler = Sampler(
            options.spans_per_second,
            idle_s=options.trace_idle_s,
            wait_s=options.decision_wait_s,
            max_traces=options.max_pending_traces,
        )
        self._outbox: deque[tuple[str, list[dict[str, Any]]]] = deque()
        self.outbox_spans = 0
        self.writing = 0
        self.lost = 0
        self._sig: Kind | None = None
        self._task: asyncio.Task | None = None
        self._retry_at = 0.0
        metrics.registry.register(_SamplerMetrics(self))

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the latency thresholds (the database answered the writer already), then
        decide every ``TICK_S``."""
        self.sampler.thresholds = await loop.run_in_executor(None, latency_thresholds, self.url)
        self._task = loop.create_task(self._tick(loop))

    def offer(self, sig: Kind, decoded: Decoded) -> Answer:
        """Hold a request's spans; its answer now (503 while the outbox is full)."""
        self._sig = sig
        if self.outbox_spans >= self.max_outbox:
            message = f"{self.outbox_spans} sampled spans are waiting for the database"
            return Answer(503, f"{message}; retry later", retry_after=RETRY_AFTER_S)
        self.sampler.offer(decoded.spans)
        rejects = [r for r in decoded.rejects if r.kind == sig.kind]
        if rejects:  # the decoders' refusals, counted as the writer counts its own
            self.metrics.spans.labels(outcome="rejected").inc(len(rejects))
            self.totals.spans.input += len(rejects)
            self.totals.spans.rejected += len(rejects)
        return Answer(200, _reject_message(sig, rejects), len(rejects))

    async def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        refresh = loop.time() + REFRESH_S
        while True:
            await asyncio.sleep(TICK_S)
            try:
                self._queue(*self.sampler.due())
                self.send(loop.time())
                if loop.time() >= refresh:
                    refresh = loop.time() + REFRESH_S
                    self.sampler.thresholds = await loop.run_in_executor(
                        None, latency_thresholds, self.url
                    )
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the loop goes on: a failed refresh keeps the old ones
                logger.warning("the sampler's tick failed: %s", err)

    def _queue(self, decisions: list[Decision], late: list[dict[str, Any]]) -> None:
        for d in decisions:
            if d.kept:
                self._outbox.append((f"sampled trace {d.trace_id}", d.spans))
                self.outbox_spans += len(d.spans)
        if late:
            self._outbox.append(("late spans of kept traces", late))
            self.outbox_spans += len(late)

    def send(self, now: float) -> None:
        """Hand the outbox to the writer, one trace per write request, until it refuses."""
        if self._sig is None or now < self._retry_at:
            return
        while self._outbox:
            tag, rows = self._outbox[0]
            try:
                future = self.writer.submit(tag, self._sig, Decoded(spans=rows))
            except Unavailable:
                self._retry_at = now + TICK_S * 5
                return
            self._outbox.popleft()
            self.outbox_spans -= len(rows)
            self.writing += 1
            future.add_done_callback(partial(self._written, tag, rows))

    def _written(self, tag: str, rows: list[dict[str, Any]], future: asyncio.Future) -> None:
        self.writing -= 1
        answer: Answer = future.result()
        if answer.status == 503:  # the database failed the write: again later
            self._outbox.append((tag, rows))
            self.outbox_spans += len(rows)
        elif answer.status != 200:
            self.lost += len(rows)
            logger.warning("%s: %d span(s) refused: %s", tag, len(rows), answer.message)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def drain(self, deadline: float) -> None:
        """Decide every waiting trace and send the kept ones, until ``deadline`` (loop time)."""
        loop = asyncio.get_running_loop()
        self.stop()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._queue(*self.sampler.drain())
        self._retry_at = 0.0
        while (self._outbox or self.writing) and loop.time() < deadline:
            self.send(loop.time())
            await asyncio.sleep(0.02)
        if self._outbox:
            logger.warning("%d sampled span(s) not written at exit", self.outbox_spans)


class _SamplerMetrics:
    """A Prometheus collector reading the sampler's counts when scraped."""

    def __init__(self, owner: SampledTraces) -> None:
        self.owner = owner

    def describe(self) -> list:
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        o, stats = self.owner, self.owner.sampler.stats
        traces = CounterMetricFamily(
            "obslib_sampler_traces", "Traces decided", labels=["decision", "reason"]
        )
        spans = CounterMetricFamily(
            "obslib_sampler_spans", "Spans of traces decided", labels=["decision", "reason"]
        )
        for (decision, reason), n in stats.traces.items():
            traces.add_metric([decision, reason], n)
            spans.add_metric([decision, reason], stats.spans[(decision, reason)])
        triggers = CounterMetricFamily(
            "obslib_sampler_decisions", "Decisions by what ended the wait", labels=["trigger"]
        )
        for trigger, n in stats.triggers.items():
            triggers.add_metric([trigger], n)
        late = CounterMetricFamily(
            "obslib_sampler_late_spans",
            "Spans of traces decided before they came",
            labels=["decision"],
        )
        for decision, n in stats.late.items():
            late.add_metric([decision], n)
        lost = CounterMetricFamily(
            "obslib_sampler_write_lost_spans", "Kept spans the writer refused as bad"
        )
        lost.add_metric([], o.lost)
        yield from (traces, spans, triggers, late, lost)
        for name, doc, value in (
            ("pending_traces", "Traces waiting for a decision", o.sampler.pending_traces),
            ("pending_spans", "Spans waiting for their trace's decision", o.sampler.pending_spans),
            ("outbox_spans", "Kept spans waiting for the writer", o.outbox_spans),
            ("target_spans_per_second", "The stored rate aimed at", o.sampler.target),
            ("kept_spans_per_second", "Stored spans a second (averaged)", o.sampler.kept_rate),
        ):
            gauge = GaugeMetricFamily(f"obslib_sampler_{name}", doc)
            gauge.add_metric([], float(value or 0.0))
            yield gauge
