package store

import (
	"context"
	"fmt"
	"time"
)

// RefusedAtPreflightNote starts the error of a row StartRun skipped because
// the pre-flight found Zendesk would refuse it; the pre-flight's reason
// follows.
const RefusedAtPreflightNote = "Not sent: the check before sending found Zendesk would refuse it. "

// SetSkipRefused records, for a run still in preview, whether confirming it
// skips the rows the pre-flight found Zendesk would refuse (true) or sends
// them all. A run that left preview gives ErrConflict.
func (db *DB) SetSkipRefused(ctx context.Context, runID int64, skip bool) error {
	res, err := db.exec(ctx, `UPDATE bulk_runs SET skip_refused = ? WHERE id = ? AND state = ?`, boolInt(skip), runID, RunPreview)
	if err != nil {
		return fmt.Errorf("store: set skip refused of run %d: %w", runID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: set skip refused of run %d: %w", runID, err)
	} else if n == 0 {
		if _, err := db.FindRunByID(ctx, runID); err != nil {
			return err
		}
		return fmt.Errorf("store: set skip refused of run %d: not in preview: %w", runID, ErrConflict)
	}
	return nil
}

// DiscardPreview deletes a run that was never confirmed, with its rows. A
// run that left preview gives ErrConflict: what was sent stays on record.
func (db *DB) DiscardPreview(ctx context.Context, runID int64) error {
	res, err := db.exec(ctx, `DELETE FROM bulk_runs WHERE id = ? AND state = ?`, runID, RunPreview)
	if err != nil {
		return fmt.Errorf("store: discard run %d: %w", runID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: discard run %d: %w", runID, err)
	} else if n == 0 {
		if _, err := db.FindRunByID(ctx, runID); err != nil {
			return err
		}
		return fmt.Errorf("store: discard run %d: not in preview: %w", runID, ErrConflict)
	}
	return nil
}

// ExpirePreviews deletes the runs still in preview that were uploaded
// before cutoff, with their rows, and returns how many it deleted.
func (db *DB) ExpirePreviews(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := db.exec(ctx, `DELETE FROM bulk_runs WHERE state = ? AND created_at < ?`, RunPreview, toDBTime(cutoff))
	if err != nil {
		return 0, fmt.Errorf("store: expire previews: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: expire previews: %w", err)
	}
	return int(n), nil
}
