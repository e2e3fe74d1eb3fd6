"""Tables for reading and notes in place of empty sections: the formatting rules, exactly."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from obslib.views import Note, table
from obslib.views.tables import (
    ERROR_ROW_STYLE,
    TEXT_LIMIT,
    caption_room,
    duration_text,
    number_text,
    percent_text,
)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        pytest.param(999.96, "1.0 s", id="999.96 ms rounds to a second and reads 1.0 s"),
        pytest.param(999.4, "999 ms", id="999.4 ms stays in whole ms"),
        pytest.param(8.46, "8.5 ms", id="under 10 ms keeps 0.1 ms"),
        pytest.param(1234.5, "1.2 s", id="1234.5 ms reads 1.2 s"),
        pytest.param(0.04, "<0.1 ms", id="a tiny duration is not shown as zero"),
        pytest.param(59_960.0, "1 min", id="59.96 s rounds up into minutes"),
        pytest.param(90_000.0, "1 min 30 s", id="a minute and a half"),
        pytest.param(120_000.0, "2 min", id="two minutes, never 2.00 min"),
        pytest.param(-1234.5, "-1.2 s", id="negative differences keep their sign"),
        pytest.param(float("nan"), "", id="NaN is blank"),
        pytest.param(None, "", id="None is blank"),
    ],
)
def test_duration_text(ms: float | None, text: str) -> None:
    """A cell's ms read in the one style of obslib.values.duration_text."""
    assert duration_text(ms) == text


_UNIT_MS = {"ms": 1, "s": 1e3, "min": 6e4, "h": 3.6e6, "d": 8.64e7}


@given(st.floats(min_value=0, max_value=1e10, allow_nan=False))
def test_a_duration_reads_back_within_its_rounding(ms: float) -> None:
    """Whatever the size, the text parses back to the duration within its rounding: half
    of the smallest unit shown (0.1 ms, 1 ms, 0.1 s, 1 s, or the smaller of two units)."""
    text = duration_text(ms)
    if text == "<0.1 ms" or text == "0 s":
        assert ms < 0.05
        return
    parts = re.findall(r"([\d.]+) (ms|s|min|h|d)\b", text)
    value = sum(float(n) * _UNIT_MS[u] for n, u in parts)
    last_number, last_unit = parts[-1]
    step = _UNIT_MS[last_unit] * (0.1 if "." in last_number else 1)
    if len(parts) == 1 and last_unit in ("min", "h", "d"):  # "3 min": the next unit was 0
        step = {"min": 1e3, "h": 6e4, "d": 3.6e6}[last_unit]
    assert abs(value - ms) <= step / 2 + 1e-6 * max(ms, 1)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.123, "12.3 %"), (0.0001, "<0.1 %"), (0.0, "0.0 %"), (1.0, "100.0 %"), (np.nan, "")],
    ids=["a share", "a tiny share", "zero", "everything", "missing"],
)
def test_percent_text(value: float, text: str) -> None:
    assert percent_text(value) == text


def test_numbers_read_as_counts_or_three_digits() -> None:
    assert [number_text(v) for v in (12000, 3.0, 0.25, 1234.5678, np.nan)] == [
        "12,000",
        "3",
        "0.250",
        "1,235",
        "",
    ]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(
                ["2026-11-14 23:59:58.1234", "2026-11-15 00:00:01.5"], utc=True
            ),
            "duration_ms": [999.96, 1234.5],
            "self_pct": [12.345, np.nan],
            "error_rate": [0.5, 0.0],
            "message": ["x" * 499 + "!", "short"],
            "status": ["ok", "error"],
        },
        index=[7, 9],
    )


def test_a_table_states_the_dates_once_and_marks_the_next_day() -> None:
    """Rows show HH:MM:SS.mmm; the caption says the date, a later day is marked (+1d)."""
    t = table(_frame(), "Example")
    shown, _ = t.cells()
    assert shown["timestamp"].tolist() == ["23:59:58.123", "00:00:01.500 (+1d)"]
    assert t.full_caption() == (
        "Example. Times UTC from 2026-11-14 to 2026-11-15; (+1d) marks the next day."
    )
    one_day = table(_frame().iloc[:1])
    assert one_day.full_caption() == "Times UTC on 2026-11-14."
    assert table(_frame().iloc[:1].assign(timestamp=pd.NaT)).full_caption() == ""


def test_a_table_formats_every_kind_of_cell() -> None:
    """Durations, percentages (0-100 and fractions), blanks for NaN, headers without units."""
    shown, full = table(_frame()).cells()
    assert list(shown.columns) == [
        *("timestamp", "duration", "self %", "error rate", "message", "status")
    ]
    assert shown["duration"].tolist() == ["1.0 s", "1.2 s"]
    assert shown["self %"].tolist() == ["12.3 %", ""]
    assert shown["error rate"].tolist() == ["50.0 %", "0.0 %"]
    assert shown["message"].iloc[0] == "x" * 399 + "\u2026" and full["message"].iloc[0][-1] == "!"


def test_the_html_has_no_index_keeps_long_text_on_hover_and_marks_error_rows() -> None:
    html = table(_frame(), "Example")._repr_html_()
    assert "<caption>Example. Times UTC from 2026-11-14" in html
    assert 'class="row_heading' not in html and ">7<" not in html and ">9<" not in html
    assert f'<span title="{"x" * 499}!">{"x" * 399}\u2026</span>' in html
    assert "nan" not in html.lower().replace("nanosecond", "")
    styled = re.findall(r"(#T_\w+_row(\d)_col0)[^{]*\{([^}]*)\}", html)
    marked = {row for _, row, props in styled if "background-color: #fde2e1" in props}
    assert marked == {"1"}, "only the error row (status error) stands out"
    assert ERROR_ROW_STYLE.startswith("background-color: #fde2e1")
    assert "1.0&nbsp;s" in html  # number and unit never wrap apart
    assert "overflow-x: auto" in html  # wide tables scroll inside the page, not past it


def test_the_html_is_the_same_on_every_run() -> None:
    """nbval compares a checked table's HTML: its style ids come from its content."""
    assert table(_frame(), "a")._repr_html_() == table(_frame(), "a")._repr_html_()
    assert table(_frame(), "a")._repr_html_() != table(_frame(), "b")._repr_html_()


def test_plain_text_shows_the_same_cells() -> None:
    text = repr(table(_frame(), "Example"))
    assert text.splitlines()[0].startswith("Example. Times UTC from 2026-11-14")
    assert "1.2 s" in text and "nan" not in text.lower()
    assert repr(table(pd.DataFrame({"a": []}))) == "(no rows)"


def test_a_note_says_why_in_every_format() -> None:
    note = Note("No span of trace abc failed.")
    assert repr(note) == str(note) == "No span of trace abc failed."
    assert note._repr_markdown_() == "*No span of trace abc failed.*"
    assert note._repr_html_() == '<p class="obslib-note"><em>No span of trace abc failed.</em></p>'
    assert Note("<b>").__repr__() == "<b>" and "&lt;b&gt;" in Note("<b>")._repr_html_()


def test_markdown_is_a_pipe_table_of_the_full_cells_under_the_caption() -> None:
    """Numbers right-aligned, text left; a ``|`` in a cell is escaped and long text is
    kept whole (a wiki page has no hover to show the rest)."""
    long = "connection pool exhausted: " + "x" * 80
    t0 = pd.Timestamp("2026-11-14 14:05", tz="UTC")
    frame = pd.DataFrame(
        {"service": ["a|b", "c"], "failed": [3, 1000], "what": ["ok", long], "at": [t0, t0]}
    )
    lines = table(frame, "Failures").markdown().splitlines()
    assert lines[0] == "Failures. Times UTC on 2026-11-14."
    assert lines[2:5] == [
        "| service | failed | what | at |",
        "|---|---:|---|---:|",
        "| a\\|b | 3 | ok | 14:05 |",
    ]
    assert lines[5] == f"| c | 1,000 | {long} | 14:05 |"
    assert table(frame.iloc[0:0], "Nothing").markdown() == "Nothing.\n\n*(no rows)*"


@pytest.mark.parametrize(
    ("times", "shown"),
    [
        (["14:05", "14:49"], ["14:05", "14:49"]),
        (["14:05", "14:05:50"], ["14:05:00", "14:05:50"]),
        (["14:05", "14:05:00.123"], ["14:05:00.000", "14:05:00.123"]),
        (["14:05:00.0004", "14:06"], ["14:05", "14:06"]),
        (["14:05", None], ["14:05", ""]),
    ],
    ids=[
        "times on whole minutes are written to the minute",
        "one time with seconds writes the whole column to the second",
        "one time with milliseconds writes the whole column to the millisecond",
        "less than a millisecond is not a digit worth writing",
        "a blank time is blank and does not change the column's precision",
    ],
)
def test_a_column_of_times_is_written_as_finely_as_its_finest_time(
    times: list[str | None], shown: list[str]
) -> None:
    frame = pd.DataFrame(
        {"at": [None if t is None else pd.Timestamp(f"2026-11-14 {t}", tz="UTC") for t in times]}
    )
    cells, _ = table(frame, "Events").cells()
    assert list(cells["at"]) == shown


def test_text_cells_wrap_instead_of_being_cut() -> None:
    """A 100-character error message shows whole in a cell that wraps; only text past
    TEXT_LIMIT is cut (with its full text in the title)."""
    message = "connection pool exhausted: timed out waiting for a free connection (pool of 20)"
    html = table(pd.DataFrame({"message": [message], "count": [3]}))._repr_html_()
    assert message in html and "\u2026" not in html
    assert "white-space: normal" in html and "overflow-wrap: break-word" in html
    assert TEXT_LIMIT >= 200
    kept = table(pd.DataFrame({"sli": ["98.847 %", "a 5 dogs"], "n": [1, 2]}))._repr_html_()
    assert "98.847&nbsp;%" in kept and "a 5 dogs" in kept  # a number keeps its unit only


@pytest.mark.parametrize(
    ("sentence", "caption", "room"),
    [
        ("a short caption needs no room", "Failures per service.", ""),
        ("a long caption widens its table to read across the page", "x" * 149 + ".",
         "min-width: min(100%, 150ch);"),
    ],
)  # fmt: skip
def test_a_long_caption_gets_room_instead_of_a_thin_column(sentence, caption, room) -> None:
    assert caption_room(caption) == room, sentence
    html = table(pd.DataFrame({"measure": ["a"], "value": ["1"]}), caption)._repr_html_()
    assert ("min-width: min(" in html) == bool(room), sentence
    assert room.rstrip(";") in html, sentence


def test_a_document_saves_its_text_and_shows_its_page_version() -> None:
    """text/markdown is the whole document (postmortem.md); the page shows ``shown`` with
    headings two levels down, stored text (escaped by md_text) as text, tables left."""
    from obslib.escape import md_text
    from obslib.views.notes import Markdown

    doc = Markdown(
        "# Title\n\n| a |\n|---|\n| 1 |\n",
        shown=f"# Title\n\n## Part\n\n{md_text('<img src=x onerror=alert(1)> & co')}\n",
    )
    assert doc._repr_markdown_() == str(doc) == "# Title\n\n| a |\n|---|\n| 1 |\n"
    page = doc._repr_html_()
    assert "<h3>Title</h3>" in page and "<h4>Part</h4>" in page and "<h1" not in page
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; co" in page and "<img" not in page
    assert "<table" not in page and "text-align: left" in page
    assert "<td>1</td>" in Markdown("| a |\n|---|\n| 1 |\n")._repr_html_()
