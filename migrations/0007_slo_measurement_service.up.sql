-- The plan's own CI check groups measurements by service:
--   SELECT service_name, compliance_status, COUNT(*) FROM slo_measurements GROUP BY 1, 2;
-- but the plan's table has no service_name. It is added here, copied from the measured SLO:
-- existing rows are filled, and a trigger fills (and corrects) it on every insert or slo_id
-- change, so no writer can store a measurement under another service than its SLO's.
ALTER TABLE slo_measurements ADD COLUMN service_name VARCHAR(100);

UPDATE slo_measurements m SET service_name = o.service_name
FROM service_level_objectives o WHERE o.id = m.slo_id;

CREATE FUNCTION slo_measurements_service_name() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT o.service_name INTO NEW.service_name
    FROM service_level_objectives o WHERE o.id = NEW.slo_id;
    RETURN NEW;
END $$;

CREATE TRIGGER slo_measurements_service_name
    BEFORE INSERT OR UPDATE OF slo_id, service_name ON slo_measurements
    FOR EACH ROW EXECUTE FUNCTION slo_measurements_service_name();

CREATE INDEX slo_measurements_service_status_idx
    ON slo_measurements (service_name, compliance_status);
