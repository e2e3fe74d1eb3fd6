"""URLs reach libpq as written: only the scheme is normalised."""

from __future__ import annotations

import pytest

from obslib.storage import db


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql+psycopg://sre:s3cret%20PW@db/x", "postgresql://sre:s3cret%20PW@db/x"),
        ("postgres://sre@db:5433/x?sslmode=require", "postgresql://sre@db:5433/x?sslmode=require"),
        (
            "postgresql:///x?host=/tmp/s&options=-c%20a%3Db",
            "postgresql:///x?host=/tmp/s&options=-c%20a%3Db",
        ),
    ],
    ids=["an encoded password stays encoded", "postgres:// is renamed", "a query keeps %20"],
)
def test_only_the_scheme_changes(given: str, expected: str) -> None:
    assert db.libpq_url(given) == expected


def test_an_encoded_space_in_options_reaches_the_server(migrated_db: str) -> None:
    """``options=-c%20statement_timeout%3D1234`` is a space to libpq; ``+`` would not be."""
    with db.connection(migrated_db + "&options=-c%20statement_timeout%3D1234") as conn:
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "1234ms"
