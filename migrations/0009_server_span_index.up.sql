-- obslib:no-transaction
-- SLI counts read only server spans in a time window (a quarter of the spans on the demo):
-- a partial index on their start time carrying the columns the counts need lets PostgreSQL
-- answer from the index alone. Measured on 1M demo spans: one SLI count query 0.82 s ->
-- 0.28 s; building it takes about a second per million spans.
DROP INDEX CONCURRENTLY IF EXISTS distributed_traces_server_start_idx;
CREATE INDEX CONCURRENTLY distributed_traces_server_start_idx
    ON distributed_traces (start_time) INCLUDE (service_name, status, duration_ms, operation_name)
    WHERE span_kind = 'server';
