-- A latency SLO ("99 % of requests faster than 300 ms") needs the threshold a request is
-- judged against; target_value stays the share of good requests, in percent.

ALTER TABLE service_level_objectives
    ADD COLUMN latency_threshold_ms NUMERIC(15,3)
        CONSTRAINT service_level_objectives_latency_threshold_check
        CHECK (latency_threshold_ms IS NULL OR latency_threshold_ms > 0);
ALTER TABLE service_level_objectives
    ADD CONSTRAINT service_level_objectives_latency_needs_threshold
        CHECK (slo_type <> 'latency' OR latency_threshold_ms IS NOT NULL);
