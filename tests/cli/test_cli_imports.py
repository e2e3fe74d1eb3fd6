"""Help and argument errors answer before anything heavy is imported (issue 23: under
0.3 s, timed by bench/cli.py, never here): `obslib --help`, every command's `--help`, an
argument error of every command and every checked typo (a report parameter, a time, a
duration), each in a fresh interpreter. A command whose module imports pandas at its top
fails here by name. The light typo checks are held to obslib.values' verdicts."""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import warnings

import pytest

from obslib import reports
from obslib.cli import build_parser
from obslib.cli._args import refuse_bad_duration, refuse_bad_moment
from obslib.cli.reports import _refuse_typos
from obslib.errors import UsageError
from obslib.values import moment, positive_duration

# What must wait until the arguments are good: the data stack, the database drivers, the
# charts and the notebook machinery.
HEAVY = (
    "altair",
    "jupyter_client",
    "jupyter_core",
    "nbclient",
    "nbconvert",
    "nbformat",
    "numpy",
    "pandas",
    "papermill",
    "psycopg",
    "pyarrow",
    "sqlalchemy",
)

# Runs obslib.cli.main on argv in this fresh interpreter, then prints one JSON line: the
# exit code, the last stderr line and the heavy modules imported by then.
_RUNNER = """
import contextlib, io, json, sys
from obslib.cli import main
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exit:
        code = exit.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
lines = err.getvalue().strip().splitlines()
print(json.dumps({"code": code, "error": lines[-1] if lines else "", "heavy": heavy}))
"""
_NOWHERE = "postgresql://nobody@127.0.0.1:1/x"  # nothing may connect, nothing may start


def run_fresh(argv: list[str], tmp_path) -> dict:
    """``obslib argv`` through main() in a new interpreter; its code, error and imports."""
    code = f"HEAVY = {HEAVY!r}\n{_RUNNER}"
    env = {"OBSLIB_DATABASE_URL": _NOWHERE, "OBSLIB_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def _leaf_commands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> dict[str, argparse.ArgumentParser]:
    """Every command the parser dispatches ("db up", "demo", ...) and its parser, read from
    the parser, so a new command is in the tables below without anyone adding it."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= _leaf_commands(sub, f"{prefix}{name} ") or {prefix + name: sub}
    return found


PARSERS = _leaf_commands(build_parser())
COMMANDS = list(PARSERS)
# `obslib lab` hands the arguments it does not know to JupyterLab: it has no argument error
REFUSING = [c for c in COMMANDS if not PARSERS[c].get_default("passes_extra")]


@pytest.mark.parametrize(
    "argv",
    [["--help"], *([*c.split(), "--help"] for c in COMMANDS)],
    ids=["obslib --help", *(f"obslib {c} --help" for c in COMMANDS)],
)
def test_help_imports_nothing_heavy(argv: list[str], tmp_path) -> None:
    """Help is text from the parsers: exit 0 with no heavy module imported."""
    got = run_fresh(argv, tmp_path)
    assert (got["code"], got["heavy"]) == (0, [])


@pytest.mark.parametrize(
    "command",
    REFUSING,
    ids=lambda c: f"obslib {c} with an option it does not have",
)
def test_an_argument_error_imports_nothing_heavy(command: str, tmp_path) -> None:
    """argparse refuses an unknown option (or a missing argument) with exit 2 before any
    command module has imported what its command needs."""
    got = run_fresh([*command.split(), "--no-such-option"], tmp_path)
    assert (got["code"], got["heavy"]) == (2, []), got


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["report", "health", "-p", "windw", "7d", "--out", "r"],
            "report 'health' has no parameter 'windw' (it has: config, end, report_mode, window)",
        ),
        (
            ["report", "health", "-p", "window", "7x", "--out", "r"],
            "parameter window must be a positive duration (e.g. 30d, 12h, 5min), not '7x'",
        ),
        (
            ["report", "slo", "-p", "window", "0d", "--out", "r"],
            "parameter window must be a positive duration (e.g. 30d, 12h, 5min), not '0d'",
        ),
        (
            ["report", "trace", "-p", "start", "notadate", "--out", "r"],
            "parameter start is not a time: 'notadate'",
        ),
        (
            ["report", "trace", "-p", "max_skew_ms", "lots", "--out", "r"],
            "parameter max_skew_ms must be float, not 'lots'",
        ),
        (["report", "nosuch", "--out", "r"], "argument name: invalid choice: 'nosuch'"),
        (["report", "health"], "report: --out DIR is required"),
        (["triage", "--since", "yesterday"], "--since is not a time: 'yesterday'"),
        (["incidents", "list", "--since", "2026-11-14!"], "--since is not a time: '2026-11-14!'"),
        (["incidents", "list", "--status", "lost"], "argument --status: invalid choice: 'lost'"),
        (
            ["export", "parquet", "--start", "last week", "--end", "x", "--out", "o"],
            "--start is not a time: 'last week'",
        ),
        (["demo", "--spans", "0"], "argument --spans: must be at least 1, not 0"),
        (["ingest", "otlp", "f", "--max-file-bytes", "lots"], "argument --max-file-bytes:"),
        (["db", "force", "three"], "argument N: invalid int value: 'three'"),
        (["collect", "--port", "http"], "argument --port: invalid int value: 'http'"),
    ],
    ids=[
        "a misspelt report parameter",
        "a report duration that is no duration",
        "a report duration of nothing",
        "a report time that is no time",
        "a report number that is no number",
        "a report that does not exist",
        "a report without --out",
        "triage since a word",
        "incidents since a time with a typo",
        "incidents of a status that does not exist",
        "an export from a phrase",
        "a demo of no spans",
        "a size that is no size",
        "a version that is no number",
        "a port that is no number",
    ],
)
def test_a_checked_typo_imports_nothing_heavy(argv: list[str], message: str, tmp_path) -> None:
    """Refused with its usual message and exit 2 without pandas or the database: the report
    registry is data, and a typo in a time or duration is caught before values (pandas)."""
    got = run_fresh(argv, tmp_path)
    assert got["code"] == 2, got
    assert message in got["error"], got
    assert got["heavy"] == [], got


def _verdict(check, text: str, name: str) -> str | None:
    """The message ``check`` refuses ``text`` with; None when it accepts it. (pandas warns
    of units it will drop, "H" for "h": they are still durations today.)"""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check(text, name)
    except UsageError as err:
        return str(err)
    return None


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("7x", True),
        ("7 dayz", True),
        ("", True),
        ("nan", True),
        ("0d", True),
        ("-1d", True),
        ("1_000s", True),
        ("7d!", True),
        ("30d", False),
        ("5min", False),
        ("1 day 02:03:04", False),
        ("P1DT2H", False),
        ("1h 30m", False),
        ("1µs", False),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else ("refused" if v else "left to values"),
)
def test_a_duration_typo_is_refused_as_values_refuses_it(text: str, refused: bool) -> None:
    """The light check refuses the typos people make, with positive_duration's own message,
    and leaves every duration values accepts (and anything unsure) to values."""
    light = _verdict(refuse_bad_duration, text, "parameter window")
    assert (light is not None) == refused
    if refused:
        assert light == _verdict(positive_duration, text, "parameter window")


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("notadate", True),
        ("yesterday", True),
        ("", True),
        ("2026-11-14!", True),
        ("#2026", True),
        ("now", False),
        ("today", False),
        ("Nov", False),  # values: outside the times obslib holds, another message
        ("8_94", False),  # values: year 894, outside too
        ("2026-11-14T14:00Z", False),
        ("14 Nov 2026 2pm", False),
        ("2026-13-01", False),  # refused by values, not surely by the light check
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else ("refused" if v else "left to values"),
)
def test_a_time_typo_is_refused_as_values_refuses_it(text: str, refused: bool) -> None:
    """The light check refuses what is no time at all, with moment's own message, and leaves
    the rest (a time out of range, a month name) to values."""
    light = _verdict(refuse_bad_moment, text, "--since")
    assert (light is not None) == refused
    if refused:
        assert light == _verdict(moment, text, "--since")


_DURATION_PIECES = [*"0123456789 :.,-+!x_µ@\\{(=~`PTDHMSW", "min", "ms", "days", "nan", "e"]
_MOMENT_PIECES = [*"0123456789-:TZ /.!?#_@\\{(=~`%+',", "Nov", "now", "pm", "UTC", "at", "foo"]


@pytest.mark.parametrize(
    ("check", "exact", "pieces"),
    [
        (refuse_bad_duration, positive_duration, _DURATION_PIECES),
        (refuse_bad_moment, moment, _MOMENT_PIECES),
    ],
    ids=["durations", "times"],
)
def test_the_light_checks_never_refuse_what_values_accepts(check, exact, pieces) -> None:
    """Over 3,000 generated texts (fixed seed) each, whatever a light check refuses values
    refuses too, with the same message: the light check only answers sooner."""
    rng = random.Random(23)
    wrong = []
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        light = _verdict(check, text, "x")
        if light is not None and light != _verdict(exact, text, "x"):
            wrong.append(text)
    assert wrong == []


_PARAMETER_TEXTS = [
    *("7x", "", " ", "notadate", "yesterday", "2026-11-14!", "lots", "0d", "-1", "nan"),
    *("1.5", "1e3", "0x10", "1_000", " 5 ", "30d", "2026-11-14T14:00Z", "postgres://x"),
]
_TYPED = [
    (spec.name, p.name)
    for spec in reports.REPORTS.values()
    for p in spec.parameters
    if p.kind in ("duration", "time", "int", "float")
]


@pytest.mark.parametrize(
    ("report", "key"), _TYPED, ids=[f"report {r} parameter {k}" for r, k in _TYPED]
)
def test_a_parameter_typo_is_refused_as_coerce_parameters_refuses_it(report, key) -> None:
    """For every typed parameter of every report: what the CLI refuses before pandas,
    reports.coerce_parameters refuses with the same message, and some typo is refused."""
    refused = 0
    for text in _PARAMETER_TEXTS:
        light = _verdict(lambda t, _: _refuse_typos(report, {key: t}), text, "")
        if light is not None:
            refused += 1
            exact = _verdict(lambda t, _: reports.coerce_parameters(report, {key: t}), text, "")
            assert light == exact, text
    assert refused > 0
