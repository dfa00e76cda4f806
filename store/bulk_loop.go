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

// PreviewLifetime is how long a run may stay in preview, never confirmed,
// before it is deleted (ExpirePreviews): the history shows what was sent
// rather than every file ever looked at, and an abandoned preview does not
// hold its admin's Zendesk sign-in for ever.
const PreviewLifetime = 7 * 24 * time.Hour

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

// Repeat is an earlier run that already sent some rows of a preview: the
// same action on the same target with the same content.
type Repeat struct {
	RunID    int64
	At       time.Time // when the earlier run was uploaded
	FileName string
	Rows     int // how many rows of the preview it already sent
}

// RepeatedRows finds, for a run in preview, the earlier runs that already
// sent (done) rows with the same target and the same action, content
// included, newest run first.
func (db *DB) RepeatedRows(ctx context.Context, runID int64) ([]Repeat, error) {
	rows, err := db.query(ctx, `SELECT o.run_id, r.created_at, r.file_name, COUNT(DISTINCT p.number)
		FROM bulk_rows p
		JOIN bulk_rows o ON o.row_key = p.row_key AND o.state = ? AND o.run_id <> p.run_id AND o.action = p.action
		JOIN bulk_runs r ON r.id = o.run_id
		WHERE p.run_id = ? AND p.state = ? AND p.row_key <> ''
		GROUP BY o.run_id, r.created_at, r.file_name
		ORDER BY r.created_at DESC, o.run_id DESC`, RowDone, runID, RowPending)
	if err != nil {
		return nil, fmt.Errorf("store: repeated rows of run %d: %w", runID, err)
	}
	defer rows.Close()
	var out []Repeat
	for rows.Next() {
		var r Repeat
		var at int64
		if err := rows.Scan(&r.RunID, &at, &r.FileName, &r.Rows); err != nil {
			return nil, fmt.Errorf("store: repeated rows of run %d: %w", runID, err)
		}
		r.At = fromDBTime(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: repeated rows of run %d: %w", runID, err)
	}
	return out, nil
}
