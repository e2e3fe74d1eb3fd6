"""The loaders' shared layer: fixed queries with bound values, the ADBC fetch, the Arrow
sort and the one type layer between Arrow and pandas (see the package docstring)."""

from __future__ import annotations

import gc
import json as _json
import re
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from obslib.errors import ObslibError, UsageError
from obslib.storage import db
from obslib.values import Moment, json_value, window

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
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        texts = pa.array(values.array)  # the Arrow data pandas holds, not a copy
        objects = _json_column(
            pa.chunked_array([texts]) if isinstance(texts, pa.Array) else texts,
            missing=values.dtype.na_value,
        )
    else:
        objects = _objects(_json_objects(values))
    return pd.Series(objects, index=values.index, dtype=object)


def _json_objects(values: Iterable[object]) -> list[object]:
    """JSON texts as Python objects with orjson (several times faster than ``json``).

    Empty containers, most of a spans frame's ``logs``, skip the parser (a new object each);
    a missing value stays as it is; ``values.json_value`` parses the rest (exactly: an
    integer past 64 bits stays an int), ``json`` what orjson refuses and jsonb stores (a
    number past a double's range, read as infinity).
    """
    loads = json_value
    out: list[object] = []
    append = out.append
    with _no_gc():
        for v in values:
            if v == "[]":
                append([])
            elif v == "{}":
                append({})
            elif isinstance(v, str):
                try:
                    append(loads(v))
                except ValueError:  # jsonb holds numbers past a double (1e400): inf
                    append(_json.loads(v))
            else:
                append(v)
    return out


def _json_column(column: pa.ChunkedArray, missing: object = None) -> np.ndarray:
    """A JSON-text column as an object array of Python values, one new object per row.

    Telemetry repeats itself: the 300k demo spans hold 258 distinct ``tags`` texts and 70
    ``logs`` texts. So each distinct text is parsed once, and a row gets a copy of its
    text's value: a shallow copy is a whole one for a flat value (a dict or list of
    scalars), a nested one is parsed again for each of its rows, and a scalar is shared (it
    cannot change). Parsing every row took 1.0-1.9 s for 300k ``tags``, this 0.1 s
    (bench/load.py --breakdown). A column with few repeats is parsed row by row. A missing
    value becomes ``missing``.
    """
    out = np.empty(len(column), dtype=object)
    start = 0
    for chunk in column.chunks:
        n = len(chunk)
        if n == 0:
            continue
        text = pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)
        encoded = pc.dictionary_encode(chunk) if text else None
        if encoded is None or len(encoded.dictionary) * _REPEATS > n:
            rows = _json_objects(chunk.to_pylist())
            if chunk.null_count and missing is not None:
                rows = [missing if v is None else v for v in rows]
            out[start : start + n] = _objects(rows)
        else:
            out[start : start + n] = _from_distinct(encoded.indices, encoded.dictionary, missing)
        start += n
    return out


_REPEATS = 4  # parse distinct texts once when each repeats at least this often, on average


def _from_distinct(indices: pa.Array, distinct: pa.Array, missing: object) -> np.ndarray:
    """Rows of a dictionary-encoded JSON column as objects: each distinct text parsed once."""
    values = _json_objects(distinct.to_pylist())
    templates = _objects([*values, missing])  # the last one where the codes are null
    flat = np.fromiter(map(_is_flat, values), dtype=bool, count=len(values))
    codes = indices.fill_null(len(values)).to_numpy(zero_copy_only=False)
    # a column of one container type (tags are dicts, logs lists) copies with that type's
    # copy, called from C: no Python function per row (twice as fast, measured)
    kinds = {type(v) for v in values} | ({type(None)} if indices.null_count else set())
    copy = dict.copy if kinds == {dict} else list.copy if kinds == {list} else _fresh
    with _no_gc():
        rows = np.fromiter(map(copy, templates[codes]), dtype=object, count=len(codes))
    if not flat.all():
        nested = np.flatnonzero(~np.append(flat, True)[codes])
        texts = distinct.take(pa.array(codes[nested])).to_pylist()
        rows[nested] = _objects(_json_objects(texts))
    return rows


def _objects(items: list[object]) -> np.ndarray:
    """A 1-d object array of ``items`` (lists stay elements: no nested array)."""
    return np.fromiter(items, dtype=object, count=len(items))


def _is_flat(value: object) -> bool:
    """True when a shallow copy of ``value`` shares nothing that can change."""
    if isinstance(value, dict):
        return all(type(v) in _SCALARS for v in value.values())
    if isinstance(value, list):
        return all(type(v) in _SCALARS for v in value)
    return True


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _fresh(value: object) -> object:
    """A new container equal to ``value`` (flat ones; see ``_from_distinct``), or the scalar."""
    if type(value) is dict or type(value) is list:
        return value.copy()
    return value


@contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic garbage collector off while building many containers that hold no cycles.

    Each few hundred new dicts or lists trigger a collection that walks the young ones;
    with it off, 300k ``logs`` values build in 0.3 s instead of 0.7-1.8 s (measured).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# -- the type layer -------------------------------------------------------------------------


def _fetch(
    query: str,
    params: Sequence[object],
    url: str | None,
    *,
    order: Sequence[str],
    small: bool = False,
    planned: bool = False,
    split: tuple[str, datetime, datetime] | None = None,
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

    ``split=(column, lo, hi)`` (a NOT NULL time column, ``order``'s first key, whose window
    the query already keeps to ``[lo, hi)``) reads the window in ``_SLICES`` slices of time,
    one after another in one read-only REPEATABLE READ transaction (one snapshot, as one
    statement has), each sorted while the next one streams in; the slices' tables are
    then chunks of one.
    A fetched table is freed only whole (one C-data import), so the sort's copy of one big
    result doubled the memory; a slice's import goes as soon as it is sorted (1M spans:
    peak 1.9x the frame in one piece, see bench/load.py).
    """
    import adbc_driver_manager

    if planned:
        direct = tuple(map(_as_setting, params))
        query = _PLACEHOLDER.sub(lambda m: _planned_ref(params, int(m.group(1))), query)
        small = True
    elif small:
        direct = tuple(str(p) for p in params)
    elif params:
        settings_sql, values = _settings(params)
        query = _PLACEHOLDER.sub(lambda m: _setting_ref(params, int(m.group(1))), query)
    slices = [] if small or split is None else _slice_queries(query, params, order, split)
    if slices:
        settings_sql, values = _settings([*params, *_edges(split)])

    def fetch(cur, sql: str) -> pa.Table:
        # one Arrow chunk per ~1 GB rather than per 16 MB: the sort's take then reorders
        # each column in place of concatenating its chunks first (peak 2.3x -> ~2x frame)
        cur.adbc_statement.set_options(**{_BATCH_HINT: str(_BATCH_BYTES)})
        cur.execute(sql)
        return cur.fetch_arrow_table()

    def read(conn) -> pa.Table | list[pa.Table]:
        with conn.cursor() as cur:
            if small:
                cur.execute(query, parameters=direct or None)
                return cur.fetch_arrow_table()
            if slices:
                cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            if params or slices:
                cur.execute(settings_sql, parameters=values)
                cur.fetchall()
            if not slices:
                return fetch(cur, query)
            parts = []
            # the next slice streams in (ADBC and Arrow let the GIL go) while this one sorts
            with ThreadPoolExecutor(max_workers=1) as pool:
                pending = pool.submit(fetch, cur, slices[0])
                for sql in [*slices[1:], None]:
                    holder = [pending.result()]
                    if sql is not None:
                        pending = pool.submit(fetch, cur, sql)
                    parts.append(_sorted_owned(holder, order))
            cur.execute("COMMIT")
            return parts

    try:
        table = db.adbc_read(read, url)
        if isinstance(table, list):
            return pa.concat_tables(table)  # the slices are in order, each sorted
    except adbc_driver_manager.Error as err:
        if getattr(err, "sqlstate", None) == "42P01":  # undefined_table
            raise UsageError(
                "the database has no obslib schema yet: run `obslib db up` (or `obslib demo`)"
            ) from err
        raise ObslibError(f"query failed: {db.first_line(err)}") from err
    holder = [table]
    del table
    return _sorted_owned(holder, order)


_SLICES = 8


def _settings(params: Sequence[object]) -> tuple[str, tuple[str, ...]]:
    """The statement that binds each parameter to its session setting, and its values."""
    assignments = ", ".join(
        "set_config('obslib.p" + str(i) + "', $" + str(i) + ", false)"
        for i in range(1, len(params) + 1)
    )
    return "SELECT " + assignments, tuple(map(_as_setting, params))


def _edges(split: tuple[str, datetime, datetime]) -> list[datetime]:
    """``_SLICES + 1`` instants from ``lo`` to ``hi``, evenly spaced."""
    _, lo, hi = split
    return [lo + (hi - lo) * k / _SLICES for k in range(_SLICES)] + [hi]


def _slice_queries(
    query: str,
    params: Sequence[object],
    order: Sequence[str],
    split: tuple[str, datetime, datetime],
) -> list[str]:
    """``query`` (its values already read from settings) narrowed to each slice of time;
    the slice edges are the settings after the query's own parameters."""
    column = split[0]
    if not order or order[0] != column or not _IDENTIFIER.fullmatch(column):
        raise ValueError(f"split column {column!r} must be the first sort key, a plain name")
    edges = [*params, *_edges(split)]
    first = len(params) + 1
    return [
        "SELECT * FROM (\n" + query + "\n) AS sliced WHERE " + column + " >= "
        + _setting_ref(edges, first + k) + " AND " + column + " < "
        + _setting_ref(edges, first + k + 1)
        for k in range(_SLICES)
    ]  # fmt: skip


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


def _sorted(table: pa.Table, keys: Sequence[str]) -> pa.Table:
    """Rows ascending by ``keys`` (each key breaking the ties of those before it), nulls
    last: the order an ``ORDER BY`` of the same keys gives under the C collation (text
    compares byte-wise; the embedded server's databases are C.UTF-8).

    A result that is already in order (a table written in time order often is) is not
    copied.
    """
    holder = [table]
    del table
    return _sorted_owned(holder, keys)


def _sorted_owned(holder: list[pa.Table], keys: Sequence[str]) -> pa.Table:
    """``_sorted`` of the one table in ``holder``, which it empties: when nobody else holds
    the table, each column's old buffers go as soon as its reordered copy is made, so the
    reorder needs the table plus a column or two, not two tables (1M spans: peak 1.9x the
    frame before, measured in bench/load.py).

    A result ADBC fetched is one C-data import, freed only when every column is, so this
    pays off for a table fetched in slices (``_fetch``'s ``split``). The copies come from
    the system allocator, where ADBC's freed slices are, not from Arrow's own pool, which
    would grow beside them (300k spans in 8 slices: peak 1.58x the frame against 1.92x).
    Text comes back as ``large_string``, pandas' ``str``, so the frame takes it as it is.
    """
    table = holder.pop()
    schema = _large_text(table.schema)
    if table.num_rows < 2:
        return table.cast(schema)
    indices = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys])
    if _in_order(indices):
        return table.cast(schema)
    columns: list[pa.ChunkedArray | None] = list(table.columns)
    del table

    def reorder(i: int) -> pa.ChunkedArray:
        column, columns[i] = columns[i], None
        assert column is not None
        taken = pc.take(column, indices, memory_pool=_POOL)
        if pa.types.is_string(taken.type):
            taken = pc.cast(taken, pa.large_string(), memory_pool=_POOL)
        return taken

    if len(indices) < _PARALLEL_TAKE_ROWS:
        taken = [reorder(i) for i in range(len(columns))]
    else:
        # Gathering rows is memory-bound and Table.take does one column after another;
        # taking the columns side by side cut the reorder of 1M spans by ~30 % on 2 cores.
        with ThreadPoolExecutor(max_workers=min(4, pa.cpu_count(), len(columns))) as pool:
            taken = list(pool.map(reorder, range(len(columns))))
    return pa.Table.from_arrays(taken, schema=schema)


def _large_text(schema: pa.Schema) -> pa.Schema:
    """``schema`` with its ``string`` fields as ``large_string``."""
    for i, field in enumerate(schema):
        if pa.types.is_string(field.type):
            schema = schema.set(i, field.with_type(pa.large_string()))
    return schema


_POOL = pa.system_memory_pool()


def _in_order(indices: pa.Array) -> bool:
    """True when a permutation leaves every row where it is."""
    positions = indices.to_numpy()
    return bool(positions[0] == 0 and (np.diff(positions) == 1).all())


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
            columns[name] = _json_column(col)
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
