-- Every span's tags back in its row, then the sets, the column and the view go.
DROP VIEW distributed_traces_tagged;
UPDATE distributed_traces d SET tags = ts.tags
FROM span_tag_sets ts
WHERE d.tag_set = ts.id AND d.tags IS NULL;
ALTER TABLE distributed_traces DROP COLUMN tag_set;
DROP TABLE span_tag_sets;
