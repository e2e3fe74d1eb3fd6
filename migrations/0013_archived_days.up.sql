-- The retention catalog (`obslib db retain`): one row per day of spans or logs copied to the
-- Parquet archive. A row is written once the day's file is verified against its partition
-- (row count and key checksum); detached_at and dropped_at are set in the same transaction
-- as the partition's detach and drop. The loaders read every day with detached_at set from
-- the archive (its rows are no longer in the table), the others from PostgreSQL.
CREATE TABLE archived_days (
    table_name TEXT NOT NULL
        CONSTRAINT archived_days_table_check
        CHECK (table_name IN ('distributed_traces', 'structured_logs')),
    day DATE NOT NULL,
    archive TEXT NOT NULL,       -- the archive folder, absolute, as retain was given it
    file TEXT NOT NULL,          -- the day's file relative to the archive folder
    rows BIGINT NOT NULL CHECK (rows >= 0),
    checksum NUMERIC NOT NULL,   -- sum of the keys' 64-bit md5 prefixes (obslib.load.archive)
    sha256 TEXT NOT NULL,        -- of the file's bytes, checked by every read of the day
    verified_at TIMESTAMP WITH TIME ZONE NOT NULL,
    detached_at TIMESTAMP WITH TIME ZONE,
    dropped_at TIMESTAMP WITH TIME ZONE,
    bytes_freed BIGINT,          -- pg_total_relation_size of the partition before its drop
    PRIMARY KEY (table_name, day),
    CONSTRAINT archived_days_order_check CHECK (
        (dropped_at IS NULL OR detached_at IS NOT NULL)
        AND (detached_at IS NULL OR verified_at IS NOT NULL))
);

COMMENT ON TABLE archived_days IS
    'days of spans/logs archived to Parquet by obslib db retain; detached days are read from the archive';
