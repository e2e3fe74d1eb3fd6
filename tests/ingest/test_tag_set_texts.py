"""The writers look a span's tag set up by the text it was written in (``tables.Shared``:
each distinct text cast and hashed once, not each row), yet the rule stays the set's JSONB
text: spellings of one set (key order, spacing) count together and name one set; spellings
of two (``1.0`` and ``1``) stay two. Both merges: a write's own (``write_spans``) and a
batch's at its commit."""

from __future__ import annotations

import psycopg
import pytest

from obslib.ingest import batch, write_spans
from tests.ids import tid
from tests.storage.test_tag_sets import SHARED, spans

STORED = """SELECT tags::text, tag_set IS NOT NULL FROM distributed_traces
WHERE trace_id = ANY (%s) ORDER BY trace_id, span_id"""
SETS = "SELECT tags::text FROM span_tag_sets ORDER BY tags::text"
AB = '{"a": 1, "b": 2}'


def write(url: str, tags: list[str], at_commit: bool) -> list[str]:
    """``tags`` in one write, or one write per span merged at the batch's commit; the
    traces written."""
    if not at_commit:
        write_spans(spans("t", tags), url=url)
        return [tid("t")]
    with batch(url) as b:
        for i, t in enumerate(tags):
            b.spans(spans(f"t{i}", [t]))
    return [tid(f"t{i}") for i in range(len(tags))]


@pytest.mark.parametrize("at_commit", [False, True], ids=["one write", "merged at commit"])
@pytest.mark.parametrize(
    ("earlier", "tags", "expected", "sets"),
    [
        pytest.param(
            [], [AB, '{"b":2,"a":1}'],
            [(None, True), (None, True)], [AB],
            id="two spellings of one set, once each, are a repeated set, stored once",
        ),
        pytest.param(
            [SHARED, SHARED], ['{"host.name":"api-1",  "component":"http"}'],
            [(None, True)], [SHARED],
            id="another spelling of a stored set names it",
        ),
        pytest.param(
            [], ['{"n": 1.0}', '{"n": 1}'],
            [('{"n": 1.0}', False), ('{"n": 1}', False)], [],
            id="1.0 and 1 once each are two sets no other span has, kept in their rows",
        ),
    ],
)  # fmt: skip
def test_a_tag_set_is_its_jsonb_text_whatever_the_spelling(
    migrated_db: str,
    earlier: list[str],
    tags: list[str],
    expected: list[tuple],
    sets: list[str],
    at_commit: bool,
) -> None:
    if earlier:
        write_spans(spans("earlier", earlier), url=migrated_db)
    traces = write(migrated_db, tags, at_commit)
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute(STORED, (traces,)).fetchall() == expected
        assert [r[0] for r in conn.execute(SETS).fetchall()] == sets
