"""SLO arithmetic (Google SRE Workbook): error budgets, compliance, burn-rate windows.

Pure functions on numbers and frames; no I/O.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from obslib.errors import UsageError
from obslib.schema import require_columns
from obslib.values import duration

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

    With no events nothing was spent (100).
    """
    good, total = np.asarray(good, dtype=float), np.asarray(total, dtype=float)
    bad_share = np.divide(total - good, total, out=np.zeros_like(total), where=total > 0)
    # rounded to 1e-9 %: 99.9 % is not exact in binary, and a budget spent exactly must read
    # 0, not -1e-11 (which would flip the status to violated)
    return np.round(100.0 * (1.0 - bad_share / error_budget(target_percent)), 9)


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


_COUNT_COLUMNS = ("service_name", "bucket", "total", "ok", "fast", "threshold")
_SLO_COLUMNS = ("service_name", "slo_name", "slo_type", "target_value", "measurement_window_hours")


def evaluate(
    counts: pd.DataFrame,
    slos: pd.DataFrame,
    *,
    bucket: str | pd.Timedelta = "1h",
    warm_up: str | pd.Timedelta = "0h",
) -> pd.DataFrame:
    """Rolling-window SLO measurements, one per SLO per bucket end, as an evaluator records them.

    ``counts`` holds per-bucket span counts (``load.sli_counts``: ``service_name``,
    ``bucket``, ``total``, ``ok``, ``fast``) with a ``threshold`` column saying which latency
    threshold ``fast`` was counted with (NaN for none). A latency SLO's good events are the
    ``fast`` ones at its own threshold; every other SLO's are the ``ok`` ones. Each
    measurement sums the SLO's ``measurement_window_hours`` before it; the first
    ``warm_up`` of buckets is not recorded (the window is not full yet). The status comes
    from ``compliance_status`` with the SLO's ``alert_threshold_percent`` (default 90).
    """
    require_columns(counts, _COUNT_COLUMNS, "SLI counts")
    require_columns(slos, _SLO_COLUMNS, "SLO definitions")
    width = pd.Timedelta(bucket) if isinstance(bucket, pd.Timedelta) else duration(bucket)
    skip = pd.Timedelta(warm_up) if isinstance(warm_up, pd.Timedelta) else duration(warm_up)
    out = []
    for definition in slos.to_dict("records"):
        threshold = definition.get("latency_threshold_ms")
        same = (
            counts["threshold"].isna() if pd.isna(threshold) else counts["threshold"] == threshold
        )
        mine = counts[(counts["service_name"] == definition["service_name"]) & same]
        if mine.empty:
            continue
        hourly = mine.set_index("bucket").sort_index()
        good_col = "fast" if definition["slo_type"] == "latency" else "ok"
        window = pd.Timedelta(hours=float(definition["measurement_window_hours"]))
        good = hourly[good_col].rolling(window).sum()
        total = hourly["total"].rolling(window).sum()
        remaining = budget_remaining_percent(good, total, definition["target_value"])
        alert_at = definition.get("alert_threshold_percent")
        alert_at = DEFAULT_ALERT_THRESHOLD_PERCENT if pd.isna(alert_at) else alert_at
        keep = hourly.index >= hourly.index[0] + skip
        actual = np.divide(100.0 * good, total, out=np.full(len(total), np.nan), where=total > 0)
        out.append(
            pd.DataFrame(
                {
                    "service_name": definition["service_name"],
                    "slo_name": definition["slo_name"],
                    "measurement_timestamp": hourly.index + width,
                    "actual_value": np.round(actual, 4),
                    "target_value": definition["target_value"],
                    "compliance_status": compliance_status(remaining, alert_at),
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
