"""argparse types the command groups share, and the typos in times and durations they refuse
without importing pandas."""

from __future__ import annotations

import argparse
import re

from obslib.errors import UsageError


def whole(minimum: int, words: str):
    """An argparse type: a whole number (``_`` allowed as in 10_000) of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {words}, not {value}")
        return value

    return parse


positive = whole(1, "at least 1")
non_negative = whole(0, "0 or more")


def text_columns(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows of text as left-aligned columns two spaces apart (the first row: the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


# -- typos refused without pandas --------------------------------------------------------
# obslib.values parses moments and durations with pandas, ~0.4 s to import (seconds on a
# busy machine): a typo would wait for it. These two say, with the standard library only,
# when values would certainly refuse a text, and raise values' own message; whatever they
# are not sure of goes to values, which decides. tests/cli/test_cli_imports.py holds them to
# values' verdicts and messages over a table and generated texts.

# Every word pandas' Timedelta reads as a unit (pandas/_libs/tslibs/timedeltas.pyx,
# timedelta_abbrevs), folded, plus the ISO 8601 letters: a superset is safe, a word
# missing here would refuse a duration values accepts.
_DURATION_UNITS = (
    "w week weeks d day days h hr hour hours m min minute minutes t s sec second seconds"
    " l ms milli millis millisecond milliseconds u us µs micro micros microsecond"
    " microseconds n ns nano nanos nanosecond nanoseconds y p pt dt"
)
_DURATION_WORDS = frozenset(_DURATION_UNITS.split())
# Characters no moment pandas reads contains (dateutil skips "'", ",", ";" and "\\"; "_"
# may separate digits), nor any duration, which has no "_" either.
_NEVER = frozenset('!?#@$%^&*=~<>|"{}[]()`')
# What dateutil may read in a moment without a digit (a month, a weekday, am/pm, its jump
# words) and pandas' own "now" and "today"; all-capital words may be a zone's name.
_WORDS_WITHOUT_DIGITS = (
    "jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june"
    " july august september october november december mon tue wed thu fri sat sun monday"
    " tuesday wednesday thursday friday saturday sunday am pm a p at on and ad m t of st nd"
    " rd th z now today utc gmt"
)
_MOMENT_WORDS = frozenset(_WORDS_WITHOUT_DIGITS.split())


def refuse_bad_duration(text: str, name: str) -> None:
    """UsageError with values.positive_duration's message when it would certainly refuse
    ``text``: no digit ("nan", "d"), nothing but zeros ("0d"), a minus ("-1d"), a character
    no duration has, or a word that is no unit ("7x", "7 dayz"; ISO 8601 "P…" left alone)."""
    plain = text.strip()
    digits = [c for c in plain if c.isdigit()]
    words = re.findall(r"[^\W\d_]+", plain.lower())
    iso = plain.lstrip("+").upper().startswith("P")
    if (
        not digits
        or set(digits) == {"0"}
        or plain.startswith("-")
        or any(c in _NEVER or c == "_" for c in plain)
        or (not iso and any(w not in _DURATION_WORDS for w in words))
    ):
        raise UsageError(f"{name} must be a positive duration (e.g. 30d, 12h, 5min), not {text!r}")


def refuse_bad_moment(text: str, name: str) -> None:
    """UsageError with values.moment's message when it would certainly refuse ``text`` as no
    time at all: blank, a character no time has ("2026-11-14!"), or no digit and a word
    dateutil does not know ("notadate", "yesterday")."""
    plain = text.strip()
    words = re.findall(r"[^\W\d_]+", plain)
    if (
        not plain
        or any(c in _NEVER for c in plain)
        or (
            not any(c.isdigit() for c in plain)
            and any(w.lower() not in _MOMENT_WORDS and not w.isupper() for w in words)
        )
    ):
        raise UsageError(f"{name} is not a time: {text!r}")
