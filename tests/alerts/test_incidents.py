"""Incident facts from data: response times, the timeline, the budget an incident burned.

Hand-built incidents, spans, logs and per-minute counts with known answers; then the demo's
scripted incident, whose timeline must match its script.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from obslib import load
from obslib.alerts import incidents
from obslib.demo import events as demo_events
from obslib.demo import topology as topo

T0 = pd.Timestamp("2026-11-01 10:00", tz="UTC")
MIN = pd.Timedelta(minutes=1)


def _incidents() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "incident_id": ["A", "B", "C", "D", "E"],
            "service_name": ["api", "api", "api", "db", "api"],
            "severity": ["critical", "critical", "low", "critical", "critical"],
            "triggered_at": [T0, T0 + 60 * MIN, T0, T0, T0],
            "acknowledged_at": [T0 + 2 * MIN, T0 + 64 * MIN, pd.NaT, T0 + 10 * MIN, T0 + 9 * MIN],
            "resolved_at": [T0 + 30 * MIN, T0 + 110 * MIN, T0 + 5 * MIN, pd.NaT, T0 + 100 * MIN],
        }
    )


def test_mtta_and_mttr_are_means_over_the_incidents_that_got_there() -> None:
    """api/critical: acknowledged after 2, 4 and 9 min (MTTA 5, a mean, not the median 4),
    resolved after 30, 50 and 100 min (MTTR 60); api/low never acknowledged (MTTA NaT); db
    still open (MTTR NaT)."""
    out = incidents.mean_times(_incidents()).set_index(["service_name", "severity"])
    crit = out.loc[("api", "critical")]
    assert (crit["incidents"], crit["acknowledged"], crit["resolved"]) == (3, 3, 3)
    assert crit["mtta"] == 5 * MIN and crit["mttr"] == 60 * MIN
    low = out.loc[("api", "low")]
    assert pd.isna(low["mtta"]) and low["mttr"] == 5 * MIN
    db = out.loc[("db", "critical")]
    assert db["resolved"] == 0 and pd.isna(db["mttr"])


def _slo(**overrides) -> pd.DataFrame:
    row = {
        "service_name": "api",
        "slo_name": "availability",
        "slo_type": "availability",
        "target_value": 99.0,
        "measurement_window_hours": 24,
        "latency_threshold_ms": np.nan,
    }
    row.update(overrides)
    return pd.DataFrame([row])


def _counts(bad: dict[int, int], per_minute: int = 100) -> pd.DataFrame:
    """``per_minute`` server spans a minute from T0 - 26 h to T0 + 2 h; ``bad[m]`` failing
    at minute offset m from T0 (negative: before)."""
    offsets = range(-26 * 60, 120)
    return pd.DataFrame(
        {
            "service_name": "api",
            "bucket": [T0 + m * MIN for m in offsets],
            "total": per_minute,
            "ok": [per_minute - bad.get(m, 0) for m in offsets],
            "fast": per_minute,
            "threshold": np.nan,
        }
    )


def test_the_first_breach_is_the_first_minute_the_short_window_burns_over_1() -> None:
    """99 % over 5 minutes of 100 requests allows 5 failures: 5 in minute +3 is exactly 1x
    (no breach); 6 is over, and the breach starts at that minute."""
    d = _slo().iloc[0].to_dict()
    assert incidents.first_breach(_counts({3: 5}), d, T0, T0 + 60 * MIN) is None
    assert incidents.first_breach(_counts({3: 6}), d, T0, T0 + 60 * MIN) == T0 + 3 * MIN


def _spans(minutes: list[int], service: str = "api", status: str = "error") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "start_time": pd.to_datetime([T0 + m * MIN for m in minutes], utc=True),
            "service_name": service,
            "span_kind": "server",
            "status": status,
        }
    )


def _logs(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime([T0 + r[0] * MIN for r in rows], utc=True),
            "level": [r[1] for r in rows],
            "service_name": "api",
            "message": [r[2] for r in rows],
            "fields": [r[3] for r in rows],
        }
    )


def test_the_timeline_orders_causes_and_responses_and_states_time_to_detect() -> None:
    """Deploy at -10, errors from +2 (the first span and the SLI breach at +2), an error log
    at +3, paged at +6, acknowledged at +8, escalated at +20, resolved at +40."""
    incident = {
        "incident_id": "INC-1",
        "service_name": "api",
        "triggered_at": T0 + 6 * MIN,
        "acknowledged_at": T0 + 8 * MIN,
        "acknowledged_by": "alice",
        "resolved_at": T0 + 40 * MIN,
        "resolved_by": "bob",
        "incident_data": {
            "escalations": [{"at": (T0 + 20 * MIN).isoformat(), "level": 2, "to": "db-team"}]
        },
    }
    logs = _logs(
        [
            (-10, "info", "deploy started: api v2 -> v3", {"event": "deploy"}),
            (-30, "info", "cache warmed", None),
            (3, "error", "pool exhausted", None),
            (50, "info", "deploy started: api v3 -> v4", {"event": "deploy"}),  # after it
        ]
    )
    got = incidents.timeline(
        incident,
        errors=pd.concat([_spans([2, 2, 5, 9]), _spans([0], status="ok")]),
        logs=logs,
        counts=_counts({m: 20 for m in range(2, 12)}),
        slos=_slo(),
    )
    assert got.events["kind"].tolist() == [
        "change",
        "first_error_span",
        "sli_breach",
        "first_error_log",
        "triggered",
        "acknowledged",
        "escalated",
        "resolved",
    ]
    assert got.events["time"].tolist() == [
        T0 - 10 * MIN, T0 + 2 * MIN, T0 + 2 * MIN, T0 + 3 * MIN,
        T0 + 6 * MIN, T0 + 8 * MIN, T0 + 20 * MIN, T0 + 40 * MIN,
    ]  # fmt: skip
    assert got.first_bad == T0 + 2 * MIN
    assert got.time_to_detect == 4 * MIN
    assert (got.time_to_acknowledge, got.time_to_resolve) == (2 * MIN, 34 * MIN)
    assert "acknowledged by alice" in got.events["what"].tolist()


def test_an_incident_without_any_sign_in_the_data_has_no_detection_time() -> None:
    incident = {"incident_id": "X", "service_name": "api", "triggered_at": T0}
    got = incidents.timeline(
        incident, errors=_spans([]), logs=_logs([]), counts=_counts({}), slos=_slo()
    )
    assert got.first_bad is None and got.time_to_detect is None
    assert got.events["kind"].tolist() == ["triggered"]


def test_failures_after_the_page_are_in_the_timeline_but_not_its_first_bad_minute() -> None:
    """Paged at T0, the first failure at +5 (and the SLO breached then): the page came
    first, so there is no detection time to state (not -5 min, which would pass any
    target), while the failure stays in the timeline."""
    incident = {"incident_id": "X", "service_name": "api", "triggered_at": T0}
    got = incidents.timeline(
        incident, errors=_spans([5]), logs=_logs([]), counts=_counts({5: 50}), slos=_slo()
    )
    assert got.first_bad is None and got.time_to_detect is None
    assert set(got.events["kind"]) == {"triggered", "sli_breach", "first_error_span"}


def test_a_null_responder_reads_someone_never_nan() -> None:
    """Loaders give text NULLs as NaN, which is truthy: the names fall back all the same."""
    incident = {
        "incident_id": "X", "service_name": "api", "triggered_at": T0,
        "acknowledged_at": T0 + MIN, "acknowledged_by": np.nan,
        "resolved_at": T0 + 2 * MIN, "resolved_by": None,
    }  # fmt: skip
    got = incidents.timeline(
        incident, errors=_spans([]), logs=_logs([]), counts=_counts({}), slos=_slo()
    )
    assert got.events["what"].tolist()[1:] == ["acknowledged by someone", "resolved by someone"]


def test_budget_burned_is_the_incidents_bad_events_over_the_periods_budget() -> None:
    """A day of 100 a minute (144,000 events) at 99 % allows 1,440 bad; 10 minutes of 36
    failures inside the incident burn 360 of them: 25 %. Failures outside do not count."""
    counts = _counts({**{m: 36 for m in range(0, 10)}, -300: 50})
    out = incidents.budget_burned(counts, _slo(), T0, T0 + 30 * MIN).iloc[0]
    assert out["bad"] == 360 and out["events"] == 3000
    assert out["budget_events"] == pytest.approx(1440.0)
    assert out["burned_pct"] == pytest.approx(25.0)


def test_the_demo_incident_timeline_matches_its_script(demo_db) -> None:
    """Deploy at 14:05, the page one minute after the errors (events.detection_time), the
    rollback starting before 14:50, acknowledged 3 minutes after the page, escalated once."""
    url, _ = demo_db
    row = load.incident(demo_events.main_incident_id(), url=url).iloc[0].to_dict()
    lo = row["triggered_at"] - incidents.LOOKBACK
    hi = row["resolved_at"]
    day = load.spans(lo.normalize(), lo.normalize() + pd.Timedelta(days=1), url=url)
    slos = load.slos(services=[row["service_name"]], url=url)
    got = incidents.timeline(
        row,
        errors=load.spans(lo, hi, statuses=["error", "timeout"], url=url),
        logs=load.logs(lo, hi, services=[row["service_name"]], url=url),
        counts=load.slo_counts(slos, lo - pd.Timedelta(minutes=10), hi, url=url),
        slos=slos,
    )
    changes = got.events[got.events["kind"] == "change"]
    assert changes["time"].iloc[0] == topo.DEPLOY_AT
    assert row["triggered_at"] == demo_events.detection_time(day)
    assert got.time_to_acknowledge == 3 * MIN
    assert (got.events["kind"] == "escalated").sum() == 1
    rollbacks = changes[changes["what"].str.startswith("rollback")]
    assert len(rollbacks) == 2  # started a minute before the regression ends, finished at it
    assert rollbacks["time"].min() < demo_events.incident_window()[1]
    assert got.first_bad is not None and topo.DEPLOY_AT <= got.first_bad < row["triggered_at"]


EDGES = pd.DataFrame(
    {"caller": ["gw", "gw", "api", "api", "web"], "callee": ["api", "auth", "db", "cache", "gw"]}
)


def test_the_neighbourhood_follows_calls_both_ways_transitively() -> None:
    """web -> gw -> api -> db: web and gw wait on api (upstream), db and cache are what api
    waits on (downstream); auth is neither (gw calls it, but not because of api)."""
    got = incidents.neighbourhood(EDGES, "api")
    assert got == {
        "api": "paged",
        "gw": "upstream",
        "web": "upstream",
        "db": "downstream",
        "cache": "downstream",
    }


def _impact_spans() -> pd.DataFrame:
    rows = [  # service, operation, status, duration_ms, minute
        ("api", "list", "error", 10.0, 1),
        ("api", "list", "ok", 500.0, 2),
        ("api", "list", "ok", 300.0, 3),  # exactly the threshold: not slow
        ("api", "get", "ok", 20.0, 3),  # neither failed nor slow: left out
        ("gw", "GET /", "error", 30.0, 1),
        ("auth", "login", "error", 5.0, 1),  # failing, but not linked to api: left out
        ("api", "list", "error", 10.0, -1),  # before the window
        ("api", "list", "error", 10.0, 10),  # at the window's end: outside [start, end)
    ]
    frame = pd.DataFrame(
        rows, columns=["service_name", "operation_name", "status", "duration_ms", "minute"]
    )
    frame["start_time"] = [T0 + m * MIN for m in frame.pop("minute")]
    frame["span_kind"] = "server"
    return frame


def test_impact_counts_failed_and_slow_calls_of_linked_services_in_the_window() -> None:
    slos = _slo(slo_name="p99-300", slo_type="latency", latency_threshold_ms=300.0)
    got = incidents.impact(_impact_spans(), EDGES, "api", slos, T0, T0 + 10 * MIN)
    assert list(got.columns) == list(incidents.CALL_COLUMNS)
    assert got[["service_name", "relation", "operation_name", "calls", "failed_calls"]].to_dict(
        "records"
    ) == [
        {"service_name": "api", "relation": "paged", "operation_name": "list", "calls": 3,
         "failed_calls": 1},
        {"service_name": "gw", "relation": "upstream", "operation_name": "GET /", "calls": 1,
         "failed_calls": 1},
    ]  # fmt: skip
    assert got["slow_calls"].iloc[0] == 1  # 500 ms over 300; 300 ms is not over it
    assert got["slow_over_ms"].iloc[0] == 300.0  # the threshold each row was judged on
    assert np.isnan(got["slow_calls"].iloc[1])  # gw has no latency SLO: unknown, not 0
    assert np.isnan(got["slow_over_ms"].iloc[1])
    assert got["first_failure"].iloc[0] == T0 + MIN and got["last_failure"].iloc[0] == T0 + MIN


def test_impact_of_a_quiet_window_is_empty_with_its_columns() -> None:
    got = incidents.impact(_impact_spans(), EDGES, "api", _slo(), T0 + 20 * MIN, T0 + 30 * MIN)
    assert got.empty and "relation" in got.columns


def test_a_breach_on_fewer_events_than_min_events_is_no_evidence() -> None:
    """3 requests a minute, 1 failing at +3: 1 of 15 over 5 minutes burns 6.7x on a 99 %
    SLO, a breach; with min_events=16 the window holds too few events to say so, with 15
    exactly enough."""
    d = _slo().iloc[0].to_dict()
    counts = _counts({3: 1}, per_minute=3)
    window = (T0, T0 + 30 * MIN)
    assert incidents.first_breach(counts, d, *window) == T0 + 3 * MIN
    assert incidents.first_breach(counts, d, *window, min_events=15) == T0 + 3 * MIN
    assert incidents.first_breach(counts, d, *window, min_events=16) is None


@pytest.mark.parametrize(
    "resolved",
    [T0 + 30 * MIN, pd.NaT, T0, T0 + pd.Timedelta(seconds=10)],
    ids=[
        "resolved half an hour later",
        "still open",
        "resolved the instant it paged",
        "resolved ten seconds after the page",
    ],
)
def test_what_happened_at_the_page_instant_is_inside_the_incidents_window(resolved) -> None:
    """A failing request, an error log and a deploy at exactly the page instant are in the
    timeline, and the failure is its first bad minute (detected at once, not missed): the
    window is [page - LOOKBACK, window_end) and window_end is always after the page."""
    incident = {"incident_id": "X", "service_name": "api", "triggered_at": T0}
    incident["resolved_at"] = resolved
    assert incidents.window_end(incident) > T0
    logs = _logs([(0, "error", "pool exhausted", None), (0, "info", "deploy v3", None)])
    got = incidents.timeline(
        incident, errors=_spans([0]), logs=logs, counts=_counts({}), slos=_slo()
    )
    at_page = got.events[got.events["time"] == T0]
    assert {"first_error_span", "first_error_log", "change", "triggered"} <= set(at_page["kind"])
    assert got.first_bad == T0 and got.time_to_detect == pd.Timedelta(0)


@pytest.mark.parametrize(
    ("resolved", "end"),
    [
        (T0 + 30 * MIN, T0 + 30 * MIN),
        (pd.NaT, T0 + incidents.LOOKBACK),
        (None, T0 + incidents.LOOKBACK),
        (T0, T0 + MIN),
        (T0 - 5 * MIN, T0 + MIN),
    ],
    ids=[
        "a resolved incident's window ends at its resolution",
        "an open one's an hour after the page",
        "a missing resolution is an open incident",
        "one resolved as it paged keeps the page's minute",
        "one resolved before its page (bad data) keeps the page's minute too",
    ],
)
def test_an_incidents_window_ends_at_its_resolution_and_after_its_page(resolved, end) -> None:
    incident = {"incident_id": "X", "triggered_at": T0, "resolved_at": resolved}
    assert incidents.window_end(incident) == end


@pytest.mark.parametrize(
    ("thresholds", "slow"),
    [
        ([("api", 300.0), ("api", 500.0)], 3),
        ([("api", 500.0), ("api", 300.0)], 3),
        ([("api", 300.0)], 3),
        ([("api", 500.0)], 1),
        ([("gw", 100.0), ("api", 500.0)], 1),
        ([("gw", 100.0)], None),
    ],
    ids=[
        "two latency SLOs (300, 500 ms): slow is over the lowest, 400 ms between them is slow",
        "the same two in the other order: the same count",
        "one at 300 ms: 400, 500 and 600 ms are slow, 300 ms exactly is not",
        "one at 500 ms: only 600 ms is slow, 500 ms exactly is not",
        "another service's lower threshold does not apply to this one",
        "no latency SLO of the service: no slow count at all",
    ],
)
def test_a_slow_call_is_over_the_lowest_latency_threshold_of_its_service(thresholds, slow) -> None:
    """Requests of 250, 300, 400, 500 and 600 ms in one operation of api, none failing;
    api also has an availability SLO, which has no threshold and takes no part."""
    slos = pd.concat(
        [
            _slo(service_name=service, slo_name=f"p99-{ms:g}", slo_type="latency",
                 latency_threshold_ms=ms)
            for service, ms in thresholds
        ]
        + [_slo()],
        ignore_index=True,
    )  # fmt: skip
    durations = [250.0, 300.0, 400.0, 500.0, 600.0]
    spans = pd.DataFrame(
        {
            "service_name": "api",
            "operation_name": "list",
            "status": "ok",
            "duration_ms": durations,
            "start_time": [T0 + MIN] * len(durations),
            "span_kind": "server",
        }
    )
    got = incidents.impact(spans, EDGES, "api", slos, T0, T0 + 10 * MIN)
    if slow is None:  # nobody said what slow is for api, and nothing failed: no row
        assert got.empty
    else:
        assert got[["operation_name", "calls", "failed_calls", "slow_calls"]].to_dict(
            "records"
        ) == [{"operation_name": "list", "calls": 5, "failed_calls": 0, "slow_calls": slow}]


# -- the postmortem's facts: requests per minute, errors per service, budget, trigger -------


def _requests(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (seconds after T0, service, span kind, status) as spans."""
    return pd.DataFrame(
        {
            "start_time": pd.to_datetime([T0 + pd.Timedelta(seconds=r[0]) for r in rows], utc=True),
            "service_name": [r[1] for r in rows],
            "span_kind": [r[2] for r in rows],
            "status": [r[3] for r in rows],
        },
        columns=["start_time", "service_name", "span_kind", "status"],
    )


@pytest.mark.parametrize(
    ("rows", "step", "expected"),
    [
        (
            [(0, "api", "server", "ok"), (59, "api", "server", "error"),
             (60, "api", "server", "timeout")],
            MIN,
            [(0, 2, 1), (1, 1, 1)],
        ),
        (
            [(5, "api", "client", "error"), (5, "db", "server", "error"),
             (5, "api", "server", "ok")],
            MIN,
            [(0, 1, 0)],
        ),
        (
            [(0, "api", "server", "ok"), (299, "api", "server", "error"),
             (300, "api", "server", "ok"), (900, "api", "server", "error")],
            5 * MIN,
            [(0, 2, 1), (5, 1, 0), (15, 1, 1)],
        ),
        ([(5, "db", "server", "error")], MIN, []),
    ],
    ids=[
        "requests and failures are counted per minute, anything but ok failing",
        "a client span or another service's span is not a request of the service",
        "a 5-minute step counts into bars that start on the step, empty bars left out",
        "no request at all is an empty frame with the chart's columns",
    ],
)  # fmt: skip
def test_failures_per_minute_count_the_services_server_requests(rows, step, expected) -> None:
    got = incidents.failures_per_minute(_requests(rows), "api", step)
    assert list(got.columns) == list(incidents.MINUTE_COLUMNS)
    assert [((m - T0) // MIN, r, f) for m, r, f in got.itertuples(index=False)] == expected


def _statuses(per_service: dict[str, list[str]]) -> pd.DataFrame:
    rows = [(s, status) for s, statuses in per_service.items() for status in statuses]
    return pd.DataFrame(rows, columns=["service_name", "status"])


@pytest.mark.parametrize(
    ("window", "baseline", "expected"),
    [
        (
            {"api": ["ok", "error", "error", "ok"], "db": ["ok", "timeout", "ok"]},
            {"api": ["ok", "ok", "error", "ok"], "db": ["ok"]},
            [("api", 4, 2, 0.5, 4, 1, 0.25), ("db", 3, 1, 0.3333, 1, 0, 0.0)],
        ),
        (
            {"api": ["ok"], "db": ["error"]},
            {"api": ["ok", "ok"]},
            [("db", 1, 1, 1.0, 0, 0, None), ("api", 1, 0, 0.0, 2, 0, 0.0)],
        ),
        (
            {"api": ["error"], "db": ["ok", "ok"], "web": ["ok"]},
            {"gone": ["error"]},
            [("api", 1, 1, 1.0, 0, 0, None), ("db", 2, 0, 0.0, 0, 0, None),
             ("web", 1, 0, 0.0, 0, 0, None)],
        ),
    ],
    ids=[
        "error rate is failed over spans, a timeout failing like an error",
        "most failed first; silent the day before is 0 spans there and a blank rate",
        "ties go to most spans; a service only in the day before is left out",
    ],
)  # fmt: skip
def test_errors_by_service_compare_the_window_with_the_day_before(
    window, baseline, expected
) -> None:
    got = incidents.errors_by_service(_statuses(window), _statuses(baseline))
    assert list(got.columns) == [
        "service_name", "spans", "failed", "error_rate",
        "spans_day_before", "failed_day_before", "error_rate_day_before",
    ]  # fmt: skip
    rates = got[["error_rate", "error_rate_day_before"]].round(4).astype(object)
    got[rates.columns] = rates.where(rates.notna(), None)  # a blank rate reads None
    assert [tuple(r) for r in got.itertuples(index=False)] == expected
    assert all(got[c].dtype == "int64" for c in ("spans", "failed", "spans_day_before"))


def _slos(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """SLOs as (service, name, type): 99 % over a day, latency at 300 ms."""
    return pd.concat(
        [_slo(service_name=s, slo_name=n, slo_type=t, latency_threshold_ms=300.0)
         for s, n, t in rows],
        ignore_index=True,
    )  # fmt: skip


def _counts_of(bad: dict[str, dict[int, int]]) -> pd.DataFrame:
    """``_counts`` for each service, ``bad[service]`` failing at minute offsets."""
    return pd.concat(
        [_counts(minutes).assign(service_name=s) for s, minutes in bad.items()], ignore_index=True
    )


def test_an_incidents_budget_covers_the_linked_slos_that_lost_events_and_its_own() -> None:
    """api (paged) lost nothing and stays (a postmortem says so); gw (upstream) lost 36 of
    its 1,440 allowed (2.5 %) and db (downstream) 720 (50 %), most burned first; cache
    (downstream) lost nothing and auth is not linked: both left out."""
    slos = _slos([(s, "availability", "availability") for s in ("api", "gw", "db", "cache",
                                                              "auth")])  # fmt: skip
    counts = _counts_of({"api": {}, "gw": {1: 36}, "db": {2: 720}, "cache": {}, "auth": {3: 99}})
    got = incidents.incident_budget(counts, slos, EDGES, "api", T0, T0 + 30 * MIN)
    assert got["service_name"].tolist() == ["db", "gw", "api"]
    assert got["burned_pct"].tolist() == pytest.approx([50.0, 2.5, 0.0])
    assert got["covered"].tolist() == [1.0, 1.0, 1.0]  # no data start given: the whole period


@pytest.mark.parametrize(
    ("data_start", "covered"),
    [
        (None, 1.0),
        (T0 + 30 * MIN - pd.Timedelta(days=2), 1.0),
        (T0 + 30 * MIN - pd.Timedelta(hours=12), 0.5),
        (T0 + 30 * MIN, 0.0),
    ],
    ids=[
        "no first span known: the whole period",
        "data from before the period began: the whole period",
        "data from half a day before a one-day period ends: half of it",
        "data starting at the end: none of it",
    ],
)
def test_a_budget_says_how_much_of_its_period_the_data_covers(data_start, covered) -> None:
    slos = _slos([("api", "availability", "availability")])
    counts = _counts_of({"api": {1: 1}})
    got = incidents.incident_budget(
        counts, slos, EDGES, "api", T0, T0 + 30 * MIN, data_start=data_start
    )
    assert got["covered"].tolist() == pytest.approx([covered])
    assert got["period"].tolist() == [pd.Timedelta(days=1)]


@pytest.mark.parametrize(
    ("slos", "expected"),
    [
        ([], []),
        ([("api", "rps", "throughput")], []),
        ([("auth", "availability", "availability")], []),
        (
            [("gw", "p99", "latency"), ("api", "rps", "throughput"), ("db", "errors", "error_rate"),
             ("db", "availability", "availability")],
            ["db", "gw"],
        ),
    ],
    ids=[
        "no SLO at all",
        "a throughput SLO has no budget",
        "an SLO of a service not linked to the paged one",
        "budgeted SLOs of linked services, each service once and sorted",
    ],
)  # fmt: skip
def test_budgeted_services_are_the_linked_services_with_an_error_budget(slos, expected) -> None:
    frame = _slos(slos) if slos else _slo().iloc[:0]
    assert incidents.budgeted_services(frame, EDGES, "api") == expected


@pytest.mark.parametrize(
    ("burned", "expected"),
    [
        ([250.0, 99.9, 0.0], [250.0]),
        ([100.0], [100.0]),
        ([np.inf, 150.0], [np.inf, 150.0]),
        ([99.99], []),
    ],
    ids=[
        "over a whole period's budget is overspent, under is not",
        "exactly the whole budget is overspent",
        "bad events on a period without any budget are overspent, in their order",
        "just under the whole budget is not",
    ],
)
def test_an_slo_is_overspent_from_a_whole_periods_budget(burned, expected) -> None:
    budget = pd.DataFrame({"slo_name": [f"s{i}" for i in range(len(burned))], "burned_pct": burned})
    assert incidents.overspent(budget)["burned_pct"].tolist() == expected


@pytest.mark.parametrize(
    ("first_bad", "before", "after"),
    [
        (0, ["v1"], ["v2", "v3"]),
        (5, ["v1", "v2"], ["v3"]),
        (None, ["v1", "v2"], ["v3"]),
    ],
    ids=[
        "changes up to the first bad minute may be the trigger, later ones are the resolution",
        "a change at the first bad minute itself may be the trigger",
        "without a first bad minute, changes up to the page may be",
    ],
)
def test_changes_split_at_the_first_bad_minute_or_the_page(first_bad, before, after) -> None:
    """Changes at -10 (v1), +5 (v2) and +12 (v3); the page at +10."""
    events = pd.DataFrame(
        {
            "time": [T0 - 10 * MIN, T0 + 5 * MIN, T0 + 10 * MIN, T0 + 12 * MIN],
            "kind": ["change", "change", "triggered", "change"],
            "what": ["v1", "v2", "paged", "v3"],
        }
    )
    bad = None if first_bad is None else T0 + first_bad * MIN
    timeline = incidents.Timeline(events, bad, None, None, None)
    got_before, got_after = incidents.changes_around(timeline, T0 + 10 * MIN)
    assert got_before["what"].tolist() == before and got_after["what"].tolist() == after
