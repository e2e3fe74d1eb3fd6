"""Clock skew on real data: hosts named by OpenTelemetry resource attributes, spans with no
host, events moving with their span, and every shifted span reported."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest

from obslib.traces import skew

T0 = pd.Timestamp("2026-11-14 14:00", tz="UTC")


def spans(rows: list[tuple], **columns: list) -> pd.DataFrame:
    """Rows of (span_id, parent, start_ms, end_ms, tags) as a spans frame of one service."""
    return pd.DataFrame(
        {
            "trace_id": "t",
            "span_id": [r[0] for r in rows],
            "parent_span_id": [r[1] for r in rows],
            "service_name": "api",
            "start_time": [T0 + pd.Timedelta(milliseconds=r[2]) for r in rows],
            "end_time": [T0 + pd.Timedelta(milliseconds=r[3]) for r in rows],
            "tags": [r[4] for r in rows],
            **columns,
        }
    )


def moved_to(result: skew.SkewAdjustment) -> dict[str, tuple[float, float]]:
    """Each span's (start, end) in ms after T0."""
    ms = lambda t: (t - T0) / pd.Timedelta(milliseconds=1)  # noqa: E731
    rows = zip(*(result.spans[c] for c in ("span_id", "start_time", "end_time")), strict=True)
    return {i: (ms(a), ms(b)) for i, a, b in rows}


REPORTED = ["span_id", "host", "parent_host", "delta_ms", "applied", "inherited"]


@pytest.mark.parametrize(
    ("tags", "host"),
    [
        ({"host.id": "i-1", "host.ip": "10.0.0.1", "host.name": "web-1"}, "i-1"),
        ({"host.ip": "10.0.0.1", "host.name": "web-1"}, "10.0.0.1"),
        ({"host.ip": ["10.0.0.2", "10.0.0.3"], "host.name": "web-1"}, "10.0.0.2"),
        ({"host.name": "web-1"}, "web-1"),
        ({"host.id": "", "host.ip": [], "host.name": "web-1"}, "web-1"),
        ({"host.id": None, "host.ip": [""], "host.name": "web-1"}, "web-1"),
        ({"host.id": 42, "host.name": "web-1"}, "42"),
        ('{"host.ip": ["10.0.0.2"], "host.name": "web-1"}', "10.0.0.2"),
        ('{"host.id": "", "host.name": "web-1"}', "web-1"),
        ({"service.name": "api", "host.name": ""}, ""),
        ({}, ""),
        (None, ""),
        ("not json", ""),
    ],
    ids=[
        "host.id beats host.ip and host.name",
        "host.ip beats host.name",
        "a list of host.ip takes its first entry",
        "host.name when it is all there is",
        "an empty id and an empty address list count as absent",
        "a null id and an empty first address count as absent",
        "a numeric id is read as text",
        "JSON text tags: a list of addresses takes its first entry",
        "JSON text tags: an empty id counts as absent",
        "no host attribute: unknown, not the service name",
        "no tags: unknown",
        "missing tags: unknown",
        "unreadable tags: unknown",
    ],
)
def test_a_host_is_named_by_id_then_address_then_name(tags, host: str) -> None:
    """The resource attributes Jaeger's adjuster reads, in its order; empty means absent."""
    frame = spans([("A", None, 0, 10, tags)])
    assert skew.host_of(frame).tolist() == [host]


def test_without_a_tags_column_every_host_is_unknown() -> None:
    """No tags at all: each span is its own unknown host."""
    frame = spans([("A", None, 0, 10, None), ("B", "A", 1, 2, None)]).drop(columns="tags")
    assert skew.host_of(frame).tolist() == ["", ""]


@pytest.mark.parametrize(
    ("parent_tags", "child_tags", "moved"),
    [
        ({"host.id": "m1", "host.name": "web"}, {"host.id": "m2", "host.name": "web"}, True),
        ({"host.id": "m1", "host.name": "a"}, {"host.id": "m1", "host.name": "b"}, False),
        ({"host.ip": ["10.0.0.1", "10.0.0.9"]}, {"host.ip": "10.0.0.1"}, False),
        ({"host.ip": ["10.0.0.9", "10.0.0.1"]}, {"host.ip": "10.0.0.1"}, True),
    ],
    ids=[
        "same host.name but another host.id is another host: corrected",
        "same host.id under another host.name is one host: left alone",
        "a list's first address equal to the child's address is one host",
        "only the first address of a list counts",
    ],
)
def test_the_adjuster_compares_hosts_by_that_rule(parent_tags, child_tags, moved: bool) -> None:
    """Whether a child 40 ms too late is moved depends on the host key alone."""
    frame = spans([("P", None, 0, 100, parent_tags), ("K", "P", 70, 130, child_tags)])
    result = skew.adjust_clock_skew(frame)
    assert moved_to(result)["K"] == ((20, 80) if moved else (70, 130))
    assert result.adjustments["span_id"].tolist() == (["K"] if moved else [])


def test_two_host_less_spans_of_one_service_are_corrected() -> None:
    """Without host attributes each span is its own unknown host (as in Jaeger): a child
    outside its parent is centred in it although both name the same service, and its own
    host-less child is compared with it rather than dragged along."""
    frame = spans(
        [
            ("P", None, 0, 100, {}),
            ("C", "P", 70, 130, {}),  # 60 ms, 40 ms too late: centred at 20..80
            ("G", "C", 25, 35, None),  # fits the adjusted C: stays (inherited: -25..-15)
        ]
    )
    result = skew.adjust_clock_skew(frame)
    assert moved_to(result) == {"P": (0, 100), "C": (20, 80), "G": (25, 35)}
    assert result.adjustments[REPORTED].values.tolist() == [["C", "", "", -50.0, True, False]]
    assert result.adjustments["service_name"].tolist() == ["api"]


def test_a_known_host_under_an_unknown_one_is_compared_too() -> None:
    """An unknown host differs from a known one in either direction."""
    frame = spans([("P", None, 0, 100, None), ("C", "P", -30, 30, {"host.name": "h2"})])
    result = skew.adjust_clock_skew(frame)
    assert moved_to(result)["C"] == (20, 80)
    assert result.adjustments[REPORTED].values.tolist() == [["C", "h2", "", 50.0, True, False]]


def test_every_span_that_moved_with_its_parent_is_listed_as_inherited() -> None:
    """A same-host chain under a corrected span gets one row per span; a span back on the
    parent's host is compared again (here it fits) and not listed."""
    h1, h2 = {"host.name": "h1"}, {"host.name": "h2"}
    frame = spans(
        [
            ("P", None, 0, 100, h1),
            ("B", "P", 70, 130, h2),  # centred at 20..80: -50 ms
            ("C", "B", 80, 120, h2),  # inherits -50: 30..70
            ("D", "C", 90, 110, h2),  # inherits -50: 40..60
            ("E", "D", 45, 55, h1),  # fits the adjusted D: stays
        ]
    )
    result = skew.adjust_clock_skew(frame)
    assert moved_to(result) == {
        "P": (0, 100),
        "B": (20, 80),
        "C": (30, 70),
        "D": (40, 60),
        "E": (45, 55),
    }
    assert result.adjustments[REPORTED].values.tolist() == [
        ["B", "h2", "h1", -50.0, True, False],
        ["C", "h2", "h2", -50.0, True, True],
        ["D", "h2", "h2", -50.0, True, True],
    ]
    refused = skew.adjust_clock_skew(frame, max_skew_ms=10)
    assert refused.adjustments[REPORTED].values.tolist() == [
        ["B", "h2", "h1", -50.0, False, False],
        ["E", "h1", "h2", 50.0, False, False],  # outside the unmoved D: refused too
    ], "a refused shift moves nothing, so nothing inherits it"


def test_the_report_has_the_same_columns_when_empty() -> None:
    """Callers can select the columns whatever happened."""
    frame = spans([("P", None, 0, 100, {"host.name": "h1"})])
    for result in (skew.adjust_clock_skew(frame), skew.adjust_clock_skew(frame, enabled=False)):
        assert result.adjustments.empty
        assert result.adjustments.dtypes.astype(str).to_dict() == {
            "span_id": "str",
            "service_name": "str",
            "host": "str",
            "parent_host": "str",
            "delta_ms": "float64",
            "applied": "bool",
            "inherited": "bool",
        }


# A parent 0..100 ms on h1; K (h2) 40 ms too late is moved by -50 ms; its child L (h2)
# inherits the shift. Events: one readable time, one without a time, one unreadable.
def _with_events(k_events: object, l_events: object, p_events: object) -> pd.DataFrame:
    h1, h2 = {"host.name": "h1"}, {"host.name": "h2"}
    return spans(
        [("P", None, 0, 100, h1), ("K", "P", 70, 130, h2), ("L", "K", 80, 90, h2)],
        logs=[p_events, k_events, l_events],
    )


EVENTS = [
    {"timestamp": "2026-11-14T14:00:00.100000+00:00", "event": "error", "message": "boom"},
    {"event": "no time"},
    {"timestamp": "not a time", "event": "odd"},
]
SHIFTED = [
    {"timestamp": "2026-11-14T14:00:00.050000+00:00", "event": "error", "message": "boom"},
    {"event": "no time"},
    {"timestamp": "not a time", "event": "odd"},
]


def test_events_move_with_their_span_as_lists() -> None:
    """Lists of event dicts come back as new lists, times moved by the span's shift (its
    inherited shift included); the input frame and its objects are unchanged."""
    p_events = [{"timestamp": "2026-11-14T14:00:00.100000+00:00", "event": "start"}]
    frame = _with_events(copy.deepcopy(EVENTS), copy.deepcopy(EVENTS[:1]), p_events)
    before = copy.deepcopy(frame["logs"].tolist())
    originals = frame["logs"].tolist()
    result = skew.adjust_clock_skew(frame)
    logs = dict(zip(result.spans["span_id"], result.spans["logs"], strict=True))
    assert logs == {"P": p_events, "K": SHIFTED, "L": SHIFTED[:1]}
    assert frame["logs"].tolist() == before, "the input's events are not mutated"
    assert all(a is b for a, b in zip(frame["logs"], originals, strict=True))
    assert logs["P"] is p_events, "an unshifted span's events are left as they are"


def test_events_move_with_their_span_as_json_text() -> None:
    """JSON text comes back as JSON text of the moved events, in the column's dtype."""
    frame = _with_events(json.dumps(EVENTS), "[]", json.dumps([]))
    frame["logs"] = frame["logs"].astype("str")
    before = frame["logs"].tolist()
    result = skew.adjust_clock_skew(frame)
    logs = dict(zip(result.spans["span_id"], result.spans["logs"], strict=True))
    assert isinstance(logs["K"], str) and json.loads(logs["K"]) == SHIFTED
    assert logs["L"] == "[]" and logs["P"] == "[]"
    assert result.spans["logs"].dtype == frame["logs"].dtype
    assert frame["logs"].tolist() == before


@pytest.mark.parametrize(
    ("stamp", "shifted"),
    [
        ("2026-11-14T14:00:00.100000+00:00", "2026-11-14T14:00:00.050000+00:00"),
        ("2026-11-14T15:00:00.100000+01:00", "2026-11-14T14:00:00.050000+00:00"),
        ("2026-11-14T14:00:00.1Z", "2026-11-14T14:00:00.050000Z"),
        ("2026-11-14T14:00:00.100000123+00:00", "2026-11-14T14:00:00.050000123+00:00"),
        ("2026-11-14 14:00:00+00:00", "2026-11-14T13:59:59.950000+00:00"),
        ("2026-11-14T14:00:00", "2026-11-14T13:59:59.950000"),
        ("yesterday", "yesterday"),
        ("2026-13-14T14:00:00Z", "2026-13-14T14:00:00Z"),
        ("2026-11-14", "2026-11-14"),
        (1_794_664_800_100_000, 1_794_664_800_100_000),
        (None, None),
    ],
    ids=[
        "UTC with microseconds",
        "another offset comes back in UTC",
        "Z and a short fraction keep the Z, with microseconds",
        "nanosecond digits are kept",
        "a space separator, across a second",
        "a time without offset stays without one",
        "a word is left as it is",
        "month 13 is left as it is",
        "a date without a time is left as it is",
        "a number is left as it is",
        "a null is left as it is",
    ],
)
def test_event_times_are_moved_in_iso_8601(stamp, shifted) -> None:
    """ISO-8601 times move by exactly the span's shift (-50 ms); anything else stays."""
    frame = _with_events([{"timestamp": stamp, "event": "e"}], [], [])
    result = skew.adjust_clock_skew(frame)
    k = result.spans.set_index("span_id").loc["K", "logs"]
    assert k == [{"timestamp": shifted, "event": "e"}]


@pytest.mark.parametrize(
    "events",
    [[], "[]", None, "not json", '{"timestamp": "2026-11-14T14:00:00Z"}', ["text", 3]],
    ids=[
        "no events",
        "no events as JSON text",
        "a null",
        "unreadable text",
        "JSON text that is not a list",
        "a list of things that are not events",
    ],
)
def test_a_shifted_span_without_readable_events_keeps_them(events) -> None:
    """Nothing to move: the span moves, its events column is returned as it was."""
    frame = _with_events(copy.deepcopy(events), [], [])
    result = skew.adjust_clock_skew(frame)
    assert moved_to(result)["K"] == (20, 80)
    assert result.spans.set_index("span_id").loc["K", "logs"] == events


def test_a_refused_shift_moves_no_events() -> None:
    """Above max_skew_ms the span stays, and so do its events."""
    frame = _with_events(copy.deepcopy(EVENTS), [], [])
    result = skew.adjust_clock_skew(frame, max_skew_ms=10)
    assert result.spans.set_index("span_id").loc["K", "logs"] == EVENTS
