-- Back to the plan's three alert types: refused while a log rule is stored (its incidents
-- would lose their alert's meaning); delete the log rules first.
ALTER TABLE alert_definitions DROP CONSTRAINT alert_definitions_alert_type_check;
ALTER TABLE alert_definitions ADD CONSTRAINT alert_definitions_alert_type_check
    CHECK (alert_type IN ('threshold', 'anomaly', 'slo_violation'));
