package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// RemapRow is a row re-checked under a new column mapping.
type RemapRow struct {
	Action    []byte
	Valid     bool
	Errors    []string
	Key       string
	Duplicate bool
	// LeftOut, when not "", leaves a row that reads well out of the run:
	// it becomes RowSkipped with this sentence as its error (the score
	// mapping's "leave out").
	LeftOut string
}

// RecheckSpec is what a re-check of a previewed run changes.
type RecheckSpec struct {
	// Kind is the run's new action; "" keeps it.
	Kind string
	// Mapping is the new column mapping.
	Mapping map[string]int
	// ScoreMap replaces the run's score mapping when SetScoreMap is true.
	ScoreMap    map[string]string
	SetScoreMap bool
}

// RemapRun re-checks every row of a run still in preview under a new column
// mapping, in one transaction: redo gets each row's stored cells in row
// order (as stored) and returns the row as the new mapping reads it; the run's mapping
// and counts follow. A run that left preview is not touched (ErrConflict):
// once confirmed, what was sent must stay what was shown.
func (db *DB) RemapRun(ctx context.Context, runID int64, mapping map[string]int, redo func(old RunRow) RemapRow) error {
	return db.RecheckRun(ctx, runID, RecheckSpec{Mapping: mapping}, redo)
}

// RecheckRun is RemapRun that may also change the run's action and its
// score mapping (spec), in the same transaction.
func (db *DB) RecheckRun(ctx context.Context, runID int64, spec RecheckSpec, redo func(old RunRow) RemapRow) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: remap run %d: %w", runID, err)
	}
	defer tx.Rollback()
	var state string
	if err := tx.QueryRowContext(ctx, db.dialect.rebind(`SELECT state FROM bulk_runs WHERE id = ?`), runID).Scan(&state); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = ErrNotFound
		}
		return fmt.Errorf("store: remap run %d: %w", runID, err)
	}
	if state != RunPreview {
		return fmt.Errorf("store: remap run %d: run is %s: %w", runID, state, ErrConflict)
	}
	if h := db.hooks.recheckChecked; h != nil {
		h(tx)
	}
	// The plain read above takes no lock: on PostgreSQL (READ COMMITTED)
	// a Confirm may commit after it, and rows of a confirmed run would be
	// rewritten (done rows back to pending) and its mapping changed. The
	// run is locked and checked again before anything is written: a
	// Confirm under way is waited for and refuses nothing here, one that
	// committed makes this update find no row in preview, and a later
	// one waits for this transaction. (On SQLite the transaction holds
	// the write lock from its start.)
	res, err := tx.ExecContext(ctx, db.dialect.rebind(`UPDATE bulk_runs SET preflighted = 0 WHERE id = ? AND state = ?`),
		runID, RunPreview)
	if err != nil {
		return fmt.Errorf("store: remap run %d: %w", runID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: remap run %d: %w", runID, err)
	} else if n == 0 {
		if err := tx.QueryRowContext(ctx, db.dialect.rebind(`SELECT state FROM bulk_runs WHERE id = ?`), runID).Scan(&state); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				err = ErrNotFound
			}
			return fmt.Errorf("store: remap run %d: %w", runID, err)
		}
		return fmt.Errorf("store: remap run %d: run is %s: %w", runID, state, ErrConflict)
	}
	// Read first, write after: SQLite and database/sql do not mix an open
	// cursor with updates on one transaction's connection.
	rows, err := db.queryRows(ctx, tx, db.dialect.rebind(`SELECT `+rowColumns+` FROM bulk_rows WHERE run_id = ? ORDER BY number`), runID)
	if err != nil {
		return fmt.Errorf("store: remap run %d: %w", runID, err)
	}
	upd := db.newRowUpdater(tx, runID, []string{"action", "valid", "errors", "row_key", "duplicate", "state", "preflight_error", "error"},
		[]string{"TEXT", "BIGINT", "TEXT", "TEXT", "BIGINT", "TEXT", "TEXT", "TEXT"})
	var valid, invalid, dups int
	for _, r := range rows {
		nr := redo(r)
		state := RowInvalid
		if nr.LeftOut != "" {
			// Not sent and not an error: counted with the rows not sent.
			nr.Valid, nr.Action, nr.Duplicate = false, nil, false
			state = RowSkipped
			invalid++
		} else if nr.Valid {
			state = RowPending
			valid++
			if nr.Duplicate {
				dups++
			}
		} else {
			invalid++
		}
		errs, err := jsonStrings(nr.Errors)
		if err != nil {
			return fmt.Errorf("store: remap run %d: %w", runID, err)
		}
		if err := upd.add(ctx, r.Number, string(nr.Action), boolInt(nr.Valid), errs, nr.Key, boolInt(nr.Duplicate), state, "", nr.LeftOut); err != nil {
			return fmt.Errorf("store: remap run %d: %w", runID, err)
		}
	}
	if err := upd.flush(ctx); err != nil {
		return fmt.Errorf("store: remap run %d: %w", runID, err)
	}
	_, mappingJSON, err := encodeRunJSON(&Run{Mapping: spec.Mapping})
	if err != nil {
		return fmt.Errorf("store: remap run %d: %w", runID, err)
	}
	set, args := "mapping = ?, valid = ?, invalid = ?, duplicates = ?, preflighted = 0", []any{mappingJSON, valid, invalid, dups}
	if spec.Kind != "" {
		set, args = set+", kind = ?", append(args, spec.Kind)
	}
	if spec.SetScoreMap {
		sm, err := encodeScoreMap(spec.ScoreMap)
		if err != nil {
			return fmt.Errorf("store: remap run %d: %w", runID, err)
		}
		set, args = set+", score_map = ?", append(args, sm)
	}
	if _, err := tx.ExecContext(ctx, db.dialect.rebind(`UPDATE bulk_runs SET `+set+` WHERE id = ? AND state = ?`),
		append(args, runID, RunPreview)...); err != nil {
		return fmt.Errorf("store: remap run %d: %w", runID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: remap run %d: commit: %w", runID, err)
	}
	return nil
}
