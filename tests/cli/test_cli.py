"""The `obslib` command as a user meets it: help, exit codes, one-line errors."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import psycopg
import pytest

from obslib import reports
from obslib.cli import build_parser, main
from obslib.storage.migrate import discover
from tests.conftest import LATEST, MIGRATIONS, run_cli
from tests.storage.test_roles import drop_role


def _leaf_commands(parser: argparse.ArgumentParser, prefix: str = "") -> set[str]:
    """Every command the parser really dispatches, e.g. {"db up", "demo", ...}."""
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= _leaf_commands(sub, f"{prefix}{name} ") or {prefix + name}
    return found


def test_help_lists_exactly_the_commands_that_exist() -> None:
    """`obslib --help` names every command the parser dispatches, and no other."""
    real = _leaf_commands(build_parser())
    assert {
        "db up",
        "db grant-reader",
        "demo",
        "report",
        "lab",
        "slo evaluate",
        "incidents list",
        "alerts replay",
        "slo export",
    } <= real
    result = run_cli("--help")
    assert result.returncode == 0
    groups = "db |slo |export |incidents |alerts |bundle |kernel "
    listed = set(re.findall(rf"^  obslib ((?:{groups})?[\w-]+)", result.stdout, re.M))
    assert listed == real


def _helps(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, str]:
    """Every command the parser dispatches and the one-line help its parser was added with."""
    found: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                found |= _helps(sub, f"{prefix}{name} ") or {prefix + name: helps[name]}
    return found


def test_help_shows_every_command_with_its_own_help() -> None:
    """The overview of `obslib --help` is read from the parsers: each command's entry is its
    usage (no [-h]) and then the help its parser was added with, word for word."""
    result = run_cli("--help")
    overview = result.stdout.split("all commands:\n", 1)[1].split("\n\n", 1)[0]
    entries = re.split(r"\n(?=  obslib )", overview)
    assert len(entries) == len(_helps(build_parser()))
    for (command, text), entry in zip(_helps(build_parser()).items(), entries, strict=True):
        words = " ".join(entry.split())
        assert words.startswith(f"obslib {command}"), entry
        assert words.endswith(" ".join(text.split())), entry
        assert "[-h]" not in words


def test_help_and_argument_errors_import_nothing_heavy() -> None:
    """`obslib --help` and bad arguments (a report that does not exist, a parameter a report
    does not have) answer before the notebook machinery or the charts are imported: the
    report registry is data."""
    import subprocess
    import sys

    heavy = ("papermill", "nbformat", "nbconvert", "jupyter_client", "altair", "obslib.views")
    runs = [
        ["--help"],
        ["report", "nosuch", "--out", "x"],
        ["report", "trace", "-p", "a", "b", "--out", "x"],
    ]
    code = (
        "import contextlib, sys\n"
        "from obslib.cli import main\n"
        f"for argv in {runs!r}:\n"
        "    with contextlib.suppress(SystemExit):\n"
        "        main(argv)\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert "has no parameter 'a'" in result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_report_choices_and_parameters_come_from_the_registry() -> None:
    """`obslib report` offers exactly the registry's reports, and its help lists each one's
    title and parameters (report_mode is set by obslib report itself)."""
    result = run_cli("report", "--help")
    assert result.returncode == 0
    assert "{" + ",".join(reports.REPORTS) + "}" in result.stdout
    listing = result.stdout.split("reports and their parameters", 1)[1]
    for spec in reports.REPORTS.values():
        assert f"  {spec.name:<9} {spec.title}" in listing
        for parameter in spec.parameters:
            assert (parameter.name in listing) == (parameter is not reports.REPORT_MODE)


@pytest.mark.parametrize(
    "command", sorted(_leaf_commands(build_parser())), ids=lambda c: f"obslib {c} --help"
)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Each command parses `--help` and prints its own usage line."""
    with pytest.raises(SystemExit) as info:
        main([*command.split(), "--help"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: obslib {command}")


def test_bad_usage_is_one_line_and_exit_2() -> None:
    """An unknown command is one line on stderr, exit code 2, no traceback."""
    result = run_cli("db", "sideways")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "invalid choice: 'sideways'" in result.stderr


def test_unreachable_database_names_host_and_port_but_not_the_password() -> None:
    """A server that is not there: one line with host and port, no secret, exit 2."""
    url = "postgresql+psycopg://alice:s3cret-pw@127.0.0.1:1/domainflow"
    result = run_cli("db", "status", env={"OBSLIB_DATABASE_URL": url})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot reach PostgreSQL at 127.0.0.1:1" in lines[0]
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_non_postgres_url_is_a_usage_error() -> None:
    """A URL of another database kind is refused before any connection."""
    result = run_cli("db", "status", env={"OBSLIB_DATABASE_URL": "mysql://u:p@h/db"})
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "obslib: error: OBSLIB_DATABASE_URL must be a postgresql:// URL, not mysql://"
    )


def test_db_url_masks_the_password() -> None:
    """`db url` shows where the database is without its password."""
    url = "postgresql://alice:s3cret-pw@db.example:6543/domainflow"
    result = run_cli("db", "url", env={"OBSLIB_DATABASE_URL": url})
    assert result.returncode == 0
    assert result.stdout.strip() == "postgresql://alice:***@db.example:6543/domainflow"


def test_a_password_in_the_query_string_is_masked_too() -> None:
    """libpq also takes ?password=…: `db url` hides it as well."""
    url = "postgresql://alice@db.example/domainflow?password=s3cret-pw&sslmode=require"
    result = run_cli("db", "url", env={"OBSLIB_DATABASE_URL": url})
    assert "s3cret-pw" not in result.stdout
    assert (
        result.stdout.strip()
        == "postgresql://alice@db.example/domainflow?password=***&sslmode=require"
    )


def test_a_bad_url_option_is_a_usage_error() -> None:
    """An option libpq does not know is bad input (exit 2), not an internal error."""
    result = run_cli(
        "db", "status", env={"OBSLIB_DATABASE_URL": "postgresql://u@127.0.0.1:1/x?bogus=1"}
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("obslib: error: OBSLIB_DATABASE_URL is not usable")


def test_up_status_down_through_the_cli(fresh_db: str) -> None:
    """The migration commands work end to end and report what they did."""
    env = {"OBSLIB_DATABASE_URL": fresh_db}
    up = run_cli("db", "up", env=env)
    assert up.returncode == 0, up.stderr
    assert "applied 0001_monitoring_observability" in up.stdout
    assert f"version   {LATEST}, clean" in up.stdout
    down = run_cli("db", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert f"reverted {discover(MIGRATIONS)[-1].label}" in down.stdout
    assert f"version   {LATEST - 1}, clean" in down.stdout
    everything = run_cli("db", "down", "--all", env=env)
    assert "version   none, clean" in everything.stdout
    bad = run_cli("db", "down", "--to", "3", "--all", env=env)
    assert bad.returncode == 2


def test_broken_migration_exits_1_naming_the_file(fresh_db: str, migrations_copy: Path) -> None:
    """A migration failure is an operation failure: exit 1, the file and statement named."""
    (migrations_copy / f"{LATEST + 1:04d}_oops.up.sql").write_text("SELEC 1;\n")
    env = {"OBSLIB_DATABASE_URL": fresh_db, "OBSLIB_MIGRATIONS_DIR": str(migrations_copy)}
    result = run_cli("db", "up", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"obslib: error: {LATEST + 1:04d}_oops.up.sql: statement 1 (line 1) failed:"
    )
    assert len(result.stderr.strip().splitlines()) == 1
    status = run_cli("db", "status", env=env)
    assert f"version   {LATEST + 1} DIRTY" in status.stdout
    debug = run_cli("--debug", "db", "up", env=env)
    assert "Traceback" in debug.stderr and debug.returncode == 1


def test_demo_through_the_cli(fresh_db: str, tmp_path: Path) -> None:
    """`obslib demo` migrates, writes, summarises, writes every report; a second run adds
    nothing."""
    env = {"OBSLIB_DATABASE_URL": fresh_db}
    out = tmp_path / "reports"
    first = run_cli("demo", "--spans", "5000", "--reports", str(out), env=env, timeout=400)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_monitoring_observability" in first.stdout
    assert "INC-20261114-0001: deploy of domain-service at 2026-11-14 14:05 UTC" in first.stdout
    assert "window     2026-11-02 00:00 UTC .. 2026-11-16 00:00 UTC" in first.stdout
    for spec in reports.REPORTS.values():  # every report of the registry, with its defaults
        html = out / spec.notebook.replace(".ipynb", ".html")
        assert f"report    {html}" in first.stdout.splitlines()
        assert html.stat().st_size > 0
    assert f"  draft   {out / 'postmortem.md'}" in first.stdout.splitlines()  # as README says
    again = run_cli("demo", "--spans", "5000", "--no-reports", env=env)
    assert "nothing new (already stored)" in again.stdout
    assert not any(line.startswith("report    ") for line in again.stdout.splitlines())
    spans_line = next(line for line in first.stdout.splitlines() if "spans " in line)
    assert spans_line in again.stdout  # the same data, counted the same


_NOWHERE = "postgresql://nobody@127.0.0.1:1/x"  # no server: what is refused, is refused first


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--spans", "0"], "argument --spans: must be at least 1, not 0"),
        (["demo", "--seed", "-1"], "argument --seed: must be 0 or more, not -1"),
        (["demo", "--seed", "x"], "argument --seed: not a whole number: 'x'"),
        (["demo", "--reports", "r", "--no-reports"], "not allowed with argument --reports"),
        (["db", "grant-reader", "Robert'); DROP"], 'role name "Robert\'); DROP": use 1-63'),
        (["db", "grant-reader", "pg_reader"], "role name 'pg_reader' is reserved"),
        (
            ["export", "parquet", "--start", "0001-01-01", "--end", "2026-01-01", "--out", "x"],
            "--start '0001-01-01' is outside the times obslib holds",
        ),
        (
            ["export", "parquet", "--start", "2026-01-02", "--end", "2026-01-01", "--out", "x"],
            "empty time window: end 2026-01-01T00:00:00+00:00 is not after start",
        ),
        (["triage", "--since", "9999-01-01"], "--since '9999-01-01' is outside the times"),
    ],
    ids=[
        "no spans",
        "a negative seed",
        "a seed that is not a number",
        "reports and no reports",
        "a role name that is not an identifier",
        "a reserved role name",
        "an export from year 1 (a day partition each)",
        "an export ending before it starts",
        "triage since year 9999",
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    """Bad usage is refused before anything runs: exit 2, one line naming the argument."""
    result = run_cli(*args, env={"OBSLIB_DATABASE_URL": _NOWHERE})
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr


def test_export_into_a_file_is_refused_before_connecting(tmp_path: Path) -> None:
    """--out naming a file is bad input, found before the database is asked."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    args = ["export", "parquet", "--start", "2026-11-14", "--end", "2026-11-15"]
    result = run_cli(*args, "--out", str(blocker), env={"OBSLIB_DATABASE_URL": _NOWHERE})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"obslib: error: cannot export into {blocker}: it is a file, not a folder"
    )
    assert blocker.read_text() == "x"


def _report_args(out: str, *extra: str) -> list[str]:
    return ["report", "trace", *extra, "--out", out]


@pytest.mark.parametrize(
    ("case", "extra", "message"),
    [
        ("a file", [], "exists and is not a folder"),
        ("a path through a file", [], "a part of the path is a file, not a folder"),
        ("a place nobody may create", [], "cannot create it"),
        ("a good folder", ["-p", "start", "notadate"], "parameter start is not a time: 'notadate'"),
        ("a good folder", ["-p", "end", "14:99"], "parameter end is not a time: '14:99'"),
        ("a good folder", ["-p", "max_skew_ms", "lots"], "parameter max_skew_ms must be float"),
        (
            "a good folder",
            ["-p", "start", "2026-11-14T15:00", "-p", "end", "2026-11-14T14:00"],
            "empty time window: end 2026-11-14T14:00:00+00:00 is not after start",
        ),
        ("a good folder", ["-p", "max_skew_ms", "-1"], "max_skew_ms must be a number >= 0"),
        ("a good folder", ["-p", "max_skew_ms", "nan"], "max_skew_ms must be a number >= 0"),
        ("a good folder", ["-p", "start", "0001-01-01"], "is outside the times obslib holds"),
        ("a good folder", [], "cannot reach PostgreSQL at 127.0.0.1:1"),
    ],
    ids=[
        "--out is a file",
        "--out goes through a file",
        "--out under /proc",
        "a start that is not a time",
        "an end that is not a time",
        "a number that is not a number",
        "an end before the start",
        "a negative skew limit",
        "a skew limit that is NaN",
        "a start in year 1",
        "an unreachable database",
    ],
)
def test_report_refuses_bad_input_with_exit_2(
    tmp_path: Path, case: str, extra: list[str], message: str
) -> None:
    """`obslib report` checks its folder, parameters and database before a kernel starts."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = {
        "a file": str(blocker),
        "a path through a file": str(blocker / "reports"),
        "a place nobody may create": "/proc/obslib-reports",
        "a good folder": str(tmp_path / "reports"),
    }[case]
    env = {"OBSLIB_DATABASE_URL": "postgresql://alice:pw@127.0.0.1:1/domainflow"}
    result = run_cli(*_report_args(out, *extra), env=env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("obslib: error: "), result.stderr
    assert message in lines[0]
    assert not (tmp_path / "reports" / "trace_investigation.ipynb").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in any folder")
def test_report_refuses_a_folder_without_write_permission(tmp_path: Path) -> None:
    """A read-only --out folder is bad input, not an internal error."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = run_cli(*_report_args(str(locked)))
    assert result.returncode == 2, result.stderr
    assert "no permission to write in this folder" in result.stderr


def test_unterminated_quote_in_a_migration_exits_1_naming_the_file(
    fresh_db: str, migrations_copy: Path
) -> None:
    """A file that cannot be split: exit 1, the file and line named, the state still clean."""
    name = f"{LATEST + 1:04d}_quote.up.sql"
    (migrations_copy / name).write_text("SELECT 1;\nSELECT 'open;\n")
    env = {"OBSLIB_DATABASE_URL": fresh_db, "OBSLIB_MIGRATIONS_DIR": str(migrations_copy)}
    result = run_cli("db", "up", env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"obslib: error: {name}: not valid SQL text: unterminated ' quote opened at line 2;"
        " nothing was applied"
    )
    status = run_cli("db", "status", env=env)
    assert "version   none, clean" in status.stdout


def test_grant_reader_through_the_cli(migrated_db: str) -> None:
    """`db grant-reader` prints the role's URL, without its password, and the role reads."""
    role = "obslib_cli_reader"
    env = {"OBSLIB_DATABASE_URL": migrated_db}
    try:
        result = subprocess_with_stdin(
            ["db", "grant-reader", role, "--password-stdin"], "s3cret pw\n", env
        )
        assert result.returncode == 0, result.stderr
        url = result.stdout.splitlines()[-1].removeprefix("reader URL  ")
        assert url.startswith(f"postgresql://{role}:***@") and "s3cret" not in result.stdout
        with psycopg.connect(url.replace(":***@", ":s3cret%20pw@")) as conn:
            assert conn.execute("SELECT count(*) FROM alert_incidents").fetchone() == (0,)
    finally:
        drop_role(migrated_db, role)


def subprocess_with_stdin(args: list[str], stdin: str, env: dict[str, str]):
    """The real CLI with ``stdin`` on its standard input."""
    import subprocess
    import sys

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")}
    return subprocess.run(
        [sys.executable, "-m", "obslib", *args],
        input=stdin,
        env={**full_env, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lab_starts_on_the_obslib_kernel_also_as_root(migrated_db: str, tmp_path: Path) -> None:
    """`obslib lab` serves (as root too, where JupyterLab wants --allow-root) and its
    default kernel is obslib's, not whatever `python3` the machine has."""
    import json
    import subprocess
    import sys
    import time
    import urllib.request

    port, token = _free_port(), "obslib-test-token"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")}
    env.update(
        OBSLIB_DATABASE_URL=migrated_db,
        OBSLIB_HOME=str(tmp_path / "obslib"),  # the kernel spec goes here, not in a real home
        HOME=str(tmp_path),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
    )
    command = [sys.executable, "-m", "obslib", "lab", "--no-browser", f"--port={port}"]
    lab = subprocess.Popen(
        [*command, f"--IdentityProvider.token={token}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = lab.stdout.readline()
        kernel = re.match(r"kernel (obslib) runs ", first)
        assert kernel, first
        api = f"http://127.0.0.1:{port}/api/kernelspecs?token={token}"
        deadline, specs = time.monotonic() + 90, None
        while specs is None and time.monotonic() < deadline and lab.poll() is None:
            try:
                with urllib.request.urlopen(api, timeout=5) as response:
                    specs = json.load(response)
            except OSError:
                time.sleep(0.5)
        assert lab.poll() is None, lab.stdout.read()  # as root it used to exit at once
        assert specs is not None and specs["default"] == kernel.group(1)
        assert kernel.group(1) in specs["kernelspecs"]
    finally:
        lab.terminate()
        try:
            lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait()
