package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// A replica that dies (SIGKILL, a lost machine) leaves the jobs it was
// working "running" in River's table, and River's own rescuer takes them
// back only after the job timeout and on its leader's 30-second round: a
// run loses whole minutes to every crash, and every rescue used to count
// against the row. So every engine says it is alive in bulk_workers, on the
// database's clock, and each of them takes back at once the jobs of an
// engine that has been silent for longer than the rescue threshold. The
// jobs are matched by River's attempted_by (its client ID is the engine's
// worker ID) and made available again with one more allowed attempt: a
// crash is not an attempt of the row. Rows fence themselves (ClaimRowFor,
// BeginWriteFor): an engine wrongly thought dead cannot send a row another
// engine took back, and a row whose write that engine sent is not taken
// back until the write timeout has passed since the write began (the
// rescue threshold is shorter than it): the write may still be answered,
// and applied, after the new attempt's re-check found nothing.

// Heartbeat records that the engine named id is alive, now on the database's
// clock.
func (db *DB) Heartbeat(ctx context.Context, id string) error {
	now := db.dialect.clockMicros()
	q := fmt.Sprintf(`INSERT INTO bulk_workers (id, seen_at) VALUES (?, %[1]s)
		ON CONFLICT (id) DO UPDATE SET seen_at = %[1]s`, now)
	if _, err := db.exec(ctx, q, id); err != nil {
		return fmt.Errorf("store: heartbeat of %s: %w", id, err)
	}
	return nil
}

// RescueSilentWorkers takes back the running jobs of every engine silent
// for longer than silentFor: they become available at once, with one more
// attempt allowed so the crash does not use one up, and the silent engine is
// forgotten. It returns how many jobs it took back. The job queue's tables
// must exist (River's migrations); safe to run on every replica at once.
func (db *DB) RescueSilentWorkers(ctx context.Context, silentFor time.Duration) (int, error) {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: rescue silent workers: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, db.dialect.rebind(`DELETE FROM bulk_workers WHERE seen_at < `+
		db.dialect.clockMicros()+` - ? RETURNING id`), silentFor.Microseconds())
	if err != nil {
		return 0, fmt.Errorf("store: rescue silent workers: %w", err)
	}
	var silent []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("store: rescue silent workers: %w", err)
		}
		silent = append(silent, id)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("store: rescue silent workers: %w", err)
	}
	n, err := db.takeBack(ctx, tx, silent)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: rescue silent workers: commit: %w", err)
	}
	return n, nil
}

// RescueWorker takes back the running jobs of the engine named id, which
// has stopped (none of its workers runs any more) but may have left jobs
// marked running, and forgets it. It returns how many jobs it took back.
func (db *DB) RescueWorker(ctx context.Context, id string) (int, error) {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: rescue worker %s: %w", id, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, db.dialect.rebind(`DELETE FROM bulk_workers WHERE id = ?`), id); err != nil {
		return 0, fmt.Errorf("store: rescue worker %s: %w", id, err)
	}
	n, err := db.takeBack(ctx, tx, []string{id})
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: rescue worker %s: commit: %w", id, err)
	}
	return n, nil
}

// takeBack makes the running jobs last attempted by the engines ids
// available again at once, with one more attempt allowed.
func (db *DB) takeBack(ctx context.Context, tx *sql.Tx, ids []string) (int, error) {
	// River keeps every client that attempted a job in attempted_by, the
	// latest last: a text[] on PostgreSQL, a JSON array (JSONB blob) on
	// SQLite, whose times are text in the one format River compares.
	q := `UPDATE river_job SET state = 'available', scheduled_at = now(), max_attempts = max_attempts + 1
		WHERE state = 'running' AND attempted_by[array_length(attempted_by, 1)] = ?`
	if db.dialect.name == "sqlite" {
		q = `UPDATE river_job SET state = 'available', scheduled_at = strftime('%Y-%m-%d %H:%M:%f', 'now'),
			max_attempts = max_attempts + 1
			WHERE state = 'running' AND json_extract(attempted_by, '$[#-1]') = ?`
	}
	q = db.dialect.rebind(q)
	taken := 0
	for _, id := range ids {
		res, err := tx.ExecContext(ctx, q, id)
		if err != nil {
			return 0, fmt.Errorf("store: take back the jobs of %s: %w", id, err)
		}
		n, _ := res.RowsAffected()
		taken += int(n)
	}
	return taken, nil
}
