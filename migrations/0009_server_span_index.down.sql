-- obslib:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS distributed_traces_server_start_idx;
