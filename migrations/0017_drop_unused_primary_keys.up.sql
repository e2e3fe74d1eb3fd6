-- Every index justified by a query that uses it (issue 24). The primary keys 0012 gave the
-- two partitioned tables, (id, start_time) and (id, timestamp), are used by none: no obslib
-- query reads a span or a log record by its surrogate id (one trace's spans use
-- distributed_traces_trace_idx, the writers' anti-joins the natural keys, SLI counts the
-- server-span index: tests/storage/test_partitions.py EXPLAINs each), and the writers'
-- ON CONFLICT arbitrates on the natural keys, which stay unique. So they go: on the demo,
-- 31.6-32.7 bytes per span (B-tree entries of 8 + 8 bytes with their headers), the largest
-- structure after the heap that no query reads.
--
-- What stays: the `id` columns, their sequences and defaults (every row written without an
-- id still gets a new one, so ids stay distinct for obslib's writers and any tool that
-- leaves the column to its default); what goes: the refusal of a second row given an
-- explicit id already stored. The down migration builds the keys again (per day partition,
-- in its one transaction) and fails, changing nothing, if such a duplicate was stored.
--
-- A catalog change only on a populated database: no row is rewritten or scanned.
ALTER TABLE distributed_traces DROP CONSTRAINT distributed_traces_pkey;
ALTER TABLE structured_logs DROP CONSTRAINT structured_logs_pkey;
