"""obslib.traces.logs on hand-built records: the most frequent error messages of a window.

(The joins of records to their trace's spans run on the demo in ``test_trace_sets.py``.)
"""

from __future__ import annotations

import pandas as pd
import pytest

from obslib.errors import InputError
from obslib.traces import logs

T0 = pd.Timestamp("2026-11-14 14:00", tz="UTC")
COLUMNS = ["service_name", "message", "records", "first", "last"]


def records(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (seconds after T0, level, service, message) as a logs frame."""
    return pd.DataFrame(
        {
            "timestamp": [T0 + pd.Timedelta(seconds=r[0]) for r in rows],
            "level": [r[1] for r in rows],
            "service_name": [r[2] for r in rows],
            "message": [r[3] for r in rows],
        },
        columns=["timestamp", "level", "service_name", "message"],
    )


@pytest.mark.parametrize(
    ("rows", "n", "expected"),
    [
        (
            [(0, "error", "api", "pool"), (5, "fatal", "api", "pool"), (9, "warn", "api", "pool"),
             (1, "info", "api", "ok"), (2, "error", "db", "lock")],
            10,
            [("api", "pool", 2, 0, 5), ("db", "lock", 1, 2, 2)],
        ),
        (
            [(30, "error", "api", "late"), (10, "error", "db", "early"),
             (40, "error", "web", "most"), (41, "error", "web", "most")],
            10,
            [("web", "most", 2, 40, 41), ("db", "early", 1, 10, 10), ("api", "late", 1, 30, 30)],
        ),
        (
            [(0, "error", "api", "timeout"), (1, "error", "db", "timeout")],
            10,
            [("api", "timeout", 1, 0, 0), ("db", "timeout", 1, 1, 1)],
        ),
        (
            [(0, "error", "api", "a"), (1, "error", "api", "a"), (2, "error", "api", "b"),
             (3, "error", "api", "c")],
            2,
            [("api", "a", 2, 0, 1), ("api", "b", 1, 2, 2)],
        ),
        ([(0, "warn", "api", "slow"), (1, "info", "api", "ok")], 10, []),
        ([], 10, []),
    ],
    ids=[
        "error and fatal records count, warn and info do not",
        "most records first, a tie going to the message seen first",
        "one message in two services is two rows",
        "only the n most frequent are kept",
        "no error record is an empty frame with the columns",
        "no record at all is an empty frame with the columns",
    ],
)  # fmt: skip
def test_top_errors_are_the_most_repeated_error_messages(rows, n, expected) -> None:
    got = logs.top_errors(records(rows), n)
    assert list(got.columns) == COLUMNS
    seconds = pd.Timedelta(seconds=1)
    assert [
        (s, m, r, (first - T0) // seconds, (last - T0) // seconds)
        for s, m, r, first, last in got.itertuples(index=False)
    ] == expected


def test_top_errors_refuse_records_without_levels() -> None:
    with pytest.raises(InputError, match=r"logs frame lacks column.*: level"):
        logs.top_errors(records([(0, "error", "api", "x")]).drop(columns="level"))
