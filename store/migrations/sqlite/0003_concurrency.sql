-- Who confirmed and who cancelled a run, rows with a write in flight, and
-- Zendesk's Retry-After pauses shared by replicas (sqlite). Keep in step with
-- ../postgres/0003_concurrency.sql.

-- Security promise 11: a run names the admin who confirmed it and the one
-- who cancelled it (any admin may cancel); 0 and '' when nobody did.
ALTER TABLE bulk_runs ADD COLUMN confirmed_by_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bulk_runs ADD COLUMN confirmed_by_name TEXT NOT NULL DEFAULT '';
ALTER TABLE bulk_runs ADD COLUMN cancelled_by_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bulk_runs ADD COLUMN cancelled_by_name TEXT NOT NULL DEFAULT '';

-- in_flight is 1 from the moment a row's write passes the send gate until
-- Zendesk's answer is recorded: a cancel leaves such rows to their worker
-- ("Cancelling…"), and a row found with in_flight = 1 and no worker had a
-- write whose outcome is unknown, so it is checked before anything is sent
-- again. next_number chains rows of one run that act on the same target:
-- the row that must run after this one (0 for none), queued only when this
-- one ends, so "the last one wins" holds whatever the number of workers.
ALTER TABLE bulk_rows ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bulk_rows ADD COLUMN next_number INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bulk_rows ADD COLUMN after_number INTEGER NOT NULL DEFAULT 0;

-- One row per Zendesk account (its base URL): nobody sends to it before
-- until_at (a 429 or 503 Retry-After), on any replica.
CREATE TABLE zendesk_pauses (
	account TEXT PRIMARY KEY,
	until_at INTEGER NOT NULL
);
