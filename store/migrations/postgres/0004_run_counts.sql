-- Counts of each run's rows, kept up to date by triggers (postgres). Keep in
-- step with ../sqlite/0004_run_counts.sql.
--
-- RunCounts reads one row of bulk_run_counts instead of counting a run's
-- rows: pages list runs and progress streams poll every second, and a
-- 100,000-row run made every such read scan 100,000 rows. The triggers run
-- inside the statement that changes rows, so the counts commit or roll back
-- with it and no code path can forget them.
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
--
-- The bulk_rows triggers are statement-level with transition tables: a
-- statement changing many rows (an upload's 100-row INSERTs, CancelRun
-- skipping a whole run) updates each run's counter row once, after it has
-- locked every row it changes (row-level AFTER triggers would also fire at
-- the end of the statement, but once per row). Many workers of one run
-- thus queue on its counter row, each holding it from its statement to its
-- commit, and do not deadlock: no transaction that holds a counter row
-- goes on to lock rows of that run that a worker may hold. FinishRow
-- changes its one row, then only reads and inserts the next job; CancelRun
-- and QueueBatch change the run's rows in one statement (QueueBatch's
-- chaining before it changes no count); SetRowPreflight and RemapRun change
-- rows one by one after it, but only in a preview, which no worker
-- touches. Statement-level UPDATE triggers with transition tables cannot
-- name columns, so they fire on every UPDATE; one that changes no count (a
-- claim, chaining rows) leaves the counter row alone and takes no lock on it.

CREATE TABLE bulk_run_counts (
	run_id BIGINT PRIMARY KEY REFERENCES bulk_runs (id) ON DELETE CASCADE,
	total BIGINT NOT NULL DEFAULT 0,
	invalid BIGINT NOT NULL DEFAULT 0,
	pending BIGINT NOT NULL DEFAULT 0,
	queued BIGINT NOT NULL DEFAULT 0,
	done BIGINT NOT NULL DEFAULT 0,
	failed BIGINT NOT NULL DEFAULT 0,
	skipped BIGINT NOT NULL DEFAULT 0,
	waiting BIGINT NOT NULL DEFAULT 0,
	preflight_errors BIGINT NOT NULL DEFAULT 0,
	in_flight BIGINT NOT NULL DEFAULT 0,
	with_errors BIGINT NOT NULL DEFAULT 0
);

-- Every run has its row from the start, so the row triggers only update.
CREATE FUNCTION bulk_runs_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO bulk_run_counts (run_id) VALUES (NEW.id);
	RETURN NULL;
END
$$;

CREATE TRIGGER bulk_runs_counts_insert AFTER INSERT ON bulk_runs
	FOR EACH ROW EXECUTE FUNCTION bulk_runs_counts_insert();

-- bulk_rows_counts applies a statement's changes: +1 for each new row
-- (new_rows), -1 for each old one (old_rows), summed per run. An INSERT
-- trigger has only new_rows and a DELETE trigger only old_rows, so each
-- operation has its statement; PL/pgSQL plans a statement only when it
-- first runs it, so the names missing from a branch never reach the planner.
CREATE FUNCTION bulk_rows_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		UPDATE bulk_run_counts c SET total = c.total + d.total, invalid = c.invalid + d.invalid,
			pending = c.pending + d.pending, queued = c.queued + d.queued, done = c.done + d.done,
			failed = c.failed + d.failed, skipped = c.skipped + d.skipped, waiting = c.waiting + d.waiting,
			preflight_errors = c.preflight_errors + d.preflight_errors, in_flight = c.in_flight + d.in_flight,
			with_errors = c.with_errors + d.with_errors
		FROM (SELECT run_id, count(*) AS total,
				count(*) FILTER (WHERE state = 'invalid') AS invalid,
				count(*) FILTER (WHERE state = 'pending') AS pending,
				count(*) FILTER (WHERE state = 'queued') AS queued,
				count(*) FILTER (WHERE state = 'done') AS done,
				count(*) FILTER (WHERE state = 'failed') AS failed,
				count(*) FILTER (WHERE state = 'skipped') AS skipped,
				count(*) FILTER (WHERE state = 'queued' AND waiting_until <> 0) AS waiting,
				count(*) FILTER (WHERE preflight_error <> '') AS preflight_errors,
				count(*) FILTER (WHERE state IN ('pending', 'queued') AND in_flight <> 0) AS in_flight,
				count(*) FILTER (WHERE state IN ('invalid', 'failed') OR preflight_error <> '') AS with_errors
			FROM new_rows GROUP BY run_id) d
		WHERE c.run_id = d.run_id;
	ELSIF TG_OP = 'DELETE' THEN
		UPDATE bulk_run_counts c SET total = c.total - d.total, invalid = c.invalid - d.invalid,
			pending = c.pending - d.pending, queued = c.queued - d.queued, done = c.done - d.done,
			failed = c.failed - d.failed, skipped = c.skipped - d.skipped, waiting = c.waiting - d.waiting,
			preflight_errors = c.preflight_errors - d.preflight_errors, in_flight = c.in_flight - d.in_flight,
			with_errors = c.with_errors - d.with_errors
		FROM (SELECT run_id, count(*) AS total,
				count(*) FILTER (WHERE state = 'invalid') AS invalid,
				count(*) FILTER (WHERE state = 'pending') AS pending,
				count(*) FILTER (WHERE state = 'queued') AS queued,
				count(*) FILTER (WHERE state = 'done') AS done,
				count(*) FILTER (WHERE state = 'failed') AS failed,
				count(*) FILTER (WHERE state = 'skipped') AS skipped,
				count(*) FILTER (WHERE state = 'queued' AND waiting_until <> 0) AS waiting,
				count(*) FILTER (WHERE preflight_error <> '') AS preflight_errors,
				count(*) FILTER (WHERE state IN ('pending', 'queued') AND in_flight <> 0) AS in_flight,
				count(*) FILTER (WHERE state IN ('invalid', 'failed') OR preflight_error <> '') AS with_errors
			FROM old_rows GROUP BY run_id) d
		WHERE c.run_id = d.run_id;
	ELSE
		UPDATE bulk_run_counts c SET invalid = c.invalid + d.invalid,
			pending = c.pending + d.pending, queued = c.queued + d.queued, done = c.done + d.done,
			failed = c.failed + d.failed, skipped = c.skipped + d.skipped, waiting = c.waiting + d.waiting,
			preflight_errors = c.preflight_errors + d.preflight_errors, in_flight = c.in_flight + d.in_flight,
			with_errors = c.with_errors + d.with_errors
		FROM (SELECT run_id,
				sum(CASE WHEN state = 'invalid' THEN n ELSE 0 END) AS invalid,
				sum(CASE WHEN state = 'pending' THEN n ELSE 0 END) AS pending,
				sum(CASE WHEN state = 'queued' THEN n ELSE 0 END) AS queued,
				sum(CASE WHEN state = 'done' THEN n ELSE 0 END) AS done,
				sum(CASE WHEN state = 'failed' THEN n ELSE 0 END) AS failed,
				sum(CASE WHEN state = 'skipped' THEN n ELSE 0 END) AS skipped,
				sum(CASE WHEN state = 'queued' AND waiting_until <> 0 THEN n ELSE 0 END) AS waiting,
				sum(CASE WHEN preflight_error <> '' THEN n ELSE 0 END) AS preflight_errors,
				sum(CASE WHEN state IN ('pending', 'queued') AND in_flight <> 0 THEN n ELSE 0 END) AS in_flight,
				sum(CASE WHEN state IN ('invalid', 'failed') OR preflight_error <> '' THEN n ELSE 0 END) AS with_errors
			FROM (SELECT run_id, state, waiting_until, preflight_error, in_flight, 1 AS n FROM new_rows
				UNION ALL
				SELECT run_id, state, waiting_until, preflight_error, in_flight, -1 FROM old_rows) ch
			GROUP BY run_id) d
		WHERE c.run_id = d.run_id
			AND (d.invalid, d.pending, d.queued, d.done, d.failed, d.skipped, d.waiting, d.preflight_errors,
				d.in_flight, d.with_errors) <> (0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER bulk_rows_counts_insert AFTER INSERT ON bulk_rows
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION bulk_rows_counts();

CREATE TRIGGER bulk_rows_counts_update AFTER UPDATE ON bulk_rows
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION bulk_rows_counts();

-- Also fires for rows deleted with their run (ON DELETE CASCADE); the
-- run's counter row goes with the run.
CREATE TRIGGER bulk_rows_counts_delete AFTER DELETE ON bulk_rows
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION bulk_rows_counts();

-- The rows ListRunRows' OnlyErrors keeps (the run page's first errors in
-- a preview), in row order, without reading the others: a clean 100,000-row
-- upload has none, and looking for them row by row read the whole run.
-- The predicate is store.errorRowsPredicate's, word for word.
CREATE INDEX bulk_rows_errors ON bulk_rows (run_id, number)
	WHERE (state IN ('invalid', 'failed') OR preflight_error <> '');

-- Counts of the runs stored before this migration. The triggers above are
-- created first: CREATE TRIGGER locks bulk_rows against writes until the
-- migration commits, so no row changes between this count and the
-- triggers taking over (an older replica still running during a rolling
-- deploy waits for the commit).
INSERT INTO bulk_run_counts (run_id, total, invalid, pending, queued, done, failed, skipped, waiting,
	preflight_errors, in_flight, with_errors)
SELECT r.id, count(b.run_id),
	count(*) FILTER (WHERE b.state = 'invalid'),
	count(*) FILTER (WHERE b.state = 'pending'),
	count(*) FILTER (WHERE b.state = 'queued'),
	count(*) FILTER (WHERE b.state = 'done'),
	count(*) FILTER (WHERE b.state = 'failed'),
	count(*) FILTER (WHERE b.state = 'skipped'),
	count(*) FILTER (WHERE b.state = 'queued' AND b.waiting_until <> 0),
	count(*) FILTER (WHERE b.preflight_error <> ''),
	count(*) FILTER (WHERE b.state IN ('pending', 'queued') AND b.in_flight <> 0),
	count(*) FILTER (WHERE b.state IN ('invalid', 'failed') OR b.preflight_error <> '')
FROM bulk_runs r LEFT JOIN bulk_rows b ON b.run_id = r.id
GROUP BY r.id;
