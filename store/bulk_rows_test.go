package store

import (
	"database/sql"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ticketOf is the chain target of a test row: its ticket.
func ticketOf(r RunRow) string {
	var a struct{ Ticket int64 }
	if err := json.Unmarshal(r.Action, &a); err != nil || a.Ticket == 0 {
		return ""
	}
	return string(rune('0' + a.Ticket%10)) // rows 2, 12, 22… share a ticket
}

// TestQueueBatchChainsRowsOnOneTarget checks that rows on one target are
// linked in file order across batches, only the first of each chain is
// queued at once, and finishing a row hands the next one to the queue in the
// same transaction.
func TestQueueBatchChainsRowsOnOneTarget(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		r := newTestRun(t, db, 1, 14) // rows 2..15; tickets 100..113; 4, 7, 10, 13 invalid
		heads := mustStartRunBy(t, db, r.ID, ticketOf)
		// Valid rows 2 3 5 6 8 9 11 12 14 15 on tickets 100 101 103 104
		// 106 107 109 110 112 113: targets (ticket mod 10) 0 1 3 4 6 7 9 0
		// 2 3, so row 12 follows row 2 and row 15 follows row 5.
		if diff := cmp.Diff([]int{2, 3, 5, 6, 8, 9, 11, 14}, heads); diff != "" {
			t.Errorf("queued at once (-want +got):\n%s", diff)
		}
		for _, c := range []struct{ number, after, next int }{{2, 0, 12}, {12, 2, 0}, {5, 0, 15}, {15, 5, 0}, {3, 0, 0}} {
			row := mustFindRunRow(t, db, r.ID, c.number)
			if row.After != c.after || row.Next != c.next {
				t.Errorf("row %d after %d next %d, want %d and %d", c.number, row.After, row.Next, c.after, c.next)
			}
		}

		var queued []int
		next := func(tx *sql.Tx, n int) error {
			if tx == nil {
				return errors.New("no transaction")
			}
			queued = append(queued, n)
			return nil
		}
		if ok, err := db.FinishRow(t.Context(), r.ID, 2, RowResult{State: RowFailed, Error: "no"}, next); !ok || err != nil {
			t.Fatalf("FinishRow(2) = %v, %v", ok, err)
		}
		if diff := cmp.Diff([]int{12}, queued); diff != "" {
			t.Errorf("queued after row 2 (-want +got):\n%s", diff)
		}
		// A failing enqueue rolls the finish back: the row is not ended
		// without its successor being queued.
		if _, err := db.FinishRow(t.Context(), r.ID, 5, RowResult{State: RowDone}, func(*sql.Tx, int) error {
			return errors.New("queue down")
		}); err == nil {
			t.Error("FinishRow with a failing enqueue succeeded")
		}
		if row := mustFindRunRow(t, db, r.ID, 5); row.State != RowQueued {
			t.Errorf("row 5 after a failed enqueue = %s, want queued", row.State)
		}
		// A successor that was skipped meanwhile (a cancel) is not queued.
		if _, err := db.CancelRun(t.Context(), r.ID, Actor{ID: 1}, "stop", nil); err != nil {
			t.Fatal(err)
		}
		queued = nil
		if _, err := db.FinishRow(t.Context(), r.ID, 5, RowResult{State: RowDone}, next); err != nil {
			t.Fatal(err)
		}
		if len(queued) != 0 {
			t.Errorf("a skipped successor was queued: %v", queued)
		}
	})
}

// TestBeginWriteRacesCancel runs the send gate of every row against a cancel
// at the same time, many times: each row is either sent (in flight when the
// cancel answered) or skipped, never both, and the cancel's count of rows in
// flight is exactly the number of rows whose gate let them through.
func TestBeginWriteRacesCancel(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		for range 10 {
			r := newTestRun(t, db, 1, 30)
			rows := mustStartRun(t, db, r.ID)
			var mu sync.Mutex
			passed := map[int]bool{}
			var res CancelResult
			var wg sync.WaitGroup
			start := make(chan struct{})
			for _, n := range rows {
				wg.Go(func() {
					<-start
					err := db.BeginWrite(t.Context(), r.ID, n)
					switch {
					case err == nil:
						mu.Lock()
						passed[n] = true
						mu.Unlock()
					case !errors.Is(err, ErrConflict):
						t.Errorf("BeginWrite(%d): %v", n, err)
					}
				})
			}
			wg.Go(func() {
				<-start
				var err error
				res, err = db.CancelRun(t.Context(), r.ID, Actor{ID: 2, Name: "Admin 2"}, "stop", nil)
				if err != nil {
					t.Errorf("CancelRun: %v", err)
				}
			})
			close(start)
			wg.Wait()
			if res.InFlight != len(passed) || res.Skipped+res.InFlight != len(rows) {
				t.Fatalf("cancel counted %d in flight, %d skipped; %d of %d rows passed the gate", res.InFlight, res.Skipped, len(passed), len(rows))
			}
			for _, n := range rows {
				row := mustFindRunRow(t, db, r.ID, n)
				if passed[n] != (row.State == RowQueued && row.InFlight) || !passed[n] != (row.State == RowSkipped) {
					t.Errorf("row %d: passed the gate %v, now %s in flight %v", n, passed[n], row.State, row.InFlight)
				}
			}
		}
	})
}

// TestQueueBatchResumesAndNeverQueuesTwice queues a run in batches with a
// "crash" in between (the map of chain tails is lost and rebuilt), a second
// queuer racing with a stale cursor, a row that ends before its successor's
// batch, and a cancel half-way: no row is queued twice, chains hold across
// batches, and queuing stops at the cancel.
func TestQueueBatchResumesAndNeverQueuesTwice(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		r := newTestRun(t, db, 1, 24) // rows 2..25; valid: not 4, 7, 10, …
		if err := db.StartRun(t.Context(), r.ID, Actor{ID: 1, Name: "Admin 1"}, 0, func(*sql.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		seen := map[int]int{}
		enqueue := func(tx *sql.Tx, rows []int) error {
			for _, n := range rows {
				seen[n]++
			}
			return nil
		}
		last, cursor, err := db.ChainTails(t.Context(), r.ID, ticketOf)
		if err != nil || cursor != 0 {
			t.Fatalf("ChainTails = %d, %v; want cursor 0", cursor, err)
		}
		cursor, err = db.QueueBatch(t.Context(), r.ID, cursor, 4, ticketOf, last, enqueue) // rows 2 3 5 6
		if err != nil || cursor != 6 {
			t.Fatalf("first batch: cursor %d, %v; want 6", cursor, err)
		}
		// A second queuer that still thinks the cursor is 0 does nothing.
		if _, err := db.QueueBatch(t.Context(), r.ID, 0, 4, ticketOf, map[string]int{}, enqueue); !errors.Is(err, ErrConflict) {
			t.Errorf("stale queuer: %v, want ErrConflict", err)
		}
		// Row 2 (ticket 100, target "0") ends before row 12 (ticket 110)
		// is queued: row 12 then waits for nobody.
		if ok, err := db.FinishRow(t.Context(), r.ID, 2, RowResult{State: RowDone}, nil); !ok || err != nil {
			t.Fatalf("FinishRow(2) = %v, %v", ok, err)
		}
		// "Crash": the tails are rebuilt from the database.
		last, cursor, err = db.ChainTails(t.Context(), r.ID, ticketOf)
		if err != nil || cursor != 6 || last["3"] != 5 {
			t.Fatalf("ChainTails after the first batch = %v, %d, %v; want row 5 last on target 3, cursor 6", last, cursor, err)
		}
		cursor, err = db.QueueBatch(t.Context(), r.ID, cursor, 4, ticketOf, last, enqueue) // rows 8 9 11 12
		if err != nil {
			t.Fatal(err)
		}
		if row := mustFindRunRow(t, db, r.ID, 12); row.After != 0 || seen[12] != 1 {
			t.Errorf("row 12 after %d, enqueued %d times; want it queued at once (row 2 had ended)", row.After, seen[12])
		}
		// Row 15 (ticket 113, target "3") chains after row 5 across batches.
		cursor, err = db.QueueBatch(t.Context(), r.ID, cursor, 4, ticketOf, last, enqueue) // rows 14 15 17 18
		if err != nil {
			t.Fatal(err)
		}
		if row := mustFindRunRow(t, db, r.ID, 15); row.After != 5 || seen[15] != 0 {
			t.Errorf("row 15 after %d, enqueued %d times; want it to wait for row 5", row.After, seen[15])
		}
		if _, err := db.CancelRun(t.Context(), r.ID, Actor{ID: 2, Name: "Admin 2"}, "stop", nil); err != nil {
			t.Fatal(err)
		}
		if cursor, err = db.QueueBatch(t.Context(), r.ID, cursor, 4, ticketOf, last, enqueue); err != nil || cursor != QueueDone {
			t.Errorf("QueueBatch after the cancel = %d, %v; want QueueDone", cursor, err)
		}
		for n, k := range seen {
			if k != 1 {
				t.Errorf("row %d enqueued %d times", n, k)
			}
		}
		if seen[20] != 0 {
			t.Error("a row after the cancel was queued")
		}
		if c := mustRunCounts(t, db, r.ID); c.Pending != 0 || c.Queued != c.InFlight {
			t.Errorf("counts after the cancel %+v: rows left pending or queued", c)
		}
	})
}
