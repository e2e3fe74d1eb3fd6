"""How the SLO review words its numbers: windows, delays, burn rates, SLIs and targets."""

from __future__ import annotations

import altair as alt
import pandas as pd

from obslib import slo
from obslib.values import duration_text
from obslib.views.notes import Note


def stack(made: list[alt.TopLevelMixin], empty: str) -> Note | alt.TopLevelMixin:
    """Charts one above the other (one alt text for all), or the note when there are none.
    Each keeps its own colours and legend: stacked charts share scales by default, which
    lists every chart's windows in one legend and paints one SLO's tickets in another's
    page colour."""
    if not made:
        return Note(empty)
    if len(made) == 1:
        return made[0]
    return (
        alt.vconcat(*made)
        .resolve_scale(color="independent")
        .properties(description=" ".join(str(c.to_dict().get("description", "")) for c in made))
    )


def relative(delta: pd.Timedelta) -> str:
    """A delay against a page: ``6 min before``, ``2 min after``, ``at the same minute as``."""
    if delta is None or pd.isna(delta):
        return ""
    if delta == pd.Timedelta(0):
        return "at the same time as"
    word = "before" if delta < pd.Timedelta(0) else "after"
    return f"{duration_text(abs(delta))} {word}"


def rule_text(long_window: pd.Timedelta, short_window: pd.Timedelta, factor: float) -> str:
    return f"{slo.window_label(long_window)} & {slo.window_label(short_window)} > {factor:.3g}x"


def burn_text(value: float) -> str:
    if value is None or pd.isna(value):
        return ""
    return "no budget" if value == float("inf") else f"{value:.2f}x"


def sli_text(d: dict) -> str:
    if pd.isna(d["sli"]):
        return "no data"
    if d["slo_type"] == "throughput":
        return f"{d['sli']:.3g}/s"
    if d["slo_type"] == "error_rate":
        return f"{d['sli']:.3f} % errors"
    return f"{d['sli']:.3f} %"


def target_text(d: dict) -> str:
    if d["slo_type"] == "throughput":
        return f">= {d['target_value']:g}/s"
    if d["slo_type"] == "error_rate":
        return f"<= {d['target_value']:g} %"
    if d["slo_type"] == "latency":
        return f"{d['target_value']:g} % <= {d.get('latency_threshold_ms', float('nan')):g} ms"
    return f"{d['target_value']:g} %"


def exhaustion_text(d: dict, end: pd.Timestamp) -> str:
    if d["slo_type"] not in slo.BUDGETED_TYPES or d["compliance_status"] == slo.NO_DATA:
        return ""
    if d["error_budget_remaining"] <= 0:
        return "already spent"
    when = d["projected_exhaustion"]
    if pd.isna(when):
        return "not burning"
    return f"in {duration_text(when - end)}"


def bad_kind(d: dict) -> str:
    if d["slo_type"] == "latency":
        return f"slower than {d['latency_threshold_ms']:g} ms"
    return "failed"


def breach_text(intervals: tuple, shown: int = 2) -> str:
    """When an SLO breached: ``2026-11-14 14:05-15:32``, the first ``shown`` intervals and
    ``+N more``; the end's date is repeated only when it differs."""
    if not isinstance(intervals, tuple) or not intervals:
        return ""
    said = []
    for start, end in intervals[:shown]:
        until = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%Y-%m-%d %H:%M}"
        said.append(f"{start:%Y-%m-%d %H:%M}-{until}")
    more = len(intervals) - shown
    return ", ".join(said) + (f" (+{more} more)" if more > 0 else "")


def coverage_text(covered: float, period: pd.Timedelta) -> str:
    """How much of an SLO's period the data covers, when not all: ``12.6 of 30 days of data``
    ("" when it covers the whole period)."""
    if covered is None or pd.isna(covered) or covered >= 1:
        return ""
    day = pd.Timedelta(days=1)
    if period >= day:
        return f"{covered * (period / day):.3g} of {period / day:.3g} days of data"
    hour = pd.Timedelta(hours=1)
    return f"{covered * (period / hour):.3g} of {period / hour:.3g} hours of data"
