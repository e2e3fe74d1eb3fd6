-- Span kind (OpenTelemetry's five) for SLIs (server spans), service graphs (client -> server
-- edges) and the critical path (producer/consumer children do not block their parent).
-- Spans stored before this migration become 'internal', OpenTelemetry's default kind.

ALTER TABLE distributed_traces
    ADD COLUMN span_kind VARCHAR(10) NOT NULL DEFAULT 'internal'
        CONSTRAINT distributed_traces_span_kind_check
        CHECK (span_kind IN ('server', 'client', 'producer', 'consumer', 'internal'));
