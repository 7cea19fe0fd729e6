-- deletions log
-- `emberwatch forget` records only that a deletion happened: no id, no address, no values.
CREATE TABLE deletions (deleted_at TIMESTAMP NOT NULL, rows_removed INTEGER NOT NULL, files_removed INTEGER NOT NULL);
