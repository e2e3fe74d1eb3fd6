"""Alertmanager's time intervals (the ``time_intervals`` and older ``mute_time_intervals``
sections of an alertmanager.yml): read with the document path of every problem, and asked
whether they contain an instant. Follows Alertmanager 0.25's ``timeinterval/timeinterval.go``
(parsing and ``ContainsTime``) and ``config/config.go`` (the named lists). Pure."""

from __future__ import annotations

import calendar
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from obslib.errors import InputError

INTERVAL_KEYS = frozenset({"times", "weekdays", "days_of_month", "months", "years", "location"})
NAMED_KEYS = frozenset({"name", "time_intervals"})
TIME_KEYS = frozenset({"start_time", "end_time"})
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTHS = (
    *("january", "february", "march", "april", "may", "june"),
    *("july", "august", "september", "october", "november", "december"),
)
_TIME = re.compile(r"(?:([01][0-9]|2[0-3]):([0-5][0-9])|(24):(00))\Z")  # timeinterval.validTime

Range = tuple[int, int]  # inclusive, as timeinterval.InclusiveRange


@dataclass(frozen=True)
class TimeInterval:
    """One entry of a named interval: it contains an instant when every field given
    contains it (``None``: the field was not given and contains everything; an empty tuple
    contains nothing). ``times`` are ``[start, end)`` minutes of the day; weekdays count
    from Sunday = 0; negative days of the month count from its end (-1 is the last day);
    ``location``: the IANA zone the fields are read in."""

    times: tuple[Range, ...] | None = None
    weekdays: tuple[Range, ...] | None = None
    days_of_month: tuple[Range, ...] | None = None
    months: tuple[Range, ...] | None = None
    years: tuple[Range, ...] | None = None
    location: str = "UTC"

    def contains(self, at: datetime) -> bool:
        """timeinterval.go ``ContainsTime``: ``at`` (timezone-aware) read in ``location``."""
        t = at.astimezone(_zone(self.location))
        minute = t.hour * 60 + t.minute
        if self.times is not None and not any(s <= minute < e for s, e in self.times):
            return False
        if self.days_of_month is not None and not _in_days_of_month(t, self.days_of_month):
            return False
        if self.months is not None and not any(b <= t.month <= e for b, e in self.months):
            return False
        weekday = (t.weekday() + 1) % 7  # Go's time.Weekday: Sunday = 0
        if self.weekdays is not None and not any(b <= weekday <= e for b, e in self.weekdays):
            return False
        return self.years is None or any(b <= t.year <= e for b, e in self.years)


def _in_days_of_month(t: datetime, ranges: tuple[Range, ...]) -> bool:
    """A negative day counts from the month's end; a range starting past the month's last
    day is skipped and the others are clamped to the month (as ContainsTime does)."""
    days = calendar.monthrange(t.year, t.month)[1]
    for begin, end in ranges:
        begin = days + begin + 1 if begin < 0 else begin
        end = days + end + 1 if end < 0 else end
        if begin > days:
            continue
        begin, end = (min(max(n, -days), days) for n in (begin, end))
        if begin <= t.day <= end:
            return True
    return False


def contains_any(intervals: tuple[TimeInterval, ...], at: datetime) -> bool:
    """A named time interval is active when any of its entries contains the instant
    (notify.go ``inTimeIntervals``)."""
    return any(ti.contains(at) for ti in intervals)


_ZONES: dict[str, zoneinfo.ZoneInfo] = {}


def _zone(name: str):
    if name == "UTC":
        return UTC
    if name not in _ZONES:
        _ZONES[name] = zoneinfo.ZoneInfo(name)
    return _ZONES[name]


Fail = Callable[[str, str], InputError]


def _known_keys(node: Mapping, allowed, at: str, fail: Fail) -> None:
    """Refuses the first key (in sorted order) that is not in ``allowed``."""
    unknown = sorted(str(k) for k in node if k not in allowed)
    if unknown:
        raise fail(f"{at}.{unknown[0]}", "unknown key")


def _text(value: object, at: str, fail: Fail) -> str:
    """A scalar as Go's yaml.v2 reads it into a string field (numbers by their text)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise fail(at, f"must be a string, not {value!r}")
    return str(value).lower()


def _member(text: str, names: tuple[str, ...] | list[str], first: int) -> int | None:
    if text in names:
        return names.index(text) + first
    return int(text) if re.fullmatch(r"[-+]?\d+", text) else None


def _range(value: object, at: str, fail: Fail, parse: Callable[[str], int | None]) -> Range:
    """``a`` or ``a:b`` (stringableRangeFromString): each end through ``parse``."""
    text = _text(value, at, fail)
    parts = text.split(":")
    if len(parts) > 2:
        raise fail(at, f"not a range: {text!r} (one value, or start:end)")
    ends = [parse(p) for p in parts]
    if None in ends:
        raise fail(at, f"not a valid value: {text!r}")
    return ends[0], ends[-1]


def _weekdays(value: object, at: str, fail: Fail) -> Range:
    begin, end = _range(value, at, fail, lambda p: WEEKDAYS.index(p) if p in WEEKDAYS else None)
    if begin > end:
        raise fail(at, f"{value!r}: the start day is after the end day")
    return begin, end


def _days_of_month(value: object, at: str, fail: Fail) -> Range:
    """DayOfMonthRange.UnmarshalYAML: 1..31 or -31..-1, a negative start needs a negative
    end, and a range always empty (in a 28-day month's terms) is refused."""
    begin, end = _range(value, at, fail, lambda p: _member(p, (), 0))
    for n in (begin, end):
        if n == 0 or not -31 <= n <= 31:
            raise fail(at, f"{n} is not a day of the month (1 to 31, or -31 to -1)")
    if begin < 0 < end:
        raise fail(at, f"{value!r}: the end day must be negative if the start day is")
    if (28 + begin if begin < 0 else begin) > (28 + end if end < 0 else end):
        raise fail(at, f"{value!r}: the end day is always before the start day")
    return begin, end


def _months(value: object, at: str, fail: Fail) -> Range:
    begin, end = _range(value, at, fail, lambda p: _member(p, MONTHS, 1))
    for n in (begin, end):
        if not 1 <= n <= 12:  # Alertmanager 0.25 accepts 13 (it never matches); obslib refuses
            raise fail(at, f"{n} is not a month (1 to 12, or january to december)")
    if begin > end:
        raise fail(at, f"{value!r}: the end month is before the start month")
    return begin, end


def _years(value: object, at: str, fail: Fail) -> Range:
    begin, end = _range(value, at, fail, lambda p: _member(p, (), 0))
    if begin > end:
        raise fail(at, f"{value!r}: the end year is before the start year")
    return begin, end


def _minute(value: object, at: str, fail: Fail) -> int:
    """``HH:MM`` from 00:00 to 24:00 (timeinterval.go ``parseTime``)."""
    found = _TIME.match(value) if isinstance(value, str) else None
    if found is None:
        raise fail(at, f"not a time of day: {value!r} (HH:MM, 00:00 to 24:00)")
    hours, minutes = (int(g) for g in found.groups() if g is not None)
    return hours * 60 + minutes


def _times(value: object, at: str, fail: Fail) -> Range:
    if not isinstance(value, Mapping):
        raise fail(at, "must be a mapping with start_time and end_time")
    _known_keys(value, TIME_KEYS, at, fail)
    if not value.get("start_time") or not value.get("end_time"):
        raise fail(at, "both start_time and end_time must be given")
    start = _minute(value["start_time"], f"{at}.start_time", fail)
    end = _minute(value["end_time"], f"{at}.end_time", fail)
    if start >= end:
        raise fail(at, "start_time must be before end_time (the end is exclusive)")
    return start, end


def _location(value: object, at: str, fail: Fail) -> str:
    """An IANA zone name from the local tz database (Go's ``time.LoadLocation``: empty is
    UTC; obslib refuses ``Local``, the zone of whatever machine runs the replay)."""
    if value is None or value == "":
        return "UTC"
    if not isinstance(value, str) or value == "Local":
        raise fail(at, f"not a time zone: {value!r} (an IANA name like Europe/Paris)")
    try:
        _zone(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise fail(at, f"unknown time zone: {value!r} (an IANA name like Europe/Paris)") from None
    return value


_FIELDS = {
    "times": _times,
    "weekdays": _weekdays,
    "days_of_month": _days_of_month,
    "months": _months,
    "years": _years,
}


def parse_interval(node: object, at: str, fail: Fail) -> TimeInterval:
    """One entry of a named interval's ``time_intervals`` list."""
    if not isinstance(node, Mapping):
        raise fail(at, "must be a mapping (times, weekdays, days_of_month, months, …)")
    _known_keys(node, INTERVAL_KEYS, at, fail)
    zone = _location(node.get("location"), f"{at}.location", fail)
    fields: dict[str, object] = {"location": zone}
    for key, parse in _FIELDS.items():
        given = node.get(key)
        if given is None:
            continue
        if not isinstance(given, list):
            raise fail(f"{at}.{key}", "must be a list")
        fields[key] = tuple(parse(v, f"{at}.{key}[{k}]", fail) for k, v in enumerate(given))
    return TimeInterval(**fields)


def parse_named(doc: Mapping, fail: Fail) -> dict[str, tuple[TimeInterval, ...]]:
    """The top-level ``mute_time_intervals`` (deprecated) then ``time_intervals``: each a
    list of ``{name, time_intervals: [...]}``; a name defined twice, in either, is refused
    (config.go)."""
    named: dict[str, tuple[TimeInterval, ...]] = {}
    for section in ("mute_time_intervals", "time_intervals"):
        listed = doc.get(section) or []
        if not isinstance(listed, list):
            raise fail(section, "must be a list of named time intervals")
        for k, node in enumerate(listed):
            at = f"{section}[{k}]"
            if not isinstance(node, Mapping):
                raise fail(at, "must be a mapping with name and time_intervals")
            _known_keys(node, NAMED_KEYS, at, fail)
            name = node.get("name")
            if not isinstance(name, str) or not name:
                raise fail(f"{at}.name", "missing")
            if name in named:
                raise fail(f"{at}.name", f"time interval {name!r} is defined twice")
            entries = node.get("time_intervals") or []
            if not isinstance(entries, list):
                raise fail(f"{at}.time_intervals", "must be a list")
            named[name] = tuple(
                parse_interval(e, f"{at}.time_intervals[{j}]", fail) for j, e in enumerate(entries)
            )
    return named
