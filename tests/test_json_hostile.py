"""Hostile JSON read by ``values.json_value`` (the one JSON reader of the importers, the OTLP
body and the loaders): nesting past the parser's depth, a number past a double's range and
an integer past Python's 4,300 digits, each on the ``json`` path a 20-digit run sends it
down, are one ValueError; a log file holding one is refused naming its line (exit 2, no
traceback), an OTLP/JSON body a 400 naming the request, never a 500."""

from __future__ import annotations

from pathlib import Path

import pytest

from obslib import values
from obslib.errors import InputError
from obslib.ingest import bodies, receiver
from obslib.storage.migrate import Migrator
from tests.conftest import MIGRATIONS, run_cli

LONG = "12345678901234567890"  # a 20-digit run: the text goes through ``json``
DEEP = "[" * 50_000 + LONG + "]" * 50_000

CASES = {
    "nesting past the parser's depth": (DEEP, "nested too deeply"),
    "nesting of 1,100 levels, past orjson's 1,024 too": (
        "[" * 1100 + LONG + "]" * 1100,
        "nested too deeply",
    ),
    "a number past a double's range": (f'{{"a": {LONG}, "b": 1e400}}', "past a double's range"),
    "a negative one too": (f"[{LONG}, -1e400]", "past a double's range"),
    "an integer of 5,000 digits": ("9" * 5000, "value has 5000 digits"),
}


@pytest.mark.parametrize(("text", "says"), list(CASES.values()), ids=list(CASES))
def test_json_value_refuses_hostile_json_with_one_value_error(text: str, says: str) -> None:
    for given in (text, text.encode()):
        with pytest.raises(ValueError, match=says) as caught:
            values.json_value(given)
        assert type(caught.value) is not RecursionError
        assert "sys.set_int_max_str_digits" not in str(caught.value)  # no Python advice


def test_json_value_keeps_a_deep_but_readable_document_and_an_exact_float() -> None:
    """What both parsers read stays read: 100 levels with a long integer, a plain float."""
    assert values.json_value("[" * 100 + LONG + "]" * 100) is not None
    assert values.json_value(f"[{LONG}, 1.5e300]") == [int(LONG), 1.5e300]


@pytest.mark.parametrize(("text", "says"), list(CASES.values()), ids=list(CASES))
def test_an_otlp_json_body_of_hostile_json_is_an_input_error(text: str, says: str) -> None:
    """The receiver answers an InputError with 400 naming the request (a RecursionError was
    a 500, and ``1e400`` beside a long integer was read as infinity and accepted)."""
    body = f'{{"resourceSpans": [{{"z": {text}}}]}}'.encode()
    with pytest.raises(InputError, match=f"request 7: the body is not JSON.*{says}"):
        bodies.decode_request(receiver.TRACES, body, bodies.JSON, "identity", 2**30, "request 7")


def test_a_log_file_of_hostile_json_is_refused_naming_its_line(
    server_url: str, tmp_path: Path
) -> None:
    """Each file refused whole with one line naming it and the line; no traceback."""
    from tests.pg import scratch_database

    good = (
        '{"timestamp": "2026-11-14T14:20:00Z", "level": "error", "service_name": "s",'
        ' "message": "m"}'
    )
    files = []
    for n, (text, _) in enumerate(CASES.values()):
        path = tmp_path / f"case{n}.jsonl"
        bad = good.replace('"m"}', f'"m", "fields": {{"x": {text}}}}}')
        path.write_text(f"{good}\n{bad}\n")
        files.append(str(path))
    with scratch_database(server_url) as url:
        Migrator(url, MIGRATIONS).up()
        result = run_cli("ingest", "logs", "--quiet", *files, env={"OBSLIB_DATABASE_URL": url})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    lines = result.stderr.splitlines()
    for path, (_, says) in zip(files, CASES.values(), strict=True):
        line = next(x for x in lines if f"{path}: " in x)
        assert f"{path}: line 2: not valid JSON: " in line and says in line, line
