-- Leaner span keys (issue 24: bytes per span). The natural-key constraint of 0012,
-- UNIQUE (trace_id, span_id, start_time), was the largest structure after the heap: 87 bytes
-- per span on the demo (two text ids, plus start_time, which PostgreSQL requires in a
-- unique key of a partitioned table). Its two jobs go to two smaller indexes, each used by a
-- query (tests/storage/test_partitions.py EXPLAINs them):
--   * the key, unique: (the 64-bit hash of (trace_id, span_id), start_time), 8 + 8 bytes a
--     key instead of ~58. It keeps what the constraint did for every writer, obslib's and
--     plain SQL's: an identical copy is not stored twice, and a session inserting a key that
--     another has not yet committed waits for it (ON CONFLICT arbitrates on it). The
--     writers' first-stored-wins on (trace_id, span_id) whatever the start time stays their
--     anti-join under an advisory lock (obslib/ingest/tables.py), which probes this index.
--     Two different spans are taken for one only if they start in the same microsecond and
--     their 64-bit hashes collide (about 1 in 10^19 per such pair); the writer then reports
--     the second as a conflict, naming it, as for any conflict.
--     The hash is hashtextextended (immutable: PostgreSQL's hash partitioning persists it),
--     the span id's seeded with the trace id's, so no two different pairs are one string.
--   * one trace's spans (load.trace, the parent joins): a B-tree on trace_id alone, which
--     PostgreSQL deduplicates (one key per run of a trace's ~14 spans): 12.7 bytes/span.
-- Measured on the 200k demo: 87 -> 31 + 12.7 bytes per span (bench/storage.py).
-- Columns and rows do not change; on a populated database this builds the two indexes per
-- day partition, in this one transaction. (0015 adds a nullable column: no rewrite either.)
ALTER TABLE distributed_traces DROP CONSTRAINT distributed_traces_trace_span_key;
CREATE UNIQUE INDEX distributed_traces_span_key_idx
    ON distributed_traces (hashtextextended(span_id, hashtextextended(trace_id, 0)), start_time);
CREATE INDEX distributed_traces_trace_idx ON distributed_traces (trace_id);
