"""Values people type, parsed one way everywhere: UTC moments, durations and booleans.

The bottom layer: the CLI, report parameters, loaders, writers and analysis all parse
"2026-11-14 14:05", "30d" and "false" here, so they cannot disagree about them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
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


# -- durations for reading ------------------------------------------------------------------
# One style everywhere a duration is shown (README, "Durations"): a duration that was
# measured reads in spaced units, the two largest that matter (``850 ms``, ``4.2 s``,
# ``3 min``, ``6 h 12 min``, ``2 d 4 h``); a window a person configures reads as the
# shorthand they type (``30d``, ``1h``, ``5m``), which ``duration`` parses back.

# (unit, its size in seconds, the unit shown after it, and that unit's size)
_DURATION_TIERS = (("d", 86400, "h", 3600), ("h", 3600, "min", 60), ("min", 60, "s", 1))
_WINDOW_UNITS = (("d", 86400_000), ("h", 3600_000), ("m", 60_000), ("s", 1000), ("ms", 1))


def duration_text(delta: pd.Timedelta | timedelta | None) -> str:
    """A measured duration for reading; blank when missing.

    Nothing at all is ``0 s``; under 10 ms one decimal (``8.5 ms``, ``<0.1 ms`` for a tiny
    non-zero one), under a second whole ms (``850 ms``), under 10 s one decimal (``4.2 s``),
    under a minute whole seconds (``42 s``); from a minute on the largest unit and the next
    one down, the next dropped when it is zero (``3 min``, ``3 min 20 s``, ``6 h 12 min``,
    ``2 d 4 h``), rounded to the smaller unit shown. Rounding happens before the unit is
    chosen, so 59.7 s reads ``1 min`` and 999.6 ms ``1.0 s``, never ``60 s`` or ``1000 ms``.
    Negative durations get a ``-``.
    """
    if delta is None or pd.isna(delta):
        return ""
    seconds = pd.Timedelta(delta).total_seconds()
    sign, size = ("-" if seconds < 0 else ""), abs(seconds)
    return sign + _duration_size(size)


def _duration_size(seconds: float) -> str:
    ms = seconds * 1000
    if ms == 0:
        return "0 s"
    if round(ms, 1) < 10:
        return "<0.1 ms" if 0 < ms < 0.05 else f"{ms:.1f} ms"
    if round(ms) < 1000:
        return f"{round(ms)} ms"
    if round(seconds, 1) < 10:
        return f"{seconds:.1f} s"
    if round(seconds) < 60:
        return f"{round(seconds)} s"
    for unit, size, sub, sub_size in _DURATION_TIERS:
        whole = round(seconds / sub_size)  # in the smaller unit shown
        if whole * sub_size >= size:
            big, small = divmod(whole, size // sub_size)
            return f"{big} {unit} {small} {sub}" if small else f"{big} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover: a minute or more is a tier


def window_text(delta: pd.Timedelta | timedelta) -> str:
    """A configured window as people type it: the largest unit it is a whole number of
    (``30d``, ``36h``, ``5m``, ``90s``, ``250ms``), the shorthand ``duration`` reads back and
    Prometheus accepts in a range. Sub-millisecond windows are refused (ValueError): none of
    obslib's windows is one, and Prometheus could not express it."""
    ms, rest = divmod(pd.Timedelta(delta).value, 1_000_000)
    if rest or ms <= 0:
        raise ValueError(f"{delta!r} is not a whole positive number of milliseconds")
    for unit, size in _WINDOW_UNITS:
        if ms % size == 0:
            return f"{ms // size}{unit}"
    raise AssertionError("unreachable")  # pragma: no cover: every ms count is whole ms


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 service``, ``3 services``, ``0 services``: a count with its noun agreeing;
    ``words`` for a plural that is not ``word + "s"`` (``1 match``, ``2 matches``)."""
    return f"{count:,} {word if count == 1 else (words or word + 's')}"


# -- JSON text -------------------------------------------------------------------------------

# A run of 20 digits: an integer orjson may not hold exactly (it reads one past 64 bits as
# a float, silently, in 3.13). Such a text goes through ``json``, which keeps every integer.
_LONG_DIGITS = re.compile(r"\d{20}")
_LONG_DIGITS_BYTES = re.compile(rb"\d{20}")


def json_value(text: str | bytes) -> Any:
    """JSON text as Python values, exactly: orjson (several times faster than ``json``)
    unless the text holds a run of 20 digits or more, which ``json`` reads (an integer past
    64 bits stays an int, not a rounded float). What orjson refuses is refused either way
    (``NaN``, ``Infinity``, a number past a double's range, nesting deeper than either
    parser goes, an integer of more than Python's 4,300 digits): always ``ValueError``
    (``orjson.JSONDecodeError`` and ``json.JSONDecodeError`` both are one), never the
    ``RecursionError`` ``json`` raises on deep nesting."""
    import orjson  # imported here: the CLI's fast paths import this module

    long = _LONG_DIGITS_BYTES if isinstance(text, bytes | bytearray | memoryview) else _LONG_DIGITS
    if long.search(text):
        import json

        try:
            return json.loads(
                bytes(text) if isinstance(text, memoryview) else text,
                parse_constant=_no_constant,
                parse_float=_finite_float,
            )
        except RecursionError:  # json recurses per level; orjson stops at 1,024 levels
            raise ValueError("nested too deeply") from None
        except ValueError as err:  # int's 4,300-digit limit advises a Python call: cut it
            if "sys.set_int_max_str_digits" not in str(err):
                raise
            raise ValueError(str(err).split("; use sys.", 1)[0]) from None
    return orjson.loads(text)


def _no_constant(name: str) -> None:
    """``json`` reads NaN and Infinity, which JSON (and orjson) refuse: so do we."""
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    """A JSON number with a fraction or exponent as a float; one past a double's range
    (``1e400``) refused, as orjson refuses it: ``json`` alone would give ``inf``."""
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:20]} is past a double's range")
    return value
