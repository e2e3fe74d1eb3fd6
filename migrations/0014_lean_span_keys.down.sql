-- Back to 0012's natural-key constraint, in one transaction. Rows stored since 0014 satisfy
-- it (the hashed key is at least as strict).
DROP INDEX distributed_traces_trace_idx;
DROP INDEX distributed_traces_span_key_idx;
ALTER TABLE distributed_traces
    ADD CONSTRAINT distributed_traces_trace_span_key UNIQUE (trace_id, span_id, start_time);
