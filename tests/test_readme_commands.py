"""Every obslib command line the README shows (its sh and cron blocks) runs as written.

A reader copies these lines; one that fails (the cron line's `-p end ""` once did) is a
bug. Each line is read out of README.md itself and looked up in HOW, so a new line without
a way to run it here fails `test_every_readme_command_line_is_run_here`. What a line cannot
reach here is replaced and said so: a database URL of another host becomes the test
database, the README's shortened trace id a real one, the collector's port a free one.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from tests.conftest import REPO

README = REPO / "README.md"
_BLOCK = re.compile(r"^```(sh|cron)\n(.*?)^```", re.S | re.M)
_CRON_TIME = re.compile(r"^(\S+\s+){5}")
_COMMENT = re.compile(r"\s+#.*$")
_DATE = re.compile(r"\$\(date \+([^)]*)\)")

# How each README line runs here: against the demo (read-only), against an empty migrated
# database, as a service started, checked and stopped by SIGTERM, or not at all (said why).
DEMO, EMPTY, SERVICE, NOT_HERE = "demo", "empty", "service", "not here"
HOW = {
    ".venv/bin/obslib demo": (NOT_HERE, "the quickstart's 500k-span demo; tests/test_demo.py"),
    ".venv/bin/obslib lab": (NOT_HERE, "a JupyterLab server; tests/views/test_lab_browser.py"),
    ".venv/bin/obslib report trace --out reports/": (DEMO, "reports/trace_investigation.html"),
    ".venv/bin/obslib report trace --trace-id 3d6e4bbf... -p skew_correction false"
    " --out reports/": (DEMO, "reports/trace_investigation.html"),
    ".venv/bin/obslib report slo -p window 30d -p end '' --out reports/": (
        DEMO,
        "reports/slo_review.html",
    ),
    ".venv/bin/obslib report incident -p incident_id INC-20261114-0001 --out reports/incident/": (
        DEMO,
        "reports/incident/postmortem.md",
    ),
    ".venv/bin/obslib report health -p window 7d --out reports/": (
        DEMO,
        "reports/observability_health.html",
    ),
    "OBSLIB_DATABASE_URL=postgresql://reader@db/obs .venv/bin/obslib report slo -p end ''"
    " --out reports/slo/{week}": (DEMO, "reports/slo/{week}/slo_review.html"),
    "obslib report incident --bundle --out reports/incident/": (
        NOT_HERE,
        "tests/reports/test_bundle.py records the postmortem's bundle, verifies it and re-runs it",
    ),
    "obslib bundle verify reports/incident/incident_postmortem.bundle": (
        NOT_HERE,
        "needs the bundle above; tests/reports/test_bundle.py runs obslib bundle verify",
    ),
    "OBSLIB_DATABASE_URL=postgresql://nobody@127.0.0.1:1/none obslib report --from-bundle"
    " reports/incident/incident_postmortem.bundle --out rerun/": (
        NOT_HERE,
        "needs the bundle above; tests/reports/test_bundle.py re-runs it, database on a"
        " closed port",
    ),
    "obslib triage": (EMPTY, ""),
    "obslib triage --since 2026-11-14T00:00Z": (EMPTY, ""),
    "obslib triage --follow --since now": (SERVICE, "listening"),
    "obslib ingest otlp collector-export.jsonl.gz": (EMPTY, "1 spans"),
    "obslib ingest jaeger trace-5b8efff7.json": (EMPTY, "spans"),
    "obslib ingest logs app.log.jsonl --rejects rejects.jsonl": (EMPTY, "1 logs"),
    "obslib collect": (SERVICE, "listening"),
    "obslib collect --sampling adaptive --spans-per-second 500": (SERVICE, "listening"),
    "OBSLIB_DATABASE_URL=postgresql://notebooks:…@db.internal/domainflow obslib report trace"
    " --out reports/": (DEMO, "reports/trace_investigation.html"),
    "OBSLIB_DATABASE_URL=postgresql://notebooks:…@db.internal/domainflow obslib lab": (
        NOT_HERE,
        "a JupyterLab server; tests/views/test_lab_browser.py",
    ),
    "obslib slo evaluate --record": (EMPTY, ""),
}


def readme_command_lines() -> list[str]:
    """The obslib command of every sh or cron line of the README, as a shell would see it:
    comments, a cron schedule, `cd … &&`, redirections and a trailing `&` taken off."""
    found = []
    for lang, body in _BLOCK.findall(README.read_text()):
        for line in body.replace("\\\n", " ").splitlines():  # continued lines joined
            if lang == "cron":
                line = _CRON_TIME.sub("", line).replace("\\%", "%")
            line = _DATE.sub(lambda m: datetime.now().strftime(m.group(1)), line)
            line = _COMMENT.sub("", line).strip()
            command = next((part for part in line.split("&&") if _runs_obslib(part)), None)
            if command is None:
                continue
            command = re.sub(r"\s*(>>?|2>&1).*$", "", command).removesuffix("&").strip()
            found.append(" ".join(word or "''" for word in shlex.split(command)))
    return found


def _runs_obslib(part: str) -> bool:
    words = [w for w in shlex.split(part) if "=" not in w.split("/")[0]]
    return bool(words) and Path(words[0]).name == "obslib"


def test_every_readme_command_line_is_run_here() -> None:
    """A line added to the README needs a way to run it in HOW (and a removed one goes)."""
    week = datetime.now().strftime("%G-W%V")
    shown = readme_command_lines()
    known = {key.format(week=week) for key in HOW}
    assert sorted(set(shown) - known) == [], "README lines this test does not run"
    assert sorted(known - set(shown)) == [], "lines in HOW the README no longer shows"


def _cases(mode: str) -> list:
    """A case per command run here: README lines that differ only in what this test replaces
    (the database URL of their environment) and in the path of obslib, expecting the same
    file, run once, under an id naming each line."""
    lines: dict[tuple, list[str]] = {}
    for line, (how, expect) in HOW.items():
        if how == mode:
            lines.setdefault((_command_words(line), expect), []).append(line)
    return [
        pytest.param(same[0], expect, id=" = ".join(same)) for (_, expect), same in lines.items()
    ]


def _command_words(line: str) -> tuple[str, ...]:
    """The line's command without its environment settings and the path of obslib."""
    words = shlex.split(line)
    while "=" in words[0]:
        words.pop(0)
    return tuple(words[1:])


@pytest.mark.slow
@pytest.mark.parametrize(("line", "expect"), _cases(DEMO))
def test_a_report_line_runs_on_the_demo(demo_db, tmp_path, line, expect) -> None:
    """Each report line writes its report (exit 0) in the folder it names."""
    url, summary = demo_db
    week = datetime.now().strftime("%G-W%V")
    argv, env = _argv(line.format(week=week), url)
    if "3d6e4bbf..." in argv:  # the README shortens a trace id of its own demo
        argv[argv.index("3d6e4bbf...")] = _an_error_trace(url, summary)
    result = _run(argv, env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / expect.format(week=week)).is_file()


@pytest.mark.parametrize(("line", "expect"), _cases(EMPTY))
def test_a_line_runs_on_an_empty_database(migrated_db, tmp_path, line, expect) -> None:
    """Triage, import and evaluation lines work on a database of our own (exit 0)."""
    _write_inputs(tmp_path)
    argv, env = _argv(line, migrated_db)
    result = _run(argv, env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert expect in result.stdout + result.stderr


@pytest.mark.parametrize(("line", "expect"), _cases(SERVICE))
def test_a_service_line_starts_and_stops_on_sigterm(migrated_db, tmp_path, line, expect) -> None:
    """A long-running line comes up, says so, and exits 0 within 30 s of SIGTERM."""
    argv, env = _argv(line, migrated_db)
    if argv[1] == "collect":  # the default port may be taken by another test's receiver
        argv += ["--port", str(_free_port())]
    log = tmp_path / "out.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=sink, stderr=sink)
        try:
            deadline = time.monotonic() + 120
            while expect not in log.read_text() and proc.poll() is None:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            assert proc.poll() is None, log.read_text()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _argv(line: str, url: str) -> tuple[list[str], dict[str, str]]:
    """The line's command as argv for this interpreter's obslib, its environment with the
    database URL (a README URL of another host replaced by the test's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")}
    env["OBSLIB_DATABASE_URL"] = url  # an OBSLIB_DATABASE_URL=… of the README: not reachable
    return [sys.executable, "-m", "obslib", *_command_words(line)], env


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def _an_error_trace(url: str, summary) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT trace_id FROM distributed_traces WHERE status = 'error'"
            " AND start_time >= %s AND start_time < %s ORDER BY duration_ms DESC LIMIT 1",
            (summary.incident_start, summary.incident_end),
        ).fetchone()
    return row[0]


def _write_inputs(folder: Path) -> None:
    """The files the README's import lines name, small and valid."""
    t0 = 1_763_128_800_000_000_000  # 2025-11-14 14:00 UTC in ns
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "GET /domains",
        "kind": 2,
        "startTimeUnixNano": str(t0),
        "endTimeUnixNano": str(t0 + 2_000_000),
    }
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "api-gateway"}}]}
    doc = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [span]}]}]}
    with gzip.open(folder / "collector-export.jsonl.gz", "wt") as f:
        f.write(json.dumps(doc) + "\n")
    (folder / "trace-5b8efff7.json").write_bytes(
        (REPO / "tests" / "data" / "jaeger" / "hotrod_trace.json").read_bytes()
    )
    entry = {
        "timestamp": "2026-11-14T14:05:00Z",
        "level": "error",
        "service_name": "domain-service",
        "message": "connection pool exhausted",
    }
    (folder / "app.log.jsonl").write_text(json.dumps(entry) + "\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
