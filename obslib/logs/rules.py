"""Log rules: alert definitions of type ``log`` that fire on message templates
(``templates.template_of``), replayed on stored logs like the burn-rate rules.

Two kinds, each written in its definition's ``condition_expression``:

* **template count** (``metric_name`` ``log_template_count``):
  ``template "T" at level >= error more than N times in 10m`` fires at an instant when the
  service logged template ``T`` at that level or above more than ``N`` times in the window
  ``[instant - 10m, instant)``. ``any template at level >= error more than N times in 10m``
  does the same for every template of the service, each on its own.
* **new template** (``metric_name`` ``log_new_template``):
  ``new template at level >= error in 10m, not seen in the previous 7d`` fires at an
  instant, for a template of the service at that level or above, when the template was
  logged in ``[instant - 10m, instant)`` and not once in the 7 days before that window,
  ``[instant - 10m - 7d, instant - 10m)``. It judges only instants with those 7 days of
  history stored (``data_start`` at or before ``instant - 10m - 7d``): on the first week
  of data every template would be "new". A new template's firing so lasts from its first
  record until the window has passed it (10 minutes), however often it repeats.

**The firing, the one rule** (``replay``): each rule is evaluated at every ``STEP`` (one
minute) end in ``(start, end]`` on records counted per minute (a record at 14:05:30 counts
in the minute from 14:05); a firing is half-open, ``[start, end)``: ``start`` the first
instant the rule fires for a template, ``end`` the first it no longer does (NaT while still
firing at the replay's end). ``obslib alerts evaluate-logs`` opens an incident per firing
still on at its instant (``jobs.log_rules``); the health report replays the rules on its
window (``views.log_replay``) and judges every firing by the same false-positive and catch
rules as every other alert (``alerts.judge_log_rules``).

The grammar follows the issue's words rather than LogQL's (``count_over_time({...}[10m]) >
N``) because a template is not a label in our store: it is computed from the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from obslib.errors import InputError
from obslib.logs import templates as tpl
from obslib.schema import LOG_LEVELS, require_columns
from obslib.values import positive_duration, utc

ALERT_TYPE = "log"
COUNT = "log_template_count"  # metric_name of a template-count rule
NEW = "log_new_template"  # metric_name of a new-template rule
KINDS = (COUNT, NEW)
STEP = pd.Timedelta(minutes=1)
UNSEEN = pd.Timedelta(days=7)  # what "new" looks back over by default
FIRING_COLUMNS = (
    "alert_name",
    "service_name",
    "kind",
    "severity",
    "template",
    "start",
    "end",
    "peak",
    "first_record",
    "sample",
)

_LEVEL = r"at\s+level\s*>=\s*(?P<level>\w+)"
_COUNT_RULE = re.compile(
    r"^\s*(?:template\s+\"(?P<template>(?:[^\"\\]|\\.)*)\"|(?P<any>any)\s+template)\s+"
    + _LEVEL
    + r"\s+more\s+than\s+(?P<n>\d+)\s+times?\s+in\s+(?P<window>\w+)\s*$",
    re.IGNORECASE,
)
_NEW_RULE = re.compile(
    r"^\s*new\s+template\s+"
    + _LEVEL
    + r"\s+in\s+(?P<window>\w+)\s*,?\s*not\s+seen\s+in\s+the\s+previous\s+(?P<unseen>\w+)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class LogRule:
    """One log rule, parsed from an alert definition (``rule_of``)."""

    alert_name: str
    service_name: str
    kind: str  # COUNT or NEW
    level: str
    window: pd.Timedelta
    severity: str = "high"
    template: str | None = None  # COUNT: the template; None: any template
    threshold: int = 0  # COUNT: fires above this many records
    unseen: pd.Timedelta = UNSEEN  # NEW: how far back a template must be absent

    @property
    def lookback(self) -> pd.Timedelta:
        """How far before an instant its verdict reads records."""
        return self.window + (self.unseen if self.kind == NEW else pd.Timedelta(0))

    def text(self) -> str:
        """The rule in words (its ``condition_expression``)."""
        return expression(self)


def expression(rule: LogRule) -> str:
    """The ``condition_expression`` that parses back to ``rule``."""
    window = _duration_word(rule.window)
    if rule.kind == NEW:
        return (
            f"new template at level >= {rule.level} in {window},"
            f" not seen in the previous {_duration_word(rule.unseen)}"
        )
    which = (
        "any template"
        if rule.template is None
        else '"{}"'.format(rule.template.replace("\\", "\\\\").replace('"', '\\"'))
    )
    which = which if rule.template is None else f"template {which}"
    return f"{which} at level >= {rule.level} more than {rule.threshold} times in {window}"


def _duration_word(delta: pd.Timedelta) -> str:
    minutes = int(delta / pd.Timedelta(minutes=1))
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def parse(
    text: str, *, alert_name: str = "", service_name: str = "", severity: str = "high"
) -> LogRule:
    """A ``condition_expression`` of either kind as a ``LogRule``; InputError (naming the
    alert) for anything else, a level not in ``schema.LOG_LEVELS``, or a window that is
    not a whole number of minutes."""
    where = f"log rule {alert_name!r}" if alert_name else "log rule"
    said = str(text)
    if m := _COUNT_RULE.match(said):
        template = None if m["any"] else re.sub(r"\\(.)", r"\1", m["template"])
        kind, threshold, unseen = COUNT, int(m["n"]), UNSEEN
    elif m := _NEW_RULE.match(said):
        template, kind, threshold = None, NEW, 0
        unseen = _window(m["unseen"], where)
    else:
        raise InputError(
            f'{where}: {said[:80]!r} is not \'template "T" at level >= L more than N times'
            " in W', 'any template at level >= L more than N times in W' or 'new template at"
            " level >= L in W, not seen in the previous D'"
        )
    level = m["level"].lower()
    if level not in LOG_LEVELS:
        raise InputError(f"{where}: level {level!r} is not one of {', '.join(LOG_LEVELS)}")
    return LogRule(
        alert_name=str(alert_name),
        service_name=str(service_name),
        kind=kind,
        level=level,
        window=_window(m["window"], where),
        severity=str(severity),
        template=template,
        threshold=threshold,
        unseen=unseen,
    )


def _window(text: str, where: str) -> pd.Timedelta:
    try:
        delta = positive_duration(text, "window")
    except Exception as err:
        raise InputError(f"{where}: {text!r} is not a duration such as 10m or 7d") from err
    if delta % STEP != pd.Timedelta(0):
        raise InputError(f"{where}: {text!r} is not a whole number of minutes")
    return delta


def rules_of(definitions: pd.DataFrame) -> list[LogRule]:
    """The enabled log rules among alert definitions (``load.alert_definitions``)."""
    require_columns(
        definitions,
        ("alert_name", "service_name", "alert_type", "condition_expression", "severity"),
        "alert definitions",
    )
    mine = definitions[definitions["alert_type"] == ALERT_TYPE]
    if "enabled" in mine.columns:
        mine = mine[mine["enabled"].fillna(True).astype(bool)]
    return [
        parse(
            d["condition_expression"],
            alert_name=d["alert_name"],
            service_name=d["service_name"],
            severity=d["severity"],
        )
        for d in mine.to_dict("records")
    ]


def reads(rules: list[LogRule], start, end) -> tuple[pd.Timestamp, pd.Timestamp, str]:
    """What a replay of ``rules`` over ``(start, end]`` reads: records from the longest
    lookback before ``start`` to ``end``, at the least severe level any rule asks for."""
    lo = utc(start, "start") - max((r.lookback for r in rules), default=pd.Timedelta(0))
    level = min((r.level for r in rules), key=LOG_LEVELS.index, default="error")
    return lo, utc(end, "end"), level


@dataclass(frozen=True)
class LogReplay:
    """What the rules would have done in ``(start, end]``: one row per firing
    (``FIRING_COLUMNS``: the rule, the template, ``[start, end)``, the ``peak`` count in a
    window, the ``first_record`` of that template in the firing's first window and a
    ``sample`` message)."""

    start: pd.Timestamp
    end: pd.Timestamp
    rules: tuple[LogRule, ...]
    firings: pd.DataFrame

    def active(self) -> pd.DataFrame:
        """The firings still on at the replay's end."""
        return self.firings[self.firings["end"].isna()].reset_index(drop=True)


def replay(
    logs: pd.DataFrame,
    rules: list[LogRule],
    start,
    end,
    *,
    data_start=None,
) -> LogReplay:
    """Every rule evaluated at each minute end in ``(start, end]`` on ``logs`` (records from
    ``reads``' start; a record outside is ignored); ``data_start`` is the first stored log
    record (``load.log_range``, not the first span), before which a new-template rule cannot
    judge (None: the first record given)."""
    lo_t, hi_t = utc(start, "start").floor(STEP), utc(end, "end").floor(STEP)
    if hi_t <= lo_t or not rules:
        return LogReplay(lo_t, hi_t, tuple(rules), _no_firings())
    require_columns(logs, ("timestamp", "level", "service_name", "message"), "logs")
    read_from, _, level = reads(rules, lo_t, hi_t)
    base = lo_t - (lo_t - read_from).ceil(STEP)  # the grid's first minute
    n = int((hi_t - base) / STEP)  # minutes [base, hi_t)
    times = base + STEP * np.arange(n + 1)  # instants: ends of minutes
    first = int((lo_t - base) / STEP) + 1  # the index of the first instant judged
    picked = tpl.at_least(logs, level)
    picked = picked[(picked["timestamp"] >= base) & (picked["timestamp"] < hi_t)]
    if data_start is None:
        data_start = logs["timestamp"].min() if len(logs) else hi_t
    framed = tpl.with_templates(picked).assign(
        _minute=((picked["timestamp"] - base) // STEP).astype("int64"),
        _rank=picked["level"].map({x: i for i, x in enumerate(LOG_LEVELS)}),
    )
    rows = []
    for rule in rules:
        mine = framed[
            (framed["service_name"].astype(str) == rule.service_name)
            & (framed["_rank"] >= LOG_LEVELS.index(rule.level))
        ]
        if rule.template is not None:
            mine = mine[mine["template"] == rule.template]
        for template, same in mine.groupby("template", sort=True):
            per_minute = np.bincount(same["_minute"].to_numpy(), minlength=n)
            total = np.concatenate([[0], np.cumsum(per_minute)])  # total[i]: minutes < i
            idx = np.arange(n + 1)
            w = int(rule.window / STEP)
            recent = total[idx] - total[np.maximum(idx - w, 0)]
            if rule.kind == COUNT:
                fires = recent > rule.threshold
            else:
                u = int(rule.unseen / STEP)
                before = total[np.maximum(idx - w, 0)] - total[np.maximum(idx - w - u, 0)]
                judged = (times - rule.window - rule.unseen) >= pd.Timestamp(data_start)
                fires = (recent > 0) & (before == 0) & judged
            fires[:first] = False
            rows += _firings(rule, str(template), same, fires, recent, times)
    frame = pd.DataFrame(rows, columns=list(FIRING_COLUMNS)) if rows else _no_firings()
    for col in ("start", "end", "first_record"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    frame = frame.sort_values(["start", "alert_name", "template"], kind="stable")
    return LogReplay(lo_t, hi_t, tuple(rules), frame.reset_index(drop=True))


def _firings(rule, template, records, fires, recent, times) -> list[dict]:
    edges = np.diff(np.concatenate([[0], fires.astype(np.int8), [0]]))
    out = []
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        opened = times[a]
        window = records[(records["timestamp"] >= opened - rule.window)]
        window = window[window["timestamp"] < opened].sort_values("timestamp", kind="stable")
        out.append(
            {
                "alert_name": rule.alert_name,
                "service_name": rule.service_name,
                "kind": rule.kind,
                "severity": rule.severity,
                "template": template,
                "start": opened,
                "end": times[b] if b < len(times) else pd.NaT,
                "peak": int(recent[a:b].max()),
                "first_record": window["timestamp"].iloc[0] if len(window) else pd.NaT,
                "sample": window["message"].iloc[0] if len(window) else "",
            }
        )
    return out


def _no_firings() -> pd.DataFrame:
    frame = pd.DataFrame(columns=list(FIRING_COLUMNS))
    for col in ("start", "end", "first_record"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def describe(firing: dict) -> str:
    """One sentence for a firing: what fired, for which template, since when."""
    what = (
        "new error template"
        if firing["kind"] == NEW
        else f"template seen {firing['peak']:,} times in a window"
    )
    return (
        f'{firing["service_name"]}: {what} "{firing["template"]}"'
        f" since {firing['start']:%Y-%m-%d %H:%M} UTC"
    )


__all__ = [
    "ALERT_TYPE",
    "COUNT",
    "FIRING_COLUMNS",
    "KINDS",
    "NEW",
    "STEP",
    "UNSEEN",
    "LogReplay",
    "LogRule",
    "describe",
    "expression",
    "parse",
    "reads",
    "replay",
    "rules_of",
]
