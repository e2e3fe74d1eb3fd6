"""Which trace an investigation opens, that trace at a glance, the traces it is compared
with and how many repairs its summary counts: the rules the trace notebook's views show,
each with exact values on small frames."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from obslib import traces
from obslib.errors import InputError
from obslib.traces import sets as trace_sets
from obslib.traces import skew

T0 = pd.Timestamp("2026-11-14 14:00", tz="UTC")


def spans(rows: list[tuple]) -> pd.DataFrame:
    """(trace, span, parent, service, op, start_ms, end_ms, status) rows as a spans frame."""
    frame = pd.DataFrame(
        rows,
        columns=["trace_id", "span_id", "parent_span_id", "service_name", "operation_name",
                 "s", "e", "status"],
    )  # fmt: skip
    frame["start_time"] = T0 + pd.to_timedelta(frame.pop("s"), unit="ms")
    frame["end_time"] = T0 + pd.to_timedelta(frame.pop("e"), unit="ms")
    frame["span_kind"] = "server"
    return frame


def rebuilt(rows: list[tuple]) -> pd.DataFrame:
    """The rows as ``traces.reconstruct`` leaves them (``is_root`` and the rest)."""
    return traces.reconstruct(spans(rows)).spans


# gw GET 0-50 calls db q 5-45, then renders 46-49: the path is q 40 ms, GET 1 + 1 + 5 ms
# in three sections, render 3 ms.
CHECKOUT = [
    ("t", "c", None, "gw", "GET", 0, 50, "error"),
    ("t", "d", "c", "db", "q", 5, 45, "timeout"),
    ("t", "e", "c", "gw", "render", 46, 49, "ok"),
]


def sample(rows: list[tuple[str, str, float]]) -> trace_sets.TraceSample:
    """(trace_id, reason, duration_ms) rows as a sample."""
    frame = pd.DataFrame(rows, columns=["trace_id", "reason", "duration_ms"])
    counts = {r: int((frame["reason"] == r).sum()) for r in ("error", "slow", "uniform")}
    return trace_sets.TraceSample(frame, counts)


@pytest.mark.parametrize(
    ("rows", "chosen"),
    [
        pytest.param(
            [("a", "error", 50.0), ("b", "slow", 900.0), ("c", "error", 80.0)],
            "c",
            id="the slowest failing trace is opened, not a slower one that did not fail",
        ),
        pytest.param(
            [("a", "slow", 10.0), ("b", "uniform", 30.0)],
            "b",
            id="without a failing trace the slowest trace is opened",
        ),
        pytest.param(
            [("z", "error", 50.0), ("y", "error", 50.0), ("x", "uniform", 50.0)],
            "y",
            id="equally slow failing traces go by trace id",
        ),
        pytest.param([], None, id="an empty sample opens nothing"),
    ],
)
def test_the_default_trace(rows, chosen) -> None:
    assert trace_sets.default_trace(sample(rows)) == chosen


@pytest.mark.parametrize(
    ("trace_id", "reason"),
    [
        pytest.param("a", "error", id="a sampled failing trace says error"),
        pytest.param("b", "slow", id="one of the slowest says slow"),
        pytest.param("elsewhere", None, id="a trace chosen by id is in no sample"),
    ],
)
def test_why_a_trace_is_in_the_sample(trace_id: str, reason: str | None) -> None:
    assert sample([("a", "error", 5.0), ("b", "slow", 9.0)]).reason_of(trace_id) == reason


def test_the_trace_count_leaves_out_the_skipped_traces() -> None:
    """Two traces, one of them unrepairable (a span id used twice with different contents):
    the window-wide views use one."""
    window = spans(
        [
            *CHECKOUT,
            ("dup", "x", None, "gw", "GET", 0, 10, "ok"),
            ("dup", "x", None, "gw", "POST", 0, 20, "ok"),
        ]
    )
    clean = trace_sets.clean_window(window)
    assert (clean.trace_count, clean.skipped) == (1, ["dup"])


@pytest.mark.parametrize(
    ("rows", "root"),
    [
        pytest.param(CHECKOUT, "c", id="a whole trace's root is its parentless span"),
        pytest.param(
            [*CHECKOUT, ("t", "o", "gone", "db", "q", 20, 30, "ok")],
            "c",
            id="an orphan starting later is not the root",
        ),
        pytest.param(
            [*CHECKOUT, ("t", "o", "gone", "db", "q", -5, 30, "ok")],
            "o",
            id="an orphan starting first is the root",
        ),
        pytest.param(
            [("t", "b", "a", "gw", "GET", 0, 9, "ok"), ("t", "a", "b", "db", "q", 1, 5, "ok")],
            "b",
            id="a parent cycle is broken at its earliest span, the root",
        ),
        pytest.param(
            [("t", "b", None, "gw", "GET", 0, 9, "ok"), ("t", "a", None, "db", "q", 0, 5, "ok")],
            "a",
            id="roots starting together go by span id",
        ),
    ],
)
def test_the_root_of_a_rebuilt_trace(rows, root: str) -> None:
    assert trace_sets.trace_root(rebuilt(rows))["span_id"] == root


def test_the_root_needs_a_rebuilt_trace() -> None:
    with pytest.raises(InputError, match="is_root"):
        trace_sets.trace_root(spans(CHECKOUT))


def test_critical_path_time_of_one_trace_per_operation() -> None:
    """Every section counted once; the times add up to the trace's 50 ms, largest first."""
    segments = traces.critical_path_segments(rebuilt(CHECKOUT))
    per = trace_sets.trace_path_time(segments)
    assert per.round(9).to_dict("records") == [
        {"service_name": "db", "operation_name": "q", "path_ms": 40.0, "sections": 1,
         "share": 0.8},
        {"service_name": "gw", "operation_name": "GET", "path_ms": 7.0, "sections": 3,
         "share": 0.14},
        {"service_name": "gw", "operation_name": "render", "path_ms": 3.0, "sections": 1,
         "share": 0.06},
    ]  # fmt: skip


def test_a_trace_without_a_path_has_no_path_time() -> None:
    empty = traces.critical_path_segments(rebuilt(CHECKOUT).iloc[:0])
    assert trace_sets.trace_path_time(empty).empty


@pytest.mark.parametrize(
    ("statuses", "errors"),
    [
        pytest.param(["ok", "ok", "ok"], 0, id="a trace that did not fail has no errors"),
        pytest.param(["error", "timeout", "ok"], 2, id="a timeout counts as an error"),
    ],
)
def test_a_trace_at_a_glance(statuses: list[str], errors: int) -> None:
    rows = [(*r[:-1], status) for r, status in zip(CHECKOUT, statuses, strict=True)]
    trace = rebuilt(rows)
    overview = trace_sets.trace_overview(trace, traces.critical_path_segments(trace))
    assert dataclasses.asdict(overview) == {
        "root_service": "gw",
        "root_operation": "GET",
        "start": T0,
        "duration_ms": 50.0,
        "spans": 3,
        "services": 2,
        "errors": errors,
        "path_mostly_in": "db",  # 40 ms of the path, gw 10
    }


def test_the_path_is_mostly_where_the_request_waited() -> None:
    """Without the long call the gateway's own time is most of the path."""
    trace = rebuilt([CHECKOUT[0], CHECKOUT[2]])
    overview = trace_sets.trace_overview(trace, traces.critical_path_segments(trace))
    assert overview.path_mostly_in == "gw"


@pytest.mark.parametrize(
    ("parents", "limit", "ids"),
    [
        pytest.param([None, None, "x"], 300, ["a", "b"], id="traces with a root span are members"),
        pytest.param(["", None, None], 300, ["a", "b", "c"], id="an empty parent id is a root"),
        pytest.param(["x", "y", "z"], 300, [], id="a trace whose root lies outside is none"),
        pytest.param([None, None, None], 2, ["a", "b"], id="the first limit traces in order"),
    ],
)
def test_the_cohort_of_a_trace(parents: list, limit: int, ids: list[str]) -> None:
    frame = pd.DataFrame({"trace_id": ["a", "b", "c"], "parent_span_id": parents})
    assert trace_sets.cohort_trace_ids(frame, limit) == ids


def adjustments(rows: list[tuple[bool, bool]]) -> pd.DataFrame:
    """(applied, inherited) rows as a clock-skew report."""
    report = pd.DataFrame(
        {
            "span_id": [f"s{i}" for i in range(len(rows))],
            "service_name": "api",
            "host": "h",
            "parent_host": "p",
            "delta_ms": 35.0,
            "applied": [r[0] for r in rows],
            "inherited": [r[1] for r in rows],
        }
    )
    return report.astype(skew.REPORT_COLUMNS)


@pytest.mark.parametrize(
    ("rows", "repairs"),
    [
        pytest.param([], 0, id="no adjustment is no repair"),
        pytest.param([(True, False)], 1, id="a shift at a host switch is one repair"),
        pytest.param(
            [(True, False), (True, True), (True, True)],
            1,
            id="spans that moved with their parent add no repair",
        ),
        pytest.param([(False, False)], 0, id="a refused shift repaired nothing"),
        pytest.param([(True, False), (True, False)], 2, id="two host switches are two repairs"),
    ],
)
def test_the_repairs_a_skew_report_counts(rows, repairs: int) -> None:
    assert skew.applied_shifts(adjustments(rows)) == repairs


def test_an_adjustment_without_a_column_is_refused() -> None:
    with pytest.raises(InputError, match="inherited"):
        skew.applied_shifts(adjustments([(True, False)]).drop(columns="inherited"))
