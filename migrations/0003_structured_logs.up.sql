-- Structured logs, as the plan's StructuredLogEntry (timestamp, level, service_name, trace_id,
-- span_id, message, fields, error), so logs can be correlated with traces by id and by time.
-- log_id is the natural key writers derive (the source's id, or a hash of the record), so
-- re-ingesting a file stores nothing twice.

CREATE TABLE structured_logs (
    id BIGSERIAL PRIMARY KEY,
    log_id VARCHAR(100) NOT NULL
        CONSTRAINT structured_logs_log_id_key UNIQUE,
    timestamp TIMESTAMP WITH TIME ZONE NOT NULL,
    level VARCHAR(10) NOT NULL
        CONSTRAINT structured_logs_level_check
        CHECK (level IN ('trace', 'debug', 'info', 'warn', 'error', 'fatal')),
    service_name VARCHAR(100) NOT NULL,
    trace_id VARCHAR(100),
    span_id VARCHAR(100),
    message TEXT NOT NULL,
    fields JSONB NOT NULL DEFAULT '{}',
    error TEXT
);
-- log -> trace/span correlation; most queries name a trace, some a span within it
CREATE INDEX structured_logs_trace_span_idx ON structured_logs (trace_id, span_id)
    WHERE trace_id IS NOT NULL;
-- time windows, overall and per service
CREATE INDEX structured_logs_timestamp_idx ON structured_logs (timestamp DESC);
CREATE INDEX structured_logs_service_timestamp_idx ON structured_logs (service_name, timestamp DESC);
