-- AR-007 monitoring and observability schema (upstream 20250622_monitoring_observability_architecture),
-- made valid PostgreSQL. Names, columns and meanings are the plan's; the changes:
--   * inline INDEX (...) clauses (MySQL syntax) are CREATE INDEX statements;
--   * distributed_traces.duration_ms is NUMERIC(15,3): DECIMAL(10,3) overflows past ~2.8 h;
--   * (trace_id, span_id) is unique, so re-ingesting the same file stores nothing twice;
--     that key's index also serves the plan's INDEX (trace_id), which is therefore not repeated;
--   * slo_measurements.error_budget_remaining is NUMERIC(9,2): an overspent budget goes far
--     below -999.99 %;
--   * every status-like column has one CHECK list, matching the plan's code (incidents can be
--     'auto_resolved', which the plan's comment omits).
-- No IF NOT EXISTS: a migration runs once, on a known state; a surprise table is an error.

CREATE TABLE service_level_objectives (
    id BIGSERIAL PRIMARY KEY,
    service_name VARCHAR(100) NOT NULL,
    slo_name VARCHAR(100) NOT NULL,
    slo_type VARCHAR(50) NOT NULL
        CONSTRAINT service_level_objectives_slo_type_check
        CHECK (slo_type IN ('availability', 'latency', 'error_rate', 'throughput')),
    target_value DECIMAL(10,4) NOT NULL,
    measurement_window_hours INTEGER DEFAULT 24
        CONSTRAINT service_level_objectives_window_check CHECK (measurement_window_hours > 0),
    error_budget_percent DECIMAL(5,2) DEFAULT 1.0,
    alert_threshold_percent DECIMAL(5,2) DEFAULT 90.0,
    enabled BOOLEAN DEFAULT true,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE (service_name, slo_name)
);

CREATE TABLE slo_measurements (
    id BIGSERIAL PRIMARY KEY,
    slo_id BIGINT REFERENCES service_level_objectives(id),
    measurement_timestamp TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    actual_value DECIMAL(10,4) NOT NULL,
    target_value DECIMAL(10,4) NOT NULL,
    compliance_status VARCHAR(20) NOT NULL
        CONSTRAINT slo_measurements_compliance_status_check
        CHECK (compliance_status IN ('compliant', 'at_risk', 'violated')),
    error_budget_remaining NUMERIC(9,2) DEFAULT 0.0,
    measurement_period INTERVAL NOT NULL
);
COMMENT ON COLUMN slo_measurements.error_budget_remaining IS
    'percent of the error budget left at measurement time: 100 untouched, 0 spent, negative overspent';
CREATE INDEX slo_measurements_slo_id_timestamp_idx
    ON slo_measurements (slo_id, measurement_timestamp DESC);

CREATE TABLE distributed_traces (
    id BIGSERIAL PRIMARY KEY,
    trace_id VARCHAR(100) NOT NULL,
    span_id VARCHAR(100) NOT NULL,
    parent_span_id VARCHAR(100),
    service_name VARCHAR(100) NOT NULL,
    operation_name VARCHAR(200) NOT NULL,
    start_time TIMESTAMP WITH TIME ZONE NOT NULL,
    end_time TIMESTAMP WITH TIME ZONE NOT NULL,
    duration_ms NUMERIC(15,3) NOT NULL
        CONSTRAINT distributed_traces_duration_check CHECK (duration_ms >= 0),
    status VARCHAR(20) NOT NULL
        CONSTRAINT distributed_traces_status_check CHECK (status IN ('ok', 'error', 'timeout')),
    tags JSONB DEFAULT '{}',
    logs JSONB DEFAULT '[]',
    CONSTRAINT distributed_traces_trace_span_key UNIQUE (trace_id, span_id)
);
CREATE INDEX distributed_traces_service_start_idx ON distributed_traces (service_name, start_time DESC);
CREATE INDEX distributed_traces_start_idx ON distributed_traces (start_time DESC);

CREATE TABLE alert_definitions (
    id BIGSERIAL PRIMARY KEY,
    alert_name VARCHAR(100) NOT NULL UNIQUE,
    service_name VARCHAR(100) NOT NULL,
    alert_type VARCHAR(50) NOT NULL
        CONSTRAINT alert_definitions_alert_type_check
        CHECK (alert_type IN ('threshold', 'anomaly', 'slo_violation')),
    metric_name VARCHAR(100) NOT NULL,
    condition_expression TEXT NOT NULL,
    severity VARCHAR(20) NOT NULL
        CONSTRAINT alert_definitions_severity_check
        CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    notification_channels TEXT[] DEFAULT '{}',
    enabled BOOLEAN DEFAULT true,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE alert_incidents (
    id BIGSERIAL PRIMARY KEY,
    incident_id VARCHAR(100) NOT NULL UNIQUE,
    alert_id BIGINT REFERENCES alert_definitions(id),
    status VARCHAR(20) NOT NULL DEFAULT 'open'
        CONSTRAINT alert_incidents_status_check
        CHECK (status IN ('open', 'acknowledged', 'resolved', 'auto_resolved')),
    severity VARCHAR(20) NOT NULL
        CONSTRAINT alert_incidents_severity_check
        CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    triggered_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    acknowledged_at TIMESTAMP WITH TIME ZONE,
    resolved_at TIMESTAMP WITH TIME ZONE,
    acknowledged_by VARCHAR(100),
    resolved_by VARCHAR(100),
    escalation_level INTEGER DEFAULT 1,
    incident_data JSONB DEFAULT '{}'
);
CREATE INDEX alert_incidents_status_severity_idx ON alert_incidents (status, severity);
CREATE INDEX alert_incidents_triggered_idx ON alert_incidents (triggered_at DESC);
