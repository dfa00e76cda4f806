package store

import (
	"slices"
	"testing"
	"time"
)

// TestUnusedGrants checks, on both databases, which grants the sweep may
// take: none that a live session or an unfinished run uses, none younger
// than the cut-off, and each of the others.
func TestUnusedGrants(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		s := db.SessionStore(SessionOptions{})
		far := clock.Now().Add(24 * time.Hour)
		live := newTestGrant(t, db, 1, far)    // a live session uses it
		expired := newTestGrant(t, db, 2, far) // its session has expired
		running := newTestGrant(t, db, 3, far) // an unfinished run uses it
		done := newTestGrant(t, db, 4, far)    // only a finished run uses it
		orphan := newTestGrant(t, db, 5, far)  // nothing uses it

		newTestSession(t, s, map[any]any{SessionAdminKey: int64(1), SessionGrantKey: live.ID})
		newTestSession(t, s, map[any]any{SessionAdminKey: int64(2), SessionGrantKey: expired.ID})
		if _, err := db.exec(t.Context(), `UPDATE sessions SET expires_at = 1 WHERE grant_id = ?`, expired.ID); err != nil {
			t.Fatal(err)
		}
		for _, g := range []*Grant{running, done} {
			r := newTestRun(t, db, g.AdminID, 3)
			if _, err := db.exec(t.Context(), `UPDATE bulk_runs SET grant_id = ? WHERE id = ?`, g.ID, r.ID); err != nil {
				t.Fatal(err)
			}
			if g == done {
				if _, err := db.SetRunState(t.Context(), r.ID, []string{RunPreview}, RunCancelled, "test"); err != nil {
					t.Fatal(err)
				}
			}
		}

		if ids, err := db.ListUnusedGrants(t.Context(), clock.Now().Add(-time.Minute), 100); err != nil || len(ids) != 0 {
			t.Errorf("grants younger than the cut-off: %v (err %v), want none", ids, err)
		}
		clock.Add(2 * time.Minute)
		ids, err := db.ListUnusedGrants(t.Context(), clock.Now().Add(-time.Minute), 100)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int64{expired.ID, done.ID, orphan.ID}; !slices.Equal(ids, want) {
			t.Errorf("unused grants = %v, want %v (live %d, running %d)", ids, want, live.ID, running.ID)
		}
		if ok, err := db.DeleteUnusedGrant(t.Context(), live.ID); ok || err != nil {
			t.Errorf("DeleteUnusedGrant(live) = %v, %v; want false, nil", ok, err)
		}
		if ok, err := db.DeleteUnusedGrant(t.Context(), orphan.ID); !ok || err != nil {
			t.Errorf("DeleteUnusedGrant(orphan) = %v, %v; want true, nil", ok, err)
		}
	})
}
