"""Statement splitting for migration files: semicolons only end statements outside quotes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from obslib.storage.sqlsplit import split_statements

CASES = [
    ("a single statement without semicolon", "SELECT 1", ["SELECT 1"]),
    ("two statements", "SELECT 1; SELECT 2;", ["SELECT 1", "SELECT 2"]),
    ("a semicolon in a string", "SELECT 'a;b'; SELECT 2", ["SELECT 'a;b'", "SELECT 2"]),
    (
        "a doubled quote inside a string",
        "SELECT 'it''s;'; SELECT 2",
        ["SELECT 'it''s;'", "SELECT 2"],
    ),
    (
        "an E-string with an escaped quote",
        r"SELECT E'a\';b'; SELECT 2",
        [r"SELECT E'a\';b'", "SELECT 2"],
    ),
    ("a quoted identifier", 'SELECT 1 AS "x;y"; SELECT 2', ['SELECT 1 AS "x;y"', "SELECT 2"]),
    (
        "a dollar-quoted body",
        "DO $$ BEGIN PERFORM 1; END $$; SELECT 2",
        ["DO $$ BEGIN PERFORM 1; END $$", "SELECT 2"],
    ),
    ("a tagged dollar quote", "SELECT $f$;$$;$f$; SELECT 2", ["SELECT $f$;$$;$f$", "SELECT 2"]),
    (
        "a line comment with a semicolon",
        "SELECT 1 -- a; b\n; SELECT 2",
        ["SELECT 1 -- a; b", "SELECT 2"],
    ),
    (
        "a nested block comment",
        "SELECT /* a /* ; */ ; */ 1; SELECT 2",
        ["SELECT /* a /* ; */ ; */ 1", "SELECT 2"],
    ),
    (
        "comment-only chunks are dropped",
        "-- header;\n/* x; */\nSELECT 1;\n-- trailer\n",
        ["SELECT 1"],
    ),
    (
        "a positional parameter is not a dollar quote",
        "SELECT $1; SELECT 2",
        ["SELECT $1", "SELECT 2"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_split_statements(text: str, expected: list[str]) -> None:
    """Each case splits into exactly the expected statements."""
    assert [s.sql for s in split_statements(text)] == expected


def test_statements_know_their_line() -> None:
    """A statement's line is where its first token is, so errors can point at it."""
    text = "-- comment\n\nCREATE TABLE a (x int);\n\n  CREATE TABLE b (\n y int);\n"
    assert [s.line for s in split_statements(text)] == [3, 5]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT 1;\nSELECT 'open", "unterminated ' quote opened at line 2"),
        ('SELECT "open', 'unterminated " quote opened at line 1'),
        ("SELECT 1;\n\nSELECT $$ open", "unterminated $$ quote opened at line 3"),
        ("SELECT 1; /* a /* b */\n", "unterminated block comment opened at line 1"),
    ],
    ids=["a string", "an identifier", "a dollar quote", "a nested block comment"],
)
def test_unterminated_quotes_are_errors(text: str, message: str) -> None:
    """An unterminated quote or comment is reported, with the line it opens on, rather than
    swallowing the rest of the file."""
    with pytest.raises(ValueError) as info:
        split_statements(text)
    assert str(info.value) == message


_literal = st.text(alphabet=st.sampled_from(list("ab;'$ -\n*/")), max_size=12).map(
    lambda s: "'" + s.replace("'", "''") + "'"
)
_statement = st.lists(_literal, min_size=1, max_size=4).map(lambda xs: "SELECT " + ", ".join(xs))


@given(st.lists(_statement, min_size=1, max_size=6))
def test_joined_statements_split_back(statements: list[str]) -> None:
    """Joining statements with ';' and splitting gives them back, whatever strings hold."""
    assert [s.sql for s in split_statements(";\n".join(statements))] == statements
