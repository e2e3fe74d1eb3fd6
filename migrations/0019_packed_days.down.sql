-- The packed indexes stay packed; only the record of which days were packed goes (a later
-- retain at 0019 would pack every finished day once more).
DROP TABLE packed_days;
