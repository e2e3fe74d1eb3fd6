"""Secrets stay out of what obslib shows and writes: the console, logs, reports."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import nbformat
import pytest
from sqlalchemy.engine import make_url

from obslib import reports
from obslib.cli import ScrubbingFormatter
from obslib.errors import ReportFailed
from tests.conftest import run_cli


def leaks(text: str) -> list[str]:
    """The password fragments of the URL below found in ``text``."""
    return re.findall(r"s3cret|\bPW\b", text)


@pytest.fixture
def bad_url(server_url: str) -> str:
    """The test server's socket, with a password holding a raw space: libpq refuses the URL
    and quotes the part it could not parse, password and all."""
    host = make_url(server_url).query["host"]
    return f"postgresql://sre:s3cret PW@/obslib?host={host}"


@pytest.mark.parametrize(
    "args",
    [["db", "status"], ["--debug", "db", "status"], ["report", "trace"], ["db", "url"]],
    ids=["db status", "db status --debug", "report trace", "db url"],
)
def test_the_cli_never_shows_the_password(bad_url: str, tmp_path: Path, args: list[str]) -> None:
    """Neither stdout nor stderr (tracebacks included) nor any file written holds a piece
    of the password."""
    if args[0] == "report":
        args = [*args, "--out", str(tmp_path / "out")]
    result = run_cli(*args, env={"OBSLIB_DATABASE_URL": bad_url}, timeout=300)
    assert leaks(result.stdout + result.stderr) == [], result.stdout + result.stderr
    if args[-1] != "url":
        assert result.returncode == 2 and "percent-encoded" in result.stderr
    for written in tmp_path.rglob("*"):
        if written.is_file():
            assert leaks(written.read_text(errors="replace")) == [], written


def leaky_notebook() -> nbformat.NotebookNode:
    """A notebook whose second cell lets psycopg's own error, quoting the URL, escape."""
    params = nbformat.v4.new_code_cell("report_mode: bool = False  # set by obslib report")
    params.metadata["tags"] = ["parameters"]
    leak = nbformat.v4.new_code_cell(
        "import os, sys\nimport psycopg\n"
        "print('connecting', file=sys.stderr)\n"
        "psycopg.connect(os.environ['OBSLIB_DATABASE_URL'])"
    )
    nb = nbformat.v4.new_notebook(cells=[params, leak])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def test_a_driver_error_in_a_kernel_is_scrubbed_from_the_report(
    bad_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cell that lets psycopg's own error escape (not an obslib error, so nothing scrubbed
    it in the kernel): the executed notebook and ReportFailed still hold no password."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nbformat.write(leaky_notebook(), str(notebooks / reports.NOTEBOOKS["trace"]))
    monkeypatch.setenv("OBSLIB_NOTEBOOKS_DIR", str(notebooks))
    with pytest.raises(ReportFailed) as info:
        reports.run_report("trace", {}, tmp_path / "out", database_url=bad_url)
    assert info.value.ename == "ProgrammingError"
    assert leaks(str(info.value)) == []
    executed = Path(info.value.executed)
    text = executed.read_text()
    assert "unexpected spaces found" in text  # the error is there, without the secret
    assert leaks(text) == [], text


def test_log_lines_are_scrubbed_tracebacks_included(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's log format masks the URL's userinfo in the message and in the traceback."""
    url = "postgresql://sre:s3cret PW@db.example/obslib"
    monkeypatch.setenv("OBSLIB_DATABASE_URL", url)
    try:
        raise RuntimeError(f'invalid dsn: "{url}"')
    except RuntimeError:
        record = logging.getLogger("obslib.test").makeRecord(
            "obslib.test", logging.WARNING, __file__, 1, "could not use %s", (url,), sys.exc_info()
        )
    line = ScrubbingFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert line.startswith("WARNING obslib.test: could not use postgresql://***@db.example/obslib")
    assert "RuntimeError: invalid dsn" in line
    assert leaks(line) == [], line


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("plain text is itself", "domain-service", "domain-service"),
        ("a right-to-left override is escaped", "invoice\u202egnp.exe", "'invoice\\u202egnp.exe'"),
        ("an escape sequence is escaped", "\x1b[2Jwiped", "'\\x1b[2Jwiped'"),
        ("a line break is escaped", "a\nb", "'a\\nb'"),
        ("padding is shown quoted", " x ", "' x '"),
        ("blank is shown quoted", "", "''"),
    ],
)
def test_terminal_text_cannot_drive_or_reverse_a_terminal(name, value, shown):
    """What a command prints of stored text (``escape.terminal_text``: triage, ``obslib
    incidents list``, ``obslib alerts evaluate-logs``)."""
    from obslib.escape import terminal_text

    assert terminal_text(value) == shown, name
