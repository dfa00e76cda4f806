package store

import (
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// newTestRun creates a run of n rows: every third row (numbers 4, 7, …) is
// invalid, row 3 is a duplicate of row 2.
func newTestRun(t *testing.T, db *DB, adminID int64, n int) *Run {
	t.Helper()
	r := &Run{AdminID: adminID, AdminName: fmt.Sprintf("Admin %d", adminID), GrantID: 7, Kind: "rate",
		FileName: "ratings.csv"}
	err := db.CreateRunWithRows(t.Context(), r, func(add func([]RunRow) error) error {
		var batch []RunRow
		for i := range n {
			num := i + 2
			row := RunRow{Number: num, Cells: []string{fmt.Sprintf("u%d@example.com", i), fmt.Sprint(100 + i), "good"},
				Key: fmt.Sprintf("rate:ticket:%d", 100+i)}
			if num%3 == 1 {
				row.Errors = []string{"score: bad"}
			} else {
				row.Valid = true
				row.Action = []byte(fmt.Sprintf(`{"User":"u%d@example.com","Ticket":%d,"Score":"good"}`, i, 100+i))
			}
			if num == 3 {
				row.Duplicate = true
			}
			batch = append(batch, row)
			if len(batch) == 7 {
				if err := add(batch); err != nil {
					return err
				}
				batch = nil
			}
		}
		r.Header = []string{"email", "ticket", "score"}
		r.Mapping = map[string]int{"user": 0, "ticket": 1, "score": 2}
		r.Delimiter = ","
		return add(batch)
	})
	if err != nil {
		t.Fatalf("CreateRunWithRows: %v", err)
	}
	return r
}

func mustRunCounts(t *testing.T, db *DB, runID int64) RunCounts {
	t.Helper()
	c, err := db.RunCounts(t.Context(), runID)
	if err != nil {
		t.Fatalf("RunCounts: %v", err)
	}
	return c
}

func mustFindRunRow(t *testing.T, db *DB, runID int64, number int) RunRow {
	t.Helper()
	r, err := db.FindRunRow(t.Context(), runID, number)
	if err != nil {
		t.Fatalf("FindRunRow(%d, %d): %v", runID, number, err)
	}
	return r
}

// mustStartRun confirms the run, queues all its rows (chained by target,
// which may be nil) in batches of 3, and returns the row numbers handed to
// enqueue.
func mustStartRun(t *testing.T, db *DB, runID int64) []int {
	t.Helper()
	return mustStartRunBy(t, db, runID, nil)
}

func mustStartRunBy(t *testing.T, db *DB, runID int64, target func(RunRow) string) []int {
	t.Helper()
	if err := db.StartRun(t.Context(), runID, Actor{ID: 1, Name: "Admin 1"}, 0, func(tx *sql.Tx) error {
		if tx == nil {
			return errors.New("nil tx")
		}
		return nil
	}); err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	return mustQueueAll(t, db, runID, target)
}

// mustQueueAll runs QueueBatch until the run is queued, and returns the
// rows handed to enqueue.
func mustQueueAll(t *testing.T, db *DB, runID int64, target func(RunRow) string) []int {
	t.Helper()
	last, cursor, err := db.ChainTails(t.Context(), runID, target)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for cursor != QueueDone {
		cursor, err = db.QueueBatch(t.Context(), runID, cursor, 3, target, last, func(tx *sql.Tx, rows []int) error {
			if tx == nil {
				return errors.New("nil tx")
			}
			got = append(got, rows...)
			return nil
		})
		if err != nil {
			t.Fatalf("QueueBatch: %v", err)
		}
	}
	return got
}

func TestCreateRunWithRows(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		r := newTestRun(t, db, 1, 20)

		got, err := db.FindRunByID(t.Context(), r.ID)
		if err != nil {
			t.Fatalf("FindRunByID: %v", err)
		}
		want := &Run{ID: r.ID, AdminID: 1, AdminName: "Admin 1", GrantID: 7, Kind: "rate", FileName: "ratings.csv",
			State: RunPreview, Header: []string{"email", "ticket", "score"},
			Mapping: map[string]int{"user": 0, "ticket": 1, "score": 2}, Delimiter: ",",
			Total: 20, Valid: 14, Invalid: 6, Duplicates: 1, CreatedAt: clock.Now()}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("run (-want +got):\n%s", diff)
		}
		c := mustRunCounts(t, db, r.ID)
		if c.Total != 20 || c.Pending != 14 || c.Invalid != 6 {
			t.Errorf("counts = %+v, want 20 total, 14 pending, 6 invalid", c)
		}
		row, err := db.FindRunRow(t.Context(), r.ID, 2)
		if err != nil {
			t.Fatalf("FindRunRow: %v", err)
		}
		wantRow := RunRow{RunID: r.ID, Number: 2, Cells: []string{"u0@example.com", "100", "good"},
			Action: []byte(`{"User":"u0@example.com","Ticket":100,"Score":"good"}`), Valid: true,
			Errors: []string{}, Key: "rate:ticket:100", State: RowPending, UpdatedAt: clock.Now()}
		if diff := cmp.Diff(wantRow, row); diff != "" {
			t.Errorf("row 2 (-want +got):\n%s", diff)
		}
		if _, err := db.FindRunByID(t.Context(), r.ID+100); !errors.Is(err, ErrNotFound) {
			t.Errorf("FindRunByID(missing) = %v, want ErrNotFound", err)
		}
		if _, err := db.FindRunRow(t.Context(), r.ID, 999); !errors.Is(err, ErrNotFound) {
			t.Errorf("FindRunRow(missing) = %v, want ErrNotFound", err)
		}
	})
}

func TestCreateRunWithRowsRollsBack(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		bad := errors.New("the file is bad")
		r := &Run{AdminID: 1, Kind: "rate", FileName: "x.csv"}
		err := db.CreateRunWithRows(t.Context(), r, func(add func([]RunRow) error) error {
			if err := add([]RunRow{{Number: 2, Valid: true, Action: []byte(`{}`)}}); err != nil {
				return err
			}
			return bad
		})
		if !errors.Is(err, bad) {
			t.Fatalf("CreateRunWithRows = %v, want the fill error", err)
		}
		if n := mustCount(t, db, `SELECT COUNT(*) FROM bulk_runs`); n != 0 {
			t.Errorf("%d runs left behind", n)
		}
		if n := mustCount(t, db, `SELECT COUNT(*) FROM bulk_rows`); n != 0 {
			t.Errorf("%d rows left behind", n)
		}
		// A bad row (number 0) also rolls back.
		err = db.CreateRunWithRows(t.Context(), r, func(add func([]RunRow) error) error {
			return add([]RunRow{{Number: 0}})
		})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("row number 0: err = %v, want ErrInvalid", err)
		}
		if n := mustCount(t, db, `SELECT COUNT(*) FROM bulk_runs`); n != 0 {
			t.Errorf("%d runs left behind after a bad row", n)
		}
	})
}

func TestListRunsAndRows(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		r1 := newTestRun(t, db, 1, 5)
		clock.Add(time.Minute)
		r2 := newTestRun(t, db, 2, 5)
		clock.Add(time.Minute)
		r3 := newTestRun(t, db, 1, 250)

		t.Run("runs newest first", func(t *testing.T) {
			runs, total, err := db.ListRuns(t.Context(), RunFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if total != 3 || len(runs) != 3 || runs[0].ID != r3.ID || runs[2].ID != r1.ID {
				t.Errorf("ListRuns = %d runs (total %d), first %d", len(runs), total, runs[0].ID)
			}
			runs, total, err = db.ListRuns(t.Context(), RunFilter{AdminID: 1, Limit: 1, Offset: 1})
			if err != nil {
				t.Fatal(err)
			}
			if total != 2 || len(runs) != 1 || runs[0].ID != r1.ID {
				t.Errorf("admin 1 page 2 = %+v (total %d), want run %d of 2", runs, total, r1.ID)
			}
			_ = r2
		})
		t.Run("rows by filter", func(t *testing.T) {
			tests := []struct {
				name      string
				f         RowFilter
				wantTotal int
				wantFirst int
			}{
				{"all", RowFilter{}, 250, 2},
				{"invalid", RowFilter{States: []string{RowInvalid}}, 83, 4},
				{"only errors", RowFilter{OnlyErrors: true}, 83, 4},
				{"range", RowFilter{FromNumber: 10, ToNumber: 19}, 10, 10},
				{"offset", RowFilter{Offset: 100}, 250, 102},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					rows, total, err := db.ListRunRows(t.Context(), r3.ID, tt.f)
					if err != nil {
						t.Fatal(err)
					}
					if total != tt.wantTotal || len(rows) == 0 || rows[0].Number != tt.wantFirst {
						t.Errorf("total %d, %d rows, want total %d first %d", total, len(rows), tt.wantTotal, tt.wantFirst)
					}
					if len(rows) > DefaultListLimit {
						t.Errorf("%d rows, more than the default limit", len(rows))
					}
				})
			}
		})
		t.Run("each row in order", func(t *testing.T) {
			var numbers []int
			if err := db.EachRunRow(t.Context(), r3.ID, func(r RunRow) error {
				numbers = append(numbers, r.Number)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(numbers) != 250 || numbers[0] != 2 || numbers[249] != 251 {
				t.Fatalf("EachRunRow gave %d rows", len(numbers))
			}
			for i := 1; i < len(numbers); i++ {
				if numbers[i] <= numbers[i-1] {
					t.Fatalf("rows out of order at %d: %v", i, numbers[i-1:i+1])
				}
			}
			stop := errors.New("stop")
			if err := db.EachRunRow(t.Context(), r3.ID, func(RunRow) error { return stop }); !errors.Is(err, stop) {
				t.Errorf("EachRunRow error = %v, want fn's", err)
			}
		})
	})
}

func TestStartRun(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		r := newTestRun(t, db, 1, 6) // rows 2..7, 4 and 7 invalid

		// An enqueue failure leaves the run in preview.
		err := db.StartRun(t.Context(), r.ID, Actor{ID: 1, Name: "Admin 1"}, 0, func(*sql.Tx) error { return errors.New("queue down") })
		if err == nil {
			t.Fatal("StartRun with failing enqueue succeeded")
		}
		if got, _ := db.FindRunByID(t.Context(), r.ID); got.State != RunPreview {
			t.Errorf("after failed enqueue state = %s, want preview", got.State)
		}

		// enqueue runs inside the transaction: it sees the run confirmed.
		err = db.StartRun(t.Context(), r.ID, Actor{ID: 1, Name: "Admin 1"}, r.GrantID+5, func(tx *sql.Tx) error {
			var state string
			if err := tx.QueryRowContext(t.Context(), db.dialect.rebind(
				`SELECT state FROM bulk_runs WHERE id = ?`), r.ID).Scan(&state); err != nil {
				return err
			}
			if state != RunQueued {
				return fmt.Errorf("tx sees the run %s", state)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("StartRun: %v", err)
		}
		got, _ := db.FindRunByID(t.Context(), r.ID)
		if got.State != RunQueued || got.StartedAt.IsZero() || !got.Queuing() {
			t.Errorf("run = %s started %v queuing %v, want queued with a start time, rows being queued", got.State, got.StartedAt, got.Queuing())
		}
		if got.ConfirmedBy != (Actor{ID: 1, Name: "Admin 1"}) || got.GrantID != r.GrantID+5 {
			t.Errorf("run confirmed by %+v on grant %d, want Admin 1 on grant %d", got.ConfirmedBy, got.GrantID, r.GrantID+5)
		}
		// The rows wait for the queuer; it queues them in batches.
		if c := mustRunCounts(t, db, r.ID); c.Pending != 4 || c.Queued != 0 {
			t.Errorf("counts after confirm %+v, want 4 pending", c)
		}
		if diff := cmp.Diff([]int{2, 3, 5, 6}, mustQueueAll(t, db, r.ID, nil)); diff != "" {
			t.Errorf("rows queued (-want +got):\n%s", diff)
		}
		got, _ = db.FindRunByID(t.Context(), r.ID)
		if c := mustRunCounts(t, db, r.ID); c.Queued != 4 || c.Pending != 0 || got.QueuedRows != 4 || got.Queuing() {
			t.Errorf("after queuing: counts %+v, %d queued rows, queuing %v", c, got.QueuedRows, got.Queuing())
		}
		if err := db.StartRun(t.Context(), r.ID, Actor{ID: 1}, 0, func(*sql.Tx) error { return nil }); !errors.Is(err, ErrConflict) {
			t.Errorf("second StartRun = %v, want ErrConflict", err)
		}
		if err := db.StartRun(t.Context(), r.ID+99, Actor{ID: 1}, 0, func(*sql.Tx) error { return nil }); !errors.Is(err, ErrNotFound) {
			t.Errorf("StartRun(missing) = %v, want ErrNotFound", err)
		}
	})
}

func TestRowLifecycle(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		r := newTestRun(t, db, 1, 3) // rows 2, 3 valid; 4 invalid
		mustStartRun(t, db, r.ID)

		run, row, err := db.ClaimRow(t.Context(), r.ID, 2)
		if err != nil {
			t.Fatal(err)
		}
		if run.State != RunRunning || row.Attempts != 0 || row.State != RowQueued {
			t.Errorf("claim: run %s, row attempts %d state %s; want running, 0 queued", run.State, row.Attempts, row.State)
		}
		// The send gate counts the attempt and marks the row in flight.
		if err := db.BeginWrite(t.Context(), r.ID, 2); err != nil {
			t.Fatal(err)
		}
		if c := mustRunCounts(t, db, r.ID); c.InFlight != 1 {
			t.Errorf("InFlight = %d, want 1", c.InFlight)
		}
		// A 429 takes the attempt back and marks the row waiting.
		if err := db.EndAttempt(t.Context(), r.ID, 2, AttemptEnd{WaitingUntil: clock.Now().Add(10 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		if c := mustRunCounts(t, db, r.ID); c.Waiting != 1 || c.InFlight != 0 {
			t.Errorf("Waiting, InFlight = %d, %d; want 1, 0", c.Waiting, c.InFlight)
		}
		// The row waits until a worker takes it again.
		clock.Add(11 * time.Second)
		if c := mustRunCounts(t, db, r.ID); c.Waiting != 1 {
			t.Errorf("Waiting after the wait, before a claim = %d, want 1", c.Waiting)
		}
		if _, _, err := db.ClaimRow(t.Context(), r.ID, 2); err != nil {
			t.Fatal(err)
		}
		if c := mustRunCounts(t, db, r.ID); c.Waiting != 0 {
			t.Errorf("Waiting after the claim = %d, want 0", c.Waiting)
		}
		if row := mustFindRunRow(t, db, r.ID, 2); row.Attempts != 0 {
			t.Errorf("after a snooze attempts = %d, want 0", row.Attempts)
		}
		// A write that got no answer stays counted: the next attempt knows
		// an earlier one may have reached Zendesk.
		db.BeginWrite(t.Context(), r.ID, 2)
		if err := db.EndAttempt(t.Context(), r.ID, 2, AttemptEnd{MayHaveActed: true}); err != nil {
			t.Fatal(err)
		}
		_, row, _ = db.ClaimRow(t.Context(), r.ID, 2)
		if row.Attempts != 1 || row.InFlight || !row.AttemptAt.Equal(clock.Now()) {
			t.Errorf("after an unknown outcome: attempts %d in flight %v at %v, want 1, false at %v", row.Attempts, row.InFlight, row.AttemptAt, clock.Now())
		}
		// A worker that died in flight leaves the flag; the next claim
		// takes the row over.
		db.BeginWrite(t.Context(), r.ID, 2)
		_, row, _ = db.ClaimRow(t.Context(), r.ID, 2)
		if row.Attempts != 2 || row.InFlight {
			t.Errorf("claim after a dead worker: attempts %d in flight %v, want 2, false", row.Attempts, row.InFlight)
		}

		ok, err := db.FinishRow(t.Context(), r.ID, 2, RowResult{State: RowDone, HTTPStatus: 200, ZendeskID: 55}, nil)
		if err != nil || !ok {
			t.Fatalf("FinishRow = %v, %v; want true", ok, err)
		}
		ok, err = db.FinishRow(t.Context(), r.ID, 2, RowResult{State: RowFailed, Error: "late"}, nil)
		if err != nil || ok {
			t.Errorf("second FinishRow = %v, %v; want false, nil", ok, err)
		}
		row = mustFindRunRow(t, db, r.ID, 2)
		if row.State != RowDone || row.ZendeskID != 55 || row.HTTPStatus != 200 || row.Error != "" {
			t.Errorf("row = %s %d %d %q, want the first result", row.State, row.ZendeskID, row.HTTPStatus, row.Error)
		}
		// A terminal row is returned unchanged by ClaimRow, and the gate
		// refuses it.
		_, row, err = db.ClaimRow(t.Context(), r.ID, 2)
		if err != nil || row.State != RowDone || row.Attempts != 2 {
			t.Errorf("ClaimRow on done row = %s attempts %d, %v", row.State, row.Attempts, err)
		}
		if err := db.BeginWrite(t.Context(), r.ID, 2); !errors.Is(err, ErrConflict) || errors.Is(err, ErrRunNotRunning) {
			t.Errorf("BeginWrite on a done row = %v, want ErrConflict (not ErrRunNotRunning)", err)
		}
		if _, err := db.FinishRow(t.Context(), r.ID, 4, RowResult{State: RowDone}, nil); err != nil {
			t.Errorf("FinishRow on invalid row: %v", err)
		}
		if row := mustFindRunRow(t, db, r.ID, 4); row.State != RowInvalid {
			t.Errorf("invalid row became %s", row.State)
		}
		if _, err := db.FinishRow(t.Context(), r.ID, 3, RowResult{State: RowQueued}, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("FinishRow to queued = %v, want ErrInvalid", err)
		}
		if _, err := db.FinishRow(t.Context(), r.ID, 99, RowResult{State: RowDone}, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("FinishRow(missing) = %v, want ErrNotFound", err)
		}

		if done, _ := db.FinishRunIfDone(t.Context(), r.ID); done {
			t.Error("run finished with row 3 still queued")
		}
		if ok, _ := db.FinishRow(t.Context(), r.ID, 3, RowResult{State: RowFailed, Error: "no", HTTPStatus: 422}, nil); !ok {
			t.Fatal("FinishRow(3) did not finish")
		}
		if done, err := db.FinishRunIfDone(t.Context(), r.ID); !done || err != nil {
			t.Errorf("FinishRunIfDone = %v, %v; want true", done, err)
		}
		if done, _ := db.FinishRunIfDone(t.Context(), r.ID); done {
			t.Error("FinishRunIfDone moved a done run again")
		}
		got, _ := db.FindRunByID(t.Context(), r.ID)
		if got.State != RunDone || got.FinishedAt.IsZero() {
			t.Errorf("run = %s finished %v", got.State, got.FinishedAt)
		}
		c := mustRunCounts(t, db, r.ID)
		if c.Done != 1 || c.Failed != 1 || c.Invalid != 1 || c.Remaining() != 0 {
			t.Errorf("counts = %+v", c)
		}
	})
}

// TestFinishRowOnce races many finishers on each row: exactly one wins, and
// only the winner's audit event is kept.
func TestFinishRowOnce(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		r := newTestRun(t, db, 1, 9)
		rows := mustStartRun(t, db, r.ID)
		var wins atomic.Int64
		var wg sync.WaitGroup
		for _, n := range rows {
			for i := range 4 {
				wg.Go(func() {
					state := []string{RowDone, RowFailed, RowSkipped, RowDone}[i]
					ev := &AuditEvent{Action: "rate", Outcome: OutcomeOK, RunID: r.ID, Detail: state}
					ok, err := db.FinishRow(t.Context(), r.ID, n, RowResult{State: state, Audit: ev}, nil)
					if err != nil {
						t.Errorf("FinishRow: %v", err)
					}
					if ok {
						wins.Add(1)
					}
				})
			}
		}
		wg.Wait()
		if int(wins.Load()) != len(rows) {
			t.Errorf("%d FinishRow calls won for %d rows", wins.Load(), len(rows))
		}
		if n := mustCount(t, db, `SELECT COUNT(*) FROM audit_events WHERE run_id = ?`, r.ID); n != len(rows) {
			t.Errorf("%d audit events for %d rows ended once each", n, len(rows))
		}
	})
}

// TestFinishRowAuditCommitsWithTheRow: a finish that fails records neither
// the row's end nor its audit event, so the retry adds the event once.
func TestFinishRowAuditCommitsWithTheRow(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		r := newTestRun(t, db, 1, 14)
		heads := mustStartRunBy(t, db, r.ID, ticketOf)
		row := mustFindRunRow(t, db, r.ID, heads[0])
		if row.Next == 0 {
			t.Fatalf("row %d has no successor to fail the queuing of", row.Number)
		}
		ev := func() *AuditEvent {
			return &AuditEvent{Action: "rate", Outcome: OutcomeOK, RunID: r.ID, Detail: "already rated"}
		}
		count := func() int {
			return mustCount(t, db, `SELECT COUNT(*) FROM audit_events WHERE run_id = ?`, r.ID)
		}
		if _, err := db.FinishRow(t.Context(), r.ID, row.Number, RowResult{State: RowDone, Audit: ev()},
			func(*sql.Tx, int) error { return errors.New("queue down") }); err == nil {
			t.Fatal("FinishRow with a failing enqueue succeeded")
		}
		if n := count(); n != 0 {
			t.Errorf("a finish rolled back left %d audit events", n)
		}
		for range 2 { // the retry, then a late duplicate
			if _, err := db.FinishRow(t.Context(), r.ID, row.Number, RowResult{State: RowDone, Audit: ev()},
				func(*sql.Tx, int) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if n := count(); n != 1 {
			t.Errorf("%d audit events after the retry and a duplicate, want 1", n)
		}
	})
}

func TestPauseResumeCancel(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		r1 := newTestRun(t, db, 1, 3)
		r2 := newTestRun(t, db, 1, 3)
		other := newTestRun(t, db, 2, 3)
		for _, r := range []*Run{r1, r2, other} {
			mustStartRun(t, db, r.ID)
		}
		if ok, _ := db.PauseRun(t.Context(), r1.ID, r1.GrantID+1, "stale grant"); ok {
			t.Error("PauseRun paused a run with a grant that is no longer the run's")
		}
		if ok, err := db.PauseRun(t.Context(), r1.ID, r1.GrantID, "log in again"); !ok || err != nil {
			t.Fatalf("PauseRun = %v, %v", ok, err)
		}
		if ok, _ := db.PauseRun(t.Context(), r1.ID, r1.GrantID, "again"); ok {
			t.Error("PauseRun paused a paused run")
		}
		if _, err := db.PauseRun(t.Context(), 999, 7, "x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("PauseRun(missing) = %v, want ErrNotFound", err)
		}
		if ok, _ := db.PauseRun(t.Context(), other.ID, other.GrantID, "log in again"); !ok {
			t.Fatal("PauseRun(other) failed")
		}
		got, _ := db.FindRunByID(t.Context(), r1.ID)
		if got.State != RunPaused || got.PausedReason != "log in again" {
			t.Errorf("paused run = %s %q", got.State, got.PausedReason)
		}

		ids, err := db.ResumeRunsForAdmin(t.Context(), 1, 42)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{r1.ID}, ids); diff != "" {
			t.Errorf("resumed (-want +got):\n%s", diff)
		}
		for _, id := range []int64{r1.ID, r2.ID} {
			got, _ := db.FindRunByID(t.Context(), id)
			if got.GrantID != 42 || got.State == RunPaused || got.PausedReason != "" {
				t.Errorf("run %d after resume: grant %d state %s reason %q", id, got.GrantID, got.State, got.PausedReason)
			}
		}
		if got, _ := db.FindRunByID(t.Context(), other.ID); got.State != RunPaused || got.GrantID == 42 {
			t.Errorf("another admin's run changed: %s grant %d", got.State, got.GrantID)
		}

		// Cancel: row 2 is in flight (its write passed the gate) and is
		// left to its worker; row 3 is skipped. The gate then refuses row 3.
		clock.Add(time.Minute)
		if err := db.BeginWrite(t.Context(), r2.ID, 2); err != nil {
			t.Fatal(err)
		}
		var dropped bool
		res, err := db.CancelRun(t.Context(), r2.ID, Actor{ID: 2, Name: "Admin 2"}, "Cancelled by Admin 2.", func(tx *sql.Tx) error {
			dropped = tx != nil
			return nil
		})
		if err != nil || res != (CancelResult{Skipped: 1, InFlight: 1}) || !dropped {
			t.Fatalf("CancelRun = %+v, %v (jobs dropped %v); want 1 skipped, 1 in flight, jobs dropped", res, err, dropped)
		}
		row := mustFindRunRow(t, db, r2.ID, 3)
		if row.State != RowSkipped || row.Error != "Cancelled by Admin 2." {
			t.Errorf("row 3 = %s %q", row.State, row.Error)
		}
		if row := mustFindRunRow(t, db, r2.ID, 2); row.State != RowQueued || !row.InFlight {
			t.Errorf("in-flight row = %s in flight %v, want queued and in flight", row.State, row.InFlight)
		}
		got, _ = db.FindRunByID(t.Context(), r2.ID)
		if got.State != RunCancelled || got.FinishedAt.IsZero() || got.CancelledBy != (Actor{ID: 2, Name: "Admin 2"}) {
			t.Errorf("cancelled run = %s finished %v by %+v", got.State, got.FinishedAt, got.CancelledBy)
		}
		if err := db.BeginWrite(t.Context(), r2.ID, 3); !errors.Is(err, ErrConflict) {
			t.Errorf("BeginWrite of a skipped row = %v, want ErrConflict", err)
		}
		if c := mustRunCounts(t, db, r2.ID); c.InFlight != 1 {
			t.Errorf("InFlight after cancel = %d, want 1", c.InFlight)
		}
		if _, err := db.CancelRun(t.Context(), r2.ID, Actor{ID: 1}, "again", nil); !errors.Is(err, ErrConflict) {
			t.Errorf("second CancelRun = %v, want ErrConflict", err)
		}
		// A cancelled run is never "done".
		db.FinishRow(t.Context(), r2.ID, 2, RowResult{State: RowDone}, nil)
		if done, _ := db.FinishRunIfDone(t.Context(), r2.ID); done {
			t.Error("FinishRunIfDone moved a cancelled run to done")
		}
	})
}

// TestListRowsWithPreflightErrors: OnlyPreflightErrors lists exactly the
// rows the pre-flight expects Zendesk to refuse, in order, with the total
// RunCounts.PreflightErrors gives, alone or with a state.
func TestListRowsWithPreflightErrors(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		r := newTestRun(t, db, 1, 9) // rows 2..10; 4, 7, 10 invalid
		if err := db.SetRowPreflight(t.Context(), r.ID, map[int]string{3: "closed", 6: "not the requester", 9: "closed"}); err != nil {
			t.Fatal(err)
		}
		rows, total, err := db.ListRunRows(t.Context(), r.ID, RowFilter{OnlyPreflightErrors: true})
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, row := range rows {
			got = append(got, row.Number)
		}
		if diff := cmp.Diff([]int{3, 6, 9}, got); diff != "" || total != 3 {
			t.Errorf("rows with pre-flight errors (-want +got):\n%s\ntotal %d, want 3", diff, total)
		}
		if c := mustRunCounts(t, db, r.ID); c.PreflightErrors != total {
			t.Errorf("the listing's total %d differs from PreflightErrors %d", total, c.PreflightErrors)
		}
		rows, total, err = db.ListRunRows(t.Context(), r.ID, RowFilter{OnlyPreflightErrors: true, FromNumber: 5, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if total != 2 || len(rows) != 1 || rows[0].Number != 6 {
			t.Errorf("from row 5, one a page: total %d, %+v; want total 2, row 6", total, rows)
		}
	})
}

func TestSetRowPreflight(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		r := newTestRun(t, db, 1, 6)
		if err := db.SetRowPreflight(t.Context(), r.ID, map[int]string{2: "not the requester", 3: "closed"}); err != nil {
			t.Fatal(err)
		}
		if err := db.SetRowPreflight(t.Context(), r.ID, map[int]string{3: "closed"}); err != nil {
			t.Fatal(err)
		}
		got, _ := db.FindRunByID(t.Context(), r.ID)
		if !got.Preflighted {
			t.Error("run not marked preflighted")
		}
		rows, _, err := db.ListRunRows(t.Context(), r.ID, RowFilter{States: []string{RowPending}, OnlyErrors: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].Number != 3 || rows[0].PreflightError != "closed" {
			t.Errorf("rows with pre-flight errors = %+v, want only row 3", rows)
		}
		if c := mustRunCounts(t, db, r.ID); c.PreflightErrors != 1 {
			t.Errorf("PreflightErrors = %d, want 1", c.PreflightErrors)
		}
		if err := db.SetRowPreflight(t.Context(), 999, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("SetRowPreflight(missing) = %v, want ErrNotFound", err)
		}
	})
}

// Retries of one run asked for at once (a double click, two tabs) make one
// retry run: the others are refused with its id. Once it has ended, a new
// retry may be made.
func TestOneOpenRetryOfARun(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		orig := newTestRun(t, db, 1, 3)
		retry := func() (int64, error) {
			r := &Run{AdminID: 1, AdminName: "Admin 1", GrantID: 7, Kind: "rate", FileName: "ratings.csv", RetryOf: orig.ID}
			err := db.CreateRunWithRows(t.Context(), r, func(add func([]RunRow) error) error {
				return add([]RunRow{{Number: 2, Cells: []string{"u@example.com", "100", "good"}, Valid: true,
					Action: []byte(`{"User":"u@example.com","Ticket":100,"Score":"good"}`), Key: "rate:ticket:100"}})
			})
			return r.ID, err
		}
		const n = 6
		var wg sync.WaitGroup
		ids, errs := make([]int64, n), make([]error, n)
		for i := range n {
			wg.Go(func() { ids[i], errs[i] = retry() })
		}
		wg.Wait()
		var made []int64
		for i, err := range errs {
			if err == nil {
				made = append(made, ids[i])
			}
		}
		if len(made) != 1 {
			t.Fatalf("%d retries asked for at once made %d runs (%v), want 1; errors %v", n, len(made), made, errs)
		}
		for _, err := range errs {
			var pending *RetryPendingError
			if err != nil && (!errors.As(err, &pending) || pending.RunID != made[0] || !errors.Is(err, ErrConflict)) {
				t.Errorf("a refused retry says %v, want RetryPendingError naming run %d", err, made[0])
			}
		}
		if _, err := db.SetRunState(t.Context(), made[0], []string{RunPreview}, RunCancelled, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := retry(); err != nil {
			t.Errorf("a retry after the first one ended: %v", err)
		}
	})
}
