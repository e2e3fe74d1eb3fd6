"""The shape of a spans frame: parents by row, depths, blocking children, times as integers.

The low-level helpers every trace function shares, vectorised over all traces at once.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from obslib import schema
from obslib.errors import InputError

logger = logging.getLogger(__name__)

REQUIRED = ("trace_id", "span_id", "parent_span_id", "start_time", "end_time")
NON_BLOCKING_KINDS = ("producer", "consumer")
_FOLLOWS_FROM = r'"ref_type"\s*:\s*"follows_from"'


def _check(spans: pd.DataFrame) -> None:
    schema.require_columns(spans, REQUIRED, "spans")
    _present(spans, ("trace_id", "span_id", "start_time", "end_time"))


def _present(spans: pd.DataFrame, columns: tuple[str, ...]) -> None:
    for col in columns:
        missing = spans[col].isna().to_numpy()
        if missing.any():
            raise InputError(f"spans row {int(np.flatnonzero(missing)[0])}: {col} is missing")


def epoch_ns(values: pd.Series) -> np.ndarray:
    """Times as int64 nanoseconds since the epoch, whatever the column's unit.

    Raises InputError for times nanoseconds cannot hold (after 2262), instead of wrapping.
    """
    stamps = pd.to_datetime(values, utc=True)
    try:
        return stamps.dt.as_unit("ns").dt.tz_localize(None).astype("int64").to_numpy()
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime) as err:
        raise InputError(f"{values.name or 'a time column'} is out of range: {err}") from err


def from_epoch_ns(ns: np.ndarray, like: pd.Series) -> pd.Series:
    """int64 nanoseconds back to the time type of ``like`` (its unit, aware or naive)."""
    out = pd.Series(pd.to_datetime(np.asarray(ns, dtype=np.int64), utc=True))
    if getattr(like.dtype, "tz", None) is None:
        out = out.dt.tz_convert(None)
    return out.astype(like.dtype)


def no_parent(parents: pd.Series) -> np.ndarray:
    """An empty parent id (OpenTelemetry's way of saying "root") counts as none."""
    return (parents.isna() | (parents.astype(str) == "")).to_numpy()


def parent_index(spans: pd.DataFrame) -> np.ndarray:
    """Row of each span's parent within the same trace; -1 for roots and orphans.

    An empty parent id counts as none, and so does the span's own id (a span cannot be its
    own parent; ``reconstruct`` notes such spans). Span ids must be unique within a trace
    (``reconstruct`` repairs the usual causes first).
    """
    trace = spans["trace_id"].astype(str)
    keys = pd.MultiIndex.from_arrays([trace, spans["span_id"].astype(str)])
    if not keys.is_unique:
        dup = keys[keys.duplicated()][0]
        raise InputError(
            f"span id {dup[1]!r} appears twice in trace {dup[0]!r} with different"
            " contents; run obslib.traces.reconstruct first"
        )
    parents = spans["parent_span_id"].astype(object)
    missing = no_parent(parents)
    parent_keys = pd.MultiIndex.from_arrays([trace, parents.where(~missing, "\x00").astype(str)])
    index = np.asarray(keys.get_indexer(parent_keys), dtype=np.int64)
    index[index == np.arange(len(index))] = -1
    return index


def is_non_blocking(spans: pd.DataFrame) -> np.ndarray:
    """Children whose parent does not wait for them: messaging kinds and FOLLOWS_FROM refs.

    Tags may be dicts or JSON text (``load.spans(json="text")``); both are understood.
    """
    mask = np.zeros(len(spans), dtype=bool)
    if "span_kind" in spans.columns:
        mask |= spans["span_kind"].isin(NON_BLOCKING_KINDS).to_numpy()
    if "tags" in spans.columns and len(spans):
        tags = spans["tags"]
        text = tags.astype(object).where(tags.map(lambda t: isinstance(t, str)), None)
        mask |= text.str.contains(_FOLLOWS_FROM, regex=True, na=False).to_numpy(dtype=bool)
        mask |= np.array(
            [isinstance(t, dict) and t.get("ref_type") == "follows_from" for t in tags], dtype=bool
        )
    return mask


def _depths(up: np.ndarray) -> np.ndarray:
    """Hops to the root (a node that is its own parent) by pointer jumping, log n steps.

    Nodes that never reach a root (they sit on or under a parent cycle) get -1.
    """
    up = up.astype(np.int64)
    is_root = up == np.arange(len(up))
    depth = (~is_root).astype(np.int64)
    for _ in range(int(np.ceil(np.log2(max(len(up), 2)))) + 1):
        depth, up = depth + depth[up], up[up]
    return np.where(is_root[up], depth, -1)  # a cycle jumps onto itself, never onto a root


def self_time(spans: pd.DataFrame, *, _up: np.ndarray | None = None) -> pd.Series:
    """Milliseconds of each span not covered by the union of its children (clipped to it).

    Indexed like ``spans``; always between 0 and the span's duration.
    """
    _check(spans)
    start, end = epoch_ns(spans["start_time"]), epoch_ns(spans["end_time"])
    own = np.arange(len(spans))
    parent = parent_index(spans) if _up is None else np.where(_up == own, -1, _up)
    child = np.flatnonzero(parent >= 0)
    p = parent[child]
    lo = np.clip(start[child], start[p], end[p])
    hi = np.clip(end[child], start[p], end[p])
    order = np.lexsort((lo, p))
    p, lo, hi = p[order], lo[order], hi[order]
    # union length per parent: sweep intervals by start, counting only what extends the
    # furthest end reached so far among earlier siblings
    reach = pd.Series(hi).groupby(p).cummax().to_numpy()
    before = np.full(len(p), np.iinfo(np.int64).min, dtype=np.int64)
    same = np.zeros(len(p), dtype=bool)
    same[1:] = p[1:] == p[:-1]
    before[same] = reach[np.flatnonzero(same) - 1]
    covered = np.maximum(0, hi - np.maximum(lo, before))
    union = np.bincount(p, weights=covered, minlength=len(spans))
    return pd.Series((end - start - union) / 1e6, index=spans.index, name="self_time_ms")


def roots(spans: pd.DataFrame) -> pd.DataFrame:
    """Each trace's root: its earliest-starting span without a parent in the trace.

    Without a parent means the parent id is empty (OpenTelemetry's root), names the span
    itself, or names a span the frame lacks (an orphan, as when a window cuts a trace):
    whichever of those started first, never simply the first such row. Spans starting
    together go by span id, so the answer never depends on row order. One row per trace
    (the spans' rows, their index kept), by trace id; a trace whose every span has a parent
    (a cycle; ``reconstruct`` breaks those) has none.
    """
    _check(spans)
    parentless = spans[parent_index(spans) < 0]
    order = np.lexsort(
        (
            parentless["span_id"].astype(str).to_numpy(),
            epoch_ns(parentless["start_time"]),
            parentless["trace_id"].astype(str).to_numpy(),
        )
    )
    ordered = parentless.iloc[order]
    return ordered[~ordered["trace_id"].astype(str).duplicated()]
