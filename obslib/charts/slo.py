"""SLO review charts over pre-aggregated frames: budget burn-down, burn rates, alert replay.

Why they look as they do:
- Burn rates span 0.01..1000 and the alert thresholds 1..14.4 (SRE Workbook, 30-day SLO), so
  the burn-rate axis is logarithmic; a log axis cannot show 0, so burns below ``BURN_FLOOR``
  are drawn at the floor (and the axis title and alt text say so) rather than dropped.
- An overspent budget is the finding, so budget values below 0 stay on the axis, never
  clipped; the "budget spent" line at 0 and the dashed "at risk" line frame them.
- A 5-minute page in a 30-day replay is narrower than a pixel, so firing bars are widened
  to ``MIN_BAR_PX`` (the tooltip keeps the real times) and the subtitle says how many.
- Reports are static SVG (no tooltips), so what a reader needs is in the marks, the
  subtitle and the ``description`` (alt text): the SLO, the numbers that matter.
- Every chart takes a frame its view pre-aggregated; empty or over-long frames are refused
  with an InputError (the view shows its own "no data" note), unknown statuses too.
Times are drawn on UTC scales, whatever the reader's machine's time zone.
"""

from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd

from obslib.charts._common import (
    BLUE,
    INK,
    MAX_ROWS,
    RED,
    STATUS_COLORS,
    TIME_FORMAT,
    WIDTH,
    color_scale,
    epoch_ms,
    fit_labels,
    refuse_empty_or_long,
    refuse_unknown,
    time_axis,
    time_tooltip,
    utc_column,
    when,
)
from obslib.errors import InputError, UsageError
from obslib.schema import COMPLIANCE_STATUSES, SEVERITIES, require_columns
from obslib.values import Moment, duration, plural, window

# Status colours are every chart's (``_common``); a page is red, a ticket blue (a ticket is
# a to-do, not an alarm).
SEVERITY_COLORS = {"page": RED, "ticket": BLUE}
# Burn-rate lines take their colour from the severity of the rule on their window, shorter
# windows first: page windows red/orange, ticket windows blue/teal, others grey.
_WINDOW_SHADES = {
    "page": ("#d62728", "#f58518", "#9d3a2b"),
    "ticket": ("#4c78a8", "#72b7b2", "#2a4d7a"),
    None: ("#79706e", "#bab0ac", "#9d755d"),
}
_INCIDENT_SHAPES = {
    "critical": "triangle-down",
    "high": "diamond",
    "medium": "circle",
    "low": "square",
}
_GUIDE_COLOR = "#555555"

TIMES = "\u00d7"  # the multiplication sign of "14.4x" (ruff flags the literal as ambiguous)
BURN_FLOOR = 0.01  # burns below this are drawn here: a log axis has no 0
MIN_BAR_PX = 3  # firing bars are at least this wide
_GANTT_WIDTH = 600  # the replay's row labels take the rest
# The burn-rate plot leaves room on its right for the threshold labels ("ticket 1x (3d)",
# ~110 px), drawn there rather than over the lines.
_BURN_WIDTH, _BURN_HEIGHT = WIDTH - 110, 280
_THRESHOLD_DX = 6
_LABEL_GAP_PX = 12  # between two threshold labels' middles: 10 px text and a little air
_ROW_PX = 22
_ROW_LABEL_PX = 280  # at most, for the replay's row labels left of its 600 px


MEASUREMENT_COLUMNS = ("measurement_timestamp", "error_budget_remaining", "compliance_status")
BURN_COLUMNS = ("time", "window", "burn_rate")
RULE_COLUMNS = ("severity", "window", "burn_rate")
FIRING_COLUMNS = ("slo", "severity", "rule", "start", "end")
INCIDENT_COLUMNS = ("service_name", "incident_id", "triggered_at", "severity")


def budget_burndown(
    measurements: pd.DataFrame, *, title: str, at_risk_below: float = 10.0
) -> alt.LayerChart:
    """Error budget remaining (%) over time for one SLO: a line with points coloured by
    compliance status, a rule at 0 ("budget spent") and a dashed rule at ``at_risk_below``
    (100 minus the SLO's alert threshold). Overspent (negative) values stay visible."""
    require_columns(measurements, MEASUREMENT_COLUMNS, "SLO measurements")
    if not math.isfinite(at_risk_below):
        raise UsageError(f"at_risk_below must be a number, not {at_risk_below!r}")
    refuse_empty_or_long(measurements, "SLO measurements")
    refuse_unknown(measurements["compliance_status"], COMPLIANCE_STATUSES, "SLO measurements")
    data = pd.DataFrame(
        {
            "measurement_timestamp": utc_column(
                measurements["measurement_timestamp"], "SLO measurements"
            ),
            "error_budget_remaining": pd.to_numeric(
                measurements["error_budget_remaining"], errors="coerce"
            ).astype(float),
            "compliance_status": measurements["compliance_status"].astype(str),
        }
    ).sort_values("measurement_timestamp", kind="stable", ignore_index=True)
    values = data.dropna(subset=["measurement_timestamp", "error_budget_remaining"])
    if values.empty:
        raise InputError("SLO measurements frame has no error_budget_remaining value to draw")
    low = values.loc[values["error_budget_remaining"].idxmin()]
    # Explicit bounds so 0, the at-risk line and every overspent value are on the axis.
    y_scale = alt.Scale(
        domain=[
            min(0.0, at_risk_below, float(low["error_budget_remaining"])),
            max(100.0, at_risk_below, float(values["error_budget_remaining"].max())),
        ],
        nice=True,
    )
    stamps = values["measurement_timestamp"]
    x = alt.X(
        "measurement_timestamp:T",
        title="time (UTC)",
        scale=alt.Scale(type="utc"),
        axis=time_axis(stamps.min(), stamps.max()),
    )
    y = alt.Y("error_budget_remaining:Q", title="error budget remaining (%)", scale=y_scale)
    tooltip = [
        time_tooltip("measurement_timestamp", "time (UTC)"),
        alt.Tooltip("error_budget_remaining:Q", title="remaining (%)", format=".1f"),
        alt.Tooltip("compliance_status:N", title="status"),
    ]
    status = alt.Color(
        "compliance_status:N",
        scale=color_scale(STATUS_COLORS),
        legend=alt.Legend(
            title="status", orient="bottom", labelExpr="replace(datum.label, '_', ' ')"
        ),
    )
    line = (
        alt.Chart(_segments(data))
        .mark_rule(strokeWidth=1.5)
        .encode(x=x, x2="next_timestamp:T", y=y, y2="next_remaining:Q", color=status)
    )
    points = (
        alt.Chart(data)
        .mark_circle(size=18, opacity=0.9)
        .encode(
            x=x,
            y=y,
            color=status,
            tooltip=tooltip,
        )
    )
    guides = pd.DataFrame(
        {
            "level": [0.0, float(at_risk_below)],
            "label": ["budget spent", f"at risk (below {at_risk_below:g}%)"],
            "dash": [[1, 0], [6, 4]],
        }
    )
    rules = (
        alt.Chart(guides)
        .mark_rule(color=_GUIDE_COLOR, strokeWidth=1)
        .encode(y=alt.Y("level:Q", scale=y_scale), strokeDash=alt.StrokeDash("dash", scale=None))
    )
    # Labels sit above their line, but "budget spent" goes below its own once the axis runs
    # below 0: on an axis down to -300 % the lines at 0 and 10 % are 4 px apart.
    below = guides.index == 0 if y_scale.domain[0] < 0 else guides.index < 0
    labels = [
        alt.Chart(guides[where])
        .mark_text(align="left", baseline=baseline, dx=4, dy=dy, fontSize=10, color=_GUIDE_COLOR)
        .encode(x=alt.value(0), y=alt.Y("level:Q", scale=y_scale), text="label:N")
        for where, baseline, dy in ((~below, "bottom", -2), (below, "top", 2))
        if where.any()
    ]
    return alt.layer(rules, *labels, line, points).properties(
        title=alt.Title(title, subtitle=["error budget left: 100 % untouched, below 0 overspent"]),
        width=WIDTH,
        height=260,
        description=_burndown_description(data, values, low, title, at_risk_below),
    )


def _segments(data: pd.DataFrame) -> pd.DataFrame:
    """The burn-down's line as one segment per pair of consecutive measurements, coloured
    by the status the second one reached (a single line would take one colour for all);
    a measurement without a value breaks the line, as Vega breaks a path at a gap."""
    after = data.shift(-1)
    pairs = data["error_budget_remaining"].notna() & after["error_budget_remaining"].notna()
    return pd.DataFrame(
        {
            "measurement_timestamp": data["measurement_timestamp"],
            "error_budget_remaining": data["error_budget_remaining"],
            "next_timestamp": after["measurement_timestamp"],
            "next_remaining": after["error_budget_remaining"],
            "compliance_status": after["compliance_status"],
        }
    )[pairs.to_numpy()].reset_index(drop=True)


def _burndown_description(
    data: pd.DataFrame, values: pd.DataFrame, low: pd.Series, title: str, at_risk_below: float
) -> str:
    first, last = values.iloc[0], values.iloc[-1]
    counts = data["compliance_status"].value_counts()
    statuses = ", ".join(f"{counts.get(s, 0)} {s.replace('_', ' ')}" for s in COMPLIANCE_STATUSES)
    gaps = len(data) - len(values)
    gap_note = f"; {plural(gaps, 'measurement')} without a value left out" if gaps else ""
    return (
        f"Error budget burn-down for {title}: {_pct(first['error_budget_remaining'])} "
        f"remaining on {when(first['measurement_timestamp'])}, "
        f"{_pct(last['error_budget_remaining'])} on {when(last['measurement_timestamp'])}, "
        f"lowest {_pct(low['error_budget_remaining'])} on {when(low['measurement_timestamp'])}; "
        f"{plural(len(data), 'measurement')} ({statuses}); lines mark 0 % (budget spent) and "
        f"{at_risk_below:g} % (at risk){gap_note}."
    )


def burn_rate_chart(burn: pd.DataFrame, rules: pd.DataFrame, *, title: str) -> alt.LayerChart:
    """Burn rate per alert window over time on a log axis, with each alert threshold drawn
    as a dashed rule in its window's colour, labelled like "page 14.4x (1h)". Burns below
    ``BURN_FLOOR`` (zeros included) are drawn at the floor, not dropped."""
    require_columns(burn, BURN_COLUMNS, "burn rate")
    require_columns(rules, RULE_COLUMNS, "burn-rate rules")
    refuse_empty_or_long(burn, "burn rate")
    refuse_unknown(rules["severity"], tuple(SEVERITY_COLORS), "burn-rate rules")
    rate = pd.to_numeric(burn["burn_rate"], errors="coerce").astype(float)
    if (rate < 0).any():
        raise InputError(f"burn rate frame has a negative burn_rate ({rate.min():g})")
    data = pd.DataFrame(
        {
            "time": utc_column(burn["time"], "burn rate"),
            "window": burn["window"].astype(str),
            "burn_rate": rate,
            "shown": rate.clip(lower=BURN_FLOOR),  # NaN stays NaN: a gap, not a floor
        }
    )
    thresholds = pd.DataFrame(
        {
            "severity": rules["severity"].astype(str),
            "window": rules["window"].astype(str),
            "burn_rate": pd.to_numeric(rules["burn_rate"], errors="coerce").astype(float),
        }
    )
    if not np.isfinite(thresholds["burn_rate"]).all() or (thresholds["burn_rate"] <= 0).any():
        raise InputError("burn-rate rules frame has a burn_rate that is not a positive number")
    thresholds["label"] = [
        f"{s} {_times(b)}{TIMES} ({w})"
        for s, w, b in zip(
            thresholds["severity"], thresholds["window"], thresholds["burn_rate"], strict=True
        )
    ]
    colors = _window_colors(data["window"], thresholds)
    # one tick per decade from the floor to the decade above the highest burn or threshold
    top = float(np.nanmax([1.0, *data["shown"].dropna(), *thresholds["burn_rate"]]))
    low = round(math.log10(BURN_FLOOR))
    decades = [10.0**k for k in range(low, max(low + 1, math.ceil(math.log10(top))) + 1)]
    y_scale = alt.Scale(type="log", domain=[BURN_FLOOR, decades[-1]])
    y = alt.Y(
        "shown:Q",
        title=f"burn rate (log; below {BURN_FLOOR:g} drawn at {BURN_FLOOR:g})",
        scale=y_scale,
        axis=alt.Axis(values=decades, format="~g"),
    )
    color = alt.Color("window:N", scale=colors, legend=alt.Legend(title="window", orient="bottom"))
    lines = (
        alt.Chart(data)
        .mark_line(strokeWidth=1.5, clip=True)
        .encode(
            x=alt.X(
                "time:T",
                title="time (UTC)",
                scale=alt.Scale(type="utc"),
                axis=time_axis(data["time"].min(), data["time"].max()),
            ),
            y=y,
            color=color,
            tooltip=[
                time_tooltip("time", "time (UTC)"),
                "window:N",
                alt.Tooltip("burn_rate:Q", title="burn rate", format=".3g"),
            ],
        )
    )
    layers: list[alt.Chart] = [lines]
    if len(thresholds):
        rule_y = alt.Y("burn_rate:Q", scale=y_scale)
        layers.append(
            alt.Chart(thresholds)
            .mark_rule(strokeDash=[6, 4], strokeWidth=1.2)
            .encode(y=rule_y, color=color, tooltip=["label:N"])
        )
        # beside the plot, right of its frame, where no line runs: at its rule's height,
        # or pushed apart from a neighbour's (``_label_rows``)
        placed = thresholds.assign(
            label_y=_label_rows(
                [
                    _log_px(b, BURN_FLOOR, decades[-1], _BURN_HEIGHT)
                    for b in thresholds["burn_rate"]
                ],
                _BURN_HEIGHT,
            )
        )
        layers.append(
            alt.Chart(placed)
            .mark_text(align="left", baseline="middle", dx=_THRESHOLD_DX, fontSize=10)
            .encode(
                x=alt.value(_BURN_WIDTH),
                y=alt.Y("label_y:Q", scale=None),
                color=color,
                text="label:N",
            )
        )
    return alt.layer(*layers).properties(
        title=alt.Title(
            title, subtitle=[f"1{TIMES} spends the budget exactly over the SLO period"]
        ),
        width=_BURN_WIDTH,
        height=_BURN_HEIGHT,
        description=_burn_description(data, thresholds, colors.domain, title),
    )


def _log_px(value: float, low: float, high: float, height: float) -> float:
    """Where ``value`` sits in px from the top of a log axis from ``low`` to ``high``."""
    share = (math.log10(value) - math.log10(low)) / (math.log10(high) - math.log10(low))
    return height * (1 - min(1.0, max(0.0, share)))


def _label_rows(wanted: list[float], height: float, gap: float = _LABEL_GAP_PX) -> list[float]:
    """Label heights in px, each as near its ``wanted`` height as it can be while labels
    stay ``gap`` apart and inside ``[0, height]``: pushed down past the one above, then,
    when the last ran off the bottom, pushed back up."""
    order = sorted(range(len(wanted)), key=lambda i: wanted[i])
    placed = [0.0] * len(wanted)
    floor = -math.inf
    for i in order:
        placed[i] = max(wanted[i], floor + gap, gap / 2)
        floor = placed[i]
    ceiling = math.inf
    for i in reversed(order):
        placed[i] = min(placed[i], ceiling - gap, height - gap / 2)
        ceiling = placed[i]
    return placed


def _burn_description(
    data: pd.DataFrame, thresholds: pd.DataFrame, windows: list[str], title: str
) -> str:
    peaks = data.groupby("window")["burn_rate"].max()
    highest = ", ".join(
        f"{w} {_times(peaks[w])}{TIMES}" if pd.notna(peaks[w]) else f"{w} no value"
        for w in windows
        if w in peaks.index
    )
    drawn = f" ({'; '.join(thresholds['label'])})" if len(thresholds) else ""
    clamped = int((data["burn_rate"] < BURN_FLOOR).sum())
    gaps = int(data["burn_rate"].isna().sum())
    notes = ""
    if clamped:
        floor = f"{BURN_FLOOR:g}{TIMES}"
        notes += f"; {plural(clamped, 'point')} below {floor} drawn at {floor}"
    if gaps:
        notes += f"; {plural(gaps, 'point')} without a value left out"
    return (
        f"Burn rate of {title} on a log axis, highest per window: {highest}; "
        f"{plural(len(thresholds), 'alert threshold')} drawn{drawn}{notes}."
    )


def replay_timeline(
    firings: pd.DataFrame,
    incidents: pd.DataFrame,
    *,
    start: Moment,
    end: Moment,
    title: str,
) -> alt.LayerChart:
    """Alert replay as a Gantt: one row per SLO, a bar per firing interval coloured by
    severity (a firing still open at ``end`` is drawn to ``end``), and a row of incident
    markers after each service's SLOs, shaped by incident severity, at ``triggered_at``.

    Bars narrower than ``MIN_BAR_PX`` are widened so a 5-minute page shows in 30 days."""
    require_columns(firings, FIRING_COLUMNS, "alert firings")
    require_columns(incidents, INCIDENT_COLUMNS, "incidents")
    lo, hi = window(start, end)
    if firings.empty and incidents.empty:
        raise InputError("alert firings and incidents frames are both empty: nothing to replay")
    for frame, what in ((firings, "alert firings"), (incidents, "incidents")):
        if len(frame) > MAX_ROWS:
            raise InputError(f"{what} frame has {len(frame)} rows; charts draw at most {MAX_ROWS}")
    refuse_unknown(firings["severity"], tuple(SEVERITY_COLORS), "alert firings")
    refuse_unknown(incidents["severity"], SEVERITIES, "incidents")
    bars, widened, outside = _firing_bars(firings, lo, hi)
    marks = incidents.assign(
        triggered_at=utc_column(incidents["triggered_at"], "incidents"),
        service_name=incidents["service_name"].astype(str),
    )
    if marks["triggered_at"].isna().any():
        raise InputError("incidents frame has a row without triggered_at")
    inside = marks["triggered_at"].between(lo, hi)
    outside_incidents = int((~inside).sum())
    marks = marks[inside].assign(row=lambda m: m["service_name"] + " / incidents")
    shown, limit = fit_labels(_replay_rows(bars["slo"], marks["service_name"]), _ROW_LABEL_PX)
    rows = list(shown.values())
    marks["row"] = marks["row"].map(shown)
    x_scale = alt.Scale(type="utc", domain=[epoch_ms(lo), epoch_ms(hi)])
    x = alt.X("draw_start:T", title="time (UTC)", scale=x_scale, axis=time_axis(lo, hi))
    y = alt.Y(
        "row:N",
        sort=rows,
        title=None,
        scale=alt.Scale(domain=rows),
        axis=alt.Axis(labelLimit=limit),
    )
    layers = []
    if len(bars):
        layers.append(
            alt.Chart(bars.assign(row=bars["slo"].map(shown)))
            .mark_bar(opacity=0.85, clip=True)
            .encode(
                x=x,
                x2="draw_end:T",
                y=y,
                yOffset=alt.YOffset("severity:N", sort=list(SEVERITY_COLORS)),
                color=alt.Color(
                    "severity:N",
                    scale=color_scale(SEVERITY_COLORS),
                    legend=alt.Legend(title="alert", orient="bottom"),
                ),
                tooltip=[
                    "slo:N",
                    "severity:N",
                    "rule:N",
                    time_tooltip("start", "start (UTC)"),
                    alt.Tooltip("end_label:N", title="end (UTC)"),
                ],
            )
        )
    if len(marks):
        layers.append(
            alt.Chart(marks[["row", "incident_id", "service_name", "severity", "triggered_at"]])
            .mark_point(filled=True, size=70, color=INK, clip=True)
            .encode(
                x=alt.X("triggered_at:T", scale=x_scale),
                y=y,
                shape=alt.Shape(
                    "severity:N",
                    scale=alt.Scale(
                        domain=list(_INCIDENT_SHAPES), range=list(_INCIDENT_SHAPES.values())
                    ),
                    legend=alt.Legend(title="incident", orient="bottom"),
                ),
                tooltip=[
                    "incident_id:N",
                    "service_name:N",
                    "severity:N",
                    time_tooltip("triggered_at", "triggered (UTC)"),
                ],
            )
        )
    subtitle = [f"{when(lo)} to {when(hi)} UTC"]
    if widened:
        subtitle.append(
            f"{plural(widened, 'firing')} shorter than {MIN_BAR_PX} px widened to stay visible"
        )
    if outside or outside_incidents:
        subtitle.append(
            f"outside the window, not drawn: {plural(outside, 'firing')}, "
            f"{plural(outside_incidents, 'incident')}"
        )
    description = _replay_description(bars, marks, lo, hi, title, outside, outside_incidents)
    return alt.layer(*layers).properties(
        title=alt.Title(title, subtitle=subtitle),
        width=_GANTT_WIDTH,
        height=max(60, _ROW_PX * len(rows)),
        description=description,
    )


def _firing_bars(
    firings: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp
) -> tuple[pd.DataFrame, int, int]:
    """The firings inside [lo, hi] with their drawn extent: open ends drawn to ``hi``, the
    window's edges clipped, short bars widened. Returns (bars, widened, left out)."""
    began = utc_column(firings["start"], "alert firings")
    if began.isna().any():
        raise InputError("alert firings frame has a row without a start")
    ended = utc_column(firings["end"], "alert firings")
    if (ended < began).any():
        raise InputError("alert firings frame has a firing that ends before it starts")
    still = ended.isna()
    stop = ended.fillna(hi)
    inside = (began <= hi) & (stop >= lo)
    bars = pd.DataFrame(
        {
            "slo": firings["slo"].astype(str),
            "severity": firings["severity"].astype(str),
            "rule": firings["rule"].astype(str),
            "start": began,
            "end_label": [
                "still firing" if s else f"{e:{TIME_FORMAT}}"
                for s, e in zip(still, stop, strict=True)
            ],
            "draw_start": began.clip(lower=lo),
            "draw_end": stop.clip(upper=hi),
        }
    )[inside.to_numpy()].reset_index(drop=True)
    shortest = (hi - lo) * (MIN_BAR_PX / _GANTT_WIDTH)
    short = (bars["draw_end"] - bars["draw_start"]) < shortest
    # widen to the right, or to the left at the window's end, so the bar stays inside it
    widened_end = (bars["draw_start"] + shortest).clip(upper=hi)
    bars["draw_start"] = bars["draw_start"].where(~short, widened_end - shortest)
    bars["draw_end"] = bars["draw_end"].where(~short, widened_end)
    return bars, int(short.sum()), int((~inside).sum())


def _replay_rows(slos: pd.Series, incident_services: pd.Series) -> list[str]:
    """Rows grouped by service: its SLOs (labels "service / slo"), then its incidents."""
    by_service: dict[str, list[str]] = {}
    for label in sorted(set(slos)):
        by_service.setdefault(label.split(" / ")[0], []).append(label)
    for service in set(incident_services):
        by_service.setdefault(service, []).append(f"{service} / incidents")
    rows: list[str] = []
    for service in sorted(by_service):
        labels = by_service[service]
        rows += [r for r in labels if r != f"{service} / incidents"]
        rows += [r for r in labels if r == f"{service} / incidents"]
    return rows


def _replay_description(
    bars: pd.DataFrame,
    marks: pd.DataFrame,
    lo: pd.Timestamp,
    hi: pd.Timestamp,
    title: str,
    outside: int,
    outside_incidents: int,
) -> str:
    pages = int((bars["severity"] == "page").sum())
    tickets = int((bars["severity"] == "ticket").sum())
    still = int((bars["end_label"] == "still firing").sum())
    left_out = (
        f"; outside the window, not drawn: {plural(outside, 'firing')}, "
        f"{plural(outside_incidents, 'incident')}"
        if outside or outside_incidents
        else ""
    )
    return (
        f"Alert replay of {title} from {when(lo)} to {when(hi)} UTC: "
        f"{plural(len(bars), 'firing')} on {plural(bars['slo'].nunique(), 'SLO')} "
        f"({plural(pages, 'page')}, {plural(tickets, 'ticket')}, {still} still firing at the end) "
        f"and {plural(len(marks), 'incident')}{left_out}."
    )


def _window_colors(windows: pd.Series, thresholds: pd.DataFrame) -> alt.Scale:
    """Windows shortest first, each coloured by the severity of its rule (one shade each)."""
    names = sorted(set(windows) | set(thresholds["window"]), key=_window_order)
    severity = dict(zip(thresholds["window"], thresholds["severity"], strict=True))
    taken = {kind: 0 for kind in _WINDOW_SHADES}  # shades used so far per severity
    palette = []
    for name in names:
        shades = _WINDOW_SHADES[severity.get(name)]
        palette.append(shades[taken[severity.get(name)] % len(shades)])
        taken[severity.get(name)] += 1
    return alt.Scale(domain=names, range=palette)


def _window_order(label: str) -> tuple[int, float, str]:
    try:
        return (0, duration(label).total_seconds(), label)
    except ValueError:
        return (1, 0.0, label)


def _pct(value: float) -> str:
    return f"{value:.1f} %"


def _times(value: float) -> str:
    """A burn-rate factor for people: 14.4, 6, 0.25, 1,200."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
