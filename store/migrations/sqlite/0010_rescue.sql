-- Crashes and timeouts do not wear a row out, and a row taken back from a
-- replica that died is fenced off from it (sqlite; keep in step with
-- ../postgres/0010_rescue.sql).

-- failures counts the attempts that failed on their own account: an answer
-- from Zendesk, or an error after the write was sent. An attempt cut short
-- by a crash, a shutdown or the job's deadline before anything was sent is
-- not counted, so crashes alone cannot fail a row. attempts (counted at the
-- send gate) still tells whether an earlier write may have reached Zendesk.
ALTER TABLE bulk_rows ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
-- claim names the worker attempt that holds the row (ClaimRow); the send
-- gate lets only that attempt's write through, so a worker whose row was
-- taken back (its replica stopped answering) can no longer send it.
ALTER TABLE bulk_rows ADD COLUMN claim TEXT NOT NULL DEFAULT '';

-- One row per running engine: it writes seen_at (the database's clock, in
-- Unix microseconds) every few moments. The others take back the jobs of an
-- engine silent for longer than BULK_RESCUE_AFTER.
CREATE TABLE bulk_workers (
	id TEXT PRIMARY KEY,
	seen_at INTEGER NOT NULL
);
