-- 0007 copies an SLO's service into its measurements when they are written; this keeps them
-- in step when the SLO's service_name itself changes (a rename by hand: `obslib slo apply`
-- keys SLOs by service and name, so it never renames).
CREATE FUNCTION slo_measurements_follow_service() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE slo_measurements SET service_name = NEW.service_name WHERE slo_id = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER slo_measurements_follow_service
    AFTER UPDATE OF service_name ON service_level_objectives
    FOR EACH ROW WHEN (OLD.service_name IS DISTINCT FROM NEW.service_name)
    EXECUTE FUNCTION slo_measurements_follow_service();
