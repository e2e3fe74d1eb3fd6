ALTER TABLE distributed_traces DROP COLUMN IF EXISTS span_kind;
