"""SLO arithmetic (Google SRE Workbook): SLIs from span counts, error budgets, compliance,
burn rates and the multiwindow alert rules, and one SLO's evaluation at an instant.

Pure functions on numbers and frames; no I/O. The counts come from ``load.slo_counts``
(server spans per service and time bucket, aggregated in PostgreSQL), so everything here
grows with buckets, not spans.

What each SLO type counts (events are the service's server spans):

- ``availability``: good = status ok; the SLI is the good share in percent.
- ``error_rate``: the same events; the SLI is the *error* share in percent and the target is
  the most errors allowed (target 0.1 means at most 0.1 % bad), so its budget is the target.
- ``latency``: good = no slower than the SLO's ``latency_threshold_ms``.
- ``throughput``: the SLI is events per second over the window, compliant when at least the
  target; there is no error budget, so no burn rate and no alert rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from obslib import schema
from obslib.errors import InputError, UsageError
from obslib.schema import require_columns
from obslib.values import duration, utc

DEFAULT_ALERT_THRESHOLD_PERCENT = 90.0  # the plan's default for alert_threshold_percent

# Multiwindow, multi-burn-rate alerts for a 30-day SLO (SRE Workbook, ch. 5): page when 2 %
# of the budget burns in 1 h (14.4x) or 5 % in 6 h (6x); ticket for 10 % in 1 d (3x) or
# 10 % in 3 d (1x). The short window (1/12 of the long) lets an alert reset quickly.
_WINDOWS_30D = (
    # severity, long window, short window, budget share consumed
    ("page", "1h", "5min", 0.02),
    ("page", "6h", "30min", 0.05),
    ("ticket", "1D", "2h", 0.10),
    ("ticket", "3D", "6h", 0.10),
)


def burn_rate_windows(period: str = "30d") -> pd.DataFrame:
    """The alerting windows scaled to an SLO period: burn = budget share x period / long window.

    Columns: ``severity``, ``long_window``, ``short_window`` (Timedeltas), ``burn_rate``,
    ``budget_share``. For 30 days the burn rates are 14.4, 6, 3 and 1.
    """
    try:
        length = duration(period)
    except ValueError as err:
        raise UsageError(f"SLO period is not a duration: {period!r}") from err
    if length <= pd.Timedelta(0):
        raise UsageError(f"SLO period must be positive, not {period!r}")
    rows = []
    for severity, long_w, short_w, share in _WINDOWS_30D:
        long_td, short_td = pd.Timedelta(long_w), pd.Timedelta(short_w)
        rows.append((severity, long_td, short_td, share * (length / long_td), share))
    return pd.DataFrame(
        rows, columns=["severity", "long_window", "short_window", "burn_rate", "budget_share"]
    )


def error_budget(target_percent: float | np.ndarray) -> float | np.ndarray:
    """The share of events allowed to be bad: 1 - target (99.9 % -> 0.001)."""
    return 1.0 - np.asarray(target_percent, dtype=float) / 100.0


def budget_remaining_percent(good, total, target_percent) -> np.ndarray:
    """Percent of the error budget left: 100 untouched, 0 spent, negative overspent.

    With no events nothing was spent (100). A target of 100 % has no budget at all: one bad
    event overspends it without bound (-inf).
    """
    good, total = np.asarray(good, dtype=float), np.asarray(total, dtype=float)
    bad_share = np.divide(total - good, total, out=np.zeros_like(total), where=total > 0)
    budget = np.broadcast_to(error_budget(target_percent), bad_share.shape)
    spent = np.divide(bad_share, budget, out=np.where(bad_share > 0, np.inf, 0.0), where=budget > 0)
    # rounded to 1e-9 %: 99.9 % is not exact in binary, and a budget spent exactly must read
    # 0, not -1e-11 (which would flip the status to violated)
    return np.round(100.0 * (1.0 - spent), 9)


def burn_rate(bad, total, target_percent) -> np.ndarray:
    """How fast the budget burns: the bad share / the budget share (1 = exactly on budget).

    No events burn nothing (0); a zero budget burns without bound (inf) on any bad event.
    Rounded to 1e-9, as the budget is: 144 bad of 10,000 at 99.9 % is a burn of exactly
    14.4, which must not exceed a 14.4x rule (binary 99.9 % makes it 14.399999999999999).
    """
    bad, total = np.asarray(bad, dtype=float), np.asarray(total, dtype=float)
    bad_share = np.divide(bad, total, out=np.zeros_like(total), where=total > 0)
    budget = np.broadcast_to(error_budget(target_percent), bad_share.shape)
    rate = np.divide(bad_share, budget, out=np.where(bad_share > 0, np.inf, 0.0), where=budget > 0)
    return np.round(rate, 9)


def compliance_status(
    remaining_percent, alert_threshold_percent=DEFAULT_ALERT_THRESHOLD_PERCENT
) -> np.ndarray:
    """The one rule for compliance, used everywhere obslib states it.

    ``violated``: the budget is overspent (the SLI is below target over the window);
    ``at_risk``: more of the budget is spent than the SLO's alert threshold (default 90 %);
    ``compliant`` otherwise.
    """
    remaining = np.asarray(remaining_percent, dtype=float)
    spent = 100.0 - remaining
    return np.where(
        remaining < 0,
        "violated",
        np.where(spent >= np.asarray(alert_threshold_percent, dtype=float), "at_risk", "compliant"),
    )


NO_DATA = "no_data"  # the status of an SLO with no events in its window: nothing to judge
BUDGETED_TYPES = ("availability", "latency", "error_rate")  # the types with an error budget
RECENT_BURN = pd.Timedelta(hours=1)  # the burn rate that projects when the budget runs out
# No burn-rate alert on fewer events than this in the long window: at 3 requests an hour one
# failure is a 33 % error rate, which says nothing about the budget.
DEFAULT_MIN_EVENTS = 10

_COUNT_COLUMNS = ("service_name", "bucket", "total", "ok", "fast", "threshold")
_SLO_COLUMNS = ("service_name", "slo_name", "slo_type", "target_value", "measurement_window_hours")


def slo_label(definition: dict) -> str:
    """How messages and tables name an SLO: ``service/slo``."""
    return f"{definition['service_name']}/{definition['slo_name']}"


def period(definition: dict) -> pd.Timedelta:
    """An SLO's measurement window (its period for budgets and burn-rate rules)."""
    return pd.Timedelta(hours=float(definition["measurement_window_hours"]))


def good_target(definition: dict) -> float:
    """The share of good events the SLO asks for, in percent: an error-rate SLO's target is
    the most bad events allowed, so its good target is 100 minus it."""
    target = float(definition["target_value"])
    return 100.0 - target if definition["slo_type"] == "error_rate" else target


def check_definitions(slos: pd.DataFrame) -> list[dict]:
    """The SLO rows as dicts, refused with the SLO named when the maths cannot use them."""
    require_columns(slos, _SLO_COLUMNS, "SLO definitions")
    rows = slos.to_dict("records")
    for d in rows:
        if d["slo_type"] not in schema.SLO_TYPES:
            raise InputError(f"SLO {slo_label(d)}: unknown slo_type {d['slo_type']!r}")
        threshold = d.get("latency_threshold_ms")
        if d["slo_type"] == "latency" and (threshold is None or pd.isna(threshold)):
            raise InputError(
                f"SLO {slo_label(d)}: a latency SLO needs latency_threshold_ms"
                " (the duration a request must not exceed to count as good)"
            )
        hours = d["measurement_window_hours"]
        if hours is None or pd.isna(hours) or float(hours) <= 0:
            raise InputError(f"SLO {slo_label(d)}: measurement_window_hours must be positive")
    return rows


def sli_series(counts: pd.DataFrame, definition: dict) -> pd.DataFrame:
    """One SLO's events per bucket: ``total`` and ``good``, indexed by bucket start.

    A latency SLO's good events are the ``fast`` ones counted at its own threshold; every
    other type's are the ``ok`` ones.
    """
    threshold = definition.get("latency_threshold_ms")
    if definition["slo_type"] != "latency" or threshold is None or pd.isna(threshold):
        same = counts["threshold"].isna()
    else:
        same = counts["threshold"] == threshold
    mine = counts[(counts["service_name"] == definition["service_name"]) & same]
    good = "fast" if definition["slo_type"] == "latency" else "ok"
    out = pd.DataFrame(
        {
            "total": mine["total"].to_numpy(dtype="int64"),
            "good": mine[good].to_numpy(dtype="int64"),
        },
        index=pd.DatetimeIndex(mine["bucket"], name="bucket"),
    )
    return out.groupby(level=0).sum().sort_index()


def _judge(good, total, seconds: float, definition: dict, alert_at: float):
    """The SLI, budget left and status of windows holding ``good`` of ``total`` events."""
    good, total = np.asarray(good, dtype=float), np.asarray(total, dtype=float)
    target = float(definition["target_value"])
    empty = total <= 0
    if definition["slo_type"] == "throughput":
        actual = total / seconds
        status = np.where(actual < target, "violated", "compliant")
        remaining = np.full(total.shape, np.nan)
    else:
        share = np.divide(100.0 * good, total, out=np.full(total.shape, np.nan), where=~empty)
        actual = 100.0 - share if definition["slo_type"] == "error_rate" else share
        remaining = budget_remaining_percent(good, total, good_target(definition))
        status = compliance_status(remaining, alert_at)
    return actual, remaining, np.where(empty, NO_DATA, status)


def _alert_threshold(definition: dict) -> float:
    value = definition.get("alert_threshold_percent")
    return DEFAULT_ALERT_THRESHOLD_PERCENT if value is None or pd.isna(value) else float(value)


def evaluate(
    counts: pd.DataFrame,
    slos: pd.DataFrame,
    *,
    bucket: str | pd.Timedelta = "1h",
    warm_up: str | pd.Timedelta = "0h",
) -> pd.DataFrame:
    """Rolling-window SLO measurements, one per SLO per bucket end, as an evaluator records them.

    ``counts`` holds per-bucket span counts (``load.slo_counts``: ``service_name``,
    ``bucket``, ``total``, ``ok``, ``fast``) with a ``threshold`` column saying which latency
    threshold ``fast`` was counted with (NaN for none). Each measurement sums the SLO's
    ``measurement_window_hours`` before it; the first ``warm_up`` of buckets is not recorded
    (the window is not full yet), nor are windows without events (no data: nothing to
    judge). The status comes from ``compliance_status`` with the SLO's
    ``alert_threshold_percent`` (default 90).
    """
    require_columns(counts, _COUNT_COLUMNS, "SLI counts")
    width = _timedelta(bucket, "bucket")
    skip = _timedelta(warm_up, "warm_up")
    out = []
    for definition in check_definitions(slos):
        series = sli_series(counts, definition)
        if series.empty:
            continue
        window = period(definition)
        good = series["good"].rolling(window).sum()
        total = series["total"].rolling(window).sum()
        actual, remaining, status = _judge(
            good, total, window.total_seconds(), definition, _alert_threshold(definition)
        )
        keep = (series.index >= series.index[0] + skip) & (status != NO_DATA)
        out.append(
            pd.DataFrame(
                {
                    "service_name": definition["service_name"],
                    "slo_name": definition["slo_name"],
                    "measurement_timestamp": series.index + width,
                    "actual_value": np.round(actual, 4),
                    "target_value": definition["target_value"],
                    "compliance_status": status,
                    "error_budget_remaining": np.round(remaining, 2),
                    "measurement_period_s": window.total_seconds(),
                }
            )[keep]
        )
    if not out:
        return pd.DataFrame(columns=_MEASUREMENT_COLUMNS)
    return pd.concat(out, ignore_index=True)


_MEASUREMENT_COLUMNS = (
    "service_name",
    "slo_name",
    "measurement_timestamp",
    "actual_value",
    "target_value",
    "compliance_status",
    "error_budget_remaining",
    "measurement_period_s",
)


def _timedelta(value: str | pd.Timedelta, name: str) -> pd.Timedelta:
    if isinstance(value, pd.Timedelta):
        return value
    try:
        return duration(value)
    except ValueError as err:
        raise UsageError(f"{name} is not a duration: {value!r}") from err


# -- alert rules and burn rates over time ----------------------------------------------------


def alert_rules(slos: pd.DataFrame) -> pd.DataFrame:
    """The multiwindow burn-rate rules of each SLO, scaled to its period.

    One row per SLO and rule of ``burn_rate_windows``: ``service_name``, ``slo_name``,
    ``severity``, ``long_window``, ``short_window``, ``burn_rate`` (the factor both windows
    must exceed), ``budget_share``, ``applies`` and ``reason`` (why not). A rule does not
    apply to a throughput SLO (no budget) nor when its long window is longer than the
    period (it would measure a share of a budget over more time than the budget covers).
    A factor below 1 does apply, as the formula gives it: such a rule fires while the SLO is
    being met, which the SLO review points out.
    """
    rows = []
    for d in check_definitions(slos):
        length = period(d)
        table = burn_rate_windows(f"{length.total_seconds()}s")
        for rule in table.to_dict("records"):
            reason = ""
            if d["slo_type"] not in BUDGETED_TYPES:
                reason = "a throughput SLO has no error budget"
            elif rule["long_window"] > length:
                reason = f"the long window is longer than the {_span(length)} period"
            rows.append(
                {
                    "service_name": d["service_name"],
                    "slo_name": d["slo_name"],
                    **rule,
                    "applies": not reason,
                    "reason": reason,
                }
            )
    columns = ["service_name", "slo_name", *burn_rate_windows().columns, "applies", "reason"]
    return pd.DataFrame(rows, columns=columns)


def _span(delta: pd.Timedelta) -> str:
    """A whole-unit duration as people write it: 30d, 24h, 5m."""
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


window_label = _span


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
            raise UsageError(f"window {_span(window)} is not a whole number of {_span(self.step)}")
        hi = np.arange(self.first, len(self.times)) + 1
        lo = np.maximum(hi - int(k), 0)
        return self.cum_good[hi] - self.cum_good[lo], self.cum_total[hi] - self.cum_total[lo]


def burn_grid(
    series: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    step: pd.Timedelta,
    lookback: pd.Timedelta,
) -> BurnGrid:
    """``sli_series`` on every ``step`` from ``start - lookback`` to ``end`` (buckets with
    no spans count zero), so that every window's sum is one subtraction of cumulative sums.
    ``start`` and ``end`` are floored to the step."""
    first_bucket = (start - lookback).floor(step)
    last_bucket = end.floor(step) - step
    buckets = pd.date_range(first_bucket, last_bucket, freq=step)
    dense = series.reindex(buckets, fill_value=0)
    zero = np.zeros(1, dtype="int64")
    return BurnGrid(
        times=buckets + step,
        cum_good=np.concatenate([zero, np.cumsum(dense["good"].to_numpy(dtype="int64"))]),
        cum_total=np.concatenate([zero, np.cumsum(dense["total"].to_numpy(dtype="int64"))]),
        step=step,
        first=int(np.searchsorted(buckets + step, start.floor(step), side="right")),
    )


def burn_rates(
    counts: pd.DataFrame,
    slos: pd.DataFrame,
    start,
    end,
    *,
    bucket: str | pd.Timedelta = "1min",
) -> pd.DataFrame:
    """Each budgeted SLO's burn rate over every long window of its rules, at every bucket
    end in ``(start, end]``: ``service_name``, ``slo_name``, ``time``, ``window`` (label),
    ``burn_rate``, ``events``. Long format, one row per instant and window."""
    require_columns(counts, _COUNT_COLUMNS, "SLI counts")
    step = _timedelta(bucket, "bucket")
    start, end = utc(start, "start"), utc(end, "end")
    rules = alert_rules(slos)
    out = []
    for d in check_definitions(slos):
        mine = rules[
            (rules["service_name"] == d["service_name"])
            & (rules["slo_name"] == d["slo_name"])
            & rules["applies"]
        ]
        if mine.empty:
            continue
        windows = sorted(set(mine["long_window"]))
        grid = burn_grid(sli_series(counts, d), start, end, step=step, lookback=max(windows))
        for w in windows:
            good, total = grid.sums(w)
            out.append(
                pd.DataFrame(
                    {
                        "service_name": d["service_name"],
                        "slo_name": d["slo_name"],
                        "time": grid.times[grid.first :],
                        "window": _span(w),
                        "burn_rate": burn_rate(total - good, total, good_target(d)),
                        "events": total,
                    }
                )
            )
    columns = ["service_name", "slo_name", "time", "window", "burn_rate", "events"]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=columns)


# -- one SLO at one instant (the plan's EvaluateSLO) -----------------------------------------


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
    slos: pd.DataFrame,
    at,
    *,
    bucket: str | pd.Timedelta = "1min",
    min_events: int = DEFAULT_MIN_EVENTS,
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
      at least ``min_events`` in the long window ("" for none);
    - ``should_alert``: at risk, violated, or a rule firing.
    """
    require_columns(counts, _COUNT_COLUMNS, "SLI counts")
    step = _timedelta(bucket, "bucket")
    at = utc(at, "at").floor(step)
    rules = alert_rules(slos)
    rows, states = [], []
    for d in check_definitions(slos):
        length = period(d)
        mine = rules[
            (rules["service_name"] == d["service_name"])
            & (rules["slo_name"] == d["slo_name"])
            & rules["applies"]
        ]
        lookback = max([length, RECENT_BURN, *mine["long_window"]])
        grid = burn_grid(sli_series(counts, d), at, at, step=step, lookback=lookback)
        grid = BurnGrid(grid.times, grid.cum_good, grid.cum_total, step, len(grid.times) - 1)

        def sums(window: pd.Timedelta, grid=grid) -> tuple[float, float]:
            good, total = grid.sums(window)
            return float(good[-1]), float(total[-1])

        good, total = sums(length)
        alert_at = _alert_threshold(d)
        actual, remaining, status = _judge([good], [total], length.total_seconds(), d, alert_at)
        budgeted = d["slo_type"] in BUDGETED_TYPES
        target = good_target(d)
        share = float(error_budget(target)) if budgeted else np.nan
        burn = float(burn_rate([total - good], [total], target)[0]) if budgeted else np.nan
        recent_good, recent_total = sums(RECENT_BURN)
        recent = (
            float(burn_rate([recent_total - recent_good], [recent_total], target)[0])
            if budgeted
            else np.nan
        )
        left = float(remaining[0]) if status[0] != NO_DATA else np.nan  # nothing to judge
        exhaustion = pd.NaT
        if budgeted and left > 0 and recent > 0 and np.isfinite(recent):
            exhaustion = at + length * (left / 100.0) / recent
        firing = ""
        for rule in mine.to_dict("records"):
            long_good, long_total = sums(rule["long_window"])
            short_good, short_total = sums(rule["short_window"])
            long_burn = float(burn_rate([long_total - long_good], [long_total], target)[0])
            short_burn = float(burn_rate([short_total - short_good], [short_total], target)[0])
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
    return Evaluation(
        at=at, slos=frame, rules=pd.DataFrame(states, columns=list(RULE_STATE_COLUMNS))
    )


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
            "spans": [int(seen.get(n, 0)) for n in names],
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
            "total": mine["total"].to_numpy(dtype="int64"),
            "bad": bad.to_numpy(dtype="int64"),
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
