-- Counts of each run's rows, kept up to date by triggers (sqlite). Keep in
-- step with ../postgres/0004_run_counts.sql.
--
-- RunCounts reads one row of bulk_run_counts instead of counting a run's
-- rows: pages list runs and progress streams poll every second, and a
-- 100,000-row run made every such read scan 100,000 rows. The triggers run
-- inside the statement that changes a row, so the counts commit or roll
-- back with it and no code path can forget them. SQLite has only row-level
-- triggers; it has one writer at a time, so one counter row per run costs
-- no lock contention.
--
-- What a row counts for:
--   total            every row
--   invalid … skipped one per state
--   waiting          queued rows with waiting_until <> 0: snoozed on
--                    Zendesk's rate limit until a worker claims the row
--                    again (ClaimRow, BeginWrite, EndAttempt without a
--                    wait, FinishRow and CancelRun set it back to 0), not
--                    only until waiting_until passes: a count that moves
--                    with the clock cannot be kept by triggers
--   preflight_errors rows with preflight_error <> ''
--   in_flight        pending or queued rows with in_flight = 1
--   with_errors      invalid and failed rows and rows with a pre-flight
--                    error (ListRunRows' OnlyErrors)
-- A row never moves to another run (run_id is part of the key and no
-- statement updates it).

CREATE TABLE bulk_run_counts (
	run_id INTEGER PRIMARY KEY REFERENCES bulk_runs (id) ON DELETE CASCADE,
	total INTEGER NOT NULL DEFAULT 0,
	invalid INTEGER NOT NULL DEFAULT 0,
	pending INTEGER NOT NULL DEFAULT 0,
	queued INTEGER NOT NULL DEFAULT 0,
	done INTEGER NOT NULL DEFAULT 0,
	failed INTEGER NOT NULL DEFAULT 0,
	skipped INTEGER NOT NULL DEFAULT 0,
	waiting INTEGER NOT NULL DEFAULT 0,
	preflight_errors INTEGER NOT NULL DEFAULT 0,
	in_flight INTEGER NOT NULL DEFAULT 0,
	with_errors INTEGER NOT NULL DEFAULT 0
);

-- Every run has its row from the start, so the row triggers only update.
CREATE TRIGGER bulk_runs_counts_insert AFTER INSERT ON bulk_runs
BEGIN
	INSERT INTO bulk_run_counts (run_id) VALUES (NEW.id);
END;

-- Comparisons are 0 or 1 in SQLite, so each counter moves by the row's
-- part in it.
CREATE TRIGGER bulk_rows_counts_insert AFTER INSERT ON bulk_rows
BEGIN
	UPDATE bulk_run_counts SET
		total = total + 1,
		invalid = invalid + (NEW.state = 'invalid'),
		pending = pending + (NEW.state = 'pending'),
		queued = queued + (NEW.state = 'queued'),
		done = done + (NEW.state = 'done'),
		failed = failed + (NEW.state = 'failed'),
		skipped = skipped + (NEW.state = 'skipped'),
		waiting = waiting + (NEW.state = 'queued' AND NEW.waiting_until <> 0),
		preflight_errors = preflight_errors + (NEW.preflight_error <> ''),
		in_flight = in_flight + (NEW.state IN ('pending', 'queued') AND NEW.in_flight <> 0),
		with_errors = with_errors + (NEW.state IN ('invalid', 'failed') OR NEW.preflight_error <> '')
	WHERE run_id = NEW.run_id;
END;

-- Only updates that change what the row counts for touch the counter row:
-- most updates (a claim, chaining rows, a retry's attempt count) do not.
CREATE TRIGGER bulk_rows_counts_update AFTER UPDATE OF state, waiting_until, preflight_error, in_flight ON bulk_rows
WHEN OLD.state <> NEW.state
	OR (OLD.waiting_until <> 0) <> (NEW.waiting_until <> 0)
	OR (OLD.preflight_error <> '') <> (NEW.preflight_error <> '')
	OR OLD.in_flight <> NEW.in_flight
BEGIN
	UPDATE bulk_run_counts SET
		invalid = invalid + (NEW.state = 'invalid') - (OLD.state = 'invalid'),
		pending = pending + (NEW.state = 'pending') - (OLD.state = 'pending'),
		queued = queued + (NEW.state = 'queued') - (OLD.state = 'queued'),
		done = done + (NEW.state = 'done') - (OLD.state = 'done'),
		failed = failed + (NEW.state = 'failed') - (OLD.state = 'failed'),
		skipped = skipped + (NEW.state = 'skipped') - (OLD.state = 'skipped'),
		waiting = waiting + (NEW.state = 'queued' AND NEW.waiting_until <> 0)
			- (OLD.state = 'queued' AND OLD.waiting_until <> 0),
		preflight_errors = preflight_errors + (NEW.preflight_error <> '') - (OLD.preflight_error <> ''),
		in_flight = in_flight + (NEW.state IN ('pending', 'queued') AND NEW.in_flight <> 0)
			- (OLD.state IN ('pending', 'queued') AND OLD.in_flight <> 0),
		with_errors = with_errors + (NEW.state IN ('invalid', 'failed') OR NEW.preflight_error <> '')
			- (OLD.state IN ('invalid', 'failed') OR OLD.preflight_error <> '')
	WHERE run_id = NEW.run_id;
END;

-- Also fires for rows deleted with their run (ON DELETE CASCADE); the
-- run's counter row goes with the run, so updating it then changes nothing.
CREATE TRIGGER bulk_rows_counts_delete AFTER DELETE ON bulk_rows
BEGIN
	UPDATE bulk_run_counts SET
		total = total - 1,
		invalid = invalid - (OLD.state = 'invalid'),
		pending = pending - (OLD.state = 'pending'),
		queued = queued - (OLD.state = 'queued'),
		done = done - (OLD.state = 'done'),
		failed = failed - (OLD.state = 'failed'),
		skipped = skipped - (OLD.state = 'skipped'),
		waiting = waiting - (OLD.state = 'queued' AND OLD.waiting_until <> 0),
		preflight_errors = preflight_errors - (OLD.preflight_error <> ''),
		in_flight = in_flight - (OLD.state IN ('pending', 'queued') AND OLD.in_flight <> 0),
		with_errors = with_errors - (OLD.state IN ('invalid', 'failed') OR OLD.preflight_error <> '')
	WHERE run_id = OLD.run_id;
END;

-- The rows ListRunRows' OnlyErrors keeps (the run page's first errors in
-- a preview), in row order, without reading the others: a clean 100,000-row
-- upload has none, and looking for them row by row read the whole run.
-- The predicate is store.errorRowsPredicate's, word for word.
CREATE INDEX bulk_rows_errors ON bulk_rows (run_id, number)
	WHERE (state IN ('invalid', 'failed') OR preflight_error <> '');

-- Counts of the runs stored before this migration.
INSERT INTO bulk_run_counts (run_id, total, invalid, pending, queued, done, failed, skipped, waiting,
	preflight_errors, in_flight, with_errors)
SELECT r.id, COUNT(b.run_id),
	COUNT(CASE WHEN b.state = 'invalid' THEN 1 END),
	COUNT(CASE WHEN b.state = 'pending' THEN 1 END),
	COUNT(CASE WHEN b.state = 'queued' THEN 1 END),
	COUNT(CASE WHEN b.state = 'done' THEN 1 END),
	COUNT(CASE WHEN b.state = 'failed' THEN 1 END),
	COUNT(CASE WHEN b.state = 'skipped' THEN 1 END),
	COUNT(CASE WHEN b.state = 'queued' AND b.waiting_until <> 0 THEN 1 END),
	COUNT(CASE WHEN b.preflight_error <> '' THEN 1 END),
	COUNT(CASE WHEN b.state IN ('pending', 'queued') AND b.in_flight <> 0 THEN 1 END),
	COUNT(CASE WHEN b.state IN ('invalid', 'failed') OR b.preflight_error <> '' THEN 1 END)
FROM bulk_runs r LEFT JOIN bulk_rows b ON b.run_id = r.id
GROUP BY r.id;
