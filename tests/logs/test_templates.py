"""Message templates: the masking table, counts per service and template, and the change
against the day before (obslib.logs.templates)."""

from __future__ import annotations

import pandas as pd
import pytest

from obslib import logs
from obslib.logs.templates import TEMPLATE_COLUMNS

TABLE = [
    ("a message without variables stays as it is",
     "evicted keys under memory pressure", "evicted keys under memory pressure"),
    ("a duration with a space is one placeholder",
     "timed out waiting for a connection after 500 ms",
     "timed out waiting for a connection after <DURATION>"),
    ("a duration without a space too",
     "retry 3 of 5 took 1500ms", "retry <NUM> of <NUM> took <DURATION>"),
    ("a decimal duration in seconds",
     "waited 2.5s for lock", "waited <DURATION> for lock"),
    ("a duration in words", "took 12 minutes", "took <DURATION>"),
    ("an IP with a port, the sentence's full stop kept",
     "user 1234 logged in from 10.0.0.1:5432.", "user <NUM> logged in from <IP>."),
    ("trace and span ids are hex",
     "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7", "trace <HEX> span <HEX>"),
    ("a UUID is one placeholder, not five",
     "request 550e8400-e29b-41d4-a716-446655440000 failed", "request <UUID> failed"),
    ("quoted values are masked whatever they hold",
     "no such user 'alice' in \"prod\"", "no such user <QUOTED> in <QUOTED>"),
    ("in key=value only the value is masked",
     "pool=domains host=domain-service-6f4a-1 busy=50/50",
     "pool=domains host=<ID> busy=<NUM>/<NUM>"),
    ("versions and hosts with digits are ids",
     "deploy started: domain-service v1.4.2 -> v1.5.0",
     "deploy started: domain-service <ID> -> <ID>"),
    ("a short API version in a path is kept, the id after it masked",
     "GET /api/v1/domains/12345 failed", "GET /api/v1/domains/<NUM> failed"),
    ("a short version alone is kept, two digits too",
     "client speaks v2 and V10 only", "client speaks v2 and V10 only"),
    ("a version of three digits is an id", "build v123 broken", "build <ID> broken"),
    ("a version with a suffix or inside a word is an id",
     "v1-beta on nodev1 at v1.2", "<ID> on <ID> at <ID>"),
    ("a negative number", "errno -2", "errno <NUM>"),
    ("a hex word without digits is a word", "cafebabe deadbeef", "cafebabe deadbeef"),
    ("runs of white space become one space", "a  b\tc\n d", "a b c d"),
    ("the demo's new error template",
     "pool checkout timed out after 372 ms: 64/64 connections in use"
     " (pool=domains-rw host=domain-service-6f4a-0 span=44d1dd45c6094af9)",
     "pool checkout timed out after <DURATION>: <NUM>/<NUM> connections in use"
     " (pool=domains-rw host=<ID> span=<HEX>)"),
]  # fmt: skip


@pytest.mark.parametrize(("message", "expected"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE])
def test_a_message_gives_its_template(message: str, expected: str) -> None:
    """Each message of the table gives the template beside it."""
    assert logs.template_of(message) == expected


def records(rows) -> pd.DataFrame:
    """Log records from (minute, level, service, message) rows."""
    base = pd.Timestamp("2026-11-14 12:00", tz="UTC")
    return pd.DataFrame(
        [
            (base + pd.Timedelta(minutes=m), level, service, message)
            for m, level, service, message in rows
        ],
        columns=["timestamp", "level", "service_name", "message"],
    )


def test_fifty_copies_of_one_line_are_one_template_with_a_sample() -> None:
    """Messages differing only in variable parts count as one template, the first kept."""
    got = logs.template_counts(
        records([(i, "error", "api", f"call {i} failed after {10 * i} ms") for i in range(50)])
    )
    assert got[["template", "records"]].values.tolist() == [
        ["call <NUM> failed after <DURATION>", 50]
    ]
    assert got["sample"].iloc[0] == "call 0 failed after 0 ms"


def test_counts_are_per_service_and_template_most_first() -> None:
    """The same template in two services is two rows; ties go to the one seen first."""
    got = logs.template_counts(
        records(
            [
                (0, "error", "b", "x 1"),
                (1, "error", "a", "x 2"),
                (2, "error", "a", "x 3"),
                (3, "warn", "b", "y"),
            ]
        )
    )
    assert got[["service_name", "template", "records", "level"]].values.tolist() == [
        ["a", "x <NUM>", 2, "error"],
        ["b", "x <NUM>", 1, "error"],
        ["b", "y", 1, "warn"],
    ]


def test_top_error_templates_read_error_and_fatal_only() -> None:
    """A warning is no error template; fatal is."""
    got = logs.top_error_templates(
        records([(0, "warn", "a", "slow 1"), (1, "fatal", "a", "dead 2"), (2, "error", "a", "e")])
    )
    assert sorted(got["template"]) == ["dead <NUM>", "e"]


def test_change_against_the_day_before_marks_new_templates() -> None:
    """A template absent the day before is new; the biggest rise comes first."""
    now = records(
        [(0, "error", "a", "old 1"), (1, "error", "a", "new 1"), (2, "error", "a", "new 2")]
    )
    before = records([(0, "error", "a", "old 9"), (5, "error", "a", "gone 1")])
    got = logs.template_change(now, before)
    assert got[["template", "records", "records_day_before", "change", "new"]].values.tolist() == [
        ["new <NUM>", 2, 0, 2, True],
        ["old <NUM>", 1, 1, 0, False],
    ]


def test_no_records_give_empty_frames_with_the_columns() -> None:
    """Nothing to count is an empty frame, not a KeyError."""
    empty = records([])
    assert list(logs.template_counts(empty).columns) == list(TEMPLATE_COLUMNS)
    assert logs.template_change(empty, empty).empty
