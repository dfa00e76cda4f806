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

// TestStartRunChainsRowsOnOneTarget checks that rows on one target are
// linked in file order, only the first of each chain is queued at once, and
// finishing a row hands the next one to the queue in the same transaction.
func TestStartRunChainsRowsOnOneTarget(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		r := newTestRun(t, db, 1, 14) // rows 2..15; tickets 100..113; 4, 7, 10, 13 invalid
		var heads []int
		err := db.StartRun(t.Context(), r.ID, Actor{ID: 1, Name: "Admin 1"}, 0, ticketOf, func(tx *sql.Tx, rows []int) error {
			heads = rows
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Valid rows 2 3 5 6 8 9 11 12 14 15 on tickets 100 101 103 104
		// 106 107 109 110 112 113: targets (ticket mod 10) 0 1 3 4 6 7 9 0
		// 2 3, so row 12 follows row 2 and row 15 follows row 5.
		if diff := cmp.Diff([]int{2, 3, 5, 6, 8, 9, 11, 14}, heads); diff != "" {
			t.Errorf("queued at once (-want +got):\n%s", diff)
		}
		for _, c := range []struct{ number, after, next int }{{2, 0, 12}, {12, 2, 0}, {5, 0, 15}, {15, 5, 0}, {3, 0, 0}} {
			row, _ := db.FindRunRow(t.Context(), r.ID, c.number)
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
		if row, _ := db.FindRunRow(t.Context(), r.ID, 5); row.State != RowQueued {
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
				row, _ := db.FindRunRow(t.Context(), r.ID, n)
				if passed[n] != (row.State == RowQueued && row.InFlight) || !passed[n] != (row.State == RowSkipped) {
					t.Errorf("row %d: passed the gate %v, now %s in flight %v", n, passed[n], row.State, row.InFlight)
				}
			}
		}
	})
}
