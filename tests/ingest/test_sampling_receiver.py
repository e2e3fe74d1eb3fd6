"""A day of the demo's traffic (the incident day) sent through the real receiver, ``obslib
collect --sampling adaptive`` at about 10 % of what it is sent, against the same spans stored
whole: every SLI count and burn rate of the sampled day agrees with the whole day's within
four Horvitz-Thompson standard errors, and the bad events are exact.

Why four standard errors: each stored span counts 1 / p (``load.weights``), an unbiased
estimate of the whole count whose variance is ``sum((1 - p) / p**2 * y**2)`` over the stored
traces (``y``: the trace's spans in the count); the test computes it from the stored traces
themselves, per service, SLO threshold and hour. |error| <= 4 SE fails by chance about once in
16,000 comparisons for a normal error; a missing or inverted weight is off by tens of SEs.
The errors and slow traces are kept whole (p = 1), so ``total - good`` must be exact."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psycopg
import pytest
import requests

from obslib import load
from obslib.demo import topology as topo
from obslib.ingest import batch, write_spans
from obslib.load import weights
from obslib.slo import budgets
from obslib.storage import db
from obslib.storage.migrate import Migrator
from tests.ingest.demo_otlp import PB, demo_hours
from tests.ingest.demo_otlp import requests as otlp_requests
from tests.ingest.test_receiver import collector
from tests.pg import MIGRATIONS, scratch_database

DAY = 12  # the incident's day: errors and slow traces from 14:05
PER_DAY = 3_000  # traces a day: ~40,000 spans
PACE = 2_500  # spans a second sent (a loaded machine may send slower: more is then kept)
TARGET = PACE // 10  # stored spans a second: 10 %
SIGMAS = 4.0
MIN_SAMPLED = 20  # counts compared: at least this many stored traces kept with p < 1
BUSY = ("api-gateway", "auth-service", "domain-service")  # enough of them in any day
INTERVALS = {"1d": "1 day", "6h": "6 hours"}


@dataclass
class Run:
    full: str  # every span, written directly
    kept: str  # what the sampling receiver stored
    spans: pd.DataFrame
    metrics: dict
    seconds: float
    lo: pd.Timestamp
    hi: pd.Timestamp


@pytest.fixture(scope="module")
def run(server_url: str):
    with scratch_database(server_url) as full, scratch_database(server_url) as kept:
        for url in (full, kept):
            Migrator(url, MIGRATIONS).up()
            with batch(url) as b:
                b.slos(topo.SLOS)
        spans = demo_hours(DAY, PER_DAY)
        write_spans(spans, url=full)
        options = ("--sampling", "adaptive", "--spans-per-second", str(TARGET))
        with collector(kept, *options, "--trace-idle", "0.5", "--decision-wait", "5") as c:
            began = time.monotonic()
            sent = 0
            with requests.Session() as session:
                for n, body in otlp_requests(spans):
                    ahead = began + sent / PACE - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                    answer = session.post(c.base + "/v1/traces", data=body, headers=PB, timeout=30)
                    assert answer.status_code == 200, answer.text
                    sent += n
            seconds = time.monotonic() - began
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # every trace decided and written
                m = c.metrics()
                held = sum(
                    m[(f"obslib_sampler_{g}", ())] for g in ("pending_spans", "outbox_spans")
                )
                if held == 0 and m[("obslib_collector_pending_rows", ())] == 0:
                    break
                time.sleep(0.2)
            time.sleep(0.5)  # the last group's commit
            metrics = c.metrics()
            code, _ = c.stop()
            assert code == 0
        lo = spans["start_time"].min().floor("h")
        hi = spans["start_time"].max().floor("h") + pd.Timedelta(hours=1)
        yield Run(full, kept, spans, metrics, seconds, lo, hi)
        db.close_adbc_reads()


def standard_errors(url: str, lo, hi, thresholds: list[float], bucket: str) -> pd.DataFrame:
    """Per service and ``bucket``: the HT standard error (``weights.standard_error``) of
    ``total``, ``ok`` and each ``fast_<i>``, from the stored traces (each with its
    probability and its server spans in the count), and ``sampled``: how many stored traces
    were kept with a probability under 1."""
    fast = "".join(
        f", count(*) FILTER (WHERE duration_ms <= {float(t)!r}) AS fast_{i}"
        for i, t in enumerate(thresholds)
    )
    sql = (
        "SELECT trace_id, service_name, date_bin(%s::interval, start_time, TIMESTAMPTZ"
        " '2000-01-01') AS bucket, sampling_probability::float8 AS p, count(*) AS total,"
        f" count(*) FILTER (WHERE status = 'ok') AS ok{fast} FROM distributed_traces"
        " WHERE span_kind = 'server' AND start_time >= %s AND start_time < %s GROUP BY 1, 2, 3, 4"
    )
    with psycopg.connect(db.libpq_url(url)) as conn:
        cur = conn.execute(sql, (bucket, lo.to_pydatetime(), hi.to_pydatetime()))
        rows = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    counts = ["total", "ok", *(f"fast_{i}" for i in range(len(thresholds)))]
    se = rows.groupby(["service_name", "bucket"]).apply(
        lambda g: pd.Series(
            {
                **{c: weights.standard_error(g["p"], g[c]) for c in counts},
                "sampled": float((g["p"] < 1).sum()),
            }
        )
    )
    se.index = se.index.set_levels(pd.to_datetime(se.index.levels[1], utc=True), level=1)
    return se


def test_the_receiver_stores_about_a_tenth_and_every_failing_trace(run: Run) -> None:
    """Stored spans near 10 % of those sent (the failing and slow traces come on top), every
    trace with a failing span stored whole, the decisions counted in /metrics; weighted by
    1 / p (``load.services`` counts traffic so), the stored spans estimate all those sent."""
    with psycopg.connect(db.libpq_url(run.kept)) as conn:
        stored = conn.execute("SELECT count(*) FROM distributed_traces").fetchone()[0]
    share = stored / len(run.spans)
    estimate = load.services(run.lo, run.hi, url=run.kept)["spans"].sum()
    assert abs(estimate / len(run.spans) - 1) < 0.1, (estimate, len(run.spans))
    m = run.metrics
    spans = {
        (dict(k)["decision"], dict(k)["reason"]): v
        for (name, k), v in m.items()
        if name == "obslib_sampler_spans_total"
    }
    assert 0.04 < share < 0.4, (share, len(run.spans) / run.seconds, spans)
    failing = set(run.spans.loc[run.spans["status"] != "ok", "trace_id"])
    with psycopg.connect(db.libpq_url(run.kept)) as conn:
        ids = {r[0] for r in conn.execute("SELECT DISTINCT trace_id FROM distributed_traces")}
        whole = conn.execute(
            "SELECT count(*) FROM distributed_traces WHERE trace_id = ANY(%s)", (list(failing),)
        ).fetchone()[0]
    assert failing <= ids
    assert whole == run.spans["trace_id"].isin(failing).sum()
    traces = {
        (dict(k)["decision"], dict(k)["reason"]): v
        for (name, k), v in m.items()
        if name == "obslib_sampler_traces_total"
    }
    assert traces[("kept", "error")] == len(failing)
    assert traces[("dropped", "sampled")] > 0 and traces[("kept", "sampled")] > 0
    assert traces[("kept", "slow")] > 0  # the incident's slow requests
    assert sum(traces.values()) == run.spans["trace_id"].nunique()
    assert m[("obslib_sampler_target_spans_per_second", ())] == TARGET


@pytest.mark.parametrize(
    ("bucket", "least"),
    [("1d", 15), ("6h", 15)],
    ids=["per service and day", "per service and 6 hours"],
)
def test_sli_counts_of_the_sampled_day_agree_within_four_standard_errors(
    run: Run, bucket: str, least: int
) -> None:
    """Per service, SLO threshold and bucket: ``total``, ``ok`` and ``fast`` of the sampled
    spans (weighted) against every span: within 4 HT standard errors; ``total - ok`` and, at
    the service's own latency threshold, ``total - fast`` (failing or slow server spans)
    exactly. An hour is compared only when it holds at least
    ``MIN_SAMPLED`` traces kept with p < 1: with a handful (or none), the error is a few
    traces' weight and its standard error, estimated from those few, means little (the
    normal approximation needs many). The busy services' days all have enough; a service
    called in a few traces only (dns-resolver) has not: its SLO on sampled data is as good
    as the few traces sampled."""
    slos = load.enabled_slos(url=run.full)
    exact = load.slo_counts(slos, run.lo, run.hi, bucket=bucket, url=run.full)
    sampled = load.slo_counts(slos, run.lo, run.hi, bucket=bucket, url=run.kept)
    thresholds = sorted(set(slos["latency_threshold_ms"].dropna()))
    latency = slos.dropna(subset=["latency_threshold_ms"])
    own = dict(zip(latency["service_name"], latency["latency_threshold_ms"], strict=True))
    se = standard_errors(run.kept, run.lo, run.hi, thresholds, INTERVALS[bucket])
    key = ["service_name", "bucket", "threshold"]
    both = exact.merge(sampled, on=key, how="left", suffixes=("", "_est"))
    both = both.fillna({c: 0.0 for c in ("total_est", "ok_est", "fast_est")})
    assert len(both) == len(exact) and sampled["total"].dtype == "float64"
    checked = 0
    for row in both.itertuples(index=False):
        where = (row.service_name, row.bucket)
        errors = se.loc[where] if where in se.index else None
        assert abs((row.total_est - row.ok_est) - (row.total - row.ok)) < 1e-6
        if own.get(row.service_name) == row.threshold:  # slow server spans: kept whole
            assert abs((row.total_est - row.fast_est) - (row.total - row.fast)) < 1e-6
        if errors is None or errors["sampled"] < MIN_SAMPLED:
            assert bucket != "1d" or row.service_name not in BUSY, row.service_name
            continue
        fast = "total" if np.isnan(row.threshold) else f"fast_{thresholds.index(row.threshold)}"
        for col, se_col in (("total", "total"), ("ok", "ok"), ("fast", fast)):
            if col == "fast" and np.isnan(row.threshold):
                continue
            bound = SIGMAS * (0.0 if errors is None else float(errors[se_col])) + 1e-6
            got, want = getattr(row, f"{col}_est"), getattr(row, col)
            assert abs(got - want) <= bound, (row.service_name, row.bucket, col, got, want, bound)
            checked += 1
    assert checked >= least


def test_burn_rates_of_the_sampled_day_agree_within_the_sampling_error(run: Run) -> None:
    """Each SLO's burn rate over the day (of a service with enough sampled traces): the bad
    events are exact, so the relative error is that of the weighted total, within 4 of its
    standard errors."""
    slos = load.enabled_slos(url=run.full)
    thresholds = sorted(set(slos["latency_threshold_ms"].dropna()))
    exact = load.slo_counts(slos, run.lo, run.hi, bucket="1d", url=run.full)
    sampled = load.slo_counts(slos, run.lo, run.hi, bucket="1d", url=run.kept)
    se_day = standard_errors(run.kept, run.lo, run.hi, thresholds, "1 day").droplevel(1)
    compared = set()
    for slo in slos.to_dict("records"):
        if se_day.loc[slo["service_name"], "sampled"] < MIN_SAMPLED:
            continue  # as above: too few sampled traces for a meaningful standard error
        a = budgets.sli_series(exact, slo).sum()
        b = budgets.sli_series(sampled, slo).sum()
        target = budgets.good_target(slo)
        want = budgets.burn_rate(a["total"] - a["good"], a["total"], target)
        got = budgets.burn_rate(b["total"] - b["good"], b["total"], target)
        relative = SIGMAS * se_day.loc[slo["service_name"], "total"] / a["total"]
        if relative >= 1:
            continue  # a total that could be 0: no bound on the burn rate
        assert abs(got - want) <= want * relative / (1 - relative) + 1e-9, slo["slo_name"]
        compared.add(slo["service_name"])
    assert compared >= set(BUSY)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--sampling", "adaptive"), "--sampling adaptive needs --spans-per-second N"),
        (("--spans-per-second", "10"), "spans-per-second needs --sampling adaptive"),
        (("--sampling", "adaptive", "--spans-per-second", "0"), "must be a positive number"),
    ],
    ids=["adaptive without a rate", "a rate without adaptive", "a zero rate"],
)
def test_collect_refuses_bad_sampling_settings(args: tuple[str, ...], message: str) -> None:
    from tests.conftest import run_cli

    done = run_cli("collect", "--port", "0", *args, timeout=60)
    assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1


def test_on_sigterm_every_waiting_trace_is_decided_and_the_kept_ones_stored(
    migrated_db: str,
) -> None:
    """Traces still waiting for their decision at SIGTERM are decided then (trigger
    ``shutdown``): the failing one is stored whole before the receiver exits."""
    spans = demo_hours(DAY, PER_DAY, first_hour=14, hours=1)  # the incident's first hour
    failing = set(spans.loc[spans["status"] != "ok", "trace_id"])
    assert failing
    options = ("--sampling", "adaptive", "--spans-per-second", "1")
    with collector(migrated_db, *options, "--trace-idle", "60", "--decision-wait", "60") as c:
        for _, body in otlp_requests(spans):
            assert c.post("/v1/traces", body, PB).status_code == 200
        m = c.metrics()
        assert m[("obslib_sampler_pending_traces", ())] == spans["trace_id"].nunique()
        code, out = c.stop()
    assert code == 0 and "spans" in out
    with psycopg.connect(db.libpq_url(migrated_db)) as conn:
        stored = {r[0] for r in conn.execute("SELECT DISTINCT trace_id FROM distributed_traces")}
    assert failing <= stored
