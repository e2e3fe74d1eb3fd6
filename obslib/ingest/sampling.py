"""Adaptive tail sampling for ``obslib collect --sampling adaptive --spans-per-second N``:
whole traces kept or dropped, each kept one with the probability it was kept with.

**When a trace is decided** (tail-based, as the OpenTelemetry Collector's ``tail_sampling``
processor: spans are held by trace id until a decision). A trace is *complete* once its root
span (no parent) has arrived, which an SDK exports when the root ends, and no span of it
arrived for ``idle_s`` (2 s); a trace whose root never comes is decided ``wait_s`` (30 s, the
processor's ``decision_wait`` default) after its first span. At most ``max_traces`` (50,000,
the processor's ``num_traces`` default) traces and ``max_spans`` (200,000) spans wait; past
either cap the oldest waiting trace is decided at once, as if its wait were over (the
processor instead evicts it undecided). Spans arriving for a trace already decided follow
its decision, with its probability, while the decision is remembered (the last
``DECIDED_CACHE`` traces); after that they start a trace of their own.

**What is kept.** Every trace with a span whose status is not ``ok`` (reason ``error``) or a
server span slower than its service's latency SLO threshold (``slow``; the strictest when a
service has several) is kept with probability 1: every bad event of an availability or latency
SLO is stored. The others are kept with the probability of their root's (service, operation),
``sampled`` (a trace without root: its earliest span's).

**The probabilities** follow Jaeger's adaptive sampling (a probability per service and
operation recomputed from the traffic observed, with a lower bound of samples per operation,
``sampling.min-samples-per-second``, default one a minute), computed here every
``ADJUST_S`` (5 s; Jaeger: every minute; at start after 0.25 s, then 0.5, 1, 2 and 4 s, the
averages a running mean meanwhile) for a *total* target of ``N`` stored spans a second:
the spans/s of the traces kept whole (errors, slow) come off ``N`` first; the rest is shared
equally between the operations, an operation using less than its share keeping every trace
and leaving the rest to the others (max-min fair, water-filling); an operation then keeps at
least ``FLOOR_PER_S`` traces a second (one a minute, Jaeger's default) and a probability of at
least ``MIN_PROBABILITY`` (Jaeger's 1e-5). The floor holds for every (service, operation) of
any span, not only roots: a trace is kept with the largest of its root's probability and the
floors of the operations in it, so an operation deep in busy traces (a rarely called
dependency) keeps its trace a minute too; that probability is still known at the decision,
and stored. Rates are exponentially weighted averages with a
``HALF_LIFE_S`` (15 s) half-life, so the stored rate follows a diurnal curve and settles
within a few adjustments after a burst. The floors can take the stored rate over ``N`` when
there are many quiet operations, and so can errors and slow traces when they alone exceed it
(they are never sampled). A new operation keeps every trace until the next adjustment.

A trace's fate is drawn from its id, not a random generator: kept when the low 56 bits of the
trace id, as a fraction of 2**56, fall below ``p`` (W3C Trace Context level 2 makes those bits
random; OpenTelemetry's probability sampling compares the same bits), so the same trace meets
the same fate on every collector with the same ``p``. The probability is stored as a REAL
(``distributed_traces.sampling_probability``) and the decision uses that very float32, so the
weight the counts give a span (``obslib.load.weights``: 1 / p) is exactly the inverse of the
probability its trace was kept with.

State lives in memory only and survives nothing: a restart starts with no pending trace, no
remembered decision and no measured rate (spans held at a crash are lost, as in the
Collector's processor).
"""

from __future__ import annotations

import hashlib
import math
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from obslib import schema
from obslib.errors import UsageError

IDLE_S = 2.0  # a rooted trace is complete after this long without a new span
WAIT_S = 30.0  # decided this long after its first span at the latest (OTel decision_wait)
MAX_TRACES = 50_000  # traces waiting for a decision (OTel num_traces)
MAX_SPANS = 200_000  # spans waiting for a decision
DECIDED_CACHE = 100_000  # decisions remembered for late spans
ADJUST_S = 5.0  # probabilities recomputed this often, once warmed up:
FIRST_ADJUST_S = 0.25  # the first time this long after the first decision, then twice as long
HALF_LIFE_S = 15.0  # of the rates' exponentially weighted averages
FLOOR_PER_S = 1.0 / 60.0  # traces an operation keeps at least (Jaeger min-samples-per-second)
MIN_PROBABILITY = 1e-5  # Jaeger's min-sampling-probability
MAX_OPERATIONS = 10_000  # (service, operation) keys measured; more share one key
OTHER = ("(other)", "(other)")
FORGET_S = 600.0  # an operation unseen this long is forgotten

KEPT_REASONS = ("error", "slow", "sampled")
DROPPED_REASONS = ("sampled",)
TRIGGERS = ("complete", "waited", "cap", "shutdown")
_SPAN_P = schema.SAMPLING_PROBABILITY


def as_stored(p: float) -> float:
    """``p`` as the REAL column stores it (float32), back as a Python float."""
    return struct.unpack("f", struct.pack("f", p))[0]


def trace_fraction(trace_id: str) -> float:
    """The trace's place in [0, 1): its id's low 56 bits over 2**56 (hex ids, as the
    receiver stores them); another id's hash, for ids that are not hex."""
    try:
        return int(trace_id[-14:], 16) / 2.0**56
    except ValueError:
        digest = hashlib.blake2b(trace_id.encode(), digest_size=7).digest()
        return int.from_bytes(digest, "big") / 2.0**56


@dataclass
class Decision:
    """One trace decided: kept (with ``probability``) or dropped, why, and what ended its
    wait; ``spans`` are its rows (each kept one carrying the probability)."""

    trace_id: str
    kept: bool
    probability: float
    reason: str
    trigger: str
    spans: list[dict[str, Any]]


@dataclass
class _Trace:
    spans: list[dict[str, Any]]
    first: float
    last: float
    rooted: bool = False
    key: tuple[str, str] | None = None  # the root's (service, operation)
    earliest: tuple[int, tuple[str, str]] | None = None  # (start, key) of the earliest span
    error: bool = False
    slow: bool = False
    keys: set[tuple[str, str]] = field(default_factory=set)  # every span's (service, operation)


@dataclass
class _Operation:
    spans: float = 0.0  # this interval's spans and traces of sampled traces rooted here
    traces: float = 0.0
    member: float = 0.0  # this interval's sampled traces with a span of this operation
    span_rate: float | None = None  # their averages, per second
    trace_rate: float | None = None
    member_rate: float | None = None
    seen: float = 0.0
    probability: float = 1.0  # of a trace rooted here
    floor: float = 1.0  # the least probability of a trace with a span of this operation


@dataclass
class Stats:
    """What the sampler did (the receiver's ``/metrics``): traces and spans per decision and
    reason, decisions per trigger, late spans per decision."""

    traces: dict[tuple[str, str], int] = field(default_factory=dict)
    spans: dict[tuple[str, str], int] = field(default_factory=dict)
    triggers: dict[str, int] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for decision, reasons in (("kept", KEPT_REASONS), ("dropped", DROPPED_REASONS)):
            for reason in reasons:
                self.traces[(decision, reason)] = self.spans[(decision, reason)] = 0
        self.triggers.update(dict.fromkeys(TRIGGERS, 0))
        self.late.update(kept=0, dropped=0)


class Sampler:
    """The pending traces, the decisions and the rates; not thread-safe (the receiver calls it
    from its event loop only). ``clock`` gives seconds (monotonic); tests pass their own."""

    def __init__(
        self,
        spans_per_second: float,
        *,
        thresholds: Mapping[str, float] | None = None,
        idle_s: float = IDLE_S,
        wait_s: float = WAIT_S,
        max_traces: int = MAX_TRACES,
        max_spans: int = MAX_SPANS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check(spans_per_second, idle_s, wait_s, max_traces)
        self.target = float(spans_per_second)
        self.thresholds = dict(thresholds or {})
        self.idle_s, self.wait_s = idle_s, wait_s
        self.max_traces, self.max_spans = max_traces, max_spans
        self.clock = clock
        self.stats = Stats()
        self._pending: OrderedDict[str, _Trace] = OrderedDict()  # by first arrival
        self._quiet: OrderedDict[str, None] = OrderedDict()  # rooted, by last arrival
        self._decided: OrderedDict[str, float] = OrderedDict()  # id -> p (0: dropped)
        self._late: list[dict[str, Any]] = []
        self.pending_spans = 0
        self._ops: dict[tuple[str, str], _Operation] = {}
        self._whole_spans = 0.0  # this interval's spans of traces kept whole
        self.whole_rate: float | None = None
        self.kept_spans = 0.0  # this interval's stored spans, and their average
        self.kept_rate: float | None = None
        # rates are measured from the first decision on (``_decide``), first after a second
        self._interval_start = 0.0
        self._next_adjust = math.inf
        self._every = FIRST_ADJUST_S
        self._adjustments = 0

    # -- spans in ---------------------------------------------------------------------------

    @property
    def pending_traces(self) -> int:
        return len(self._pending)

    def offer(self, spans: Iterable[dict[str, Any]]) -> None:
        """Hold these span rows (the decoders' rows) until their trace is decided."""
        now = self.clock()
        pending, quiet, decided = self._pending, self._quiet, self._decided
        for row in spans:
            tid = row["trace_id"]
            trace = pending.get(tid)
            if trace is None:
                p = decided.get(tid)
                if p is not None:
                    self._late_span(row, p)
                    continue
                trace = pending[tid] = _Trace([], now, now)
            trace.spans.append(row)
            trace.last = now
            self.pending_spans += 1
            key = (row["service_name"], row["operation_name"])
            trace.keys.add(key)
            parent = row.get("parent_span_id")
            if not parent or parent == row["span_id"]:
                trace.rooted, trace.key = True, key
            start = row["start_time"]
            if trace.earliest is None or start < trace.earliest[0]:
                trace.earliest = (start, key)
            if row.get("status", "ok") != "ok":
                trace.error = True
            elif not trace.slow and row.get("span_kind") == "server":
                limit = self.thresholds.get(row["service_name"])
                if limit is not None and (row["end_time"] - start) / 1000.0 > limit:
                    trace.slow = True
            if trace.rooted:
                quiet[tid] = None
                quiet.move_to_end(tid)

    def _late_span(self, row: dict[str, Any], p: float) -> None:
        if p > 0:
            if p < 1:
                row[_SPAN_P] = p
            self._late.append(row)
            self.stats.late["kept"] += 1
            self.kept_spans += 1
        else:
            self.stats.late["dropped"] += 1

    # -- decisions out ----------------------------------------------------------------------

    def due(self) -> tuple[list[Decision], list[dict[str, Any]]]:
        """The traces whose wait is over (complete, waited out, or over a cap), decided, and
        the late spans of traces kept earlier: ``(decisions, late_rows)``."""
        now = self.clock()
        if now >= self._next_adjust:
            self._adjust(now)
        out: list[Decision] = []
        pending, quiet = self._pending, self._quiet
        while quiet:
            tid = next(iter(quiet))
            if now - pending[tid].last < self.idle_s:
                break
            out.append(self._decide(tid, "complete"))
        while pending:
            tid = next(iter(pending))
            if now - pending[tid].first < self.wait_s:
                break
            out.append(self._decide(tid, "waited"))
        while pending and (len(pending) > self.max_traces or self.pending_spans > self.max_spans):
            out.append(self._decide(next(iter(pending)), "cap"))
        late, self._late = self._late, []
        return out, late

    def drain(self) -> tuple[list[Decision], list[dict[str, Any]]]:
        """Decide every waiting trace now (the receiver is stopping)."""
        out = [self._decide(tid, "shutdown") for tid in list(self._pending)]
        late, self._late = self._late, []
        return out, late

    def _decide(self, tid: str, trigger: str) -> Decision:
        if self._next_adjust == math.inf:
            self._interval_start = self.clock()
            self._next_adjust = self._interval_start + FIRST_ADJUST_S
        trace = self._pending.pop(tid)
        self._quiet.pop(tid, None)
        self.pending_spans -= len(trace.spans)
        n = len(trace.spans)
        if trace.error or trace.slow:
            kept, p, reason = True, 1.0, "error" if trace.error else "slow"
            self._whole_spans += n
        else:
            now = self.clock()
            op = self._operation(trace.key or (trace.earliest[1] if trace.earliest else OTHER))
            op.spans += n
            op.traces += 1
            op.seen = now
            p = op.probability
            for key in trace.keys:  # a quiet operation anywhere in the trace lifts its p
                member = self._operation(key)
                member.member += 1
                member.seen = now
                p = max(p, member.floor)
            kept, reason = trace_fraction(tid) < p, "sampled"
        decision = "kept" if kept else "dropped"
        self.stats.traces[(decision, reason)] += 1
        self.stats.spans[(decision, reason)] += n
        self.stats.triggers[trigger] += 1
        self._decided[tid] = p if kept else 0.0
        if len(self._decided) > DECIDED_CACHE:
            self._decided.popitem(last=False)
        if kept:
            self.kept_spans += n
            if p < 1:
                for row in trace.spans:
                    row[_SPAN_P] = p
        return Decision(tid, kept, p if kept else 0.0, reason, trigger, trace.spans)

    def _operation(self, key: tuple[str, str]) -> _Operation:
        op = self._ops.get(key)
        if op is None:
            if len(self._ops) >= MAX_OPERATIONS:
                key = OTHER
                op = self._ops.get(key)
            if op is None:
                op = self._ops[key] = _Operation()
        return op

    # -- the rates --------------------------------------------------------------------------

    def _adjust(self, now: float) -> None:
        """Fold this interval's counts into the averages and recompute every probability."""
        elapsed = max(now - self._interval_start, 1e-3)
        self._adjustments += 1  # while warming up, a running mean of the intervals so far
        alpha = max(1.0 - 0.5 ** (elapsed / HALF_LIFE_S), 1.0 / self._adjustments)

        def average(old: float | None, count: float) -> float:
            rate = count / elapsed
            return rate if old is None else old + alpha * (rate - old)

        self.whole_rate = average(self.whole_rate, self._whole_spans)
        self.kept_rate = average(self.kept_rate, self.kept_spans)
        self._whole_spans = self.kept_spans = 0.0
        for key, op in list(self._ops.items()):
            op.span_rate = average(op.span_rate, op.spans)
            op.trace_rate = average(op.trace_rate, op.traces)
            op.member_rate = average(op.member_rate, op.member)
            op.spans = op.traces = op.member = 0.0
            rate = op.member_rate
            op.floor = as_stored(min(1.0, FLOOR_PER_S / rate)) if rate else 1.0
            if now - op.seen > FORGET_S:
                del self._ops[key]
        budget = max(self.target - self.whole_rate, 0.0)
        rates = {k: op.span_rate or 0.0 for k, op in self._ops.items()}
        for key, p in share(budget, rates).items():
            op = self._ops[key]
            floor = min(1.0, FLOOR_PER_S / op.trace_rate) if op.trace_rate else 1.0
            op.probability = as_stored(min(1.0, max(p, floor, MIN_PROBABILITY)))
        self._interval_start = now
        self._every = min(ADJUST_S, self._every * 2)
        self._next_adjust = now + self._every

    def probabilities(self) -> dict[tuple[str, str], float]:
        """The current probability of every operation measured."""
        return {k: op.probability for k, op in self._ops.items()}


def share(budget: float, rates: Mapping[Any, float]) -> dict[Any, float]:
    """Max-min fair shares of ``budget`` (spans/s) between keys offering ``rates`` (spans/s),
    as probabilities: a key offering less than an equal share keeps everything (1.0) and
    leaves the rest to the others, which get ``share / rate`` each (water-filling)."""
    out: dict[Any, float] = {}
    left, remaining = budget, len(rates)
    for key, rate in sorted(rates.items(), key=lambda kv: kv[1]):
        fair = left / remaining
        if rate <= fair:
            out[key] = 1.0
            left -= rate
        else:
            out[key] = fair / rate
            left -= fair
        remaining -= 1
    return out


def check(spans_per_second: float, idle_s: float, wait_s: float, max_traces: int) -> None:
    """A UsageError for settings the sampler cannot run with."""
    if not (spans_per_second > 0 and math.isfinite(spans_per_second)):
        raise UsageError("spans-per-second must be a positive number")
    if not (0 <= idle_s <= wait_s and math.isfinite(wait_s)):
        raise UsageError("the trace idle time must be between 0 and the decision wait")
    if max_traces < 1:
        raise UsageError("max-pending-traces must be at least 1")
