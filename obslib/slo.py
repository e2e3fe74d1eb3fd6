"""SLO arithmetic (Google SRE Workbook): error budgets, compliance, burn-rate windows.

Pure functions on numbers and frames; no I/O.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from obslib.errors import UsageError

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


def duration(text: str) -> pd.Timedelta:
    """Parse "30d", "6h", "5min" (pandas wants days as "D"; people write "d")."""
    return pd.Timedelta(re.sub(r"(?<=\d)d\b", "D", text.strip()))


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


def compliance_status(remaining_percent, alert_threshold_percent=90.0) -> np.ndarray:
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
