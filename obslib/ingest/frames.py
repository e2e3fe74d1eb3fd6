"""DataFrame -> Arrow for the writers: one column spec per table, validated up front.

Every check names the table, row and column, so a bad file fails before anything is written
and PostgreSQL never answers with a message that names neither. The checks are vectorised
(Arrow compute), so they cost little next to the COPY. pandas 3 stores missing strings as NaN,
which naive row tuples would write as the text 'nan'; building Arrow arrays with explicit
nulls avoids that trap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from obslib.errors import InputError
from obslib.values import boolean

TEXT, TIME, FLOAT, INT, BOOL, JSON = "text", "time", "float", "int", "bool", "json"

INT4_MAX = 2**31 - 1  # every INT column is a PostgreSQL INTEGER


@dataclass(frozen=True)
class Col:
    """One staged column: its kind, whether a value is required, a default, allowed values.

    ``width`` is the VARCHAR length and ``digits`` the NUMERIC (precision, scale) of the
    column it lands in; a test compares both with the migrated database. ``key`` marks an
    identifier, which may not be empty or blank even where it is optional.
    """

    name: str
    kind: str = TEXT
    required: bool = False
    default: Any = None
    allowed: tuple[str, ...] | None = None
    width: int | None = None
    digits: tuple[int, int] | None = None
    key: bool = False


def to_arrow(frame: pd.DataFrame, spec: tuple[Col, ...], what: str) -> pa.Table:
    """Validate ``frame`` against ``spec`` and build the staging table (columns in spec order).

    JSON text is not parsed here: jsonb's own parser decides in the merge, which names the
    row when it refuses one (see ``tables.retried``).
    """
    missing = [c.name for c in spec if c.required and c.name not in frame.columns]
    if missing:
        raise InputError(f"{what}: missing column(s) {', '.join(missing)}")
    frame = frame.reset_index(drop=True)
    return pa.table({c.name: _column(frame, c, what) for c in spec})


def _column(frame: pd.DataFrame, col: Col, what: str) -> pa.Array:
    n = len(frame)
    values = frame[col.name] if col.name in frame.columns else pd.Series([None] * n, dtype=object)
    present = values.notna().to_numpy()
    if col.kind == JSON:
        return _json(values, col, what)
    if col.default is not None:
        values = values.astype(object).where(present, col.default)
        present = np.ones(n, dtype=bool)
    if col.required and not present.all():
        raise InputError(f"{what} row {_first(~present)}: {col.name} is missing")
    try:
        array = _typed(values, present, col.kind)
    except (ValueError, TypeError, OverflowError, pa.ArrowInvalid) as err:
        raise InputError(f"{what}: column {col.name} is not {col.kind} ({err})") from err
    if col.kind == TEXT:
        _check_text(array, col, what)
    elif col.kind == FLOAT:
        check_number(array, col, what)
    elif col.kind == INT:
        out = _mask(pc.greater(pc.abs(array), INT4_MAX))
        if out.any():
            row = _first(out)
            raise InputError(f"{what} row {row}: {col.name} {array[row].as_py()} is out of range")
    return array


def _check_text(array: pa.Array, col: Col, what: str) -> None:
    """Values PostgreSQL would refuse with no row named: NUL, too long, blank, not allowed."""
    nul = _mask(pc.match_substring(array, "\x00"))
    if nul.any():
        raise InputError(f"{what} row {_first(nul)}: {col.name} contains a NUL character")
    if col.required or col.key:
        blank = _mask(pc.equal(pc.utf8_trim_whitespace(array), ""))
        if blank.any():
            row = _first(blank)
            state = "empty" if array[row].as_py() == "" else "blank"
            hint = "" if col.required else " (leave it null instead)"
            raise InputError(f"{what} row {row}: {col.name} is {state}{hint}")
    if col.allowed is not None:
        bad = _mask(
            pc.and_(pc.invert(pc.is_in(array, value_set=pa.array(col.allowed))), pc.is_valid(array))
        )
        if bad.any():
            row = _first(bad)
            raise InputError(
                f"{what} row {row}: {col.name} {array[row].as_py()!r} is not one of"
                f" {', '.join(col.allowed)}"
            )
    if col.width is not None:
        long = _mask(pc.greater(pc.utf8_length(array), col.width))
        if long.any():
            row = _first(long)
            raise InputError(
                f"{what} row {row}: {col.name} is {len(array[row].as_py())} characters long,"
                f" more than the {col.width} its column holds"
            )


def check_number(array: pa.Array | pa.ChunkedArray, col: Col, what: str) -> None:
    """A finite value that fits NUMERIC(precision, scale) once rounded to its scale."""
    bad = _mask(pc.invert(pc.is_finite(array)))
    if bad.any():
        row = _first(bad)
        raise InputError(f"{what} row {row}: {col.name} is {array[row].as_py()}, not a number")
    if col.digits is not None:
        precision, scale = col.digits
        limit = 10.0 ** (precision - scale)
        over = _mask(pc.greater_equal(pc.abs(pc.round(array, scale)), limit))
        if over.any():
            row = _first(over)
            raise InputError(
                f"{what} row {row}: {col.name} {array[row].as_py()} does not fit its column"
                f" (NUMERIC({precision},{scale}): less than {limit:.0e})"
            )


def _typed(values: pd.Series, present: np.ndarray, kind: str) -> pa.Array:
    mask = ~present
    if kind == TEXT:
        if isinstance(values.dtype, pd.StringDtype):  # Arrow-backed already: nulls kept
            return pa.array(values, type=pa.string())
        return pa.array(values.astype(object).where(present, None).astype(object), type=pa.string())
    if kind == TIME:
        stamps = pd.to_datetime(values, utc=True, format="ISO8601")
        return pa.array(stamps.astype("datetime64[us, UTC]"), mask=mask)
    if kind == FLOAT:
        return pa.array(pd.to_numeric(values.where(present, np.nan)).astype("float64"), mask=mask)
    if kind == INT:
        numbers = pd.to_numeric(values.where(present, 0))
        if (numbers != numbers.round()).any():
            raise ValueError("has fractional values")
        if (numbers.abs() > np.iinfo("int64").max).any():
            raise OverflowError("has values past 64 bits")
        return pa.array(numbers.astype("int64"), mask=mask)
    if kind == BOOL:
        flags = [boolean(v) for v in values.where(present, False)]
        return pa.array(flags, type=pa.bool_(), mask=mask)
    raise ValueError(f"unknown column kind {kind}")


def _json(values: pd.Series, col: Col, what: str) -> pa.Array:
    """JSON text for the staging table: values serialised, text passed on (jsonb checks it
    in the merge), NUL characters refused here (no text column can carry one)."""
    empty = json.dumps(col.default) if col.default is not None else None
    if isinstance(values.dtype, pd.StringDtype):  # already JSON text, Arrow-backed
        array = pa.array(values, type=pa.string())
        nul = _mask(pc.match_substring(array, "\x00"))
        if nul.any():
            raise InputError(f"{what} row {_first(nul)}: {col.name} contains a NUL character")
        return pc.fill_null(array, empty) if empty is not None else array
    out = []
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and value != value):
            out.append(empty)
        elif isinstance(value, str):  # already JSON text
            if "\x00" in value:
                raise InputError(f"{what} row {i}: {col.name} contains a NUL character")
            out.append(value)
        else:
            out.append(_dumps(value, col, what, i))
    return pa.array(out, type=pa.string())


_ORJSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _dumps(value: Any, col: Col, what: str, row: int) -> str:
    """orjson (8x faster than json: this was a third of a receiver's write), checked with
    json where orjson is lenient or strict in other ways: it writes NaN as null (json
    refuses it: not JSON, and jsonb refuses it) and refuses integers past 64 bits."""
    try:
        text = orjson.dumps(value, default=json_default, option=_ORJSON)
        if b"null" not in text:
            return text.decode()
    except (orjson.JSONEncodeError, TypeError):
        pass
    try:
        # allow_nan=False: NaN and Infinity are not JSON, and jsonb refuses them
        return json.dumps(value, default=json_default, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise InputError(f"{what} row {row}: {col.name} is not JSON ({err})") from err


def json_default(value: Any) -> Any:
    """Values telemetry carries that json does not know: times, numpy scalars, decimals."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _mask(result: pa.Array | pa.ChunkedArray, missing: bool = False) -> np.ndarray:
    """A boolean compute result as numpy, nulls (missing values) as ``missing``."""
    return pc.fill_null(result, missing).to_numpy(zero_copy_only=False)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])
