"""Alerts and incidents: the incidents themselves (``incidents``: response times, timeline,
detection, impact, budget burned), which alerts belong together (``correlation``), what
Alertmanager would have sent (``notifications``) and what was noise (``noise``: false
positives, flapping).

Pure functions on ``load.incidents`` frames (``incident_id``, ``alert_name``,
``service_name``, ``alert_type``, ``status``, ``severity``, ``triggered_at``,
``resolved_at``, ``incident_data``), a service graph and per-minute SLI counts; no I/O.
The names below are re-exported so ``obslib.alerts.false_positives`` and the rest keep
their paths.
"""

from __future__ import annotations

from obslib.alerts.correlation import (
    CORRELATION_WINDOW,
    RELATIONS,
    correlate,
    duplicates,
    related_alerts,
)
from obslib.alerts.noise import (
    FLAP_WINDOW,
    FP_MARGIN,
    FP_MIN_EVENTS,
    RESOLVED_STATUSES,
    VERDICTS,
    Noise,
    false_positives,
    flapping,
    noise,
)
from obslib.alerts.notifications import (
    FATES,
    GROUP_INTERVAL,
    GROUP_WAIT,
    LABELS,
    REPEAT_INTERVAL,
    InhibitRule,
    NotificationReplay,
    Route,
    replay_notifications,
)

__all__ = [
    "CORRELATION_WINDOW",
    "FATES",
    "FLAP_WINDOW",
    "FP_MARGIN",
    "FP_MIN_EVENTS",
    "GROUP_INTERVAL",
    "GROUP_WAIT",
    "LABELS",
    "RELATIONS",
    "REPEAT_INTERVAL",
    "RESOLVED_STATUSES",
    "VERDICTS",
    "InhibitRule",
    "Noise",
    "NotificationReplay",
    "Route",
    "correlate",
    "duplicates",
    "false_positives",
    "flapping",
    "noise",
    "related_alerts",
    "replay_notifications",
]
