"""The log rules judged like every alert: each replayed log firing (``logs.replay``) as a
would-be incident, real or false positive by the one false-positive rule
(``noise.false_positives``), and the actual incidents it would have caught by the one catch
rule (``slo.replay.catch``); per rule, the counts a review reads.

The measures are the Google SRE Workbook's for any alerting rule (chapter 5, "Alerting on
SLOs": *precision*, the share of detected events that were significant; *recall*, the
share of significant events detected; *detection time*; *reset time*). Here a log rule's
precision is read through the false-positive rate (``1 - precision`` over its judged
firings), its recall through the incidents it caught, its detection time through each
catch's ``delay_vs_incident`` (firing start - page) and its reset time through the firing's
end.

**A log firing judged, the rule** (``judge_log_rules``): a firing of rule R on template T,
``[start, end)``, is a would-be incident of R's service paged at ``start`` and resolved at
``end`` (at the end of the data replayed while it is still on); its verdict is
``noise.false_positives`` on it: ``real`` when a burn-rate rule of an SLO of that service
fired in ``[start - FP_MARGIN, end)``, ``false_positive`` when none did, ``unknown`` when the
service has no SLO with a burn-rate rule. The incident it would have caught is
``slo.replay.catch``'s: an actual incident of the same service (not one a log rule opened
itself) whose window ``[page - CATCH_LEAD, resolution)`` the firing begins in. Pure
functions on frames; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from obslib.alerts import noise
from obslib.logs import rules as log_rules
from obslib.schema import require_columns
from obslib.slo import replay as slo_replay

LOG_FIRING_COLUMNS = (
    "alert_name",
    "service_name",
    "kind",
    "template",
    "start",
    "end",
    "verdict",
    "first_breach",
    "reason",
    "incident_id",  # the actual incident the firing would have caught (None: none)
    "delay_vs_incident",  # firing start - that incident's page (negative: the rule was first)
    "sample",
)
LOG_RULE_COLUMNS = (
    "alert_name",
    "service_name",
    "kind",
    "firings",
    "real",
    "false_positive",
    "unknown",
    "incidents_caught",
    "false_positive_rate",
)


def as_incidents(firings: pd.DataFrame) -> pd.DataFrame:
    """Each log firing as the incident it would have opened: ``incident_id``
    ``firing-<n>`` (its position), the rule's ``alert_name``, ``service_name`` and
    ``severity``, ``alert_type`` ``log``, paged at the firing's ``start`` (``triggered_at``)
    and resolved at its ``end`` (``resolved_at``; NaT while still on: judged to the end of
    the data, as an open incident is)."""
    require_columns(firings, log_rules.FIRING_COLUMNS, "log firings")
    return pd.DataFrame(
        {
            "incident_id": [f"firing-{n}" for n in range(len(firings))],
            "alert_name": firings["alert_name"].to_numpy(),
            "service_name": firings["service_name"].to_numpy(),
            "alert_type": log_rules.ALERT_TYPE,
            "severity": firings["severity"].to_numpy(),
            "triggered_at": pd.to_datetime(firings["start"].to_numpy(), utc=True),
            "resolved_at": pd.to_datetime(firings["end"].to_numpy(), utc=True),
        }
    )


@dataclass(frozen=True)
class LogRulesJudged:
    """The log rules of a replay judged: one row per firing (``LOG_FIRING_COLUMNS``) and
    one per rule (``LOG_RULE_COLUMNS``)."""

    firings: pd.DataFrame
    rules: pd.DataFrame


def judge_log_rules(
    replayed: log_rules.LogReplay,
    slo_firings: pd.DataFrame,
    slo_rules: pd.DataFrame,
    incidents: pd.DataFrame,
    data_end: pd.Timestamp,
) -> LogRulesJudged:
    """Every firing of ``replayed`` (``logs.replay``) judged by the module's rule, in the
    firings' order, and per rule of the replay (in its order; one that never fired has
    zeros): its ``firings``, how many were ``real``, ``false_positive`` and ``unknown``,
    the ``incidents_caught`` (``slo.replay.catch``'s caught incidents, the rule's firings
    alone) and the ``false_positive_rate`` over its judged firings
    (``noise.false_positive_rate``: unknown left out; None when none was judged).

    ``slo_firings`` and ``slo_rules`` are a ``slo.replay.replay``'s reaching from
    ``FP_MARGIN`` before the first firing to ``data_end`` (the health report's
    ``rules_replay``); ``incidents`` are the actual ones (``load.incidents``; those of alert
    type ``log`` are left out: a log rule does not catch the incident it opened)."""
    firings = replayed.firings.reset_index(drop=True)
    would_be = as_incidents(firings)
    verdicts = noise.false_positives(would_be, slo_firings, slo_rules, data_end)
    verdicts = verdicts.set_index("incident_id").loc[would_be["incident_id"]]
    actual = incidents
    if "alert_type" in actual.columns:
        actual = actual[actual["alert_type"].astype(object) != log_rules.ALERT_TYPE]
    caught_by = pd.Series([None] * len(firings), dtype=object)
    delays = pd.Series(pd.NaT, index=firings.index, dtype="timedelta64[ns]")
    rows = []
    for rule in replayed.rules:
        mine = firings[firings["alert_name"] == rule.alert_name]
        got, matched = slo_replay.catch(mine, actual, data_end)
        caught_by.loc[got.index] = got["incident_id"].astype(object)
        delays.loc[got.index] = got["delay_vs_incident"]
        counted = verdicts["verdict"].iloc[mine.index].value_counts()
        rows.append(
            {
                "alert_name": rule.alert_name,
                "service_name": rule.service_name,
                "kind": rule.kind,
                "firings": len(mine),
                "real": int(counted.get("real", 0)),
                "false_positive": int(counted.get("false_positive", 0)),
                "unknown": int(counted.get("unknown", 0)),
                "incidents_caught": int(matched["caught"].astype(bool).sum()),
                "false_positive_rate": noise.false_positive_rate(
                    verdicts["verdict"].iloc[mine.index]
                ),
            }
        )
    judged = pd.DataFrame(
        {
            "alert_name": firings["alert_name"].to_numpy(),
            "service_name": firings["service_name"].to_numpy(),
            "kind": firings["kind"].to_numpy(),
            "template": firings["template"].to_numpy(),
            "start": pd.to_datetime(firings["start"], utc=True).to_numpy(),
            "end": pd.to_datetime(firings["end"], utc=True).to_numpy(),
            "verdict": verdicts["verdict"].to_numpy(),
            "first_breach": verdicts["first_breach"].to_numpy(),
            "reason": verdicts["reason"].to_numpy(),
            "incident_id": caught_by.to_numpy(),
            "delay_vs_incident": delays.to_numpy(),
            "sample": firings["sample"].to_numpy(),
        },
        columns=list(LOG_FIRING_COLUMNS),
    )
    for col in ("start", "end", "first_breach"):
        judged[col] = pd.to_datetime(judged[col], utc=True)
    return LogRulesJudged(judged, pd.DataFrame(rows, columns=list(LOG_RULE_COLUMNS)))


__all__ = [
    "LOG_FIRING_COLUMNS",
    "LOG_RULE_COLUMNS",
    "LogRulesJudged",
    "as_incidents",
    "judge_log_rules",
]
