"""Values people type (times, durations, booleans) and the scrubbing of database URLs."""

from __future__ import annotations

import re
from datetime import timedelta

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from obslib import values
from obslib.errors import InputError, ObslibError, UsageError
from obslib.redact import scrub


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-14T14:05:00Z", "2026-11-14 14:05:00+00:00"),
        ("2026-11-14 14:05", "2026-11-14 14:05:00+00:00"),
        ("2026-11-14T16:05:00+02:00", "2026-11-14 14:05:00+00:00"),
    ],
    ids=["Z suffix", "naive text is UTC", "an offset is converted"],
)
def test_utc_normalises_to_aware_utc(text: str, expected: str) -> None:
    assert str(values.utc(text)) == expected


@pytest.mark.parametrize("bad", ["notadate", "", None, "2026-13-45", 5, 1.5])
def test_utc_names_the_parameter(bad) -> None:
    """An unparseable moment is a UsageError naming the parameter, never a raw ValueError."""
    with pytest.raises(UsageError, match=r"^start is not a time"):
        values.utc(bad, "start")


@pytest.mark.parametrize(
    ("text", "hours"), [("30d", 720), ("6h", 6), ("5min", 1 / 12), (" 1d ", 24)]
)
def test_durations_take_days_as_people_write_them(text: str, hours: float) -> None:
    assert values.duration(text) == pd.Timedelta(hours=hours)


@pytest.mark.parametrize("text", ["nan", "NaT", " nat ", "soon", ""])
def test_text_that_is_no_duration_is_refused(text: str) -> None:
    """pandas reads "nan" and "NaT" as a missing duration; people never mean that."""
    with pytest.raises(ValueError):
        values.duration(text)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("30d", pd.Timedelta(days=30)), ("5min", pd.Timedelta(minutes=5)),
     (pd.Timedelta(hours=2), pd.Timedelta(hours=2))],
)  # fmt: skip
def test_a_positive_duration_is_read_from_text_or_timedelta(given, expected) -> None:
    assert values.positive_duration(given, "window") == expected


@pytest.mark.parametrize("given", ["0d", "-3d", "soon", "nan", "NaT", pd.Timedelta(0)])
def test_a_duration_that_is_not_positive_is_refused_with_its_name(given) -> None:
    """One message for every window, period, bucket and report parameter."""
    with pytest.raises(UsageError, match=r"^bucket must be a positive duration \(e\.g\."):
        values.positive_duration(given, "bucket")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("12", None),
        (0, None),
        ("-5", "must be 0 or more, not -5"),
        ("2.5", "must be a whole number"),
        (float("nan"), "must be a whole number"),
        (True, "must be a whole number"),
    ],
    ids=["text", "zero", "negative", "a fraction", "NaN", "a boolean"],
)
def test_counts_are_whole_numbers_of_zero_or_more(value, message) -> None:
    if message is None:
        assert values.count(value, "n") == int(value)
    else:
        with pytest.raises(UsageError, match=f"^n {message}"):
            values.count(value, "n")


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("1970-01-01", True),
        ("2261-12-31 23:59", True),
        ("1969-12-31 23:59:59", False),
        ("2262-01-01", False),
        ("0001-01-01", False),
    ],
    ids=["the epoch", "the last day asked about", "before 1970", "2262", "year 1"],
)
def test_moments_people_ask_about_are_1970_to_2262(text: str, ok: bool) -> None:
    if ok:
        assert values.moment(text, "at") == values.utc(text)
    else:
        with pytest.raises(UsageError, match=f"^at '{text}' is outside the times obslib holds"):
            values.moment(text, "at")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("False", False), (" yes ", True), ("0", False), ("n", False)],
)
def test_booleans_as_people_spell_them(text: str, expected: bool) -> None:
    assert values.boolean(text) is expected


def test_a_word_that_is_not_a_boolean_is_refused() -> None:
    """``bool("maybe")`` would be True; the parser refuses it instead."""
    with pytest.raises(ValueError, match="not a boolean"):
        values.boolean("maybe")


URL = "postgresql://sre:s3cret PW@/obslib?host=/tmp/db"


@pytest.mark.parametrize(
    "message",
    [
        'unexpected spaces found in "s3cret PW", use percent-encoded spaces (%20) instead',
        'missing "=" after "PW@/obslib?host=/tmp/db" in connection info string',
        "connecting with postgresql://sre:s3cret PW@/obslib failed",
        "as sre:s3cret PW",
    ],
    ids=["libpq quotes the password", "libpq quotes a fragment", "the URL", "the userinfo"],
)
def test_scrub_removes_every_piece_of_the_password(message: str) -> None:
    """No fragment of the password ``s3cret PW`` survives, however the driver quotes it."""
    clean = scrub(message, URL)
    for secret in ("s3cret", "PW@", '"PW', "sre:"):
        assert secret not in clean, clean


def test_a_url_without_password_leaves_its_user_name_alone() -> None:
    """The embedded server's user is ``postgres``, also a DomainFlow service: a report that
    names the service must not read ``***``."""
    url = "postgresql://postgres:@/obslib?host=/tmp/x"
    assert scrub("postgres SELECT domains", url) == "postgres SELECT domains"
    assert scrub('user "sre" failed', "postgresql://sre@db/x") == 'user "sre" failed'


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=4, max_size=20))
def test_scrub_masks_any_password(password: str) -> None:
    url = f"postgresql://u:{password}@db.internal/x"
    assert password not in scrub(f"could not connect: {password} rejected", url)


def test_scrub_leaves_text_without_secrets_alone() -> None:
    text = 'connection to server on socket "/tmp/db/.s.PGSQL.5432" failed'
    assert scrub(text, "postgresql:///obslib?host=/tmp/db") == text


def test_a_password_query_option_is_scrubbed() -> None:
    assert "hunter22" not in scrub(
        "bad option password=hunter22", "postgresql://h/db?password=hunter22"
    )


def test_obslib_errors_scrub_their_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ObslibError is scrubbed against $OBSLIB_DATABASE_URL when it is made."""
    monkeypatch.setenv("OBSLIB_DATABASE_URL", URL)
    for cls in (ObslibError, UsageError, InputError):
        err = cls('could not parse "s3cret PW"')
        assert "s3cret" not in str(err)
        assert "PW" not in str(err)


def test_a_one_character_tail_of_the_password_is_masked_where_libpq_quotes_it() -> None:
    """``s3cret P`` fails at ``"P@/obslib"``: the quoted piece runs past the password."""
    assert "P@" not in scrub(
        'missing "=" after "P@/obslib" in', "postgresql://sre:s3cret P@/obslib"
    )


def test_a_short_word_inside_the_password_is_not_masked_elsewhere() -> None:
    """``"ok"`` in a message is not a leak of the password ``brokenpw``."""
    assert scrub('status "ok"', "postgresql://u:brokenpw@h/db") == 'status "ok"'


def test_an_explicit_url_is_scrubbed_from_connection_errors(monkeypatch) -> None:
    """A URL given to the library (not in the environment) is scrubbed from the error too,
    message and fields alike."""
    from obslib.errors import DatabaseUnreachable, UsageError
    from obslib.storage import db

    monkeypatch.delenv("OBSLIB_DATABASE_URL", raising=False)
    with pytest.raises((DatabaseUnreachable, UsageError)) as caught:
        db.connect("postgresql://sre:s3cret PW@/obslib?host=/nonexistent")
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in getattr(caught.value, "reason", "")


def test_a_window_must_end_after_it_starts() -> None:
    """``[start, end)`` holds nothing when end == start: refused like a reversed window,
    with both ends in the message; an open side is allowed and stays None."""
    lo, hi = values.window("2026-11-14 14:00", "2026-11-14T16:00:00+01:00")
    assert (lo, hi - lo) == (pd.Timestamp("2026-11-14 14:00", tz="UTC"), pd.Timedelta(hours=1))
    for end in ("2026-11-14T15:00:00+01:00", "2026-11-14 13:59"):
        with pytest.raises(UsageError, match=r"empty time window: end .* is not after start"):
            values.window("2026-11-14 14:00", end)
    assert values.window(None, "2026-11-14") == (None, pd.Timestamp("2026-11-14", tz="UTC"))
    assert values.window("2026-11-14 14:00", None)[1] is None
    tiny = values.window("2026-11-14 14:00", "2026-11-14 14:00:00.000001")
    assert tiny[1] - tiny[0] == pd.Timedelta(microseconds=1)


# -- durations for reading ------------------------------------------------------------------

_MS = pd.Timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("sentence", "delta", "expected"),
    [
        ("nothing at all reads 0 s", pd.Timedelta(0), "0 s"),
        ("a tiny non-zero time is not shown as zero", 0.04 * _MS, "<0.1 ms"),
        ("under 10 ms keeps one decimal", 8.46 * _MS, "8.5 ms"),
        ("9.96 ms rounds to 10 ms, not 10.0 ms", 9.96 * _MS, "10 ms"),
        ("under a second is whole ms", 850.4 * _MS, "850 ms"),
        ("999.6 ms rounds into seconds, never 1000 ms", 999.6 * _MS, "1.0 s"),
        ("under 10 s keeps one decimal", pd.Timedelta(seconds=4.24), "4.2 s"),
        ("under a minute is whole seconds", pd.Timedelta(seconds=42.4), "42 s"),
        ("59.7 s rounds into minutes, never 60 s", pd.Timedelta(seconds=59.7), "1 min"),
        ("whole minutes drop their zero seconds", pd.Timedelta(minutes=3), "3 min"),
        ("900 s reads in minutes", pd.Timedelta(seconds=900), "15 min"),
        ("minutes carry their seconds", pd.Timedelta(seconds=200), "3 min 20 s"),
        ("an hour minus a blink is an hour", pd.Timedelta(seconds=3599.7), "1 h"),
        ("hours carry their minutes", pd.Timedelta(hours=6, minutes=12), "6 h 12 min"),
        ("hours round to the minute", pd.Timedelta(hours=6, minutes=12, seconds=31), "6 h 13 min"),
        ("a day minus 20 s is a day", pd.Timedelta(hours=23, minutes=59, seconds=40), "1 d"),
        ("days carry their hours", pd.Timedelta(days=2, hours=4), "2 d 4 h"),
        ("days round to the hour", pd.Timedelta(days=3, hours=23, minutes=40), "4 d"),
        ("a negative duration gets a minus", pd.Timedelta(minutes=-3), "-3 min"),
        ("a datetime.timedelta is read too", timedelta(minutes=90), "1 h 30 min"),
        ("a missing duration is blank", None, ""),
        ("NaT is blank", pd.NaT, ""),
    ],
)  # fmt: skip
def test_measured_durations_read_in_one_style(sentence: str, delta, expected: str) -> None:
    assert values.duration_text(delta) == expected, sentence


@pytest.mark.parametrize(
    ("sentence", "delta", "expected"),
    [
        ("days as people type them", pd.Timedelta(days=30), "30d"),
        ("36 hours are not a whole number of days", pd.Timedelta(hours=36), "36h"),
        ("minutes are m, as Prometheus writes them", pd.Timedelta(minutes=5), "5m"),
        ("90 seconds stay seconds", pd.Timedelta(seconds=90), "90s"),
        ("a quarter second is ms", pd.Timedelta(milliseconds=250), "250ms"),
    ],
)  # fmt: skip
def test_configured_windows_read_as_typed(sentence: str, delta, expected: str) -> None:
    assert values.window_text(delta) == expected, sentence
    assert values.duration(expected) == delta, "the shorthand parses back to the window"


@pytest.mark.parametrize("delta", [pd.Timedelta(0), pd.Timedelta(hours=-1), pd.Timedelta(1)])
def test_a_window_that_is_not_whole_positive_ms_is_refused(delta) -> None:
    with pytest.raises(ValueError, match="whole positive number of milliseconds"):
        values.window_text(delta)


@given(st.integers(min_value=1, max_value=10**12))
def test_every_whole_ms_window_parses_back(ms: int) -> None:
    delta = pd.Timedelta(milliseconds=ms)
    assert values.duration(values.window_text(delta)) == delta


@given(st.integers(min_value=0, max_value=10**15))
def test_a_measured_duration_never_shows_a_carry_or_a_zero_part(us: int) -> None:
    """No ``60 s``, ``60 min``, ``24 h``, ``1000 ms`` and no ``3 min 0 s``."""
    text = values.duration_text(pd.Timedelta(microseconds=us))
    assert not re.search(r"\b(60 s|60 min|24 h|1000 ms|10\.0 (s|ms))\b| 0 \w+$", text), text


@pytest.mark.parametrize(
    ("count", "word", "words", "expected"),
    [(1, "service", None, "1 service"), (0, "service", None, "0 services"),
     (3, "operation", None, "3 operations"), (2, "match", "matches", "2 matches"),
     (1200, "span", None, "1,200 spans")],
)  # fmt: skip
def test_a_count_agrees_with_its_noun(count: int, word: str, words, expected: str) -> None:
    assert values.plural(count, word, words) == expected


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("an integer past 64 bits stays exact", '{"a": 123456789012345678901234567890}',
         {"a": 123456789012345678901234567890}),
        ("the same in bytes", b"[-123456789012345678901]", [-123456789012345678901]),
        ("a 64-bit integer goes the fast way", "18446744073709551615", 18446744073709551615),
        ("a long digit run in a string is text", '"12345678901234567890123"',
         "12345678901234567890123"),
    ],
)  # fmt: skip
def test_json_value_keeps_every_integer_exact(name, text, expected):
    got = values.json_value(text)
    assert got == expected and type(got) is type(expected), name


@pytest.mark.parametrize(
    "text",
    ["{bad", "[NaN]", "[Infinity, 12345678901234567890123]", "[NaN, 12345678901234567890123]"],
)
def test_json_value_refuses_what_json_refuses_on_either_path(text):
    with pytest.raises(ValueError):
        values.json_value(text)
