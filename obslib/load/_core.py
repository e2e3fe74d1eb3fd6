"""The loaders' shared layer: fixed queries with bound values, the ADBC fetch, the Arrow
sort and the one type layer between Arrow and pandas (see the package docstring)."""

from __future__ import annotations

import json as _json
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Literal

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from obslib.errors import ObslibError, UsageError
from obslib.storage import db
from obslib.values import Moment, window

JsonMode = Literal["dict", "text"]


class _Query:
    """A fixed SELECT plus conditions from fixed fragments; every value is a $n parameter."""

    def __init__(self, select: str) -> None:
        self.select = select
        self.conditions: list[str] = []
        self.params: list[object] = []

    def where(self, fragment: str, value: object) -> _Query:
        """``fragment`` holds one ``?`` that becomes this value's ``$n``; None adds nothing."""
        if value is not None:
            self.params.append(value)
            self.conditions.append(fragment.replace("?", "$" + str(len(self.params))))
        return self

    def sql(self, group_by: str | None = None) -> str:
        """The statement, unordered: ``_fetch`` sorts the rows in Arrow."""
        clauses = [self.select]
        if self.conditions:
            clauses.append("WHERE " + " AND ".join(self.conditions))
        if group_by:
            clauses.append("GROUP BY " + group_by)
        return "\n".join(clauses)


def parse_json(values: pd.Series) -> pd.Series:
    """Turn a JSON-text column (the ``json="text"`` form) into Python objects."""
    return pd.Series(_json_objects(values), index=values.index, dtype=object)


def _json_objects(values: Iterable[object]) -> list[object]:
    """JSON texts as Python objects with orjson (several times faster than ``json``).

    Empty containers, most of a spans frame's ``logs``, skip the parser (a new object each);
    a missing value stays as it is; an integer past 64 bits, which orjson refuses, goes
    through ``json``.
    """
    loads = orjson.loads
    out: list[object] = []
    append = out.append
    for v in values:
        if v == "[]":
            append([])
        elif v == "{}":
            append({})
        elif isinstance(v, str):
            try:
                append(loads(v))
            except orjson.JSONDecodeError:
                append(_json.loads(v))
        else:
            append(v)
    return out


# -- the type layer -------------------------------------------------------------------------


def _fetch(
    query: str,
    params: Sequence[object],
    url: str | None,
    *,
    order: Sequence[str],
    small: bool = False,
    planned: bool = False,
) -> pa.Table:
    """Run a query with its values bound, on the driver's COPY path; rows sorted by ``order``.

    ADBC streams a result through COPY only for a statement without parameters; with
    parameters libpq buffers the whole result first (3x the frame's memory, measured). So
    the values are bound to session settings in a first statement, and the query reads
    them back with ``current_setting``: still bound, never pasted into SQL. The settings are
    the session's (the kept connection is autocommit): each query reads only those it set.

    ``small=True`` (one trace, one incident; text values only) binds the values to the query
    itself: buffering a few rows costs nothing, and it saves the settings statement's round
    trips, about half of such a call.

    ``planned=True`` binds them to the query too, cast to their types, for aggregates whose
    result is small beside what they scan: the planner then sees the window. Behind a
    session setting it guessed ~1,500 rows and walked the ``start_time`` index over the
    whole table (0.82 s against 0.47 s for SLI counts of 1M spans, measured).
    """
    import adbc_driver_manager

    if planned:
        direct = tuple(map(_as_setting, params))
        query = _PLACEHOLDER.sub(lambda m: _planned_ref(params, int(m.group(1))), query)
        small = True
    elif small:
        direct = tuple(str(p) for p in params)
    elif params:
        assignments = ", ".join(
            "set_config('obslib.p" + str(i) + "', $" + str(i) + ", false)"
            for i in range(1, len(params) + 1)
        )
        settings_sql = "SELECT " + assignments
        values = tuple(map(_as_setting, params))
        query = _PLACEHOLDER.sub(lambda m: _setting_ref(params, int(m.group(1))), query)

    def read(conn) -> pa.Table:
        with conn.cursor() as cur:
            if small:
                cur.execute(query, parameters=direct or None)
                return cur.fetch_arrow_table()
            if params:
                cur.execute(settings_sql, parameters=values)
                cur.fetchall()
            # one Arrow chunk per ~1 GB rather than per 16 MB: the sort's take then reorders
            # each column in place of concatenating its chunks first (peak 2.3x -> ~2x frame)
            cur.adbc_statement.set_options(**{_BATCH_HINT: str(_BATCH_BYTES)})
            cur.execute(query)
            return cur.fetch_arrow_table()

    try:
        table = db.adbc_read(read, url)
    except adbc_driver_manager.Error as err:
        if getattr(err, "sqlstate", None) == "42P01":  # undefined_table
            raise UsageError(
                "the database has no obslib schema yet: run `obslib db up` (or `obslib demo`)"
            ) from err
        raise ObslibError(f"query failed: {db.first_line(err)}") from err
    return _sorted(table, order)


def _sorted(table: pa.Table, keys: Sequence[str]) -> pa.Table:
    """Rows ascending by ``keys`` (each key breaking the ties of those before it), nulls
    last: the order an ``ORDER BY`` of the same keys gives under the C collation (text
    compares byte-wise; the embedded server's databases are C.UTF-8).

    A result that is already in order (a table written in time order often is) is not
    copied.
    """
    if table.num_rows < 2:
        return table
    indices = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys])
    if np.array_equal(indices.to_numpy(), np.arange(table.num_rows, dtype=np.uint64)):
        return table
    if table.num_rows < _PARALLEL_TAKE_ROWS:
        return table.take(indices)
    # Gathering rows is memory-bound and Table.take does one column after another; taking
    # the columns side by side cut the reorder of 1M spans by ~30 % on 2 cores (measured).
    with ThreadPoolExecutor(max_workers=min(4, pa.cpu_count(), table.num_columns)) as pool:
        columns = list(pool.map(lambda column: column.take(indices), table.columns))
    return pa.Table.from_arrays(columns, schema=table.schema)


_PARALLEL_TAKE_ROWS = 100_000


_PLACEHOLDER = re.compile(r"\$(\d+)")
_BATCH_HINT = "adbc.postgresql.batch_size_hint_bytes"
_BATCH_BYTES = 1 << 30


def _as_setting(value: object) -> str:
    """A parameter as the text a session setting holds (lists as JSON arrays)."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return _json.dumps([str(v) for v in value])
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _setting_ref(params: Sequence[object], n: int) -> str:
    """SQL that reads parameter ``n`` back from its setting, cast to the value's type.

    Always a sub-select, which PostgreSQL runs once per query (an InitPlan): a bare
    ``current_setting(...)::timestamptz`` in a WHERE clause is evaluated, and its text
    parsed, for every row scanned (2.7 s of a 5 s read of 1M spans, measured).
    """
    value = params[n - 1]
    ref = "current_setting('obslib.p" + str(n) + "')"
    if value is None:
        return "NULL"
    if isinstance(value, list | tuple):
        return "ARRAY(SELECT jsonb_array_elements_text(" + ref + "::jsonb))"
    if isinstance(value, datetime):
        cast = "::timestamptz"
    elif isinstance(value, bool):
        cast = "::boolean"
    elif isinstance(value, int):
        cast = "::int8"
    elif isinstance(value, float):
        cast = "::float8"
    else:
        cast = ""
    return "(SELECT " + ref + cast + ")"


def _planned_ref(params: Sequence[object], n: int) -> str:
    """Parameter ``n`` bound to the statement (as text), cast to the value's type."""
    value = params[n - 1]
    if value is None:
        raise ValueError(f"parameter ${n} is None: leave the condition out instead")
    if isinstance(value, list | tuple):
        return "ARRAY(SELECT jsonb_array_elements_text($" + str(n) + "::jsonb))"
    if isinstance(value, datetime):
        return "$" + str(n) + "::timestamptz"
    if isinstance(value, bool):
        return "$" + str(n) + "::boolean"
    if isinstance(value, int):
        return "$" + str(n) + "::int8"
    if isinstance(value, float):
        return "$" + str(n) + "::float8"
    return "$" + str(n)


_INT64 = pd.Int64Dtype()
_STR = pd.StringDtype(na_value=float("nan"))  # pandas' default "str" dtype, Arrow-backed


def _typed(
    table: pa.Table,
    *,
    times: Sequence[str] = (),
    json_cols: Sequence[str] = (),
    json: JsonMode = "dict",
) -> pd.DataFrame:
    """The frame for a result, built column by column from Arrow.

    One array per column through pandas' own Arrow hooks (``__from_arrow__``), then one
    DataFrame of arrays: a frame of Series, or ``Table.to_pandas`` plus per-column fixes,
    costs ~5 ms of pandas bookkeeping, more than a one-trace query itself.
    """
    n = table.num_rows
    columns: dict[str, object] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        kind = col.type
        if name in json_cols and json == "dict":
            objects = pd.Series(_json_objects(col.to_pylist()), dtype=object)
            columns[name] = objects.to_numpy()
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            columns[name] = _STR.__from_arrow__(col)
        elif pa.types.is_integer(kind):
            columns[name] = _INT64.__from_arrow__(col.cast(pa.int64()))
        elif pa.types.is_timestamp(kind):  # timestamptz arrives as UTC instants
            unit = kind.unit if kind.unit in ("s", "ms", "us", "ns") else "us"
            columns[name] = pd.DatetimeTZDtype(unit=unit, tz="UTC").__from_arrow__(
                col.cast(pa.timestamp(unit, tz="UTC"))
            )
        else:
            series = col.to_pandas()
            columns[name] = series.array if series.dtype == object else series.to_numpy()
    for name in times:
        if not isinstance(getattr(columns[name], "dtype", None), pd.DatetimeTZDtype):
            columns[name] = pd.to_datetime(pd.Series(columns[name]), utc=True).array
    return pd.DataFrame(columns, index=pd.RangeIndex(n), copy=False)


def _json_mode(json: str) -> None:
    if json not in ("dict", "text"):
        raise UsageError(f"json must be 'dict' or 'text', not {json!r}")


def _window(start: Moment | None, end: Moment | None, *, required: bool = True):
    if required and (start is None or end is None):
        raise UsageError("a time window needs both start and end")
    return tuple(None if t is None else t.to_pydatetime() for t in window(start, end))


def _texts(values: Iterable[str] | None) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        return [values]
    return [str(v) for v in values]


def _checked(values: Iterable[str] | None, allowed: tuple[str, ...], what: str) -> list[str] | None:
    items = _texts(values)
    if items is not None:
        unknown = [v for v in items if v not in allowed]
        if unknown:
            raise UsageError(f"unknown {what} {unknown[0]!r} (one of {', '.join(allowed)})")
    return items
