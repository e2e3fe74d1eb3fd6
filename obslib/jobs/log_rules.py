"""Load, evaluate, record the log rules: what ``obslib alerts evaluate-logs`` does with the
stored logs (the SLO rules' counterpart is ``jobs.slo_evaluation``).

The rules and their firing live in ``obslib.logs.rules``; this module reads the enabled
log rules and the records they need, replays them up to the evaluation instant and, with
``record``, opens one incident per firing still on at that instant and auto-resolves the
open ones whose firing has ended, in one transaction.

**Never twice for the same firing**: an incident's id is the firing's (``LOG-<firing
start>-<alert>-<template digest>``), so evaluating again during the same firing finds it
stored, whatever its status; and no incident opens for an alert and template while one of
them is still open or acknowledged (a firing that began before the replay's reach keeps the
incident it has).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pandas as pd

from obslib import load
from obslib.ingest import batch
from obslib.jobs.resolve import auto_resolve
from obslib.logs import rules as log_rules
from obslib.values import Moment, plural
from obslib.views import log_replay

SOURCE = "obslib alerts evaluate-logs"  # who opens and closes log-rule incidents
NAME_WIDTH = 100  # alert_incidents.incident_id
# How far before the instant the replay starts: a firing that began earlier is dated at
# the replay's start (and its open incident, if any, is kept).
REACH = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Evaluation:
    """The log rules at ``at``: the replay up to it and the firings still on."""

    at: pd.Timestamp
    replayed: log_rules.LogReplay

    @property
    def active(self) -> pd.DataFrame:
        return self.replayed.active()


# the enabled log rules replayed over (start, end] on the stored logs: the health report's
# replay too, so both read the same rules, records and data start
replay = log_replay.replay_log_rules


def evaluate(at: Moment | None = None, *, url: str | None = None) -> Evaluation:
    """The enabled log rules at ``at`` (default: the data's end), replayed from ``REACH``
    before it."""
    instant = load.data_end(at, url=url, name="at")
    return Evaluation(instant, replay(instant - REACH, instant, url=url))


@dataclass(frozen=True)
class Recorded:
    """What ``record`` stored: the incidents it opened and auto-resolved."""

    opened: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        said = f"{plural(len(self.opened), 'incident')} opened" + _listed(self.opened)
        return said + f"; {len(self.resolved)} auto-resolved" + _listed(self.resolved)


def _listed(ids: list[str]) -> str:
    return f" ({', '.join(ids)})" if ids else ""


def incident_id(firing: dict) -> str:
    """The incident of one firing: ``LOG-<start>-<alert>-<template digest>``, fitted to the
    column (hashed past 100 characters)."""
    digest = hashlib.sha256(str(firing["template"]).encode()).hexdigest()[:8]
    text = f"LOG-{firing['start']:%Y%m%dT%H%M}-{firing['alert_name']}-{digest}"
    if len(text) <= NAME_WIDTH:
        return text
    whole = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{text[: NAME_WIDTH - 13]}~{whole}"


def record(evaluation: Evaluation, *, url: str | None = None) -> Recorded:
    """Open an incident per firing on at the evaluation's instant (not one already stored,
    not while one of the same alert and template is open or acknowledged) and auto-resolve
    the open or acknowledged log-rule incidents whose firing is over. One transaction."""
    at = evaluation.at
    active = evaluation.active.to_dict("records")
    still_open = load.incidents(statuses=["open", "acknowledged"], url=url)
    still_open = still_open[still_open["alert_type"] == log_rules.ALERT_TYPE]
    keys = [(x["alert_name"], _template(x["incident_data"])) for x in still_open.to_dict("records")]
    on = {(f["alert_name"], f["template"]) for f in active}
    paged = set(keys)
    ids = [incident_id(f) for f in active]
    stored = set()
    if active:  # the incidents of these firings, if any were stored (under any status)
        starts = [f["start"] for f in active]
        found = load.incidents(min(starts), max(starts) + log_rules.STEP, url=url)
        stored = set(found["incident_id"])
    new = [
        (i, f)
        for i, f in zip(ids, active, strict=True)
        if i not in stored and (f["alert_name"], f["template"]) not in paged
    ]
    ended = pd.Series([k not in on for k in keys], index=still_open.index, dtype=bool)
    closing = still_open[ended]
    closing = closing[closing["triggered_at"] <= at]
    incidents = pd.DataFrame(
        [
            {
                "incident_id": i,
                "alert_name": f["alert_name"],
                "status": "open",
                "severity": f["severity"],
                "triggered_at": f["start"],
                "incident_data": _incident_data(f),
            }
            for i, f in new
        ]
    )
    with batch(url) as b:
        if new:
            b.incidents(incidents)
        resolved = auto_resolve(b, closing, at, SOURCE)
    return Recorded(opened=[i for i, _ in new], resolved=resolved)


def _template(data) -> str | None:
    if isinstance(data, str):
        import orjson

        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
    return data.get("template") if isinstance(data, dict) else None


def _incident_data(firing: dict) -> dict:
    """What a responder sees first: the rule, the template, a sample and who opened it."""
    return {
        "source": SOURCE,
        "summary": log_rules.describe(firing),
        "rule": firing["kind"],
        "template": firing["template"],
        "sample": firing["sample"],
        "first_record": None
        if pd.isna(firing["first_record"])
        else firing["first_record"].isoformat(),
        "peak": int(firing["peak"]),
    }
