"""Stored text never runs as markup: payloads planted in every text field the four reports
show (span and service names, log lines, deploy events, alert and SLO names, the people and
the incident's own fields, an incident id with a backtick) stay visible text in the HTML,
opened in real headless Chromium, and never raw HTML in ``postmortem.md``."""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from obslib import demo, reports
from obslib.demo import events
from obslib.demo import topology as topo
from obslib.escape import html_text, md_code, md_text
from obslib.storage.migrate import Migrator
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, MIGRATIONS, run_cli
from tests.reports.test_reports import chart_images

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it as root)"
)


@pytest.mark.parametrize(
    ("value", "markdown"),
    [
        ("<script>alert(1)</script>", "&lt;script>alert(1)&lt;/script>"),
        ("a|b\nc", "a\\|b c"),
        ("*x* _y_ `z` [l](u) $m$ #h ~s~ \\", r"\*x\* \_y\_ \`z\` \[l\](u) \$m\$ \#h \~s\~ \\"),
        ("A & B &lt; C", "A & B &amp;lt; C"),
        ("> quote", r"\> quote"),
        ("- item", r"\- item"),
        ("1. item", r"1\. item"),
        ("-1 min 30 s", "-1 min 30 s"),
        ("deploy started: a v1 -> v2", "deploy started: a v1 -> v2"),
        ("user \u202egnp.exe\u202c ok", "user \\[U+202E\\]gnp.exe\\[U+202C\\] ok"),
        ("\u2067isolate\u2069 and \u200fmark", "\\[U+2067\\]isolate\\[U+2069\\] and \u200fmark"),
    ],
    ids=[
        "a tag is text", "a pipe and a line break stay in the cell", "markdown syntax is text",
        "an entity reads as written", "no block quote", "no list item", "no numbered item",
        "a negative duration is untouched", "an arrow is untouched",
        "a right-to-left override is shown, not obeyed",
        "an isolate is shown, a right-to-left mark stays",
    ],
)  # fmt: skip
def test_markdown_text_escapes_what_would_be_markup(value: str, markdown: str) -> None:
    assert md_text(value) == markdown


def test_code_spans_only_where_nothing_can_end_them() -> None:
    assert md_code("start = '2026-11-14'") == "`start = '2026-11-14'`"
    assert md_code("id = '<img src=x>'") == "`id = '<img src=x>'`"  # code shows < as text
    assert md_code("id = 'INC-`<b>`'") == r"id = 'INC-\`&lt;b>\`'"
    assert md_code("a|b") == r"a\|b"
    assert html_text("<a title='x\">") == "&lt;a title=&#x27;x&quot;&gt;"
    assert md_code("t \u202e x") == r"t \[U+202E\] x"  # a code span would show it reversed
    assert html_text("a\u202eb") == "a[U+202E]b"


def test_the_report_header_keeps_a_hostile_incident_id_as_text() -> None:
    """A backtick in the id cannot end the header's code span; a ``|`` cannot add a cell."""
    text = reports.report_header(
        "incident", "Incident postmortem", {"incident_id": "INC-`<img src=x>`|"}
    )
    row = next(line for line in text.splitlines() if "Parameters" in line)
    assert row == r"| **Parameters** | incident\_id = 'INC-\`&lt;img src=x>\`\|' |"


# a log line as an attacker writes it: markup, a cell end, Markdown link and image, a
# backtick, pipes, a right-to-left override, control characters, and very long
HOSTILE_LINE = (
    "boom <script>alert(20)</script></td></tr><img src=x onerror=alert(21)>"
    ' "><img src=x onerror=alert(22)> [l](javascript:alert(23)) ![i](http://evil.example/i.png)'
    " `x` | a | b | <http://evil.example/> user \u202egnp.exe\u202c bell\x07 " + "A" * 20_000
)


def _hostile_draft() -> str:
    from tests.views.test_postmortem_draft import facts

    f = facts()
    top = pd.DataFrame(
        [{"service_name": "api", "template": HOSTILE_LINE.replace("20", "<NUM>"),
          "records": 9, "records_day_before": 0, "sample": HOSTILE_LINE}]
    )  # fmt: skip
    return reports_draft().document(dataclasses.replace(f, top_errors=top))


def reports_draft():
    from obslib.views import postmortem_draft

    return postmortem_draft


def test_the_drafts_error_template_sentence_is_text_on_one_short_line() -> None:
    """The postmortem draft's most frequent template and its first message: no tag, link,
    image or code span from the data once rendered, the override shown, not obeyed, and
    both cut (the line is 20,000 characters; the sentence stays under a thousand)."""
    from markdown_it import MarkdownIt

    text = _hostile_draft()
    line = next(x for x in text.splitlines() if x.startswith("Most frequent error log"))
    assert len(line) < 1500, len(line)
    assert "\u202e" not in line and "[U+202E]" in line.replace("\\", "")
    rendered = MarkdownIt("commonmark").render(line)
    assert not re.search(r"<(img|script|a|code)\b", rendered), rendered
    shown = html.unescape(re.sub(r"<[^>]+>", "", rendered))
    assert "<script>alert(20)</script></td></tr><img src=x onerror=alert(21)>" in shown
    assert "[l](javascript:alert(23)) ![i](http://evil.example/i.png) `x` | a | b |" in shown


def test_a_huge_cell_keeps_a_bounded_hover_and_markdown() -> None:
    """A 20,000-character log line in a table: 400 characters shown, a few thousand
    (``tables.FULL_LIMIT``) in its hover and its Markdown cell, saying how many were left
    out: a 32 MiB line would otherwise be copied whole into every table showing it."""
    from obslib.views.tables import table

    most = 5_000

    shown = table(pd.DataFrame({"message": [HOSTILE_LINE]}), "logs")
    page = shown._repr_html_()
    titles = re.findall(r'title="([^"]*)"', page)
    assert titles and all(len(html.unescape(t)) < most for t in titles)
    assert "more characters)" in html.unescape(titles[0])
    assert "<script>" not in page and "[U+202E]" in page
    assert len(shown.markdown()) < 2 * most


def _img(n: int) -> str:
    return f"<img src=x onerror=alert({n})>"


def _script(n: int) -> str:
    return f"<script>alert({n})</script>"


# field -> its payload; each calls alert(n), which a dialog handler records
PAYLOADS = {
    "service": f"dom{_img(1)}",
    "operation": f"GET {_script(2)}",
    "root operation": f"GET /{_img(3)}|x",
    "error log": f"boom {_script(4)}|",
    "deploy event": _img(5),
    "alert name": _img(6),
    "SLO name": f"avail{_img(7)}",
    "resolved by": _img(8),
    "acknowledged by": f"*{_img(9)}*",
    "summary": f"[x]({_img(10)})",
    "root cause": f"`{_img(11)}`",
    "remediation": f"# {_script(12)}",
    "incident id": f"INC-`{_img(13)}`",
}
INCIDENT_ONLY = ("resolved by", "summary", "root cause", "remediation")
# what each report shows (the trace report: one trace and its window; the health report:
# services, operations, alerts and incidents, and the log rules' firings with a sample)
SHOWN = {
    "trace_investigation": ("service", "operation", "root operation", "error log"),
    "slo_review": ("service", "SLO name", "incident id"),
    "incident_postmortem": tuple(PAYLOADS),
    "observability_health": ("service", "alert name", "incident id", "error log"),
}
OLD_SERVICE = "domain-service"


def _plant(url: str) -> None:
    """Put every payload into the demo's rows (the main incident's fields for its own)."""
    main = events.main_incident_id()
    p = PAYLOADS
    bad = (topo.DEPLOY_AT + pd.Timedelta(minutes=2), topo.DEPLOY_AT + pd.Timedelta(minutes=40))
    with psycopg.connect(url) as conn:
        for statement, args in [
            (  # a small demo has few failures: the paged service fails throughout the incident
                "UPDATE distributed_traces SET status = 'error' WHERE service_name = %s"
                " AND start_time >= %s AND start_time < %s",
                (OLD_SERVICE, *bad),
            ),
            (
                "UPDATE structured_logs SET level = 'error' WHERE service_name = %s"
                " AND trace_id IS NOT NULL AND timestamp >= %s AND timestamp < %s",
                (OLD_SERVICE, *bad),
            ),
            (
                "UPDATE distributed_traces SET operation_name = %s"
                " WHERE service_name = %s AND span_kind = 'server'",
                (p["operation"], OLD_SERVICE),
            ),
            (
                "UPDATE distributed_traces SET operation_name = %s"
                " WHERE service_name = 'api-gateway' AND span_kind = 'server'",
                (p["root operation"],),
            ),
            (
                "UPDATE structured_logs SET message = %s WHERE level IN ('error', 'fatal')",
                (p["error log"],),
            ),
            (
                "UPDATE structured_logs SET message = message || ' ' || %s"
                " WHERE fields->>'event' IN ('deploy', 'rollback')",
                (p["deploy event"],),
            ),
            (  # a log rule that fires on the incident's error logs (the planted line)
                "INSERT INTO alert_definitions (alert_name, service_name, alert_type,"
                " metric_name, condition_expression, severity, enabled) VALUES ('error-logs',"
                " %s, 'log', 'log_template_count', 'any template at level >= error more than"
                " 2 times in 10m', 'medium', true)",
                (OLD_SERVICE,),
            ),
            ("UPDATE alert_definitions SET alert_name = alert_name || %s", (p["alert name"],)),
            (
                "UPDATE service_level_objectives SET slo_name = slo_name || %s",
                (p["SLO name"],),
            ),
            (
                "UPDATE alert_incidents SET resolved_by = 'bob' || chr(10) || %s,"
                " acknowledged_by = %s",
                (p["resolved by"], p["acknowledged by"]),
            ),
            (
                "UPDATE alert_incidents SET incident_data = incident_data"
                " || jsonb_build_object('summary', %s::text, 'root_cause',"
                " 'a' || chr(10) || '<b>x</b>' || %s::text, 'remediation', %s::text)"
                " WHERE incident_id = %s",
                (p["summary"], p["root cause"], p["remediation"], main),
            ),
            (
                "UPDATE alert_incidents SET incident_id = %s WHERE incident_id = %s",
                (p["incident id"], main),
            ),
        ]:
            conn.execute(statement, args)
        for table in (
            "distributed_traces",
            "structured_logs",
            "service_level_objectives",
            "alert_definitions",
        ):  # the paged service's name, everywhere it is stored
            conn.execute(
                f"UPDATE {table} SET service_name = %s WHERE service_name = %s",
                (p["service"], OLD_SERVICE),
            )


@pytest.fixture(scope="module")
def planted(server_url: str, tmp_path_factory) -> Path:
    """The four reports run on a small demo with the payloads planted: their --out folder."""
    from tests.pg import scratch_database

    out = tmp_path_factory.mktemp("injection")
    with scratch_database(server_url) as url:
        Migrator(url, MIGRATIONS).up()
        demo.run(seed=7, spans=20_000, url=url)
        _plant(url)
        env = {"OBSLIB_DATABASE_URL": url}
        for args in (
            ["trace"],
            ["slo"],
            ["incident", "-p", "incident_id", PAYLOADS["incident id"]],
            ["health", "-p", "end", "2026-11-16T00:00:00Z"],
        ):
            result = run_cli("report", *args, "--out", str(out), env=env, timeout=300)
            assert result.returncode == 0, result.stderr[-3000:]
    return out


def _open(page_file: Path) -> tuple[list[str], str, int]:
    """(dialogs the page opened, its visible text and hover titles, elements with an
    inline event handler or a script from the data) in headless Chromium, no network."""
    from playwright.sync_api import sync_playwright

    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route(
                "**/*",
                lambda route: (
                    route.continue_()
                    if route.request.url.startswith(("file:", "data:"))
                    else route.abort()
                ),
            )

            def dismiss(dialog) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", dismiss)
            page.goto(page_file.as_uri(), wait_until="load")
            page.wait_for_timeout(300)  # an onerror of an <img src=x> fires after load
            text = page.evaluate(
                """() => document.body.innerText + '\\n' + [...document.querySelectorAll(
                    '[title]')].map(e => e.getAttribute('title')).join('\\n')"""
            )
            live = page.evaluate(
                """() => [...document.querySelectorAll('*')].filter(e =>
                    [...e.attributes].some(a => a.name.startsWith('on'))
                    || (e.tagName === 'SCRIPT' && /alert\\(/.test(e.textContent))).length"""
            )
        finally:
            browser.close()
    return dialogs, text, live


@needs_chromium
@pytest.mark.parametrize("report", list(SHOWN))
def test_no_planted_payload_runs_and_each_reads_as_text(planted: Path, report: str) -> None:
    """No dialog opens, no element from the data carries a handler or script, and every
    payload the report shows reads literally on the page (a cut cell: in its hover); the
    charts' SVG (an ``<img>``, whose scripts never run anyway) holds the names as text."""
    page = planted / f"{report}.html"
    dialogs, text, live = _open(page)
    assert dialogs == [], f"{report}: a payload ran (alert {dialogs})"
    assert live == 0, f"{report}: {live} elements from the data are live markup"
    flat = " ".join(text.split())
    for field in SHOWN[report]:
        assert PAYLOADS[field] in flat, f"{report}: the {field} payload is not shown as text"
    for svg in chart_images(page.read_text()):
        assert not re.search(rb"<(img|script)\b", svg), f"{report}: a chart holds a tag"


def _md_tables(text: str) -> list[list[str]]:
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    return [*blocks, current] if current else blocks


def test_the_markdown_postmortem_has_no_raw_html_and_whole_tables(planted: Path) -> None:
    """postmortem.md: no tag from the data, every payload readable once rendered (by a
    second renderer, markdown-it, not the one the HTML report uses), and a ``|`` or a line
    break in a value never adds a cell or ends a row."""
    from markdown_it import MarkdownIt

    text = (planted / "postmortem.md").read_text()
    assert not re.search(r"<\s*/?\s*(img|script|b)\b", text, re.I), "raw HTML in the Markdown"
    rendered = MarkdownIt("commonmark").enable("table").render(text)
    assert not re.search(r"<(img|script|b)\b", rendered), "the Markdown renders a tag"
    shown = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", rendered)).split())
    for field, payload in PAYLOADS.items():
        assert payload in shown, f"the {field} payload does not read as written"
    assert "a <b>x</b>" in shown  # the root cause's line break read as a space
    for table in _md_tables(text):
        cells = {len(re.findall(r"(?<!\\)\|", row)) for row in table}
        assert len(cells) == 1, f"a value split a table row: {table}"
