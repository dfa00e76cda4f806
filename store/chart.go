package store

import (
	"context"
	"fmt"
	"time"
)

// RunMinute is how many of a run's rows ended in one minute, by final state.
type RunMinute struct {
	Start                 time.Time
	Done, Failed, Skipped int
}

// FindRunMinutes returns, minute by minute in order, how many of the run's
// rows reached a final state (by the time each row last changed). Minutes
// in which no row ended are left out.
func (db *DB) FindRunMinutes(ctx context.Context, runID int64) ([]RunMinute, error) {
	// updated_at is in microseconds; integer division buckets it by minute
	// alike in SQLite and PostgreSQL (both BIGINT).
	rows, err := db.query(ctx, `SELECT updated_at / 60000000 AS minute, state, COUNT(*)
		FROM bulk_rows WHERE run_id = ? AND state IN (?, ?, ?)
		GROUP BY minute, state ORDER BY minute`, runID, RowDone, RowFailed, RowSkipped)
	if err != nil {
		return nil, fmt.Errorf("store: find run %d minutes: %w", runID, err)
	}
	defer rows.Close()
	var out []RunMinute
	for rows.Next() {
		var minute int64
		var state string
		var n int
		if err := rows.Scan(&minute, &state, &n); err != nil {
			return nil, fmt.Errorf("store: find run %d minutes: %w", runID, err)
		}
		start := fromDBTime(minute * 60_000_000)
		if len(out) == 0 || !out[len(out)-1].Start.Equal(start) {
			out = append(out, RunMinute{Start: start})
		}
		m := &out[len(out)-1]
		switch state {
		case RowDone:
			m.Done = n
		case RowFailed:
			m.Failed = n
		case RowSkipped:
			m.Skipped = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: find run %d minutes: %w", runID, err)
	}
	return out, nil
}
