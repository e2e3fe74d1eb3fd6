-- obslib:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS idx_incidents_open;
DROP INDEX CONCURRENTLY IF EXISTS idx_traces_service_duration;
DROP INDEX CONCURRENTLY IF EXISTS idx_slo_measurements_compliance;
