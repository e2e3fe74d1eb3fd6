"""Incident charts: what the calls of the paged service did around the page, and when each
event of the timeline happened, on one time axis.

Why they look as they do: a postmortem reader asks "when did it start hurting, and when
did we notice?", so the paged service's failed calls per minute (red bars; calls are its
server spans, not user requests: one request makes calls in several services) sit above one
lane per kind of event (change, first error, breach, page, acknowledgement, escalation,
resolution) sharing the time axis; the gap between the first red bar and the page is the
detection time. Event labels are in lanes, not on the bars, because the page and the
acknowledgement are minutes apart and labels on one line would overwrite each other; within
a lane, events whose labels would touch (a deploy's start and finish 50 s apart) are drawn
one above the other, each with its own label, and a label that would leave the frame on the
right is drawn left of its diamond.
Reports are static SVG, so the alt text states the numbers a reader needs (peak, first
failure, page, resolution).
"""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

from obslib.charts._common import (
    AMBER,
    BLUE,
    GREEN,
    INK,
    RED,
    WIDTH,
    color_scale,
    epoch_ms,
    refuse_empty_or_long,
    text_px,
    time_axis,
    time_tooltip,
    utc_column,
    when,
)
from obslib.errors import InputError
from obslib.schema import require_columns
from obslib.values import Moment, positive_duration, window

MINUTE_COLUMNS = ("minute", "requests", "failed")
EVENT_COLUMNS = ("time", "kind", "what")
# The lanes top to bottom, in the order a story is told; colours: red = harm, amber =
# change, blue = people responding, green = over.
EVENT_LANES = {
    "change": ("change", AMBER),
    "sli_breach": ("SLI breach", RED),
    "first_error_span": ("first failing call", RED),
    "first_error_log": ("first error log", "#9d3a2b"),
    "triggered": ("page", INK),
    "acknowledged": ("acknowledged", BLUE),
    "escalated": ("escalated", "#72b7b2"),
    "resolved": ("resolved", GREEN),
}
FAILED_COLOR = RED
OK_COLOR = "#c7c7c7"
_LANE_PX = 24
_LABEL_FONT = 10
_STAGGER_PX = 6  # a staggered event sits this far above or below its lane's middle
_DIAMOND_PX = 5  # half a diamond's width, and the space to its label
_LABEL_DX = 7  # from a diamond's centre to its label
MINUTE = pd.Timedelta(minutes=1)


def incident_timeline(
    minutes: pd.DataFrame,
    events: pd.DataFrame,
    *,
    start: Moment,
    end: Moment,
    service: str,
    title: str,
    step: pd.Timedelta = MINUTE,
) -> alt.VConcatChart:
    """Failed calls per ``step`` (a minute by default; ``minute`` is each bucket's start;
    ``requests`` and ``failed`` count the service's calls, its server spans) of ``service``
    over ``[start, end)`` above the timeline's events (``time``, ``kind``, ``what``), one
    lane per kind, on a shared UTC axis."""
    require_columns(minutes, MINUTE_COLUMNS, "minutes")
    require_columns(events, EVENT_COLUMNS, "events")
    lo, hi = window(start, end)
    step = positive_duration(step, "step")
    if minutes.empty and events.empty:
        raise InputError("minutes and events frames are both empty: nothing to chart")
    if len(minutes):
        refuse_empty_or_long(minutes, "minutes")
    unknown = sorted(set(events["kind"].astype(str)) - set(EVENT_LANES))
    if unknown:
        raise InputError(f"events frame has unknown kinds {unknown} (known: {list(EVENT_LANES)})")
    x_scale = alt.Scale(type="utc", domain=[epoch_ms(lo), epoch_ms(hi)])
    minutes_shown = max(1.0, (hi - lo) / step)
    axis = time_axis(lo, hi)
    bars = pd.DataFrame(
        {
            "minute": utc_column(minutes["minute"], "minutes"),
            "requests": minutes["requests"].astype("int64"),
            "failed": minutes["failed"].astype("int64"),
        }
    )
    bars["middle"] = bars["minute"] + step / 2
    bars["ok"] = (bars["requests"] - bars["failed"]).clip(lower=0)
    stacked = bars.melt(
        id_vars=["minute", "middle", "requests"], value_vars=["ok", "failed"], var_name="outcome"
    )
    top = (
        alt.Chart(stacked)
        .mark_bar(clip=True, width=max(1.0, WIDTH / minutes_shown - 0.5))
        .encode(
            x=alt.X("middle:T", title=None, scale=x_scale, axis=axis),
            y=alt.Y("value:Q", title=f"calls / {_per(step)}", stack="zero"),
            color=alt.Color(
                "outcome:N",
                scale=alt.Scale(domain=["failed", "ok"], range=[FAILED_COLOR, OK_COLOR]),
                legend=alt.Legend(title=None, orient="top-left"),
            ),
            order=alt.Order("outcome:N", sort="ascending"),
            tooltip=[
                time_tooltip("minute", "from (UTC)"),
                alt.Tooltip("outcome:N"),
                alt.Tooltip("value:Q", title="calls"),
            ],
        )
        .properties(width=WIDTH, height=140)
    )
    marks = events.assign(
        time=utc_column(events["time"], "events"),
        lane=[EVENT_LANES[k][0] for k in events["kind"].astype(str)],
    )
    marks = marks[marks["time"].between(lo, hi)].sort_values("time", kind="stable")
    marks = pd.concat([marks.reset_index(drop=True), _placed(marks, lo, hi)], axis=1)
    lanes = [label for kind, (label, _) in EVENT_LANES.items() if label in set(marks["lane"])]
    colors = color_scale(dict(EVENT_LANES.values()))
    # With a y offset Vega-Lite makes lanes bands and offsets from a band's top: bands with
    # no padding are _LANE_PX high, so an offset of half that is the lane's middle.
    y = alt.Y(
        "lane:N",
        sort=lanes,
        scale=alt.Scale(domain=lanes, paddingInner=0, paddingOuter=0),
        title=None,
    )
    x = alt.X("time:T", title="time (UTC)", scale=x_scale, axis=axis)
    marks["offset"] = marks["shift"].astype(float) + _LANE_PX / 2
    shift = alt.YOffset("offset:Q", scale=None)
    points = (
        alt.Chart(marks)
        .mark_point(filled=True, size=70, shape="diamond")
        .encode(
            x=x,
            y=y,
            yOffset=shift,
            color=alt.Color("lane:N", scale=colors, legend=None),
            tooltip=[time_tooltip("time", "time (UTC)"), "lane:N", "what:N"],
        )
    )
    layers = [points]
    for side, dx in (("right", _LABEL_DX), ("left", -_LABEL_DX)):
        beside = marks[marks["side"] == side]
        if len(beside):  # an empty layer makes Vega log "Infinite extent"
            layers.append(
                alt.Chart(beside)
                .mark_text(align="left" if side == "right" else "right", dx=dx, fontSize=10)
                .encode(x=x, y=y, yOffset=shift, text="label:N")
            )
    bottom = alt.layer(*layers).properties(width=WIDTH, height=max(1, len(lanes)) * _LANE_PX)
    chart = alt.vconcat(top, bottom, spacing=6).resolve_scale(x="shared", color="independent")
    return chart.properties(
        title=alt.TitleParams(title, anchor="start"),
        description=_describe(bars, marks, service, lo, hi, step),
    )


def _placed(marks: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
    """Where each event's diamond and label go (``label``, ``side``, ``shift``), by lane.

    Labels are clock times, with seconds when two events of a lane share a minute (14:05 and
    14:05:50). A label goes right of its diamond, or left when it would leave the frame.
    Events whose diamond and label would touch the previous one's stagger: the first ``-``
    ``_STAGGER_PX`` above the lane's middle, the next as far below, and so on; one that
    would still touch the one before it on its row keeps its diamond but no label (the
    tooltip and the table keep every time)."""
    placed = pd.DataFrame(
        {"label": "", "side": "right", "shift": 0.0}, index=range(len(marks)), dtype=object
    )
    placed["shift"] = 0.0
    lanes = marks["lane"].to_numpy()
    times = list(marks["time"])
    for lane in dict.fromkeys(lanes):
        rows = [i for i, name in enumerate(lanes) if name == lane]
        texts = _clock_texts([times[i] for i in rows], hi - lo)
        spans = []
        for i, text in zip(rows, texts, strict=True):
            x = WIDTH * ((times[i] - lo) / (hi - lo))
            width = text_px(text, _LABEL_FONT)
            if x + _LABEL_DX + width <= WIDTH:
                spans.append((i, text, "right", x - _DIAMOND_PX, x + _LABEL_DX + width))
            else:
                spans.append((i, text, "left", x - _LABEL_DX - width, x + _DIAMOND_PX))
        for cluster in _clusters(spans):
            ends: dict[float, float] = {}  # each row's last label end
            for k, (i, text, side, left, right) in enumerate(cluster):
                shift = 0.0 if len(cluster) == 1 else _STAGGER_PX * (-1 if k % 2 == 0 else 1)
                placed.loc[i, ["side", "shift"]] = [side, shift]
                if left >= ends.get(shift, -math.inf) + 2:
                    placed.loc[i, "label"] = text
                    ends[shift] = right
    return placed


def _clusters(spans: list[tuple]) -> list[list[tuple]]:
    """Runs of events whose extents (diamond and label, in px) touch, in time order."""
    runs: list[list[tuple]] = []
    end = -math.inf
    for span in spans:
        if runs and span[3] < end + 2:
            runs[-1].append(span)
        else:
            runs.append([span])
        end = max(end, span[4]) if len(runs[-1]) > 1 else span[4]
    return runs


def _clock_texts(times: list[pd.Timestamp], length: pd.Timedelta) -> list[str]:
    """Clock times ("14:05", or "11-14 14:05" on axes over a day), to the second for
    events that share a minute with another of theirs ("14:05", "14:05:50")."""
    fmt = "%H:%M" if length <= pd.Timedelta(days=1) else "%m-%d %H:%M"
    short = [f"{t:{fmt}}" for t in times]
    return [
        f"{t:{fmt}}:{t:%S}" if short.count(s) > 1 and t.second else s
        for t, s in zip(times, short, strict=True)
    ]


def _per(step: pd.Timedelta) -> str:
    minutes = int(step / pd.Timedelta(minutes=1))
    if minutes % 60:
        return "min" if minutes == 1 else f"{minutes} min"
    return "hour" if minutes == 60 else f"{minutes // 60} h"


def _describe(
    bars: pd.DataFrame,
    marks: pd.DataFrame,
    service: str,
    lo: pd.Timestamp,
    hi: pd.Timestamp,
    step: pd.Timedelta,
) -> str:
    """The alt text: the numbers a reader of the static SVG needs."""
    until = f"{hi:%H:%M}" if hi.normalize() == lo.normalize() else when(hi)
    per = "minute" if step == MINUTE else _per(step)
    parts = [f"Failed calls per {per} of {service}, {when(lo)} to {until} UTC"]
    failing = bars[bars["failed"] > 0]
    if failing.empty:
        parts.append("no failed call")
    else:
        peak = failing.loc[failing["failed"].idxmax()]
        first, total = failing["minute"].min(), int(failing["failed"].sum())
        parts.append(
            f"{total:,} failed, the first at {first:%H:%M}, "
            f"peak {int(peak['failed']):,} at {peak['minute']:%H:%M}"
        )
    if len(marks):
        ordered = marks.sort_values("time", kind="stable")
        parts.append(
            "events: " + ", ".join(f"{r.lane} {r.time:%H:%M}" for r in ordered.itertuples())
        )
    return "; ".join(parts) + "."
