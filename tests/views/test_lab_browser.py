"""JupyterLab in a real browser: `obslib lab`, Run All, pick another trace or SLO, every
chart drawn and the views that follow the picker redrawn in place and together; then save,
shut the kernel down, reload and reopen: every chart is drawn again from the saved file,
and the picker from the widget state `obslib lab` has Lab save in it.

Headless Chromium (Debian's, driven by Playwright's Python package: nothing is downloaded)
talks only to the loopback JupyterLab; any other request is aborted and fails the test.
Screenshots before and after the pick are written to the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

from obslib.charts.render import SVG_MIMETYPE, VEGA_MIMETYPE
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.pg import REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)"),
]
TOKEN = "obslib-browser-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(demo_db, tmp_path: Path):
    """`obslib lab` on a free loopback port over a copy of the notebooks (JupyterLab saves
    what it opens), stopped by its pid whatever happens."""
    url, _ = demo_db
    notebooks = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", notebooks)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBSLIB_", "JUPYTER"))}
    env.update(
        OBSLIB_DATABASE_URL=url,
        OBSLIB_HOME=str(tmp_path / "home"),
        OBSLIB_NOTEBOOKS_DIR=str(notebooks),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
    )
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "obslib",
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={TOKEN}",
            "--LabApp.expose_app_in_browser=True",  # lets the test run JupyterLab commands
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"obslib lab exited {proc.returncode}:\n{_tail(tmp_path / 'lab.log')}")
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"obslib lab did not answer:\n{_tail(tmp_path / 'lab.log')}")
                time.sleep(0.5)
        yield base
    finally:
        with_group = proc.pid
        try:
            os.killpg(with_group, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(with_group, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _run_all_and_wait(page, timeout_s: float = 240) -> None:
    page.evaluate("void window.jupyterapp.commands.execute('notebook:run-all-cells')")
    deadline = time.monotonic() + timeout_s
    time.sleep(1)
    while time.monotonic() < deadline:
        prompts = [p.strip() for p in page.locator(".jp-InputArea-prompt").all_inner_texts()]
        ran = [p for p in prompts if p not in ("", "[ ]:")]
        if ran and not any("*" in p for p in prompts):
            if any(p == "[ ]:" for p in prompts):
                raise AssertionError(f"Run All stopped early (an error?): prompts {prompts}")
            return
        time.sleep(0.5)
    raise AssertionError("Run All did not finish in time")


def _wait_for(predicate, timeout_s: float, what: str, shown=None) -> None:
    """Poll ``predicate``; on timeout fail saying ``what`` and, if given, ``shown()``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}" + (f": {shown()}" if shown else ""))


def _charts_drawn(page) -> tuple[int, int]:
    """(chart outputs, those holding a drawn SVG or canvas)."""
    return page.evaluate(
        """() => {
            const charts = [...document.querySelectorAll('.jp-OutputArea-output')]
                .filter(o => o.querySelector('.vega-embed, .anywidget, [class*=vega]'));
            const drawn = charts.filter(
                o => o.querySelector('.vega-embed svg, .vega-embed canvas'));
            return [charts.length, drawn.length];
        }"""
    )


@contextmanager
def _browser_page(tmp_path: Path) -> Iterator:
    """A Chromium page that may reach only loopback (anything else is aborted and fails the
    test); on failure a screenshot is written to ``tmp_path``."""
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})

            def loopback_only(route) -> None:
                request_url = route.request.url
                if request_url.startswith(("data:", "blob:")) or urlparse(request_url).hostname in (
                    "127.0.0.1",
                    "localhost",
                ):
                    route.continue_()
                else:
                    outside.append(request_url)
                    route.abort()

            context.route("**/*", loopback_only)
            page = context.new_page()
            try:
                yield page
            except Exception as err:
                page.screenshot(path=str(tmp_path / "failure.png"))
                raise AssertionError(f"{err}\n(screenshots in {tmp_path})") from err
        finally:
            browser.close()
    assert outside == [], f"the page tried to reach beyond loopback: {outside[:3]}"


def _open_notebook(page, lab: str, name: str) -> None:
    """Open ``name`` in JupyterLab and wait for its kernel, which must be obslib's."""
    page.goto(f"{lab}/lab/tree/{name}?token={TOKEN}")
    page.wait_for_function("window.jupyterapp !== undefined", timeout=90_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    _wait_for(
        lambda: "Idle" in str(page.locator(".jp-StatusBar-TextItem").all_inner_texts()),
        90,
        "the kernel to be idle",
    )
    kernel = page.locator(".jp-Toolbar-kernelName").inner_text()
    assert "obslib" in kernel, f"the notebook runs on {kernel!r}, not the obslib kernel"


def _errors_shown(page) -> list[str]:
    """Error outputs (tracebacks) and stderr mentioning an error, in any cell."""
    return page.evaluate(
        """() => [...document.querySelectorAll(
                '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"],'
                + '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
            .map(o => o.textContent.trim())
            .filter(t => /error|traceback/i.test(t))
            .map(t => t.slice(0, 300))"""
    )


WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"
PNG_MIMETYPE = "image/png"  # Lab's vega renderer adds its own PNG to the output it drew


def _watch_views(page, sources: list[str]) -> None:
    """Record the text of the outputs under the cells whose source ends with ``sources``
    after every DOM mutation batch (one MutationObserver callback) from now on, timed."""
    missing = page.evaluate(
        """sources => {
            const cells = [...document.querySelectorAll('.jp-CodeCell')];
            const areas = sources.map(src => cells.find(c =>  // a marker comment may lead
                c.querySelector('.jp-InputArea-editor').textContent.trim().endsWith(src)));
            if (areas.some(a => !a)) return sources.filter((s, i) => !areas[i]);
            const outputs = areas.map(c => c.querySelector('.jp-OutputArea'));
            const texts = () => outputs.map(o => o.textContent);
            window.obslibBatches = [{t: performance.now(), texts: texts()}];
            const observer = new MutationObserver(() =>
                window.obslibBatches.push({t: performance.now(), texts: texts()}));
            outputs.forEach(o => observer.observe(
                o, {subtree: true, childList: true, characterData: true}));
            window.obslibObserver = observer;
            return [];
        }""",
        sources,
    )
    assert missing == [], f"no cell with source {missing}"


def _watched_batches(page) -> list[dict]:
    """The batches ``_watch_views`` recorded (the first is the state before), and stop."""
    return page.evaluate(
        "() => { window.obslibObserver.disconnect(); return window.obslibBatches; }"
    )


def _mixed_states(batches: list[dict], old: str, new: str) -> list[list[str]]:
    """The recorded states in which one view names ``old`` while another names ``new``
    (views naming neither, such as a chart being drawn, do not count)."""
    mixed = []
    for batch in batches:
        names = [
            "old" if _names(t, old) else "new" if _names(t, new) else "-" for t in batch["texts"]
        ]
        if "old" in names and "new" in names:
            mixed.append(names)
    return mixed


def _swap_seconds(batches: list[dict]) -> float:
    """From the first batch that changed a view to the last one that did, in seconds."""
    before = batches[0]["texts"]
    changed = [b["t"] for b in batches[1:] if b["texts"] != before]
    return (max(changed) - min(changed)) / 1000 if changed else 0.0


def _scripts_loaded_twice(page) -> list[str]:
    """Scripts the page fetched more than once, or built from a string (``blob:``/``data:``,
    as anywidget loads a widget's JavaScript): charts must share Lab's one Vega bundle."""
    return page.evaluate(
        """() => {
            const names = performance.getEntriesByType('resource')
                .filter(e => e.initiatorType === 'script' || /\\.js(\\?|$)/.test(e.name))
                .map(e => e.name);
            const seen = new Set();
            return names.filter(n => /^(blob|data):/.test(n) || seen.has(n) || !seen.add(n));
        }"""
    )


def _save_shut_down_reload(page, lab: str, name: str) -> None:
    """Save the notebook, shut its kernel down (no widget model survives anywhere), reload
    the page and open the notebook again on a fresh kernel."""
    page.evaluate("void window.jupyterapp.commands.execute('docmanager:save')")
    _wait_for(
        lambda: page.locator(".jp-mod-current.jp-mod-dirty").count() == 0,
        60,
        "the notebook to be saved",
    )
    for session in json.load(urllib.request.urlopen(f"{lab}/api/sessions?token={TOKEN}")):
        gone = urllib.request.Request(
            f"{lab}/api/sessions/{session['id']}?token={TOKEN}", method="DELETE"
        )
        urllib.request.urlopen(gone)
    page.goto("about:blank")
    _open_notebook(page, lab, name)


def _chart_outputs(path: Path) -> list[dict]:
    """The saved chart outputs of the notebook at ``path`` (outputs holding a Vega spec)."""
    notebook = nbformat.read(str(path), as_version=4)
    return [
        o
        for cell in notebook.cells
        if cell.cell_type == "code"
        for o in cell.outputs
        if VEGA_MIMETYPE in o.get("data", {})
    ]


def _assert_reopened_with_charts(page, saved: Path, charts: int) -> None:
    """Every chart of the saved notebook has its static SVG beside its Vega spec, none
    carries a renderer's JavaScript (Altair's widget sent ~905 k characters of it with each
    chart) or needs a widget, and the reopened page draws each (an SVG per chart)."""
    outputs = _chart_outputs(saved)
    assert len(outputs) == charts, f"{len(outputs)} chart outputs saved, {charts} drawn"
    sent = [{k: v for k, v in o["data"].items() if k != PNG_MIMETYPE} for o in outputs]
    sizes = [len(json.dumps(data)) for data in sent]
    print(f"{saved.name}: {charts} chart outputs, characters each (Lab's PNG aside) {sizes}")
    for data in sent:
        assert SVG_MIMETYPE in data, "a chart output without its static SVG"
        assert WIDGET_MIMETYPE not in data, "a chart output that needs a widget"
        assert "function(" not in json.dumps(data), "a chart output carrying JavaScript"
    _wait_for(
        lambda: _charts_drawn(page) == [charts, charts],
        60,
        "every chart to be drawn after the reopen",
        lambda: _charts_drawn(page),
    )
    assert _scripts_loaded_twice(page) == [], "a chart brought its own copy of a script"
    assert "model not found" not in " ".join(
        page.locator(".jp-OutputArea-output", has=page.locator(".vega-embed")).all_inner_texts()
    )


WIDGET_STATE_MIMETYPE = "application/vnd.jupyter.widget-state+json"


def _assert_reopened_with_picker(page, saved: Path, picked: str) -> None:
    """`obslib lab` saves the widgets' state in the notebook (saveState, issue 23): the
    reopened page shows the picker on the pick, drawn from that state and marked as without
    a kernel (the one that made it is gone), with no "Error displaying widget: model not
    found"; the saved file holds the picker's state."""
    _wait_for(
        lambda: (
            "model not found" in page.locator("body").inner_text()
            or page.locator(".widget-dropdown select").count() >= 1
        ),
        60,
        "the picker (or its error) after the reopen",
    )
    assert "model not found" not in page.locator("body").inner_text()
    shown = page.locator(".widget-dropdown select")
    chosen = shown.evaluate_all("ss => ss.map(s => s.options[s.selectedIndex]?.textContent)")
    assert picked in chosen, f"the reopened pickers show {chosen}, not the pick {picked!r}"
    # read-only: ipywidgets marks a view whose model has no kernel behind it (a broken link)
    unlinked = page.locator(".jupyter-widgets-disconnected", has=shown.first)
    assert unlinked.count() >= 1, "the reopened picker is not marked as without a kernel"
    shown.first.scroll_into_view_if_needed()
    notebook = nbformat.read(str(saved), as_version=4)
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE_MIMETYPE, {}).get("state", {})
    dropdowns = [m for m in state.values() if m.get("model_name") == "DropdownModel"]
    assert dropdowns, f"no picker in the saved widget state ({len(state)} models)"


TRACE_VIEWS = [  # the cells of the views that follow the trace picker, in notebook order
    f"inv.{name}()"
    for name in (
        "headline",
        "summary",
        "waterfall",
        "critical_path",
        "statistics",
        "self_time_chart",
        "errors",
        "trace_logs",
        "untraced_logs",
        "repairs",
        "versus_cohort",
    )
]


def test_run_all_pick_another_trace_then_reopen(lab: str, tmp_path: Path) -> None:
    """Run All renders every chart offline; picking a trace swaps every per-trace view
    together (no moment where one names the old trace and another the new) and the status
    line says when it is done; saved, shut down and reopened, every chart is drawn again."""
    with _browser_page(tmp_path) as page:
        _open_notebook(page, lab, "trace_investigation.ipynb")
        _run_all_and_wait(page)
        page.screenshot(path=str(tmp_path / "before-pick.png"))
        html = page.content()
        assert "Error loading script" not in html
        charts, drawn = _charts_drawn(page)
        assert charts >= 3 and drawn == charts, f"{drawn} of {charts} charts drawn"

        picker = page.locator(".widget-dropdown select").first
        said = page.locator(".jp-CodeCell", has=picker).locator(".widget-html")
        options = picker.locator("option").evaluate_all("os => os.map(o => o.textContent)")
        first = picker.evaluate("s => s.options[s.selectedIndex].textContent")
        first_id = first.split()[-1]
        other = next(o for o in options if o != first)
        other_id = other.split()[-1]
        summary = page.locator(".jp-OutputArea-output", has_text="critical path mostly in")
        assert first_id in summary.first.text_content()

        _watch_views(page, TRACE_VIEWS)
        picker.select_option(label=other)
        _wait_for(lambda: "Showing" in said.text_content(), 60, "the picker's status line")
        _wait_for(lambda: other_id in summary.first.text_content(), 60, "the summary to follow")
        _wait_for(lambda: f"trace {first_id}" not in page.content(), 60, "the waterfall")
        _wait_for(lambda: _charts_drawn(page)[1] >= charts, 60, "the charts to redraw")
        batches = _watched_batches(page)
        status = said.text_content().strip()
        mixed = _mixed_states(batches, first_id, other_id)
        print(
            f"{status} Page: {len(batches) - 1} DOM batches, views changed within "
            f"{_swap_seconds(batches):.3f} s, {len(mixed)} showing two traces."
        )
        assert re.fullmatch(
            rf"Showing trace {other_id}: redrew {len(TRACE_VIEWS)} views in \d+\.\d\d s\.", status
        ), status
        assert mixed == [], f"views showed two traces: {mixed[:3]}"
        page.screenshot(path=str(tmp_path / "after-pick.png"))
        html = page.content()
        assert f"trace {other_id}" in html, "the waterfall does not show the picked trace"
        assert f"trace {first_id}" not in html, "a view still shows the first trace"
        assert "Error loading script" not in html
        assert _scripts_loaded_twice(page) == [], "a chart brought its own copy of a script"

        _save_shut_down_reload(page, lab, "trace_investigation.ipynb")
        _assert_reopened_with_charts(page, tmp_path / "notebooks/trace_investigation.ipynb", charts)
        _assert_reopened_with_picker(page, tmp_path / "notebooks/trace_investigation.ipynb", other)
        page.screenshot(path=str(tmp_path / "reopened.png"))  # at the picker
        assert other_id in summary.first.text_content(), "the saved summary is not the pick's"


SLO_DETAIL_CELLS = ("review.burndown()", "review.burn_rates()")  # what the SLO picker redraws


def _first_row(page, caption: str) -> dict[str, str] | None:
    """The first body row, by column header, of the table output whose text has ``caption``."""
    return page.evaluate(
        """caption => {
            const out = [...document.querySelectorAll('.jp-OutputArea-output')]
                .find(o => o.querySelector('table') && o.textContent.includes(caption));
            if (!out) return null;
            const table = out.querySelector('table');
            const heads = [...table.querySelectorAll('thead th')].map(c => c.textContent.trim());
            const row = [...table.querySelector('tbody tr').querySelectorAll('th, td')]
                .map(c => c.textContent.trim());
            return Object.fromEntries(heads.map((h, i) => [h, row[i]]));
        }""",
        caption,
    )


def _cell_charts(page, source: str) -> dict[str, list[str]] | None:
    """The drawn charts under the code cell whose source is ``source``: their titles (SVG
    text, subtitles left out) and their alt text (the ``aria-label`` Vega gives the chart's
    container: the spec's description)."""
    return page.evaluate(
        """source => {
            const cell = [...document.querySelectorAll('.jp-CodeCell')].find(c =>
                c.querySelector('.jp-InputArea-editor').textContent.trim() === source);
            if (!cell) return null;
            const out = cell.querySelector('.jp-OutputArea');
            return {
                titles: [...out.querySelectorAll('.vega-embed svg .role-title-text text')]
                    .map(t => t.textContent),
                alts: [...out.querySelectorAll('[role="graphics-document"][aria-label]')]
                    .map(e => e.getAttribute('aria-label')),
            };
        }""",
        source,
    )


def _slo_details(page) -> dict[str, dict[str, list[str]] | None]:
    return {source: _cell_charts(page, source) for source in SLO_DETAIL_CELLS}


def _names(text: str, label: str) -> bool:
    """``text`` names the SLO ``label`` (not merely a longer label it is the start of)."""
    return re.search(re.escape(label) + r"(?![\w/-])", text) is not None


def _slo_details_show(page, label: str) -> bool:
    """Both detail charts are drawn, one per cell, titled with ``label`` (the title starts
    with it) and naming it in their alt text."""
    for charts in _slo_details(page).values():
        if charts is None or len(charts["titles"]) != 1 or len(charts["alts"]) != 1:
            return False
        title, alt_text = charts["titles"][0], charts["alts"][0]
        if not (title.startswith(label) and _names(title, label) and _names(alt_text, label)):
            return False
    return True


def test_run_all_pick_another_slo_then_reopen(lab: str, tmp_path: Path) -> None:
    """The SLO review opens on the SLO with least budget left; picking another SLO redraws
    both detail charts (burn-down and burn rates) in place, together (never one SLO beside
    another), and says so; saved, shut down and reopened, every chart is drawn again."""
    with _browser_page(tmp_path) as page:
        _open_notebook(page, lab, "slo_review.ipynb")
        _run_all_and_wait(page)
        assert _errors_shown(page) == []
        assert "Error loading script" not in page.content()
        charts, drawn = _charts_drawn(page)
        assert charts >= 3 and drawn == charts, f"{drawn} of {charts} charts drawn"

        # the overview lists the SLOs least budget left first: its first row is in trouble
        top = _first_row(page, "least error budget left first")
        assert top and top.get("status") in ("violated", "at risk"), f"overview's top row {top}"
        first_label = top["SLO"]

        picker_cell = page.locator(".jp-CodeCell").filter(
            has=page.locator(".jp-InputArea-editor", has_text="review.picker()")
        )
        picker = picker_cell.locator(".widget-dropdown", has_text="SLO").locator("select")
        said = picker_cell.locator(".widget-html")
        options = picker.locator("option").evaluate_all("os => os.map(o => o.textContent)")
        first = picker.evaluate("s => s.options[s.selectedIndex].textContent")
        assert first.split() == [first_label, f"({top['status'].replace(' ', '_')})"], first
        assert first == options[0], f"the picker starts on {first!r}, not its first option"
        _wait_for(
            lambda: _slo_details_show(page, first_label),
            60,
            f"the detail charts of {first_label}",
            lambda: _slo_details(page),
        )

        other = next(o for o in options if o != first)  # api-gateway/availability on the demo
        other_label = other.split()[0]
        picker_cell.scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "before-pick.png"))
        _watch_views(page, list(SLO_DETAIL_CELLS))
        picker.select_option(label=other)
        _wait_for(lambda: "Showing" in said.text_content(), 60, "the picker's status line")
        _wait_for(
            lambda: _slo_details_show(page, other_label),
            60,
            f"both detail charts to show {other_label}",
            lambda: _slo_details(page),
        )
        _wait_for(lambda: _charts_drawn(page)[1] >= charts, 60, "every chart to be drawn")
        batches = _watched_batches(page)
        mixed = _mixed_states(batches, first_label, other_label)
        print(
            f"SLO pick: {len(batches) - 1} DOM batches, views changed within "
            f"{_swap_seconds(batches):.3f} s, {len(mixed)} showing two SLOs."
        )
        assert mixed == [], f"the detail charts showed two SLOs: {mixed[:3]}"
        picker_cell.scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "after-pick.png"))
        assert _charts_drawn(page) == [charts, charts], "the redraw added or lost a chart"
        status = said.text_content().strip()
        assert status == f"Showing {other_label}: redrew 2 views.", status
        for source, shown in _slo_details(page).items():
            texts = shown["titles"] + shown["alts"]
            assert not any(_names(t, first_label) for t in texts), f"{source} still shows {texts}"
        assert _errors_shown(page) == []
        assert "Error loading script" not in page.content()

        _save_shut_down_reload(page, lab, "slo_review.ipynb")
        _assert_reopened_with_charts(page, tmp_path / "notebooks/slo_review.ipynb", charts)
        _assert_reopened_with_picker(page, tmp_path / "notebooks/slo_review.ipynb", other)
        page.screenshot(path=str(tmp_path / "reopened.png"))  # at the picker
        assert _slo_details_show(page, other_label), "the saved detail charts are not the pick's"
