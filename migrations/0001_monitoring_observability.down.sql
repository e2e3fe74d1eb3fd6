-- The plan's rollback: drop the five tables, dependants first.
DROP TABLE IF EXISTS alert_incidents;
DROP TABLE IF EXISTS alert_definitions;
DROP TABLE IF EXISTS distributed_traces;
DROP TABLE IF EXISTS slo_measurements;
DROP TABLE IF EXISTS service_level_objectives;
