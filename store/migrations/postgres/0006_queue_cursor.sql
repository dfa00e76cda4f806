-- Confirmed runs are queued in the background, in batches (postgres; keep in
-- step with ../sqlite/0006_queue_cursor.sql): queue_cursor is the number of the
-- last row the queuer has handled (0 before the first batch), queued_rows
-- how many rows it has queued, for "Queuing rows… n of N".
ALTER TABLE bulk_runs ADD COLUMN queue_cursor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bulk_runs ADD COLUMN queued_rows BIGINT NOT NULL DEFAULT 0;
-- Runs confirmed before this migration were queued whole at once.
UPDATE bulk_runs SET queue_cursor = 2147483647, queued_rows = valid WHERE state <> 'preview';
