"""Trace reconstruction on a spans frame: tree shape, self time and the critical path.

Pure functions: a frame with the columns of ``distributed_traces`` in, frames out. Work is
vectorised with numpy except the critical-path walk, which is an explicit loop (no Python
recursion, so a 10,000-deep chain is fine) of one step per path section.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from obslib.errors import InputError

logger = logging.getLogger(__name__)

_REQUIRED = ("trace_id", "span_id", "parent_span_id", "start_time", "end_time")
NON_BLOCKING_KINDS = ("producer", "consumer")


def _check(spans: pd.DataFrame) -> None:
    missing = [c for c in _REQUIRED if c not in spans.columns]
    if missing:
        raise InputError(f"spans frame lacks column(s): {', '.join(missing)}")


def _ns(values: pd.Series) -> np.ndarray:
    """Times as int64 nanoseconds since the epoch, whatever the column's unit."""
    return pd.to_datetime(values, utc=True).to_numpy(dtype="datetime64[ns]").astype(np.int64)


def _parent_index(spans: pd.DataFrame) -> np.ndarray:
    """Row of each span's parent within the same trace, -1 for roots and orphans."""
    keys = pd.MultiIndex.from_arrays([spans["trace_id"].astype(str), spans["span_id"].astype(str)])
    parent_keys = pd.MultiIndex.from_arrays(
        [
            spans["trace_id"].astype(str),
            spans["parent_span_id"]
            .astype(object)
            .where(spans["parent_span_id"].notna(), "\x00")
            .astype(str),
        ]
    )
    index = keys.get_indexer(parent_keys)
    return np.asarray(index, dtype=np.int64)


def is_non_blocking(spans: pd.DataFrame) -> np.ndarray:
    """Children whose parent does not wait for them: messaging kinds and FOLLOWS_FROM refs."""
    mask = np.zeros(len(spans), dtype=bool)
    if "span_kind" in spans.columns:
        mask |= spans["span_kind"].isin(NON_BLOCKING_KINDS).to_numpy()
    if "tags" in spans.columns:
        mask |= np.array(
            [isinstance(t, dict) and t.get("ref_type") == "follows_from" for t in spans["tags"]]
        )
    return mask


def self_time(spans: pd.DataFrame) -> pd.Series:
    """Milliseconds of each span not covered by the union of its children (clipped to it).

    Indexed like ``spans``; always between 0 and the span's duration.
    """
    _check(spans)
    start, end = _ns(spans["start_time"]), _ns(spans["end_time"])
    parent = _parent_index(spans)
    child = np.flatnonzero(parent >= 0)
    p = parent[child]
    lo = np.clip(start[child], start[p], end[p])
    hi = np.clip(end[child], start[p], end[p])
    order = np.lexsort((lo, p))
    p, lo, hi = p[order], lo[order], hi[order]
    # union length per parent: sweep intervals by start, counting only what extends the
    # furthest end reached so far among earlier siblings
    reach = pd.Series(hi).groupby(p).cummax().to_numpy()
    before = np.empty_like(reach)
    before[:] = np.iinfo(np.int64).min
    same = np.zeros(len(p), dtype=bool)
    same[1:] = p[1:] == p[:-1]
    before[same] = reach[np.flatnonzero(same) - 1]
    covered = np.maximum(0, hi - np.maximum(lo, before))
    union = np.bincount(p, weights=covered, minlength=len(spans))
    return pd.Series((end - start - union) / 1e6, index=spans.index, name="self_time_ms")


def critical_path(spans: pd.DataFrame) -> pd.DataFrame:
    """The critical path of one trace by Jaeger's "last finishing child" walk.

    From the end of the trace, the path follows the child that finished last before the
    current point, descends into it, and returns to the parent at the child's start.
    Non-blocking children (producer/consumer kinds, FOLLOWS_FROM) are off the path; children
    overflowing their parent are clipped to it; several roots (orphans included) are walked
    as children of one virtual root spanning the trace, each taking the path from where the
    later one started back to its own start. Returns one row per section,
    latest first: ``span_id``, ``section_start``, ``section_end`` (the input's time type).
    """
    _check(spans)
    if spans.empty:
        return pd.DataFrame(
            {
                "span_id": pd.Series(dtype="str"),
                "section_start": spans["start_time"].iloc[:0],
                "section_end": spans["end_time"].iloc[:0],
            }
        )
    if spans["trace_id"].nunique() > 1:
        raise InputError("critical_path takes the spans of one trace; group by trace_id first")
    frame = spans.reset_index(drop=True)
    n = len(frame)
    start, end = _ns(frame["start_time"]), _ns(frame["end_time"])
    parent = _parent_index(frame)
    blocking = ~is_non_blocking(frame)
    # node n is the virtual root: roots, orphans and nothing else hang from it
    parent = np.where(parent < 0, n, parent)
    start = np.r_[start, start.min()]
    end = np.r_[end, end.max()]
    # clip children to their parent (Jaeger's overflow sanitising), top-down by depth
    depth = _depth(parent, n)
    for d in range(1, int(depth.max()) + 1):
        rows = np.flatnonzero(depth == d)
        start[rows] = np.clip(start[rows], start[parent[rows]], end[parent[rows]])
        end[rows] = np.clip(end[rows], start[rows], end[parent[rows]])
    # children per parent, latest finishing first
    kids = np.flatnonzero(blocking)
    kids = kids[np.lexsort((-end[kids], parent[kids]))]
    first = np.searchsorted(parent[kids], np.arange(n + 1), side="left")
    last = np.searchsorted(parent[kids], np.arange(n + 1), side="right")
    cursor = first.copy()  # next candidate child of each parent (times only decrease)

    sections: list[tuple[int, int, int]] = []
    node, point = n, end[n]
    while True:
        # the last child of `node` that finished before `point`
        # (under the virtual root: the latest root still running at `point`, cut there)
        c = cursor[node]
        if node == n:
            while c < last[node] and start[kids[c]] >= point:
                c += 1
        else:
            while c < last[node] and end[kids[c]] > point:
                c += 1
        cursor[node] = c
        if c < last[node]:
            child = kids[c]
            cursor[node] = c + 1
            child_end = min(end[child], point)
            if child_end < point:
                sections.append((node, child_end, point))
            node, point = child, child_end
            continue
        if start[node] < point:
            sections.append((node, start[node], point))
        if node == n:
            break
        node, point = parent[node], start[node]
    result = [(i, s, e) for i, s, e in sections if i != n]
    ids = frame["span_id"].to_numpy()
    unit = frame["start_time"].dtype
    out = pd.DataFrame(
        {
            "span_id": pd.Series([ids[i] for i, _, _ in result], dtype="str"),
            "section_start": pd.to_datetime([s for _, s, _ in result], utc=True),
            "section_end": pd.to_datetime([e for _, _, e in result], utc=True),
        }
    )
    for col in ("section_start", "section_end"):
        out[col] = out[col].astype(unit)
    return out


def _depth(parent: np.ndarray, root: int) -> np.ndarray:
    """Depth below ``root`` for every node by pointer jumping (log n vector steps).

    Raises InputError on a parent cycle instead of looping forever.
    """
    size = len(parent) + 1
    up = np.r_[parent, root].astype(np.int64)
    depth = np.where(np.arange(size) == root, 0, 1)
    for _ in range(int(np.ceil(np.log2(size))) + 2):
        at_root = up == root
        if at_root.all():
            return depth[:-1] if len(depth) > len(parent) else depth
        depth = np.where(at_root, depth, depth + depth[up])
        up = np.where(at_root, up, up[up])
    raise InputError("spans form a parent cycle: a span is its own ancestor")
