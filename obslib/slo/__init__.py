"""SLOs (Google SRE Workbook): SLIs from span counts, error budgets, compliance, burn rates,
the multiwindow alert rules, and their evaluation at an instant and over history.

The package's modules, lowest first: ``budgets`` (what each SLO type counts, budgets, burn
rates, the compliance rule, measurements over time), ``rules`` (the burn-rate alert rules,
``Objectives``: definitions checked and rules built once, ``read_plan``: which counts an
evaluation reads), ``status`` (SLOs at an instant: in trouble, burn-downs, coverage,
contributors) and ``replay`` (the rules replayed on history, against the incidents). Pure
functions, no I/O. The names people call are re-exported here
(``obslib.slo.burn_rate_windows``).
"""

from __future__ import annotations

from obslib.slo import budgets, replay, rules, status
from obslib.slo.budgets import (
    BUDGETED_TYPES,
    COUNT_COLUMNS,
    DEFAULT_ALERT_THRESHOLD_PERCENT,
    DEFAULT_MIN_EVENTS,
    MEASUREMENT_COLUMNS,
    NO_DATA,
    RECENT_BURN,
    STEP,
    alert_threshold,
    as_timedelta,
    budget_remaining_percent,
    burn_rate,
    burn_rate_windows,
    check_definitions,
    compliance_status,
    error_budget,
    evaluate,
    good_target,
    judge,
    period,
    sli_series,
    slo_label,
)
from obslib.slo.rules import (
    RULE_COLUMNS,
    Objectives,
    ReadPlan,
    alert_rules,
    hourly_counts,
    lookback,
    objectives,
    read_plan,
    window_label,
)

__all__ = [
    "BUDGETED_TYPES",
    "COUNT_COLUMNS",
    "DEFAULT_ALERT_THRESHOLD_PERCENT",
    "DEFAULT_MIN_EVENTS",
    "MEASUREMENT_COLUMNS",
    "NO_DATA",
    "RECENT_BURN",
    "RULE_COLUMNS",
    "STEP",
    "Objectives",
    "ReadPlan",
    "alert_rules",
    "alert_threshold",
    "as_timedelta",
    "budget_remaining_percent",
    "budgets",
    "burn_rate",
    "burn_rate_windows",
    "check_definitions",
    "compliance_status",
    "error_budget",
    "evaluate",
    "good_target",
    "hourly_counts",
    "judge",
    "lookback",
    "objectives",
    "period",
    "read_plan",
    "replay",
    "rules",
    "sli_series",
    "slo_label",
    "status",
    "window_label",
]
