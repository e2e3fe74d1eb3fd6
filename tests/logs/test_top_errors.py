"""The postmortem's top error templates beside the same hours the day before
(``logs.top_error_templates(before=...)``): the count then, and ``new`` when there was none."""

from __future__ import annotations

import pandas as pd
import pytest

from obslib import logs
from obslib.logs.templates import TEMPLATE_COLUMNS

T0 = pd.Timestamp("2026-11-14 14:00", tz="UTC")
DAY = pd.Timedelta(days=1)
ZERO = pd.Timedelta(0)


def records(rows: list[tuple[int, str, str, str]], shift: pd.Timedelta = ZERO):
    """(minute, level, service, message) rows as a logs frame."""
    return pd.DataFrame(
        [(T0 + pd.Timedelta(minutes=m) - shift, lvl, svc, msg) for m, lvl, svc, msg in rows],
        columns=["timestamp", "level", "service_name", "message"],
    )


NOW = records(
    [
        (1, "error", "db", "pool checkout timed out after 372 ms"),
        (2, "error", "db", "pool checkout timed out after 15 ms"),
        (3, "error", "db", "pool checkout timed out after 9 ms"),
        (4, "error", "api", "upstream 503 from db"),
        (5, "error", "api", "upstream 502 from db"),
        (6, "warn", "api", "slow request 1200 ms"),
    ]
)


@pytest.mark.parametrize(
    ("name", "before", "expected"),
    [
        ("a template absent the day before is new", [], [(0, True), (0, True)]),
        (
            "a template seen the day before carries its count and is not new",
            [(1, "error", "api", "upstream 500 from db")] * 3,
            [(0, True), (3, False)],
        ),
        (
            "the same words in another service do not count for it",
            [(1, "error", "api", "pool checkout timed out after 1 ms")],
            [(0, True), (0, True)],
        ),
        (
            "a warning the day before is not an error then",
            [(1, "warn", "db", "pool checkout timed out after 1 ms")],
            [(0, True), (0, True)],
        ),
    ],
)
def test_top_error_templates_beside_the_day_before(name, before, expected):
    top = logs.top_error_templates(NOW, 10, before=records(before, DAY))
    assert list(top["service_name"]) == ["db", "api"], name  # most frequent first
    got = list(zip(top["records_day_before"].astype(int), top["new"].astype(bool), strict=True))
    assert got == expected, name


def test_without_the_day_before_the_columns_stay_as_they_were():
    top = logs.top_error_templates(NOW, 1)
    assert list(top.columns) == list(TEMPLATE_COLUMNS)
    assert top["records"].tolist() == [3]


def test_no_error_in_the_window_is_an_empty_frame_with_the_day_before_columns():
    top = logs.top_error_templates(NOW[NOW["level"] == "warn"], 10, before=NOW)
    assert top.empty and {"records_day_before", "new"} <= set(top.columns)
