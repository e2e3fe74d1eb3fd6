-- Day partitions: distributed_traces (by start_time) and structured_logs (by timestamp) become
-- PARTITION BY RANGE with one partition per UTC day, named <table>_pYYYYMMDD in the schema
-- obslib_partitions (apart from the tables people query, which stay where they were; rows are
-- read and written through them, so no role needs a grant on a partition), converted in
-- place in this one transaction: same rows and ids (the sequences stay, owned by the new
-- tables), same columns in the same order with their types, defaults, NOT NULLs and CHECKs,
-- same grants. Retention then drops a day as one partition instead of deleting rows.
--
-- Unique keys must hold the partition key (PostgreSQL's rule): the primary keys become
-- (id, start_time) / (id, timestamp), the natural keys (trace_id, span_id, start_time) /
-- (log_id, timestamp). The writers keep "first stored wins" on the natural key itself
-- (trace_id, span_id) / (log_id) with an anti-join under an advisory lock
-- (obslib/ingest/tables.py), so the same span with another start_time is still a conflict.
--
-- A DEFAULT partition (obslib_partitions.<table>_default) takes the rows of a day nobody created, so such a
-- write never fails (a tool inserting with plain SQL included). Writers create the days they
-- are about to write first (obslib_ensure_day_partitions, below, which other tools can call
-- too); creating a day whose rows wait in the default partition moves them into it.
--
-- Indexes, each kept for a query that uses it (tests/storage/test_partitions.py EXPLAINs
-- them): the natural keys (the writers' conflict arbiter and anti-join, one trace's spans,
-- the parent joins of the health queries); the server-span partial index (SLI counts, an
-- index-only scan); the logs' (trace_id, span_id) (a trace's logs, log correlation). The
-- time indexes (start, service_start, logs' timestamp and service_timestamp) and
-- (service_name, duration_ms, start_time) are dropped: day partitions prune a time window,
-- and no query orders by duration in SQL. JSON columns use lz4 TOAST where the server has it.

-- Creates the day partitions of [first_day, last_day] of a day-partitioned obslib table
-- that are missing, moving the day's rows out of the default partition; returns how many it
-- created. SECURITY DEFINER (it runs as the tables' owner) so a writer role that may INSERT
-- into the table but does not own it can create its days; refused to anyone who may not
-- INSERT. Attaching a partition takes an ACCESS EXCLUSIVE lock on the default partition,
-- which every writer's anti-join reads: the function never waits for it (NOWAIT) but leaves
-- the day in the default partition when another transaction is using it (a later call moves
-- it), so it can neither block behind nor deadlock with open writes. Two callers racing for
-- the same new day are safe: the second waits for the first's commit and finds the day made.
-- A day whose partition was detached and not yet dropped (a retention run cut short) is
-- not made again: its new rows wait in the default partition until the drop.
CREATE SCHEMA obslib_partitions;
REVOKE ALL ON SCHEMA obslib_partitions FROM PUBLIC;

CREATE FUNCTION obslib_ensure_day_partitions(parent regclass, first_day date, last_day date)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    base text;
    key text;
    fallback regclass;
    day date;
    part text;
    found regclass;
    lo text;
    hi text;
    created integer := 0;
BEGIN
    SELECT c.relname, p.partdefid::regclass INTO base, fallback
    FROM pg_class c JOIN pg_partitioned_table p ON p.partrelid = c.oid
    WHERE c.oid = parent;
    key := CASE base WHEN 'distributed_traces' THEN 'start_time'
                     WHEN 'structured_logs' THEN 'timestamp' END;
    IF key IS NULL THEN
        RAISE EXCEPTION 'obslib_ensure_day_partitions: % is not a day-partitioned obslib table',
            parent USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT has_table_privilege(session_user, parent, 'INSERT') THEN
        RAISE EXCEPTION 'obslib_ensure_day_partitions: % may not write to %', session_user, parent
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF first_day IS NULL OR last_day IS NULL OR last_day < first_day THEN
        RETURN 0;
    END IF;
    IF last_day - first_day > 400 THEN
        RAISE EXCEPTION 'obslib_ensure_day_partitions: % to % is more than 400 days',
            first_day, last_day USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('obslib.partitions'), 0);
    FOR day IN SELECT d::date FROM generate_series(first_day, last_day, interval '1 day') d LOOP
        part := base || '_p' || to_char(day, 'YYYYMMDD');
        found := to_regclass(format('obslib_partitions.%I', part));
        IF found IS NOT NULL THEN
            IF NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = found AND inhparent = parent)
            THEN
                RAISE NOTICE 'day % of % is a detached partition (%) awaiting its drop:'
                    ' its new rows stay in the default partition', day, base, part;
            END IF;
            CONTINUE;
        END IF;
        IF fallback IS NOT NULL THEN
            BEGIN
                EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE NOWAIT', fallback);
            EXCEPTION WHEN lock_not_available THEN
                RAISE NOTICE '% is in use: day % stays in it for now', fallback, day;
                RETURN created;
            END;
        END IF;
        lo := to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00';
        hi := to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00';
        EXECUTE format('CREATE TABLE obslib_partitions.%I (LIKE %s INCLUDING DEFAULTS'
            ' INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)', part, parent);
        IF fallback IS NOT NULL THEN
            EXECUTE format('WITH moved AS (DELETE FROM %s WHERE %I >= %L AND %I < %L RETURNING *)'
                ' INSERT INTO obslib_partitions.%I SELECT * FROM moved', fallback, key, lo, key, hi,
                part);
        END IF;
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION obslib_partitions.%I'
            ' FOR VALUES FROM (%L) TO (%L)', parent, part, lo, hi);
        created := created + 1;
    END LOOP;
    RETURN created;
END $$;
REVOKE ALL ON FUNCTION obslib_ensure_day_partitions(regclass, date, date) FROM PUBLIC;

-- The grants of one table, repeated on another (the conversion keeps who may do what).
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

-- lz4 where the server was built with it (default_toast_compression lists it)
CREATE FUNCTION pg_temp.obslib_lz4() RETURNS boolean LANGUAGE sql AS $$
    SELECT EXISTS (SELECT 1 FROM pg_settings
                   WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals))
$$;

-- the days that hold rows, each created (not the whole range: one stray old span must not
-- make thousands of empty partitions)
CREATE FUNCTION pg_temp.obslib_partition_days(parent regclass, source regclass, key text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    day date;
BEGIN
    FOR day IN EXECUTE format('SELECT DISTINCT (%I AT TIME ZONE ''UTC'')::date FROM %s ORDER BY 1',
                              key, source) LOOP
        PERFORM obslib_ensure_day_partitions(parent, day, day);
    END LOOP;
END $$;

-- spans --------------------------------------------------------------------------------
ALTER TABLE distributed_traces RENAME TO distributed_traces_unpartitioned;
CREATE TABLE distributed_traces (
    LIKE distributed_traces_unpartitioned
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS
) PARTITION BY RANGE (start_time);
DO $$ BEGIN
    IF pg_temp.obslib_lz4() THEN
        ALTER TABLE distributed_traces ALTER COLUMN tags SET COMPRESSION lz4,
                                       ALTER COLUMN logs SET COMPRESSION lz4;
    END IF;
END $$;
CREATE TABLE obslib_partitions.distributed_traces_default PARTITION OF distributed_traces DEFAULT;
SELECT pg_temp.obslib_partition_days('distributed_traces', 'distributed_traces_unpartitioned',
                                     'start_time');
-- in time order: each day's rows lie together, in the order they happened
INSERT INTO distributed_traces SELECT * FROM distributed_traces_unpartitioned ORDER BY start_time;
ALTER SEQUENCE distributed_traces_id_seq OWNED BY distributed_traces.id;
SELECT pg_temp.obslib_copy_grants('distributed_traces_unpartitioned', 'distributed_traces');
DROP TABLE distributed_traces_unpartitioned;
ALTER TABLE distributed_traces ADD CONSTRAINT distributed_traces_pkey PRIMARY KEY (id, start_time);
ALTER TABLE distributed_traces
    ADD CONSTRAINT distributed_traces_trace_span_key UNIQUE (trace_id, span_id, start_time);
CREATE INDEX distributed_traces_server_start_idx
    ON distributed_traces (start_time) INCLUDE (service_name, status, duration_ms, operation_name)
    WHERE span_kind = 'server';

-- logs ---------------------------------------------------------------------------------
ALTER TABLE structured_logs RENAME TO structured_logs_unpartitioned;
CREATE TABLE structured_logs (
    LIKE structured_logs_unpartitioned
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS
) PARTITION BY RANGE (timestamp);
DO $$ BEGIN
    IF pg_temp.obslib_lz4() THEN
        ALTER TABLE structured_logs ALTER COLUMN fields SET COMPRESSION lz4;
    END IF;
END $$;
CREATE TABLE obslib_partitions.structured_logs_default PARTITION OF structured_logs DEFAULT;
SELECT pg_temp.obslib_partition_days('structured_logs', 'structured_logs_unpartitioned',
                                     'timestamp');
INSERT INTO structured_logs SELECT * FROM structured_logs_unpartitioned ORDER BY timestamp;
ALTER SEQUENCE structured_logs_id_seq OWNED BY structured_logs.id;
SELECT pg_temp.obslib_copy_grants('structured_logs_unpartitioned', 'structured_logs');
DROP TABLE structured_logs_unpartitioned;
ALTER TABLE structured_logs ADD CONSTRAINT structured_logs_pkey PRIMARY KEY (id, timestamp);
ALTER TABLE structured_logs
    ADD CONSTRAINT structured_logs_log_id_key UNIQUE (log_id, timestamp);
CREATE INDEX structured_logs_trace_span_idx ON structured_logs (trace_id, span_id)
    WHERE trace_id IS NOT NULL;

-- planner statistics for what was converted (an empty database is left to the writers,
-- which ANALYZE after a bulk load)
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM distributed_traces) THEN
        ANALYZE distributed_traces;
    END IF;
    IF EXISTS (SELECT 1 FROM structured_logs) THEN
        ANALYZE structured_logs;
    END IF;
END $$;
