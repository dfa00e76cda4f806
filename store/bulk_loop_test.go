package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStartRunSkipsRefusedRows checks that confirming a run set to skip the
// rows the pre-flight found Zendesk would refuse skips them, with the
// reason, in the confirmation, so none is queued; and that a run not set
// so queues them all.
func TestStartRunSkipsRefusedRows(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		for _, skip := range []bool{true, false} {
			r := newTestRun(t, db, 1, 6) // rows 2..7; 4 and 7 invalid
			if err := db.SetRowPreflight(t.Context(), r.ID, map[int]string{3: "Ticket #101 is closed."}); err != nil {
				t.Fatal(err)
			}
			if err := db.SetSkipRefused(t.Context(), r.ID, skip); err != nil {
				t.Fatal(err)
			}
			queued := mustStartRun(t, db, r.ID)
			row := mustFindRunRow(t, db, r.ID, 3)
			if skip {
				if row.State != RowSkipped || row.Error != RefusedAtPreflightNote+"Ticket #101 is closed." {
					t.Errorf("skip: row 3 is %s %q, want skipped with the pre-flight's reason", row.State, row.Error)
				}
				if slices.Contains(queued, 3) || !slices.Equal(queued, []int{2, 5, 6}) {
					t.Errorf("skip: queued %v, want 2, 5 and 6", queued)
				}
				if c := mustRunCounts(t, db, r.ID); c.Skipped != 1 || c.Queued != 3 {
					t.Errorf("skip: counts %+v, want 1 skipped and 3 queued", c)
				}
			} else if row.State != RowQueued || !slices.Contains(queued, 3) {
				t.Errorf("send all: row 3 is %s (queued %v), want it queued", row.State, queued)
			}
		}
		// Once confirmed, the choice cannot change.
		r := newTestRun(t, db, 1, 3)
		mustStartRun(t, db, r.ID)
		if err := db.SetSkipRefused(t.Context(), r.ID, true); !errors.Is(err, ErrConflict) {
			t.Errorf("SetSkipRefused on a confirmed run: %v, want ErrConflict", err)
		}
	})
}

// TestRecheckRunKindScoresAndLeftOut checks RecheckRun: a left-out row
// becomes skipped with its sentence and counts among the rows not sent; the
// kind and score map are stored with the run; a second re-check brings the
// row back.
func TestRecheckRunKindScoresAndLeftOut(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		r := newTestRun(t, db, 1, 4) // rows 2..5; 4 invalid
		redo := func(leaveOut int) func(RunRow) RemapRow {
			return func(old RunRow) RemapRow {
				if old.Number == leaveOut {
					return RemapRow{LeftOut: "Left out: the score mapping leaves \"3\" out."}
				}
				return RemapRow{Valid: true, Action: []byte(`{"User":"x@example.com","Ticket":1,"Score":"good"}`), Key: fmt.Sprint("k", old.Number)}
			}
		}
		spec := RecheckSpec{Kind: "comment", Mapping: map[string]int{"user": 0}, ScoreMap: map[string]string{"5": "good", "3": ""}, SetScoreMap: true}
		if err := db.RecheckRun(t.Context(), r.ID, spec, redo(3)); err != nil {
			t.Fatal(err)
		}
		got, _ := db.FindRunByID(t.Context(), r.ID)
		if got.Kind != "comment" || got.ScoreMap["5"] != "good" || got.ScoreMap["3"] != "" || len(got.ScoreMap) != 2 {
			t.Errorf("run after re-check: kind %s, score map %v", got.Kind, got.ScoreMap)
		}
		if got.Valid != 3 || got.Invalid != 1 {
			t.Errorf("run counts %d valid, %d not sent; want 3 and 1", got.Valid, got.Invalid)
		}
		row := mustFindRunRow(t, db, r.ID, 3)
		if row.State != RowSkipped || row.Valid || !strings.HasPrefix(row.Error, "Left out") {
			t.Errorf("left-out row: %s valid=%v %q", row.State, row.Valid, row.Error)
		}
		if c := mustRunCounts(t, db, r.ID); c.Skipped != 1 || c.Pending != 3 || c.Invalid != 0 {
			t.Errorf("counts %+v, want 1 skipped, 3 pending", c)
		}
		if err := db.RecheckRun(t.Context(), r.ID, RecheckSpec{Mapping: map[string]int{"user": 0}}, redo(0)); err != nil {
			t.Fatal(err)
		}
		row = mustFindRunRow(t, db, r.ID, 3)
		if row.State != RowPending || row.Error != "" {
			t.Errorf("row back in: %s %q, want pending with no error", row.State, row.Error)
		}
		if got, _ := db.FindRunByID(t.Context(), r.ID); len(got.ScoreMap) != 2 {
			t.Errorf("a re-check without SetScoreMap changed the score map: %v", got.ScoreMap)
		}
	})
}

// TestRepeatedRowsDiscardExpire checks the warnings and the clean-up of
// previews: a preview's rows already done in an earlier run are counted
// per run (same key and action only); a preview can be discarded and old
// previews expire, confirmed runs never.
func TestRepeatedRowsDiscardExpire(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		sent := newTestRun(t, db, 1, 6) // rows 2..7; 4 and 7 invalid
		mustStartRun(t, db, sent.ID)
		for _, n := range []int{2, 3, 5} {
			if _, err := db.FinishRow(t.Context(), sent.ID, n, RowResult{State: RowDone, HTTPStatus: 200}, nil); err != nil {
				t.Fatal(err)
			}
		}
		clock.Add(time.Hour)
		again := newTestRun(t, db, 1, 6)
		reps, err := db.RepeatedRows(t.Context(), again.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(reps) != 1 || reps[0].RunID != sent.ID || reps[0].Rows != 3 || reps[0].FileName != "ratings.csv" {
			t.Errorf("repeats %+v, want 3 rows of run %d", reps, sent.ID)
		}
		// A different action on the same target is no repeat.
		if _, err := db.exec(t.Context(), `UPDATE bulk_rows SET action = ? WHERE run_id = ? AND number = 2`,
			`{"User":"u0@example.com","Ticket":100,"Score":"bad"}`, again.ID); err != nil {
			t.Fatal(err)
		}
		if reps, _ := db.RepeatedRows(t.Context(), again.ID); len(reps) != 1 || reps[0].Rows != 2 {
			t.Errorf("after changing row 2's score: repeats %+v, want 2 rows", reps)
		}
		if err := db.DiscardPreview(t.Context(), again.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.FindRunByID(t.Context(), again.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("discarded run: %v, want ErrNotFound", err)
		}
		if n := mustCount(t, db, `SELECT COUNT(*) FROM bulk_rows WHERE run_id = ?`, again.ID); n != 0 {
			t.Errorf("%d rows of the discarded run remain", n)
		}
		if err := db.DiscardPreview(t.Context(), sent.ID); !errors.Is(err, ErrConflict) {
			t.Errorf("discarding a confirmed run: %v, want ErrConflict", err)
		}
		old := newTestRun(t, db, 1, 2)
		clock.Add(8 * 24 * time.Hour)
		fresh := newTestRun(t, db, 1, 2)
		n, err := db.ExpirePreviews(t.Context(), clock.Now().Add(-7*24*time.Hour))
		if err != nil || n != 1 {
			t.Errorf("ExpirePreviews = %d, %v; want 1", n, err)
		}
		if _, err := db.FindRunByID(t.Context(), old.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("week-old preview: %v, want gone", err)
		}
		for _, id := range []int64{fresh.ID, sent.ID} {
			if _, err := db.FindRunByID(t.Context(), id); err != nil {
				t.Errorf("run %d went with the old previews: %v", id, err)
			}
		}
	})
}
