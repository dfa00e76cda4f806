-- Bulk runs (SQLite). Keep in step with ../postgres/0002_bulk.sql.
-- Times are Unix microseconds (UTC), 0 when unset; booleans are 0/1 integers
-- in both dialects so the same SQL reads them.

-- One upload: who, which action, which file, its mapping and counts, and
-- where the run is in its life (preview, queued, running, paused, cancelled,
-- done).
CREATE TABLE bulk_runs (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	admin_id INTEGER NOT NULL,
	admin_name TEXT NOT NULL,
	grant_id INTEGER NOT NULL,       -- whose token the workers use; replaced on resume
	kind TEXT NOT NULL,              -- actions.Kind
	file_name TEXT NOT NULL,
	state TEXT NOT NULL,
	paused_reason TEXT NOT NULL,
	header TEXT NOT NULL,            -- JSON array of the header cells
	mapping TEXT NOT NULL,           -- JSON object field -> column index
	delimiter TEXT NOT NULL,
	total INTEGER NOT NULL,
	valid INTEGER NOT NULL,
	invalid INTEGER NOT NULL,
	duplicates INTEGER NOT NULL,
	retry_of INTEGER NOT NULL,       -- the run whose failed rows this one retries, 0 for none
	preflighted INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	started_at INTEGER NOT NULL,
	finished_at INTEGER NOT NULL
);
CREATE INDEX bulk_runs_created_at ON bulk_runs (created_at, id);
CREATE INDEX bulk_runs_admin_id ON bulk_runs (admin_id, created_at);
CREATE INDEX bulk_runs_state ON bulk_runs (state);

-- One data row of an upload and how it ended. A row reaches exactly one
-- terminal state (done, failed, skipped; invalid rows never leave invalid):
-- FinishRow only moves rows that are not terminal yet.
CREATE TABLE bulk_rows (
	run_id INTEGER NOT NULL REFERENCES bulk_runs (id) ON DELETE CASCADE,
	number INTEGER NOT NULL,         -- spreadsheet row number (header = 1)
	cells TEXT NOT NULL,             -- JSON array of the input cells
	action TEXT NOT NULL,            -- JSON of the action value, '' when invalid
	valid INTEGER NOT NULL,
	errors TEXT NOT NULL,            -- JSON array of sentences
	row_key TEXT NOT NULL,
	duplicate INTEGER NOT NULL,
	state TEXT NOT NULL,
	http_status INTEGER NOT NULL,
	error TEXT NOT NULL,
	zendesk_id INTEGER NOT NULL,
	attempts INTEGER NOT NULL,       -- attempts begun whose outcome may have reached Zendesk
	attempt_at INTEGER NOT NULL,
	waiting_until INTEGER NOT NULL,  -- snoozed on Zendesk's rate limit until then
	preflight_error TEXT NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (run_id, number)
);
CREATE INDEX bulk_rows_state ON bulk_rows (run_id, state);
