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

import numpy as np
import pandas as pd

from obslib import schema
from obslib.errors import InputError, UsageError
from obslib.schema import require_columns
from obslib.values import duration, positive_duration, window_text

DEFAULT_ALERT_THRESHOLD_PERCENT = 90.0  # the plan's default for alert_threshold_percent

# Multiwindow, multi-burn-rate alerts for a 30-day SLO (SRE Workbook, ch. 5; Sloth's
# internal/alert/windows/google-30d.yaml): page when 2 % of the budget burns in 1 h (14.4x)
# or 5 % in 6 h (6x); ticket for 10 % in 1 d (3x) or 10 % in 3 d (1x). The short window
# (1/12 of the long) lets an alert reset quickly once the errors stop.
_WINDOWS_30D = (
    # severity, long window, short window, burn-rate factor
    ("page", "1h", "5min", 14.4),
    ("page", "6h", "30min", 6.0),
    ("ticket", "1D", "2h", 3.0),
    ("ticket", "3D", "6h", 1.0),
)
# Sloth's internal/alert/windows/google-28d.yaml (slok/sloth 0e395d8): the Workbook's windows
# and budget shares (2, 5, 10, 10 %) on a 28-day period; Sloth's getBurnRateFactor makes the
# factors share x period / long window: 13.44, 5.6, 2.8 and 0.933 (raised to 1 here).
_WINDOWS_28D = (
    ("page", "1h", "5min", 0.02 * 28 * 24 / 1),
    ("page", "6h", "30min", 0.05 * 28 * 24 / 6),
    ("ticket", "1D", "2h", 0.10 * 28),
    ("ticket", "3D", "6h", 0.10 * 28 / 3),
)
_BASE_PERIOD = pd.Timedelta(days=30)
_MINUTE = pd.Timedelta(minutes=1)
BURN_WINDOW_COLUMNS = (
    "severity",
    "long_window",
    "short_window",
    "burn_rate",
    "budget_share",
    "reason",
)


def _scaled(window: str, length: pd.Timedelta) -> pd.Timedelta:
    """A 30-day window scaled to ``length``, rounded to the nearest whole minute, halves
    away from zero (Go's ``Duration.Round(time.Minute)``, as Pyrra's ``Windows()``)."""
    exact = pd.Timedelta(window).value * length.value  # ns x ns, exact in Python ints
    base = _BASE_PERIOD.value * _MINUTE.value
    return _MINUTE * ((2 * exact + base) // (2 * base))


def burn_rate_windows(period: str = "30d") -> pd.DataFrame:
    """The multiwindow burn-rate alert rules for an SLO period.

    The rule: the factors are the Workbook's and never change with the period: page at
    14.4x over 1h and 5m and at 6x over 6h and 30m, ticket at 3x over 1d and 2h and at 1x
    over 3d and 6h, for 30 days (Sloth's ``google-30d``). A 28-day period takes Sloth's
    ``google-28d`` table (slok/sloth ``internal/alert/windows/google-28d.yaml``): the same
    windows, factors 13.44, 5.6, 2.8 and 1 (Sloth's 0.933 raised to 1). Any other period
    keeps the 30-day factors and scales the *windows* with the period, as Pyrra does
    (pyrra-dev/pyrra ``slo/rules.go`` ``Windows()``: each window is the period divided by
    a fixed ratio, ``(sloWindow / (28 * 24)).Round(time.Minute)``; Pyrra's ratios are to its
    own 28-day table, ours to the Workbook's 30-day one), rounded to whole minutes (halves
    up): a 7-day SLO pages at 14.4x over 14m and 1m. Each rule still spends the same share
    of the budget (2, 5, 10, 10 %) before it fires. A window that rounds below one minute,
    the SLI bucket ``STEP``, cannot be measured: its rule is dropped and ``reason`` says why
    (a 1-day SLO's 14.4x page, whose short window would be 10 s). No factor is ever below 1:
    a burn below 1 cannot exhaust a budget, so such a rule would fire on normal traffic.

    Columns: ``severity``, ``long_window``, ``short_window`` (Timedeltas), ``burn_rate``
    (the factor both windows must exceed), ``budget_share`` (of the period's budget spent
    over the long window at that factor) and ``reason`` ("" for a rule that applies).
    """
    length = positive_duration(period, "SLO period")
    bucket = pd.Timedelta(STEP)
    sloth_28d = length == pd.Timedelta(days=28)
    rows = []
    for severity, long_w, short_w, factor in _WINDOWS_28D if sloth_28d else _WINDOWS_30D:
        factor = max(1.0, round(factor, 9))
        scale = 1 if sloth_28d else length / _BASE_PERIOD
        long_td, short_td = (
            (pd.Timedelta(long_w), pd.Timedelta(short_w))
            if sloth_28d
            else (_scaled(long_w, length), _scaled(short_w, length))
        )
        reason = ""
        if short_td < bucket:  # the short window is the shorter: the long one is 12 times it
            exact = pd.Timedelta(short_w) * scale
            short, period = window_text(pd.Timedelta(short_w)), window_text(length)
            reason = (
                f"its short window ({short} x {period}/30d = {exact.total_seconds():.3g}s)"
                f" rounds below the {window_text(bucket)} SLI bucket"
            )
        share = round(factor * (long_td / length), 9)
        rows.append((severity, long_td, short_td, factor, share, reason))
    return pd.DataFrame(rows, columns=list(BURN_WINDOW_COLUMNS))


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
STEP = "1min"  # the evaluation's bucket: the shortest rule window (5 min) needs minutes
# No burn-rate alert on fewer events than this in the long window: at 3 requests an hour one
# failure is a 33 % error rate, which says nothing about the budget.
DEFAULT_MIN_EVENTS = 10

COUNT_COLUMNS = ("service_name", "bucket", "total", "ok", "fast", "threshold")
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
    other type's are the ``ok`` ones. Counts keep their type: whole ``int64``, or ``float64``
    when spans were sampled (each counted by its weight, ``load.weights``).
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
            "total": pd.to_numeric(mine["total"]).to_numpy(),
            "good": pd.to_numeric(mine[good]).to_numpy(),
        },
        index=pd.DatetimeIndex(mine["bucket"], name="bucket"),
    )
    return out.groupby(level=0).sum().sort_index()


def judge(good, total, seconds: float, definition: dict, alert_at: float):
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


def alert_threshold(definition: dict) -> float:
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
    require_columns(counts, COUNT_COLUMNS, "SLI counts")
    width = positive_duration(bucket, "bucket")
    skip = as_timedelta(warm_up, "warm_up")
    out = []
    for definition in check_definitions(slos):
        series = sli_series(counts, definition)
        if series.empty:
            continue
        window = period(definition)
        good = series["good"].rolling(window).sum()
        total = series["total"].rolling(window).sum()
        actual, remaining, status = judge(
            good, total, window.total_seconds(), definition, alert_threshold(definition)
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
        return pd.DataFrame(columns=MEASUREMENT_COLUMNS)
    return pd.concat(out, ignore_index=True)


MEASUREMENT_COLUMNS = (
    "service_name",
    "slo_name",
    "measurement_timestamp",
    "actual_value",
    "target_value",
    "compliance_status",
    "error_budget_remaining",
    "measurement_period_s",
)


def as_timedelta(value: str | pd.Timedelta, name: str) -> pd.Timedelta:
    if isinstance(value, pd.Timedelta):
        return value
    try:
        return duration(value)
    except ValueError as err:
        raise UsageError(f"{name} is not a duration: {value!r}") from err
