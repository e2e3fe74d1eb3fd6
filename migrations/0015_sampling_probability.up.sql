-- Adaptive trace sampling (`obslib collect --sampling adaptive`): the probability each stored
-- span's trace was kept with; 1 for every span stored without sampling (the file importers,
-- the demo, the receiver without --sampling). The SLI counts weight a span by 1 / probability
-- (Horvitz-Thompson: obslib.load.weights), so an SLO on sampled spans estimates the same SLO
-- on all of them.
--
-- NOT NULL DEFAULT 1 rather than NULL meaning 1, measured (100k spans of the demo's shape):
-- a NULL adds the row's null bitmap, +5.8 B/span, a stored REAL +0.1 B/span (it fills the
-- row's alignment padding). A constant default is a catalog change only (PostgreSQL 11+
-- keeps it as the column's missing value): no rewrite and no scan, instant on a populated,
-- partitioned table, whose day partitions inherit the column. No CHECK: validating one would
-- scan every partition under the lock; the sampler, the column's only writer of anything but
-- 1, writes probabilities in (0, 1) only.
ALTER TABLE distributed_traces
    ADD COLUMN sampling_probability REAL NOT NULL DEFAULT 1;

COMMENT ON COLUMN distributed_traces.sampling_probability IS
    'probability the span''s trace was kept with by the collector''s sampler (1: not sampled)';
