"""Reports: papermill runs of the trace notebook, offline HTML, failures, a real browser."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from obslib import load, reports
from obslib.errors import ReportFailed, UsageError
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, run_cli


def outputs_text(notebook: Path) -> str:
    nb = nbformat.read(str(notebook), as_version=4)
    chunks = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            chunks.append(out.get("text", ""))
            chunks.extend(str(v) for k, v in out.get("data", {}).items() if k.startswith("text/"))
    return "\n".join(chunks)


def chart_images(html: str) -> list[bytes]:
    """The SVG documents of the report's chart images (not the stylesheet's icons)."""
    found = re.findall(r'<img[^>]*src="data:image/svg\+xml;base64,([A-Za-z0-9+/=\s]+)"', html)
    return [base64.b64decode(b.replace("\n", "")) for b in found]


@pytest.fixture(scope="module")
def default_run(demo_db, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """`obslib report trace` with the defaults, on the demo: (its --out folder, the run)."""
    url, _ = demo_db
    out = tmp_path_factory.mktemp("report")
    result = run_cli(
        "report", "trace", "--out", str(out), env={"OBSLIB_DATABASE_URL": url}, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.fixture(scope="module")
def default_report(default_run) -> reports.Report:
    out, _ = default_run
    return reports.Report(out / "trace_investigation.ipynb", out / "trace_investigation.html")


def test_a_report_prints_its_two_paths_and_nothing_else(default_run) -> None:
    """No warning reaches the console (ipykernel's TCP warning: the kernel runs over IPC);
    stdout is the two paths."""
    out, result = default_run
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        f"notebook  {out / 'trace_investigation.ipynb'}",
        f"report    {out / 'trace_investigation.html'}",
    ]


def test_every_report_starts_with_a_header(default_report, demo_db) -> None:
    """Title, parameters, data window, when and by which obslib: first in both files."""
    nb = nbformat.read(str(default_report.notebook), as_version=4)
    header = nb.cells[0]
    assert header.cell_type == "markdown" and "obslib-report-header" in header.metadata.tags
    lines = header.source.splitlines()
    assert lines[0] == "# Trace investigation"
    assert "| **Data window** | 2026-11-14 14:05 .. 14:50 UTC (45 min) |" in lines
    assert "`start = '2026-11-14T14:05:00Z'` (default)" in header.source
    assert re.search(
        r"\| \*\*Generated\*\* \| \d{4}-\d\d-\d\d \d\d:\d\d UTC by obslib ", header.source
    )
    assert not nb.cells[1].source.startswith("# Trace investigation")  # the title is not doubled
    html = default_report.html.read_text()
    assert len(re.findall(r"<h1[^>]*>Trace investigation", html)) == 1
    assert "Data window" in html


def test_header_states_what_a_reader_needs() -> None:
    """The header's exact text, from given parameters and a fixed clock."""
    from obslib import __version__

    text = reports.report_header(
        "trace",
        "Trace investigation",
        {"start": "2026-11-13T22:00:00+00:00", "end": "2026-11-14T02:30:00+00:00"},
        now=datetime(2026, 11, 27, 9, 5, tzinfo=UTC),
    )
    assert text == (
        "# Trace investigation\n\n| | |\n|---|---|\n"
        "| **Parameters** | `trace_id = ''` (default), `start = '2026-11-13T22:00:00+00:00'`,"
        " `end = '2026-11-14T02:30:00+00:00'`, `skew_correction = True` (default),"
        " `max_skew_ms = 1000.0` (default) |\n"
        "| **Data window** | 2026-11-13 22:00 .. 2026-11-14 02:30 UTC (4 h 30 min) |\n"
        f"| **Generated** | 2026-11-27 09:05 UTC by obslib {__version__} |\n"
    )


def test_the_kernel_gets_the_database_from_the_caller(
    demo_db, migrated_db, tmp_path, monkeypatch
) -> None:
    """run_report's URL reaches the kernel through its environment (the process's own
    OBSLIB_DATABASE_URL names an empty database here), and the environment is restored."""
    url, _ = demo_db
    monkeypatch.setenv("OBSLIB_DATABASE_URL", migrated_db)  # empty: no trace to investigate
    before = os.environ.get("OBSLIB_DATABASE_URL")
    result = reports.run_report("trace", {}, tmp_path, database_url=url)
    assert "Investigating trace " in outputs_text(result.notebook)
    assert os.environ.get("OBSLIB_DATABASE_URL") == before


def remote_scripts(html: str) -> list[str]:
    """Every ``<script>`` element (its tag and its text) that names an http(s) address:
    a ``src``, and also an ``import("https://…")`` inside an inline or module script."""
    scripts = re.findall(r"<script\b.*?</script\s*>", html, re.S | re.I)
    return [s[:120] for s in scripts if re.search(r"https?://", s, re.I)]


def test_report_is_offline_and_keeps_secrets_out(default_report, demo_db) -> None:
    """No remote script, charts as inline SVG, code hidden, and no database URL anywhere."""
    html = default_report.html.read_text()
    assert remote_scripts(html) == []
    assert len(chart_images(html)) >= 4
    assert "investigate_trace(" not in html  # code cells are hidden
    url, _ = demo_db
    database = url.split("/")[-1].split("?")[0]
    for text in (html, default_report.notebook.read_text()):
        assert database not in text and "postgresql://" not in text


def test_offline_html_loads_nothing_even_for_mermaid_math_or_widgets(tmp_path) -> None:
    """A notebook whose outputs would make nbconvert's template load Mermaid (a dormant
    ``import("https://cdnjs…")``), MathJax, require.js or the widget manager from the
    network converts to HTML with no script naming an http(s) address; the outputs stay."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    cell = nbformat.v4.new_code_cell("diagram")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", {"text/vnd.mermaid": "graph LR; a-->b", "text/plain": "a-->b"}
        ),
        nbformat.v4.new_output("display_data", {"text/markdown": "$e^{i\\pi} = -1$ kept"}),
    ]
    nb.cells = [cell]
    path = tmp_path / "mermaid.ipynb"
    nbformat.write(nb, str(path))
    html = reports.to_offline_html(path)
    assert remote_scripts(html) == []
    assert "graph LR" in html and "kept" in html


def test_report_with_a_given_trace_and_skew_off(demo_db, tmp_path) -> None:
    """Non-default parameters: the named trace is investigated, no skew is adjusted."""
    url, summary = demo_db
    spans = load.spans(
        summary.incident_start,
        summary.incident_end,
        services=["dns-resolver"],
        json="text",
        url=url,
    )
    trace_id = spans["trace_id"].iloc[0]
    result = run_cli(
        "report",
        "trace",
        "--trace-id",
        trace_id,
        "-p",
        "skew_correction",
        "false",
        "--out",
        str(tmp_path),
        env={"OBSLIB_DATABASE_URL": url},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    text = outputs_text(tmp_path / "trace_investigation.ipynb")
    assert re.search(f"Investigating trace `?{trace_id}", text)
    nb = nbformat.read(str(tmp_path / "trace_investigation.ipynb"), as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "skew_correction = False" in injected.source
    assert f'trace_id = "{trace_id}"' in injected.source  # ids stay strings


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trace-id", "no-such-trace"], "No trace with id 'no-such-trace'"),
        (
            ["-p", "start", "1999-01-01T00:00:00Z", "-p", "end", "1999-01-01T01:00:00Z"],
            "No spans between 1999-01-01 00:00 and 1999-01-01 01:00 UTC.",
        ),
    ],
    ids=["an unknown trace id", "an empty window"],
)
def test_no_data_is_a_message_not_a_traceback(demo_db, tmp_path, args, message) -> None:
    """The run succeeds and the report says what is missing."""
    url, _ = demo_db
    result = run_cli(
        "report",
        "trace",
        *args,
        "--out",
        str(tmp_path),
        env={"OBSLIB_DATABASE_URL": url},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert message in outputs_text(tmp_path / "trace_investigation.ipynb")


def test_a_failing_cell_writes_the_notebook_and_exits_1(demo_db, tmp_path) -> None:
    """A cell error: exit 1, one line naming the cell, the executed notebook kept."""
    url, _ = demo_db
    shelf = tmp_path / "notebooks"  # the shipped notebooks, the trace one with a failing cell
    shelf.mkdir()
    for source in reports.notebooks_dir().glob("*.ipynb"):
        (shelf / source.name).write_bytes(source.read_bytes())
    planted = shelf / "trace_investigation.ipynb"
    nb = nbformat.read(str(planted), as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell('raise RuntimeError("a planted failure")'))
    nbformat.write(nb, str(planted))
    out = tmp_path / "out"
    result = run_cli(
        "report",
        "trace",
        "--out",
        str(out),
        env={"OBSLIB_DATABASE_URL": url, "OBSLIB_NOTEBOOKS_DIR": str(shelf)},
        timeout=300,
    )
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert re.match(
        r"obslib: error: trace_investigation\.ipynb: cell \d+ failed: RuntimeError:"
        r" a planted failure",
        line,
    )
    assert (out / "trace_investigation.ipynb").exists()
    assert not (out / "trace_investigation.html").exists()


@pytest.mark.parametrize("spec", list(reports.REPORTS.values()), ids=lambda s: f"report {s.name}")
def test_every_registered_report_has_its_notebook_and_exactly_its_parameters(spec) -> None:
    """A report in the registry is runnable: its notebook ships, is saved with the obslib
    kernel and titled as the registry says, and its parameters cell declares exactly the
    registry's parameters, in order, with their types and defaults (report_mode last)."""
    import ast

    import papermill

    source = reports.notebooks_dir() / spec.notebook
    assert source.is_file(), f"report {spec.name!r}: no {source}"
    nb = nbformat.read(str(source), as_version=4)
    assert nb.metadata.kernelspec.name == reports.KERNEL_NAME
    assert nb.cells[0].source.splitlines()[0] == f"# {spec.title}"
    declared = [
        (name, d["inferred_type_name"], ast.literal_eval(d["default"]))
        for name, d in papermill.inspect_notebook(str(source)).items()
    ]
    assert declared == [(p.name, p.declared, p.default) for p in spec.parameters]
    assert spec.parameters[-1] == reports.REPORT_MODE


def test_every_shipped_notebook_is_a_registered_report() -> None:
    """No notebook ships that `obslib report`, the demo and triage do not know."""
    shipped = {p.name for p in reports.notebooks_dir().glob("*.ipynb")}
    assert shipped == {spec.notebook for spec in reports.REPORTS.values()}
    assert {name: spec.notebook for name, spec in reports.REPORTS.items()} == reports.NOTEBOOKS


@pytest.mark.parametrize("spec", list(reports.REPORTS.values()), ids=lambda s: f"report {s.name}")
def test_every_default_given_on_the_command_line_is_accepted(spec) -> None:
    """The registry's defaults, written as `-p NAME VALUE` would give them, pass the checks
    made before a kernel starts and come back as the same values (times as UTC)."""
    given = [p for p in spec.parameters if p is not reports.REPORT_MODE]
    expected = {
        p.name: pd.Timestamp(p.default).isoformat() if p.kind == "time" and p.default else p.default
        for p in given
    }
    assert reports.coerce_parameters(spec.name, {p.name: str(p.default) for p in given}) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"database_url": "postgresql://x"}, "looks like a secret"),
        ({"trace_id": "postgresql://u:pw@h/db"}, "holds a database URL"),
        ({"colour": "red"}, "has no parameter 'colour'"),
        ({"skew_correction": "maybe"}, "skew_correction must be bool"),
        ({"max_skew_ms": "lots"}, "max_skew_ms must be float"),
        ({"start": "notadate"}, "parameter start is not a time: 'notadate'"),
        ({"end": "2026-13-01"}, "parameter end is not a time: '2026-13-01'"),
        ({"end": ""}, "parameter end is not a time: ''"),
        ({"start": "2026-11-14T15:00", "end": "2026-11-14T14:00"}, "end .* is not after start"),
        ({"start": "2026-11-15"}, "end 2026-11-14T14:50:00.* is not after start"),
        ({"start": "0001-01-01"}, "parameter start '0001-01-01' is outside the times"),
        ({"end": "9999-12-31"}, "parameter end '9999-12-31' is outside the times"),
        ({"start": "1969-12-31T23:59Z"}, "parameter start .* is outside the times"),
        ({"max_skew_ms": "-1"}, "max_skew_ms must be a number >= 0"),
        ({"max_skew_ms": "nan"}, "max_skew_ms must be a number >= 0"),
    ],
    ids=[
        "a URL parameter",
        "a URL as a value",
        "an unknown parameter",
        "a bad bool",
        "a bad number",
        "a start that is not a time",
        "an end that is not a time",
        "an empty end, where the notebook needs one",
        "an end before the start",
        "a start after the notebook's default end",
        "a start in year 1",
        "an end in year 9999",
        "a start before 1970",
        "a negative skew limit",
        "a skew limit that is not a number",
    ],
)
def test_bad_parameters_are_refused_before_running(raw, message) -> None:
    """Parameters are checked against the notebook's own parameters cell and by the checks
    its first cells make, before a kernel starts."""
    with pytest.raises(UsageError, match=message):
        reports.coerce_parameters("trace", raw)


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("slo", {"end": ""}, {"end": ""}),
        ("health", {"end": "  "}, {"end": ""}),
        ("trace", {"max_skew_ms": "inf"}, {"max_skew_ms": float("inf")}),
        ("slo", {"min_events": "0"}, {"min_events": 0}),
    ],
    ids=[
        "an empty SLO review end means the latest stored span",
        "a blank health end means the latest stored span",
        "an infinite skew limit means no limit",
        "no minimum of events",
    ],
)
def test_documented_special_values_are_accepted(name, raw, expected) -> None:
    """What the notebooks document as meaningful passes the up-front checks as it is."""
    assert reports.coerce_parameters(name, raw) == expected


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("slo", {"min_events": "-5"}, "min_events must be 0 or more, not -5"),
        ("slo", {"min_events": "2.5"}, "min_events must be int"),
        ("slo", {"window": "0d"}, "window must be a positive duration"),
        ("slo", {"window": "nan"}, "window must be a positive duration"),
        ("health", {"window": "NaT"}, "window must be a positive duration"),
        ("health", {"end": "0001-01-01"}, "parameter end '0001-01-01' is outside the times"),
    ],
    ids=[
        "a negative minimum of events",
        "a fraction of an event",
        "an empty window",
        "a window of nan",
        "a window of NaT",
        "a health end in year 1",
    ],
)
def test_bad_review_parameters_are_refused_before_running(name, raw, message) -> None:
    """The SLO review's and health report's own checks, made before a kernel starts."""
    with pytest.raises(UsageError, match=message):
        reports.coerce_parameters(name, raw)


def test_times_are_passed_on_as_utc() -> None:
    """A time parameter in any accepted spelling reaches the notebook as ISO 8601 UTC."""
    params = reports.coerce_parameters(
        "trace", {"start": "2026-11-14 15:05+01:00", "end": "2026-11-14 14:50"}
    )
    assert params == {"start": "2026-11-14T14:05:00+00:00", "end": "2026-11-14T14:50:00+00:00"}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: (tmp / "f").write_text("x") and tmp / "f", "exists and is not a folder"),
        (
            lambda tmp: (tmp / "f").write_text("x") and tmp / "f" / "sub",
            "a part of the path is a file",
        ),
    ],
    ids=["a file", "a path through a file"],
)
def test_an_unusable_out_folder_is_bad_input(tmp_path, make, message) -> None:
    """prepare_out_dir turns what mkdir would raise into a UsageError naming --out."""
    target = make(tmp_path)
    with pytest.raises(UsageError, match=f"--out {re.escape(str(target))}: {message}"):
        reports.prepare_out_dir(target)


def browser_probe(html: str, tmp_path: Path, *, min_charts: int) -> str:
    """Open a report in headless Chromium with networking off and check what a reader
    sees: every chart image decodes and has a size, the SVGs hold drawn marks, no cell
    shows NaN, no table shows a bare 0..N index, every chart has alt text. Returns the
    text of the report's first cell (its header)."""
    svgs = chart_images(html)
    assert len(svgs) >= min_charts and all(b"<path" in s or b"<rect" in s for s in svgs)
    probe = """<script>window.addEventListener('load', () => {
        const b = document.body, imgs = [...document.images];
        const ok = imgs.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0);
        b.setAttribute('data-charts', ok.length + '/' + imgs.length);
        // a cell showing NaN / nan / None instead of a blank
        const cells = [...document.querySelectorAll('td, th')];
        b.setAttribute('data-nan', cells.filter(
            c => /^(nan|NaN|None|NaT|<NA>)$/.test(c.textContent.trim())).length);
        // a table whose rows are labelled 0..N-1 (pandas' default index shown)
        const bare = [...document.querySelectorAll('table')].filter(t => {
            const rows = [...t.querySelectorAll('tbody tr')];
            const label = r => r.firstElementChild ? r.firstElementChild.textContent.trim() : '';
            return rows.length > 1 && rows.every((r, i) => label(r) === String(i));
        });
        b.setAttribute('data-bare-index', bare.length);
        // charts without alt text: <img> without alt, inline <svg> without title/aria-label
        const noAlt = imgs.filter(i => !(i.getAttribute('alt') || '').trim()).length
            + [...document.querySelectorAll('svg')].filter(
                v => !v.parentElement.closest('svg') && !v.getAttribute('aria-label')
                     && !v.querySelector('title')).length;
        b.setAttribute('data-no-alt', noAlt);
        const first = document.querySelector('.jp-Cell');
        b.setAttribute('data-header', first ? first.textContent.replace(/\\s+/g, ' ') : '');
    });</script>"""
    page = tmp_path / "probe.html"
    page.write_text(html.replace("</body>", probe + "</body>"))
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            *CHROMIUM_ARGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    found = re.search(r'data-charts="(\d+)/(\d+)"', dom.stdout)
    assert found, dom.stderr[-2000:]
    ok, total = int(found.group(1)), int(found.group(2))
    assert total >= min_charts and ok == total
    assert re.search(r'data-nan="0"', dom.stdout), "a table cell shows NaN/None"
    assert re.search(r'data-bare-index="0"', dom.stdout), "a table shows a bare 0..N index"
    assert re.search(r'data-no-alt="0"', dom.stdout), "a chart has no alt text"
    return re.search(r'data-header="([^"]*)"', dom.stdout).group(1)


@pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it as root)"
)
def test_every_chart_renders_in_a_browser_without_network(default_report, tmp_path) -> None:
    """Headless Chromium, networking off: every chart image decodes and has a size, the
    SVGs hold drawn marks, no cell shows NaN, no table shows a bare 0..N index, every
    chart has alt text and the header names every parameter."""
    header = browser_probe(default_report.html.read_text(), tmp_path, min_charts=4)
    for name in reports.notebook_parameters("trace"):
        if name != "report_mode":  # set by obslib report itself
            assert name in header, f"the header does not name the parameter {name}"


def test_reports_run_on_a_quiet_kernel_and_the_lab_on_the_plain_one(monkeypatch) -> None:
    """Jupyter interrupts every kernel it shuts down; a headless report's kernel logs only
    critical errors, so that interrupt never prints "KeyboardInterrupt caught in kernel"
    on the console of whoever ran the report. The lab's kernel logs as usual."""
    from jupyter_client.kernelspec import KernelSpecManager

    headless, lab = reports.kernel_name(headless=True), reports.kernel_name()
    monkeypatch.setenv("JUPYTER_PATH", headless.env["JUPYTER_PATH"])
    specs = KernelSpecManager()
    assert "--IPKernelApp.log_level=CRITICAL" in specs.get_kernel_spec(headless.name).argv
    assert not any("log_level" in a for a in specs.get_kernel_spec(lab.name).argv)
    assert specs.get_kernel_spec(headless.name).argv[0] == sys.executable


def test_kernel_name_leaves_the_environment_alone(monkeypatch) -> None:
    """kernel_name returns the JUPYTER_PATH that makes obslib's kernel specs visible (its
    folder first, the caller's folders kept) and changes nothing in os.environ."""
    from obslib.config import settings

    monkeypatch.setenv("JUPYTER_PATH", "/somewhere/else")
    before = dict(os.environ)
    kernel = reports.kernel_name(headless=True)
    assert dict(os.environ) == before
    folders = kernel.env["JUPYTER_PATH"].split(os.pathsep)
    assert folders == [str(settings().home / "jupyter"), "/somewhere/else"]
    assert kernel.name == f"{reports.KERNEL_NAME}-headless"
    assert reports.kernel_name(headless=True) == kernel  # the same twice: nothing accumulates


def test_a_report_runs_on_obslibs_kernel_and_leaves_the_environment_alone(
    tmp_path, monkeypatch
) -> None:
    """run_notebook starts obslib's headless kernel (this interpreter, logging only critical
    errors) whatever kernel the notebook names, with no JUPYTER_PATH set beforehand, and
    leaves os.environ as it found it."""
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    source = tmp_path / "where.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import sys\nprint(sys.executable, *sys.argv[1:])")]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(source))
    before = dict(os.environ)
    result = reports.run_notebook(source, {}, tmp_path / "out")
    assert dict(os.environ) == before
    executable, *argv = outputs_text(result.notebook).split()
    assert executable == sys.executable
    assert "--IPKernelApp.log_level=CRITICAL" in argv  # the headless spec's, not python3's


def test_a_kernel_that_dies_is_a_failed_report_not_an_internal_error(tmp_path) -> None:
    """A kernel process that ends mid-run (a native library aborting, out of memory) is
    ReportFailed naming the notebook, with the executed notebook kept: triage records it
    failed and the CLI exits 1 with one line, like a failing cell."""
    source = tmp_path / "dies.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nos._exit(3)")]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(source))
    with pytest.raises(ReportFailed, match=r"^dies\.ipynb: cell None failed: DeadKernelError"):
        reports.run_notebook(source, {}, tmp_path / "out")
    assert (tmp_path / "out" / "dies.ipynb").exists()


# -- an incident id the database does not hold ------------------------------------------------

STORED_IDS = ["INC-20261114-0001", "INC-20261114-0002", "INC-20261115-0001", "PAGE-7"]


@pytest.fixture
def incidents_db(migrated_db: str) -> str:
    """A migrated database holding the incidents STORED_IDS."""
    import psycopg

    with psycopg.connect(migrated_db) as conn:
        for incident_id in STORED_IDS:
            conn.execute(
                "INSERT INTO alert_incidents (incident_id, severity) VALUES (%s, 'low')",
                (incident_id,),
            )
    return migrated_db


def test_an_unknown_incident_id_is_refused_naming_the_closest_and_its_kernel_stopped(
    incidents_db: str, tmp_path: Path
) -> None:
    """`obslib report incident -p incident_id X` with an id nobody stored: exit 2, one line
    naming the closest stored ids, no file written, and the kernel that was warming
    meanwhile stopped (no process of it left when the command returns)."""
    out = tmp_path / "reports"
    argv = ["report", "incident", "-p", "incident_id", "INC-20261114-0003", "--out", str(out)]
    code = (
        "import psutil\n"
        "from obslib.cli import main\n"
        f"code = main({argv!r})\n"
        "left = [p for p in psutil.Process().children(recursive=True) if p.is_running()"
        " and p.status() != psutil.STATUS_ZOMBIE]\n"
        "print(code, left)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")}
    env["OBSLIB_DATABASE_URL"] = incidents_db
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.splitlines() == ["2 []"], result.stderr
    assert result.stderr.splitlines() == [
        "obslib: error: parameter incident_id: no incident 'INC-20261114-0003' is stored;"
        " closest: INC-20261114-0002, INC-20261114-0001, INC-20261115-0001"
        " (`obslib incidents list` shows them)"
    ]
    assert list(out.rglob("*")) == []


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("inc-20261114-0001x", "is stored; closest: INC-20261114-0001, "),
        ("page-8", "no incident 'page-8' is stored; closest: PAGE-7 "),
        ("checkout latency", "none of the 4 stored is close"),
        ("x" * 5000, "no incident 'xxxxx"),
    ],
    ids=[
        "a typo in lower case names the stored ids it resembles",
        "a short id names the short one it resembles",
        "an id like none of them says how many are stored",
        "a huge id is cut short in the message",
    ],
)
def test_an_unknown_incident_id_names_what_is_stored(
    incidents_db: str, given: str, message: str
) -> None:
    with pytest.raises(UsageError, match=re.escape(message)) as info:
        reports.check_stored("incident", {"incident_id": given}, incidents_db)
    assert len(str(info.value)) < 300 and "\n" not in str(info.value)


def test_with_no_incident_stored_the_refusal_says_so(migrated_db: str) -> None:
    with pytest.raises(UsageError, match=r"^parameter incident_id 'INC-1': no incident is stored$"):
        reports.check_stored("incident", {"incident_id": "INC-1"}, migrated_db)


@pytest.mark.parametrize(
    "given",
    [{"incident_id": "PAGE-7"}, {"incident_id": "  PAGE-7 "}, {}],
    ids=[
        "a stored id",
        "a stored id with blanks around it, which the postmortem strips",
        "no id given: the notebook's default",
    ],
)
def test_a_stored_or_absent_incident_id_passes(incidents_db: str, given: dict) -> None:
    reports.check_stored("incident", given, incidents_db)


@pytest.mark.parametrize("blank", ["", "   "], ids=["an empty id", "a blank id"])
def test_a_blank_incident_id_is_left_to_the_notebook_without_a_query(blank: str) -> None:
    """The postmortem's own note answers a blank id: nothing is looked up (this URL reaches
    no server)."""
    unreachable = "postgresql://alice:pw@127.0.0.1:1/domainflow"
    reports.check_stored("incident", {"incident_id": blank}, unreachable)


def test_only_the_postmortems_incident_id_is_looked_up_in_the_database() -> None:
    """The database checks are the registry's: the other reports' parameters need none."""
    looked_up = {
        (spec.name, p.name)
        for spec in reports.REPORTS.values()
        for p in spec.parameters
        if p.stored
    }
    assert looked_up == {(reports.POSTMORTEM, reports.INCIDENT_ID)}
