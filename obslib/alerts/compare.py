"""Two Alertmanager replays of the same history side by side: pages under each, pages
saved, incidents merged, and the real incidents a change would page later or not at all.

Pure functions on ``NotificationReplay`` results and ``load.incidents`` frames; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from obslib.alerts.notifications import FATES, NotificationReplay
from obslib.errors import InputError
from obslib.schema import require_columns

PAGE_REASONS = ("first", "new alerts")  # a page: a group's first or new-alert notification
CHANGES = ("same", "delayed", "sooner", "muted", "newly notified", "never notified")
COMPARISON_COLUMNS = (
    "incident_id",
    "alert_name",
    "triggered_at",
    "real",
    "fate_a",
    "fate_b",
    "notified_a",
    "notified_b",
    "change",
    "by",
)


@dataclass(frozen=True)
class ReplayComparison:
    """``incidents``: one row per incident (``COMPARISON_COLUMNS``): its best fate and first
    notification under each config, ``change`` (``CHANGES``) and ``by`` (how much later
    config b notified it than config a: positive when delayed, negative when sooner, NaT
    otherwise). ``summary``: ``pages_a``, ``pages_b``, ``pages_saved``, ``merged``
    (incidents that opened a page under a and rode in another's under b), ``delayed`` and
    ``muted`` (real incidents only), ``longest_delay``, ``real`` (how many were judged)."""

    incidents: pd.DataFrame
    summary: dict = field(default_factory=dict)


def _per_incident(replay: NotificationReplay, side: str) -> pd.DataFrame:
    """Each incident's best fate over the routes it reached and its first notification."""
    fates = replay.fates
    rank = fates["fate"].map({f: k for k, f in enumerate(FATES)})
    best = (
        fates.assign(_rank=rank)
        .groupby("incident_id", sort=False)
        .agg(_rank=("_rank", "min"), notified=("notified_at", "min"))
    )
    return pd.DataFrame(
        {
            f"fate_{side}": best["_rank"].map(dict(enumerate(FATES))),
            f"notified_{side}": best["notified"],
        }
    )


def _pages(replay: NotificationReplay) -> int:
    return int(replay.notifications["reason"].isin(PAGE_REASONS).sum())


def _change(a: pd.Timestamp, b: pd.Timestamp) -> str:
    if pd.isna(a):
        return "never notified" if pd.isna(b) else "newly notified"
    if pd.isna(b):
        return "muted"
    return "delayed" if b > a else "sooner" if b < a else "same"


def compare_replays(
    a: NotificationReplay,
    b: NotificationReplay,
    incidents: pd.DataFrame,
    verdicts: pd.DataFrame | None = None,
) -> ReplayComparison:
    """What replaying ``incidents`` through config b instead of config a changes (both
    replays of the same frame and window). An incident counts as notified when any
    notification under that config carried it (opened by it or not); it is ``muted`` when a
    notified it and b never did, ``delayed`` when b's first notification came later.

    ``verdicts`` (``false_positives``'s frame: ``incident_id``, ``verdict``) decides which
    incidents are real: every one whose verdict is not ``false_positive`` (``unknown``
    counts as real: a change should not hide what nobody could judge). Without verdicts every
    incident is judged real. ``delayed`` and ``muted`` in the summary count real ones
    only; the frame lists every incident with its ``real`` flag."""
    require_columns(incidents, ("incident_id", "alert_name", "triggered_at"), "incidents")
    base = incidents[["incident_id", "alert_name", "triggered_at"]]
    base = base.sort_values(["triggered_at", "incident_id"], kind="stable")
    ids = set(base["incident_id"])
    for side, replay in (("a", a), ("b", b)):
        if set(replay.fates["incident_id"]) != ids:
            raise InputError(f"compare_replays: replay {side} is not of these incidents")
    frame = base.join(_per_incident(a, "a"), on="incident_id").join(
        _per_incident(b, "b"), on="incident_id"
    )
    if verdicts is None:
        frame["real"] = True
    else:
        require_columns(verdicts, ("incident_id", "verdict"), "verdicts")
        fps = set(verdicts.loc[verdicts["verdict"] == "false_positive", "incident_id"])
        frame["real"] = ~frame["incident_id"].isin(fps)
    frame["change"] = [
        _change(x, y) for x, y in zip(frame["notified_a"], frame["notified_b"], strict=True)
    ]
    moved = frame["change"].isin(("delayed", "sooner"))
    frame["by"] = (frame["notified_b"] - frame["notified_a"]).where(moved)
    frame = frame[list(COMPARISON_COLUMNS)].reset_index(drop=True)
    real = frame[frame["real"]]
    delayed = real[real["change"] == "delayed"]
    pages_a, pages_b = _pages(a), _pages(b)
    summary = {
        "pages_a": pages_a,
        "pages_b": pages_b,
        "pages_saved": pages_a - pages_b,
        "merged": int(((frame["fate_a"] == "notified") & (frame["fate_b"] == "merged")).sum()),
        "real": len(real),
        "delayed": len(delayed),
        "muted": int((real["change"] == "muted").sum()),
        "longest_delay": delayed["by"].max() if len(delayed) else pd.Timedelta(0),
    }
    return ReplayComparison(incidents=frame, summary=summary)
