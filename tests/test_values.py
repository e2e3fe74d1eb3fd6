"""Values people type (times, durations, booleans) and the scrubbing of database URLs."""

from __future__ import annotations

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
