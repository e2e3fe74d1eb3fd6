"""Per-trace numbers from a spans frame: Jaeger's trace statistics (grouped by column or
tag) and the critical path by the "last finishing child" walk.

Pure functions: a frame with the columns of ``distributed_traces`` in, frames out. Work is
vectorised with numpy over all traces at once; the critical-path walk is one explicit loop
of one step per path section (no Python recursion, so a 10,000-deep chain is fine).
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd

from obslib.errors import InputError
from obslib.traces.tree import (
    _check,
    _depths,
    epoch_ns,
    from_epoch_ns,
    is_non_blocking,
    parent_index,
    self_time,
)


def statistics(spans: pd.DataFrame, by: str | list[str] = "service_name") -> pd.DataFrame:
    """Jaeger's Trace Statistics, grouped by columns or tags (``"tag:http.route"``).

    Per group: count, total/avg/min/max duration and self time (ms), and ``self_pct``, the
    group's self time as a share of the traces' durations (self times add up to ~100 %).
    """
    _check(spans)
    keys = [by] if isinstance(by, str) else list(by)
    tag_keys = [k for k in keys if k.startswith("tag:") and k not in spans.columns]
    unknown = [k for k in keys if k not in spans.columns and k not in tag_keys]
    if unknown:
        raise InputError(f"statistics: by names column(s) the spans lack: {', '.join(unknown)}")
    if tag_keys and "tags" not in spans.columns:
        raise InputError(f"statistics: by={tag_keys[0]!r} needs a tags column; the spans lack it")
    frame = spans.copy()
    frame["self_time_ms"] = self_time(spans)
    frame["duration_ms"] = (epoch_ns(spans["end_time"]) - epoch_ns(spans["start_time"])) / 1e6
    if tag_keys:
        tags = [tag_dict(t) for t in frame["tags"]]
        for key in tag_keys:
            name = key.removeprefix("tag:")
            frame[key] = [t.get(name) for t in tags]
    per_trace = frame.groupby("trace_id")
    trace_ms = (
        (per_trace["end_time"].max() - per_trace["start_time"].min()) / pd.Timedelta(milliseconds=1)
    ).sum()
    stats = frame.groupby(keys, dropna=False, observed=True).agg(
        count=("span_id", "size"),
        total_ms=("duration_ms", "sum"),
        avg_ms=("duration_ms", "mean"),
        min_ms=("duration_ms", "min"),
        max_ms=("duration_ms", "max"),
        self_total_ms=("self_time_ms", "sum"),
        self_avg_ms=("self_time_ms", "mean"),
        self_max_ms=("self_time_ms", "max"),
    )
    stats["self_pct"] = 100.0 * stats["self_total_ms"] / trace_ms if trace_ms > 0 else 0.0
    return stats.sort_values("self_total_ms", ascending=False).reset_index()


def tag_dict(tags: object) -> dict:
    """Tags as a dict whether stored as a dict or JSON text (unreadable text: no tags)."""
    if isinstance(tags, str):
        try:
            tags = json.loads(tags)
        except ValueError:
            return {}
    return tags if isinstance(tags, dict) else {}


# -- critical path --------------------------------------------------------------------------


def critical_path(spans: pd.DataFrame) -> pd.DataFrame:
    """The critical path of one trace by Jaeger's "last finishing child" walk.

    From the end of the trace, the path follows the child that finished last before the
    current point, descends into it, and returns to the parent at the child's start.
    Non-blocking children (producer/consumer kinds, FOLLOWS_FROM) are off the path; children
    overflowing their parent are clipped to it; several roots (orphans included) are walked
    as children of one virtual root spanning the trace, each taking the path from where the
    later one started back to its own start. One deliberate difference from Jaeger's UI:
    a child that ends exactly when the path returns to its parent (back-to-back calls) is
    followed, where Jaeger requires it to end strictly earlier and gives the gap to the
    parent. Returns one row per section, latest first:
    ``span_id``, ``section_start``, ``section_end`` (the input's time type).
    """
    _check(spans)
    if spans["trace_id"].nunique() > 1:
        raise InputError("critical_path takes the spans of one trace; use critical_paths")
    return critical_paths(spans).drop(columns="trace_id")


def critical_paths(spans: pd.DataFrame) -> pd.DataFrame:
    """``critical_path`` of every trace in ``spans`` at once, with a ``trace_id`` column."""
    _check(spans)
    if spans.empty:
        return pd.DataFrame(
            {
                "trace_id": pd.Series(dtype="str"),
                "span_id": pd.Series(dtype="str"),
                "section_start": spans["start_time"].iloc[:0],
                "section_end": spans["end_time"].iloc[:0],
            }
        )
    frame = spans.reset_index(drop=True)
    n = len(frame)
    codes, uniques = pd.factorize(frame["trace_id"])
    t = len(uniques)
    start, end = epoch_ns(frame["start_time"]), epoch_ns(frame["end_time"])
    parent = parent_index(frame)
    # nodes n..n+t-1 are one virtual root per trace: its roots and orphans hang from it
    parent = np.where(parent < 0, n + codes, parent)
    up = np.r_[parent, np.arange(n, n + t)]
    depth = _depths(up)
    if (depth < 0).any():
        raise InputError("spans form a parent cycle: a span is its own ancestor (use reconstruct)")
    start = np.r_[start, pd.Series(start).groupby(codes).min().to_numpy()]
    end = np.r_[end, pd.Series(end).groupby(codes).max().to_numpy()]
    # clip children to their parent (Jaeger's overflow sanitising), top-down by depth
    order = np.argsort(depth[:n], kind="stable")
    bounds = np.searchsorted(depth[:n][order], np.arange(1, depth.max() + 2))
    for lo_i, hi_i in itertools.pairwise(bounds):
        rows = order[lo_i:hi_i]
        start[rows] = np.clip(start[rows], start[up[rows]], end[up[rows]])
        end[rows] = np.clip(end[rows], start[rows], end[up[rows]])
    # a producer/consumer root (e.g. a consumer whose producer is outside the window) is
    # still on its trace's path: only a child can be non-blocking for its parent
    has_parent = parent < n
    blocking = np.r_[~(is_non_blocking(frame) & has_parent), np.zeros(t, dtype=bool)]
    kids = np.flatnonzero(blocking)
    # per parent, latest end first; siblings ending together: the longest, then by span id,
    # so the path never depends on row order (a shuffled trace walks the same path)
    ids = frame["span_id"].to_numpy()
    kids = kids[np.lexsort((start[kids], -end[kids], up[kids]))]
    key = np.stack([up[kids], end[kids], start[kids]])
    twin = np.zeros(len(kids), dtype=bool)
    twin[1:] = (key[:, 1:] == key[:, :-1]).all(axis=0)
    twin[:-1] |= twin[1:]
    if twin.any():  # rare: rank just the twins' ids (ranking all of 1M costs ~1 s)
        rank = np.zeros(len(kids), dtype=np.int64)
        rank[twin] = np.unique(ids[kids[twin]].astype(str), return_inverse=True)[1]
        kids = kids[np.lexsort((rank, start[kids], -end[kids], up[kids]))]
    first = np.searchsorted(up[kids], np.arange(n + t), side="left")
    last = np.searchsorted(up[kids], np.arange(n + t), side="right")
    sections = _walk(n, t, start, end, up, kids, first, last)
    nodes = np.array([s[0] for s in sections], dtype=np.int64)
    out = pd.DataFrame(
        {
            "trace_id": pd.Series(
                uniques.to_numpy()[codes[nodes]] if len(nodes) else [], dtype="str"
            ),
            "span_id": pd.Series(ids[nodes] if len(nodes) else [], dtype="str"),
            "section_start": from_epoch_ns([s[1] for s in sections], frame["start_time"]),
            "section_end": from_epoch_ns([s[2] for s in sections], frame["end_time"]),
        }
    )
    return out


def _walk(n, t, start, end, up, kids, first, last) -> list[tuple[int, int, int]]:
    """The last-finishing-child walk from each virtual root; returns (node, start, end)."""
    cursor = first.copy()  # next candidate child of each parent: the point only moves back
    sections: list[tuple[int, int, int]] = []
    for root in range(n, n + t):
        node, point = root, end[root]
        while True:
            c = cursor[node]
            if node >= n:  # under a virtual root: the latest root still running at `point`
                while c < last[node] and start[kids[c]] >= point:
                    c += 1
            else:  # the last child that finished by `point`
                while c < last[node] and end[kids[c]] > point:
                    c += 1
            if c < last[node]:
                child = kids[c]
                cursor[node] = c + 1
                child_end = min(end[child], point)
                if child_end < point and node < n:
                    sections.append((node, child_end, point))
                node, point = child, child_end
                continue
            cursor[node] = c
            if node >= n:
                break
            if start[node] < point:
                sections.append((node, start[node], point))
            node, point = up[node], start[node]
    return sections


def critical_path_segments(spans: pd.DataFrame) -> pd.DataFrame:
    """Critical paths with each section's service, operation and length in ms."""
    paths = critical_paths(spans)
    info = spans[
        [c for c in ("trace_id", "span_id", "service_name", "operation_name") if c in spans.columns]
    ].astype({"trace_id": "str", "span_id": "str"})
    out = paths.merge(info, on=["trace_id", "span_id"], how="left")
    out["duration_ms"] = (out["section_end"] - out["section_start"]) / pd.Timedelta(milliseconds=1)
    return out
