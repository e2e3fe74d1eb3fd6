"""Alerts and incidents: the incidents themselves (``incidents``: response times, timeline,
detection, impact, budget burned), which alerts belong together (``correlation``), what
Alertmanager would have sent (``notifications``) and what was noise (``noise``: false
positives, flapping, with the detection times and the reads of a window's review).

Pure functions on ``load.incidents`` frames (``incident_id``, ``alert_name``,
``service_name``, ``alert_type``, ``status``, ``severity``, ``triggered_at``,
``resolved_at``, ``incident_data``), a service graph and per-minute SLI counts; no I/O.
The names below are re-exported so ``obslib.alerts.false_positives`` and the rest keep
their paths.
"""

from __future__ import annotations

from obslib.alerts.correlation import (
    CORRELATION_WINDOW,
    GROUP_COLUMNS,
    RELATIONS,
    correlate,
    correlated_groups,
    duplicates,
    related_alerts,
)
from obslib.alerts.noise import (
    COUNTS_MARGIN,
    DETECTION_COLUMNS,
    FLAP_WINDOW,
    FP_MARGIN,
    FP_MIN_EVENTS,
    FP_PER_ALERT_COLUMNS,
    RESOLVED_STATUSES,
    VERDICTS,
    Noise,
    ReviewReads,
    detection_times,
    false_positives,
    false_positives_per_alert,
    flapping,
    noise,
    review_reads,
    review_window,
)
from obslib.alerts.notifications import (
    FATES,
    GROUP_INTERVAL,
    GROUP_WAIT,
    LABELS,
    REPEAT_INTERVAL,
    UNPAGED_COLUMNS,
    InhibitRule,
    NotificationReplay,
    Route,
    replay_notifications,
    unpaged,
)

__all__ = [
    "CORRELATION_WINDOW",
    "COUNTS_MARGIN",
    "DETECTION_COLUMNS",
    "FATES",
    "FLAP_WINDOW",
    "FP_MARGIN",
    "FP_MIN_EVENTS",
    "FP_PER_ALERT_COLUMNS",
    "GROUP_COLUMNS",
    "GROUP_INTERVAL",
    "GROUP_WAIT",
    "LABELS",
    "RELATIONS",
    "REPEAT_INTERVAL",
    "RESOLVED_STATUSES",
    "UNPAGED_COLUMNS",
    "VERDICTS",
    "InhibitRule",
    "Noise",
    "NotificationReplay",
    "ReviewReads",
    "Route",
    "correlate",
    "correlated_groups",
    "detection_times",
    "duplicates",
    "false_positives",
    "false_positives_per_alert",
    "flapping",
    "noise",
    "related_alerts",
    "replay_notifications",
    "review_reads",
    "review_window",
    "unpaged",
]
