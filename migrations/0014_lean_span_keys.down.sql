-- Back to 0012's natural-key constraint, in one transaction. Rows stored by obslib's writers
-- satisfy it (first stored wins on (trace_id, span_id)); a duplicate (trace_id, span_id,
-- start_time) inserted with plain SQL since 0014 stops this with a unique violation, naming
-- the key: delete the copy, then migrate down.
DROP INDEX distributed_traces_span_hash_idx;
DROP INDEX distributed_traces_trace_idx;
ALTER TABLE distributed_traces
    ADD CONSTRAINT distributed_traces_trace_span_key UNIQUE (trace_id, span_id, start_time);
