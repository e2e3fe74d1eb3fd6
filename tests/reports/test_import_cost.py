"""obslib/__init__.py defers the IRI grammar jsonschema compiles at import (issue 23): a
kernel that draws charts does not pay for it, and jsonschema's answers stay the same."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str) -> str:
    """``code`` in a fresh interpreter (sys.modules as a new kernel has it); its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_a_view_and_validating_a_chart_compiles_no_iri_grammar() -> None:
    """The postmortem's view and an Altair chart validated against Vega-Lite's schema
    leave rfc3987_syntax's grammar module unimported."""
    out = _run(
        "import sys, obslib.views.incident_postmortem, altair as alt, pandas as pd\n"
        "alt.Chart(pd.DataFrame({'a': [1]})).mark_point(href='https://x.example/a')"
        ".encode(x='a').to_dict(validate=True)\n"
        "print(sorted(m for m in sys.modules if m.startswith('rfc3987_syntax')))"
    )
    assert out == "[]"


@pytest.mark.parametrize(
    ("value", "format_", "valid"),
    [
        ("http://example.org/ä", "iri", True),
        ("no spaces in an iri", "iri", False),
        ("/a/relative/ref", "iri-reference", True),
        ("http://[broken", "iri-reference", False),
    ],
    ids=[
        "an IRI with a non-ASCII letter conforms",
        "a text with spaces is no IRI",
        "a relative path is an IRI reference",
        "an unclosed IPv6 bracket is no IRI reference",
    ],
)
def test_jsonschema_checks_iris_as_before_once_obslib_is_imported(
    value: str, format_: str, valid: bool
) -> None:
    """jsonschema's format checker answers as rfc3987_syntax does, with obslib imported
    first (the stand-in imports the grammar on the first check) and without obslib."""
    check = f"import jsonschema\nprint(jsonschema.FormatChecker().conforms({value!r}, {format_!r}))"
    assert _run("import obslib.charts\n" + check) == str(valid)
    assert _run(check) == str(valid)


def test_the_real_grammar_package_is_importable_after_obslib() -> None:
    """The stand-in lives only while jsonschema's format module runs: afterwards an
    ``import rfc3987_syntax`` gets the real package, with its submodules."""
    out = _run(
        "import obslib.charts, jsonschema, rfc3987_syntax, rfc3987_syntax.utils\n"
        "print(rfc3987_syntax.__file__.endswith('__init__.py'),"
        " callable(rfc3987_syntax.is_valid_syntax))"
    )
    assert out == "True True"
