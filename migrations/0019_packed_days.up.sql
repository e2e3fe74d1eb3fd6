-- The packing catalog (`obslib db retain`, issue 24): one row per finished day of spans or
-- logs whose partition's indexes retain rebuilt with REINDEX TABLE CONCURRENTLY. The
-- writers insert in hash and random time order, so a day's B-trees grow about a third
-- empty; a day that has ended receives almost no writes, so rebuilding its indexes once
-- keeps them packed. The row is how a rerun knows the day is done: it packs a day again
-- only when the day's indexes have grown by more than a quarter since (late or backfilled
-- rows; obslib.jobs.pack.REPACK_GROWTH), bytes_after being what they held right after.
CREATE TABLE packed_days (
    table_name TEXT NOT NULL
        CONSTRAINT packed_days_table_check
        CHECK (table_name IN ('distributed_traces', 'structured_logs')),
    day DATE NOT NULL,
    packed_at TIMESTAMP WITH TIME ZONE NOT NULL,
    bytes_before BIGINT NOT NULL CHECK (bytes_before >= 0),  -- pg_indexes_size before
    bytes_after BIGINT NOT NULL CHECK (bytes_after >= 0),    -- and right after the REINDEX
    PRIMARY KEY (table_name, day)
);

COMMENT ON TABLE packed_days IS
    'finished days of spans/logs whose indexes obslib db retain rebuilt (REINDEX CONCURRENTLY)';
