package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestSendGateLetsOnlyTheClaimingAttemptWrite: a row taken over by a second
// worker attempt (its first one's replica stopped answering and the job
// was handed on) can no longer be sent by the first, even though the row is
// still to run; the second one's write passes.
func TestSendGateLetsOnlyTheClaimingAttemptWrite(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		r := newTestRun(t, db, 1, 2)
		rows := mustStartRun(t, db, r.ID)
		n := rows[0]
		if _, _, err := db.ClaimRowFor(t.Context(), r.ID, n, "engine-a/1/1", 0); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.ClaimRowFor(t.Context(), r.ID, n, "engine-b/1/2", 0); err != nil {
			t.Fatal(err)
		}
		if err := db.BeginWriteFor(t.Context(), r.ID, n, "engine-a/1/1"); !errors.Is(err, ErrConflict) || errors.Is(err, ErrRunNotRunning) {
			t.Fatalf("the first attempt's write after the takeover: %v, want ErrConflict (not ErrRunNotRunning)", err)
		}
		if row := mustFindRunRow(t, db, r.ID, n); row.InFlight || row.Attempts != 0 {
			t.Fatalf("the refused write left the row in flight %v with %d attempts", row.InFlight, row.Attempts)
		}
		if err := db.BeginWriteFor(t.Context(), r.ID, n, "engine-b/1/2"); err != nil {
			t.Fatalf("the claiming attempt's write: %v", err)
		}
		if row := mustFindRunRow(t, db, r.ID, n); !row.InFlight || row.Attempts != 1 {
			t.Fatalf("after the gate the row is in flight %v with %d attempts, want in flight with 1", row.InFlight, row.Attempts)
		}
		// The first attempt ending late changes nothing of the new holder's.
		if err := db.EndAttempt(t.Context(), r.ID, n, AttemptEnd{Failed: true, Claim: "engine-a/1/1"}); err != nil {
			t.Fatal(err)
		}
		if row := mustFindRunRow(t, db, r.ID, n); !row.InFlight || row.Failures != 0 {
			t.Errorf("the taken-over attempt's end left the row in flight %v with %d failures, want in flight with none", row.InFlight, row.Failures)
		}
	})
}

// TestEndAttemptCountsOnlyFailures: attempts that end without failing on
// the row's own account (a crash's leftovers, a snooze, a deadline before
// sending) leave Failures alone; a failure counts once.
func TestEndAttemptCountsOnlyFailures(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		r := newTestRun(t, db, 1, 2)
		n := mustStartRun(t, db, r.ID)[0]
		ends := []AttemptEnd{{}, {WaitingUntil: time.Now().Add(time.Second)}, {MayHaveActed: true, Failed: true}, {}}
		for _, end := range ends {
			if _, _, err := db.ClaimRowFor(t.Context(), r.ID, n, "w", 0); err != nil {
				t.Fatal(err)
			}
			if err := db.BeginWriteFor(t.Context(), r.ID, n, "w"); err != nil {
				t.Fatal(err)
			}
			if err := db.EndAttempt(t.Context(), r.ID, n, end); err != nil {
				t.Fatal(err)
			}
		}
		row := mustFindRunRow(t, db, r.ID, n)
		if row.Failures != 1 || row.Attempts != 1 {
			t.Errorf("row has %d failures and %d attempts that may have acted, want 1 and 1", row.Failures, row.Attempts)
		}
	})
}

// TestRescueTakesBackOnlyTheJobsOfSilentWorkers: an engine that beats is
// not silent; the running jobs of one that stopped beating for longer than
// the threshold become available again with one more attempt allowed, and
// it is forgotten. The job table here stands in for River's, with River's
// column types on each database (text[] on PostgreSQL, a JSONB array on
// SQLite); real engine processes are killed in the bulk package's tests.
func TestRescueTakesBackOnlyTheJobsOfSilentWorkers(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		ddl := `CREATE TABLE river_job (id BIGINT PRIMARY KEY, state TEXT NOT NULL, scheduled_at TIMESTAMPTZ NOT NULL,
			max_attempts BIGINT NOT NULL, attempted_by TEXT[])`
		ins := `INSERT INTO river_job VALUES (?, 'running', now(), 5, ARRAY['old', ?])`
		if db.Dialect() == "sqlite" {
			ddl = `CREATE TABLE river_job (id INTEGER PRIMARY KEY, state TEXT NOT NULL, scheduled_at TEXT NOT NULL,
				max_attempts INTEGER NOT NULL, attempted_by BLOB)`
			ins = `INSERT INTO river_job VALUES (?, 'running', '2026-01-01 00:00:00.000', 5, jsonb_array('old', ?))`
		}
		if _, err := db.exec(t.Context(), ddl); err != nil {
			t.Fatal(err)
		}
		for i, id := range []string{"alive", "dead"} {
			if err := db.Heartbeat(t.Context(), id); err != nil {
				t.Fatal(err)
			}
			if _, err := db.exec(t.Context(), ins, i+1, id); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(300 * time.Millisecond)
		if err := db.Heartbeat(t.Context(), "alive"); err != nil {
			t.Fatal(err)
		}
		n, err := db.RescueSilentWorkers(t.Context(), 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("took back %d jobs, want the dead worker's one", n)
		}
		for id, want := range map[int]string{1: "running/5", 2: "available/6"} {
			var state string
			var maxAttempts int
			if err := db.queryRow(t.Context(), `SELECT state, max_attempts FROM river_job WHERE id = ?`, id).Scan(&state, &maxAttempts); err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%s/%d", state, maxAttempts); got != want {
				t.Errorf("job %d is %s, want %s", id, got, want)
			}
		}
		var left int
		if err := db.queryRow(t.Context(), `SELECT COUNT(*) FROM bulk_workers WHERE id = 'dead'`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 0 {
			t.Error("the silent worker was not forgotten")
		}
		if n, err := db.RescueSilentWorkers(t.Context(), 200*time.Millisecond); err != nil || n != 0 {
			t.Errorf("a second rescue took back %d jobs (%v), want none", n, err)
		}
	})
}
