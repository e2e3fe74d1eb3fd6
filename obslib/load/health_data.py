"""The counts the observability-health KPIs are made of, aggregated in PostgreSQL, and the
spans and logs behind each measured detection time.

A window may hold millions of spans: these queries return a row per caller operation (trace
coverage) or one row (log correlation), never the spans. The KPI rules themselves (what
passes, what "no data" means) live in ``obslib.health``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from obslib.load._core import _fetch, _typed, _window
from obslib.load.telemetry import logs, spans
from obslib.values import Moment

# A failing request, as an incident's timeline counts one.
_FAILING = ("error", "timeout")

# A client span is served when the callee recorded a server span as its child in the same
# trace. A semi-join (EXISTS in WHERE), so a client span with two server children (a retry
# recorded twice) counts once, and the planner costs it as a join: on the 150k-span demo it
# hashes the server spans (partial index), 2x faster over the whole demo than the same EXISTS
# as a per-row expression in the select list. The child is not bounded by the window: a
# call at the window's end is served by a span that starts after it (or, skewed, before).
_COVERAGE = """SELECT service_name, operation_name, sum(calls)::int8 AS client_spans,
       sum(served)::int8 AS served
FROM (
    SELECT service_name, operation_name, count(*) AS calls, 0 AS served
    FROM distributed_traces
    WHERE start_time >= $1 AND start_time < $2 AND span_kind = 'client'
    GROUP BY 1, 2
    UNION ALL
    SELECT c.service_name, c.operation_name, 0, count(*)
    FROM distributed_traces c
    WHERE c.start_time >= $1 AND c.start_time < $2 AND c.span_kind = 'client'
      AND EXISTS (
          SELECT 1 FROM distributed_traces s
          WHERE s.trace_id = c.trace_id
            AND s.parent_span_id = c.span_id
            AND s.span_kind = 'server'
      )
    GROUP BY 1, 2
) counts
GROUP BY 1, 2"""

# A trace is in the window when any of its spans starts in it; it is correlated when any log
# record, of any time, carries its trace_id (the partial index on structured_logs.trace_id
# answers each probe).
_CORRELATION = """SELECT count(*) AS traces, count(*) FILTER (WHERE logged) AS logged
FROM (
    SELECT EXISTS (
               SELECT 1 FROM structured_logs l WHERE l.trace_id = t.trace_id
           ) AS logged
    FROM (
        SELECT DISTINCT trace_id FROM distributed_traces
        WHERE start_time >= $1 AND start_time < $2
    ) t
) traces"""


def client_coverage(start: Moment, end: Moment, *, url: str | None = None) -> pd.DataFrame:
    """Client spans starting in ``[start, end)`` per caller ``service_name`` and
    ``operation_name``: ``client_spans`` and ``served`` (those with a server child span).

    No row for a window without client spans."""
    lo, hi = _window(start, end)
    table = _fetch(_COVERAGE, [lo, hi], url, order=("service_name", "operation_name"), planned=True)
    frame = _typed(table)
    for col in ("client_spans", "served"):
        frame[col] = frame[col].astype("int64")
    return frame


def log_correlation(start: Moment, end: Moment, *, url: str | None = None) -> pd.DataFrame:
    """One row: ``traces`` with a span starting in ``[start, end)`` and, of those, ``logged``
    (at least one log record carries the trace_id). Zeros for an empty window."""
    lo, hi = _window(start, end)
    frame = _typed(_fetch(_CORRELATION, [lo, hi], url, order=(), planned=True))
    for col in ("traces", "logged"):
        frame[col] = frame[col].astype("int64")
    return frame


# The service graph as ``trace_sets.service_graph`` defines it (a span whose parent is a span
# of another service is a call from the parent's service to its own), counted in SQL over
# the spans starting in the window; the parent may start anywhere.
_EDGES = """SELECT p.service_name AS caller, c.service_name AS callee, count(*) AS calls
FROM distributed_traces c
JOIN distributed_traces p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
WHERE c.start_time >= $1 AND c.start_time < $2 AND p.service_name <> c.service_name
GROUP BY 1, 2"""


def service_edges(start: Moment, end: Moment, *, url: str | None = None) -> pd.DataFrame:
    """Calls between services in ``[start, end)``: ``caller``, ``callee``, ``calls`` (spans
    whose parent span belongs to another service), for alert correlation by adjacency."""
    lo, hi = _window(start, end)
    frame = _typed(_fetch(_EDGES, [lo, hi], url, order=("caller", "callee"), planned=True))
    frame["calls"] = frame["calls"].astype("int64")
    return frame


def incident_evidence(
    windows: Iterable[tuple[str, str, Moment, Moment]], *, url: str | None = None
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Per ``(incident_id, service_name, since, until)`` (``alerts.noise.review_reads``): the
    service's failing server spans and its log records in ``[since, until)``, as
    ``{incident_id: (spans, logs)}``, what ``alerts.noise.detection_times`` reads."""
    return {
        incident_id: (
            spans(since, until, services=[service], kinds=["server"], statuses=_FAILING, url=url),
            logs(since, until, services=[service], url=url),
        )
        for incident_id, service, since, until in windows
    }
