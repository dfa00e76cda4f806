package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// recountRows counts the run's rows the slow way, scanning them all, by the
// rules migration 0004's triggers keep: the oracle RunCounts must match.
func recountRows(t *testing.T, db *DB, runID int64) RunCounts {
	t.Helper()
	rows, err := db.query(t.Context(), `SELECT state, COUNT(*),
		SUM(CASE WHEN waiting_until <> 0 THEN 1 ELSE 0 END),
		SUM(CASE WHEN preflight_error <> '' THEN 1 ELSE 0 END),
		SUM(CASE WHEN in_flight <> 0 THEN 1 ELSE 0 END)
		FROM bulk_rows WHERE run_id = ? GROUP BY state`, runID)
	if err != nil {
		t.Fatalf("recount rows of run %d: %v", runID, err)
	}
	defer rows.Close()
	var c RunCounts
	for rows.Next() {
		var state string
		var n, waiting, pre, inFlight int
		if err := rows.Scan(&state, &n, &waiting, &pre, &inFlight); err != nil {
			t.Fatalf("recount rows of run %d: %v", runID, err)
		}
		c.Total += n
		c.PreflightErrors += pre
		switch state {
		case RowInvalid:
			c.Invalid = n
		case RowPending:
			c.Pending = n
			c.InFlight += inFlight
		case RowQueued:
			c.Queued = n
			c.Waiting = waiting
			c.InFlight += inFlight
		case RowDone:
			c.Done = n
		case RowFailed:
			c.Failed = n
		case RowSkipped:
			c.Skipped = n
		default:
			t.Fatalf("run %d has rows in unknown state %q", runID, state)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("recount rows of run %d: %v", runID, err)
	}
	return c
}

// countFilters are the row filters whose totals ListRunRows reads from the
// counters.
var countFilters = []RowFilter{
	{},
	{States: []string{RowInvalid}},
	{States: []string{RowDone, RowFailed, RowDone}},
	{States: []string{RowPending, RowQueued, RowSkipped}},
	{OnlyErrors: true},
	{OnlyPreflightErrors: true},
}

// checkCounts fails the test unless RunCounts of every run in runIDs, and
// ListRunRows' totals, equal a full recount, and returns the counts of the
// first.
func checkCounts(t *testing.T, db *DB, step string, runIDs ...int64) RunCounts {
	t.Helper()
	var first RunCounts
	for i, id := range runIDs {
		got := mustRunCounts(t, db, id)
		if diff := cmp.Diff(recountRows(t, db, id), got); diff != "" {
			t.Errorf("after %s: RunCounts(%d) differs from a recount (-recount +RunCounts):\n%s", step, id, diff)
		}
		if i == 0 {
			first = got
		}
		for _, f := range countFilters {
			if _, ok := countedBy(f); !ok {
				t.Fatalf("the counters do not count %+v", f)
			}
			cond, args := rowWhere(id, f)
			want := mustCount(t, db, `SELECT COUNT(*) FROM bulk_rows`+cond, args...)
			if _, total, err := db.ListRunRows(t.Context(), id, f); err != nil || total != want {
				t.Errorf("after %s: ListRunRows(%d, %+v) total = %d, %v; a recount says %d", step, id, f, total, err, want)
			}
		}
	}
	return first
}

// TestRunCountsFollowRows drives rows through every change the engine makes
// (upload, pre-flight, remap, confirm and queue, claim, send gate, snooze,
// unknown outcome, finish, cancel with a row in flight, and deletes) and
// checks after each that RunCounts, read from the counter row, equals a
// recount of the rows; a second run must not move.
func TestRunCountsFollowRows(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		ctx := t.Context()
		r := newTestRun(t, db, 1, 20) // rows 2..21; 4, 7, …, 19 invalid
		other := newTestRun(t, db, 2, 9)
		if c := checkCounts(t, db, "upload", r.ID, other.ID); c.Total != 20 || c.Invalid != 6 || c.Pending != 14 {
			t.Errorf("after upload %+v, want 20 rows: 6 invalid, 14 pending", c)
		}

		// More rows, as an upload's later batches or a retry's copy bring
		// them: any state, waiting, pre-flight errors.
		if err := db.InsertRunRows(ctx, r.ID, []RunRow{
			{Number: 22, Valid: true, Action: []byte(`{"Ticket":122}`)},
			{Number: 23, Errors: []string{"bad"}, PreflightError: "no such user"},
			{Number: 24, Valid: true, Action: []byte(`{"Ticket":124}`), State: RowQueued, WaitingUntil: clock.Now()},
			{Number: 25, Valid: true, Action: []byte(`{"Ticket":125}`), State: RowDone},
		}); err != nil {
			t.Fatal(err)
		}
		if c := checkCounts(t, db, "InsertRunRows", r.ID, other.ID); c.Total != 24 || c.Waiting != 1 || c.PreflightErrors != 1 {
			t.Errorf("after InsertRunRows %+v, want 24 rows, 1 waiting, 1 pre-flight error", c)
		}
		// The rows a test inserted queued and done would not exist in a
		// preview; back to pending for the rest of the story.
		if _, err := db.exec(ctx, `UPDATE bulk_rows SET state = ?, waiting_until = 0 WHERE run_id = ? AND number IN (24, 25)`,
			RowPending, r.ID); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, db, "a multi-row UPDATE", r.ID, other.ID)

		// Pre-flight: set, then replaced by another (clears the others).
		if err := db.SetRowPreflight(ctx, r.ID, map[int]string{2: "gone", 3: "gone", 5: "closed"}); err != nil {
			t.Fatal(err)
		}
		if c := checkCounts(t, db, "SetRowPreflight", r.ID, other.ID); c.PreflightErrors != 3 {
			t.Errorf("PreflightErrors = %d, want 3", c.PreflightErrors)
		}
		if err := db.SetRowPreflight(ctx, r.ID, map[int]string{6: "gone"}); err != nil {
			t.Fatal(err)
		}
		if c := checkCounts(t, db, "a second SetRowPreflight", r.ID, other.ID); c.PreflightErrors != 1 {
			t.Errorf("PreflightErrors = %d, want 1", c.PreflightErrors)
		}

		// Remap: every fifth row turns invalid, the invalid ones valid;
		// pre-flight errors go.
		if err := db.RemapRun(ctx, r.ID, map[string]int{"user": 0}, func(old RunRow) RemapRow {
			if old.Number%5 == 0 || old.Valid {
				return RemapRow{Valid: old.Number%5 != 0, Action: old.Action, Key: old.Key, Errors: old.Errors}
			}
			return RemapRow{Valid: true, Action: fmt.Appendf(nil, `{"Ticket":%d}`, 100+old.Number), Key: old.Key}
		}); err != nil {
			t.Fatal(err)
		}
		if c := checkCounts(t, db, "RemapRun", r.ID, other.ID); c.Invalid != 5 || c.Pending != 19 || c.PreflightErrors != 0 {
			t.Errorf("after RemapRun %+v, want 5 invalid, 19 pending, no pre-flight error", c)
		}

		// Confirm and queue in batches, chaining rows on one ticket.
		heads := mustStartRunBy(t, db, r.ID, ticketOf)
		if c := checkCounts(t, db, "StartRun and QueueBatch", r.ID, other.ID); c.Queued != 19 || c.Pending != 0 {
			t.Errorf("after queuing %+v, want 19 queued", c)
		}
		if len(heads) < 4 {
			t.Fatalf("only %d rows queued at once", len(heads))
		}
		a, b, d, e := heads[0], heads[1], heads[2], heads[3]

		// A claim, the send gate, a 429 snooze, the next claim.
		if _, _, err := db.ClaimRow(ctx, r.ID, a); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, db, "ClaimRow", r.ID, other.ID)
		if err := db.BeginWrite(ctx, r.ID, a); err != nil {
			t.Fatal(err)
		}
		if c := checkCounts(t, db, "BeginWrite", r.ID, other.ID); c.InFlight != 1 {
			t.Errorf("InFlight = %d, want 1", c.InFlight)
		}
		if err := db.EndAttempt(ctx, r.ID, a, AttemptEnd{WaitingUntil: clock.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if c := checkCounts(t, db, "EndAttempt with a wait", r.ID, other.ID); c.InFlight != 0 || c.Waiting != 1 {
			t.Errorf("after a snooze InFlight, Waiting = %d, %d; want 0, 1", c.InFlight, c.Waiting)
		}
		if _, _, err := db.ClaimRow(ctx, r.ID, a); err != nil {
			t.Fatal(err)
		}
		if c := checkCounts(t, db, "ClaimRow after a snooze", r.ID, other.ID); c.Waiting != 0 {
			t.Errorf("Waiting after the claim = %d, want 0", c.Waiting)
		}
		// An unknown outcome, then the row done.
		if err := db.BeginWrite(ctx, r.ID, a); err != nil {
			t.Fatal(err)
		}
		if err := db.EndAttempt(ctx, r.ID, a, AttemptEnd{MayHaveActed: true}); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, db, "EndAttempt without a wait", r.ID, other.ID)
		if err := db.BeginWrite(ctx, r.ID, a); err != nil {
			t.Fatal(err)
		}
		if ok, err := db.FinishRow(ctx, r.ID, a, RowResult{State: RowDone, HTTPStatus: 200}, nil); !ok || err != nil {
			t.Fatalf("FinishRow(%d) = %v, %v", a, ok, err)
		}
		if c := checkCounts(t, db, "FinishRow done", r.ID, other.ID); c.Done != 1 || c.InFlight != 0 {
			t.Errorf("after FinishRow Done, InFlight = %d, %d; want 1, 0", c.Done, c.InFlight)
		}
		if ok, err := db.FinishRow(ctx, r.ID, a, RowResult{State: RowFailed}, nil); ok || err != nil {
			t.Fatalf("second FinishRow(%d) = %v, %v; want false", a, ok, err)
		}
		checkCounts(t, db, "a second FinishRow", r.ID, other.ID)
		if _, err := db.FinishRow(ctx, r.ID, b, RowResult{State: RowFailed, HTTPStatus: 422, Error: "no"}, nil); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, db, "FinishRow failed", r.ID, other.ID)

		// A snoozed row and a row in flight when the run is cancelled: the
		// first is skipped, the second stays in flight until it ends.
		if err := db.EndAttempt(ctx, r.ID, d, AttemptEnd{WaitingUntil: clock.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if err := db.BeginWrite(ctx, r.ID, e); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, db, "a snooze and a write", r.ID, other.ID)
		res, err := db.CancelRun(ctx, r.ID, Actor{ID: 2, Name: "Admin 2"}, "stop", nil)
		if err != nil {
			t.Fatal(err)
		}
		c := checkCounts(t, db, "CancelRun", r.ID, other.ID)
		if res.InFlight != 1 || c.InFlight != 1 || c.Queued != 1 || c.Waiting != 0 || c.Skipped != res.Skipped {
			t.Errorf("after CancelRun %+v (cancel said %+v), want the one row in flight queued and the rest skipped", c, res)
		}
		if _, err := db.FinishRow(ctx, r.ID, e, RowResult{State: RowDone}, nil); err != nil {
			t.Fatal(err)
		}
		if c := checkCounts(t, db, "FinishRow after the cancel", r.ID, other.ID); c.Remaining() != 0 || c.InFlight != 0 {
			t.Errorf("after the last row %+v, want nothing left", c)
		}

		// Deletes: one row, then the run with its rows.
		if _, err := db.exec(ctx, `DELETE FROM bulk_rows WHERE run_id = ? AND number IN (?, ?)`, r.ID, a, 4); err != nil {
			t.Fatal(err)
		}
		if c := checkCounts(t, db, "deleting rows", r.ID, other.ID); c.Total != 22 {
			t.Errorf("Total after deleting 2 rows = %d, want 22", c.Total)
		}
		if _, err := db.exec(ctx, `DELETE FROM bulk_runs WHERE id = ?`, r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.RunCounts(ctx, r.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("RunCounts of a deleted run: %v, want ErrNotFound", err)
		}
		if n := mustCount(t, db, `SELECT COUNT(*) FROM bulk_run_counts WHERE run_id = ?`, r.ID); n != 0 {
			t.Errorf("a deleted run left %d counter rows", n)
		}
		if c := checkCounts(t, db, "deleting the other run", other.ID); c.Total != 9 {
			t.Errorf("other run's Total = %d, want 9", c.Total)
		}
	})
}

// TestRunCountsBackfill stores runs, then takes migration 0004 back as if it
// had never run and opens the database again: the migration counts the
// rows already there.
func TestRunCountsBackfill(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		ctx := t.Context()
		r := newTestRun(t, db, 1, 30)
		rows := mustStartRun(t, db, r.ID)
		if err := db.BeginWrite(ctx, r.ID, rows[0]); err != nil {
			t.Fatal(err)
		}
		if err := db.EndAttempt(ctx, r.ID, rows[1], AttemptEnd{WaitingUntil: time.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.FinishRow(ctx, r.ID, rows[2], RowResult{State: RowFailed}, nil); err != nil {
			t.Fatal(err)
		}
		preview := newTestRun(t, db, 2, 10)
		if err := db.SetRowPreflight(ctx, preview.ID, map[int]string{2: "gone", 3: "gone"}); err != nil {
			t.Fatal(err)
		}
		empty := &Run{AdminID: 3, Kind: "rate"}
		if err := db.CreateRun(ctx, empty); err != nil {
			t.Fatal(err)
		}
		want := map[int64]RunCounts{}
		for _, id := range []int64{r.ID, preview.ID, empty.ID} {
			want[id] = recountRows(t, db, id)
		}

		undo := []string{`DROP TABLE bulk_run_counts`, `DROP INDEX bulk_rows_errors`}
		if db.Dialect() == "postgres" {
			undo = append(undo, `DROP FUNCTION bulk_rows_counts() CASCADE`, `DROP FUNCTION bulk_runs_counts_insert() CASCADE`)
		} else {
			undo = append(undo, `DROP TRIGGER bulk_runs_counts_insert`, `DROP TRIGGER bulk_rows_counts_insert`,
				`DROP TRIGGER bulk_rows_counts_update`, `DROP TRIGGER bulk_rows_counts_delete`)
		}
		undo = append(undo, `DELETE FROM schema_migrations WHERE version = '0004_run_counts'`)
		for _, q := range undo {
			if _, err := db.exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		// A row changing while the counts are gone must be counted too.
		if _, err := db.exec(ctx, `UPDATE bulk_rows SET state = ? WHERE run_id = ? AND number = ?`, RowDone, r.ID, rows[3]); err != nil {
			t.Fatal(err)
		}
		want[r.ID] = recountRows(t, db, r.ID)

		again := mustOpen(t, dsn, Options{})
		for id, w := range want {
			if diff := cmp.Diff(w, mustRunCounts(t, again, id)); diff != "" {
				t.Errorf("run %d after the backfill (-recount +RunCounts):\n%s", id, diff)
			}
		}
		checkCounts(t, again, "the backfill", r.ID, preview.ID, empty.ID)
		if c := want[r.ID]; c.InFlight != 1 || c.Waiting != 1 || c.Failed != 1 || c.Done != 1 {
			t.Errorf("the backfilled run %+v lacks a row in flight, waiting, failed and done", c)
		}
		// The triggers are back.
		if _, err := again.FinishRow(ctx, r.ID, rows[0], RowResult{State: RowDone}, nil); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, again, "FinishRow after the backfill", r.ID)
	})
}

// TestRunCountsConcurrentWorkers has many workers end the rows of one run at
// once (claim, send gate, some snoozed once, finish), with a second
// queue-less run's rows changing alongside and a cancel cutting in: no
// statement may deadlock or fail, and at the end RunCounts equals a
// recount. On PostgreSQL every worker updates the same counter row from its
// own transaction while the cancel updates it from a multi-row statement.
func TestRunCountsConcurrentWorkers(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		ctx := t.Context()
		r := newTestRun(t, db, 1, 600)
		rows := mustStartRun(t, db, r.ID)
		other := newTestRun(t, db, 2, 60)
		otherRows := mustStartRun(t, db, other.ID)

		const workers = 16
		work := make(chan int)
		var wg sync.WaitGroup
		errs := make(chan error, workers+2)
		for range workers {
			wg.Go(func() {
				for n := range work {
					if err := workRow(ctx, db, r.ID, n); err != nil {
						errs <- err
						for range work {
						}
						return
					}
				}
			})
		}
		wg.Go(func() {
			for _, n := range otherRows {
				if err := workRow(ctx, db, other.ID, n); err != nil {
					errs <- err
					return
				}
			}
		})
		half := make(chan struct{})
		wg.Go(func() {
			<-half
			if _, err := db.CancelRun(ctx, r.ID, Actor{ID: 2, Name: "Admin 2"}, "stop", nil); err != nil {
				errs <- fmt.Errorf("CancelRun: %w", err)
			}
		})
		for i, n := range rows {
			if i == len(rows)/2 {
				close(half) // cancel while workers are busy
			}
			work <- n
		}
		close(work)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		c := checkCounts(t, db, "concurrent workers and a cancel", r.ID, other.ID)
		if c.Done+c.Failed == 0 || c.Remaining() != 0 || c.InFlight != 0 {
			t.Errorf("counts at the end %+v: want rows ended by workers and none left", c)
		}
		if o := mustRunCounts(t, db, other.ID); o.Done+o.Failed != len(otherRows) {
			t.Errorf("other run %+v: want all %d rows ended", o, len(otherRows))
		}
	})
}

// workRow does to row n what a worker does: claim, send gate, for every
// third row a 429 snooze and a second try, then the row's end. A row the
// send gate stops is skipped, as the engine does after a cancel (if the
// cancel skipped it first, that does nothing).
func workRow(ctx context.Context, db *DB, runID int64, n int) error {
	if _, _, err := db.ClaimRow(ctx, runID, n); err != nil {
		return err
	}
	for try := 0; ; try++ {
		if err := db.BeginWrite(ctx, runID, n); errors.Is(err, ErrConflict) {
			_, err := db.FinishRow(ctx, runID, n, RowResult{State: RowSkipped, Error: "stop"}, nil)
			return err
		} else if err != nil {
			return err
		}
		if n%3 != 0 || try > 0 {
			break
		}
		if err := db.EndAttempt(ctx, runID, n, AttemptEnd{WaitingUntil: time.Now().Add(time.Second)}); err != nil {
			return err
		}
	}
	state := RowDone
	if n%7 == 0 {
		state = RowFailed
	}
	if _, err := db.FinishRow(ctx, runID, n, RowResult{State: state}, nil); err != nil {
		return err
	}
	return nil
}

func TestSplitStatementsBodies(t *testing.T) {
	t.Parallel()
	body := `CREATE TABLE a (x INTEGER);
CREATE TRIGGER a_ins AFTER INSERT ON a
BEGIN
	UPDATE b SET n = n + 1;
	UPDATE c SET n = n + 1;
END;
CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE b SET n = n + 1;
	RETURN NULL;
END
$$;
-- a comment naming $$ and BEGIN
CREATE TRIGGER f AFTER INSERT ON a FOR EACH STATEMENT EXECUTE FUNCTION f();
`
	want := []string{
		"CREATE TABLE a (x INTEGER);",
		"CREATE TRIGGER a_ins AFTER INSERT ON a\nBEGIN\n\tUPDATE b SET n = n + 1;\n\tUPDATE c SET n = n + 1;\nEND;",
		"CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n\tUPDATE b SET n = n + 1;\n\tRETURN NULL;\nEND\n$$;",
		"-- a comment naming $$ and BEGIN\nCREATE TRIGGER f AFTER INSERT ON a FOR EACH STATEMENT EXECUTE FUNCTION f();",
	}
	if diff := cmp.Diff(want, splitStatements(body)); diff != "" {
		t.Errorf("splitStatements (-want +got):\n%s", diff)
	}
}

// TestOnlyErrorsUsesIndex checks that both planners find a run's error rows
// (and its rows with a pre-flight error) through the partial index
// bulk_rows_errors, whose predicate a query must repeat word for word (with
// literals) for SQLite to use it: without it, the first errors of a clean
// 100,000-row preview meant reading every row.
func TestOnlyErrorsUsesIndex(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		r := newTestRun(t, db, 1, 300)
		if _, err := db.exec(t.Context(), `ANALYZE`); err != nil {
			t.Fatal(err)
		}
		tx, err := db.db.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		explain, col := `EXPLAIN QUERY PLAN `, 3 // id, parent, notused, detail
		if db.Dialect() == "postgres" {
			explain, col = `EXPLAIN `, 0
			// A test run is small enough to read whole; what matters is
			// that the planner may use the index at all.
			if _, err := tx.ExecContext(t.Context(), `SET LOCAL enable_seqscan = off`); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range []RowFilter{{OnlyErrors: true}, {OnlyPreflightErrors: true}} {
			cond, args := rowWhere(r.ID, f)
			rows, err := tx.QueryContext(t.Context(), db.dialect.rebind(explain+`SELECT `+rowColumns+` FROM bulk_rows`+cond+
				` ORDER BY number LIMIT ? OFFSET ?`), append(args, 200, 0)...)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for rows.Next() {
				cols, _ := rows.Columns()
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, fmt.Sprint(vals[col]))
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(plan, "\n"), "bulk_rows_errors") {
				t.Errorf("the query for a run's rows %+v does not use bulk_rows_errors:\n%s", f, strings.Join(plan, "\n"))
			}
		}
	})
}

// TestPreflightAndRemapInChunks pre-flights and remaps a run bigger than
// rowUpdateChunk, so their batched UPDATEs cross chunk boundaries: every
// row gets its own values, and the counts follow.
func TestPreflightAndRemapInChunks(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		ctx := t.Context()
		n := 2*rowUpdateChunk + 3
		r := newTestRun(t, db, 1, n) // rows 2..n+1
		errs := map[int]string{}
		for num := 2; num <= n+1; num++ {
			if num%4 != 0 {
				errs[num] = fmt.Sprintf("row %d would fail", num)
			}
		}
		if err := db.SetRowPreflight(ctx, r.ID, errs); err != nil {
			t.Fatal(err)
		}
		if c := checkCounts(t, db, "a big SetRowPreflight", r.ID); c.PreflightErrors != len(errs) {
			t.Errorf("PreflightErrors = %d, want %d", c.PreflightErrors, len(errs))
		}
		err := db.EachRunRow(ctx, r.ID, func(row RunRow) error {
			if row.PreflightError != errs[row.Number] {
				t.Errorf("row %d: pre-flight error %q, want %q", row.Number, row.PreflightError, errs[row.Number])
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

		// Remapped: the rows turn valid but every seventh, with a new key.
		if err := db.RemapRun(ctx, r.ID, map[string]int{"user": 0}, func(old RunRow) RemapRow {
			return RemapRow{Valid: old.Number%7 != 0, Action: fmt.Appendf(nil, `{"Ticket":%d}`, old.Number),
				Key: fmt.Sprintf("k%d", old.Number), Duplicate: old.Number%11 == 0, Errors: []string{fmt.Sprint(old.Number)}}
		}); err != nil {
			t.Fatal(err)
		}
		c := checkCounts(t, db, "a big RemapRun", r.ID)
		if c.PreflightErrors != 0 || c.Invalid != (n+1)/7 {
			t.Errorf("after RemapRun %+v, want no pre-flight error and %d invalid", c, (n+1)/7)
		}
		err = db.EachRunRow(ctx, r.ID, func(row RunRow) error {
			want := RunRow{Valid: row.Number%7 != 0, Key: fmt.Sprintf("k%d", row.Number), Duplicate: row.Number%11 == 0,
				Errors: []string{fmt.Sprint(row.Number)}, State: RowPending, Action: fmt.Appendf(nil, `{"Ticket":%d}`, row.Number)}
			if !want.Valid {
				want.State = RowInvalid
			}
			got := RunRow{Valid: row.Valid, Key: row.Key, Duplicate: row.Duplicate, Errors: row.Errors, State: row.State, Action: row.Action}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("row %d after RemapRun (-want +got):\n%s", row.Number, diff)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestCountRowsByStateSumsTheRuns checks the metrics' count of rows by
// state across all runs, read from the per-run counters, against a full
// count of the rows.
func TestCountRowsByStateSumsTheRuns(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		a, b := newTestRun(t, db, 1, 9), newTestRun(t, db, 2, 5)
		mustStartRun(t, db, a.ID)
		if _, err := db.FinishRow(t.Context(), a.ID, 2, RowResult{State: RowDone}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := db.FinishRow(t.Context(), a.ID, 3, RowResult{State: RowFailed, Error: "no"}, nil); err != nil {
			t.Fatal(err)
		}
		got, err := db.CountRowsByState(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{}
		for _, id := range []int64{a.ID, b.ID} {
			c := recountRows(t, db, id)
			want[RowInvalid] += c.Invalid
			want[RowPending] += c.Pending
			want[RowQueued] += c.Queued
			want[RowDone] += c.Done
			want[RowFailed] += c.Failed
			want[RowSkipped] += c.Skipped
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("CountRowsByState (-recount +got):\n%s", diff)
		}
	})
}
