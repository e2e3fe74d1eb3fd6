"""DataFrame -> Arrow for the writers: one column spec per table, validated up front.

Every check names the table, row and column, so a bad file fails before anything is written.
pandas 3 stores missing strings as NaN, which naive row tuples would write as the text 'nan';
building Arrow arrays with explicit nulls avoids that trap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from obslib.errors import InputError
from obslib.values import boolean

TEXT, TIME, FLOAT, INT, BOOL, JSON = "text", "time", "float", "int", "bool", "json"


@dataclass(frozen=True)
class Col:
    """One staged column: its kind, whether a value is required, a default, allowed values."""

    name: str
    kind: str = TEXT
    required: bool = False
    default: Any = None
    allowed: tuple[str, ...] | None = None


def to_arrow(frame: pd.DataFrame, spec: tuple[Col, ...], what: str) -> pa.Table:
    """Validate ``frame`` against ``spec`` and build the staging table (columns in spec order)."""
    missing = [c.name for c in spec if c.required and c.name not in frame.columns]
    if missing:
        raise InputError(f"{what}: missing column(s) {', '.join(missing)}")
    frame = frame.reset_index(drop=True)
    arrays = {c.name: _column(frame, c, what) for c in spec}
    return pa.table(arrays)


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
    except (ValueError, TypeError, pa.ArrowInvalid) as err:
        raise InputError(f"{what}: column {col.name} is not {col.kind} ({err})") from err
    if col.kind == TEXT and col.required:
        empty = pc.equal(array, "").to_numpy(zero_copy_only=False)
        if empty.any():
            raise InputError(f"{what} row {_first(empty)}: {col.name} is empty")
    if col.allowed is not None:
        ok = pc.is_in(array, value_set=pa.array(col.allowed)).to_numpy(zero_copy_only=False)
        ok |= ~present
        if not ok.all():
            row = _first(~ok)
            raise InputError(
                f"{what} row {row}: {col.name} {array[row].as_py()!r} is not one of"
                f" {', '.join(col.allowed)}"
            )
    return array


def _typed(values: pd.Series, present: np.ndarray, kind: str) -> pa.Array:
    mask = ~present
    if kind == TEXT:
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
        return pa.array(numbers.astype("int64"), mask=mask)
    if kind == BOOL:
        flags = [boolean(v) for v in values.where(present, False)]
        return pa.array(flags, type=pa.bool_(), mask=mask)
    raise ValueError(f"unknown column kind {kind}")


def _json(values: pd.Series, col: Col, what: str) -> pa.Array:
    empty = json.dumps(col.default) if col.default is not None else None
    if pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_object_dtype(
        values.dtype
    ):
        # already JSON text (a str column): PostgreSQL validates it in the merge
        return pa.array(values.where(values.notna(), empty), type=pa.string())
    out = []
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and value != value):
            out.append(empty)
        elif isinstance(value, str):
            out.append(value)  # already JSON text; PostgreSQL validates it in the merge
        else:
            try:
                out.append(json.dumps(value, default=_json_default))
            except (TypeError, ValueError) as err:
                raise InputError(f"{what} row {i}: {col.name} is not JSON ({err})") from err
    return pa.array(out, type=pa.string())


def _json_default(value: Any) -> Any:
    """Values telemetry carries that json does not know: times, numpy scalars, decimals."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])
