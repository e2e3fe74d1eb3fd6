"""Values people type, parsed one way everywhere: UTC moments, durations and booleans.

The bottom layer: the CLI, report parameters, loaders, writers and analysis all parse
"2026-11-14 14:05", "30d" and "false" here, so they cannot disagree about them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pandas as pd

from obslib.errors import UsageError

Moment = datetime | pd.Timestamp | str

# The moments a person may ask about: telemetry before the Unix epoch is refused on import
# (ingest.records.unix_ns), and pandas' nanosecond times end in April 2262, so a window (and
# the day before it, which the trace views compare with) must fit between these. The import
# limit is what can be stored (to 2262-04-11, the last nanosecond); this one stops ~100 days
# earlier on purpose, leaving room for the windows and margins computed from a moment.
EARLIEST = pd.Timestamp("1970-01-01", tz="UTC")
LATEST = pd.Timestamp("2262-01-01", tz="UTC")

TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")


def utc(value: Moment, name: str = "time") -> pd.Timestamp:
    """A moment as a tz-aware UTC Timestamp; naive input is taken as UTC.

    Raises UsageError naming ``name`` (the parameter) when the value is not a time.
    """
    if not isinstance(value, str | datetime):  # pd.Timestamp(5) would be 1970-01-01
        raise UsageError(f"{name} is not a time: {value!r}")
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as err:
        raise UsageError(f"{name} is not a time: {value!r}") from err
    if stamp is pd.NaT:
        raise UsageError(f"{name} is not a time: {value!r}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def moment(value: Moment, name: str = "time") -> pd.Timestamp:
    """A moment a person asked about, as ``utc`` parses it, refused (UsageError naming
    ``name``) outside EARLIEST..LATEST: "0001-01-01" or "9999-12-31" is a typo, and
    arithmetic on it (a window back, the day before) would fail later, far from the cause."""
    stamp = utc(value, name)
    if not EARLIEST <= stamp < LATEST:
        raise UsageError(
            f"{name} {str(value)[:40]!r} is outside the times obslib holds"
            f" ({EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d})"
        )
    return stamp


def window(
    start: Moment | None, end: Moment | None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``[start, end)`` as UTC Timestamps (an open side stays None); a UsageError when both
    are given and end is not after start, the one message every caller shows."""
    lo = None if start is None else moment(start, "start")
    hi = None if end is None else moment(end, "end")
    if lo is not None and hi is not None and hi <= lo:
        raise UsageError(
            f"empty time window: end {hi.isoformat()} is not after start {lo.isoformat()}"
        )
    return lo, hi


def duration(text: str) -> pd.Timedelta:
    """Parse "30d", "6h", "5min" (pandas wants days as "D"; people write "d").

    Raises ValueError for text that is not a duration ("nan" and "NaT" included: pandas
    reads them as a missing duration); callers name the parameter.
    """
    length = pd.Timedelta(re.sub(r"(?<=\d)d\b", "D", str(text).strip()))
    if length is pd.NaT:
        raise ValueError(f"{text!r} is not a duration")
    return length


def positive_duration(text: str | pd.Timedelta, name: str = "window") -> pd.Timedelta:
    """A positive duration a person gave ("30d", "5min", or a Timedelta): a UsageError naming
    ``name`` otherwise, the one message every window, period, bucket and report parameter
    shows for a bad duration."""
    try:
        length = text if isinstance(text, pd.Timedelta) else duration(text)
    except ValueError:
        length = None
    if length is None or length is pd.NaT or length <= pd.Timedelta(0):
        raise UsageError(f"{name} must be a positive duration (e.g. 30d, 12h, 5min), not {text!r}")
    return length


def count(value: Any, name: str) -> int:
    """A whole number >= 0 a person gave (a minimum of events, a limit): UsageError naming
    ``name`` otherwise ("-5", "2.5", "nan" and True are refused)."""
    if isinstance(value, bool):
        raise UsageError(f"{name} must be a whole number, not {value!r}")
    try:
        number = int(value) if isinstance(value, int | str) else None
    except ValueError:
        number = None
    if number is None and isinstance(value, float) and value.is_integer():
        number = int(value)
    if number is None:
        raise UsageError(f"{name} must be a whole number, not {value!r}")
    if number < 0:
        raise UsageError(f"{name} must be 0 or more, not {number}")
    return number


def boolean(value: Any) -> bool:
    """Booleans as people and files spell them: "false" is False (``bool("false")`` is True).

    Raises ValueError for text that is neither.
    """
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in TRUE_WORDS or lowered in FALSE_WORDS:
            return lowered in TRUE_WORDS
        raise ValueError(f"{value!r} is not a boolean")
    return bool(value)
