"""Triage: runbooks run for each incident, recorded once, on a real server and real kernels.

The runbooks are the tiny notebooks of tests/data/runbooks (each run appends its incident id
to $OBSLIB_TEST_RUNBOOK_LOG: a witness of every run outside the database).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from obslib import load, reports
from obslib.cli import main
from obslib.config import ENV_DATABASE_URL, ENV_HOME, settings
from obslib.errors import InputError
from obslib.jobs import triage
from obslib.storage import pgserver
from obslib.storage.migrate import Migrator
from tests.conftest import MIGRATIONS, REPO, run_cli

RUNBOOKS = REPO / "tests" / "data" / "runbooks"
LOG_ENV = "OBSLIB_TEST_RUNBOOK_LOG"
T0 = datetime(2026, 11, 14, 14, 6, tzinfo=UTC)


def add_alert(url: str, name: str, runbook: str | None) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            """INSERT INTO alert_definitions (alert_name, service_name, alert_type,
                   metric_name, condition_expression, severity, runbook)
               VALUES (%s, 'domain-service', 'threshold', 'error_rate', 'error_rate > 0.05',
                   'critical', %s) RETURNING id""",
            (name, runbook),
        ).fetchone()
    return row[0]


def add_incident(url: str, incident_id: str, alert_id: int, minutes: int = 0) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            """INSERT INTO alert_incidents (incident_id, alert_id, severity, triggered_at)
               VALUES (%s, %s, 'critical', %s)""",
            (incident_id, alert_id, T0 + timedelta(minutes=minutes)),
        )


def report_of(url: str, incident_id: str) -> dict | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT incident_data -> 'report' FROM alert_incidents WHERE incident_id = %s",
            (incident_id,),
        ).fetchone()
    return row[0]


def runs(log: Path) -> list[str]:
    """The incident ids the runbooks ran for, in order."""
    return log.read_text().split() if log.exists() else []


def wait_for(what: str, check: Callable[[], object], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.2)


@contextmanager
def following(url: str, out: Path, idle_check_s: float) -> Iterator[list[tuple[str, str]]]:
    """``triage.follow`` in a thread for the block: yields its outcomes as (id, status) as
    they come; stopped and joined when the block ends."""
    stop = threading.Event()
    outcomes: list[tuple[str, str]] = []
    follower = threading.Thread(
        target=triage.follow,
        kwargs=dict(
            out=out, url=url, stop=stop, idle_check_s=idle_check_s,
            on_outcome=lambda o: outcomes.append((o.incident_id, o.status)),
        ),
    )  # fmt: skip
    follower.start()
    try:
        yield outcomes
    finally:
        stop.set()
        follower.join(timeout=60)


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test runbooks found through $OBSLIB_RUNBOOKS; the file their runs are logged in."""
    path = tmp_path / "runs.log"
    monkeypatch.setenv(triage.ENV_RUNBOOKS, str(RUNBOOKS))
    monkeypatch.setenv(LOG_ENV, str(path))
    return path


def test_inserting_an_incident_notifies_the_channel(migrated_db: str) -> None:
    """The trigger announces each committed insert with its incident id; a rolled-back
    insert announces nothing."""
    alert = add_alert(migrated_db, "a", None)
    with psycopg.connect(migrated_db, autocommit=True) as listener:
        listener.execute(f"LISTEN {triage.CHANNEL}")
        with psycopg.connect(migrated_db) as conn:
            conn.execute(
                "INSERT INTO alert_incidents (incident_id, alert_id, severity)"
                " VALUES ('INC-gone', %s, 'low')",
                (alert,),
            )
            conn.rollback()
        add_incident(migrated_db, "INC-1", alert)
        got = list(listener.notifies(timeout=5, stop_after=1))
        assert [(n.channel, n.payload) for n in got] == [(triage.CHANNEL, "INC-1")]
        assert list(listener.notifies(timeout=0.5)) == []


@pytest.mark.parametrize(
    "name",
    ["../tests/data/runbooks/ok", str(RUNBOOKS / "ok.ipynb"), "runbooks/ok", "..", ".ok", "a\\b"],
    ids=["a relative path", "an absolute path", "a folder", "dot dot", "hidden", "backslash"],
)
def test_a_path_like_runbook_name_is_refused(name: str, log: Path) -> None:
    """A runbook comes from a database row: only a plain notebook name is looked up."""
    with pytest.raises(InputError, match=r"is not a notebook name"):
        triage.resolve_runbook(name)


def test_runbook_names_resolve_in_the_runbook_folders(log: Path) -> None:
    """A name with or without .ipynb, a report name, none (the postmortem), an unknown one."""
    assert triage.resolve_runbook("ok").source == RUNBOOKS / "ok.ipynb"
    assert triage.resolve_runbook("ok.ipynb").source == RUNBOOKS / "ok.ipynb"
    trace = triage.resolve_runbook("trace")
    assert (trace.source, trace.report) == (
        reports.notebooks_dir() / "trace_investigation.ipynb",
        "trace",
    )
    with pytest.raises(InputError, match=r"runbook 'nosuch': no nosuch.ipynb in .*runbooks"):
        triage.resolve_runbook("nosuch")
    assert triage.resolve_runbook(None).report == reports.POSTMORTEM == "incident"


def test_the_default_runbook_is_a_registered_report_taking_the_incident_id() -> None:
    """Triage runs every runbook with the incident id; the postmortem it runs by default is
    a report of the registry that declares that parameter."""
    postmortem = reports.REPORTS[triage.DEFAULT_RUNBOOK]
    assert postmortem.parameter(reports.INCIDENT_ID) is not None
    assert triage.resolve_runbook(None).source == reports.notebooks_dir() / postmortem.notebook


@pytest.mark.parametrize(
    ("incident_id", "folder"),
    [("INC-20261114-0001", "INC-20261114-0001"), ("slo.domain_x", "slo.domain_x")],
    ids=["a plain id is its own folder", "dots and underscores stay"],
)
def test_a_safe_incident_id_is_its_own_folder(incident_id: str, folder: str) -> None:
    assert triage.incident_folder(incident_id) == folder


@pytest.mark.parametrize(
    "incident_id",
    ["../../etc", "a/b", "/abs", "..", "", "x" * 100, "-rf", "ä b"],
    ids=["climbs out", "slash", "absolute", "dot dot", "empty", "too long", "dash", "unicode"],
)
def test_an_unsafe_incident_id_gets_a_safe_folder(incident_id: str, tmp_path: Path) -> None:
    """No id climbs out of --out or hides; two ids never share a folder."""
    folder = triage.incident_folder(incident_id)
    assert folder and "/" not in folder and not folder.startswith((".", "-"))
    assert len(folder) <= 91
    assert (tmp_path / folder).resolve().parent == tmp_path.resolve()
    assert folder != triage.incident_folder(incident_id.replace("/", "_") + "_")


def test_a_path_like_runbook_is_recorded_failed_and_never_run(
    migrated_db: str, log: Path, tmp_path: Path
) -> None:
    """Even when the path points at a real notebook, nothing runs; the reason is recorded."""
    bad = add_alert(migrated_db, "bad", "../tests/data/runbooks/ok")
    absolute = add_alert(migrated_db, "abs", str(RUNBOOKS / "ok.ipynb"))
    add_incident(migrated_db, "INC-rel", bad)
    add_incident(migrated_db, "INC-abs", absolute, 1)
    run = triage.triage(out=tmp_path / "out", url=migrated_db)
    assert [(o.incident_id, o.status) for o in run.outcomes] == [
        ("INC-rel", "failed"),
        ("INC-abs", "failed"),
    ]
    assert runs(log) == []
    record = report_of(migrated_db, "INC-rel")
    assert record["status"] == "failed" and record["runbook"] == "../tests/data/runbooks/ok"
    assert "is not a notebook name" in record["error"] and "\n" not in record["error"]
    assert record["html"] is None and record["notebook"] is None


def test_triage_runs_each_incident_once_and_records_it(
    migrated_db: str, log: Path, tmp_path: Path
) -> None:
    """Each incident's runbook writes HTML and Markdown into its folder, the paths land in
    incident_data (and in the incident list); a second run does no new work and touches no
    file."""
    alert = add_alert(migrated_db, "ok-alert", "ok")
    add_incident(migrated_db, "INC-1", alert)
    add_incident(migrated_db, "INC-2", alert, 1)
    out = tmp_path / "incidents"
    run = triage.triage(out=out, url=migrated_db)
    assert [(o.incident_id, o.status) for o in run.outcomes] == [
        ("INC-1", "done"),
        ("INC-2", "done"),
    ]
    assert (run.done, run.failed, run.skipped) == (2, 0, 0)
    assert runs(log) == ["INC-1", "INC-2"]
    record = report_of(migrated_db, "INC-1")
    folder = out.resolve() / "INC-1"
    assert record["status"] == "done" and record["runbook"] == "ok" and record["attempts"] == 1
    assert record["html"] == str(folder / "ok.html") and Path(record["html"]).is_file()
    assert record["notebook"] == str(folder / "ok.ipynb") and record["error"] is None
    assert record["markdown"] == str(folder / "postmortem.md")
    assert Path(record["markdown"]).read_text().startswith("# Draft for INC-1")
    assert record["bundle"] == str(folder / "ok.bundle")  # evidence, by default
    assert (folder / "ok.bundle" / "manifest.json").is_file()
    assert run.outcomes[0].path == folder / "ok.html"
    assert load.incidents(url=migrated_db)["runbook"].tolist() == ["ok", "ok"]
    listed = load.incident_list(url=migrated_db)  # what `obslib incidents list` shows
    assert listed["report_html"].tolist() == [record["html"], str(out.resolve() / "INC-2/ok.html")]
    assert listed["report_status"].tolist() == ["done", "done"]

    files = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    again = triage.triage(out=out, url=migrated_db)
    assert again.outcomes == []
    assert runs(log) == ["INC-1", "INC-2"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == files
    assert report_of(migrated_db, "INC-1") == record


def test_since_leaves_older_incidents_alone(migrated_db: str, log: Path, tmp_path: Path) -> None:
    """--since: only incidents triggered at or after it."""
    alert = add_alert(migrated_db, "ok-alert", "ok")
    add_incident(migrated_db, "INC-old", alert)
    add_incident(migrated_db, "INC-new", alert, 10)
    run = triage.triage(T0 + timedelta(minutes=10), tmp_path, url=migrated_db)
    assert [o.incident_id for o in run.outcomes] == ["INC-new"]
    assert report_of(migrated_db, "INC-old") is None


def test_a_failing_runbook_is_recorded_does_not_stop_the_others_and_is_retried(
    migrated_db: str, log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure is recorded with its error notebook, the next incident runs; once the
    runbook is fixed, the next run retries only the failed incident."""
    books = tmp_path / "books"
    books.mkdir()
    shutil.copy(RUNBOOKS / "fails.ipynb", books / "flaky.ipynb")
    shutil.copy(RUNBOOKS / "ok.ipynb", books / "ok.ipynb")
    monkeypatch.setenv(triage.ENV_RUNBOOKS, str(books))
    add_incident(migrated_db, "INC-bad", add_alert(migrated_db, "flaky-alert", "flaky"))
    add_incident(migrated_db, "INC-good", add_alert(migrated_db, "ok-alert", "ok"), 1)
    out = tmp_path / "out"

    run = triage.triage(out=out, url=migrated_db)
    assert [(o.incident_id, o.status) for o in run.outcomes] == [
        ("INC-bad", "failed"),
        ("INC-good", "done"),
    ]
    failed = report_of(migrated_db, "INC-bad")
    assert failed["status"] == "failed" and failed["html"] is None
    assert "RuntimeError: runbook broke on purpose" in failed["error"]
    assert "\n" not in failed["error"]
    error_notebook = Path(failed["notebook"])
    assert error_notebook == out.resolve() / "INC-bad" / "flaky.ipynb"
    assert "runbook broke on purpose" in error_notebook.read_text()
    assert run.outcomes[0].path == error_notebook
    assert report_of(migrated_db, "INC-good")["status"] == "done"

    shutil.copy(RUNBOOKS / "ok.ipynb", books / "flaky.ipynb")  # the runbook is fixed
    retry = triage.triage(out=out, url=migrated_db)
    assert [(o.incident_id, o.status) for o in retry.outcomes] == [("INC-bad", "done")]
    fixed = report_of(migrated_db, "INC-bad")
    assert fixed["status"] == "done" and fixed["attempts"] == 2 and fixed["error"] is None
    assert Path(fixed["html"]).is_file()
    assert runs(log) == ["INC-bad", "INC-good", "INC-bad"]


def test_an_incident_locked_by_another_triage_is_skipped(
    migrated_db: str, log: Path, tmp_path: Path
) -> None:
    """While another session holds an incident's lock, triage leaves it to that session."""
    alert = add_alert(migrated_db, "ok-alert", "ok")
    add_incident(migrated_db, "INC-held", alert)
    add_incident(migrated_db, "INC-free", alert, 1)
    with psycopg.connect(migrated_db, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", triage.lock_key("INC-held"))
        run = triage.triage(out=tmp_path, url=migrated_db)
    assert [(o.incident_id, o.status, o.reason) for o in run.outcomes] == [
        ("INC-held", "skipped", "another triage is running it"),
        ("INC-free", "done", None),
    ]
    assert runs(log) == ["INC-free"] and report_of(migrated_db, "INC-held") is None
    later = triage.triage(out=tmp_path, url=migrated_db)  # the other session is gone
    assert [(o.incident_id, o.status) for o in later.outcomes] == [("INC-held", "done")]


def test_an_incident_finished_meanwhile_is_not_run_again(
    migrated_db: str, log: Path, tmp_path: Path
) -> None:
    """Under the lock, triage re-reads the incident: one another triage finished after this
    run picked it is left alone."""
    alert = add_alert(migrated_db, "ok-alert", "ok")
    add_incident(migrated_db, "INC-1", alert)
    add_incident(migrated_db, "INC-2", alert, 1)
    theirs = {"status": "done", "html": "/elsewhere/ok.html"}

    def another_triage_finishes_inc_2(outcome: triage.Outcome) -> None:
        with psycopg.connect(migrated_db) as conn:
            conn.execute(
                "UPDATE alert_incidents SET incident_data = incident_data"
                " || jsonb_build_object('report', %s::jsonb) WHERE incident_id = 'INC-2'",
                (psycopg.types.json.Jsonb(theirs),),
            )

    run = triage.triage(out=tmp_path, url=migrated_db, on_outcome=another_triage_finishes_inc_2)
    assert [(o.incident_id, o.status) for o in run.outcomes] == [
        ("INC-1", "done"),
        ("INC-2", "skipped"),
    ]
    assert runs(log) == ["INC-1"]
    assert report_of(migrated_db, "INC-2") == theirs


@pytest.mark.slow
def test_two_triage_processes_at_once_run_each_incident_once(
    migrated_db: str, log: Path, tmp_path: Path
) -> None:
    """Two `obslib triage` started together share the incidents: each runs exactly once."""
    alert = add_alert(migrated_db, "ok-alert", "ok")
    ids = [f"INC-{n}" for n in range(4)]
    for n, incident_id in enumerate(ids):
        add_incident(migrated_db, incident_id, alert, n)
    reports.kernel_name(headless=True)  # the kernel spec exists before two processes look for it
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")},
        ENV_DATABASE_URL: migrated_db,
        ENV_HOME: str(settings().home),
        triage.ENV_RUNBOOKS: str(RUNBOOKS),
        LOG_ENV: str(log),
    }
    command = [sys.executable, "-m", "obslib", "triage", "--out", str(tmp_path / "out")]
    procs = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert sorted(runs(log)) == ids
    done = [line.split()[0] for out, _ in results for line in out.splitlines() if " done " in line]
    assert sorted(done) == ids
    assert all(report_of(migrated_db, i)["attempts"] == 1 for i in ids)


def test_the_command_prints_a_line_per_incident_and_exits_1_on_a_failure(
    migrated_db: str, log: Path, tmp_path: Path
) -> None:
    """id, status and path per incident, a summary; exit 1 when any runbook failed."""
    add_incident(migrated_db, "INC-bad", add_alert(migrated_db, "f", "fails"))
    add_incident(migrated_db, "INC-good", add_alert(migrated_db, "o", "ok"), 1)
    out = tmp_path / "out"
    env = {ENV_DATABASE_URL: migrated_db, triage.ENV_RUNBOOKS: str(RUNBOOKS), LOG_ENV: str(log)}
    result = run_cli("triage", "--out", str(out), env=env, timeout=180)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    folder = out.resolve()
    assert lines[0].startswith(f"INC-bad  failed   {folder / 'INC-bad' / 'fails.ipynb'}  (")
    assert "RuntimeError: runbook broke on purpose" in lines[0]
    assert lines[1] == f"INC-good  done     {folder / 'INC-good' / 'ok.html'}"
    assert lines[2:] == ["triage: 1 done, 1 failed, 0 skipped"]
    assert result.stderr == ""


def test_help_states_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """Scripts and service managers read the exit status: --help says what each means."""
    with pytest.raises(SystemExit):
        main(["triage", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "exit status: 0 every incident done" in text
    assert "1 a runbook failed" in text and "2 bad input" in text


def test_help_says_where_the_incidents_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    """Triage runs runbooks and lists nothing: its help names the command that lists."""
    with pytest.raises(SystemExit):
        main(["triage", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Triage lists nothing: `obslib incidents list` shows the incidents" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "soonish"], "obslib: error: --since is not a time: 'soonish'"),
        (["--out", "{file}"], "exists and is not a folder"),
    ],
    ids=["a since that is no time", "an out that is a file"],
)
def test_bad_input_is_exit_2_before_any_work(
    migrated_db: str, tmp_path: Path, args: list[str], message: str
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    args = [a.format(file=a_file) for a in args]
    result = run_cli("triage", *args, env={ENV_DATABASE_URL: migrated_db})
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.splitlines()) == 1


def test_a_database_without_the_runbook_column_is_exit_2(fresh_db: str, tmp_path: Path) -> None:
    """Before migration 0011 the command says which step is missing, on one line."""
    Migrator(fresh_db, MIGRATIONS).up(to=10)
    with psycopg.connect(fresh_db) as conn:
        conn.execute("INSERT INTO alert_incidents (incident_id, severity) VALUES ('INC-1', 'low')")
    result = run_cli("triage", "--out", str(tmp_path), env={ENV_DATABASE_URL: fresh_db})
    assert result.returncode == 2
    assert result.stderr == (
        "obslib: error: the database has no alert_definitions.runbook:"
        " run `obslib db up` (migration 0011)\n"
    )


@pytest.mark.slow
def test_follow_triages_new_incidents_through_a_restart_and_stops_cleanly(tmp_path: Path) -> None:
    """`obslib triage --follow` on a server of its own: the backlog at start, an incident as
    it is inserted, one inserted while the server restarted (the catch-up after the
    reconnect), then SIGTERM during a report: that report finishes and the exit is 0."""
    log = tmp_path / "runs.log"
    out = tmp_path / "out"
    with pgserver.ScratchServer(prefix="obt-tf-") as server:
        url = server.url
        Migrator(url, MIGRATIONS).up()
        alert = add_alert(url, "ok-alert", "ok")
        add_incident(url, "INC-backlog", alert)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")},
            ENV_DATABASE_URL: url,
            ENV_HOME: str(tmp_path / "home"),
            triage.ENV_RUNBOOKS: str(RUNBOOKS),
            LOG_ENV: str(log),
        }
        stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
        with stdout.open("w") as o, stderr.open("w") as e:
            proc = subprocess.Popen(
                [sys.executable, "-m", "obslib", "triage", "--follow", "--out", str(out)],
                env=env,
                stdout=o,
                stderr=e,
            )
        try:

            def done(incident_id: str) -> Callable[[], bool]:
                def check() -> bool:
                    record = report_of(url, incident_id)
                    return bool(record) and record["status"] == "done"

                return check

            wait_for("the backlog", done("INC-backlog"))
            add_incident(url, "INC-live", alert, 1)
            wait_for("the live incident", done("INC-live"))
            assert (
                Path(report_of(url, "INC-live")["html"]) == out.resolve() / "INC-live" / "ok.html"
            )
            assert (out / "INC-live" / "ok.html").is_file()

            pgserver.stop(server.settings)  # the follower is idle, listening
            retries = lambda: stderr.read_text().count("database still unreachable")  # noqa: E731
            wait_for("two failed reconnects", lambda: retries() >= 2, timeout=30)
            assert stderr.read_text().count("lost the database") == 1
            pgserver.url(server.settings)  # up again; the follower retries in 2 s
            add_incident(url, "INC-away", alert, 2)  # nobody listens: only a catch-up finds it
            wait_for("the incident inserted while away", done("INC-away"))
            assert stderr.read_text().count("listening on obslib_incidents") == 2

            add_incident(url, "INC-slow", add_alert(url, "slow-alert", "slow"), 3)
            wait_for("the slow runbook to start", lambda: "INC-slow" in runs(log))
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, stderr.read_text()
            assert report_of(url, "INC-slow")["status"] == "done"  # finished, not cut short
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert runs(log) == ["INC-backlog", "INC-live", "INC-away", "INC-slow"]
    lines = stdout.read_text().splitlines()
    assert [line.split()[:2] for line in lines[:-1]] == [
        [i, "done"] for i in ("INC-backlog", "INC-live", "INC-away", "INC-slow")
    ]
    assert lines[-1] == "triage stopped: 4 done, 0 failed, 0 skipped"


def test_a_follower_retries_an_incident_another_triage_held_once_it_is_free(
    migrated_db: str, log: Path, tmp_path: Path
) -> None:
    """Another session holds INC-held's lock when it arrives (as a triage that then died
    would): the follower skips it, and triages it at its next idle check once the lock is
    free, without a new NOTIFY."""
    alert = add_alert(migrated_db, "ok-alert", "ok")
    with psycopg.connect(migrated_db, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", triage.lock_key("INC-held"))
        with following(migrated_db, tmp_path, idle_check_s=1.0) as outcomes:
            add_incident(migrated_db, "INC-held", alert)
            wait_for("the follower to skip it", lambda: ("INC-held", "skipped") in outcomes)
            assert runs(log) == []
            other.execute("SELECT pg_advisory_unlock(%s, %s)", triage.lock_key("INC-held"))
            wait_for("the retry", lambda: ("INC-held", "done") in outcomes, timeout=60)
    assert runs(log) == ["INC-held"] and report_of(migrated_db, "INC-held")["status"] == "done"


def test_a_new_incident_is_drafted_before_the_rest_of_the_backlog(
    migrated_db: str, log: Path, tmp_path: Path
) -> None:
    """Three undrafted old incidents at start: the follower's catch-up drafts the oldest, a
    new incident is inserted (and notified) meanwhile, and it is drafted next, before the
    other two, which follow in their order; each once."""
    alert = add_alert(migrated_db, "ok-alert", "ok")
    old = [f"INC-old-{k}" for k in range(3)]
    for k, incident_id in enumerate(old):
        add_incident(migrated_db, incident_id, alert, k)
    stop = threading.Event()
    outcomes: list[str] = []

    def on_outcome(outcome: triage.Outcome) -> None:
        outcomes.append(outcome.incident_id)
        if outcome.incident_id == old[0]:  # mid catch-up: two old ones still to draft
            add_incident(migrated_db, "INC-new", alert, 60)
        if len(outcomes) == len(old) + 1:  # each drafted once
            stop.set()

    follower = threading.Thread(
        target=triage.follow,
        kwargs=dict(out=tmp_path, url=migrated_db, stop=stop, on_outcome=on_outcome),
    )
    follower.start()
    follower.join(timeout=300)
    stop.set()
    assert not follower.is_alive()
    drafted = [old[0], "INC-new", *old[1:]]
    assert runs(log) == drafted and outcomes == drafted
    with psycopg.connect(migrated_db) as conn:
        recorded = conn.execute(
            """SELECT incident_id FROM alert_incidents
               ORDER BY (incident_data -> 'report' ->> 'at')::timestamptz"""
        ).fetchall()
    assert [r[0] for r in recorded] == drafted


def test_a_follower_s_kernel_serves_one_run_and_is_replaced(migrated_db: str) -> None:
    """The follower's spare kernel: a used one is shut down and a fresh one warms in its
    place; one no run could use (a runbook of another folder) is kept for the next."""
    spare = triage._Spare(migrated_db)
    try:
        spare.refill()
        first = spare.take()
        assert first is not None and spare.take() is None  # one run, one kernel
        spare.refill()  # not used: kept
        assert spare.ready is first
        spare.take().claim()
        spare.refill()
        assert spare.ready is not None and spare.ready is not first
        assert not first.manager.is_alive()
    finally:
        spare.close()
    assert spare.ready is None


def test_ctrl_c_lets_the_report_in_progress_finish(
    migrated_db: str, log: Path, tmp_path: Path
) -> None:
    """SIGINT stops `follow` the way SIGTERM does: after the report in progress, no
    KeyboardInterrupt, its outcome recorded."""
    alert = add_alert(migrated_db, "slow-alert", "slow")

    def page_then_interrupt() -> None:
        add_incident(migrated_db, "INC-slow", alert)
        wait_for("the slow runbook to start", lambda: "INC-slow" in runs(log))
        os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when run as a background job
    helper = threading.Thread(target=page_then_interrupt)
    helper.start()  # found by the start's catch-up or by its NOTIFY, whichever comes first
    run = triage.follow(out=tmp_path, url=migrated_db)
    helper.join()
    assert [(o.incident_id, o.status) for o in run.outcomes] == [("INC-slow", "done")]
    assert report_of(migrated_db, "INC-slow")["status"] == "done"
    assert signal.getsignal(signal.SIGINT) is before  # restored


def test_the_default_runbook_is_the_postmortem(migrated_db: str, tmp_path: Path) -> None:
    """An alert without a runbook gets the postmortem: HTML and Markdown, recorded."""
    add_incident(migrated_db, "INC-pm", add_alert(migrated_db, "pm-alert", None))
    run = triage.triage(out=tmp_path, url=migrated_db)
    assert [(o.incident_id, o.status) for o in run.outcomes] == [("INC-pm", "done")], run
    record = report_of(migrated_db, "INC-pm")
    assert record["runbook"] == "incident"
    assert Path(record["html"]).is_file() and Path(record["markdown"]).is_file()


# -- pre-emption: a new incident stops the catch-up's draft in progress ------------------------


def draft_started(log: Path, incident_id: str, times: int = 1) -> Callable[[], bool]:
    return lambda: runs(log).count(incident_id) >= times


def test_a_new_incident_stops_the_old_draft_in_progress_which_runs_again_after_it(
    migrated_db: str, log: Path, tmp_path: Path
) -> None:
    """The catch-up's first draft stalls (its runbook sleeps a minute); a new incident
    inserted meanwhile kills it, is drafted, then the stopped one runs again (its second
    run takes 4 s) and the catch-up goes on. The stopped run is recorded nowhere: one
    attempt, done, its HTML the rerun's."""
    stalls = add_alert(migrated_db, "stalls-alert", "stalls")
    ok = add_alert(migrated_db, "ok-alert", "ok")
    add_incident(migrated_db, "INC-old-0", stalls)
    add_incident(migrated_db, "INC-old-1", ok, 1)
    out = tmp_path / "out"
    with following(migrated_db, out, idle_check_s=30) as outcomes:
        wait_for("the old draft to stall", draft_started(log, "INC-old-0"))
        add_incident(migrated_db, "INC-new", ok, 60)
        wait_for("the new incident", lambda: ("INC-new", "done") in outcomes, timeout=45)
        assert report_of(migrated_db, "INC-old-0") is None  # stopped: not failed
        wait_for("the catch-up", lambda: ("INC-old-1", "done") in outcomes)
    assert outcomes == [("INC-new", "done"), ("INC-old-0", "done"), ("INC-old-1", "done")]
    assert runs(log) == ["INC-old-0", "INC-new", "INC-old-0", "INC-old-1"]
    record = report_of(migrated_db, "INC-old-0")
    assert (record["status"], record["attempts"], record["error"]) == ("done", 1, None)
    assert Path(record["html"]) == out.resolve() / "INC-old-0" / "stalls.html"
    assert Path(record["html"]).is_file()


def test_a_notification_of_nothing_new_does_not_stop_the_draft_in_progress(
    migrated_db: str, log: Path, tmp_path: Path
) -> None:
    """While an old incident's draft runs (4 s), notifications of that very incident, of
    an id stored nowhere, of a done incident and of a padded id stop nothing: it runs
    once. A failing runbook in the same catch-up (on a kernel that could be stopped) is
    recorded failed, as ever."""
    slow = add_alert(migrated_db, "slow-alert", "slow")
    ok = add_alert(migrated_db, "ok-alert", "ok")
    add_incident(migrated_db, "INC-done", ok)
    triage.triage(out=tmp_path, url=migrated_db)
    add_incident(migrated_db, "INC-old", slow, 1)
    add_incident(migrated_db, "INC-bad", add_alert(migrated_db, "fails-alert", "fails"), 2)
    add_incident(migrated_db, " INC-padded", ok, 3)
    with following(migrated_db, tmp_path, idle_check_s=30) as outcomes:
        wait_for("the old draft", draft_started(log, "INC-old"))
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            for payload in ("INC-old", "INC-nothing", "INC-done", " INC-padded"):
                conn.execute("SELECT pg_notify(%s, %s)", (triage.CHANNEL, payload))
        wait_for("the catch-up", lambda: len(outcomes) == 3)
    assert outcomes == [
        ("INC-old", "done"),
        (" INC-padded", "skipped"),  # notified, so looked at first: refused, as ever
        ("INC-bad", "failed"),
    ]
    assert runs(log) == ["INC-done", "INC-old", "INC-bad"]
    assert report_of(migrated_db, "INC-old")["attempts"] == 1
    failed = report_of(migrated_db, "INC-bad")
    assert failed["status"] == "failed" and failed["attempts"] == 1
    assert "RuntimeError: runbook broke on purpose" in failed["error"]


def test_an_old_draft_is_stopped_at_most_max_preemptions_times(
    migrated_db: str, log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream of new incidents cannot starve the catch-up: once an old draft has been
    stopped _MAX_PREEMPTIONS times (1 here), its next run goes to its end and a new
    incident arriving meanwhile waits for it."""
    monkeypatch.setattr(triage, "_MAX_PREEMPTIONS", 1)
    add_incident(migrated_db, "INC-old", add_alert(migrated_db, "stalls-alert", "stalls"))
    ok = add_alert(migrated_db, "ok-alert", "ok")
    with following(migrated_db, tmp_path, idle_check_s=30) as outcomes:
        wait_for("the old draft to stall", draft_started(log, "INC-old"))
        add_incident(migrated_db, "INC-new-1", ok, 60)
        wait_for("the old draft again", draft_started(log, "INC-old", 2), timeout=45)
        add_incident(migrated_db, "INC-new-2", ok, 61)  # during the 4 s second run
        wait_for("the second new incident", lambda: len(outcomes) == 3)
    assert outcomes == [("INC-new-1", "done"), ("INC-old", "done"), ("INC-new-2", "done")]
    assert runs(log) == ["INC-old", "INC-new-1", "INC-old", "INC-new-2"]


def test_sigterm_while_the_new_incident_is_drafted_stops_after_it(
    migrated_db: str, log: Path, tmp_path: Path
) -> None:
    """A new incident (4 s runbook) stops the old stalled draft; SIGTERM while the new one
    runs: it finishes and is recorded, `follow` returns, and the stopped one is left as it
    was, never attempted (no failure recorded), for the next triage, which drafts it once."""
    add_incident(migrated_db, "INC-old", add_alert(migrated_db, "stalls-alert", "stalls"))
    slow = add_alert(migrated_db, "slow-alert", "slow")

    def page_then_terminate() -> None:
        wait_for("the old draft to stall", draft_started(log, "INC-old"))
        add_incident(migrated_db, "INC-new", slow, 60)
        wait_for("the new draft", draft_started(log, "INC-new"), timeout=45)
        os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=page_then_terminate)
    helper.start()
    try:
        run = triage.follow(out=tmp_path, url=migrated_db)
    finally:
        helper.join()
    assert [(o.incident_id, o.status) for o in run.outcomes] == [("INC-new", "done")]
    assert report_of(migrated_db, "INC-new")["status"] == "done"
    assert report_of(migrated_db, "INC-old") is None
    later = triage.triage(out=tmp_path, url=migrated_db)
    assert [(o.incident_id, o.status) for o in later.outcomes] == [("INC-old", "done")]
    assert report_of(migrated_db, "INC-old")["attempts"] == 1
    assert runs(log) == ["INC-old", "INC-new", "INC-old"]
