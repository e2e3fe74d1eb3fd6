"""Tables for reading: the one formatter every view uses for what it shows as a table.

A report is read by someone who did not run it, often on a phone: no 0..N index, times in
UTC as ``HH:MM:SS.mmm`` with the date stated once in the caption, durations in the one
style of ``obslib.values.duration_text``, percentages as percentages, blanks for missing
values, text wrapped (only a very long one cut, its full text on hover), error rows
marked. The HTML is a pandas Styler inside a scrolling box, so it renders the same in
JupyterLab and in nbconvert's HTML export; ``repr`` gives the same cells as plain text.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from obslib import values
from obslib.escape import html_text, md_text
from obslib.schema import ERROR_LEVELS
from obslib.values import utc

TEXT_LIMIT = 400  # characters shown of a long text cell (it wraps); the rest is in its title
# characters of a cell's full text (its hover, a Markdown cell): a log line may be 32 MiB
# (the importers' line limit), and every table showing it would carry it whole
FULL_LIMIT = 4000
CAPTION_LINE = 60  # a caption up to this many characters needs no room of its own
TEXT_CELL_STYLE = "white-space: normal; overflow-wrap: break-word; max-width: 48em;"
ERROR_ROW_STYLE = "background-color: #fde2e1;"  # an error row, every cell
ERROR_EDGE_STYLE = " border-left: 3px solid #d62728;"  # and a red edge on its first cell
_MS = pd.Timedelta(milliseconds=1)
_NUMBER_UNIT = r"(?<=\d) (?=(?:%|ms|s|min|h|d)(?![\w]))"  # the space of "99.9 %", "3 min"
LONG_RANGE = pd.Timedelta(days=2)


# -- cell formatting rules (pure functions, tested one by one) -----------------------------


def _significant(value: float, digits: int = 3) -> str:
    """``value`` (> 0) with ``digits`` significant digits, never in exponent notation."""
    rounded = float(f"{value:.{digits}g}")
    decimals = max(0, digits - 1 - math.floor(math.log10(rounded)))
    return f"{rounded:.{decimals}f}"


def duration_text(ms: float | None) -> str:
    """A duration in ms (a table cell) in the one style of ``obslib.values.duration_text``
    (``8.5 ms``, ``850 ms``, ``4.2 s``, ``3 min 20 s``); blank when missing."""
    if ms is None or pd.isna(ms):
        return ""
    return values.duration_text(pd.Timedelta(float(ms), unit="ms"))


def percent_text(fraction: float | None) -> str:
    """A fraction (0.123) as ``12.3 %``; tiny non-zero shares read ``<0.1 %``."""
    if fraction is None or pd.isna(fraction):
        return ""
    pct = 100.0 * float(fraction)
    if 0 < abs(pct) < 0.05:
        return "<0.1 %" if pct > 0 else "-<0.1 %"
    return f"{pct:.1f} %"


def number_text(value: object) -> str:
    """Counts with thousands separators, other numbers with three significant digits (whole
    numbers from 1,000 up)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer) or float(value).is_integer():
        return f"{int(value):,}"
    size = abs(float(value))
    if size >= 1000:  # no digits dropped before the point: 1,235 rather than 1230
        return f"{round(float(value)):,}"
    return ("-" if value < 0 else "") + _significant(size)


# How finely a column of times is written: the coarsest step that loses nothing in it.
_TIME_STEPS = (("min", "%H:%M"), ("s", "%H:%M:%S"))


def time_precision(times: pd.Series) -> str:
    """``"min"``, ``"s"`` or ``"ms"``: the coarsest of them every time in ``times`` falls on
    (to the millisecond), so one column is written one way and drops no digit that
    says something: an incident's timeline of whole minutes reads ``14:05``, a trace's spans
    ``14:05:00.123``."""
    stamps = _as_utc(times).dropna().dt.floor("ms")
    for step, _ in _TIME_STEPS:
        if (stamps == stamps.dt.floor(step)).all():
            return step
    return "ms"


def time_text(moment: pd.Timestamp | None, day: pd.Timestamp | None, precision: str = "ms") -> str:
    """``HH:MM:SS.mmm`` in UTC (``HH:MM:SS`` or ``HH:MM`` at ``precision`` "s" or "min");
    a moment on a later day than ``day`` gets ``+Nd``."""
    if moment is None or pd.isna(moment):
        return ""
    stamp = utc(moment, "time")
    shown = dict(_TIME_STEPS).get(precision)
    text = f"{stamp:{shown}}" if shown else f"{stamp:%H:%M:%S}.{stamp.microsecond // 1000:03d}"
    if day is not None:
        days = (stamp.normalize() - day).days
        if days:
            text += f" ({days:+d}d)"
    return text


def date_minute_text(moment: pd.Timestamp | None) -> str:
    """``YYYY-MM-DD HH:MM`` in UTC: a time in a table that spans weeks."""
    if moment is None or pd.isna(moment):
        return ""
    return f"{utc(moment, 'time'):%Y-%m-%d %H:%M}"


def short_text(value: object, limit: int = TEXT_LIMIT) -> tuple[str, str]:
    """(shown, full): the text cut to ``limit`` characters with an ellipsis, and all of it
    up to ``FULL_LIMIT`` characters (past that, cut, saying how many more there were)."""
    if value is None or (not isinstance(value, str | dict | list) and pd.isna(value)):
        return "", ""
    full = str(value)
    if len(full) > FULL_LIMIT:
        full = f"{full[:FULL_LIMIT]}\u2026 ({len(full) - FULL_LIMIT:,} more characters)"
    flat = " ".join(full.split())
    return (flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"), full


def caption_room(caption: str) -> str:
    """The table's least width, so its caption reads across the page: a caption lives
    inside its table, and a long one over two narrow columns would otherwise wrap into a
    thin column of many lines. About one ``ch`` per character, up to the page's width
    (``min-width``, never wider than its box); none for a short caption."""
    if len(caption) <= CAPTION_LINE:
        return ""
    return f"min-width: min(100%, {len(caption)}ch);"


# -- column kinds ---------------------------------------------------------------------------


def column_kind(name: str, series: pd.Series) -> str:
    """How a column reads, from its dtype and the words of its name: time, duration (``ms``),
    percent (``pct``, 0-100), fraction (``share``, ``rate``, 0-1), number or text."""
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(series):
        return "time"
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    words = name.split("_")
    if numeric and ("ms" in words or name == "duration"):
        return "duration"
    if numeric and "pct" in words:
        return "percent"
    if numeric and ("share" in words or "rate" in words):
        return "fraction"
    if numeric or pd.api.types.is_bool_dtype(series):
        return "number"
    return "text"


def header(name: str) -> str:
    """``self_total_ms`` -> ``self total``, ``self_pct`` -> ``self %``: units live in cells."""
    words = [w for w in str(name).split("_") if w != "ms"]
    return " ".join("%" if w == "pct" else w for w in words) or str(name)


def error_rows(frame: pd.DataFrame) -> np.ndarray:
    """Rows that describe a failure: a span status other than ok, an error/fatal log level,
    a positive ``errors`` count or an error-sampled trace."""
    flags = np.zeros(len(frame), dtype=bool)
    for column in ("status", "span_status"):
        if column in frame:
            values = frame[column].astype("string")
            flags |= (values.notna() & (values != "ok") & (values != "")).to_numpy(bool)
    if "level" in frame:
        flags |= frame["level"].astype("string").isin(ERROR_LEVELS).to_numpy(bool)
    if "errors" in frame and pd.api.types.is_numeric_dtype(frame["errors"]):
        flags |= (frame["errors"].fillna(0) > 0).to_numpy(bool)
    if "reason" in frame:
        flags |= (frame["reason"].astype("string") == "error").to_numpy(bool)
    return flags


# -- the table ------------------------------------------------------------------------------


def _as_utc(series: pd.Series) -> pd.Series:
    """Times in UTC; naive times are taken as UTC (as ``obslib.values.utc`` does)."""
    times = pd.Series(series)
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        return times.dt.tz_convert("UTC")
    return times.dt.tz_localize("UTC")


@dataclass(frozen=True)
class Table:
    """A frame with a caption, formatted for reading. ``data`` keeps the raw values."""

    data: pd.DataFrame
    caption: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)  # column -> header override
    errors: np.ndarray | None = None  # rows to mark; default: ``error_rows(data)``

    def __len__(self) -> int:
        return len(self.data)

    def _times(self) -> list[pd.Series]:
        return [
            _as_utc(self.data[c])
            for c in self.data.columns
            if column_kind(str(c), self.data[c]) == "time"
        ]

    @property
    def day(self) -> pd.Timestamp | None:
        """The first UTC date among the table's times (stated once, in the caption)."""
        firsts = [t.min() for t in self._times() if t.notna().any()]
        return min(firsts).normalize() if firsts else None

    @property
    def long_range(self) -> bool:
        """Times over more than two days read as dates and minutes (``11-14 14:18``), not
        as times of one day with a day offset."""
        times = [t for t in self._times() if t.notna().any()]
        if not times:
            return False
        return max(t.max() for t in times) - min(t.min() for t in times) > LONG_RANGE

    def full_caption(self) -> str:
        """The caption and, when the table holds times, the date they are on."""
        parts = [self.caption.rstrip(".") + "." if self.caption else ""]
        day = self.day
        if day is not None and self.long_range:
            parts.append("Times UTC.")
        elif day is not None:
            last = max(t.max() for t in self._times() if t.notna().any()).normalize()
            if last == day:
                parts.append(f"Times UTC on {day:%Y-%m-%d}.")
            else:
                parts.append(
                    f"Times UTC from {day:%Y-%m-%d} to {last:%Y-%m-%d}; (+1d) marks the next day."
                )
        return " ".join(p for p in parts if p)

    def cells(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(shown, full): every cell as display text, and the full text behind cut cells."""
        day = self.day
        shown, full = {}, {}
        for column in self.data.columns:
            series = self.data[column]
            kind = column_kind(str(column), series)
            if kind == "time" and self.long_range:
                values = [date_minute_text(v) for v in series]
                whole = values
            elif kind == "time":
                precision = time_precision(series)
                values = [time_text(v, day, precision) for v in series]
                whole = values
            elif kind == "duration":
                values = whole = [duration_text(v) for v in series]
            elif kind == "percent":
                values = whole = [percent_text(v / 100.0) for v in series]
            elif kind == "fraction":
                values = whole = [percent_text(v) for v in series]
            elif kind == "number":
                values = whole = [number_text(v) for v in series]
            else:
                pairs = [short_text(v) for v in series]
                values, whole = [p[0] for p in pairs], [p[1] for p in pairs]
            name = self.labels.get(column, header(column))
            shown[name], full[name] = values, whole
        return pd.DataFrame(shown), pd.DataFrame(full)

    def styler(self) -> Styler:
        """The pandas Styler behind the HTML: no index, escaped cells and headers (the stored
        text shows as text, never as markup), error rows marked."""
        shown, full = self.cells()
        cut = shown != full
        body = shown.map(html_text)
        kinds = [column_kind(str(c), self.data[c]) for c in self.data.columns]
        text_columns = [n for n, k in zip(shown.columns, kinds, strict=True) if k == "text"]
        other_columns = [n for n in shown.columns if n not in text_columns]
        for name in other_columns:  # "391.8 ms" never wraps between number and unit
            body[name] = body[name].str.replace(" ", "&nbsp;", regex=False)
        for name in text_columns:  # nor does "99.9 %" or "3 min" inside a wrapping text
            body[name] = body[name].str.replace(_NUMBER_UNIT, "&nbsp;", regex=True)
        for name in shown.columns:
            rows = cut[name].to_numpy()
            if rows.any():
                body.loc[rows, name] = [
                    f'<span title="{html_text(f)}">{html_text(s)}</span>'
                    for s, f in zip(shown.loc[rows, name], full.loc[rows, name], strict=True)
                ]
        marked = self.errors if self.errors is not None else error_rows(self.data)
        room = caption_room(self.full_caption())
        uuid = hashlib.sha1((self.full_caption() + shown.to_csv(index=False)).encode()).hexdigest()[
            :10
        ]
        style = (
            body.style.hide(axis="index")
            .set_uuid(uuid)
            .format_index(escape="html", axis=1)
            .set_caption(html_text(self.full_caption()))
            .set_table_styles(
                [
                    *([{"selector": "", "props": room}] if room else []),
                    {"selector": "caption", "props": "caption-side: top; text-align: left;"},
                    {"selector": "td, th", "props": "padding: 2px 8px; vertical-align: top;"},
                    {"selector": "th", "props": "text-align: left;"},
                ]
            )
            .set_table_styles(
                {
                    name: [
                        {
                            "selector": "td",
                            "props": (
                                "text-align: left; " + TEXT_CELL_STYLE
                                if name in text_columns
                                else "text-align: right;"
                            ),
                        }
                    ]
                    for name in shown.columns
                },
                overwrite=False,
            )
        )
        if marked.any():
            style = style.apply(
                lambda row: [
                    (ERROR_ROW_STYLE + (ERROR_EDGE_STYLE if i == 0 else ""))
                    if marked[row.name]
                    else ""
                    for i in range(len(row))
                ],
                axis=1,
            )
        return style

    def _repr_html_(self) -> str:
        table = self.styler().to_html()
        return f'<div class="obslib-table" style="max-width: 100%; overflow-x: auto;">{table}</div>'

    def markdown(self) -> str:
        """The table as Markdown (a pipe table under its caption): for a wiki or a pull
        request. Cells are the HTML's text in full (Markdown has no hover); caption, headers
        and cells are escaped Markdown text (``obslib.escape.md_text``): a ``|``, a line
        break or a tag in a value never breaks the table or becomes markup."""
        _, shown = self.cells()
        caption = md_text(self.full_caption())
        if shown.empty:
            return f"{caption}\n\n*(no rows)*" if caption else "*(no rows)*"

        def row(values: list[str]) -> str:
            return "| " + " | ".join(md_text(v) for v in values) + " |"

        kinds = [column_kind(str(c), self.data[c]) for c in self.data.columns]
        rule = ["---" if k == "text" else "---:" for k in kinds]
        lines = [row([str(c) for c in shown.columns]), "|" + "|".join(rule) + "|"]
        lines += [row([str(v) for v in values]) for values in shown.itertuples(index=False)]
        body = "\n".join(lines)
        return f"{caption}\n\n{body}" if caption else body

    def __repr__(self) -> str:
        shown, _ = self.cells()
        text = shown.to_string(index=False) if len(shown) else "(no rows)"
        caption = self.full_caption()
        return f"{caption}\n{text}" if caption else text


def table(
    frame: pd.DataFrame,
    caption: str = "",
    *,
    labels: Mapping[str, str] | None = None,
    errors: np.ndarray | pd.Series | None = None,
) -> Table:
    """A readable table of ``frame``: kinds come from column names and dtypes (``*_ms``
    durations, ``*_pct`` percents, ``share``/``*_rate`` fractions, tz-aware times)."""
    data = frame.reset_index(drop=True)
    marks = None if errors is None else np.asarray(errors, dtype=bool)
    return Table(data, caption, dict(labels or {}), marks)
