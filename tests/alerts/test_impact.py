"""Impact counts user requests once: entry spans that failed or were slow against the entry
service's own latency SLO (``alerts.impact.user_impact``), while the calls inside the system
are counted per service against each service's own threshold (``alerts.incidents.impact``).

Hand-built traces with known answers; each rule at its boundary.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from obslib.alerts import impact, incidents

T0 = pd.Timestamp("2026-11-01 10:00", tz="UTC")
SEC = pd.Timedelta(seconds=1)
END = T0 + 60 * SEC  # the window is [T0, END)
EDGES = pd.DataFrame({"caller": ["gw"], "callee": ["api"]})


def trace(name: str, at: float, *spans: tuple, root_parent: str | None = None) -> list[dict]:
    """One request: ``spans`` are (span id, parent id or None, service, operation, kind,
    status, duration ms), starting ``at`` seconds after T0, each child 1 ms after its
    parent; ``root_parent`` names a parent the frame lacks (an unstored client)."""
    rows = []
    for i, (span, parent, service, op, kind, status, ms) in enumerate(spans):
        start = T0 + at * SEC + pd.Timedelta(milliseconds=i)
        rows.append(
            {
                "trace_id": name,
                "span_id": span,
                "parent_span_id": parent if parent is not None or i else root_parent,
                "service_name": service,
                "operation_name": op,
                "span_kind": kind,
                "status": status,
                "duration_ms": float(ms),
                "start_time": start,
                "end_time": start + pd.Timedelta(milliseconds=ms),
            }
        )
    return rows


def gw_to_api(name: str, at: float, gw: tuple[str, float], api: tuple[str, float]) -> list[dict]:
    """gw's server span (status, ms) -> gw's client span -> api's server span (status, ms)."""
    return trace(
        name,
        at,
        ("g", None, "gw", "GET /", "server", *gw),
        ("c", "g", "gw", "api list", "client", gw[0], api[1] + 1),
        ("a", "c", "api", "list", "server", *api),
    )


def spans_of(*traces: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([row for t in traces for row in t])


def slos(*rows: tuple) -> pd.DataFrame:
    """(service, latency threshold ms or None for availability[, enabled]) per SLO."""
    return pd.DataFrame(
        [
            {
                "service_name": r[0],
                "slo_name": "availability" if r[1] is None else f"p99-{r[1]:g}",
                "slo_type": "availability" if r[1] is None else "latency",
                "latency_threshold_ms": np.nan if r[1] is None else float(r[1]),
                "enabled": r[2] if len(r) > 2 else True,
            }
            for r in rows
        ],
        columns=["service_name", "slo_name", "slo_type", "latency_threshold_ms", "enabled"],
    )


BOTH = slos(("gw", 300), ("api", 100), ("gw", None))


@pytest.mark.parametrize(
    ("spans", "slo_rows", "expected"),
    [
        (spans_of(gw_to_api("t1", 5, ("error", 20), ("error", 10))), BOTH, (1, 1, 0)),
        (spans_of(gw_to_api("t1", 5, ("ok", 200), ("ok", 150))), BOTH, (1, 0, 0)),
        (spans_of(gw_to_api("t1", 5, ("ok", 400), ("ok", 150))), BOTH, (1, 0, 1)),
        (spans_of(gw_to_api("t1", 5, ("ok", 300), ("ok", 10))), BOTH, (1, 0, 0)),
        (spans_of(gw_to_api("t1", 5, ("timeout", 900), ("timeout", 800))), BOTH, (1, 1, 0)),
        (
            spans_of(gw_to_api("t1", 0, ("error", 5), ("error", 1)),
                     gw_to_api("t2", 60, ("error", 5), ("error", 1))),
            BOTH,
            (1, 1, 0),
        ),
        (spans_of(gw_to_api("t1", -0.0005, ("ok", 900), ("error", 1))), BOTH, (0, 0, 0)),
        (spans_of(gw_to_api("t1", 5, ("ok", 9000), ("ok", 1))), slos(("gw", None)), (1, 0, 0)),
        (
            spans_of(gw_to_api("t1", 5, ("ok", 9000), ("ok", 1))),
            slos(("gw", 300, False)),
            (1, 0, 0),
        ),
        (
            spans_of(gw_to_api("t1", 5, ("ok", 400), ("ok", 1))),
            slos(("gw", 500), ("gw", 350)),
            (1, 0, 1),
        ),
        (
            spans_of(trace("t1", 5, ("b", None, "browser", "click", "client", "ok", 900),
                           ("g", "b", "gw", "GET /", "server", "ok", 800),
                           ("c", "g", "gw", "api list", "client", "ok", 700),
                           ("a", "c", "api", "list", "server", "error", 600))),
            BOTH,
            (1, 0, 1),
        ),
        (
            spans_of(trace("t1", 5, ("g", None, "gw", "GET /", "server", "error", 20),
                           root_parent="lb-span-not-stored")),
            BOTH,
            (1, 1, 0),
        ),
        (
            spans_of(trace("t1", 5, ("b", None, "browser", "load", "client", "ok", 900),
                           ("g1", "b", "gw", "GET /", "server", "ok", 10),
                           ("g2", "b", "gw", "GET /x", "server", "error", 400))),
            BOTH,
            (1, 0, 0),
        ),
        (
            spans_of(trace("t1", 5, ("p", None, "gw", "publish", "producer", "ok", 1),
                           ("q", "p", "api", "consume", "consumer", "error", 900))),
            BOTH,
            (0, 0, 0),
        ),
    ],
    ids=[
        "a request failing in two services counts once",
        "a slow call of a downstream service counts as a slow call of that service, "
        "not a user request, unless its entry span is slow",
        "an entry span slower than its own service's threshold is a slow request",
        "an entry span exactly at its service's threshold is not slow",
        "a request that failed slowly counts as failed, not also as slow",
        "an entry span at exactly the window start is inside, at exactly the window end "
        "outside",
        "a downstream span inside the window of a request that entered before it is no request",
        "a service without a latency SLO counts only failures",
        "a disabled latency SLO says nothing about slow",
        "with two latency SLOs, slow is over the lower threshold",
        "a request entering through a client span (a browser's) counts at its first server span",
        "a server span whose parent was never stored is an entry span",
        "of two server spans under one client span, the earlier is the request",
        "a trace without a server span has no user request",
    ],
)  # fmt: skip
def test_user_requests_are_counted_once_at_their_entry_span(spans, slo_rows, expected) -> None:
    got = impact.user_impact(spans, slo_rows, T0, END)
    assert (got.requests, got.failed, got.slow) == expected
    assert got.affected == expected[1] + expected[2]
    if len(got.rows):  # the rows add up to the totals
        assert got.rows["requests"].sum() == got.requests
        assert got.rows["failed"].sum() == got.failed
        assert got.rows["slow"].fillna(0).sum() == got.slow


def test_calls_are_counted_per_service_and_requests_once() -> None:
    """Two requests fail in gw and api (two failed calls each, one failed request each); a
    third is slow only in api (100 ms threshold) and fast for the user (gw: 300 ms): a slow
    call of api, no slow request. The calls table and the requests disagree by design."""
    spans = spans_of(
        gw_to_api("t1", 1, ("error", 20), ("error", 10)),
        gw_to_api("t2", 2, ("error", 20), ("error", 10)),
        gw_to_api("t3", 3, ("ok", 200), ("ok", 150)),
    )
    users = impact.user_impact(spans, BOTH, T0, END)
    assert (users.requests, users.failed, users.slow) == (3, 2, 0)
    assert users.rows.to_dict("records")[0] | {"first_failure": None, "last_failure": None} == {
        "service_name": "gw", "operation_name": "GET /", "requests": 3, "failed": 2,
        "slow": 0.0, "slow_over_ms": 300.0, "first_failure": None, "last_failure": None,
    }  # fmt: skip
    calls = incidents.impact(spans, EDGES, "api", BOTH, T0, END)
    got = calls.set_index("service_name")[["calls", "failed_calls", "slow_calls", "slow_over_ms"]]
    assert got.to_dict("index") == {
        "api": {"calls": 3, "failed_calls": 2, "slow_calls": 1.0, "slow_over_ms": 100.0},
        "gw": {"calls": 3, "failed_calls": 2, "slow_calls": 0.0, "slow_over_ms": 300.0},
    }


def test_only_requests_through_the_paged_service_are_its_users() -> None:
    """Two failing requests, one through api and one served by gw alone: an incident of api
    hurt one user; without ``through`` both count."""
    spans = spans_of(
        gw_to_api("t1", 1, ("error", 20), ("error", 10)),
        trace("t2", 2, ("g", None, "gw", "GET /health", "server", "error", 5)),
    )
    assert impact.user_impact(spans, BOTH, T0, END, through=["api"]).failed == 1
    assert impact.user_impact(spans, BOTH, T0, END).failed == 2
    assert impact.user_impact(spans, BOTH, T0, END, through=["db"]).requests == 0


def test_a_quiet_window_has_no_request_and_the_columns() -> None:
    spans = spans_of(gw_to_api("t1", 5, ("error", 20), ("error", 10)))
    got = impact.user_impact(spans, BOTH, END, END + 60 * SEC)
    assert (got.requests, got.failed, got.slow) == (0, 0, 0)
    assert list(got.rows.columns) == list(impact.USER_COLUMNS)
    empty = impact.user_impact(spans.iloc[0:0], BOTH, T0, END)
    assert empty.requests == 0 and empty.rows.empty


def test_the_entry_services_without_a_latency_slo_are_named() -> None:
    spans = spans_of(gw_to_api("t1", 5, ("ok", 9000), ("ok", 1)))
    got = impact.user_impact(spans, slos(("api", 100)), T0, END)
    assert got.without_latency_slo == ["gw"] and np.isnan(got.rows["slow"].iloc[0])


def test_the_entry_span_ignores_row_order() -> None:
    """The same trace with its rows reversed has the same entry span."""
    spans = spans_of(gw_to_api("t1", 5, ("ok", 20), ("ok", 10)))
    assert impact.entry_spans(spans)["span_id"].tolist() == ["g"]
    assert impact.entry_spans(spans.iloc[::-1])["span_id"].tolist() == ["g"]


def test_the_postmortem_and_the_alerts_package_share_the_rule() -> None:
    """One rule, one function: ``incidents.user_impact`` is ``impact.user_impact``."""
    assert incidents.user_impact is impact.user_impact
