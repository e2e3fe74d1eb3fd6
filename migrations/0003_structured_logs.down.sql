DROP TABLE IF EXISTS structured_logs;
