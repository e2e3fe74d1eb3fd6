"""Trace reconstruction: duplicates, shared Zipkin ids, orphans and cycles repaired per trace,
each repair reported in a note, never silent.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from obslib import schema
from obslib.errors import InputError
from obslib.traces.tree import (
    REQUIRED,
    _check,
    _depths,
    _present,
    epoch_ns,
    no_parent,
    parent_index,
    self_time,
)
from obslib.values import plural

logger = logging.getLogger(__name__)

_JSON_COLUMNS = ("tags", "logs")
# what makes two rows "the same span" before their JSON columns are compared (duration_ms is
# derived from the times, and JSON columns hold unhashable dicts: compared as canonical text)
_IDENTITY = tuple(c for c in schema.SPAN_COLUMNS if c not in ("duration_ms", *_JSON_COLUMNS))
# the instants int64 nanoseconds can hold; a time outside them cannot be analysed
_NS_RANGE = (pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC"))

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
                f"{plural(self.duplicates_dropped, 'exact duplicate span')} dropped"
                " (same columns, tags and logs; one copy kept)"
            )
        if self.variants_dropped:
            out.append(
                f"{plural(self.variants_dropped, 'copy', 'copies')} of a span differing only in"
                " tags or logs dropped: the copy with the smallest canonical JSON kept"
            )
        if self.shared_ids_split:
            pairs = plural(self.shared_ids_split, "client/server pair")
            out.append(f"{pairs} sharing one span id split")
        if self.self_parents:
            out.append(
                f"{plural(self.self_parents, 'span')} naming"
                f" {'itself' if self.self_parents == 1 else 'themselves'} as parent made roots"
                " (parent id cleared)"
            )
        if self.orphans:
            orphans = plural(self.orphans, "orphan span")
            out.append(f"{orphans} (parent not in the trace) shown as roots")
        if self.cycles_broken:
            out.append(
                f"{plural(self.cycles_broken, 'parent cycle')} broken at their earliest span"
                " (its parent id cleared)"
            )
        by_reason: dict[str, list[str]] = {}
        for trace_id, reason in (self.skipped_traces or {}).items():
            by_reason.setdefault(reason, []).append(trace_id)
        for reason, ids in by_reason.items():
            shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
            out.append(f"{plural(len(ids), 'trace')} left out, {reason}: {shown}")
        return out


def reconstruct(spans: pd.DataFrame, *, skip_broken: bool = False) -> Reconstruction:
    """Rebuild the span trees of one or more traces, each trace on its own.

    Exact duplicates are dropped (tags and logs compared as canonical JSON); copies that
    differ only in tags or logs keep the one with the smallest canonical JSON; a
    Zipkin-style client and server span sharing one id are split (the server becomes
    ``<id>:server``, child of the client); spans whose parent is missing become roots
    flagged ``is_orphan``; a span naming itself as parent becomes a root; a parent cycle is
    broken at its earliest span. Each repair is counted and logged. A trace that cannot be
    repaired (a span id used twice with different contents, a span without an id, a time
    missing or past 2262) raises InputError, or with ``skip_broken`` is left out and listed
    in ``skipped_traces``.
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
                " contents (obslib.traces.sets.clean_window leaves such traces out)"
            ) from None
        for trace_id in conflicts["trace_id"].astype(str).unique():
            skipped[trace_id] = "a span id used twice with different contents"
        kept = ~frame["trace_id"].astype(str).isin(skipped).to_numpy()
        frame, split = frame[kept].reset_index(drop=True), split[kept]
        exact, variant = exact[~exact.isin(skipped)], variant[~variant.isin(skipped)]
        parent = parent_index(frame)
    parents = frame["parent_span_id"]
    itself = parents.to_numpy(dtype=object) == frame["span_id"].to_numpy(dtype=object)
    has_parent = ~no_parent(parents) & ~itself
    if itself.any():  # parent_index already treats them as roots
        frame.loc[itself, "parent_span_id"] = None
    orphan = has_parent & (parent < 0)
    n = len(frame)
    up = np.where(parent < 0, np.arange(n), parent)
    start = epoch_ns(frame["start_time"]) if n else np.zeros(0, dtype=np.int64)
    depth, broken = _break_cycles(up, start, frame["span_id"].to_numpy())
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
    """Drop exact duplicates and copies differing only in JSON columns; of those, the copy
    with the smallest canonical JSON is kept, so the result never depends on row order.

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
    ranked = sub.sort_values(canon, kind="stable") if canon else sub
    later = ranked.duplicated(subset=identity).reindex(sub.index)
    exact = ranked.duplicated(subset=[*identity, *canon]).reindex(sub.index)
    drop = np.zeros(len(frame), dtype=bool)
    drop[np.flatnonzero(repeated)[later.to_numpy()]] = True
    ids = sub["trace_id"].astype(str)
    return frame[~drop].reset_index(drop=True), ids[exact], ids[later & ~exact]


def _break_cycles(
    up: np.ndarray, start: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Depths after breaking every parent cycle at its earliest-starting span (ties: the
    smallest span id, whatever the row order). ``up`` is changed in place; returns the
    depths and the rows made roots."""
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
        names = ids[members].astype(str)
        cuts.append(members[np.lexsort((names, start[members]))[0]])
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
