ALTER TABLE distributed_traces DROP COLUMN IF EXISTS sampling_probability;
