"""WarmKernel: a report run on a kernel started ahead with obslib imported gives what a
cold run gives, and the kernel serves one run only."""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import pytest

from obslib import reports

# What differs between any two runs: the header's "Generated 2026-12-07 14:03 UTC by obslib"
# and the random ids of the cells a run adds (the header, papermill's parameters).
_PER_RUN = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC by obslib|cell-id=[0-9a-f-]+")


@pytest.fixture
def warm(demo_db) -> reports.WarmKernel:
    """A kernel warmed in the notebooks' folder for the demo database; closed after."""
    url, _ = demo_db
    kernel = reports.WarmKernel(reports.notebooks_dir(), url)
    yield kernel
    kernel.close()


def test_a_postmortem_drafted_warm_is_the_one_drafted_cold(demo_db, warm, tmp_path) -> None:
    """The demo's incident drafted on a warm kernel and on a cold one: the same Markdown,
    the same HTML apart from the header's generation time and the ids of added cells, the
    same execution counts."""
    url, _ = demo_db
    params = {reports.INCIDENT_ID: reports.REPORTS[reports.POSTMORTEM].defaults["incident_id"]}
    started = time.monotonic()
    hot = reports.run_report(
        reports.POSTMORTEM, params, tmp_path / "warm", database_url=url, kernel=warm
    )
    warm_s = time.monotonic() - started
    assert warm.used
    started = time.monotonic()
    cold = reports.run_report(reports.POSTMORTEM, params, tmp_path / "cold", database_url=url)
    cold_s = time.monotonic() - started
    print(f"warm {warm_s:.1f} s, cold {cold_s:.1f} s")
    assert hot.markdown.read_text() == cold.markdown.read_text()
    strip = lambda p: _PER_RUN.sub("…", p.read_text())  # noqa: E731
    assert strip(hot.html) == strip(cold.html)
    counts = [
        [c.get("execution_count") for c in nbformat.read(str(r.notebook), 4).cells]
        for r in (hot, cold)
    ]
    assert counts[0] == counts[1]
    assert not warm.fits(reports.notebooks_dir() / "incident_postmortem.ipynb", warm.env)


def namespace_probe(folder: Path) -> Path:
    """``folder``/probe.ipynb: a notebook with an ``x`` parameter that prints its namespace
    and Altair's renderer (what a kernel's warm-up must leave as a cold kernel has it)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "obslib", "display_name": "obslib", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("x: int = 0", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "print(sorted(k for k in dir() if not k.startswith('_')),"
            " __import__('altair').renderers.active)"
        ),
    ]
    nbformat.write(nb, str(folder / "probe.ipynb"))
    return folder / "probe.ipynb"


def test_a_warm_kernel_shows_a_notebook_nothing_of_its_warm_up(tmp_path) -> None:
    """A notebook listing its namespace and Altair's renderer sees on a warm kernel what it
    sees on a cold one: the warm-up binds no name and chooses no renderer."""
    source = namespace_probe(tmp_path)
    kernel = reports.WarmKernel(tmp_path)
    try:
        hot = reports.run_notebook(source, {"x": 1}, tmp_path / "warm", kernel=kernel)
        assert kernel.used
    finally:
        kernel.close()
    cold = reports.run_notebook(source, {"x": 1}, tmp_path / "cold")
    printed = [nbformat.read(str(r.notebook), 4).cells[-1].outputs for r in (hot, cold)]
    assert printed[0] == printed[1]
    names = "['In', 'Out', 'exit', 'get_ipython', 'open', 'quit', 'report_mode', 'x']"
    assert printed[0][0]["text"] == f"{names} default\n"
