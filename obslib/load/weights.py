"""How stored spans count: the sampling weight, the one rule every SLI count applies.

``obslib collect --sampling adaptive`` keeps whole traces, each with a known probability
``p`` (``distributed_traces.sampling_probability``, migration 0015; 1 for every span stored
without sampling). A stored span then stands for ``1 / p`` spans: summing ``1 / p`` over the
stored spans is the Horvitz-Thompson estimator of the count over all spans (Horvitz &
Thompson, "A Generalization of Sampling Without Replacement From a Finite Universe", JASA
1952), unbiased whatever ``p`` each trace had, as long as ``p`` is the probability it was
kept with. Its standard error is ``sqrt(sum over stored traces of (1 - p) / p**2 * y**2)``
for a trace contributing ``y`` spans (``standard_error``). Traces the sampler keeps always
(errors, slower than their service's latency SLO) have ``p = 1``: the bad events of an SLO
are counted exactly, only the good ones are estimated.

Weighted counts are sums of floats. Unsampled spans weigh exactly 1, so their counts are the
same integers as ``count(*)``; ``whole`` gives a count column back as ``int64`` whenever every
value in it is a whole number (always so without sampling), so nothing changes for
unsampled data, and ``float64`` otherwise (an estimate, rounded only for display).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from obslib import schema

COLUMN = schema.SAMPLING_PROBABILITY
# The SQL dialects the counts run in and their name for an 8-byte float: the rest of the
# fragments below is the same text in both (PostgreSQL's ``float8`` is no Spark SQL type,
# and Spark's ``double`` no PostgreSQL one; neither parses ``double precision`` the same).
DIALECTS = {"postgresql": "float8", "spark": "double"}


def weight_sql(dialect: str = "postgresql", *, of: str | None = None) -> str:
    """What one stored span counts for, in SQL over ``distributed_traces``' columns: 1 / p
    with p (a REAL) widened to an 8-byte float first, so both dialects divide the same
    float64 values (exactly 1.0 for an unsampled span). ``of``: the table alias the span
    has in a join (a fixed name of ours)."""
    column = COLUMN if of is None else f"{of}.{COLUMN}"
    return f"(1 / CAST({column} AS {DIALECTS[dialect]}))"


WEIGHT_SQL = weight_sql()


def weighted_count_sql(
    condition: str | None = None, *, dialect: str = "postgresql", of: str | None = None
) -> str:
    """The SQL aggregate counting spans by weight, those meeting ``condition`` (fixed SQL of
    ours, never a caller's text) when given: 0, not NULL, when none does (as ``count``).
    The same text for PostgreSQL and Spark SQL (``dialect``) but for the float type's name:
    ``load.sli_counts`` and ``obslib.spark.sli_counts`` count with it. ``of``: the alias of
    the spans counted, in a join."""
    weight = weight_sql(dialect, of=of)
    if condition is None:
        return f"coalesce(sum({weight}), 0)"
    return f"coalesce(sum({weight}) FILTER (WHERE {condition}), 0)"


def weights_of(rows: pa.Table) -> pa.ChunkedArray | pa.Array:
    """``WEIGHT_SQL`` over Arrow rows (an archived day): ``1 / p`` as float64, 1 where the
    column is missing (a day archived before migration 0015) or null."""
    if COLUMN not in rows.column_names:
        return pa.array(np.ones(rows.num_rows, dtype=np.float64))
    kept = rows[COLUMN].cast(pa.float64())
    return pc.fill_null(pc.divide(1.0, kept), 1.0)


def whole(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """The weighted count ``columns`` as ``int64`` where every value is whole (unsampled
    data: the same integers ``count(*)`` gives), else ``float64``. In place; returns it."""
    for col in columns:
        values = frame[col].astype("float64")
        exact = values.to_numpy()
        frame[col] = values.astype("int64") if np.all(exact == np.round(exact)) else values
    return frame


def standard_error(probabilities: Iterable[float], sizes: Iterable[float]) -> float:
    """The Horvitz-Thompson standard error of a weighted count, estimated from the stored
    traces: each with its probability ``p`` and the ``y`` spans it adds to the count
    (``sqrt(sum((1 - p) / p**2 * y**2))``; a trace kept with ``p = 1`` adds no error)."""
    p = np.asarray(list(probabilities), dtype=float)
    y = np.asarray(list(sizes), dtype=float)
    return float(np.sqrt(np.sum((1.0 - p) / p**2 * y**2)))
