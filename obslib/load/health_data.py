"""The counts the observability-health KPIs are made of, aggregated in PostgreSQL, and the
spans and logs behind each measured detection time.

A window may hold millions of spans: these queries return a row per caller operation (trace
coverage) or one row (log correlation), never the spans. The KPI rules themselves (what
passes, what "no data" means) live in ``obslib.health``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time
from pathlib import Path

import pandas as pd
import pyarrow as pa

from obslib.load import archive as _archive
from obslib.load import weights
from obslib.load._core import _fetch, _Query, _sorted, _typed, _window
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
# Each span counts by its sampling weight (``weights``): whole numbers without sampling.
_COVERAGE = f"""SELECT service_name, operation_name, sum(calls)::float8 AS client_spans,
       sum(served)::float8 AS served
FROM (
    SELECT service_name, operation_name, {weights.weighted_count_sql()} AS calls, 0 AS served
    FROM distributed_traces
    WHERE start_time >= $1 AND start_time < $2 AND span_kind = 'client'
    GROUP BY 1, 2
    UNION ALL
    SELECT c.service_name, c.operation_name, 0, {weights.weighted_count_sql()}
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
# answers each probe). A trace counts by its sampling weight (the sampler keeps or drops a
# trace whole, so its spans share it; the largest, should a late span differ).
_CORRELATION = f"""SELECT coalesce(sum(weight), 0) AS traces,
       coalesce(sum(weight) FILTER (WHERE logged), 0) AS logged
FROM (
    SELECT EXISTS (
               SELECT 1 FROM structured_logs l WHERE l.trace_id = t.trace_id
           ) AS logged, weight
    FROM (
        SELECT trace_id, max({weights.WEIGHT_SQL}) AS weight FROM distributed_traces
        WHERE start_time >= $1 AND start_time < $2
        GROUP BY trace_id
    ) t
) traces"""


def client_coverage(
    start: Moment, end: Moment, *, url: str | None = None, archive: str | Path | None = None
) -> pd.DataFrame:
    """Client spans starting in ``[start, end)`` per caller ``service_name`` and
    ``operation_name``: ``client_spans`` and ``served`` (those with a server child span,
    archived ones included), each span by its sampling weight (``weights``).

    No row for a window without client spans."""
    lo, hi = _window(start, end)
    order = ("service_name", "operation_name")

    def read(days: list[_archive.ColdDay]) -> pa.Table:
        if not days:  # else the other end of a call may be archived, even far off
            return _fetch(_COVERAGE, [lo, hi], url, order=order, planned=True)
        calls = _window_rows(
            days, lo, hi, ("trace_id", "span_id", "service_name", "operation_name"),
            None, ("span_kind", "client"), url, weighted=True,
        )  # fmt: skip
        children = _trace_rows(
            days, calls["trace_id"], ("trace_id", "parent_span_id"), ("span_kind", "server"), url
        )
        served = pd.MultiIndex.from_arrays([calls["trace_id"], calls["span_id"]]).isin(
            pd.MultiIndex.from_arrays([children["trace_id"], children["parent_span_id"]])
        )
        counts = calls.assign(client_spans=calls["weight"], served=calls["weight"] * served)
        counts = counts.groupby(list(order), as_index=False)[["client_spans", "served"]].sum()
        return _sorted(pa.Table.from_pandas(counts, preserve_index=False), order)

    table, _ = _archive.consistent("spans", None, None, read, archive=archive, url=url)
    return weights.whole(_typed(table), ("client_spans", "served"))


def log_correlation(
    start: Moment, end: Moment, *, url: str | None = None, archive: str | Path | None = None
) -> pd.DataFrame:
    """One row: ``traces`` with a span starting in ``[start, end)`` and, of those, ``logged``
    (at least one log record, archived ones included, carries the trace_id), each trace by
    its sampling weight (``weights``). Zeros for an empty window."""
    lo, hi = _window(start, end)

    def count(log_days: list[_archive.ColdDay]) -> pa.Table:
        def read(days: list[_archive.ColdDay]) -> pa.Table:
            if not _touching(days, lo, hi) and not log_days:  # a log of any time
                return _fetch(_CORRELATION, [lo, hi], url, order=(), planned=True)
            traces = _window_rows(days, lo, hi, ("trace_id",), None, None, url, weighted=True)
            per = traces.groupby("trace_id", sort=False)["weight"].max()
            logged = per.index.isin(_logged(log_days, per.index.to_series(), url))
            total, found = float(per.sum()), float(per[logged].sum())
            return pa.table({"traces": [total], "logged": [found]})

        return _archive.consistent("spans", None, None, read, archive=archive, url=url)[0]

    table, _ = _archive.consistent("logs", None, None, count, archive=archive, url=url)
    return weights.whole(_typed(table), ("traces", "logged"))


def _logged(log_days: list[_archive.ColdDay], ids: pd.Series, url: str | None) -> set[str]:
    """The trace ids among ``ids`` that a log record of any time carries."""
    wanted = [str(i) for i in ids]
    q = _Query("SELECT DISTINCT trace_id FROM structured_logs").where("trace_id = ANY(?)", wanted)
    found = set(_fetch(q.sql(), q.params, url, order=("trace_id",))["trace_id"].to_pylist())
    where = _archive.condition(("timestamp", None, None), [("trace_id", wanted)])
    for rows in _archive.each_day(log_days, ("trace_id",), where):
        found.update(rows.column("trace_id").to_pylist())
    return found


# The service graph as ``trace_sets.service_graph`` defines it (a span whose parent is a span
# of another service is a call from the parent's service to its own), counted in SQL over
# the spans starting in the window; the parent may start anywhere. ``calls`` is traffic (how
# many calls), so each call counts by its callee span's sampling weight (``weights``; the
# sampler keeps a trace whole, so caller and callee share it); which edges exist is the
# same either way (a weight is never 0).
_EDGES = f"""SELECT p.service_name AS caller, c.service_name AS callee,
       {weights.weighted_count_sql(of="c")} AS calls
FROM distributed_traces c
JOIN distributed_traces p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
WHERE c.start_time >= $1 AND c.start_time < $2 AND p.service_name <> c.service_name
GROUP BY 1, 2"""


def service_edges(
    start: Moment, end: Moment, *, url: str | None = None, archive: str | Path | None = None
) -> pd.DataFrame:
    """Calls between services in ``[start, end)``: ``caller``, ``callee``, ``calls`` (spans
    whose parent span, archived or not, belongs to another service, each by its sampling
    weight: whole ``int64`` numbers without sampling, ``float64`` estimates with it), for
    alert correlation by adjacency."""
    lo, hi = _window(start, end)
    order = ("caller", "callee")

    def read(days: list[_archive.ColdDay]) -> pa.Table:
        if not days:  # else the other end of a call may be archived, even far off
            return _fetch(_EDGES, [lo, hi], url, order=order, planned=True)
        children = _window_rows(
            days, lo, hi, ("trace_id", "parent_span_id", "service_name"),
            "parent_span_id IS NOT NULL", None, url, weighted=True,
        )  # fmt: skip
        children = children[children["parent_span_id"].notna()]
        parents = _trace_rows(
            days, children["trace_id"], ("trace_id", "span_id", "service_name"), None, url
        )
        # a join, as the SQL's: a parent stored twice (two start times) counts twice
        pairs = children.merge(
            parents, left_on=["trace_id", "parent_span_id"], right_on=["trace_id", "span_id"],
            suffixes=("_c", "_p"),
        )  # fmt: skip
        pairs = pairs[pairs["service_name_p"] != pairs["service_name_c"]]
        pairs = pairs.rename(columns={"service_name_p": "caller", "service_name_c": "callee"})
        edges = pairs.groupby(list(order), as_index=False)["weight"].sum()
        edges = edges.rename(columns={"weight": "calls"}).astype({"calls": "float64"})
        return _sorted(pa.Table.from_pandas(edges, preserve_index=False), order)

    table, _ = _archive.consistent("spans", None, None, read, archive=archive, url=url)
    return weights.whole(_typed(table), ("calls",))


def _touching(days: list[_archive.ColdDay], lo: datetime, hi: datetime) -> list[_archive.ColdDay]:
    """The archived days the window ``[lo, hi)`` touches (``archive.cold_days``' rule)."""
    return [d for d in days if lo.date() <= d.day and datetime.combine(d.day, time(), UTC) < hi]


def _window_rows(
    days, lo, hi, columns, sql_condition, equal, url, *, weighted: bool = False
) -> pd.DataFrame:
    """``columns`` of the spans that start in ``[lo, hi)``, hot and cold, with ``equal``'s
    column at its value (None: any); ``sql_condition`` narrows the hot rows only (the
    caller applies it to the cold ones). ``weighted``: plus each span's sampling ``weight``."""
    select = ", ".join(columns) + (f", {weights.WEIGHT_SQL} AS weight" if weighted else "")
    q = _Query("SELECT " + select + " FROM distributed_traces")
    q.where("start_time >= ?", lo).where("start_time < ?", hi)
    if equal is not None:  # a column of our own choosing, its value bound
        q.where(equal[0] + " = ?", equal[1])
    if sql_condition:
        q.conditions.append(sql_condition)
    parts = [_fetch(q.sql(), q.params, url, order=("trace_id",))]
    where = _archive.condition(("start_time", lo, hi), equal=[equal] if equal else [])
    touched = _touching(days, lo, hi)
    optional = (weights.COLUMN,) if weighted else ()
    for t in _archive.each_day(touched, columns, where, optional=optional):
        rows = t.select(list(columns))
        if weighted:
            rows = rows.append_column("weight", weights.weights_of(t))
        parts.append(rows)
    return _typed(pa.concat_tables([t.cast(parts[0].schema) for t in parts]))


def _trace_rows(days, trace_ids: pd.Series, columns, equal, url) -> pd.DataFrame:
    """``columns`` of the spans of any time, hot or archived, in these traces (and, with
    ``equal``, with that column's value): the other end of a call, wherever it is."""
    ids = [str(i) for i in trace_ids.drop_duplicates()]
    q = _Query("SELECT " + ", ".join(columns) + " FROM distributed_traces")
    q.where("trace_id = ANY(?)", ids)
    if equal is not None:  # a column of our own choosing, its value bound
        q.where(equal[0] + " = ?", equal[1])
    parts = [_fetch(q.sql(), q.params, url, order=("trace_id",))]
    where = _archive.condition(
        ("start_time", None, None), [("trace_id", ids)], equal=[equal] if equal else []
    )
    parts += [t.select(list(columns)) for t in _archive.each_day(days, columns, where)]
    return _typed(pa.concat_tables([t.cast(parts[0].schema) for t in parts]))


def incident_evidence(
    windows: Iterable[tuple[str, str, Moment, Moment]],
    *,
    url: str | None = None,
    archive: str | Path | None = None,
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Per ``(incident_id, service_name, since, until)`` (``alerts.noise.review_reads``): the
    service's failing server spans and its log records in ``[since, until)``, as
    ``{incident_id: (spans, logs)}``, what ``alerts.noise.detection_times`` reads (archived
    days included, as ``spans`` and ``logs`` read them)."""
    return {
        incident_id: (
            spans(
                since,
                until,
                services=[service],
                kinds=["server"],
                statuses=_FAILING,
                url=url,
                archive=archive,
            ),
            logs(since, until, services=[service], url=url, archive=archive),
        )
        for incident_id, service, since, until in windows
    }
