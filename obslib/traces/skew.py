"""Clock-skew adjustment by Jaeger's rule, reported span by span, never silent.

A child from another host that starts before or ends after its parent is moved into it:
centred when it is shorter (network latency split evenly between request and response),
aligned to the parent's start when it is longer and starts early. Spans on the same host as
their parent inherit its shift; a span whose host is unknown is compared with its parent, as
Jaeger does (two host-less spans of one service may still run on two machines). A shifted
span's events move with it. Shifts larger than ``max_skew_ms`` are not applied (and are
reported as such). The stored data is untouched: this returns an adjusted copy.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from obslib import schema
from obslib.errors import UsageError
from obslib.traces import repair, tree
from obslib.values import json_value

# The resource attributes naming a span's host, in the order Jaeger's adjuster reads them
# (cmd/query/app/querysvc/v2/adjuster/clockskew.go, hostKey). OpenTelemetry imports flatten
# resource attributes into the span's tags.
HOST_KEYS = ("host.id", "host.ip", "host.name")
UNKNOWN_HOST = ""  # host_of's answer for a span naming no host
_ID, _IP, _NAME = HOST_KEYS

REPORT_COLUMNS = {  # the adjustments frame: column -> dtype
    "span_id": "str",
    "service_name": "str",
    "host": "str",
    "parent_host": "str",
    "delta_ms": "float64",
    "applied": "bool",
    "inherited": "bool",
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
# An ISO-8601 time: fraction (up to nanoseconds) and offset read apart, as datetime keeps µs.
_ISO = re.compile(
    r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}(?::?\d{2})?)?"
)


@dataclass(frozen=True)
class SkewAdjustment:
    """The adjusted spans and one report row per shifted (or refused) span."""

    spans: pd.DataFrame
    # span_id, service_name, host, parent_host, delta_ms, applied, inherited: a row per span
    # whose shift was computed (applied or refused as too large), and per span that moved
    # with its same-host parent (inherited, applied)
    adjustments: pd.DataFrame


def host_of(spans: pd.DataFrame) -> np.ndarray:
    """Each span's host, read from its tags (dicts or JSON text) as Jaeger's adjuster reads
    resource attributes: ``host.id``, else ``host.ip`` (the first entry of a list), else
    ``host.name``. Empty or false values (``""``, None, ``[]``, NaN) count as absent. A span
    naming none gets ``""`` (UNKNOWN_HOST): an unknown host, which the adjuster treats as
    differing from every other, its parent's and children's included. The service name is
    no stand-in: one service usually runs on several machines."""
    hosts = np.full(len(spans), UNKNOWN_HOST, dtype=object)
    if "tags" not in spans.columns:
        return hosts
    for i, tags in enumerate(spans["tags"].to_numpy(dtype=object)):  # no per-row boxing
        if type(tags) is str:
            tags = _json(tags)  # parsed once, all three keys read from it
        if not isinstance(tags, dict):
            continue
        # the usual case in one expression (this runs once per span): the first non-empty
        # text; anything else (a list of addresses, a number, NaN) takes the long way
        value = tags.get(_ID) or tags.get(_IP) or tags.get(_NAME)
        if type(value) is str:
            hosts[i] = value
        elif value is not None:
            hosts[i] = _host_key(tags)
    return hosts


def _host_key(tags: dict) -> str:
    """``host_of``'s rule for one span's tags, whatever the values' types."""
    for key in HOST_KEYS:
        value = tags.get(key)
        if isinstance(value, list | tuple):
            value = value[0] if value else None
        if not value or (isinstance(value, float) and math.isnan(value)):
            continue
        return str(value)
    return UNKNOWN_HOST


def _json(text: str) -> object:
    """JSON text as Python objects (``values.json_value``: exact integers); unreadable text
    is None."""
    try:
        return json_value(text)
    except ValueError:
        return None


def check_max_skew_ms(value: object) -> float:
    """``value`` if it is a number >= 0 (inf allowed: no limit); a UsageError otherwise.
    Callers that load data first check it up front with this, the adjuster checks it too."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise UsageError(f"max_skew_ms must be a number >= 0, not {value!r}")  # NaN fails too
    return float(value)


def adjust_clock_skew(
    spans: pd.DataFrame, *, max_skew_ms: float = 1000.0, enabled: bool = True
) -> SkewAdjustment:
    """Shift spans from skewed hosts into their parents (Jaeger's adjuster), with a report.

    Depth by depth, vectorised: a child on another host than its parent (or on an unknown
    one) gets its shift computed against the already adjusted parent; a child on its
    parent's host inherits the parent's shift. Events (``logs``) move with their span.
    """
    schema.require_columns(spans, tree.REQUIRED, "spans")
    check_max_skew_ms(max_skew_ms)
    frame = spans.reset_index(drop=True).copy()
    empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in REPORT_COLUMNS.items()})
    if not enabled or frame.empty:
        return SkewAdjustment(frame, empty)
    rebuilt = repair.reconstruct(frame).spans  # depth, roots; duplicates already gone
    parent = tree.parent_index(rebuilt)
    parent = np.where(rebuilt["is_root"].to_numpy(), -1, parent)
    start = tree.epoch_ns(rebuilt["start_time"])
    end = tree.epoch_ns(rebuilt["end_time"])
    host = host_of(rebuilt)
    unknown = host == UNKNOWN_HOST
    host_code = pd.factorize(host)[0]  # compared per depth as integers, not as texts
    depth = rebuilt["depth"].to_numpy()
    delta = np.zeros(len(rebuilt), dtype=np.int64)
    computed = np.zeros(len(rebuilt), dtype=np.int64)
    switched = np.zeros(len(rebuilt), dtype=bool)
    applied = np.zeros(len(rebuilt), dtype=bool)
    inherited = np.zeros(len(rebuilt), dtype=bool)
    limit = np.iinfo(np.int64).max if max_skew_ms == float("inf") else int(max_skew_ms * 1e6)
    for d in range(1, int(depth.max()) + 1 if len(depth) else 1):
        rows = np.flatnonzero((depth == d) & (parent >= 0))
        p = parent[rows]
        p_start, p_end = start[p] + delta[p], end[p] + delta[p]
        c_start, c_end = start[rows], end[rows]
        # another host, or an unknown one (Jaeger: an unknown host differs from every host)
        other = (host_code[rows] != host_code[p]) | unknown[rows]
        shift = _jaeger_skew(c_start, c_end, p_start, p_end)
        ok = np.abs(shift) <= limit
        own = other & (shift != 0)
        delta[rows] = np.where(other, np.where(ok, shift, 0), delta[p])
        computed[rows] = np.where(own, shift, 0)
        switched[rows] = own
        applied[rows] = own & ok
        inherited[rows] = ~other & (delta[p] != 0)
    out = rebuilt[frame.columns].copy()
    # .array, not .to_numpy(): an aware column would go through one Timestamp object per row
    out["start_time"] = tree.from_epoch_ns(start + delta, frame["start_time"]).array
    out["end_time"] = tree.from_epoch_ns(end + delta, frame["end_time"]).array
    if "logs" in out.columns:
        out["logs"] = _shift_logs(out["logs"], delta)
    rows = np.flatnonzero(switched | inherited)
    names = (
        rebuilt["service_name"].iloc[rows].astype(str).to_numpy(dtype=object)
        if "service_name" in rebuilt.columns
        else np.full(len(rows), "", dtype=object)
    )
    report = pd.DataFrame(
        {
            "span_id": rebuilt["span_id"].iloc[rows].astype(str).to_numpy(dtype=object),
            "service_name": names,
            "host": host[rows],
            "parent_host": host[parent[rows]],
            "delta_ms": np.where(inherited[rows], delta[rows], computed[rows]) / 1e6,
            "applied": applied[rows] | inherited[rows],
            "inherited": inherited[rows],
        }
    )
    return SkewAdjustment(out, report.astype(REPORT_COLUMNS))


def applied_shifts(adjustments: pd.DataFrame) -> int:
    """How many repairs an adjustment report counts: shifts computed at a host switch and
    applied. Spans that moved with their same-host parent (``inherited``) are that one
    repair, not more; a shift refused as larger than ``max_skew_ms`` repaired nothing."""
    if adjustments.empty:
        return 0
    schema.require_columns(adjustments, ("applied", "inherited"), "adjustments")
    return int((adjustments["applied"] & ~adjustments["inherited"]).sum())


def _jaeger_skew(c_start, c_end, p_start, p_end) -> np.ndarray:
    """The shift (ns) Jaeger's adjuster computes for a child from another host."""
    c_len, p_len = c_end - c_start, p_end - p_start
    fits = (c_start >= p_start) & (c_end <= p_end)
    centred = p_start + (p_len - c_len) // 2 - c_start
    longer = np.where(c_start < p_start, p_start - c_start, 0)
    return np.where(c_len > p_len, longer, np.where(fits, 0, centred))


def _shift_logs(logs: pd.Series, delta: np.ndarray) -> pd.Series:
    """The events column with each shifted span's events moved by its shift (Jaeger moves
    event timestamps with the span). New objects where something moved; the input's are
    never mutated."""
    values = logs.to_numpy(dtype=object)
    changed: dict[int, object] = {}
    for i in np.flatnonzero(delta):
        events = values[i]
        if not (isinstance(events, list) and events) and type(events) is not str:
            continue  # no events, or a form this does not read: left as it is
        moved = _shift_events(events, int(delta[i]))
        if moved is not events:
            changed[i] = moved
    if not changed:
        return logs
    values = values.copy()
    for i, moved in changed.items():
        values[i] = moved  # one by one: numpy would read a list of lists as a 2-D array
    return pd.Series(pd.array(values, dtype=logs.dtype), index=logs.index, name=logs.name)


def _shift_events(events: object, delta_ns: int) -> object:
    """Span events (a list of dicts, or JSON text of one) with each ``timestamp`` moved by
    ``delta_ns``, in the same form: list in, new list out; text in, text out. Events
    without a readable ISO-8601 timestamp, and anything that is not such a list, stay as
    they are."""
    if isinstance(events, str):
        if "timestamp" not in events:  # "[]", most spans' events: nothing to parse
            return events
        parsed = _json(events)
        if not isinstance(parsed, list):
            return events
        shifted = _shift_list(parsed, delta_ns)
        return events if shifted is parsed else json.dumps(shifted, ensure_ascii=False)
    if isinstance(events, list):
        return _shift_list(events, delta_ns)
    return events


def _shift_list(events: list, delta_ns: int) -> list:
    """A new list when an event moved (moved events copied), else ``events`` itself."""
    out, changed = [], False
    for event in events:
        stamp = _shift_stamp(event.get("timestamp"), delta_ns) if isinstance(event, dict) else None
        if stamp is None:
            out.append(event)
        else:
            out.append({**event, "timestamp": stamp})
            changed = True
    return out if changed else events


def _shift_stamp(text: object, delta_ns: int) -> str | None:
    """An ISO-8601 time moved by ``delta_ns``, written in UTC with microseconds (nanoseconds
    when it had more than six digits); a time without offset is read as UTC and stays
    without one. None when ``text`` is no such time."""
    match = _ISO.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    try:
        moment = datetime.fromisoformat(whole.replace(" ", "T") + (zone or "+00:00"))
        seconds = (moment - _EPOCH) // timedelta(seconds=1)
        ns = seconds * 10**9 + int((fraction or "").ljust(9, "0")) + delta_ns
        secs, sub = divmod(ns, 10**9)
        day_time = (_NAIVE_EPOCH + timedelta(seconds=secs)).isoformat()  # whole seconds
    except (ValueError, OverflowError):  # month 13, hour 25, year 10000...
        return None
    digits = 9 if fraction and len(fraction) > 6 else 6
    suffix = "" if zone is None else "Z" if zone == "Z" else "+00:00"
    return f"{day_time}.{sub:09d}"[: len(day_time) + 1 + digits] + suffix
