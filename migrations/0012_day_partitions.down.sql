-- Back to the plain tables of 0011, in one transaction: same rows, ids, sequences, grants,
-- and the indexes of 0001-0003 and 0009 (built here without CONCURRENTLY: this runs in a
-- transaction). A detached day partition left by a cut-short retention run stops this (its
-- schema, obslib_partitions, is not empty): finish the retention run first.

CREATE FUNCTION pg_temp.obslib_copy_grants(source regclass, target regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT a.grantee, a.privilege_type, a.is_grantable
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = source AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT %s ON %s TO %s%s', g.privilege_type, target,
            CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END,
            CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END $$;

-- spans --------------------------------------------------------------------------------
ALTER TABLE distributed_traces RENAME TO distributed_traces_partitioned;
CREATE TABLE distributed_traces (
    LIKE distributed_traces_partitioned
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS
);
INSERT INTO distributed_traces SELECT * FROM distributed_traces_partitioned ORDER BY id;
ALTER SEQUENCE distributed_traces_id_seq OWNED BY distributed_traces.id;
SELECT pg_temp.obslib_copy_grants('distributed_traces_partitioned', 'distributed_traces');
DROP TABLE distributed_traces_partitioned;
ALTER TABLE distributed_traces ADD CONSTRAINT distributed_traces_pkey PRIMARY KEY (id);
ALTER TABLE distributed_traces
    ADD CONSTRAINT distributed_traces_trace_span_key UNIQUE (trace_id, span_id);
CREATE INDEX distributed_traces_service_start_idx ON distributed_traces (service_name, start_time DESC);
CREATE INDEX distributed_traces_start_idx ON distributed_traces (start_time DESC);
CREATE INDEX idx_traces_service_duration
    ON distributed_traces (service_name, duration_ms DESC, start_time DESC);
CREATE INDEX distributed_traces_server_start_idx
    ON distributed_traces (start_time) INCLUDE (service_name, status, duration_ms, operation_name)
    WHERE span_kind = 'server';

-- logs ---------------------------------------------------------------------------------
ALTER TABLE structured_logs RENAME TO structured_logs_partitioned;
CREATE TABLE structured_logs (
    LIKE structured_logs_partitioned
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS
);
INSERT INTO structured_logs SELECT * FROM structured_logs_partitioned ORDER BY id;
ALTER SEQUENCE structured_logs_id_seq OWNED BY structured_logs.id;
SELECT pg_temp.obslib_copy_grants('structured_logs_partitioned', 'structured_logs');
DROP TABLE structured_logs_partitioned;
ALTER TABLE structured_logs ADD CONSTRAINT structured_logs_pkey PRIMARY KEY (id);
ALTER TABLE structured_logs ADD CONSTRAINT structured_logs_log_id_key UNIQUE (log_id);
CREATE INDEX structured_logs_trace_span_idx ON structured_logs (trace_id, span_id)
    WHERE trace_id IS NOT NULL;
CREATE INDEX structured_logs_timestamp_idx ON structured_logs (timestamp DESC);
CREATE INDEX structured_logs_service_timestamp_idx ON structured_logs (service_name, timestamp DESC);

DROP FUNCTION obslib_ensure_day_partitions(regclass, date, date);
DROP SCHEMA obslib_partitions;
