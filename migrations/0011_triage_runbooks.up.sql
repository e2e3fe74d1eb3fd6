-- Runbooks that run themselves (`obslib triage`). An alert definition may name the notebook
-- to run for its incidents: a plain notebook name looked up in obslib's notebooks folder and
-- $OBSLIB_RUNBOOKS, or a report name; NULL is the default, the incident postmortem. The name
-- is checked when it is used (never a path: a row is no licence to run any file).
ALTER TABLE alert_definitions ADD COLUMN runbook TEXT;

COMMENT ON COLUMN alert_definitions.runbook IS
    'notebook obslib triage runs for this alert''s incidents; NULL: the incident postmortem';

-- Every new incident is announced on the channel `obslib triage --follow` listens on
-- (obslib.triage.CHANNEL), its incident_id as the payload. NOTIFY is sent at commit, so a
-- follower never sees an incident a rolled-back transaction inserted.
CREATE FUNCTION alert_incidents_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('obslib_incidents', NEW.incident_id);
    RETURN NULL;
END $$;

CREATE TRIGGER alert_incidents_notify
    AFTER INSERT ON alert_incidents
    FOR EACH ROW EXECUTE FUNCTION alert_incidents_notify();
