-- error_budget_percent was NUMERIC(5,2): a 99.999 % target's budget (0.001 %) stored as 0.00.
-- Four decimals, as target_value has, so every target the table accepts keeps its budget.
ALTER TABLE service_level_objectives ALTER COLUMN error_budget_percent TYPE NUMERIC(7,4);
