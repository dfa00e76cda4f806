package store

import (
	"context"
	"fmt"
)

// riverJobStates are River's job states, so a metric reports zero rather
// than vanishing when no job is in one.
var riverJobStates = []string{"available", "cancelled", "completed", "discarded", "pending", "retryable", "running", "scheduled"}

// CountRowsByState counts bulk rows in each state across all runs, every
// state present (zeros included), for the metrics scrape.
func (db *DB) CountRowsByState(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	for _, s := range []string{RowInvalid, RowPending, RowQueued, RowDone, RowFailed, RowSkipped} {
		out[s] = 0
	}
	// The per-run counters (bulk_run_counts, kept by triggers) make this a
	// read of one row per run rather than of every row of every run.
	var invalid, pending, queued, done, failed, skipped int
	err := db.queryRow(ctx, `SELECT COALESCE(SUM(invalid), 0), COALESCE(SUM(pending), 0), COALESCE(SUM(queued), 0),
		COALESCE(SUM(done), 0), COALESCE(SUM(failed), 0), COALESCE(SUM(skipped), 0) FROM bulk_run_counts`).
		Scan(&invalid, &pending, &queued, &done, &failed, &skipped)
	if err != nil {
		return nil, fmt.Errorf("store: count rows by state: %w", err)
	}
	out[RowInvalid], out[RowPending], out[RowQueued] = invalid, pending, queued
	out[RowDone], out[RowFailed], out[RowSkipped] = done, failed, skipped
	return out, nil
}

// CountJobsByState counts River's jobs in each state (the queue depth). A
// database River has not been migrated on is an error, not an empty queue.
func (db *DB) CountJobsByState(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	for _, s := range riverJobStates {
		out[s] = 0
	}
	if err := db.countBy(ctx, `SELECT state, COUNT(*) FROM river_job GROUP BY state`, out); err != nil {
		return nil, fmt.Errorf("store: count jobs by state: %w", err)
	}
	return out, nil
}

func (db *DB) countBy(ctx context.Context, query string, out map[string]int) error {
	rows, err := db.db.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return err
		}
		out[state] = n
	}
	return rows.Err()
}
