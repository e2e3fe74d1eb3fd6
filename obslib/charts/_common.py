"""What the chart modules share: limits (rows, width), colours (by meaning and one per
service), UTC time axes and tooltips, refusals of frames a chart cannot draw, and the words
of subtitles and alt text.

Charts refuse more than ``MAX_ROWS`` rows rather than lifting Altair's limit (a design
signal: the view aggregates first). Times are drawn on UTC scales, whatever the reader's
machine's time zone.
"""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

from obslib.errors import InputError

MAX_ROWS = 5_000  # Altair's own default limit, kept: past it a chart needs fewer rows
WIDTH = 760  # plot width in px of time charts; with axis labels and legends ~900 px

# Colours by meaning, defined once: red = bad (errors, a violated SLO, a page), amber =
# warning or change, green = fine, blue = people acting (a ticket, an acknowledgement),
# ink = marks that are no series (incident markers, targets).
RED = "#d62728"
AMBER = "#e5a50a"
GREEN = "#54a24b"
BLUE = "#4c78a8"
INK = "#222222"
STATUS_COLORS = {"compliant": GREEN, "at_risk": AMBER, "violated": RED}

# Tableau 10 without its red (red means "error" in every chart), then Tableau 20's lighter
# shades: enough distinct colours for a report's services, assigned in sorted-name order.
SERVICE_PALETTE = (
    "#4c78a8", "#f58518", "#54a24b", "#b279a2", "#eeca3b", "#9d755d", "#72b7b2",
    "#bab0ac", "#ff9da6", "#9ecae9", "#ffbf79", "#88d27a", "#d6a5c9", "#fcbfd2",
    "#439894", "#83bcb6", "#79706e", "#d8b5a5", "#b6992d", "#f2cf5b",
)  # fmt: skip

TIME_FORMAT = "%Y-%m-%d %H:%M"

# Helvetica's advance widths (Adobe's Helvetica AFM, in 1/1000 em) for printable ASCII, space
# to tilde. vl-convert lays text out in Liberation Sans, which has Helvetica's metrics, so
# these predict to the pixel where Vega cuts a label at its ``labelLimit`` (checked against
# vl-convert in tests/charts/test_labels.py); any other character counts a full em.
_ADVANCE = (
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
)  # fmt: skip
LABEL_FONT_PX = 10  # Vega's axis label size
ELLIPSIS = "\u2026"


def service_colors(services, extra=()) -> alt.Scale:
    """One colour per service, the same in every chart built with this scale: pass the
    report's services (e.g. the window's) to each chart so a service keeps its colour.

    ``extra`` services (a picked trace's that the window lacks) take colours after them, so
    the window's services keep the colours charts drawn earlier gave them."""
    names = sorted({str(s) for s in services})
    names += sorted({str(s) for s in extra} - set(names))
    palette = [SERVICE_PALETTE[i % len(SERVICE_PALETTE)] for i in range(len(names))]
    return alt.Scale(domain=names, range=palette)


def color_scale(colors: dict[str, str]) -> alt.Scale:
    """A fixed colour per value (``{"page": RED, ...}``), in the dict's order."""
    return alt.Scale(domain=list(colors), range=list(colors.values()))


def text_px(text: str, font_size: float = LABEL_FONT_PX) -> float:
    """The width in px of ``text`` as vl-convert draws it at ``font_size`` (Helvetica's
    metrics; a character outside printable ASCII counts a full em, so never less)."""
    ems = sum(_ADVANCE[o - 32] if 32 <= (o := ord(c)) <= 126 else 1000 for c in text)
    return ems * font_size / 1000


def shorten(text: str, room: float, font_size: float = LABEL_FONT_PX) -> str:
    """``text`` as is when it fits in ``room`` px, else cut in the middle ("api-gateway: POST
    /api/v1/…/{id}/verify"): the start names the service, the end the operation, and the
    tooltip keeps the whole. A label cut at its end by Vega loses the part that differs."""
    if text_px(text, font_size) <= room:
        return text
    head, tail = text[: (len(text) + 1) // 2], text[(len(text) + 1) // 2 :]
    while head or tail:  # drop a character from the longer half until it fits
        if len(head) >= len(tail):
            head = head[:-1]
        else:
            tail = tail[1:]
        cut = head.rstrip() + ELLIPSIS + tail.lstrip()
        if text_px(cut, font_size) <= room:
            return cut
    return ELLIPSIS


def fit_labels(labels, most: float, font_size: float = LABEL_FONT_PX) -> tuple[dict[str, str], int]:
    """Category labels that fit the axis: each label as drawn (``shorten`` to ``most`` px
    when longer) and the axis' ``labelLimit``, the px the longest drawn label needs, so
    Vega cuts none of them. Two labels never shorten to the same text (they would merge
    into one row): such labels keep their whole text, cut by Vega at ``most``."""
    names = list(dict.fromkeys(str(label) for label in labels))
    drawn = {name: shorten(name, most, font_size) for name in names}
    texts = list(drawn.values())
    for name, text in drawn.items():
        if texts.count(text) > 1:
            drawn[name] = name
    need = max((text_px(text, font_size) for text in drawn.values()), default=0.0)
    return drawn, math.ceil(min(need, most)) + 2


def time_axis(first: pd.Timestamp, last: pd.Timestamp) -> alt.Axis:
    """Day labels ("Sat 14") over more than two days, clock times below: Vega's automatic
    format labels noon ticks "12 PM" when a series starts mid-day, which says nothing."""
    days = pd.notna(first) and pd.notna(last) and last - first > pd.Timedelta(days=2)
    # Vega-Lite has no "utc" formatType (it is ignored, and labels fall back to Vega's local
    # 12-hour multi-format): the labels are formatted in UTC by an expression instead.
    fmt = "%a %d" if days else "%H:%M"
    return alt.Axis(labelExpr=f"utcFormat(datum.value, '{fmt}')", labelOverlap=True)


def time_tooltip(field: str, title: str) -> alt.Tooltip:
    """A time in a tooltip, in UTC to the minute."""
    return alt.Tooltip(f"{field}:T", title=title, format=TIME_FORMAT, formatType="utc")


def epoch_ms(moment: pd.Timestamp) -> float:
    """A moment as a Vega-Lite time scale's domain takes it."""
    return moment.timestamp() * 1000.0


def utc_column(column: pd.Series, what: str) -> pd.Series:
    """Times as tz-aware UTC (naive ones taken as UTC, as ``values.utc`` does); an
    InputError naming the frame and column when they are not times."""
    try:
        return pd.to_datetime(column, utc=True)
    except (ValueError, TypeError) as err:
        raise InputError(f"{what} frame has {column.name} values that are not times") from err


def refuse_empty(frame: pd.DataFrame, what: str) -> None:
    """An InputError for an empty frame: the view shows its own "no data" note instead."""
    if frame.empty:
        raise InputError(f"{what} frame is empty: nothing to chart (the view says why)")


def refuse_empty_or_long(frame: pd.DataFrame, what: str) -> None:
    """An InputError for an empty frame or one over ``MAX_ROWS``."""
    refuse_empty(frame, what)
    if len(frame) > MAX_ROWS:
        raise InputError(
            f"{what} frame has {len(frame)} rows; charts draw at most {MAX_ROWS}: downsample first"
        )


def refuse_unknown(values: pd.Series, allowed: tuple[str, ...], what: str) -> None:
    """An InputError for a value (or a missing one) a chart has no colour or shape for."""
    unknown = sorted({str(v) for v in values.dropna()} - set(allowed))
    if unknown or values.isna().any():
        shown = ", ".join(unknown) if unknown else "a missing value"
        raise InputError(f"{what} frame has {values.name} {shown}; expected {', '.join(allowed)}")


def when(moment: pd.Timestamp) -> str:
    """A moment in a subtitle or alt text: "2026-11-14 14:05" (UTC, said once nearby)."""
    return f"{moment:{TIME_FORMAT}}"
