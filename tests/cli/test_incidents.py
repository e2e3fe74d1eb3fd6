"""`obslib incidents list` on a real database: what it shows, what it filters, what it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.types.json import Jsonb

from obslib import load
from obslib.cli import main
from obslib.config import ENV_DATABASE_URL
from tests.conftest import run_cli

T0 = datetime(2026, 11, 14, 14, 15, tzinfo=UTC)
HEADER = "incident service severity status triggered (UTC) resolved (UTC) report"


def add_alert(conn: psycopg.Connection, name: str, service: str) -> int:
    return conn.execute(
        """INSERT INTO alert_definitions (alert_name, service_name, alert_type, metric_name,
               condition_expression, severity)
           VALUES (%s, %s, 'threshold', 'error_rate', 'error_rate > 0.05', 'critical')
           RETURNING id""",
        (name, service),
    ).fetchone()[0]


def add_incident(
    conn: psycopg.Connection,
    incident_id: str,
    alert_id: int | None,
    *,
    minutes: int,
    status: str = "open",
    severity: str = "critical",
    resolved_after: int | None = None,
    data: object = None,
) -> None:
    triggered = T0 + timedelta(minutes=minutes)
    resolved = None if resolved_after is None else triggered + timedelta(minutes=resolved_after)
    conn.execute(
        """INSERT INTO alert_incidents (incident_id, alert_id, status, severity, triggered_at,
               resolved_at, incident_data)
           VALUES (%s, %s, %s, %s, %s, %s, COALESCE(%s, '{}'::jsonb))""",
        (
            incident_id,
            alert_id,
            status,
            severity,
            triggered,
            resolved,
            None if data is None else Jsonb(data),
        ),
    )


@pytest.fixture
def stored(migrated_db: str) -> str:
    """Four incidents of two services: one drafted by triage, one whose runbook failed, one
    resolved, one acknowledged and never triaged."""
    with psycopg.connect(migrated_db) as conn:
        api = add_alert(conn, "api errors", "api-gateway")
        domain = add_alert(conn, "domain errors", "domain-service")
        done = {"status": "done", "html": "/r/INC-1/postmortem.html", "notebook": "/r/x.ipynb"}
        failed = {"status": "failed", "html": None, "notebook": "/r/INC-2/ok.ipynb"}
        add_incident(conn, "INC-1", domain, minutes=0, data={"report": done})
        add_incident(conn, "INC-2", api, minutes=5, severity="high", data={"report": failed})
        add_incident(conn, "INC-3", domain, minutes=60, status="resolved", resolved_after=42)
        add_incident(conn, "INC-4", api, minutes=24 * 60, status="acknowledged")
    return migrated_db


def listed(url: str, *args: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The lines `obslib incidents list ARGS` prints (run in this process)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_DATABASE_URL, url)
        assert main(["incidents", "list", *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_the_list_shows_each_incident_with_its_times_in_utc_and_its_report(
    stored: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """One row per incident, oldest first; a drafted report's HTML, a failed attempt's
    notebook, nothing where triage never ran; every time in one UTC style."""
    lines = listed(stored, capsys=capsys)
    assert " ".join(lines[0].split()) == HEADER
    assert [" ".join(line.split()) for line in lines[1:]] == [
        "INC-1 domain-service critical open 2026-11-14 14:15:00 /r/INC-1/postmortem.html",
        "INC-2 api-gateway high open 2026-11-14 14:20:00 failed: /r/INC-2/ok.ipynb",
        "INC-3 domain-service critical resolved 2026-11-14 15:15:00 2026-11-14 15:57:00",
        "INC-4 api-gateway critical acknowledged 2026-11-15 14:15:00",
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ["INC-1", "INC-2", "INC-3", "INC-4"]),
        (["--status", "resolved"], ["INC-3"]),
        (["--status", "open", "--status", "acknowledged"], ["INC-1", "INC-2", "INC-4"]),
        (["--service", "api-gateway"], ["INC-2", "INC-4"]),
        (["--service", "api-gateway", "--status", "open"], ["INC-2"]),
        (["--since", "2026-11-14T14:20Z"], ["INC-2", "INC-3", "INC-4"]),
        (["--since", "2026-11-14 15:20+01:00"], ["INC-2", "INC-3", "INC-4"]),
        (["--since", "2026-11-16"], []),
        (["--service", "no-such-service"], []),
        (["--service", "' OR 1=1 --"], []),
    ],
    ids=[
        "no filter lists every incident",
        "a status lists only those",
        "statuses repeat",
        "a service lists only its alerts' incidents",
        "service and status both apply",
        "since includes an incident triggered at exactly that time",
        "since in another zone is the same instant",
        "since after the last incident lists none",
        "an unknown service lists none",
        "a service name is a value, never SQL",
    ],
)
def test_filters_narrow_the_list(
    stored: str, capsys: pytest.CaptureFixture[str], args: list[str], expected: list[str]
) -> None:
    lines = listed(stored, *args, capsys=capsys)
    shown = [line.split()[0] for line in lines[1:]]
    assert shown == (expected or ["(no"])


def test_an_empty_database_says_no_incident_matches(
    migrated_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert listed(migrated_db, capsys=capsys)[1:] == ["(no incident matches)"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "closed"], "argument --status: invalid choice: 'closed'"),
        (["--status", "OPEN"], "argument --status: invalid choice: 'OPEN'"),
        (["--since", "soonish"], "obslib: error: --since is not a time: 'soonish'"),
        (["--since", "0001-01-01"], "--since '0001-01-01' is outside the times obslib holds"),
    ],
    ids=[
        "a status the schema does not know",
        "a status in capitals",
        "a since that is no time",
        "a since in year 1",
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_connecting(args: list[str], message: str) -> None:
    """Refused before any connection: the database URL here reaches nothing."""
    env = {ENV_DATABASE_URL: "postgresql://alice:pw@127.0.0.1:1/domainflow"}
    result = run_cli("incidents", "list", *args, env=env)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr
    assert result.stdout == ""


def test_rows_someone_wrote_by_hand_list_safely(
    migrated_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An incident without an alert, incident_data that is no object, a report that is no
    object, an id with a control character (escaped), a page after year 9999 and one at
    'infinity' (no pandas time holds it: blank) list without error."""
    with psycopg.connect(migrated_db) as conn:
        add_incident(conn, "INC-a", None, minutes=0, data="just text")
        add_incident(conn, "INC-b", None, minutes=1, data=[1, 2])
        add_incident(conn, "INC-c", None, minutes=2, data={"report": "done"})
        add_incident(conn, "INC-\x1b[2Jd", None, minutes=3, data={"report": {"status": "done"}})
        for incident_id, triggered in [("INC-y", "10000-01-01"), ("INC-inf", "infinity")]:
            conn.execute(
                "INSERT INTO alert_incidents (incident_id, severity, triggered_at)"
                " VALUES (%s, 'low', %s::timestamptz)",
                (incident_id, triggered),
            )
    lines = listed(migrated_db, capsys=capsys)
    assert [line.split()[0] for line in lines[1:]] == [
        "INC-a", "INC-b", "INC-c", "'INC-\\x1b[2Jd'", "INC-y", "INC-inf"
    ]  # fmt: skip
    assert "\x1b" not in "".join(lines)
    # no service, resolution or report: id, severity, status, then the time's two words
    assert [len(line.split()) for line in lines[1:]] == [5, 5, 5, 6, 5, 3]
    assert lines[4].split()[-1] == "done"  # a report recorded done without a path
    assert lines[5].split()[-2:] == ["10000-01-01", "00:00:00"]  # past strftime's years


def test_the_loader_returns_typed_rows_and_refuses_an_unknown_status(stored: str) -> None:
    """incident_list: UTC times, blanks where triage never ran; statuses from the schema."""
    frame = load.incident_list("2026-11-14T15:00Z", url=stored)
    assert frame["incident_id"].tolist() == ["INC-3", "INC-4"]
    assert str(frame["triggered_at"].dtype).endswith("UTC]")
    assert frame["report_html"].isna().all()
    with pytest.raises(Exception, match="unknown incident status 'closed'"):
        load.incident_list(statuses=["closed"], url=stored)
    assert load.incident_ids(url=stored) == ["INC-1", "INC-2", "INC-3", "INC-4"]
