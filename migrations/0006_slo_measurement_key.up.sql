-- One measurement per SLO per instant: the natural key writers merge on, so re-ingesting
-- measurements stores nothing twice. It also serves the plan's (slo_id, timestamp DESC) reads.
ALTER TABLE slo_measurements
    ADD CONSTRAINT slo_measurements_slo_timestamp_key UNIQUE (slo_id, measurement_timestamp);
