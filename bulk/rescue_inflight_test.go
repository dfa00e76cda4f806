package bulk

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testpg"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// TestRescueDoesNotResendAWriteStillInFlight: engine X sends a row's rating
// and Zendesk holds the call (a gate, before it is applied). X then looks
// dead to engine Y (its heartbeat stops and its last one is made an hour
// old), and Y's heartbeat rescue takes X's job back while X's write is
// still unanswered. Y's re-check cannot see the held write, so Y must not
// send the row at all until the write timeout has passed since X's write
// began: it hands the job back for that long, counting nothing. Once the
// held write is let go, the ticket is rated exactly once and the row ends
// done once, with the one attempt X made.
func TestRescueDoesNotResendAWriteStillInFlight(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		rescueWhileInFlight(t, newEngineEnv(t, sandbox.Options{RateLimit: 6000, RateBurst: 100}))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := testpg.Database(t, "onbehalf_rescue")
		rescueWhileInFlight(t, newEngineEnvOn(t, sandbox.Options{RateLimit: 6000, RateBurst: 100}, dsn))
	})
}

func rescueWhileInFlight(t *testing.T, env *engineEnv) {
	tc := crashWindowCases()["rate"]
	run := env.mustImport(t, tc.kind, tc.csv)
	gate := sandbox.NewGate(func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/satisfaction_rating")
	})
	env.sb.SetHooks(sandbox.Hooks{BeforeCall: gate.BeforeCall})
	t.Cleanup(gate.Release)

	// A write timeout (half the job timeout) far longer than the test
	// needs: X's held write stays unanswered, not given up, throughout.
	const jobTimeout = 60 * time.Second
	// X has one worker, busy with the held write: the job taken back
	// goes to Y.
	x := env.newEngine(t, 6000, func(c *Config) {
		c.JobTimeout = jobTimeout
		c.Workers = 1
	})
	if err := x.Confirm(t.Context(), run.ID, env.admin, env.grant.ID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := gate.WaitHeld(ctx, 1); err != nil {
		t.Fatalf("X's rating write never reached Zendesk: %v", err)
	}
	if row, _ := env.db.FindRunRow(t.Context(), run.ID, 2); !row.InFlight {
		t.Fatalf("X's row is not in flight while its write is held: %+v", row)
	}

	y := env.newEngine(t, 6000, func(c *Config) {
		c.JobTimeout = jobTimeout
		c.RescueStuckJobsAfter = 2 * time.Second
	})
	// X goes silent: its heartbeat stops, and its last one is an hour old.
	x.stopBeat(t.Context(), false)
	backdate, jobQuery := `UPDATE bulk_workers SET seen_at = seen_at - 3600000000 WHERE id = ?`,
		`SELECT state, (SELECT group_concat(value) FROM json_each(attempted_by)) FROM river_job WHERE kind = 'onbehalf_bulk_row'`
	if env.db.Dialect() == "postgres" {
		backdate, jobQuery = strings.Replace(backdate, "?", "$1", 1),
			`SELECT state, array_to_string(attempted_by, ',') FROM river_job WHERE kind = 'onbehalf_bulk_row'`
	}
	if _, err := env.db.SQL().ExecContext(t.Context(), backdate, x.id); err != nil {
		t.Fatal(err)
	}

	// Wait until Y has had the job taken back: either it sent the row
	// again (a second rating call at the gate) or it handed the job back
	// (snoozed) without sending.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if gate.Seen() >= 2 {
			t.Log("Y sent the row again while X's write was held")
			break
		}
		var state, by string
		err := env.db.SQL().QueryRowContext(t.Context(), jobQuery).Scan(&state, &by)
		if err != nil {
			t.Fatal(err)
		}
		if attempts := strings.Split(by, ","); state == "scheduled" && attempts[len(attempts)-1] == y.id {
			t.Log("Y handed the job back without sending")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Y never had the job of silent X (job %s, attempted by %s)", state, by)
		}
		time.Sleep(20 * time.Millisecond)
	}
	gate.Release()
	waitRun(t, env.db, run.ID, 60*time.Second, store.RunDone)

	if n := ratingWrites(t, env.sb)[sandbox.TicketBeauSolved]; n != 1 {
		t.Errorf("the ticket was rated %d times, want exactly once", n)
	}
	row, err := env.db.FindRunRow(t.Context(), run.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if row.State != store.RowDone || row.Attempts != 1 || row.Failures != 0 || row.InFlight {
		t.Errorf("row ended %s with %d attempts, %d failures (in flight %v), want done with X's one attempt and no failure",
			row.State, row.Attempts, row.Failures, row.InFlight)
	}
	if c, _ := env.db.RunCounts(t.Context(), run.ID); c.Done != 1 || c.Failed+c.Skipped != 0 {
		t.Errorf("run counts %+v, want the one row done once", c)
	}
}
