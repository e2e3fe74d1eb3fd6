"""Trace reconstruction on a spans frame: tree shape, self time, statistics, critical path.

Pure functions: a frame with the columns of ``distributed_traces`` in, frames out. Work is
vectorised with numpy over all traces at once; the critical-path walk is one explicit loop
of one step per path section (no Python recursion, so a 10,000-deep chain is fine).
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from obslib import schema
from obslib.errors import InputError

logger = logging.getLogger(__name__)

REQUIRED = ("trace_id", "span_id", "parent_span_id", "start_time", "end_time")
NON_BLOCKING_KINDS = ("producer", "consumer")
_FOLLOWS_FROM = r'"ref_type"\s*:\s*"follows_from"'
_JSON_COLUMNS = ("tags", "logs")
# what makes two rows "the same span" before their JSON columns are compared (duration_ms is
# derived from the times, and JSON columns hold unhashable dicts: compared as canonical text)
_IDENTITY = tuple(c for c in schema.SPAN_COLUMNS if c not in ("duration_ms", *_JSON_COLUMNS))
# the instants int64 nanoseconds can hold; a time outside them cannot be analysed
_NS_RANGE = (pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC"))


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


def _no_parent(parents: pd.Series) -> np.ndarray:
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
    missing = _no_parent(parents)
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


# -- reconstruction -------------------------------------------------------------------------


@dataclass(frozen=True)
class Reconstruction:
    """A cleaned span forest and what had to be repaired to get it.

    ``spans`` is a forest every function here accepts as it is: a broken cycle's span and a
    span naming itself as parent have their ``parent_span_id`` cleared.
    """

    spans: pd.DataFrame  # + depth, n_children, is_root, is_orphan, self_time_ms
    duplicates_dropped: int
    shared_ids_split: int
    orphans: int
    cycles_broken: int
    variants_dropped: int = 0  # copies of a span differing only in tags/logs
    self_parents: int = 0
    repaired_traces: tuple[str, ...] = ()  # traces whose rows a repair changed or dropped
    skipped_traces: dict[str, str] | None = None  # trace id -> why (only with skip_broken)

    @property
    def notes(self) -> list[str]:
        """One sentence per repair, for the notebook's warnings section."""
        out = []
        if self.duplicates_dropped:
            out.append(
                f"{self.duplicates_dropped} exact duplicate span(s) dropped"
                " (same columns, tags and logs; one copy kept)"
            )
        if self.variants_dropped:
            out.append(
                f"{self.variants_dropped} copy(ies) of a span differing only in tags or logs"
                " dropped: the first copy in input order kept"
            )
        if self.shared_ids_split:
            out.append(f"{self.shared_ids_split} client/server pair(s) sharing one span id split")
        if self.self_parents:
            out.append(
                f"{self.self_parents} span(s) naming themselves as parent made roots"
                " (parent id cleared)"
            )
        if self.orphans:
            out.append(f"{self.orphans} orphan span(s) (parent not in the trace) shown as roots")
        if self.cycles_broken:
            out.append(
                f"{self.cycles_broken} parent cycle(s) broken at their earliest span"
                " (its parent id cleared)"
            )
        by_reason: dict[str, list[str]] = {}
        for trace_id, reason in (self.skipped_traces or {}).items():
            by_reason.setdefault(reason, []).append(trace_id)
        for reason, ids in by_reason.items():
            shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
            out.append(f"{len(ids)} trace(s) left out, {reason}: {shown}")
        return out


def reconstruct(spans: pd.DataFrame, *, skip_broken: bool = False) -> Reconstruction:
    """Rebuild the span trees of one or more traces, each trace on its own.

    Exact duplicates are dropped (tags and logs compared as canonical JSON); copies that
    differ only in tags or logs keep the first; a Zipkin-style client and server span
    sharing one id are split (the server becomes ``<id>:server``, child of the client);
    spans whose parent is missing become roots flagged ``is_orphan``; a span naming itself
    as parent becomes a root; a parent cycle is broken at its earliest span. Each repair is
    counted and logged. A trace that cannot be repaired (a span id used twice with different
    contents, a span without an id, a time missing or past 2262) raises InputError, or with
    ``skip_broken`` is left out and listed in ``skipped_traces``.
    """
    schema.require_columns(spans, REQUIRED, "spans")
    frame = spans.reset_index(drop=True)
    skipped: dict[str, str] = {}
    if skip_broken:
        skipped = _unusable_traces(frame)
        frame = _without(frame, skipped)
    else:
        _check(frame)
    frame, exact, variant = _drop_duplicates(frame)
    frame, split = _split_shared_ids(frame)
    try:
        parent = parent_index(frame)  # refuses a span id used twice in a trace
    except InputError:
        keys = frame[["trace_id", "span_id"]].astype(str)  # as parent_index compares them
        conflicts = keys[keys.duplicated()]
        if not skip_broken:
            trace_id, span_id = conflicts.iloc[0]
            raise InputError(
                f"span id {span_id!r} appears twice in trace {trace_id!r} with different"
                " contents (obslib.trace_sets.clean_window leaves such traces out)"
            ) from None
        for trace_id in conflicts["trace_id"].astype(str).unique():
            skipped[trace_id] = "a span id used twice with different contents"
        kept = ~frame["trace_id"].astype(str).isin(skipped).to_numpy()
        frame, split = frame[kept].reset_index(drop=True), split[kept]
        exact, variant = exact[~exact.isin(skipped)], variant[~variant.isin(skipped)]
        parent = parent_index(frame)
    parents = frame["parent_span_id"]
    itself = parents.to_numpy(dtype=object) == frame["span_id"].to_numpy(dtype=object)
    has_parent = ~_no_parent(parents) & ~itself
    if itself.any():  # parent_index already treats them as roots
        frame.loc[itself, "parent_span_id"] = None
    orphan = has_parent & (parent < 0)
    n = len(frame)
    up = np.where(parent < 0, np.arange(n), parent)
    start = epoch_ns(frame["start_time"]) if n else np.zeros(0, dtype=np.int64)
    depth, broken = _break_cycles(up, start)
    if len(broken):
        frame.loc[broken, "parent_span_id"] = None
    frame["depth"] = depth
    frame["is_root"] = up == np.arange(n)
    frame["is_orphan"] = orphan
    children = np.bincount(up[up != np.arange(n)], minlength=n) if n else np.zeros(0, int)
    frame["n_children"] = children
    frame["self_time_ms"] = self_time(frame, _up=up).to_numpy()
    changed = np.zeros(n, dtype=bool)
    changed[broken] = True
    changed |= split | itself
    repaired = set(frame.loc[changed, "trace_id"].astype(str)) | set(exact) | set(variant)
    result = Reconstruction(
        frame,
        duplicates_dropped=len(exact),
        shared_ids_split=int(split.sum()),
        orphans=int(orphan.sum()),
        cycles_broken=len(broken),
        variants_dropped=len(variant),
        self_parents=int(itself.sum()),
        repaired_traces=tuple(sorted(repaired)),
        skipped_traces=skipped if skip_broken else None,
    )
    for note in result.notes:
        # orphans are routine in a time window (traces cut at its edges): not worth a warning
        level = logging.INFO if note.endswith("shown as roots") else logging.WARNING
        logger.log(level, "trace reconstruction: %s", note)
    return result


def _unusable_traces(frame: pd.DataFrame) -> dict[str, str]:
    """Traces with a span no repair can place: no span id, or a time missing or past 2262."""
    _present(frame, ("trace_id",))  # a span of no trace cannot be left out by trace
    bad = frame["span_id"].isna().to_numpy(copy=True)
    for col in ("start_time", "end_time"):
        stamps = pd.to_datetime(frame[col], utc=True)
        bad |= (stamps.isna() | (stamps < _NS_RANGE[0]) | (stamps > _NS_RANGE[1])).to_numpy()
    reason = "a span without an id or with a time missing or past 2262"
    return dict.fromkeys(frame.loc[bad, "trace_id"].astype(str).unique(), reason)


def _without(frame: pd.DataFrame, trace_ids: dict[str, str]) -> pd.DataFrame:
    if not trace_ids:
        return frame
    return frame[~frame["trace_id"].astype(str).isin(trace_ids)].reset_index(drop=True)


def canonical_json(value: object) -> str:
    """One text per JSON value: dicts and JSON text with the same content compare equal."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return "text:" + value  # not JSON: compared as it is, never equal to JSON
    elif not isinstance(value, (dict, list)) and pd.isna(value):
        return "null"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _drop_duplicates(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Drop exact duplicates and copies differing only in JSON columns (the first kept).

    Returns the frame and the trace ids of the exact and of the JSON-only copies dropped.
    JSON is canonicalised only for rows that repeat on every other column (few, if any).
    """
    identity = [c for c in _IDENTITY if c in frame.columns]
    none = frame["trace_id"].iloc[:0].astype(str)
    repeated = frame.duplicated(subset=identity, keep=False).to_numpy()
    if not repeated.any():
        return frame, none, none
    sub = frame.loc[repeated, identity].copy()
    canon = []
    for col in _JSON_COLUMNS:
        if col in frame.columns:
            sub["json:" + col] = frame.loc[repeated, col].map(canonical_json)
            canon.append("json:" + col)
    later = sub.duplicated(subset=identity)
    exact = sub.duplicated(subset=[*identity, *canon])
    drop = np.zeros(len(frame), dtype=bool)
    drop[np.flatnonzero(repeated)[later.to_numpy()]] = True
    ids = sub["trace_id"].astype(str)
    return frame[~drop].reset_index(drop=True), ids[exact], ids[later & ~exact]


def _break_cycles(up: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depths after breaking every parent cycle at its earliest-starting span (ties: the
    first row). ``up`` is changed in place; returns the depths and the rows made roots."""
    n = len(up)
    if not n:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    depth = _depths(up)
    if not (depth < 0).any():
        return depth, np.zeros(0, dtype=np.int64)
    land = up.copy()  # after >= n parent steps every span on or under a cycle is on it
    for _ in range(int(np.ceil(np.log2(max(n, 2)))) + 1):
        land = land[land]
    on_cycle = np.zeros(n, dtype=bool)
    cuts = []
    for node in np.unique(land[depth < 0]):
        if on_cycle[node]:
            continue
        cycle = [int(node)]
        while (nxt := int(up[cycle[-1]])) != node:
            cycle.append(nxt)
        members = np.array(cycle, dtype=np.int64)
        on_cycle[members] = True
        cuts.append(members[np.lexsort((members, start[members]))[0]])
    broken = np.array(sorted(cuts), dtype=np.int64)
    up[broken] = broken
    return _depths(up), broken


def _split_shared_ids(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Rename the server side of a Zipkin client/server pair sharing an id; returns the frame
    and which rows were renamed."""
    if "span_kind" not in frame.columns:
        return frame, np.zeros(len(frame), dtype=bool)
    key = frame[["trace_id", "span_id"]]
    shared = key.duplicated(keep=False)
    servers = shared & (frame["span_kind"] == "server")
    clients = shared & (frame["span_kind"] == "client")
    pairs = frame.loc[servers, ["trace_id", "span_id"]].merge(
        frame.loc[clients, ["trace_id", "span_id"]]
    )
    if pairs.empty:
        return frame, np.zeros(len(frame), dtype=bool)
    hit = servers & frame.set_index(["trace_id", "span_id"]).index.isin(
        pd.MultiIndex.from_frame(pairs)
    )
    frame = frame.copy()
    frame.loc[hit, "parent_span_id"] = frame.loc[hit, "span_id"]
    frame.loc[hit, "span_id"] = frame.loc[hit, "span_id"].astype(str) + ":server"
    # the shared span's children hang from the server side
    shared_keys = pd.MultiIndex.from_frame(frame.loc[hit, ["trace_id", "parent_span_id"]])
    child_keys = pd.MultiIndex.from_frame(frame[["trace_id", "parent_span_id"]])
    moved = child_keys.isin(shared_keys) & ~hit.to_numpy()
    frame.loc[moved, "parent_span_id"] = frame.loc[moved, "parent_span_id"].astype(str) + ":server"
    return frame, hit.to_numpy()


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
    kids = kids[np.lexsort((-end[kids], up[kids]))]
    first = np.searchsorted(up[kids], np.arange(n + t), side="left")
    last = np.searchsorted(up[kids], np.arange(n + t), side="right")
    sections = _walk(n, t, start, end, up, kids, first, last)
    ids = frame["span_id"].to_numpy()
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
