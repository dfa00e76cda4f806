package store

import (
	"database/sql"
	"errors"
	"maps"
	"testing"
	"time"
)

// alongside runs f in another goroutine while tx, a transaction of db, is
// open, and returns once f has returned (committed: true) or is blocked
// behind tx (false); wait then returns f's error. On SQLite every
// transaction holds the write lock from its start (BEGIN IMMEDIATE), so f,
// a writer, can only run after tx: alongside returns at once. On
// PostgreSQL it waits until f has returned or one of the server's
// backends is blocked by tx's (pg_blocking_pids), never on a timer.
func alongside(t *testing.T, db *DB, tx *sql.Tx, f func() error) (committed bool, wait func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	var result error
	wait = func() error {
		if done != nil {
			result = <-done
			done = nil
		}
		return result
	}
	if db.dialect.name == "sqlite" {
		return false, wait
	}
	var pid int
	if err := tx.QueryRowContext(t.Context(), `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case result = <-done:
			done = nil
			return true, wait
		default:
		}
		var blocked bool
		if err := db.db.QueryRowContext(t.Context(),
			`SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)))`, pid).Scan(&blocked); err != nil {
			t.Fatal(err)
		}
		if blocked {
			return false, wait
		}
		if time.Now().After(deadline) {
			t.Fatal("the concurrent transaction neither finished nor waited for ours in 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRecheckRacingConfirmLeavesTheConfirmedRunAlone: a re-check of a
// preview (a new column mapping) races its Confirm. Confirm commits after
// the re-check saw the run in preview and before it wrote anything, and a
// worker finishes a row of the confirmed run at once. The re-check must be
// refused as any re-check of a run out of preview is (ErrConflict) and
// change nothing: the done row stays done, the rows not sent stay so, the
// mapping stays. On SQLite, where the re-check's transaction holds the
// write lock from its start, Confirm can only come after it: there the
// re-check goes through first, and the same done row must come out of
// Confirm and the worker after it.
func TestRecheckRacingConfirmLeavesTheConfirmedRunAlone(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		r := newTestRun(t, db, 1, 6) // rows 2..7; 4 and 7 invalid
		before, err := db.FindRunByID(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		var confirmedFirst bool
		var wait func() error
		db.hooks.recheckChecked = func(tx *sql.Tx) {
			db.hooks.recheckChecked = nil
			confirmedFirst, wait = alongside(t, db, tx, func() error {
				if err := db.StartRun(t.Context(), r.ID, Actor{ID: 1, Name: "Admin 1"}, 0,
					func(*sql.Tx) error { return nil }); err != nil {
					return err
				}
				_, err := db.FinishRow(t.Context(), r.ID, 2, RowResult{State: RowDone, HTTPStatus: 200}, nil)
				return err
			})
		}
		// The new mapping reads every row as valid, 4 and 7 too.
		err = db.RemapRun(t.Context(), r.ID, map[string]int{"email": 0, "ticket_id": 1, "score": 2}, func(old RunRow) RemapRow {
			return RemapRow{Valid: true, Action: []byte(`{"User":"x@example.com","Ticket":1,"Score":"bad"}`), Key: old.Key}
		})
		if wait == nil {
			t.Fatal("the re-check never reached its write")
		}
		if werr := wait(); werr != nil {
			t.Fatalf("Confirm and the worker: %v", werr)
		}
		run, ferr := db.FindRunByID(t.Context(), r.ID)
		if ferr != nil {
			t.Fatal(ferr)
		}
		if run.State != RunQueued && run.State != RunRunning {
			t.Errorf("the run is %s, want confirmed", run.State)
		}
		if row := mustFindRunRow(t, db, r.ID, 2); row.State != RowDone {
			t.Errorf("row 2, done by the worker after Confirm, is %s", row.State)
		}
		if !confirmedFirst {
			t.Log("Confirm waited for the re-check")
			if err != nil {
				t.Errorf("the re-check before Confirm: %v", err)
			}
			return
		}
		t.Log("Confirm committed after the re-check's check")
		if !errors.Is(err, ErrConflict) {
			t.Errorf("the re-check of a run confirmed meanwhile returned %v, want ErrConflict", err)
		}
		for _, n := range []int{4, 7} {
			if row := mustFindRunRow(t, db, r.ID, n); row.State != RowInvalid {
				t.Errorf("row %d of the confirmed run is %s, want still invalid (not sent)", n, row.State)
			}
		}
		for _, n := range []int{3, 5, 6} {
			if row := mustFindRunRow(t, db, r.ID, n); row.State != RowPending || string(row.Action) == `{"User":"x@example.com","Ticket":1,"Score":"bad"}` {
				t.Errorf("row %d of the confirmed run is %s with action %s, want pending as confirmed", n, row.State, row.Action)
			}
		}
		if !maps.Equal(run.Mapping, before.Mapping) {
			t.Errorf("the confirmed run's mapping changed from %v to %v", before.Mapping, run.Mapping)
		}
	})
}

// TestPauseRacingResumeLeavesTheRunRunning: a run works on the admin's old
// grant when the admin logs in again (ResumeRunsForAdmin, to the new
// grant), and a worker still on the old grant pauses it (PauseRun with the
// old grant), the pause landing between Resume's two statements. The run
// must end running on the new grant: paused on it, it would wait for the
// next login. On SQLite the pause can only come after Resume.
func TestPauseRacingResumeLeavesTheRunRunning(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		r := newTestRun(t, db, 1, 3) // on grant 7
		mustStartRun(t, db, r.ID)
		var paused bool
		var wait func() error
		db.hooks.resumeBetween = func(tx *sql.Tx) {
			db.hooks.resumeBetween = nil
			var first bool
			first, wait = alongside(t, db, tx, func() error {
				var err error
				paused, err = db.PauseRun(t.Context(), r.ID, 7, "Sign in again.")
				return err
			})
			t.Logf("the pause committed between Resume's statements: %v", first)
		}
		if _, err := db.ResumeRunsForAdmin(t.Context(), 1, 42); err != nil {
			t.Fatal(err)
		}
		if wait == nil {
			t.Fatal("Resume never reached its second statement")
		}
		if err := wait(); err != nil {
			t.Fatalf("PauseRun: %v", err)
		}
		got, err := db.FindRunByID(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != RunRunning && got.State != RunQueued || got.GrantID != 42 {
			t.Errorf("the run is %s on grant %d (paused by the old grant's worker: %v), want running on the new grant 42",
				got.State, got.GrantID, paused)
		}
	})
}
