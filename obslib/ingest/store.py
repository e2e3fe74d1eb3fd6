"""Store decoded records so that the counts always add up.

Every record a decoder saw ends up exactly once as *accepted* (stored new), *duplicate*
(the same record is already stored, or came earlier in the input) or *rejected* (a decoder
refused it, or its ids are taken by a record with other content: first stored wins, the
conflict is reported, never overwritten). ``accepted + duplicate + rejected == input``.
Used by the file importers and the OTLP receiver alike.

A batch merges spans and logs when it commits (``writer.DEFERRED``), so ``store``'s counts
are as of each write: a record another writer stores between the write and the commit is
only found then. ``settle``, called once the batch committed, folds those into the outcome:
identical ones become duplicates, others rejects (named by the source and position each row
carries to the commit as its ``tables.TAG``), so the counts add up to what was stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from obslib.ingest import records, tables
from obslib.ingest.records import Decoded, Reject
from obslib.ingest.writer import Batch


@dataclass
class Counts:
    """One kind's records: how many came in and what became of them."""

    input: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0

    def __iadd__(self, other: Counts) -> Counts:
        self.input += other.input
        self.accepted += other.accepted
        self.duplicate += other.duplicate
        self.rejected += other.rejected
        return self

    @property
    def balanced(self) -> bool:
        return self.accepted + self.duplicate + self.rejected == self.input


@dataclass
class Outcome:
    """What storing one or more decoded inputs did, per kind, with every rejected record."""

    spans: Counts = field(default_factory=Counts)
    logs: Counts = field(default_factory=Counts)
    rejects: list[Reject] = field(default_factory=list)
    unlinked: int = 0  # log records stored without the trace link their malformed ids named

    def __iadd__(self, other: Outcome) -> Outcome:
        self.spans += other.spans
        self.logs += other.logs
        self.rejects.extend(other.rejects)
        self.unlinked += other.unlinked
        return self

    @property
    def input(self) -> int:
        return self.spans.input + self.logs.input

    @property
    def accepted(self) -> int:
        return self.spans.accepted + self.logs.accepted

    @property
    def duplicate(self) -> int:
        return self.spans.duplicate + self.logs.duplicate

    @property
    def rejected(self) -> int:
        return self.spans.rejected + self.logs.rejected


def store(batch: Batch, decoded: Decoded, source: str) -> Outcome:
    """Write ``decoded`` in ``batch`` (opened with ``every_conflict=True`` so that each
    conflicting record can be named) and account for every record.

    A row may carry ``source`` to be named by in a reject (the receiver stores several
    requests in one write); otherwise ``source`` names it. The counts are as of the writes:
    call ``settle`` once the batch has committed."""
    out = Outcome(unlinked=decoded.unlinked)
    for reject in decoded.rejects:
        counts = out.spans if reject.kind == "span" else out.logs
        counts.input += 1
        counts.rejected += 1
        out.rejects.append(reject)
    _store_kind(out, out.spans, decoded.spans, "span", source, batch)
    _store_kind(out, out.logs, decoded.logs, "log", source, batch)
    return out


def settle(out: Outcome, batch: Batch, source: str) -> None:
    """Fold into ``out`` (what ``store`` made of the batch's writes) the records its commit
    found stored by another writer since their write (``Batch.late``): counted accepted at
    the write, they are duplicates when identical, else rejected conflicts, each named."""
    for kind, counts in (("span", out.spans), ("log", out.logs)):
        late = batch.late.get(_TABLE[kind])
        if not late:
            continue
        counts.accepted -= late.count
        counts.duplicate += late.identical
        for tag in late.tags:
            where, position = orjson.loads(tag) if tag else (None, "?")
            out.rejects.append(Reject(where or source, position, _late(kind), kind))
        counts.rejected += late.conflicts.count


_KEYS = {"span": ("trace_id", "span_id"), "log": ("log_id",)}
_WHAT = {"span": "trace and span id", "log": "log id"}
_TABLE = {"span": "spans", "log": "logs"}


def _late(kind: str) -> str:
    return (
        f"its {_WHAT[kind]} is stored already with other content: another writer stored it"
        " before this batch committed (kept, not overwritten)"
    )


def _store_kind(
    out: Outcome, counts: Counts, rows: list[dict[str, Any]], kind: str, source: str, b: Batch
) -> None:
    counts.input += len(rows)
    if not rows:
        return
    key_cols = _KEYS[kind]
    first: dict[tuple, dict[str, Any]] = {}
    unique = []
    for row in rows:
        key = tuple(row[c] for c in key_cols)
        seen = first.get(key)
        if seen is None:
            first[key] = row
            unique.append(row)
        elif records.same_json(_content(seen), _content(row)):
            counts.duplicate += 1
        else:
            _reject(
                out,
                counts,
                row,
                source,
                kind,
                f"same {_WHAT[kind]} as the record at {seen['position']} with other"
                " content (the first is kept)",
            )
    frame = records.spans_frame(unique) if kind == "span" else records.logs_frame(unique)
    # where each row came from, for a reject found only at the commit (``settle``)
    frame[tables.TAG] = [orjson.dumps([r.get("source"), r["position"]]).decode() for r in unique]
    written = b.spans(frame) if kind == "span" else b.logs(frame)
    taken = {tuple(k) for k in written.conflicts.keys}
    for key in sorted(taken):
        _reject(
            out,
            counts,
            first[key],
            source,
            kind,
            f"its {_WHAT[kind]} is stored already with other content (kept, not overwritten)",
        )
    counts.accepted += int(written)
    counts.duplicate += len(unique) - int(written) - len(taken)


def _reject(
    out: Outcome, counts: Counts, row: dict[str, Any], source: str, kind: str, reason: str
) -> None:
    counts.rejected += 1
    out.rejects.append(Reject(row.get("source", source), row["position"], reason, kind))


def _content(row: dict[str, Any]) -> dict[str, Any]:
    """The stored columns of a row (positions and sources do not count), compared with
    ``records.same_json``: identical as the table compares them is a duplicate."""
    return {k: v for k, v in row.items() if k not in ("position", "source")}
