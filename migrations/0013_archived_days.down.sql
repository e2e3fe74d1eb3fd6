-- Refused while a day lives only in the archive: the catalog is what tells the loaders to
-- read it there. (Reload such days into PostgreSQL first, or keep this version.)
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM archived_days WHERE detached_at IS NOT NULL) THEN
        RAISE EXCEPTION 'archived_days lists days that live only in the Parquet archive: '
            'dropping the catalog would hide them from the loaders';
    END IF;
END $$;

DROP TABLE archived_days;
