"""Triage against rows and notifications it must not trust: a reader role, hostile NOTIFY
payloads, incident_data that is not an object, blank ids, a page in the future.

The runbooks are the test notebooks of tests/data/runbooks (each run is logged outside the
database, so "nothing ran" is checked where the runbook would have written).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import nbformat
import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from obslib.config import ENV_DATABASE_URL
from obslib.errors import UsageError
from obslib.jobs import triage
from obslib.storage.roles import grant_reader, reader_url
from tests.conftest import migrated_database, run_cli
from tests.jobs.test_triage import (
    LOG_ENV,
    RUNBOOKS,
    T0,
    add_alert,
    add_incident,
    following,
    report_of,
    runs,
    wait_for,
)
from tests.jobs.test_triage import log as log  # the fixture, shared
from tests.storage.test_roles import drop_role


@pytest.fixture
def reader(migrated_db: str) -> Iterator[str]:
    """The URL of a reader role (``obslib db grant-reader``) on the test database."""
    name = f"obslib_reader_{uuid.uuid4().hex[:8]}"
    yield grant_reader(name, url=migrated_db, password="pw-for-tests")
    drop_role(migrated_db, name)


def cli_env(url: str, log: Path) -> dict[str, str]:
    return {ENV_DATABASE_URL: url, triage.ENV_RUNBOOKS: str(RUNBOOKS), LOG_ENV: str(log)}


def test_a_reader_role_is_refused_before_any_runbook_runs(
    migrated_db: str, reader: str, log: Path, tmp_path: Path
) -> None:
    """`obslib triage` as the reader: one line naming the missing privilege, exit 2, and no
    runbook run (it used to run, then fail to record: and run again on every pass)."""
    add_incident(migrated_db, "INC-1", add_alert(migrated_db, "ok-alert", "ok"))
    result = run_cli("triage", "--out", str(tmp_path), env=cli_env(reader, log))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "may not record outcomes (no UPDATE on alert_incidents.incident_data)" in result.stderr
    assert "not as a reader" in result.stderr and "pw-for-tests" not in result.stderr
    assert runs(log) == [] and report_of(migrated_db, "INC-1") is None


def test_a_follower_under_a_reader_role_exits_2_at_once(
    migrated_db: str, reader: str, log: Path, tmp_path: Path
) -> None:
    """Under --follow the same: a permission is not a lost connection, so no retry loop."""
    add_incident(migrated_db, "INC-1", add_alert(migrated_db, "ok-alert", "ok"))
    result = run_cli("triage", "--follow", "--out", str(tmp_path), env=cli_env(reader, log))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "may not record outcomes" in result.stderr
    assert "lost the database" not in result.stderr
    assert runs(log) == [] and report_of(migrated_db, "INC-1") is None


def test_a_read_only_session_is_refused_even_with_the_privileges(
    migrated_db: str, log: Path, tmp_path: Path
) -> None:
    """A writer whose sessions are read-only by default could not record either: refused
    up front, not after the runbook."""
    role = f"obslib_rw_{uuid.uuid4().hex[:8]}"
    ident = sql.Identifier(role)
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw'").format(ident))
        conn.execute(sql.SQL("GRANT SELECT, UPDATE ON alert_incidents TO {}").format(ident))
        conn.execute(sql.SQL("GRANT SELECT ON alert_definitions TO {}").format(ident))
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(ident))
    try:
        add_incident(migrated_db, "INC-1", add_alert(migrated_db, "ok-alert", "ok"))
        url = reader_url(migrated_db, role, "pw")
        with pytest.raises(UsageError, match=rf"sessions of role '{role}' are read-only"):
            triage.triage(out=tmp_path, url=url)
        assert runs(log) == []
    finally:
        drop_role(migrated_db, role)


def test_a_notification_is_only_a_hint(
    migrated_db: str, reader: str, log: Path, tmp_path: Path
) -> None:
    """Anyone may NOTIFY the channel (the reader too): ids of nothing, hostile text, a
    7999-byte payload, the id of a failed or a done incident, a blank-id row. The follower
    re-reads the table and runs only what it justifies: the incident really inserted.
    A failed incident is retried by the catch-up, never by a notification; a refused
    (blank-id) incident is noted once, not retried at every idle check."""
    alert = add_alert(migrated_db, "ok-alert", "ok")
    add_incident(migrated_db, "INC-failed", alert)
    add_incident(migrated_db, "INC-done", alert)
    with psycopg.connect(migrated_db) as conn:
        for incident_id, status in (("INC-failed", "failed"), ("INC-done", "done")):
            conn.execute(
                "UPDATE alert_incidents SET incident_data = %s WHERE incident_id = %s",
                (Jsonb({"report": {"status": status, "attempts": 1}}), incident_id),
            )
    before = report_of(migrated_db, "INC-failed")
    payloads = [
        "INC-nosuch",
        "'; DELETE FROM alert_incidents; --",
        "../../etc/passwd",
        "x" * 7999,
        "INC-failed",
        "INC-done",
        "",
    ]
    stop = threading.Event()
    outcomes: list[triage.Outcome] = []
    follower = threading.Thread(
        target=triage.follow,
        kwargs=dict(
            since=T0 + timedelta(minutes=30),  # the catch-up leaves INC-failed alone
            out=tmp_path, url=migrated_db, stop=stop, idle_check_s=0.3,
            on_outcome=outcomes.append,
        ),
    )  # fmt: skip
    follower.start()
    try:
        add_incident(migrated_db, "INC-first", alert, 31)  # the follower listens once done
        wait_for("the follower", lambda: report_of(migrated_db, "INC-first") is not None)
        with psycopg.connect(reader, autocommit=True) as hostile:
            for payload in payloads:
                hostile.execute("SELECT pg_notify(%s, %s)", (triage.CHANNEL, payload))
        add_incident(migrated_db, "   ", alert, 32)  # a row, but no incident to draft
        # noted before the next page: one notified while a batch is looked at goes before
        # the batch's rows (new incidents first), so inserted at once they came either way
        wait_for("the blank row noted", lambda: len(outcomes) == 2)
        add_incident(migrated_db, "INC-real", alert, 33)
        wait_for("the real incident", lambda: report_of(migrated_db, "INC-real") is not None)
        stop.wait(2.0)  # several idle checks
    finally:
        stop.set()
        follower.join(timeout=60)
    assert runs(log) == ["INC-first", "INC-real"]
    assert report_of(migrated_db, "INC-failed") == before  # not run, not touched
    assert report_of(migrated_db, "INC-real")["status"] == "done"
    assert report_of(migrated_db, "   ") is None
    assert [(o.incident_id, o.status) for o in outcomes] == [
        ("INC-first", "done"),
        ("   ", "skipped"),
        ("INC-real", "done"),
    ]
    assert outcomes[1].line() == "'   '  skipped  -  (blank incident id: nothing to triage;" + (
        " fix or delete the row)"
    )
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute("SELECT count(*) FROM alert_incidents").fetchone()[0] == 5


@contextmanager
def runbooks_logged(folder: Path) -> Iterator[Path]:
    """The ``log`` fixture's setting for a module fixture: the test runbooks, logged in a
    file of ``folder`` (yielded)."""
    path = folder / "runs.log"
    with pytest.MonkeyPatch.context() as env:
        env.setenv(triage.ENV_RUNBOOKS, str(RUNBOOKS))
        env.setenv(LOG_ENV, str(path))
        yield path


# incident_data someone stored that is not an object, one incident each: (id, data)
NOT_OBJECTS = {
    "a string": ("INC-odd-text", "just text"),
    "an array": ("INC-odd-array", ["a", {"report": "not ours"}]),
    "a number": ("INC-odd-number", 42),
    "JSON null": ("INC-odd-null", None),
}


@pytest.fixture(scope="module")
def odd_data(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """Every incident of NOT_OBJECTS in one database, triaged twice (one triage run serves
    every case): (first run, second run, the runbook log, incident_data after, by id)."""
    folder = tmp_path_factory.mktemp("odd-data")
    with runbooks_logged(folder) as log, migrated_database() as url:
        alert = add_alert(url, "ok-alert", "ok")
        for minute, (incident_id, data) in enumerate(NOT_OBJECTS.values()):
            add_incident(url, incident_id, alert, minute)
            with psycopg.connect(url) as conn:
                conn.execute(
                    "UPDATE alert_incidents SET incident_data = %s::jsonb WHERE incident_id = %s",
                    (Jsonb(data), incident_id),
                )
        first = triage.triage(out=folder, url=url)
        again = triage.triage(out=folder, url=url)
        with psycopg.connect(url) as conn:
            stored = dict(conn.execute("SELECT incident_id, incident_data FROM alert_incidents"))
        return first, again, runs(log), stored


@pytest.mark.parametrize("case", list(NOT_OBJECTS))
def test_incident_data_that_is_not_an_object_is_kept_and_the_incident_done(
    odd_data: tuple, case: str
) -> None:
    """The report is added beside the original value, kept whole under "data" (JSON null
    holds nothing to keep); the incident then counts as done: a second run runs nothing."""
    incident_id, data = NOT_OBJECTS[case]
    first, again, ran, stored = odd_data
    assert [o.status for o in first.outcomes if o.incident_id == incident_id] == ["done"]
    assert isinstance(stored[incident_id], dict), stored[incident_id]
    expected_keys = ["report"] if data is None else ["data", "report"]
    assert sorted(stored[incident_id]) == expected_keys
    if data is not None:
        assert stored[incident_id]["data"] == data
    report = stored[incident_id]["report"]
    assert report["status"] == "done" and report["attempts"] == 1
    assert again.outcomes == [] and ran.count(incident_id) == 1


# blank and padded ids, each a row of its own beside INC-1 (the id a padded one would be
# taken for): the reason each is skipped with
BLANK_OR_PADDED = {
    "empty": ("", "blank incident id"),
    "spaces": ("   ", "blank incident id"),
    "tab and newline": ("\t\n", "blank incident id"),
    "a leading blank": (" INC-1", "leading or trailing blanks"),
    "a trailing blank": ("INC-1 ", "leading or trailing blanks"),
}


@pytest.fixture(scope="module")
def padded_ids(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """INC-1 and every id of BLANK_OR_PADDED in one database, triaged twice (one triage run
    serves every case): (first run, second run, the runbook log, the reports, by id)."""
    folder = tmp_path_factory.mktemp("padded")
    with runbooks_logged(folder) as log, migrated_database() as url:
        alert = add_alert(url, "ok-alert", "ok")
        add_incident(url, "INC-1", alert)
        for minute, (incident_id, _) in enumerate(BLANK_OR_PADDED.values(), start=1):
            add_incident(url, incident_id, alert, minute)
        first = triage.triage(out=folder, url=url)
        again = triage.triage(out=folder, url=url)
        recorded = {i: report_of(url, i) for i, _ in BLANK_OR_PADDED.values()}
        return first, again, runs(log), recorded


@pytest.mark.parametrize("case", list(BLANK_OR_PADDED))
def test_a_blank_or_padded_id_is_skipped_with_a_note(padded_ids: tuple, case: str) -> None:
    """No runbook runs for it and nothing is recorded (a postmortem of "no such incident"
    marked done was the result before); the note says why, every run."""
    incident_id, reason = BLANK_OR_PADDED[case]
    first, again, ran, recorded = padded_ids
    assert first.outcomes[0].incident_id == "INC-1" and first.outcomes[0].status == "done"
    (outcome,) = [o for o in first.outcomes if o.incident_id == incident_id]
    assert outcome.status == "skipped" and reason in outcome.reason
    assert ran == ["INC-1"] and recorded[incident_id] is None
    assert [(o.incident_id, o.status) for o in again.outcomes if o.incident_id == incident_id] == [
        (incident_id, "skipped")
    ]
    assert {o.status for o in again.outcomes} == {"skipped"}


@pytest.mark.parametrize(
    ("triggered", "shown"),
    [("9999-12-31 23:00+00", "9999-12-31 23:00 UTC"), ("infinity", "infinity UTC")],
    ids=["year 9999", "infinity"],
)
def test_a_page_in_the_future_is_not_triaged(
    migrated_db: str, log: Path, tmp_path: Path, triggered: str, shown: str
) -> None:
    """A trigger time far ahead is no page yet: skipped with its time, nothing run (the
    postmortem's window would end in year 10000, a ValueError in its loaders)."""
    alert = add_alert(migrated_db, "ok-alert", "ok")
    with psycopg.connect(migrated_db) as conn:
        conn.execute(
            "INSERT INTO alert_incidents (incident_id, alert_id, severity, triggered_at)"
            " VALUES ('INC-later', %s, 'low', %s)",
            (alert, triggered),
        )
    add_incident(migrated_db, "INC-now", alert)
    run = triage.triage(out=tmp_path, url=migrated_db)
    assert [(o.incident_id, o.status, o.reason) for o in run.outcomes] == [
        ("INC-now", "done", None),
        ("INC-later", "skipped", f"triggered in the future ({shown}): not triaged before then"),
    ]
    assert runs(log) == ["INC-now"] and report_of(migrated_db, "INC-later") is None


def test_the_command_notes_a_skipped_incident_and_exits_0(
    migrated_db: str, log: Path, tmp_path: Path
) -> None:
    """A refused row is a line with its reason, quoted id and all; it is no failure."""
    add_incident(migrated_db, "  ", add_alert(migrated_db, "ok-alert", "ok"))
    result = run_cli("triage", "--out", str(tmp_path), env=cli_env(migrated_db, log))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "'  '  skipped  -  (blank incident id: nothing to triage; fix or delete the row)",
        "triage: 0 done, 0 failed, 1 skipped",
    ]


def sessions(conn: psycopg.Connection) -> int:
    """The sessions ever opened on this test's database (pg_stat_database, PostgreSQL 14+):
    a backend's count is flushed at its exit at the latest, so one closed always shows."""
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return conn.execute(
        "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()[0]


def status_of(conn: psycopg.Connection, incident_id: str) -> str | None:
    row = conn.execute(
        "SELECT incident_data -> 'report' ->> 'status' FROM alert_incidents WHERE incident_id = %s",
        (incident_id,),
    ).fetchone()
    return None if row is None else row[0]


def test_a_flood_of_notifications_opens_no_connection_per_notification(
    migrated_db: str, reader: str, log: Path, tmp_path: Path
) -> None:
    """2,000 notifications from the reader, each in a transaction of its own, over ~2.5 s:
    ids of nothing and of a real incident inserted halfway (its id also sent before and
    after). The follower takes every notification pending at once and looks the ids up on
    its listening connection: the real incident is drafted once, within the minute, and the
    flood opens (next to) no session on the database. It used to open a session, with a
    privilege check and a query, for every notification read apart: hundreds here, and as
    many as an attacker paces them."""
    alert = add_alert(migrated_db, "ok-alert", "ok")
    with (
        following(migrated_db, tmp_path, idle_check_s=0.5) as outcomes,
        psycopg.connect(migrated_db, autocommit=True) as watch,
    ):
        add_incident(migrated_db, "INC-first", alert)  # the follower listens once done
        wait_for("the follower", lambda: status_of(watch, "INC-first") == "done")
        before = sessions(watch)
        with psycopg.connect(reader, autocommit=True) as hostile:
            for n in range(2000):
                if n == 1000:
                    watch.execute(
                        "INSERT INTO alert_incidents"
                        " (incident_id, alert_id, severity, triggered_at)"
                        " VALUES ('INC-real', %s, 'critical', %s)",
                        (alert, T0 + timedelta(minutes=1)),
                    )  # and its NOTIFY
                payload = "INC-real" if n % 100 == 0 else f"INC-bogus-{n}"
                hostile.execute("SELECT pg_notify(%s, %s)", (triage.CHANNEL, payload))
                time.sleep(0.001)  # a flood, not one packet of it
        wait_for("the real incident", lambda: status_of(watch, "INC-real") == "done", timeout=60)
        time.sleep(1.0)  # the rest of the flood, and two idle checks
        opened = sessions(watch) - before
    assert runs(log) == ["INC-first", "INC-real"]
    assert outcomes == [("INC-first", "done"), ("INC-real", "done")]
    # the reader's session, maybe the watcher's own count flushed late: not 2,000
    assert opened <= 5, f"{opened} sessions opened during a flood of 2,000 notifications"


def test_a_page_a_little_ahead_is_drafted_once_its_time_comes(
    migrated_db: str, log: Path, tmp_path: Path
) -> None:
    """An incident paged an hour and 5 s ahead is skipped (not yet a page) when notified,
    and its notification is used up: the follower keeps it on a list checked at each idle
    check and drafts it once its time is no longer ahead, without a restart or a new
    NOTIFY. One that never comes due (infinity) is noted once, then waits silently, even
    when notified again."""
    alert = add_alert(migrated_db, "ok-alert", "ok")
    with following(migrated_db, tmp_path, idle_check_s=0.5) as outcomes:
        add_incident(migrated_db, "INC-first", alert)  # the follower listens once done
        wait_for("the follower", lambda: report_of(migrated_db, "INC-first") is not None)
        with psycopg.connect(migrated_db) as conn:  # the server's clock decides, both ways
            conn.execute(
                "INSERT INTO alert_incidents (incident_id, alert_id, severity, triggered_at)"
                " VALUES ('INC-soon', %s, 'low', now() + interval '1 hour 5 seconds'),"
                "        ('INC-never', %s, 'low', 'infinity')",
                (alert, alert),
            )
        wait_for("the skip", lambda: ("INC-never", "skipped") in outcomes, timeout=10)
        assert runs(log) == ["INC-first"] and report_of(migrated_db, "INC-soon") is None
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            for incident_id in ("INC-never", "INC-soon") * 3:  # noted once, not at each
                conn.execute("SELECT pg_notify(%s, %s)", (triage.CHANNEL, incident_id))
        wait_for("its time", lambda: ("INC-soon", "done") in outcomes, timeout=60)
        time.sleep(1.5)  # three more checks: INC-never stays on the list, silent
    assert runs(log) == ["INC-first", "INC-soon"]
    assert report_of(migrated_db, "INC-soon")["status"] == "done"
    assert report_of(migrated_db, "INC-never") is None
    assert outcomes == [
        ("INC-first", "done"),
        ("INC-soon", "skipped"),
        ("INC-never", "skipped"),
        ("INC-soon", "done"),
    ]


def test_no_control_character_of_a_row_or_a_runbook_reaches_the_terminal(
    migrated_db: str, log: Path, tmp_path: Path
) -> None:
    """An incident id with terminal escapes, echoed by its runbook's error into the reason;
    a runbook name with one: every field of the printed line shows them escaped, none raw
    (ESC [2J clears the screen, OSC 0 retitles the window)."""
    books = tmp_path / "books"
    books.mkdir()
    notebook = nbformat.read(RUNBOOKS / "fails.ipynb", as_version=4)
    for cell in notebook.cells:
        cell.source = cell.source.replace(
            '"runbook broke on purpose"', 'f"no incident {incident_id}"'
        )
    nbformat.write(notebook, books / "echo.ipynb")
    hostile = "INC-\x1b[2J\x1b]0;pwned\x07"
    add_incident(migrated_db, hostile, add_alert(migrated_db, "echo-alert", "echo"))
    add_incident(migrated_db, "INC-red", add_alert(migrated_db, "red", "\x1b[31mred"), 1)
    env = {ENV_DATABASE_URL: migrated_db, triage.ENV_RUNBOOKS: str(books), LOG_ENV: str(log)}
    result = run_cli("triage", "--out", str(tmp_path / "out"), env=env, timeout=180)
    assert result.returncode == 1, result.stderr
    assert runs(log) == [hostile]
    assert not set("\x1b\x07") & set(result.stdout), result.stdout
    first, second, summary = result.stdout.splitlines()
    escaped = r"INC-\x1b[2J\x1b]0;pwned\x07"
    assert first.startswith(f"'{escaped}'  failed   ")
    assert f"RuntimeError: no incident {escaped}" in first
    assert second.startswith(r"INC-red  failed   -  (runbook '\x1b[31mred' is not a notebook")
    assert summary == "triage: 0 done, 2 failed, 0 skipped"


@pytest.mark.parametrize(
    "outcome",
    [
        triage.Outcome("INC-1", "failed", reason="boom \x1b[2J\x9b31m\u202egnp.exe"),
        triage.Outcome("INC-1", "done", Path("/tmp/out\x1b]0;x\x07/INC-1/ok.html")),
        triage.Outcome("INC-\x1b[2J", "skipped", reason="why\rnot"),
    ],
    ids=["a reason", "a path", "an id and a reason"],
)
def test_every_field_of_a_line_is_escaped(outcome: triage.Outcome) -> None:
    """ESC, a C1 CSI, a right-to-left override, BEL, a carriage return: none left raw."""
    line = outcome.line()
    assert line.isprintable(), line
    assert "\\x1b" in line or "\\r" in line
