-- Back to 0012's primary keys, built per day partition in this one transaction; fails,
-- changing nothing, if an explicit id was stored twice since 0017.
ALTER TABLE distributed_traces ADD CONSTRAINT distributed_traces_pkey PRIMARY KEY (id, start_time);
ALTER TABLE structured_logs ADD CONSTRAINT structured_logs_pkey PRIMARY KEY (id, timestamp);
