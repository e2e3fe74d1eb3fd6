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
from obslib.values import duration, positive_duration

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
    length = positive_duration(period, "SLO period")
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
