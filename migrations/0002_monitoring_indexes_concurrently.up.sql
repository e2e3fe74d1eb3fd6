-- obslib:no-transaction
-- The plan's "strategic indexes", built CONCURRENTLY so a live database keeps taking writes.
-- CREATE INDEX CONCURRENTLY cannot run inside a transaction: the marker on the first line
-- makes the runner apply each statement on its own.
-- A failed concurrent build leaves an INVALID index that IF NOT EXISTS would then skip, so
-- each index is dropped first: re-running this file after a failure rebuilds it cleanly.

DROP INDEX CONCURRENTLY IF EXISTS idx_slo_measurements_compliance;
CREATE INDEX CONCURRENTLY idx_slo_measurements_compliance
    ON slo_measurements (slo_id, compliance_status, measurement_timestamp DESC);

DROP INDEX CONCURRENTLY IF EXISTS idx_traces_service_duration;
CREATE INDEX CONCURRENTLY idx_traces_service_duration
    ON distributed_traces (service_name, duration_ms DESC, start_time DESC);

DROP INDEX CONCURRENTLY IF EXISTS idx_incidents_open;
CREATE INDEX CONCURRENTLY idx_incidents_open
    ON alert_incidents (status, severity, triggered_at DESC) WHERE status IN ('open', 'acknowledged');
