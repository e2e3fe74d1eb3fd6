"""Trace reconstruction: exact answers on hand-built traces, invariants on random ones."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obslib import skew, traces
from obslib.errors import InputError

T0 = pd.Timestamp("2026-11-14 14:00", tz="UTC")


def frame(rows: list[tuple], trace_id: str = "t") -> pd.DataFrame:
    """Rows of (span_id, parent, start_ms, end_ms, kind) as a spans frame."""
    return pd.DataFrame(
        {
            "trace_id": trace_id,
            "span_id": [r[0] for r in rows],
            "parent_span_id": [r[1] for r in rows],
            "start_time": [T0 + pd.Timedelta(milliseconds=r[2]) for r in rows],
            "end_time": [T0 + pd.Timedelta(milliseconds=r[3]) for r in rows],
            "span_kind": [r[4] if len(r) > 4 else "internal" for r in rows],
        }
    )


# A root with a short call, a call that overflows it (and has two calls of its own), and an
# asynchronous producer the root does not wait for.
TRACE = frame(
    [
        ("A", None, 0, 100, "server"),
        ("B", "A", 5, 25, "client"),
        ("C", "A", 30, 110, "client"),
        ("D", "C", 40, 60),
        ("E", "C", 65, 90),
        ("F", "A", 50, 200, "producer"),
    ]
)


def sections(path: pd.DataFrame) -> list[tuple[str, float, float]]:
    ms = lambda s: (s - T0) / pd.Timedelta(milliseconds=1)  # noqa: E731
    return [(r.span_id, ms(r.section_start), ms(r.section_end)) for r in path.itertuples()]


def test_critical_path_by_last_finishing_child() -> None:
    """The walk clips C to its parent, skips the producer and returns at each child's start."""
    assert sections(traces.critical_path(TRACE)) == [
        ("C", 90, 100),
        ("E", 65, 90),
        ("C", 60, 65),
        ("D", 40, 60),
        ("C", 30, 40),
        ("A", 25, 30),
        ("B", 5, 25),
        ("A", 0, 5),
    ]


@pytest.mark.parametrize(
    "tags",
    [[{}, {"ref_type": "follows_from"}], ["{}", '{"ref_type": "follows_from"}']],
    ids=["tags as dicts", "tags as JSON text"],
)
def test_follows_from_children_are_off_the_path(tags) -> None:
    """A FOLLOWS_FROM reference (as the Jaeger importer stores it) does not block its parent."""
    spans = frame([("A", None, 0, 100), ("B", "A", 10, 90)])
    spans["tags"] = tags
    assert sections(traces.critical_path(spans)) == [("A", 0, 100)]


def test_several_roots_are_walked_as_one_trace() -> None:
    """An orphan and the root are both roots: the path runs through the latest first."""
    spans = frame([("A", None, 0, 50), ("X", "lost", 40, 80), ("Y", "X", 45, 70)])
    assert sections(traces.critical_path(spans)) == [
        ("X", 70, 80),
        ("Y", 45, 70),
        ("X", 40, 45),
        ("A", 0, 40),
    ]


def test_a_deep_chain_needs_no_recursion() -> None:
    """10,000 nested spans: every span is on the path, twice (before and after its child)."""
    n = 10_000
    spans = frame([(f"s{i}", f"s{i - 1}" if i else None, i, 2 * n - i) for i in range(n)])
    path = traces.critical_path(spans)
    assert len(path) == 2 * n - 1
    assert path["span_id"].iloc[0] == "s0" and path["span_id"].iloc[n - 1] == f"s{n - 1}"


def test_a_parent_cycle_is_an_error_not_a_hang() -> None:
    """Spans that are each other's parents are reported."""
    spans = frame([("A", "B", 0, 10), ("B", "A", 1, 9)])
    with pytest.raises(InputError, match="cycle"):
        traces.critical_path(spans)


def test_self_time() -> None:
    """Own time is the span minus the union of its children, overlaps counted once."""
    got = dict(zip(TRACE["span_id"], traces.self_time(TRACE), strict=True))
    assert got == {"A": 10.0, "B": 20.0, "C": 35.0, "D": 20.0, "E": 25.0, "F": 150.0}


@st.composite
def random_trace(draw) -> pd.DataFrame:
    """A random tree; children may overflow their parents and start anywhere."""
    n = draw(st.integers(1, 40))
    rows = []
    for i in range(n):
        parent = draw(st.integers(-1, i - 1)) if i else -1
        start = draw(st.integers(0, 1000))
        length = draw(st.integers(0, 500))
        kind = draw(st.sampled_from(["server", "client", "internal", "producer"]))
        rows.append((f"s{i}", f"s{parent}" if parent >= 0 else None, start, start + length, kind))
    return frame(rows)


@settings(max_examples=150, deadline=None)
@given(random_trace())
def test_self_time_is_between_zero_and_the_duration(spans: pd.DataFrame) -> None:
    """No span has negative own time or more than its duration."""
    own = traces.self_time(spans).to_numpy()
    duration = ((spans["end_time"] - spans["start_time"]) / pd.Timedelta(milliseconds=1)).to_numpy()
    assert (own >= -1e-9).all() and (own <= duration + 1e-9).all()


@settings(max_examples=150, deadline=None)
@given(random_trace())
def test_critical_path_stays_inside_the_trace_and_never_overlaps(spans: pd.DataFrame) -> None:
    """Sections lie within the trace, run backwards in time and never overlap each other."""
    path = traces.critical_path(spans)
    lo, hi = spans["start_time"].min(), spans["end_time"].max()
    assert (path["section_start"] >= lo).all() and (path["section_end"] <= hi).all()
    assert (path["section_start"] < path["section_end"]).all()
    ends = path["section_end"].to_numpy()
    starts = path["section_start"].to_numpy()
    assert (ends[1:] <= starts[:-1]).all()
    assert set(path["span_id"]) <= set(spans["span_id"])
    assert path["section_start"].dtype == spans["start_time"].dtype


def test_reconstruct_repairs_and_counts_what_it_repaired() -> None:
    """Duplicates dropped, a shared client/server id split, an orphan and a cycle flagged."""
    spans = frame(
        [
            ("A", None, 0, 100, "server"),
            ("A", None, 0, 100, "server"),  # exact duplicate
            ("B", "A", 10, 90, "client"),
            ("B", "A", 12, 88, "server"),  # Zipkin: the server side shares the client's id
            ("C", "B", 20, 60),  # a child of the shared span hangs from its server side
            ("O", "missing", 5, 15),  # orphan
            ("X", "Y", 30, 40),  # X and Y are each other's parent
            ("Y", "X", 31, 39),
        ]
    )
    rebuilt = traces.reconstruct(spans)
    got = rebuilt.spans.set_index("span_id")
    assert (rebuilt.duplicates_dropped, rebuilt.shared_ids_split) == (1, 1)
    assert (rebuilt.orphans, rebuilt.cycles_broken) == (1, 1)
    assert got.loc["B:server", "parent_span_id"] == "B"
    assert got.loc["C", "parent_span_id"] == "B:server"
    assert got.loc["C", "depth"] == 3 and got.loc["A", "depth"] == 0
    assert got["is_root"].to_dict() == {
        "A": True,
        "B": False,
        "B:server": False,
        "C": False,
        "O": True,
        "X": True,
        "Y": False,
    }
    assert bool(got.loc["O", "is_orphan"]) and got.loc["A", "n_children"] == 1
    assert len(rebuilt.notes) == 4


def test_statistics_group_by_service_and_tag() -> None:
    """Counts, durations and self time per group; self time shares add up to 100 %."""
    spans = TRACE.assign(
        service_name=["gw", "gw", "dom", "dom", "dom", "gw"],
        tags=[{"r": "x"}, {}, {"r": "y"}, {}, {}, {"r": "x"}],
    )
    stats = traces.statistics(spans).set_index("service_name")
    assert stats.loc["dom", "count"] == 3 and stats.loc["dom", "total_ms"] == 80 + 20 + 25
    assert stats.loc["dom", "self_total_ms"] == 35 + 20 + 25
    assert stats.loc["gw", "max_ms"] == 150
    assert stats["self_pct"].sum() == pytest.approx(100 * (10 + 20 + 35 + 20 + 25 + 150) / 200)
    by_tag = traces.statistics(spans, by="tag:r").set_index("tag:r")
    assert by_tag.loc["x", "count"] == 2


def test_many_traces_at_once_match_one_at_a_time() -> None:
    """critical_paths over several traces equals critical_path trace by trace."""
    other = frame([("R", None, 0, 40), ("S", "R", 10, 30)], trace_id="u")
    both = pd.concat([TRACE, other], ignore_index=True)
    together = traces.critical_paths(both)
    for trace_id, spans in both.groupby("trace_id"):
        alone = traces.critical_path(spans)
        mine = together[together["trace_id"] == trace_id].drop(columns="trace_id")
        pd.testing.assert_frame_equal(mine.reset_index(drop=True), alone)
    segments = traces.critical_path_segments(both.assign(service_name="svc", operation_name="op"))
    assert segments.groupby("trace_id")["duration_ms"].sum().to_dict() == {"t": 100.0, "u": 40.0}


def test_clock_skew_is_adjusted_by_jaegers_rule_and_reported() -> None:
    """A child from a fast host is centred in its parent; its same-host child moves with it;
    a shift above the maximum is reported but not applied; switched off, nothing moves."""
    spans = frame(
        [
            ("A", None, 0, 100, "client"),
            ("B", "A", 70, 130, "server"),  # 60 ms long, 40 ms too late: centred at 20..80
            ("C", "B", 80, 120),  # same host as B: follows it
            ("D", "A", 10, 20, "server"),  # fits: untouched
        ]
    ).assign(
        tags=[{"host.name": "h1"}, {"host.name": "h2"}, {"host.name": "h2"}, {"host.name": "h3"}]
    )
    result = skew.adjust_clock_skew(spans, max_skew_ms=1000)

    def ms(col: str) -> dict[str, float]:
        offsets = (result.spans[col] - T0) / pd.Timedelta(milliseconds=1)
        return dict(zip(result.spans["span_id"], offsets, strict=True))

    assert ms("start_time") == {"A": 0, "B": 20, "C": 30, "D": 10}
    assert ms("end_time") == {"A": 100, "B": 80, "C": 70, "D": 20}
    report = result.adjustments
    assert report[["span_id", "host", "parent_host", "delta_ms", "applied"]].values.tolist() == [
        ["B", "h2", "h1", -50.0, True]
    ]
    capped = skew.adjust_clock_skew(spans, max_skew_ms=10)
    assert capped.adjustments["applied"].tolist() == [False]
    assert (capped.spans["start_time"] == spans["start_time"]).all()
    off = skew.adjust_clock_skew(spans, enabled=False)
    assert off.adjustments.empty and off.spans.equals(spans)


def test_back_to_back_children_are_followed() -> None:
    """Our one difference from Jaeger: a child ending exactly where the next one starts is on
    the path (Jaeger gives that time to the parent)."""
    spans = frame([("P", None, 0, 100), ("A", "P", 10, 50), ("B", "P", 50, 90)])
    assert sections(traces.critical_path(spans)) == [
        ("P", 90, 100),
        ("B", 50, 90),
        ("A", 10, 50),
        ("P", 0, 10),
    ]


def test_a_messaging_root_stays_on_the_path() -> None:
    """A consumer whose producer is outside the window is its trace's root, and on the path."""
    spans = frame([("C", "producer-elsewhere", 0, 30, "consumer"), ("W", "C", 5, 25)])
    assert sections(traces.critical_path(spans)) == [("C", 25, 30), ("W", 5, 25), ("C", 0, 5)]


def test_naive_times_come_back_naive() -> None:
    """The path keeps the input's time type, tz-naive included."""
    naive = TRACE.assign(
        start_time=TRACE["start_time"].dt.tz_localize(None),
        end_time=TRACE["end_time"].dt.tz_localize(None),
    )
    path = traces.critical_path(naive)
    assert path["section_start"].dtype == naive["start_time"].dtype
    assert len(path) == 8


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.assign(trace_id=[None] + ["t"] * 5), "spans row 0: trace_id is missing"),
        (lambda f: f.assign(span_id=["A", "A", "C", "D", "E", "F"]), "appears twice in trace"),
        (
            lambda f: f.assign(
                end_time=f["end_time"]
                .astype("datetime64[us, UTC]")
                .where(f["span_id"] != "F", pd.Timestamp("2300-01-01", tz="UTC"))
            ),
            "out of range",
        ),
    ],
    ids=["a missing trace id", "a repeated span id", "a time past 2262"],
)
def test_malformed_spans_are_input_errors(change, message: str) -> None:
    with pytest.raises(InputError, match=message):
        traces.critical_path(change(TRACE))


def test_repairs_stay_within_their_trace() -> None:
    """An empty parent id is a root; a cycle breaks on the cycle, not at a child under it;
    splitting a shared id in one trace leaves another trace's same-named span alone."""
    spans = pd.concat(
        [
            frame([("R", "", 0, 10)], trace_id="r"),
            frame([("X", "Y", 30, 40), ("Y", "X", 31, 39), ("Z", "X", 20, 35)], trace_id="c"),
            frame(
                [("B", None, 10, 90, "client"), ("B", None, 12, 88, "server"), ("K", "B", 20, 60)],
                trace_id="s",
            ),
            frame([("B", None, 0, 50, "server"), ("K", "B", 5, 45)], trace_id="o"),
        ],
        ignore_index=True,
    )
    rebuilt = traces.reconstruct(spans)
    got = rebuilt.spans.set_index(["trace_id", "span_id"])
    assert not got.loc[("r", "R"), "is_orphan"] and got.loc[("r", "R"), "is_root"]
    assert rebuilt.cycles_broken == 1 and not got.loc[("c", "Z"), "is_root"]
    assert got.loc[("s", "K"), "parent_span_id"] == "B:server"
    assert got.loc[("o", "K"), "parent_span_id"] == "B"
