-- Leaner span keys (issue 24: bytes per span). The natural-key constraint of 0012,
-- UNIQUE (trace_id, span_id, start_time), was the largest structure after the heap: 87 bytes
-- per span on the demo (text ids, plus start_time, which PostgreSQL requires in a unique key
-- of a partitioned table), and it no longer made the key unique: with start_time in it the
-- same span with another time passed it, so the writers keep first-stored-wins on
-- (trace_id, span_id) with an anti-join under an advisory lock (obslib/ingest/tables.py).
-- Its two jobs go to two smaller indexes, each used by a query (tests/storage/
-- test_partitions.py EXPLAINs them):
--   * one trace's spans (load.trace, the parent joins): a B-tree on trace_id alone, which
--     PostgreSQL deduplicates (one key per leaf run of a trace's ~14 spans): 12.7 bytes/span;
--   * the writers' anti-join on (trace_id, span_id): a hash index on span_id (an equality
--     lookup; one entry is a 4-byte hash code): 38 bytes/span;
-- together 51 bytes/span instead of 87 (measured on the 200k demo; bench/storage.py).
-- The merge's ON CONFLICT names no key since (obslib/ingest/tables.py): it arbitrates on the
-- unique indexes that exist, none on spans from here on, the anti-join doing the work.
-- Columns and rows do not change; on a populated database this builds the two indexes per
-- day partition, in this one transaction. (0015 adds a nullable column: no rewrite either.)
ALTER TABLE distributed_traces DROP CONSTRAINT distributed_traces_trace_span_key;
CREATE INDEX distributed_traces_trace_idx ON distributed_traces (trace_id);
CREATE INDEX distributed_traces_span_hash_idx ON distributed_traces USING hash (span_id);
