"""The adaptive tail sampler (obslib.ingest.sampling) on a clock of the test's own: which traces
are kept and why, when a trace is decided, the caps, the stored rate as traffic changes, and
the Horvitz-Thompson weights that make the counts of what is kept estimate all traffic."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from obslib.errors import UsageError
from obslib.ingest import sampling
from obslib.ingest.sampling import Sampler, as_stored, share, trace_fraction
from obslib.load import weights

T0_US = 1_700_000_000_000_000


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def trace(
    rng: random.Random,
    service: str = "api",
    operation: str = "GET /",
    spans: int = 3,
    *,
    status: str = "ok",
    root_ms: float = 10.0,
    child_ms: float = 5.0,
    child_kind: str = "client",
    rooted: bool = True,
    child_operation: str | None = None,
) -> list[dict]:
    """Span rows of one trace, as the decoders give them (times in microseconds)."""
    tid = f"{rng.getrandbits(128):032x}"
    root = f"{rng.getrandbits(64):016x}"
    rows = [
        {
            "trace_id": tid,
            "span_id": root,
            "parent_span_id": None if rooted else f"{rng.getrandbits(64):016x}",
            "service_name": service,
            "operation_name": operation,
            "span_kind": "server",
            "start_time": T0_US,
            "end_time": T0_US + int(root_ms * 1000),
            "status": "ok",
        }
    ]
    for i in range(spans - 1):
        rows.append(
            {
                "trace_id": tid,
                "span_id": f"{rng.getrandbits(64):016x}",
                "parent_span_id": root,
                "service_name": f"{service}-dep",
                "operation_name": child_operation if child_operation and i == 0 else f"call {i}",
                "span_kind": child_kind,
                "start_time": T0_US + 100,
                "end_time": T0_US + 100 + int(child_ms * 1000),
                "status": status if i == 0 else "ok",
            }
        )
    return rows


def decide_one(rows: list[dict], **kw) -> sampling.Decision:
    clock = Clock()
    s = Sampler(1000, clock=clock, **kw)
    s.offer(rows)
    clock.now += sampling.IDLE_S
    (decision,), _ = s.due()
    return decision


KEEP_CASES = {
    "a trace with a failing span is kept whole with probability 1": (
        {"status": "error"},
        {},
        (True, 1.0, "error"),
    ),
    "a trace with a timed-out span is kept as an error": (
        {"status": "timeout"},
        {},
        (True, 1.0, "error"),
    ),
    "a server span slower than its service's latency SLO keeps its trace": (
        {"root_ms": 300.5},
        {"api": 300.0},
        (True, 1.0, "slow"),
    ),
    "a server span exactly at the threshold is fast (the SLI counts <= as good)": (
        {"root_ms": 300.0},
        {"api": 300.0},
        (True, 1.0, "sampled"),
    ),
    "a slow client span does not make its trace slow (SLIs count server spans)": (
        {"child_ms": 900.0, "child_kind": "client"},
        {"api-dep": 300.0},
        (True, 1.0, "sampled"),
    ),
    "a slow server span of another service keeps the trace": (
        {"child_ms": 900.0, "child_kind": "server"},
        {"api-dep": 300.0},
        (True, 1.0, "slow"),
    ),
}


@pytest.mark.parametrize("case", list(KEEP_CASES), ids=list(KEEP_CASES))
def test_which_traces_are_kept_whole(case: str) -> None:
    """Errors and slow traces are kept with probability 1; the others are sampled (a new
    operation keeps everything until its first measurement)."""
    shape, thresholds, (kept, p, reason) = KEEP_CASES[case]
    d = decide_one(trace(random.Random(1), **shape), thresholds=thresholds)
    assert (d.kept, d.probability, d.reason) == (kept, p, reason)
    assert len(d.spans) == 3


def test_a_trace_is_decided_once_its_root_came_and_it_stayed_quiet() -> None:
    """Complete = root seen and no span for the idle time; a new span restarts the wait."""
    clock, rng = Clock(), random.Random(2)
    s = Sampler(1000, clock=clock)
    rows = trace(rng, spans=3)
    s.offer(rows[1:])  # children first, as SDKs export them (they end first)
    clock.now = 5.0
    assert s.due() == ([], []) and s.pending_traces == 1  # no root: not complete
    s.offer(rows[:1])
    clock.now = 5.0 + sampling.IDLE_S - 0.01
    assert s.due()[0] == []
    clock.now = 5.0 + sampling.IDLE_S
    (d,), _ = s.due()
    assert (d.trigger, len(d.spans), s.pending_traces, s.pending_spans) == ("complete", 3, 0, 0)


def test_a_trace_without_root_is_decided_after_the_decision_wait() -> None:
    """A trace whose root never arrives waits ``wait_s`` from its first span."""
    clock = Clock()
    s = Sampler(1000, clock=clock)
    s.offer(trace(random.Random(3), rooted=False))
    clock.now = sampling.WAIT_S - 0.01
    assert s.due()[0] == []
    clock.now = sampling.WAIT_S
    (d,), _ = s.due()
    assert d.trigger == "waited" and d.kept


def test_late_spans_follow_their_traces_decision() -> None:
    """A span of a trace decided already is kept with its probability, or dropped."""
    clock, rng = Clock(), random.Random(4)
    s = Sampler(1000, clock=clock)
    kept_rows, lost = trace(rng, status="error"), trace(rng)
    s.offer(kept_rows[:2])
    clock.now = sampling.IDLE_S
    s.due()
    s.offer(kept_rows[2:])
    _, late = s.due()
    assert late == kept_rows[2:] and s.stats.late == {"kept": 1, "dropped": 0}
    s._decided[lost[0]["trace_id"]] = 0.0  # a trace dropped earlier
    s.offer(lost[:1])
    assert s.due() == ([], []) and s.stats.late["dropped"] == 1


def test_past_the_cap_the_oldest_trace_is_decided_at_once() -> None:
    """At most ``max_traces`` wait: the oldest is decided (trigger ``cap``), none is lost."""
    clock, rng = Clock(), random.Random(5)
    s = Sampler(1000, clock=clock, max_traces=2)
    traces = [trace(rng, rooted=False) for _ in range(3)]
    for rows in traces:
        s.offer(rows)
    (d,), _ = s.due()
    assert (d.trace_id, d.trigger) == (traces[0][0]["trace_id"], "cap")
    assert s.pending_traces == 2 and s.stats.triggers["cap"] == 1


def test_drain_decides_every_waiting_trace() -> None:
    clock, rng = Clock(), random.Random(6)
    s = Sampler(1000, clock=clock)
    for _ in range(4):
        s.offer(trace(rng))
    decisions, _ = s.drain()
    assert [d.trigger for d in decisions] == ["shutdown"] * 4 and s.pending_traces == 0


SHARE_CASES = {
    "every operation under its equal share keeps everything": (
        90, {"a": 10, "b": 20}, {"a": 1.0, "b": 1.0},
    ),
    "a quiet operation keeps everything and leaves the rest to a busy one": (
        100, {"quiet": 10, "busy": 900}, {"quiet": 1.0, "busy": 0.1},
    ),
    "two busy operations split the budget equally": (
        100, {"a": 500, "b": 1000}, {"a": 0.1, "b": 0.05},
    ),
    "no budget left: nothing is shared": (0, {"a": 10}, {"a": 0.0}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(SHARE_CASES), ids=list(SHARE_CASES))
def test_the_budget_is_shared_max_min_fairly(case: str) -> None:
    budget, rates, want = SHARE_CASES[case]
    got = share(budget, rates)
    assert got == pytest.approx(want)
    assert sum(got[k] * rates[k] for k in rates) <= budget + 1e-9


def run_traffic(
    s: Sampler, clock: Clock, rng: random.Random, seconds: float, per_s: dict[str, float]
) -> tuple[int, list[sampling.Decision]]:
    """``per_s`` traces a second of each operation (3 spans each), decided as they come, for
    ``seconds``; the spans offered and every decision."""
    offered, decisions, step = 0, [], 0.1
    carry = dict.fromkeys(per_s, 0.0)
    end = clock.now + seconds
    while clock.now < end:
        for op, rate in per_s.items():
            carry[op] += rate * step
            while carry[op] >= 1:
                carry[op] -= 1
                rows = trace(rng, operation=op)
                offered += len(rows)
                s.offer(rows)
        clock.now += step
        decisions += s.due()[0]
    return offered, decisions


def kept_rate(decisions: list[sampling.Decision], seconds: float) -> float:
    return sum(len(d.spans) for d in decisions if d.kept) / seconds


def test_the_stored_rate_stays_near_the_target_as_traffic_grows_tenfold() -> None:
    """30 spans/s stored of 150 offered, then of 1,500 (a burst): within 15 % of the target
    once the averages caught up (a few half-lives), well under the burst while adapting."""
    clock, rng = Clock(), random.Random(7)
    s = Sampler(30, clock=clock)
    run_traffic(s, clock, rng, 40, {"GET /a": 25, "GET /b": 25})
    _, steady = run_traffic(s, clock, rng, 60, {"GET /a": 25, "GET /b": 25})
    assert kept_rate(steady, 60) == pytest.approx(30, rel=0.15)
    _, first = run_traffic(s, clock, rng, 10, {"GET /a": 250, "GET /b": 250})
    assert kept_rate(first, 10) < 0.5 * 1_500  # adapting: well under the burst itself
    run_traffic(s, clock, rng, 50, {"GET /a": 250, "GET /b": 250})
    _, burst = run_traffic(s, clock, rng, 30, {"GET /a": 250, "GET /b": 250})
    assert kept_rate(burst, 30) == pytest.approx(30, rel=0.15)


def test_a_quiet_operation_keeps_its_floor_beside_a_busy_one() -> None:
    """A busy operation takes the budget; one trace a minute of a quiet one is still kept
    whole (below its equal share), and one of 1 trace/s keeps at least a trace a minute."""
    clock, rng = Clock(), random.Random(8)
    s = Sampler(3, clock=clock)
    traffic = {"busy": 60, "quiet": 1 / 60, "slowish": 1}
    run_traffic(s, clock, rng, 60, traffic)
    _, decisions = run_traffic(s, clock, rng, 600, traffic)
    p = s.probabilities()
    assert p[("api", "quiet")] == 1.0
    assert p[("api", "slowish")] >= sampling.FLOOR_PER_S
    assert p[("api", "busy")] < 0.02
    kept = [d for d in decisions if d.kept]
    assert sum(1 for d in kept if d.spans[0]["operation_name"] == "quiet") >= 9


def test_errors_come_off_the_budget_first() -> None:
    """With 30 spans/s of failing traces and a target of 50, the other 300 spans/s get a
    probability that stores about 20 of them."""
    clock, rng = Clock(), random.Random(9)
    s = Sampler(50, clock=clock)
    for _ in range(600):  # 60 s at 0.1 s steps: 300 sampled + 30 error spans/s
        for _ in range(10):
            s.offer(trace(rng, operation="ok"))
        s.offer(trace(rng, operation="bad", status="error"))
        clock.now += 0.1
        s.due()
    p = s.probabilities()[("api", "ok")]
    assert p * 300 == pytest.approx(20, rel=0.1)


def test_weighted_counts_of_the_kept_traces_estimate_all_of_them() -> None:
    """Horvitz-Thompson: the kept spans, each counted 1 / p, sum to the spans offered within
    four standard errors (computed from the kept traces alone); without the weights the
    count is off by far more (a flipped or missing weight fails this)."""
    clock, rng = Clock(), random.Random(10)
    s = Sampler(60, clock=clock)
    offered, decisions = run_traffic(
        s, clock, rng, 120, {"a": 100, "b": 10, "c": 1, "d": 30}
    )  # fmt: skip
    decisions += s.drain()[0]
    kept = [d for d in decisions if d.kept]
    p = [as_stored(d.probability) for d in kept]
    y = [len(d.spans) for d in kept]
    estimate = sum(n / q for n, q in zip(y, p, strict=True))
    se = weights.standard_error(p, y)
    assert 0 < se < 0.05 * offered
    assert abs(estimate - offered) <= 4 * se
    assert abs(sum(y) - offered) > 20 * se  # the raw count is no estimate at all


def test_a_traces_fate_comes_from_its_id() -> None:
    """The low 56 bits of the id, as a fraction: the same trace, the same fate."""
    assert trace_fraction("0" * 18 + "80000000000000") == 0.5
    assert trace_fraction("f" * 32) == pytest.approx(1.0, abs=1e-15)
    assert 0 <= trace_fraction("not-hex-at-all") < 1


def test_the_probability_is_decided_as_the_column_stores_it() -> None:
    """REAL is float32: the decision uses that float, so 1 / stored p is the weight."""
    assert as_stored(0.1) != 0.1 and abs(as_stored(0.1) - 0.1) < 1e-8


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"spans_per_second": 0}, "spans-per-second must be a positive number"),
        ({"spans_per_second": float("nan")}, "spans-per-second must be a positive number"),
        ({"idle_s": 40}, "between 0 and the decision wait"),
        ({"max_traces": 0}, "max-pending-traces must be at least 1"),
    ],
    ids=["a zero target", "a NaN target", "an idle time past the wait", "no room"],
)
def test_bad_settings_are_refused(settings: dict, message: str) -> None:
    args = {"spans_per_second": 100, "idle_s": 2, "wait_s": 30, "max_traces": 10} | settings
    with pytest.raises(UsageError, match=message):
        sampling.check(**args)


def test_a_quiet_operation_deep_in_busy_traces_keeps_its_floor() -> None:
    """One trace in 300 of a busy root calls a rare dependency: a trace with it is kept with
    at least the dependency's floor (one a minute of its own rate), far above the root's p."""
    clock, rng = Clock(), random.Random(11)
    s = Sampler(1.5, clock=clock)
    kept_rare, n = [], 0
    for _ in range(6000):  # 600 s at 0.1 s steps, 6 busy traces each
        for _ in range(6):
            n += 1
            rare = n % 300 == 0
            s.offer(trace(rng, operation="busy", child_operation="rare" if rare else None))
        clock.now += 0.1
        for d in s.due()[0]:
            if d.kept and clock.now > 60 and any(r["operation_name"] == "rare" for r in d.spans):
                kept_rare.append(d.probability)
    root = s.probabilities()[("api", "busy")]
    floor = sampling.FLOOR_PER_S / (60 / 300)  # its traces/s: 0.2
    assert root < 0.01 and floor > 8 * root
    assert len(kept_rare) >= 3 and min(kept_rare) >= 0.8 * floor
