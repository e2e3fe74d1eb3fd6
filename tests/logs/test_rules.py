"""Log rules: the two kinds parsed from their expressions, and when each fires
(obslib.logs.rules.replay): boundaries on small frames."""

from __future__ import annotations

import pandas as pd
import pytest

from obslib.errors import InputError
from obslib.logs import rules

T0 = pd.Timestamp("2026-11-14 12:00", tz="UTC")

PARSED = [
    ("a named template over ten minutes",
     'template "x <NUM>" at level >= error more than 5 times in 10m',
     dict(kind=rules.COUNT, template="x <NUM>", level="error", threshold=5,
          window=pd.Timedelta(minutes=10))),
    ("any template, one time",
     "any template at level >= warn more than 1 time in 1h",
     dict(kind=rules.COUNT, template=None, level="warn", threshold=1,
          window=pd.Timedelta(hours=1))),
    ("a quote inside a template is escaped",
     r'template "say \"hi\"" at level >= error more than 0 times in 5m',
     dict(template='say "hi"')),
    ("a new template unseen for seven days",
     "new template at level >= error in 10m, not seen in the previous 7d",
     dict(kind=rules.NEW, level="error", window=pd.Timedelta(minutes=10),
          unseen=pd.Timedelta(days=7))),
]  # fmt: skip


@pytest.mark.parametrize(("text", "fields"), [p[1:] for p in PARSED], ids=[p[0] for p in PARSED])
def test_an_expression_parses_to_its_rule(text: str, fields: dict) -> None:
    """Each expression gives those fields, and the rule writes itself back the same way."""
    rule = rules.parse(text, alert_name="a", service_name="s")
    for name, value in fields.items():
        assert getattr(rule, name) == value
    assert rules.parse(rule.text()) == rules.parse(text)


BAD = [
    ("an unknown shape", "errors > 5"),
    ("an unknown level", "any template at level >= loud more than 1 times in 10m"),
    ("a window in seconds", "any template at level >= error more than 1 times in 30s"),
    ("no window", "new template at level >= error in 10m, not seen in the previous week"),
]


@pytest.mark.parametrize("text", [b[1] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_expression_is_refused_naming_the_alert(text: str) -> None:
    """A rule that cannot be read is refused in one line naming its alert."""
    with pytest.raises(InputError, match="log rule 'broken'"):
        rules.parse(text, alert_name="broken")


def records(minutes, message="x 1", level="error", service="s") -> pd.DataFrame:
    """One record per minute offset from T0 (seconds allowed), all alike."""
    return pd.DataFrame(
        {
            "timestamp": [T0 + pd.Timedelta(minutes=m) for m in minutes],
            "level": level,
            "service_name": service,
            "message": message,
        }
    )


def count_rule(n: int = 2, window: str = "10m", template: str | None = "x <NUM>"):
    which = "any template" if template is None else f'template "{template}"'
    text = f"{which} at level >= error more than {n} times in {window}"
    return rules.parse(text, alert_name="burst", service_name="s")


def firings(logs, rule, start="2026-11-14 11:00", end="2026-11-14 13:00", **kw) -> list:
    got = rules.replay(logs, [rule], start, end, **kw).firings
    return [(f["start"], f["end"]) for f in got.to_dict("records")]


def at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def test_a_count_rule_fires_above_its_threshold_not_at_it() -> None:
    """Two records in the window are not "more than 2"; a third fires."""
    assert firings(records([0, 1]), count_rule(2)) == []
    got = firings(records([0, 1, 2]), count_rule(2))
    # the third record (12:02) counts from the instant 12:03 until the first leaves the
    # window [t - 10m, t): at 12:10 the window starts at 12:00 and still holds it
    assert got == [(at(3), at(11))]


def test_a_count_rule_window_is_half_open() -> None:
    """A record exactly W before the instant is in the window; the instant's own minute is
    not yet counted."""
    assert firings(records([0, 0.5, 9.9]), count_rule(2)) == [(at(10), at(11))]


def test_a_count_rule_reads_only_its_service_level_and_template() -> None:
    """Warnings, other services and other templates do not count."""
    logs = pd.concat(
        [
            records([0, 1]),
            records([2], level="warn"),
            records([2], service="t"),
            records([2], message="y 1"),
        ]
    )
    assert firings(logs, count_rule(2)) == []
    assert len(firings(pd.concat([logs, records([3], level="fatal")]), count_rule(2))) == 1


def test_any_template_fires_per_template() -> None:
    """Two templates each above the threshold are two firings."""
    logs = pd.concat([records([0, 1]), records([0, 1], message="y 2")])
    got = rules.replay(logs, [count_rule(1, template=None)], "2026-11-14 11:00", "2026-11-14 13:00")
    assert sorted(got.firings["template"]) == ["x <NUM>", "y <NUM>"]


def test_a_firing_on_at_the_end_has_no_end() -> None:
    """Still firing at the replay's end: end is NaT, and it is active."""
    got = rules.replay(records([0, 1, 2]), [count_rule(2)], "2026-11-14 11:00", at(5))
    assert got.firings["end"].isna().all() and len(got.active()) == 1


NEW = "new template at level >= error in 10m, not seen in the previous 7d"
WEEK = 7 * 24 * 60


def new_rule():
    return rules.parse(NEW, alert_name="new", service_name="s")


def history(minutes_before: float) -> pd.DataFrame:
    """The template once, ``minutes_before`` T0, then at T0; data from two weeks back."""
    older = records([-2 * WEEK], message="other")
    return pd.concat([older, records([-minutes_before, 0])])


def test_a_template_unseen_for_seven_days_is_new_for_its_window() -> None:
    """Last seen 7 days and a minute before the window: new from the next instant for 10
    minutes."""
    got = firings(history(WEEK + 11), new_rule())
    assert got == [(at(1), at(11))]


def test_a_template_seen_within_seven_days_is_not_new() -> None:
    """Seen exactly 7 days before: whatever the instant, that record is in the 7 days
    before its window; a minute more and the last instant of the window finds it new."""
    assert firings(history(WEEK), new_rule()) == []
    assert firings(history(WEEK + 1), new_rule()) == [(at(10), at(11))]


def test_without_seven_days_of_history_nothing_is_new() -> None:
    """On the first week of data every template would be new: not judged."""
    assert firings(records([0]), new_rule()) == []
    assert firings(records([0]), new_rule(), data_start=at(-WEEK - 10)) == [(at(1), at(11))]
