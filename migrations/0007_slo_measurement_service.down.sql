DROP TRIGGER IF EXISTS slo_measurements_service_name ON slo_measurements;
DROP FUNCTION IF EXISTS slo_measurements_service_name();
DROP INDEX IF EXISTS slo_measurements_service_status_idx;
ALTER TABLE slo_measurements DROP COLUMN IF EXISTS service_name;
