DROP TRIGGER IF EXISTS alert_incidents_notify ON alert_incidents;
DROP FUNCTION IF EXISTS alert_incidents_notify();
ALTER TABLE alert_definitions DROP COLUMN IF EXISTS runbook;
