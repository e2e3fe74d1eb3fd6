"""Trace reconstruction: exact answers on hand-built traces, invariants on random ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obslib import traces
from obslib.errors import InputError, ObslibError
from obslib.traces import skew

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
def random_trace(draw, grid: int = 1) -> pd.DataFrame:
    """A random tree; children may overflow their parents and start anywhere. Times on a
    ``grid`` of ms: a coarse grid makes siblings that start or end together common."""
    n = draw(st.integers(1, 40))
    rows = []
    for i in range(n):
        parent = draw(st.integers(-1, i - 1)) if i else -1
        start = draw(st.integers(0, 1000 // grid)) * grid
        length = draw(st.integers(0, 500 // grid)) * grid
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


@settings(max_examples=200, deadline=None)
@given(random_trace(grid=100), st.randoms(use_true_random=False))
def test_the_critical_path_does_not_depend_on_row_order(spans: pd.DataFrame, rng) -> None:
    """Siblings ending at the same instant are taken longest first, then by span id, not
    by which row came first: shuffled rows give the same path (Spark hands traces over in
    no particular order)."""
    order = list(range(len(spans)))
    rng.shuffle(order)
    shuffled = spans.iloc[order].reset_index(drop=True)
    assert traces.critical_path(shuffled).values.tolist() == (
        traces.critical_path(spans).values.tolist()
    )


def test_siblings_ending_together_are_walked_longest_first() -> None:
    """Two calls end at 90: the path descends into the one that started first (it explains
    more of the wait), whichever row comes first; equal spans go by span id."""
    rows = [("A", None, 0, 100), ("S", "A", 60, 90), ("L", "A", 20, 90)]
    for ordered in (rows, rows[::-1]):
        path = traces.critical_path(frame(ordered))
        assert path["span_id"].tolist() == ["A", "L", "A"]
    twins = [("A", None, 0, 100), ("Y", "A", 20, 90), ("X", "A", 20, 90)]
    for ordered in (twins, twins[::-1]):
        assert traces.critical_path(frame(ordered))["span_id"].tolist() == ["A", "X", "A"]


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
    """A child from a fast host is centred in its parent; its same-host child moves with it
    and is listed as inherited; a shift above the maximum is reported but not applied (and
    moves nothing); switched off, nothing moves."""
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
    columns = ["span_id", "host", "parent_host", "delta_ms", "applied", "inherited"]
    assert report[columns].values.tolist() == [
        ["B", "h2", "h1", -50.0, True, False],
        ["C", "h2", "h2", -50.0, True, True],
    ]
    capped = skew.adjust_clock_skew(spans, max_skew_ms=10)
    assert capped.adjustments[["span_id", "applied"]].values.tolist() == [["B", False]]
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
    """The critical path refuses malformed spans with a message naming the row or trace."""
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


# -- rules pinned by issue 7 ----------------------------------------------------------------


def test_overlapping_children_are_swept_in_start_order() -> None:
    """A long child that starts first and a short one inside it cover 40 ms, not 30: the
    union is swept by start (by end, the short child would hide the long one's start)."""
    spans = frame([("P", None, 0, 100), ("X", "P", 10, 50), ("Y", "P", 20, 30), ("Z", "P", 60, 70)])
    got = dict(zip(spans["span_id"], traces.self_time(spans), strict=True))
    assert got == {"P": 50.0, "X": 40.0, "Y": 10.0, "Z": 10.0}


@settings(max_examples=150, deadline=None)
@given(random_trace())
def test_self_time_matches_counting_milliseconds(spans: pd.DataFrame) -> None:
    """Self time equals the span's milliseconds not covered by any child (clipped to it),
    counted one by one."""
    start = ((spans["start_time"] - T0) / pd.Timedelta(milliseconds=1)).astype(int).to_numpy()
    end = ((spans["end_time"] - T0) / pd.Timedelta(milliseconds=1)).astype(int).to_numpy()
    row = {s: i for i, s in enumerate(spans["span_id"])}
    covered = [np.zeros(1500, dtype=bool) for _ in range(len(spans))]
    for i, parent in enumerate(spans["parent_span_id"]):
        if isinstance(parent, str):
            p = row[parent]
            covered[p][max(start[i], start[p]) : min(end[i], end[p])] = True
    expected = [
        float(end[i] - start[i] - covered[i][start[i] : end[i]].sum()) for i in row.values()
    ]
    assert traces.self_time(spans).tolist() == expected


def test_zipkin_shared_id_renames_the_server_side() -> None:
    """Of a client and server span sharing one id, the server is renamed ``<id>:server`` and
    hangs under the client, which keeps the id, its parent and its times."""
    spans = frame(
        [
            ("A", None, 0, 100, "server"),
            ("B", "A", 12, 88, "server"),  # listed first: order must not decide
            ("B", "A", 10, 90, "client"),
            ("C", "B", 20, 60),
        ]
    )
    got = traces.reconstruct(spans).spans.set_index("span_id")
    assert got.loc["B", ["span_kind", "parent_span_id"]].tolist() == ["client", "A"]
    assert got.loc["B:server", ["span_kind", "parent_span_id"]].tolist() == ["server", "B"]
    assert (got.loc["B", "start_time"] - T0) / pd.Timedelta(milliseconds=1) == 10
    assert (got.loc["B:server", "start_time"] - T0) / pd.Timedelta(milliseconds=1) == 12
    assert got.loc["C", "parent_span_id"] == "B:server"
    assert got["depth"].to_dict() == {"A": 0, "B:server": 2, "B": 1, "C": 3}


def _skewed(child: tuple[int, int]) -> pd.DataFrame:
    """A parent 0..100 ms on host h1 and one child on host h2."""
    return frame([("P", None, 0, 100, "client"), ("K", "P", *child, "server")]).assign(
        tags=[{"host.name": "h1"}, {"host.name": "h2"}]
    )


@pytest.mark.parametrize(
    ("child", "moved_to", "reported_ms"),
    [
        ((0, 40), (0, 40), None),
        ((60, 100), (60, 100), None),
        ((-30, 120), (0, 150), 30.0),
        ((20, 170), (20, 170), None),
        ((0, 150), (0, 150), None),
        ((-10, 30), (30, 70), 40.0),
    ],
    ids=[
        "a child starting exactly with its parent fits and stays",
        "a child ending exactly with its parent fits and stays",
        "a longer child starting early moves later, to the parent's start",
        "a longer child starting late is not moved (only the start can be aligned)",
        "a longer child starting exactly with its parent is not moved",
        "a shorter child starting early is centred",
    ],
)
def test_clock_skew_edge_cases(child, moved_to, reported_ms) -> None:
    """Jaeger's rule at its edges: what fits stays; a longer child can only be moved later."""
    result = skew.adjust_clock_skew(_skewed(child), max_skew_ms=1000)
    k = result.spans.set_index("span_id").loc["K"]
    ms = lambda t: (t - T0) / pd.Timedelta(milliseconds=1)  # noqa: E731
    assert (ms(k["start_time"]), ms(k["end_time"])) == moved_to
    expected = [] if reported_ms is None else [["K", reported_ms, True]]
    assert result.adjustments[["span_id", "delta_ms", "applied"]].values.tolist() == expected


def test_a_broken_cycle_leaves_a_tree_every_function_accepts() -> None:
    """reconstruct clears the parent of the cycle's earliest span, so the path and self
    times of its output need no second repair."""
    spans = frame([("A", "B", 0, 10), ("B", "A", 1, 9), ("C", "B", 2, 5)])
    rebuilt = traces.reconstruct(spans)
    got = rebuilt.spans.set_index("span_id")
    assert rebuilt.cycles_broken == 1 and rebuilt.repaired_traces == ("t",)
    assert pd.isna(got.loc["A", "parent_span_id"]) and got.loc["B", "parent_span_id"] == "A"
    assert got["self_time_ms"].to_dict() == {"A": 2.0, "B": 5.0, "C": 3.0}
    assert sections(traces.critical_path(rebuilt.spans)) == [
        ("A", 9, 10),
        ("B", 5, 9),
        ("C", 2, 5),
        ("B", 1, 2),
        ("A", 0, 1),
    ]
    assert traces.reconstruct(rebuilt.spans).notes == []  # nothing left to repair


def test_cycles_in_many_traces_are_each_broken_once() -> None:
    """Two traces with a cycle (one with spans hanging under it) and a healthy one."""
    spans = pd.concat(
        [
            frame([("X", "Z", 5, 50), ("Y", "X", 1, 60), ("Z", "Y", 3, 40), ("W", "Z", 4, 6)], "a"),
            frame([("P", "Q", 0, 10), ("Q", "P", 0, 10)], "b"),
            frame([("R", None, 0, 10)], "c"),
        ],
        ignore_index=True,
    )
    rebuilt = traces.reconstruct(spans)
    got = rebuilt.spans.set_index(["trace_id", "span_id"])
    assert rebuilt.cycles_broken == 2 and rebuilt.repaired_traces == ("a", "b")
    assert got.index[got["is_root"]].tolist() == [("a", "Y"), ("b", "P"), ("c", "R")]
    assert got.loc["a", "depth"].to_dict() == {"X": 2, "Y": 0, "Z": 1, "W": 2}


def test_a_span_that_is_its_own_parent_is_a_root_with_a_note() -> None:
    """Not an orphan and not a zero self time: a root, its parent id cleared, and noted."""
    spans = frame([("A", "A", 0, 10), ("B", "A", 2, 5)])
    rebuilt = traces.reconstruct(spans)
    got = rebuilt.spans.set_index("span_id")
    assert rebuilt.self_parents == 1 and rebuilt.orphans == 0
    assert rebuilt.notes == ["1 span naming itself as parent made roots (parent id cleared)"]
    assert bool(got.loc["A", "is_root"]) and not got.loc["A", "is_orphan"]
    assert pd.isna(got.loc["A", "parent_span_id"])
    assert got["self_time_ms"].to_dict() == {"A": 7.0, "B": 3.0}
    expected = [("A", 5, 10), ("B", 2, 5), ("A", 0, 2)]
    assert sections(traces.critical_path(rebuilt.spans)) == expected
    assert sections(traces.critical_path(spans)) == expected  # unrepaired: a root too


def test_copies_differing_in_tags_are_not_exact_duplicates() -> None:
    """Tags and logs are compared by their canonical JSON: the same content as a dict or as
    reordered JSON text is an exact duplicate; other content is a different copy, of which the
    one with the smallest canonical JSON is kept, and the note says so."""
    spans = frame([("A", None, 0, 10)] * 4 + [("B", "A", 1, 5)] * 2).assign(
        tags=[{"a": 1, "b": 2}, '{"b": 2, "a": 1}', {"a": 2}, {"a": 1, "b": 2}, None, None],
        logs=[[], "[]", [], [{"event": "x"}], [], None],
    )
    rebuilt = traces.reconstruct(spans)
    assert (rebuilt.duplicates_dropped, rebuilt.variants_dropped) == (1, 3)
    assert rebuilt.spans["tags"].tolist() == [{"a": 1, "b": 2}, None]
    assert rebuilt.notes == [
        "1 exact duplicate span dropped (same columns, tags and logs; one copy kept)",
        "3 copies of a span differing only in tags or logs dropped: the copy with the"
        " smallest canonical JSON kept",
    ]


def test_which_copy_and_which_cycle_span_win_does_not_depend_on_row_order() -> None:
    """Two copies of B, one a FOLLOWS_FROM child (off the path), and a two-span cycle whose
    spans start together: either row order keeps the same copy (the smaller JSON) and
    breaks the cycle at the same span (the smaller id), so the paths are the same."""
    rows = frame([("A", None, 0, 100), ("B", "A", 20, 80), ("B", "A", 20, 80)]).assign(
        tags=[{}, {"ref_type": "follows_from"}, {"peer": "db"}]
    )
    cycle = frame([("X", "Y", 0, 10), ("Y", "X", 0, 8)], trace_id="c")
    spans = pd.concat([rows, cycle], ignore_index=True)
    for order in (spans, spans.iloc[::-1]):
        rebuilt = traces.reconstruct(order)
        kept = rebuilt.spans.set_index("span_id")
        assert kept.loc["B", "tags"] == {"peer": "db"}  # '{"peer"...' < '{"ref_type"...'
        assert bool(kept.loc["X", "is_root"]) and not kept.loc["Y", "is_root"]
        path = traces.critical_paths(rebuilt.spans)
        assert path[path["trace_id"] == "t"]["span_id"].tolist() == ["A", "B", "A"]


def test_traces_that_cannot_be_repaired_are_skipped_or_refused() -> None:
    """A span id used twice with different contents, a span without an id, a missing time
    and a time past 2262: with skip_broken the trace is left out and listed, else refused."""
    late = pd.Timestamp("2300-01-01", tz="UTC")
    spans = pd.concat(
        [
            frame([("R", None, 0, 10), ("S", "R", 1, 5)], "ok"),
            frame([("A", None, 0, 10), ("A", None, 1, 10)], "twice"),
            frame([("A", None, 0, 10), (None, "A", 1, 5)], "no-id"),
            frame([("A", None, 0, 10)], "late"),
            frame([("A", None, 0, 10)], "no-end"),
        ],
        ignore_index=True,
    ).astype({"start_time": "datetime64[us, UTC]", "end_time": "datetime64[us, UTC]"})
    spans.loc[spans["trace_id"] == "late", "end_time"] = late
    spans.loc[spans["trace_id"] == "no-end", "end_time"] = pd.NaT
    rebuilt = traces.reconstruct(spans, skip_broken=True)
    unusable = "a span without an id or with a time missing or past 2262"
    assert rebuilt.skipped_traces == {
        "no-id": unusable,
        "late": unusable,
        "no-end": unusable,
        "twice": "a span id used twice with different contents",
    }
    assert rebuilt.spans["trace_id"].tolist() == ["ok", "ok"]
    assert rebuilt.notes == [
        f"3 traces left out, {unusable}: no-id, late, no-end",
        "1 trace left out, a span id used twice with different contents: twice",
    ]
    with pytest.raises(InputError, match="span id 'A' appears twice in trace 'twice'"):
        traces.reconstruct(spans[spans["trace_id"].isin(["ok", "twice"])])
    with pytest.raises(InputError, match="spans row 2: end_time is missing"):
        traces.reconstruct(spans[spans["trace_id"].isin(["ok", "no-end"])])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda f: traces.reconstruct(f.drop(columns="end_time")), "spans frame lacks.*end_time"),
        (lambda f: traces.self_time(f.drop(columns="parent_span_id")), "lacks.*parent_span_id"),
        (lambda f: traces.statistics(f, by="service"), "by names column.*: service"),
        (lambda f: traces.statistics(f, by="tag:http.route"), "needs a tags column"),
        (lambda f: skew.adjust_clock_skew(f.drop(columns="span_id")), "spans frame lacks.*span_id"),
        (lambda f: skew.adjust_clock_skew(f, max_skew_ms=-1), "max_skew_ms must be"),
        (lambda f: skew.adjust_clock_skew(f, max_skew_ms=float("nan")), "max_skew_ms must be"),
    ],
    ids=[
        "reconstruct without end times",
        "self time without parents",
        "statistics by a column that is not there",
        "statistics by a tag without tags",
        "clock skew without span ids",
        "a negative skew limit",
        "a NaN skew limit",
    ],
)
def test_missing_columns_and_bad_parameters_are_named(call, message: str) -> None:
    """Checked up front: an ObslibError naming the column or parameter, not a KeyError."""
    with pytest.raises(ObslibError, match=message):
        call(TRACE)


def test_statistics_read_tags_stored_as_json_text() -> None:
    """Tags loaded with json="text" group like dicts; unreadable text counts as no tag."""
    spans = TRACE.assign(tags=['{"r": "x"}', "{}", '{"r": "y"}', "not json", None, '{"r": "x"}'])
    by_tag = traces.statistics(spans, by="tag:r").set_index("tag:r")
    counts = by_tag["count"].rename(index=lambda k: "(none)" if pd.isna(k) else k).to_dict()
    assert counts == {"x": 2, "y": 1, "(none)": 3}


@st.composite
def random_parents(draw) -> pd.DataFrame:
    """Spans with any parent at all: cycles, self-parents, orphans, several traces."""
    n = draw(st.integers(1, 30))
    rows = []
    for i in range(n):
        parent = draw(st.one_of(st.none(), st.just("lost"), st.integers(0, n - 1)))
        start = draw(st.integers(0, 1000))
        rows.append((f"s{i}", parent if not isinstance(parent, int) else f"s{parent}", start))
    spans = frame([(s, p, start, start + 50) for s, p, start in rows])
    return spans.assign(trace_id=[draw(st.sampled_from(["t", "u"])) for _ in range(n)])


@settings(max_examples=60, deadline=None)
@given(random_parents())
def test_reconstruct_always_yields_a_forest(spans: pd.DataFrame) -> None:
    """Whatever the parents, the output is a forest the path accepts, and rebuilding it
    again repairs nothing."""
    rebuilt = traces.reconstruct(spans)
    assert (rebuilt.spans["depth"] >= 0).all()
    assert len(rebuilt.spans) == len(spans)
    traces.critical_paths(rebuilt.spans)  # no cycle error
    again = traces.reconstruct(rebuilt.spans)
    assert again.repaired_traces == () and again.cycles_broken == again.self_parents == 0


@pytest.mark.parametrize(
    ("rows", "root"),
    [
        ([("O", "gone", 5, 20), ("R", None, 0, 100), ("C", "R", 10, 30)], "R"),
        ([("C", "R", 10, 30), ("O", "gone", 5, 20), ("R", "", 0, 100)], "R"),
        ([("R", None, 0, 100), ("O", "gone", -5, 20)], "O"),
        ([("S", "S", 3, 9), ("O", "gone", 4, 20), ("C", "S", 5, 6)], "S"),
        ([("Z", None, 0, 10), ("Y", "gone", 0, 10), ("X", "Z", 0, 5)], "Y"),
        ([("C", "B", 2, 3), ("B", "A", 1, 4)], "B"),
    ],
    ids=[
        "an orphan row before a root that starts earlier: the root",
        "OpenTelemetry's empty parent id is a root, wherever its row is",
        "an orphan starting before the root (cut or skewed trace): the earliest",
        "a span naming itself as parent is parentless",
        "two parentless spans starting together: the smaller span id",
        "a trace cut above its root: its earliest orphan",
    ],
)
def test_a_traces_root_is_its_earliest_starting_parentless_span(rows, root) -> None:
    spans = frame(rows)
    for shuffled in (spans, spans.iloc[::-1]):
        got = traces.roots(shuffled)
        assert got["span_id"].tolist() == [root]
        assert got.index.tolist() == spans.index[spans["span_id"] == root].tolist()


def test_roots_of_many_traces_are_one_per_trace_and_agree_with_the_trace_summaries() -> None:
    """``trace_sets.trace_summaries`` names each trace's root service: the same span."""
    from obslib.traces import sets as trace_sets

    spans = pd.concat(
        [
            frame([("O", "gone", 5, 20), ("R", None, 0, 100), ("C", "R", 10, 30)], "t1"),
            frame([("C", "R", 10, 30), ("O", "gone", 3, 20), ("R", "", 4, 100)], "t2"),
        ],
        ignore_index=True,
    )
    spans = spans.assign(service_name=spans["span_id"] + "-svc", operation_name="op", status="ok")
    got = traces.roots(spans)
    assert list(zip(got["trace_id"], got["span_id"], strict=True)) == [("t1", "R"), ("t2", "O")]
    summary = trace_sets.trace_summaries(spans).set_index("trace_id")["root_service"]
    assert summary.to_dict() == {"t1": "R-svc", "t2": "O-svc"}
    assert traces.roots(spans.iloc[:0]).empty
