ALTER TABLE service_level_objectives ALTER COLUMN error_budget_percent TYPE NUMERIC(5,2);
