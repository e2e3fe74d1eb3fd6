"""Two Alertmanager replays of the same history side by side: pages under each, pages
saved, incidents merged, and the real incidents a change would page later or not at all.

Pure functions on ``NotificationReplay`` results and ``load.incidents`` frames; no I/O.

Which incidents are real is the one false-positive rule (``noise.false_positives``) on the
burn-rate rules replayed over the window (``judge``), with the counts read over the range
a review of the same window reads (``judge_reads``): the verdicts the observability health
report shows for that window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from obslib import slo
from obslib.alerts.correlation import OUTAGE_COLUMNS
from obslib.alerts.noise import review_reads
from obslib.alerts.notifications import FATES, NotificationReplay
from obslib.errors import InputError
from obslib.schema import require_columns

PAGE_REASONS = ("first", "new alerts")  # a page: a group's first or new-alert notification
CHANGES = ("same", "delayed", "sooner", "dropped", "newly notified", "never notified")
COMPARISON_COLUMNS = (
    "incident_id",
    "alert_name",
    "triggered_at",
    "verdict",
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
    ``dropped`` (real incidents only), ``longest_delay``, ``real`` (how many count as real,
    ``unknown`` included), and ``judged_real``, ``false_positive``, ``unknown`` (the
    verdicts as given; every incident ``unknown`` without verdicts)."""

    incidents: pd.DataFrame
    summary: dict = field(default_factory=dict)


def judge_reads(
    start: pd.Timestamp, end: pd.Timestamp, incidents: pd.DataFrame, checked: slo.Objectives
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The half-open range of per-minute SLI counts (``load.slo_counts``, bucket
    ``slo.STEP``) that ``judge`` reads for the ``incidents`` paged in ``[start, end)``:
    ``noise.review_reads``' counts range (the health report's), reaching the replay's
    ``FP_MARGIN`` plus the longest applicable rule window before ``start``. No spans or
    logs are read to judge, so no outage is passed."""
    applies = checked.rules[checked.rules["applies"].astype(bool)]
    reads = review_reads(
        start,
        end,
        incidents,
        pd.DataFrame(columns=list(OUTAGE_COLUMNS)),
        severity="critical",  # whose detection is measured: nothing here, no outage given
        rule_lookback=applies["long_window"].max() if len(applies) else None,
    )
    return reads.counts_start, reads.counts_end


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
        return "dropped"
    return "delayed" if b > a else "sooner" if b < a else "same"


def compare_replays(
    a: NotificationReplay,
    b: NotificationReplay,
    incidents: pd.DataFrame,
    verdicts: pd.DataFrame | None = None,
) -> ReplayComparison:
    """What replaying ``incidents`` through config b instead of config a changes (both
    replays of the same frame and window). An incident counts as notified when any
    notification under that config carried it (opened by it or not); it is ``dropped`` when a
    notified it and b never did, ``delayed`` when b's first notification came later.

    ``verdicts`` (``false_positives``'s frame: ``incident_id``, ``verdict``) decides which
    incidents are real: every one whose verdict is not ``false_positive`` (``unknown``
    counts as real: a change should not hide what nobody could judge). Without verdicts every
    incident is judged real. ``delayed`` and ``dropped`` in the summary count real ones
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
        said = pd.Series("unknown", index=frame.index)
    else:
        require_columns(verdicts, ("incident_id", "verdict"), "verdicts")
        said = frame["incident_id"].map(verdicts.set_index("incident_id")["verdict"])
        said = said.fillna("unknown")
        frame["real"] = said != "false_positive"
    frame["verdict"] = said
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
        "dropped": int((real["change"] == "dropped").sum()),
        "longest_delay": delayed["by"].max() if len(delayed) else pd.Timedelta(0),
        "judged_real": int((said == "real").sum()),
        "false_positive": int((said == "false_positive").sum()),
        "unknown": int((said == "unknown").sum()),
    }
    return ReplayComparison(incidents=frame, summary=summary)
