-- The support lead's loop (postgres; keep in step with ../sqlite/0009_loop.sql):
-- score_map is the run's score mapping, a JSON object from a score cell as
-- written (trimmed, lower case) to "good", "bad" or "" (leave the row out),
-- '{}' when the file's scores are good and bad already; skip_refused says
-- that confirming skips the rows the pre-flight found Zendesk would refuse.
ALTER TABLE bulk_runs ADD COLUMN score_map TEXT NOT NULL DEFAULT '{}';
ALTER TABLE bulk_runs ADD COLUMN skip_refused BIGINT NOT NULL DEFAULT 0;
-- Rows already sent, by what they did, so a preview can warn that a file
-- was sent before (store.RepeatedRows).
CREATE INDEX bulk_rows_done_key ON bulk_rows (row_key) WHERE state = 'done';
