"""What an evidence bundle stores of a loader call: its arguments as canonical JSON (the
call's identity) and its result as JSON with every DataFrame in a Parquet file of its own.

Parquet keeps the loaders' dtypes (tz-aware timestamps with their unit, nullable Int64,
pandas' ``str``, categories, the index) as they are. A column of Python objects (``tags``,
``logs``, ``fields``, ``incident_data``: JSONB parsed into dicts) is not left to pyarrow,
which would infer a struct and give every row every key; it is stored as JSON text and
parsed back with the loaders' own parser (``_core._json_objects``), its missing values
restored as the same missing value (None or NaN) they were. A frame that would not come
back equal is refused when it is recorded, naming the column, never discovered at re-run.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path, PurePath

import numpy as np
import orjson
import pandas as pd

from obslib.errors import InputError
from obslib.load._core import _json_objects

# arguments that say where the data is, not which data: never part of a call's identity,
# never written to a bundle (a URL may hold a password)
CONNECTION_ARGUMENTS = frozenset({"url", "conn", "connection", "dsn"})
_JSON_SCALARS = (dict, list, str, int, float, bool)


class BundleError(InputError):
    """A bundle cannot hold a value, or holds something other than what it should."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- arguments: canonical JSON ------------------------------------------------------------------


def canonical(value: object, where: str) -> object:
    """``value`` as plain JSON that two runs making the same call write the same way: times
    in ISO 8601, a frame by its content's SHA-256, sets sorted. ``where`` names the argument
    in the error for a type no loader takes."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, np.generic):
        return canonical(value.item(), where)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, pd.Timestamp | datetime):
        return {"time": None if pd.isna(value) else pd.Timestamp(value).isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, pd.Timedelta | timedelta):
        return {"timedelta": pd.Timedelta(value).isoformat()}
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, pd.DataFrame):
        text = value.to_json(
            orient="split", index=False, date_format="iso", date_unit="ns", double_precision=15
        )
        return {"frame": sha256(text.encode()), "rows": len(value), "columns": list(value.columns)}
    if isinstance(value, Mapping):
        return {"dict": {str(k): canonical(v, where) for k, v in value.items()}}
    if isinstance(value, set | frozenset):
        return sorted((canonical(v, where) for v in value), key=repr)
    if isinstance(value, list | tuple | pd.Series | pd.Index | np.ndarray):
        return [canonical(v, where) for v in value]
    raise BundleError(f"{where}: a bundle cannot record an argument of type {type(value).__name__}")


# -- results: JSON with frames by reference -----------------------------------------------------


def encode(value: object, put_frame: Callable[[pd.DataFrame], str], where: str) -> object:
    """``value`` as JSON; each DataFrame written by ``put_frame``, which names its file."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, np.generic):
        return encode(value.item(), put_frame, where)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, pd.DataFrame):
        return {"frame": put_frame(value)}
    if isinstance(value, pd.Timestamp):
        return {"timestamp": None if pd.isna(value) else value.isoformat(), "unit": value.unit}
    if value is pd.NaT:
        return {"timestamp": None}
    if isinstance(value, pd.Timedelta):
        return {"timedelta": value.value}
    if isinstance(value, tuple):
        return {"tuple": [encode(v, put_frame, where) for v in value]}
    if isinstance(value, list):
        return {"list": [encode(v, put_frame, where) for v in value]}
    if isinstance(value, dict):
        pairs = [
            [encode(k, put_frame, where), encode(v, put_frame, where)] for k, v in value.items()
        ]
        return {"dict": pairs}
    raise BundleError(f"{where} returned a {type(value).__name__}: a bundle cannot hold it")


def decode(shape: object, get_frame: Callable[[str], pd.DataFrame]) -> object:
    """The value ``encode`` wrote as ``shape``; each frame read by ``get_frame``."""
    if not isinstance(shape, dict):
        return shape
    if "frame" in shape:
        return get_frame(shape["frame"])
    if "float" in shape:
        return float(shape["float"])
    if "timestamp" in shape:
        if shape["timestamp"] is None:
            return pd.NaT
        return pd.Timestamp(shape["timestamp"]).as_unit(shape["unit"])
    if "timedelta" in shape:
        return pd.Timedelta(shape["timedelta"], unit="ns")
    if "tuple" in shape:
        return tuple(decode(v, get_frame) for v in shape["tuple"])
    if "list" in shape:
        return [decode(v, get_frame) for v in shape["list"]]
    if "dict" in shape:
        return {decode(k, get_frame): decode(v, get_frame) for k, v in shape["dict"]}
    raise BundleError(f"a bundle value of unknown form: {sorted(shape)}")


# -- frames: Parquet ---------------------------------------------------------------------------


def frame_bytes(frame: pd.DataFrame, where: str) -> tuple[bytes, dict[str, str]]:
    """``frame`` as Parquet and its JSON columns (name -> the missing value, "None" or
    "nan"); BundleError naming the column if it would not read back equal."""
    out = frame.copy(deep=False)
    json_columns: dict[str, str] = {}
    for column in frame.columns:
        values = frame[column]
        if values.dtype != object or not _is_json(values):
            continue
        missing = _missing_kind(values)
        out[column] = pd.Series(
            [None if _missing(v) else _dumps(v) for v in values], index=frame.index, dtype=object
        )
        json_columns[str(column)] = missing
    buffer = io.BytesIO()
    try:
        out.to_parquet(buffer, engine="pyarrow", compression="zstd")
    except (TypeError, ValueError, ArithmeticError) as err:
        raise BundleError(f"{where}: its rows cannot be stored as Parquet ({err})") from None
    data = buffer.getvalue()
    back = read_frame(data, json_columns)
    for column in json_columns:
        if not _same_objects(back[column], frame[column]):
            raise BundleError(f"{where}: column {column!r} would not read back as it was")
    return data, json_columns


def read_frame(data: bytes, json_columns: Mapping[str, str]) -> pd.DataFrame:
    """The frame ``frame_bytes`` wrote: Parquet, then the JSON columns parsed back."""
    frame = pd.read_parquet(io.BytesIO(data), engine="pyarrow")
    for column, missing in json_columns.items():
        texts = [None if pd.isna(t) else t for t in frame[column]]
        absent = None if missing == "None" else math.nan
        parsed = _json_objects(texts)
        frame[column] = pd.Series(
            [absent if t is None else v for t, v in zip(texts, parsed, strict=True)],
            index=frame.index,
            dtype=object,
        )
    return frame


def _is_json(values: pd.Series) -> bool:
    return all(_missing(v) or isinstance(v, _JSON_SCALARS) for v in values)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _missing_kind(values: pd.Series) -> str:
    kinds = {"None" if v is None else "nan" for v in values if _missing(v)}
    return "nan" if kinds == {"nan"} else "None"


def _dumps(value: object) -> str:
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError):  # an integer past 64 bits
        return json.dumps(value)


def _same_objects(a: pd.Series, b: pd.Series) -> bool:
    """Equal, counting a missing value equal to the same missing value (NaN != NaN)."""
    return all(
        (x is y) or (_missing(x) and _missing(y) and type(x) is type(y)) or x == y
        for x, y in zip(a, b, strict=True)
    )
