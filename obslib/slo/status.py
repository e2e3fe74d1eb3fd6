"""SLOs at an instant and over time: burn rates on a minute grid, the plan's
``EvaluateSLO`` for every SLO at once, which services lack an SLO and which operations
spend the budget.

The definitions, the budget arithmetic, the compliance rule and the alert rules are in
``obslib.slo``; this module applies them to per-minute counts (``load.slo_counts``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from obslib.errors import UsageError
from obslib.schema import require_columns
from obslib.slo import budgets
from obslib.slo import rules as slo_rules
from obslib.values import positive_duration, utc


def guard_ladder(short: pd.Timedelta, long: pd.Timedelta) -> tuple[pd.Timedelta, ...]:
    """The windows a rule's short window may be read over under the minimum-traffic guard:
    ``short``, ``2 short``, ``4 short``, … (each shorter than ``long``), then ``long``. The
    short window is judged on the first rung holding at least ``min_events`` events; when
    none does, the rule does not fire (its long window, the last rung, holds too few). For
    the Workbook's rules (long = 12 x short) that is 5 rungs: 5m, 10m, 20m, 40m, 1h for the
    1h page, up to 6h, 12h, 1d, 2d, 3d for the 3d ticket.

    This is obslib's rule, not the Workbook's: its section on low-traffic services
    (https://sre.google/workbook/alerting-on-slos/#low-traffic-services-and-error-budget-alerting)
    suggests generating artificial traffic, combining services, changing the service, or
    lowering the SLO / lengthening its window, and prescribes no stretch of the short window.
    A guard is still needed (at one request a minute a 5-minute window's one failure is a
    20 % error ratio), and a service too quiet for ``min_events`` in its short window should
    still be judged on its recent events rather than never. Doubling windows is chosen
    because PromQL expresses it exactly, with a few recording rules per rule
    (``slo.prometheus``: an ``or`` of rungs), so the exported rules fire when the replay
    says they would; judging "the last ``min_events`` events" would need one window per
    minute up to the long window. The judged window holds at most twice the span that
    would hold ``min_events`` events (up to the long window)."""
    rungs = []
    rung = short
    while rung < long:
        rungs.append(rung)
        rung = rung * 2
    return (*rungs, long)


@dataclass(frozen=True)
class BurnGrid:
    """One SLO's events on a dense grid of evaluation instants, for any window's sums.

    ``times[i]`` is the end of bucket ``i`` (an evaluator looking back from there);
    ``good`` and ``total`` are cumulative from before the first bucket (index 0 = none).
    """

    times: pd.DatetimeIndex
    cum_good: np.ndarray
    cum_total: np.ndarray
    step: pd.Timedelta
    first: int  # index of the first instant inside the asked window

    def sums(self, window: pd.Timedelta) -> tuple[np.ndarray, np.ndarray]:
        """Good and total events in the ``window`` before each instant from ``first`` on."""
        k = window / self.step
        if k != int(k) or k < 1:
            step, length = slo_rules.window_label(self.step), slo_rules.window_label(window)
            raise UsageError(f"window {length} is not a whole number of {step}")
        hi = np.arange(self.first, len(self.times)) + 1
        lo = np.maximum(hi - int(k), 0)
        return self.cum_good[hi] - self.cum_good[lo], self.cum_total[hi] - self.cum_total[lo]

    def guarded_sums(
        self, short: pd.Timedelta, long: pd.Timedelta, min_events: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A rule's short window as the minimum-traffic guard reads it: good and total
        events before each instant from ``first`` on, and the cumulative index each window
        starts at. The window is the first rung of ``guard_ladder(short, long)`` that holds
        ``min_events`` events (the long window when none does: the rule cannot fire then,
        its long window holding too few). On a busy service it is the short window itself;
        on a quiet one a window at most twice as long as the one that would hold
        ``min_events`` events, so it is judged on recent events rather than never."""
        ladder = guard_ladder(short, long)
        for rung in ladder:
            self.sums(rung)  # refuses a window that is not a whole number of buckets
        hi = np.arange(self.first, len(self.times)) + 1
        lo = np.maximum(hi - int(ladder[-1] / self.step), 0)
        for rung in reversed(ladder[:-1]):  # the shortest rung holding enough wins
            start = np.maximum(hi - int(rung / self.step), 0)
            enough = self.cum_total[hi] - self.cum_total[start] >= min_events
            lo = np.where(enough, start, lo)
        return self.cum_good[hi] - self.cum_good[lo], self.cum_total[hi] - self.cum_total[lo], lo

    def at_end(self, window: pd.Timedelta) -> tuple[float, float]:
        """Good and total events in the ``window`` before the grid's last instant."""
        good, total = replace(self, first=len(self.times) - 1).sums(window)
        return float(good[-1]), float(total[-1])

    def first_bad(
        self, instant: int, window: pd.Timedelta, *, since: int | None = None
    ) -> pd.Timestamp:
        """The start of the first bucket with bad events in the ``window`` before instant
        index ``instant`` (which must hold some: a burn over a factor there); ``since``: the
        first bucket index of that window when the guard read a longer rung (``guarded_sums``)."""
        bad = np.diff(self.cum_total - self.cum_good)  # bucket i ends at times[i]
        lo = max(instant - int(window / self.step) + 1, 0) if since is None else since
        return self.times[lo + int(np.flatnonzero(bad[lo : instant + 1] > 0)[0])] - self.step


def burn_grid(
    series: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    step: pd.Timedelta,
    lookback: pd.Timedelta,
) -> BurnGrid:
    """``budgets.sli_series`` on every ``step`` from ``start - lookback`` to ``end`` (buckets with
    no spans count zero), so that every window's sum is one subtraction of cumulative sums.
    ``start`` and ``end`` are floored to the step."""
    first_bucket = (start - lookback).floor(step)
    last_bucket = end.floor(step) - step
    buckets = pd.date_range(first_bucket, last_bucket, freq=step)
    dense = series.reindex(buckets, fill_value=0)
    # int64 counts stay exact integers; weighted (sampled) ones are float64 sums
    good, total = dense["good"].to_numpy(), dense["total"].to_numpy()
    return BurnGrid(
        times=buckets + step,
        cum_good=np.concatenate([np.zeros(1, dtype=good.dtype), np.cumsum(good)]),
        cum_total=np.concatenate([np.zeros(1, dtype=total.dtype), np.cumsum(total)]),
        step=step,
        first=int(np.searchsorted(buckets + step, start.floor(step), side="right")),
    )


def burn_rates(
    counts: pd.DataFrame,
    slos: pd.DataFrame | slo_rules.Objectives,
    start,
    end,
    *,
    bucket: str | pd.Timedelta = "1min",
) -> pd.DataFrame:
    """Each budgeted SLO's burn rate over every long window of its rules, at every bucket
    end in ``(start, end]``: ``service_name``, ``slo_name``, ``time``, ``window`` (label),
    ``burn_rate``, ``events``. Long format, one row per instant and window."""
    require_columns(counts, budgets.COUNT_COLUMNS, "SLI counts")
    step = positive_duration(bucket, "bucket")
    start, end = utc(start, "start"), utc(end, "end")
    checked = slo_rules.objectives(slos)
    out = []
    for d in checked.definitions:
        mine = checked.applicable(d)
        if mine.empty:
            continue
        windows = sorted(set(mine["long_window"]))
        grid = burn_grid(
            budgets.sli_series(counts, d), start, end, step=step, lookback=max(windows)
        )
        for w in windows:
            good, total = grid.sums(w)
            out.append(
                pd.DataFrame(
                    {
                        "service_name": d["service_name"],
                        "slo_name": d["slo_name"],
                        "time": grid.times[grid.first :],
                        "window": slo_rules.window_label(w),
                        "burn_rate": budgets.burn_rate(total - good, total, budgets.good_target(d)),
                        "events": total,
                    }
                )
            )
    columns = ["service_name", "slo_name", "time", "window", "burn_rate", "events"]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=columns)


def peak_burn(burn: pd.DataFrame, step: str | pd.Timedelta) -> pd.DataFrame:
    """The highest burn rate of each window per ``step`` (``burn_rates`` rows, one SLO):
    ``window``, ``time`` (the end of the step) and ``burn_rate``, so a chart of a long
    window keeps a line of a few hundred points and no spike is smoothed away."""
    require_columns(burn, ("window", "time", "burn_rate"), "burn rates")
    width = positive_duration(step, "step")
    per_step = burn.assign(time=burn["time"].dt.ceil(width))
    return per_step.groupby(["window", "time"], as_index=False)["burn_rate"].max()


# -- error budget over time ----------------------------------------------------------------


def budget_burndown(
    hourly: pd.DataFrame,
    definition: dict,
    start,
    end,
    *,
    step: str | pd.Timedelta = "1h",
) -> pd.DataFrame:
    """One SLO's error budget left at each hour end in ``(start, end]``: ``budgets.evaluate`` on
    hourly counts (``slo_rules.hourly_counts``, reaching the SLO's period before ``start``), the
    lowest per ``step`` when coarser than an hour (``lowest_budget_per``). Empty for a
    throughput SLO (no budget) and for a window without events.

    The first day of data is left out (the first ``min(period, 1 day)`` of measurements):
    a 30-day window holding an hour of requests swings wildly and says nothing about the
    budget.
    """
    start, end = utc(start, "start"), utc(end, "end")
    if definition["slo_type"] not in budgets.BUDGETED_TYPES:
        return pd.DataFrame(columns=list(budgets.MEASUREMENT_COLUMNS))
    warm_up = min(budgets.period(definition), pd.Timedelta(days=1))
    mine = hourly[hourly["service_name"] == definition["service_name"]]
    measured = budgets.evaluate(mine, pd.DataFrame([definition]), bucket="1h", warm_up=warm_up)
    at = measured["measurement_timestamp"]
    return lowest_budget_per(measured[(at > start) & (at <= end)], step)


def lowest_budget_per(measured: pd.DataFrame, step: str | pd.Timedelta) -> pd.DataFrame:
    """One measurement per ``step`` (hourly measurements in, slots ending at whole steps):
    the one with the least budget left, so the worst moment stays visible when a long
    window is drawn coarser. Hourly steps keep every measurement."""
    width = positive_duration(step, "step")
    if width == pd.Timedelta(hours=1) or measured.empty:
        return measured
    slot = measured["measurement_timestamp"].dt.ceil(width)
    worst = measured.groupby(slot)["error_budget_remaining"].idxmin()
    return measured.loc[worst.sort_index().to_numpy()].reset_index(drop=True)


# -- one SLO at one instant (the plan's EvaluateSLO) -----------------------------------------


EXHAUSTION_HORIZON = 100  # periods: a budget lasting longer than this is "not burning"


@dataclass(frozen=True)
class Evaluation:
    """Every SLO evaluated at one instant.

    ``slos``: one row per SLO (SLI, target, status, error budget total / consumed /
    remaining, burn rate, projected exhaustion, whether it should alert and which rule
    fires). ``rules``: one row per SLO and applicable alert rule, with both windows' burn.
    """

    at: pd.Timestamp
    slos: pd.DataFrame
    rules: pd.DataFrame

    @property
    def alerting(self) -> pd.DataFrame:
        """The SLOs that should alert."""
        return self.slos[self.slos["should_alert"]]


EVALUATION_COLUMNS = (
    "service_name",
    "slo_name",
    "slo_type",
    "at",
    "window",
    "events",
    "bad_events",
    "sli",
    "target_value",
    "compliance_status",
    "budget_total",
    "budget_consumed",
    "budget_consumed_percent",
    "error_budget_remaining",
    "burn_rate",
    "recent_burn_rate",
    "projected_exhaustion",
    "firing",
    "should_alert",
    "alert_threshold_percent",
)
RULE_STATE_COLUMNS = (
    "service_name",
    "slo_name",
    "severity",
    "long_window",
    "short_window",
    "threshold",
    "long_burn",
    "short_burn",
    "long_events",
    "firing",
)


def evaluate_at(
    counts: pd.DataFrame,
    slos: pd.DataFrame | slo_rules.Objectives,
    at,
    *,
    bucket: str | pd.Timedelta = "1min",
    min_events: int = budgets.DEFAULT_MIN_EVENTS,
) -> Evaluation:
    """Evaluate every SLO over its window ending at ``at`` (floored to the bucket).

    - ``sli``: percent good (error rate: percent bad; throughput: events per second);
    - ``budget_total``: bad events the window may hold (budget share x events);
      ``budget_consumed``: bad events it holds; ``budget_consumed_percent`` of the budget;
    - ``error_budget_remaining``: percent left (``budget_remaining_percent``), and the
      status by the one rule (``compliance_status``), ``no_data`` without events;
    - ``burn_rate`` over the window and ``recent_burn_rate`` over the last hour, from which
      ``projected_exhaustion``: when the budget left is gone at the recent rate (NaT when
      already spent or not burning);
    - ``firing``: the most severe alert rule whose two windows both exceed its factor, with
      at least ``min_events`` in the long window, the short window read on the first rung
      of ``guard_ladder`` holding as many (``BurnGrid.guarded_sums``) ("" for none);
    - ``should_alert``: at risk, violated, or a rule firing.
    """
    require_columns(counts, budgets.COUNT_COLUMNS, "SLI counts")
    step = positive_duration(bucket, "bucket")
    at = utc(at, "at").floor(step)
    checked = slo_rules.objectives(slos)
    rows, states = [], []
    for d in checked.definitions:
        length = budgets.period(d)
        mine = checked.applicable(d)
        lookback = max([length, budgets.RECENT_BURN, *mine["long_window"]])
        grid = burn_grid(budgets.sli_series(counts, d), at, at, step=step, lookback=lookback)
        sums = grid.at_end
        good, total = sums(length)
        alert_at = budgets.alert_threshold(d)
        actual, remaining, status = budgets.judge(
            [good], [total], length.total_seconds(), d, alert_at
        )
        budgeted = d["slo_type"] in budgets.BUDGETED_TYPES
        target = budgets.good_target(d)
        share = float(budgets.error_budget(target)) if budgeted else np.nan
        burn = float(budgets.burn_rate([total - good], [total], target)[0]) if budgeted else np.nan
        recent_good, recent_total = sums(budgets.RECENT_BURN)
        recent = (
            float(budgets.burn_rate([recent_total - recent_good], [recent_total], target)[0])
            if budgeted
            else np.nan
        )
        left = float(remaining[0]) if status[0] != budgets.NO_DATA else np.nan  # nothing to judge
        exhaustion = pd.NaT
        if budgeted and left > 0 and recent > 0 and np.isfinite(recent):
            seconds = length.total_seconds() * (left / 100.0) / recent
            if seconds <= EXHAUSTION_HORIZON * length.total_seconds():  # else: not in sight
                exhaustion = at + pd.Timedelta(seconds=seconds)
        firing = ""
        for rule in mine.to_dict("records"):
            long_good, long_total = sums(rule["long_window"])
            short_good, short_total, _ = replace(grid, first=len(grid.times) - 1).guarded_sums(
                rule["short_window"], rule["long_window"], min_events
            )
            short_good, short_total = float(short_good[-1]), float(short_total[-1])
            long_burn = float(budgets.burn_rate([long_total - long_good], [long_total], target)[0])
            short_burn = float(
                budgets.burn_rate([short_total - short_good], [short_total], target)[0]
            )
            fires = bool(
                long_burn > rule["burn_rate"]
                and short_burn > rule["burn_rate"]
                and long_total >= min_events
            )
            if fires and firing != "page":
                firing = rule["severity"]
            states.append(
                (
                    d["service_name"],
                    d["slo_name"],
                    rule["severity"],
                    rule["long_window"],
                    rule["short_window"],
                    rule["burn_rate"],
                    long_burn,
                    short_burn,
                    int(long_total),
                    fires,
                )
            )
        rows.append(
            (
                d["service_name"],
                d["slo_name"],
                d["slo_type"],
                at,
                length,
                int(total),
                int(total - good),
                float(actual[0]),
                float(d["target_value"]),
                str(status[0]),
                share * total if budgeted else np.nan,
                float(total - good) if budgeted else np.nan,
                100.0 - left if budgeted else np.nan,
                left,
                burn,
                recent,
                exhaustion,
                firing,
                bool(status[0] in ("at_risk", "violated") or firing != ""),
                alert_at,
            )
        )
    frame = pd.DataFrame(rows, columns=list(EVALUATION_COLUMNS))
    frame["projected_exhaustion"] = pd.to_datetime(frame["projected_exhaustion"], utc=True)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame["window"] = pd.to_timedelta(frame["window"])  # typed even with no SLO at all
    return Evaluation(
        at=at, slos=frame, rules=pd.DataFrame(states, columns=list(RULE_STATE_COLUMNS))
    )


TROUBLE = ("violated", "at_risk")  # the statuses of an SLO in trouble
STATUS_ORDER = ("violated", "at_risk", "compliant", budgets.NO_DATA)  # worst first


def in_trouble(evaluated: pd.DataFrame) -> pd.DataFrame:
    """The SLOs of an evaluation (``Evaluation.slos``) that are violated or at risk, least
    error budget left first (ties keep the evaluation's order)."""
    require_columns(evaluated, ("compliance_status", "error_budget_remaining"), "evaluation")
    trouble = evaluated[evaluated["compliance_status"].isin(TROUBLE)]
    return trouble.sort_values("error_budget_remaining", kind="stable")


def status_counts(evaluated: pd.DataFrame) -> dict[str, int]:
    """How many SLOs of an evaluation have each status, worst first, statuses no SLO has
    left out: ``{"violated": 2, "compliant": 6}``."""
    require_columns(evaluated, ("compliance_status",), "evaluation")
    counts = evaluated["compliance_status"].value_counts()
    return {s: int(counts[s]) for s in STATUS_ORDER if counts.get(s, 0)}


# -- what is measured, what is missing -------------------------------------------------------


def coverage(
    services: pd.DataFrame, slos: pd.DataFrame, critical: Iterable[str] = ()
) -> pd.DataFrame:
    """Which services seen in traces have SLOs, and which critical services lack one.

    ``services``: ``service_name`` and ``spans`` (``load.services``). One row per service
    seen or critical: ``service_name``, ``spans`` (0 when not seen), ``slos`` (enabled
    SLOs), ``critical``, ``covered``; uncovered critical services first.
    """
    require_columns(services, ("service_name", "spans"), "services")
    require_columns(slos, ("service_name",), "SLO definitions")
    enabled = slos[slos["enabled"].fillna(True).astype(bool)] if "enabled" in slos else slos
    per_service = enabled.groupby("service_name").size()
    seen = services.set_index("service_name")["spans"]
    critical = list(dict.fromkeys(critical))
    names = list(dict.fromkeys([*seen.index, *critical]))
    out = pd.DataFrame(
        {
            "service_name": names,
            # sampled spans count 1 / p (load.services): an estimate, rounded, not truncated
            "spans": [round(float(seen.get(n, 0))) for n in names],
            "slos": [int(per_service.get(n, 0)) for n in names],
            "critical": [n in critical for n in names],
        }
    )
    out["covered"] = out["slos"] > 0
    order = (~out["covered"] & out["critical"]).astype(int) * 2 + (~out["covered"]).astype(int)
    return (
        out.assign(_order=-order)
        .sort_values(["_order", "service_name"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def contributors(operations: pd.DataFrame, definition: dict, *, top: int = 5) -> pd.DataFrame:
    """The operations behind an SLO's bad events: for availability and error rate the failed
    server spans, for latency the slow ones (over the SLO's threshold).

    ``operations``: per operation ``service_name``, ``operation_name``, ``total``, ``ok``,
    ``fast`` (``load.operation_counts`` at the SLO's threshold). Returns the ``top``
    operations with bad events: ``operation_name``, ``total``, ``bad``, ``bad_percent`` (of
    the operation's events) and ``share`` (percent of the SLO's bad events), most first.
    """
    require_columns(
        operations, ("service_name", "operation_name", "total", "ok", "fast"), "operations"
    )
    mine = operations[operations["service_name"] == definition["service_name"]]
    good = mine["fast"] if definition["slo_type"] == "latency" else mine["ok"]
    bad = mine["total"] - good
    out = pd.DataFrame(
        {
            "operation_name": mine["operation_name"].to_numpy(),
            "total": pd.to_numeric(mine["total"]).to_numpy(),
            "bad": pd.to_numeric(bad).to_numpy(),
        }
    )
    out = out[out["bad"] > 0]
    all_bad = out["bad"].sum()
    out["bad_percent"] = 100.0 * out["bad"] / out["total"]
    out["share"] = 100.0 * out["bad"] / all_bad if all_bad else 0.0
    return (
        out.sort_values(["bad", "operation_name"], ascending=[False, True], kind="stable")
        .head(top)
        .reset_index(drop=True)
    )


# -- a review window: worst budget, partial history ------------------------------------------


def worst_budget(hourly: pd.DataFrame, definition: dict, start, end) -> tuple[float, object]:
    """The least error budget left of one SLO at any hour end in ``(start, end]``, and when
    (``budget_burndown``'s measurements: the first day of data is left out); ``(nan, NaT)``
    without a measurement (a throughput SLO, or no events)."""
    measured = budget_burndown(hourly, definition, start, end)
    if measured.empty:
        return float("nan"), pd.NaT
    worst = measured.loc[measured["error_budget_remaining"].idxmin()]
    return float(worst["error_budget_remaining"]), worst["measurement_timestamp"]


def period_covered(definition: dict, at, data_start) -> float:
    """The share of an SLO's period before ``at`` that the stored data covers (1.0 when the
    data starts before the period does; 0 when it starts at or after ``at``). A budget
    judged at ``at`` is judged on that share of its period: "12.6 of 30 days of data"."""
    at = utc(at, "at")
    if data_start is None or pd.isna(data_start):
        return 1.0
    length = budgets.period(definition)
    covered = at - max(utc(data_start, "data_start"), at - length)
    return float(min(1.0, max(0.0, covered / length)))
