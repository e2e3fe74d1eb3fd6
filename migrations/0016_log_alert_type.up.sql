-- Log rules (obslib.logs.rules): alert definitions of type 'log', whose condition_expression
-- is a rule on message templates ('template "T" at level >= error more than N times in 10m',
-- 'new template at level >= error in 10m, not seen in the previous 7d') and whose metric_name
-- is log_template_count or log_new_template. `obslib alerts evaluate-logs --record` opens
-- their incidents. The CHECK list gains 'log'; schema.ALERT_TYPES is the same list.
ALTER TABLE alert_definitions DROP CONSTRAINT alert_definitions_alert_type_check;
ALTER TABLE alert_definitions ADD CONSTRAINT alert_definitions_alert_type_check
    CHECK (alert_type IN ('threshold', 'anomaly', 'slo_violation', 'log'));
