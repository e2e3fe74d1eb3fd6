"""Span tag sets (migration 0018): a tag set that repeats is stored once and the spans name
it; a set no other span shares stays in its row; every reader sees each span's tags whole
(its own, else its set's), whichever way they were stored; the migration converts a
populated database in place and back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pyarrow.parquet as pq
import pytest

from obslib import load
from obslib.ingest import batch, write_spans
from obslib.load import export
from obslib.storage.migrate import Migrator
from tests.conftest import MIGRATIONS
from tests.ids import tid

DAY = datetime(2031, 5, 6, 12, 0, tzinfo=UTC)
SHARED = '{"component": "http", "host.name": "api-1"}'
# every span as readers see it, and as the table holds it (tags in the row, or a set's id)
TAGGED = """SELECT trace_id, span_id, tags::text FROM distributed_traces_tagged
ORDER BY trace_id, span_id"""
STORED = """SELECT span_id, tags::text, tag_set IS NOT NULL FROM distributed_traces
WHERE trace_id = %s ORDER BY span_id"""
SETS = "SELECT tags::text FROM span_tag_sets ORDER BY tags::text"


def spans(trace: str, tags: list[str | None], start: datetime = DAY) -> pd.DataFrame:
    """One span per tags text (None: none given), under one trace."""
    return pd.DataFrame(
        [
            dict(
                trace_id=tid(trace),
                span_id=f"{i + 1:016x}",
                service_name="api",
                operation_name="GET /",
                start_time=start + timedelta(milliseconds=i),
                end_time=start + timedelta(milliseconds=5 + i),
                tags=t,
            )
            for i, t in enumerate(tags)
        ]
    )


def stored(url: str, trace: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(STORED, (tid(trace),)).fetchall()


def rows(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


@pytest.mark.parametrize(
    ("earlier", "tags", "expected"),
    [
        pytest.param(
            [], [SHARED, SHARED, '{"other": 1}'],
            [(None, True), (None, True), ('{"other": 1}', False)],
            id="a set two spans of a write share is stored once, a lone one stays in its row",
        ),
        pytest.param(
            [SHARED, SHARED], [SHARED],
            [(None, True)],
            id="a set one span has that is already stored is named, not repeated",
        ),
        pytest.param(
            [], ['{"n": 1.0}', '{"n": 1.0}', '{"n": 1}', '{"n": 1}'],
            [(None, True)] * 4,
            id="two spellings of one number are two sets, each read back as written",
        ),
        pytest.param(
            [], [None, None],
            [(None, True), (None, True)],
            id="spans given no tags share the empty set",
        ),
    ],
)  # fmt: skip
def test_the_writers_store_a_repeated_tag_set_once(
    migrated_db: str, earlier: list[str], tags: list[str | None], expected: list[tuple]
) -> None:
    """Stored by reference or in the row as the rule says; read back whole, as written."""
    if earlier:
        write_spans(spans("earlier", earlier), url=migrated_db)
    write_spans(spans("t", tags), url=migrated_db)
    assert [r[1:] for r in stored(migrated_db, "t")] == expected
    seen = [t for trace, _, t in rows(migrated_db, TAGGED) if trace == tid("t")]
    assert seen == [t or "{}" for t in tags]
    assert len(rows(migrated_db, SETS)) == len(
        {t for t, (_, ref) in zip(seen, expected, strict=True) if ref}
    )


def test_a_batch_merged_at_its_commit_stores_the_sets_of_all_its_writes(migrated_db: str) -> None:
    """A receiver's batch (writes held until the commit): a set each write has once, two
    writes together twice, is stored once."""
    with batch(migrated_db) as b:
        b.spans(spans("first", [SHARED]))
        b.spans(spans("second", [SHARED]))
    assert (
        stored(migrated_db, "first") == stored(migrated_db, "second") == [(f"{1:016x}", None, True)]
    )
    assert rows(migrated_db, SETS) == [(SHARED,)]


def test_a_span_sent_again_is_a_duplicate_and_with_other_tags_a_conflict(
    migrated_db: str,
) -> None:
    """First stored wins, comparing the tags as readers see them: the same span again
    (tags by reference) is not a conflict; the same key with other tags is one."""
    first = spans("t", [SHARED, SHARED])
    assert int(write_spans(first, url=migrated_db)) == 2
    again = write_spans(first, url=migrated_db)
    assert (int(again), again.conflicts.count) == (0, 0)
    other = write_spans(first.assign(tags='{"component": "grpc"}'), url=migrated_db)
    assert (int(other), other.conflicts.count) == (0, 2)
    with batch(migrated_db) as b:  # the same comparison at a batch's commit
        held = b.spans(first.assign(tags='{"component": "grpc"}'))
    assert (int(held), held.conflicts.count) == (0, 2)


def test_a_plain_sql_insert_keeps_its_tags_in_the_row_and_every_reader_sees_them(
    migrated_db: str, tmp_path
) -> None:
    """Another tool's INSERT names tags, not tag_set: the row keeps them. load.spans,
    load.trace and the Parquet export show both kinds of span whole."""
    write_spans(spans("t", [SHARED, SHARED]), url=migrated_db)
    with psycopg.connect(migrated_db) as conn:
        conn.execute(
            "INSERT INTO distributed_traces (trace_id, span_id, service_name, operation_name,"
            " start_time, end_time, duration_ms, status, tags) VALUES (%s, %s, 'api', 'op',"
            " %s, %s, 5, 'ok', %s)",
            (tid("t"), f"{9:016x}", DAY, DAY, SHARED),
        )
    assert [r[1:] for r in stored(migrated_db, "t")] == [
        (None, True), (None, True), (SHARED, False)
    ]  # fmt: skip
    whole = [json.loads(SHARED)] * 3
    window = load.spans(DAY - timedelta(hours=1), DAY + timedelta(hours=1), url=migrated_db)
    assert window.tags.tolist() == whole
    assert load.trace(tid("t"), url=migrated_db).tags.tolist() == whole
    tagged = load.spans(
        DAY - timedelta(hours=1), DAY + timedelta(hours=1), tag_columns=["host.name"],
        url=migrated_db,
    )  # fmt: skip
    assert tagged["tag:host.name"].tolist() == ["api-1"] * 3
    midnight = DAY.replace(hour=0)
    (part,) = export.export_parquet(midnight, midnight + timedelta(days=1), tmp_path,
                                    tables=("spans",), url=migrated_db)  # fmt: skip
    texts = pq.read_table(part.path).column("tags").to_pylist()
    assert [json.loads(t) for t in texts] == whole


def test_0018_moves_the_repeated_sets_out_in_place_and_the_down_migration_puts_them_back(
    migrated_db: str,
) -> None:
    """0017 -> head -> 0017 on spans over two days written before 0018 (every set in its
    row): the same spans, tags included, each way; after 0018 the repeated sets are stored
    once and named, a set one span has stays in its row."""
    migrator = Migrator(migrated_db, MIGRATIONS)
    migrator.down(to=17)
    write_spans(spans("a", [SHARED, SHARED, '{"only": "me"}']), url=migrated_db)
    write_spans(spans("b", [SHARED, None], DAY + timedelta(days=1)), url=migrated_db)
    plain = """SELECT trace_id, span_id, tags::text FROM distributed_traces
        ORDER BY trace_id, span_id"""
    before = rows(migrated_db, plain)
    assert all(t is not None for *_, t in before)
    migrator.up()
    assert rows(migrated_db, TAGGED) == before
    assert rows(migrated_db, SETS) == [(SHARED,)]  # '{}' is had by one span only
    assert [r[1:] for r in stored(migrated_db, "a")] == [
        (None, True), (None, True), ('{"only": "me"}', False)
    ]  # fmt: skip
    migrator.down(to=17)
    assert rows(migrated_db, plain) == before
