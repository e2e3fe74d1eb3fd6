"""The burn-rate alert rules of SLOs (Google SRE Workbook, ch. 5), the definitions checked
once with their rules (``Objectives``), how much history an evaluation reads and which
counts (``read_plan``), and the hourly counts of a long window."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from obslib.schema import require_columns
from obslib.slo.budgets import (
    BUDGETED_TYPES,
    COUNT_COLUMNS,
    RECENT_BURN,
    STEP,
    burn_rate_windows,
    check_definitions,
    period,
)
from obslib.values import utc, window_text

# -- alert rules and burn rates over time ----------------------------------------------------


RULE_COLUMNS = (
    "service_name",
    "slo_name",
    "severity",
    "long_window",
    "short_window",
    "burn_rate",
    "budget_share",
    "applies",
    "reason",
)


@dataclass(frozen=True, eq=False)
class Objectives:
    """SLO definitions checked once, with their burn-rate alert rules: what an evaluation,
    a replay and the plan of their reads share, so one review or one ``obslib slo
    evaluate`` checks the definitions and builds the rules once, not once per step.

    ``frame``: the definitions as given (``load.slos``); ``definitions``: its rows as
    checked dicts (``check_definitions``); ``rules``: ``alert_rules`` of them.
    """

    frame: pd.DataFrame
    definitions: tuple[dict, ...]
    rules: pd.DataFrame

    def applicable(self, definition: dict) -> pd.DataFrame:
        """The rules of one SLO that apply to it (none for a throughput SLO)."""
        r = self.rules
        return r[
            (r["service_name"] == definition["service_name"])
            & (r["slo_name"] == definition["slo_name"])
            & r["applies"]
        ]


def objectives(slos: pd.DataFrame | Objectives) -> Objectives:
    """The SLO definitions checked and their rules built (an ``Objectives`` is returned as
    it is: every function that takes SLOs takes either)."""
    if isinstance(slos, Objectives):
        return slos
    definitions = check_definitions(slos)
    return Objectives(slos, tuple(definitions), _rule_table(definitions))


def alert_rules(slos: pd.DataFrame | Objectives) -> pd.DataFrame:
    """The multiwindow burn-rate rules of each SLO for its period (``burn_rate_windows``:
    the Workbook's factors, windows scaled with the period).

    One row per SLO and rule of ``burn_rate_windows``: ``service_name``, ``slo_name``,
    ``severity``, ``long_window``, ``short_window``, ``burn_rate`` (the factor both windows
    must exceed, never below 1), ``budget_share``, ``applies`` and ``reason`` (why not). A
    rule does not apply to a throughput SLO (no budget), when a window of it rounds below
    the SLI bucket for the SLO's period, nor when its long window is longer than the period.
    """
    return objectives(slos).rules.copy()


def _rule_table(definitions: list[dict]) -> pd.DataFrame:
    rows = []
    for d in definitions:
        length = period(d)
        table = burn_rate_windows(f"{length.total_seconds()}s")
        for rule in table.to_dict("records"):
            reason = rule.pop("reason")
            if d["slo_type"] not in BUDGETED_TYPES:
                reason = "a throughput SLO has no error budget"
            elif rule["long_window"] > length:
                reason = f"the long window is longer than the {window_label(length)} period"
            rows.append(
                {
                    "service_name": d["service_name"],
                    "slo_name": d["slo_name"],
                    **rule,
                    "applies": not reason,
                    "reason": reason,
                }
            )
    return pd.DataFrame(rows, columns=list(RULE_COLUMNS))


def lookback(slos: pd.DataFrame | Objectives) -> pd.Timedelta:
    """How much history before an instant its evaluation reads: the longest SLO period,
    rule window or recent-burn window of ``slos``."""
    if isinstance(slos, pd.DataFrame) and slos.empty:
        return RECENT_BURN
    checked = objectives(slos)
    rules = checked.rules
    windows = [*rules.loc[rules["applies"], "long_window"], RECENT_BURN]
    return max([*windows, *(period(d) for d in checked.definitions)])


# -- which counts an evaluation reads ---------------------------------------------------------


@dataclass(frozen=True)
class ReadPlan:
    """The SLI counts that evaluating SLOs over ``(start, end]`` reads.

    Per minute from ``minutes_from`` to ``end``: every rule's long window before ``start``
    (the replay's first instants need their whole window) and every SLO's period before
    ``end`` (the evaluation at ``end``), from a whole hour so the minutes sum to whole
    hours. Per hour from ``hours_from``: the longest period before ``start`` (a budget
    burn-down's first window), read per hour only where the minutes do not reach
    (``older_hours``); the minutes' own hours are summed from them (``hourly_counts``).
    """

    start: pd.Timestamp
    end: pd.Timestamp
    minutes_from: pd.Timestamp
    hours_from: pd.Timestamp

    @property
    def older_hours(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """The hours to read per hour, ``[hours_from, minutes_from)``; None when the
        minutes reach back far enough."""
        if self.hours_from < self.minutes_from:
            return self.hours_from, self.minutes_from
        return None


def read_plan(
    slos: pd.DataFrame | Objectives,
    end,
    *,
    window: pd.Timedelta | None = None,
    data_start=None,
) -> ReadPlan:
    """What to read to evaluate ``slos`` over the ``window`` before ``end`` (floored to the
    evaluation's minute; a zero window: an evaluation at ``end`` only). A window reaching
    back before ``data_start`` (the first stored span) starts at that span's hour instead:
    replaying the rules where there is no data would only say "no data"."""
    checked = objectives(slos)
    stop = utc(end, "end").floor(STEP)
    start = stop - (window if window is not None else pd.Timedelta(0))
    if data_start is not None and start < data_start < stop:
        start = data_start.floor("h")
    rules = checked.rules
    longest_rule = max([RECENT_BURN, *rules.loc[rules["applies"], "long_window"]])
    minutes_from = min(start - longest_rule, stop - lookback(checked)).floor("h")
    longest_period = max([pd.Timedelta(hours=1), *(period(d) for d in checked.definitions)])
    return ReadPlan(start, stop, minutes_from, (start - longest_period).floor("h"))


def hourly_counts(minutes: pd.DataFrame, older: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per-minute counts summed per hour (the buckets ``load.slo_counts`` gives for "1h":
    both are aligned to 2000-01-01), after ``older`` hourly counts when given: so a budget
    burn-down needs no second scan of the hours the minutes hold."""
    require_columns(minutes, COUNT_COLUMNS, "SLI counts")
    keys = ["service_name", "threshold", "bucket"]
    hours = minutes.assign(bucket=minutes["bucket"].dt.floor("h"))
    summed = hours.groupby(keys, dropna=False, sort=False)[["total", "ok", "fast"]].sum()
    hourly = summed.reset_index()[list(COUNT_COLUMNS)]
    if older is None:
        return hourly
    return pd.concat([older, hourly], ignore_index=True)


def window_label(delta: pd.Timedelta) -> str:
    """A whole-unit duration as people write it: 30d, 24h, 5m (values.window_text)."""
    return window_text(delta)
