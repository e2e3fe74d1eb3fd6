"""Who an incident hurt: user requests, each counted once where it entered the system.

The rule (one function, ``user_impact``; the postmortem's summary, impact table and draft
all state it): a **user request** is a trace's **entry span**, its first server span (the
server span with no server span above it; of several, the earliest, as ``traces.roots``
orders them). It is **failed** when its status is not ``ok`` and **slow** when it did not
fail and took longer than the latency SLO threshold of the service it entered (the lowest
threshold of that service's latency SLOs; exactly at it is not slow); a service without a
latency SLO has no slow requests, only failed ones. An incident's users are the requests
that went through its paged service. The calls a request makes inside the
system are **calls**, counted per service against that service's own threshold
(``incidents.impact``): one request failing in two services is one failed request and two
failed calls, so calls never add up to requests.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd

from obslib import traces
from obslib.schema import require_columns
from obslib.traces import tree

SERVER = "server"
ENTRY_COLUMNS = (
    *tree.REQUIRED, "service_name", "operation_name", "span_kind", "status", "duration_ms",
)  # fmt: skip
USER_COLUMNS = (
    "service_name", "operation_name", "requests", "failed", "slow", "slow_over_ms",
    "first_failure", "last_failure",
)  # fmt: skip


def latency_thresholds(slos: pd.DataFrame) -> dict[str, float]:
    """Per service, what slow means: the lowest ``latency_threshold_ms`` of its enabled
    latency SLOs (the strictest promise: a request over it broke at least one of them).
    A service without one is absent: nobody said what slow is for it."""
    if slos.empty or "latency_threshold_ms" not in slos.columns:
        return {}
    require_columns(slos, ("service_name", "slo_type"), "slos")
    latency = slos[slos["slo_type"] == "latency"]
    if "enabled" in latency.columns:
        latency = latency[latency["enabled"].fillna(True).astype(bool)]
    limits = latency.groupby(latency["service_name"].astype(str))["latency_threshold_ms"].min()
    return {str(k): float(v) for k, v in limits.dropna().items()}


def entry_spans(spans: pd.DataFrame) -> pd.DataFrame:
    """Each trace's entry span: the server span where the user's request entered the system.

    That is the trace's first server span: a server span with no server span among its
    ancestors (a client span above it, such as a browser's, does not count), the earliest of
    them when there are several, ties by span id (``traces.roots``' rule). A span whose
    parent the frame lacks counts as having none, as in ``traces.roots``: a request entering
    through an uninstrumented client is still a request; load the spans from before the
    window so that a trace begun earlier is whole. One row per trace with an entry span
    (the spans' rows, index kept), by trace id; traces without a server span have none.
    """
    require_columns(spans, (*tree.REQUIRED, "span_kind"), "spans")
    if spans.empty:
        return spans.iloc[0:0]
    up = tree.parent_index(spans)
    server = (spans["span_kind"] == SERVER).to_numpy(dtype=bool)
    own = np.arange(len(spans))
    jump = np.where(up >= 0, up, own)  # a root points at itself
    above = np.where(up >= 0, server[jump], False)  # a server span among the ancestors
    for _ in range(int(np.ceil(np.log2(max(len(spans), 2)))) + 1):  # pointer jumping
        above, jump = above | above[jump], jump[jump]
    top = spans[server & ~above]
    chosen = traces.roots(top.assign(parent_span_id=None))  # earliest per trace, by span id
    return spans.loc[chosen.index]


@dataclass(frozen=True, eq=False)  # eq=False: frames do not compare as one bool
class UserImpact:
    """User requests of a window, each counted once at its entry span: ``requests`` that
    entered, how many ``failed``, how many more were ``slow`` (did not fail, over the entry
    service's latency SLO), and ``rows`` per entry service and operation (``USER_COLUMNS``:
    ``slow`` and ``slow_over_ms`` blank where the service has no latency SLO); the rows add
    up to the totals."""

    requests: int
    failed: int
    slow: int
    rows: pd.DataFrame

    @property
    def affected(self) -> int:
        """Requests that failed or were slow: each once (a failed request is not also slow)."""
        return self.failed + self.slow

    @property
    def without_latency_slo(self) -> list[str]:
        """Entry services without a latency SLO (only their failures count), sorted."""
        none = self.rows[self.rows["slow_over_ms"].isna()]
        return sorted(set(none["service_name"].astype(str)))


def user_impact(
    spans: pd.DataFrame,
    slos: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    through: Collection[str] | None = None,
) -> UserImpact:
    """User requests whose entry span (``entry_spans``) starts in ``[start, end)``, each
    counted once: failed (status not ``ok``) or else slow (``duration_ms`` over the entry
    service's ``latency_thresholds``; exactly at it is not slow; no latency SLO: never
    slow). With ``through`` (the postmortem passes the paged service), only requests whose
    trace has a span of one of those services count: the incident's users, not everyone
    who used the system meanwhile. ``spans`` should reach back before ``start`` so traces
    are whole; downstream spans are only used to find the entry span and the services a
    request went through, never counted. Rows most affected first."""
    require_columns(spans, ENTRY_COLUMNS, "spans")
    entries = entry_spans(spans)
    entries = entries[(entries["start_time"] >= start) & (entries["start_time"] < end)]
    if through is not None:
        reached = spans.loc[spans["service_name"].astype(str).isin(list(through)), "trace_id"]
        entries = entries[entries["trace_id"].astype(str).isin(set(reached.astype(str)))]
    if entries.empty:
        return UserImpact(0, 0, 0, pd.DataFrame(columns=list(USER_COLUMNS)))
    thresholds = latency_thresholds(slos)
    entries = entries.reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "service_name": entries["service_name"].astype(str),
            "operation_name": entries["operation_name"].astype(str),
            "failed": entries["status"] != "ok",
            "duration_ms": entries["duration_ms"].astype(float),
            "start_time": entries["start_time"],
        }
    )
    frame["slow_over_ms"] = frame["service_name"].map(thresholds).astype(float)
    over = frame["duration_ms"] > frame["slow_over_ms"]  # NaN threshold: never over
    frame["slow"] = np.where(frame["slow_over_ms"].isna(), np.nan, over & ~frame["failed"])
    frame["failed_at"] = frame["start_time"].where(frame["failed"])
    rows = frame.groupby(["service_name", "operation_name"], sort=True).agg(
        requests=("failed", "size"),
        failed=("failed", "sum"),
        slow=("slow", lambda s: np.nan if s.isna().all() else s.sum()),
        slow_over_ms=("slow_over_ms", "first"),
        first_failure=("failed_at", "min"),
        last_failure=("failed_at", "max"),
    )
    rows = rows.reset_index().astype({"requests": "int64", "failed": "int64"})
    rows["_hurt"] = rows["failed"] + rows["slow"].fillna(0)
    rows = rows.sort_values(
        ["_hurt", "failed", "requests", "service_name", "operation_name"],
        ascending=[False, False, False, True, True],
    )
    return UserImpact(
        requests=int(rows["requests"].sum()),
        failed=int(rows["failed"].sum()),
        slow=int(rows["slow"].fillna(0).sum()),
        rows=rows[list(USER_COLUMNS)].reset_index(drop=True),
    )
