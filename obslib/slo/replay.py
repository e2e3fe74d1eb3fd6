"""The burn-rate alert rules replayed on stored history: when each would have fired.

SLO tools evaluate their rules from now on; a team choosing a rule wants to know what it
would have done on the weeks already stored. ``replay`` runs every SLO's applicable rules
(``slo_rules.alert_rules``) at every bucket end of a window, with a minimum-traffic guard, and
sets each firing interval beside the incidents people actually got: how long after the
first bad minute it fired, and how much earlier or later than the page.

Two rules live here, one function each: the **breach** (a rule's firing intervals, decided
once by ``replay`` and read by everyone through ``breaches``) and the **catch** (``catch``:
which firing, if any, caught an incident).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from obslib import schema
from obslib.schema import require_columns
from obslib.slo import budgets
from obslib.slo import rules as slo_rules
from obslib.slo import status as slo_status
from obslib.values import positive_duration, utc

FIRING_COLUMNS = (
    "service_name",
    "slo_name",
    "severity",
    "long_window",
    "short_window",
    "threshold",
    "start",
    "end",
    "peak_burn",
    "first_bad_minute",
    "delay_from_first_bad",
    "incident_id",
    "delay_vs_incident",
)
# Where an incident's window starts when it has no first bad minute: this long before the
# page (the false-positive window's lead, so the two rules look at the same minutes).
CATCH_LEAD = pd.Timedelta(minutes=15)
BREACH_COLUMNS = (
    "service_name",
    "slo_name",
    "severity",
    "long_window",
    "short_window",
    "threshold",
    "start",
    "end",
)
INCIDENT_COLUMNS = (
    "incident_id",
    "service_name",
    "severity",
    "triggered_at",
    "resolved_at",
    "caught",
    "caught_by_page",
    "slo_name",
    "replay_severity",
    "replay_start",
    "first_bad_minute",
    "delay_vs_incident",
    "window_start",
    "window_end",
)


@dataclass(frozen=True)
class Replay:
    """What the rules would have done in ``[start, end]``.

    ``rules``: ``slo_rules.alert_rules`` plus, per rule, ``firings`` and ``held_back`` (intervals
    the minimum-traffic guard stopped). ``firings``: the breaches, one row per firing
    interval ``[start, end)`` (``end`` NaT when still firing at the window's end) with its
    first bad minute (the first minute with failures of the stretch in which the short
    window kept burning over the factor, up to the firing) and the incident it caught
    (``catch``). ``incidents``: each incident of a service with SLOs, whether a replayed
    rule caught it and how much earlier (negative) or later than its page, with the window
    the catch looked in (``window_start``, ``window_end``).
    """

    start: pd.Timestamp
    end: pd.Timestamp
    min_events: int
    rules: pd.DataFrame
    firings: pd.DataFrame
    incidents: pd.DataFrame

    @property
    def pages(self) -> pd.DataFrame:
        return self.firings[self.firings["severity"] == "page"]

    @property
    def firing_time(self) -> pd.Series:
        """Per rule (aligned with ``rules``): how long it fired in the window, a firing still
        on at the window's end counted up to it (zero for a rule that never fired)."""
        keys = ["service_name", "slo_name", "severity", "long_window"]
        f = self.firings
        if f.empty:
            return pd.Series(pd.Timedelta(0), index=self.rules.index, dtype="timedelta64[ns]")
        spent = (f["end"].fillna(self.end) - f["start"]).groupby([f[k] for k in keys]).sum()
        rules = self.rules.to_dict("records")
        return pd.Series(
            [spent.get(tuple(r[k] for k in keys), pd.Timedelta(0)) for r in rules],
            index=self.rules.index,
            dtype="timedelta64[ns]",
        )


def _run_starts(flags: np.ndarray) -> np.ndarray:
    """For each index where ``flags`` is true, the index its run of trues began at."""
    index = np.arange(len(flags))
    starts = flags & ~np.concatenate([[False], flags[:-1]])
    return np.maximum.accumulate(np.where(starts, index, 0))


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """Index ranges ``[i, j)`` where ``flags`` is true."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def replay(
    counts: pd.DataFrame,
    slos: pd.DataFrame | slo_rules.Objectives,
    incidents: pd.DataFrame,
    start,
    end,
    *,
    bucket: str | pd.Timedelta = "1min",
    min_events: int = budgets.DEFAULT_MIN_EVENTS,
) -> Replay:
    """Evaluate every applicable rule at each bucket end in ``(start, end]``.

    The breach: a rule fires at an instant when both its windows burn faster than its
    factor and the minimum-traffic guard holds: at least ``min_events`` events in the long
    window, and the short window judged on at least ``min_events`` too (when it holds
    fewer, on the first of the doubled windows ``status.guard_ladder`` lists that holds as
    many, up to the long window: ``status.BurnGrid.guarded_sums``; the exported Prometheus
    rules compute the same). A quiet service is thus judged on its recent events rather than
    never, and one whose long window holds fewer than ``min_events`` never fires. A firing
    interval is half-open, ``[start, end)``: ``start`` the first instant it fires, ``end``
    the first it no longer does (NaT while still firing at ``end``).
    ``counts`` (``load.slo_counts`` with the same bucket) must reach back the longest long
    window before ``start`` (3 days for a 30-day SLO), or the first hours see too little
    history. ``incidents`` is ``load.incidents`` (optionally with a ``first_bad_minute``
    column); which firing caught each is ``catch``.
    """
    require_columns(
        incidents,
        ("incident_id", "service_name", "severity", "triggered_at", "resolved_at"),
        "incidents",
    )
    start, end = utc(start, "start"), utc(end, "end")
    step = positive_duration(bucket, "bucket")
    checked = slo_rules.objectives(slos)
    rules = checked.rules.assign(firings=0, held_back=0)  # a copy: the checked rules stay
    firings = []
    for d in checked.definitions:
        mine = checked.applicable(d).index
        if mine.empty:
            continue
        target = budgets.good_target(d)
        lookback = max(rules.loc[mine, "long_window"])
        grid = slo_status.burn_grid(
            budgets.sli_series(counts, d), start, end, step=step, lookback=lookback
        )
        times = grid.times[grid.first :]
        for i in mine:
            rule = rules.loc[i]
            long_good, long_total = grid.sums(rule["long_window"])
            short_good, short_total, _ = grid.guarded_sums(
                rule["short_window"], rule["long_window"], min_events
            )
            long_burn = budgets.burn_rate(long_total - long_good, long_total, target)
            short_burn = budgets.burn_rate(short_total - short_good, short_total, target)
            over = (long_burn > rule["burn_rate"]) & (short_burn > rule["burn_rate"])
            fires = over & (long_total >= min_events)
            runs = _runs(fires)
            rules.loc[i, "firings"] = len(runs)
            rules.loc[i, "held_back"] = sum(not fires[a:b].any() for a, b in _runs(over))
            # where each stretch of the short window burning over the factor began, over the
            # whole grid (the lookback too): a rule that needs its long window to fill fires
            # well after the errors began, and the first bad minute is at that stretch's start
            all_good, all_total, all_lo = replace(grid, first=0).guarded_sums(
                rule["short_window"], rule["long_window"], min_events
            )
            burning = budgets.burn_rate(all_total - all_good, all_total, target) > rule["burn_rate"]
            began = _run_starts(burning)
            for a, b in runs:
                since = began[grid.first + a]  # a: the first firing instant
                first_bad_minute = grid.first_bad(
                    since, rule["short_window"], since=int(all_lo[since])
                )
                firings.append(
                    {
                        "service_name": d["service_name"],
                        "slo_name": d["slo_name"],
                        "severity": rule["severity"],
                        "long_window": rule["long_window"],
                        "short_window": rule["short_window"],
                        "threshold": rule["burn_rate"],
                        "start": times[a],
                        "end": times[b] if b < len(times) else pd.NaT,
                        "peak_burn": float(long_burn[a:b].max()),
                        "first_bad_minute": first_bad_minute,
                        "delay_from_first_bad": times[a] - first_bad_minute,
                    }
                )
    frame = pd.DataFrame(firings, columns=list(FIRING_COLUMNS[:-2]))
    for col in ("start", "end", "first_bad_minute"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    frame = frame.sort_values(["start", "service_name", "slo_name"], kind="stable")
    frame = frame.reset_index(drop=True)
    frame, matched = _match(frame, incidents, checked.frame, start, end)
    return Replay(start, end, int(min_events), rules, frame, matched)


def catch(
    firings: pd.DataFrame,
    incidents: pd.DataFrame,
    end: pd.Timestamp,
    *,
    lead: pd.Timedelta = CATCH_LEAD,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The catch: which replayed firing caught each incident.

    The rule: a rule catches an incident when one of its firings (of an SLO of the
    incident's service) *begins* inside the incident's window, ``[from, to)``: ``from`` is
    the incident's first bad minute (its ``first_bad_minute`` column when the frame has
    one and it is set), else ``lead`` (15 minutes) before the page (``triggered_at``);
    ``to`` is its resolution, or ``end`` (the end of the data) while it is open. A firing
    already active before ``from`` catches nothing new, however long it lasts. An event at
    exactly ``from`` is inside the window; one at exactly ``to`` is not. Lead time = the
    firing's start - the page (negative: the rule fired first). When several firings
    catch it, the earliest page is the catch, else the earliest ticket.

    Returns ``firings`` with ``incident_id`` (the first incident each firing caught) and
    ``delay_vs_incident``, and one row per incident (``INCIDENT_COLUMNS``).
    """
    require_columns(
        incidents, ("incident_id", "service_name", "severity", "triggered_at", "resolved_at"),
        "incidents",
    )  # fmt: skip
    require_columns(firings, ("service_name", "severity", "start"), "firings")
    order = incidents.sort_values("triggered_at", kind="stable")
    incident_ids: list[object] = [None] * len(firings)
    delays: list[object] = [None] * len(firings)
    rows = []
    for inc in order.to_dict("records"):
        bad = inc.get("first_bad_minute")
        opens = bad if bad is not None and pd.notna(bad) else inc["triggered_at"] - lead
        closes = inc["resolved_at"] if pd.notna(inc["resolved_at"]) else end
        hit = (
            (firings["service_name"] == inc["service_name"])
            & (firings["start"] >= opens)
            & (firings["start"] < closes)
        )
        caught = firings[hit].sort_values("start", kind="stable")
        pages = caught[caught["severity"] == "page"]
        for i in caught.index:
            if incident_ids[firings.index.get_loc(i)] is None:
                incident_ids[firings.index.get_loc(i)] = inc["incident_id"]
                delays[firings.index.get_loc(i)] = firings.at[i, "start"] - inc["triggered_at"]
        first = pages.iloc[0] if len(pages) else caught.iloc[0] if len(caught) else None
        rows.append(
            {
                "incident_id": inc["incident_id"],
                "service_name": inc["service_name"],
                "severity": inc["severity"],
                "triggered_at": inc["triggered_at"],
                "resolved_at": inc["resolved_at"],
                "caught": first is not None,
                "caught_by_page": len(pages) > 0,
                "slo_name": None if first is None else first.get("slo_name"),
                "replay_severity": None if first is None else first["severity"],
                "replay_start": pd.NaT if first is None else first["start"],
                "first_bad_minute": (
                    pd.NaT if first is None else first.get("first_bad_minute", pd.NaT)
                ),
                "delay_vs_incident": (
                    None if first is None else first["start"] - inc["triggered_at"]
                ),
                "window_start": opens,
                "window_end": closes,
            }
        )
    firings = firings.assign(
        incident_id=pd.Series(incident_ids, index=firings.index, dtype=object),
        delay_vs_incident=pd.to_timedelta(pd.Series(delays, index=firings.index, dtype=object)),
    )
    matched = pd.DataFrame(rows, columns=list(INCIDENT_COLUMNS))
    for col in (
        "triggered_at", "resolved_at", "replay_start", "first_bad_minute", "window_start",
        "window_end",
    ):  # fmt: skip
        matched[col] = pd.to_datetime(matched[col], utc=True)
    matched["delay_vs_incident"] = pd.to_timedelta(matched["delay_vs_incident"].astype(object))
    return firings, matched


def _match(
    firings: pd.DataFrame,
    incidents: pd.DataFrame,
    slos: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``catch`` for the incidents of services with SLOs triggered in ``[start, end)``."""
    services = set(slos["service_name"])
    mine = incidents[
        incidents["service_name"].isin(services)
        & (incidents["triggered_at"] >= start)
        & (incidents["triggered_at"] < end)
    ]
    return catch(firings, mine, end)


def breaches(
    replayed: Replay,
    service: str | None = None,
    start=None,
    end=None,
) -> pd.DataFrame:
    """The breach intervals of a replay: the firing intervals of any rule (``replay``
    decides them, half-open ``[start, end)``, ``end`` NaT while still firing) of
    ``service`` (None: every service) overlapping ``[start, end)`` (None: the replay's own
    bounds). Columns ``BREACH_COLUMNS``, by start."""
    lo = replayed.start if start is None else utc(start, "start")
    hi = replayed.end if end is None else utc(end, "end")
    f = replayed.firings
    keep = (f["start"] < hi) & (f["end"].isna() | (f["end"] > lo))
    if service is not None:
        keep &= f["service_name"] == service
    out = f.loc[keep, list(BREACH_COLUMNS)]
    return out.sort_values(["start", "service_name", "slo_name"], kind="stable").reset_index(
        drop=True
    )


def worst_page_catch(incidents: pd.DataFrame) -> dict | None:
    """The incident a replayed page caught that matters most (``Replay.incidents`` rows):
    the most severe (``schema.SEVERITIES`` order), the earliest triggered of those; None
    when no page caught any."""
    require_columns(incidents, ("caught_by_page", "severity", "triggered_at"), "incidents")
    caught = incidents[incidents["caught_by_page"].astype(bool)]
    if caught.empty:
        return None
    rank = caught["severity"].map({s: i for i, s in enumerate(schema.SEVERITIES)})
    return caught.assign(_rank=rank).sort_values(["_rank", "triggered_at"]).iloc[0].to_dict()


def notable_incidents(incidents: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``Replay.incidents`` split for reading: the incidents worth a row each, caught ones
    first then by trigger time, and the low-severity ones no rule caught (flapping alerts,
    mostly), which are counted, not listed: thirty rows of them would bury the few that
    matter."""
    require_columns(incidents, ("caught", "severity", "triggered_at"), "incidents")
    quiet = incidents[~incidents["caught"].astype(bool) & (incidents["severity"] == "low")]
    listed = (
        incidents.drop(index=quiet.index)
        .assign(_missed=lambda f: ~f["caught"].astype(bool))
        .sort_values(["_missed", "triggered_at"], kind="stable")
        .drop(columns="_missed")
        .reset_index(drop=True)
    )
    return listed, quiet


# -- a review window: breaches, worst budget, trouble ----------------------------------------


BREACH_SUMMARY_COLUMNS = ("service_name", "slo_name", "breaches", "breaching", "intervals")


def breach_summary(replayed: Replay, start=None, end=None) -> pd.DataFrame:
    """Per SLO, its breaches in ``[start, end)`` (None: the replay's bounds): the firing
    intervals of any of its rules merged where they overlap or touch, clipped to the window.
    Columns: ``service_name``, ``slo_name``, ``breaches`` (merged intervals), ``breaching``
    (their total length) and ``intervals`` (a tuple of ``(start, end)``, by start). Only
    SLOs that breached have a row."""
    lo = replayed.start if start is None else utc(start, "start")
    hi = replayed.end if end is None else utc(end, "end")
    found = breaches(replayed, start=lo, end=hi)
    rows = []
    for (service, name), mine in found.groupby(["service_name", "slo_name"], sort=True):
        merged: list[list[pd.Timestamp]] = []
        ends = mine["end"].fillna(hi).clip(upper=hi)
        for s, e in sorted(zip(mine["start"].clip(lower=lo), ends, strict=True)):
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        spans = tuple((s, e) for s, e in merged)
        total = sum((e - s for s, e in spans), pd.Timedelta(0))
        rows.append((service, name, len(spans), total, spans))
    out = pd.DataFrame(rows, columns=list(BREACH_SUMMARY_COLUMNS))
    out["breaching"] = pd.to_timedelta(out["breaching"])
    return out


def in_trouble(evaluated: pd.DataFrame, replayed: Replay) -> list[str]:
    """The SLOs in trouble over a review window, as ``service/slo`` labels: those violated or
    at risk at its end (``status.in_trouble``, least budget left first), then every other
    SLO that breached in the window (``breach_summary``), the one breaching longest first."""
    now = [budgets.slo_label(d) for d in slo_status.in_trouble(evaluated).to_dict("records")]
    breached = breach_summary(replayed).sort_values(
        ["breaching", "service_name", "slo_name"], ascending=[False, True, True], kind="stable"
    )
    later = [budgets.slo_label(d) for d in breached.to_dict("records")]
    return list(dict.fromkeys([*now, *later]))


def review_rows(
    evaluated: slo_status.Evaluation,
    checked: slo_rules.Objectives,
    hourly: pd.DataFrame,
    replayed: Replay,
    data_start=None,
) -> pd.DataFrame:
    """One row per SLO for a review of ``replayed``'s window: the evaluation at its end
    (``evaluated.slos``) with the SLO's ``latency_threshold_ms`` and ``slo`` label, and what
    holds over the whole window: ``breaches``, ``breaching`` and ``intervals``
    (``breach_summary``), ``worst_budget`` and ``worst_at`` (``status.worst_budget`` over
    ``hourly`` counts) and ``covered`` (``status.period_covered`` from ``data_start``)."""
    keys = ["service_name", "slo_name"]
    rows = evaluated.slos.merge(checked.frame[[*keys, "latency_threshold_ms"]], on=keys, how="left")
    rows["slo"] = rows["service_name"] + "/" + rows["slo_name"]
    rows = rows.merge(breach_summary(replayed), on=keys, how="left")
    rows["breaches"] = rows["breaches"].fillna(0).astype(int)
    rows["breaching"] = pd.to_timedelta(rows["breaching"]).fillna(pd.Timedelta(0))
    rows["intervals"] = [v if isinstance(v, tuple) else () for v in rows["intervals"]]
    by_label = {budgets.slo_label(d): d for d in checked.definitions}
    worst = [
        slo_status.worst_budget(hourly, by_label[label], replayed.start, replayed.end)
        for label in rows["slo"]
    ]
    return rows.assign(
        worst_budget=[w for w, _ in worst],
        worst_at=pd.to_datetime([t for _, t in worst], utc=True),
        covered=[
            slo_status.period_covered(by_label[label], replayed.end, data_start)
            for label in rows["slo"]
        ],
    )
