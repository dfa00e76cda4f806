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
}

// RemapRun re-checks every row of a run still in preview under a new column
// mapping, in one transaction: redo gets each row's stored cells in row
// order (as stored) and returns the row as the new mapping reads it; the run's mapping
// and counts follow. A run that left preview is not touched (ErrConflict):
// once confirmed, what was sent must stay what was shown.
func (db *DB) RemapRun(ctx context.Context, runID int64, mapping map[string]int, redo func(old RunRow) RemapRow) error {
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
	// Read first, write after: SQLite and database/sql do not mix an open
	// cursor with updates on one transaction's connection.
	rows, err := db.queryRows(ctx, tx, db.dialect.rebind(`SELECT `+rowColumns+` FROM bulk_rows WHERE run_id = ? ORDER BY number`), runID)
	if err != nil {
		return fmt.Errorf("store: remap run %d: %w", runID, err)
	}
	upd := db.newRowUpdater(tx, runID, []string{"action", "valid", "errors", "row_key", "duplicate", "state", "preflight_error"},
		[]string{"TEXT", "BIGINT", "TEXT", "TEXT", "BIGINT", "TEXT", "TEXT"})
	var valid, invalid, dups int
	for _, r := range rows {
		nr := redo(r)
		state := RowInvalid
		if nr.Valid {
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
		if err := upd.add(ctx, r.Number, string(nr.Action), boolInt(nr.Valid), errs, nr.Key, boolInt(nr.Duplicate), state, ""); err != nil {
			return fmt.Errorf("store: remap run %d: %w", runID, err)
		}
	}
	if err := upd.flush(ctx); err != nil {
		return fmt.Errorf("store: remap run %d: %w", runID, err)
	}
	_, mappingJSON, err := encodeRunJSON(&Run{Mapping: mapping})
	if err != nil {
		return fmt.Errorf("store: remap run %d: %w", runID, err)
	}
	if _, err := tx.ExecContext(ctx, db.dialect.rebind(`UPDATE bulk_runs
		SET mapping = ?, valid = ?, invalid = ?, duplicates = ?, preflighted = 0 WHERE id = ?`),
		mappingJSON, valid, invalid, dups, runID); err != nil {
		return fmt.Errorf("store: remap run %d: %w", runID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: remap run %d: commit: %w", runID, err)
	}
	return nil
}
