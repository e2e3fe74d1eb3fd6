DROP TRIGGER IF EXISTS slo_measurements_follow_service ON service_level_objectives;
DROP FUNCTION IF EXISTS slo_measurements_follow_service();
