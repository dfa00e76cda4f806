package store

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFindRunMinutes(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		var mu sync.Mutex
		now := time.Date(2026, 3, 1, 9, 0, 30, 0, time.UTC)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
		db := mustOpen(t, dsn, Options{Now: clock})
		r := newTestRun(t, db, 1, 6) // rows 2..7; 4 and 7 invalid
		mustStartRunBy(t, db, r.ID, func(row RunRow) string { return string(rune('a' + row.Number)) })
		finish := func(at time.Time, number int, state string) {
			t.Helper()
			set(at)
			if ok, err := db.FinishRow(t.Context(), r.ID, number, RowResult{State: state}, nil); !ok || err != nil {
				t.Fatalf("FinishRow(%d) = %v, %v", number, ok, err)
			}
		}
		m0 := time.Date(2026, 3, 1, 9, 1, 0, 0, time.UTC)
		finish(m0.Add(5*time.Second), 2, RowDone)
		finish(m0.Add(59*time.Second), 3, RowFailed)
		finish(m0.Add(3*time.Minute), 5, RowDone)
		finish(m0.Add(3*time.Minute+time.Second), 6, RowSkipped)

		got, err := db.FindRunMinutes(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := []RunMinute{
			{Start: m0, Done: 1, Failed: 1},
			{Start: m0.Add(3 * time.Minute), Done: 1, Skipped: 1},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("minutes (-want +got):\n%s", diff)
		}
	})
}
