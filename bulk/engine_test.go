package bulk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

func TestEngineRunsRatingsEndToEnd(t *testing.T) {
	t.Parallel()
	env := newEngineEnv(t, sandbox.Options{Data: sandbox.Generate(1, 60, 200), RateLimit: 6000, RateBurst: 100,
		Faults: sandbox.Faults{Latency: 20 * time.Millisecond}})
	tickets := rateableTickets(t, env.sb, 101, 300, 40)
	csv := ratingCSV(t, env.sb, tickets)
	// Permanent refusals: a closed ticket, a ticket rated by someone who is
	// not its requester, and an invalid row that never runs.
	closed, other := findTicket(t, env.sb, "closed"), tickets[0]
	closedUser, _ := env.sb.UserByID(closed.RequesterID)
	notRequester := sandbox.GeneratedUserEmail(int(tickets[1].RequesterID - sandbox.GeneratedFirstUserID))
	csv += fmt.Sprintf("%s,%d,good,closed\n", closedUser.Email, closed.ID)
	csv += fmt.Sprintf("%s,%d,good,wrong user\n", notRequester, other.ID)
	csv += "nobody,12,great,invalid\n"
	run := env.mustImport(t, actions.KindRate, csv)
	if run.Total != 43 || run.Valid != 42 || run.Invalid != 1 {
		t.Fatalf("imported %d rows (%d valid, %d invalid), want 43/42/1", run.Total, run.Valid, run.Invalid)
	}
	e := env.newEngine(t, 6000, nil)
	if err := e.Confirm(t.Context(), run.ID, env.admin, 0); err != nil {
		t.Fatalf("Confirm: %v", err)
	}
	if err := e.Confirm(t.Context(), run.ID, env.admin, 0); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second Confirm = %v, want ErrConflict", err)
	}
	waitRun(t, env.db, run.ID, 60*time.Second, store.RunDone)

	c, _ := env.db.RunCounts(t.Context(), run.ID)
	// Row 3 (tickets[1]) may be rated by row 2's duplicate "wrong user" row:
	// exactly the two refusals fail.
	if c.Done != 40 || c.Failed != 2 || c.Invalid != 1 || c.Remaining() != 0 {
		t.Errorf("counts = %+v, want 40 done, 2 failed, 1 invalid", c)
	}
	rows := mustRows(t, env.db, run.ID)
	for _, r := range rows {
		switch {
		case r.State == store.RowFailed && r.Error == "":
			t.Errorf("row %d failed without a reason", r.Number)
		case r.State == store.RowDone && (r.ZendeskID == 0 || r.HTTPStatus != 200):
			t.Errorf("done row %d has Zendesk id %d status %d", r.Number, r.ZendeskID, r.HTTPStatus)
		}
	}
	if r := rows[40]; r.State != store.RowFailed || !strings.Contains(r.Error, "closed") {
		t.Errorf("closed-ticket row = %s %q, want failed naming the closed ticket", r.State, r.Error)
	}
	if r := rows[41]; r.State != store.RowFailed || !strings.Contains(strings.ToLower(r.Error), "requester") {
		t.Errorf("not-requester row = %s %q, want failed naming the requester", r.State, r.Error)
	}

	writes := ratingWrites(t, env.sb)
	for _, tk := range tickets {
		if writes[tk.ID] != 1 {
			t.Errorf("ticket %d rated %d times, want once", tk.ID, writes[tk.ID])
		}
	}
	if writes[closed.ID] != 0 {
		t.Errorf("closed ticket got %d rating writes", writes[closed.ID])
	}
	audit := runAudit(t, env.db, run.ID)
	if len(audit) != 42 {
		t.Errorf("%d audit rows for 42 valid rows, want exactly one each", len(audit))
	}
	perTicket := map[int64]int{}
	for _, ev := range audit {
		perTicket[ev.TicketID]++
	}
	for _, tk := range tickets[2:] {
		if perTicket[tk.ID] != 1 {
			t.Errorf("ticket %d has %d audit rows, want 1", tk.ID, perTicket[tk.ID])
		}
	}
	// Batched reads: about 1.02 calls per row plus the failures' reads.
	st := env.sb.Stats()
	total := 0
	for _, n := range st.Calls {
		total += n
	}
	if total > 42+10 {
		t.Errorf("%d Zendesk calls for 42 rows: lookups are not batched (%v)", total, st.Calls)
	}

	p, err := e.Progress(t.Context(), run.ID)
	if err != nil || p.ETA != 0 || p.Counts.Done != 40 {
		t.Errorf("Progress of a done run = %+v, %v", p, err)
	}
}

// findTicket returns the first sandbox ticket with status whose requester
// is a verified, active end user.
func findTicket(t testing.TB, sb *sandbox.Server, status string) sandbox.Ticket {
	t.Helper()
	for id := int64(sandbox.GeneratedFirstTicketID); id < sandbox.GeneratedFirstTicketID+200; id++ {
		tk, ok := sb.TicketByID(id)
		if !ok || tk.Status != status {
			continue
		}
		if u, ok := sb.UserByID(tk.RequesterID); ok && u.Verified && !u.Suspended && u.Active {
			return tk
		}
	}
	t.Fatalf("no %s ticket", status)
	return sandbox.Ticket{}
}

func TestEngineRetryFailedAndPreflight(t *testing.T) {
	t.Parallel()
	env := newEngineEnv(t, sandbox.Options{Data: sandbox.Generate(2, 40, 120), RateLimit: 6000, RateBurst: 100})
	tickets := rateableTickets(t, env.sb, 101, 220, 6)
	closed := findTicket(t, env.sb, "closed")
	closedUser, _ := env.sb.UserByID(closed.RequesterID)
	csv := ratingCSV(t, env.sb, tickets) + fmt.Sprintf("%s,%d,good,x\n", closedUser.Email, closed.ID)
	run := env.mustImport(t, actions.KindRate, csv)
	e := env.newEngine(t, 6000, nil)

	env.sb.ResetStats()
	sum, err := e.Preflight(t.Context(), run.ID)
	if err != nil {
		t.Fatalf("Preflight: %v", err)
	}
	if sum.Checked != 7 || sum.Failing != 1 || len(sum.First) != 1 || sum.First[0].Number != 8 {
		t.Errorf("Preflight = %+v, want 7 checked, row 8 failing", sum)
	}
	if n := len(env.sb.Writes()); n != 0 {
		t.Errorf("Preflight made %d writes", n)
	}
	rows, _, _ := env.db.ListRunRows(t.Context(), run.ID, store.RowFilter{OnlyErrors: true})
	if len(rows) != 1 || !strings.Contains(rows[0].PreflightError, "closed") {
		t.Errorf("rows with pre-flight errors = %+v", rows)
	}

	if _, err := e.RetryFailed(t.Context(), run.ID, env.admin, env.grant.ID); !errors.Is(err, ErrNoFailedRows) {
		t.Errorf("RetryFailed before running = %v, want ErrNoFailedRows", err)
	}
	if err := e.Confirm(t.Context(), run.ID, env.admin, 0); err != nil {
		t.Fatal(err)
	}
	waitRun(t, env.db, run.ID, 30*time.Second, store.RunDone)
	retryID, err := e.RetryFailed(t.Context(), run.ID, env.admin, env.grant.ID)
	if err != nil {
		t.Fatalf("RetryFailed: %v", err)
	}
	retry, _ := env.db.FindRunByID(t.Context(), retryID)
	if retry.State != store.RunPreview || retry.RetryOf != run.ID || retry.Total != 1 || retry.Valid != 1 {
		t.Errorf("retry run = %+v, want a preview of the 1 failed row", retry)
	}
	rr := mustRows(t, env.db, retryID)
	if len(rr) != 1 || rr[0].Number != 8 || rr[0].State != store.RowPending {
		t.Errorf("retry rows = %+v, want row 8 pending", rr)
	}
}

func TestEngineCancel(t *testing.T) {
	t.Parallel()
	env := newEngineEnv(t, sandbox.Options{Data: sandbox.Generate(3, 60, 200), RateLimit: 6000, RateBurst: 100,
		Faults: sandbox.Faults{Latency: 100 * time.Millisecond}})
	tickets := rateableTickets(t, env.sb, 101, 300, 60)
	run := env.mustImport(t, actions.KindRate, ratingCSV(t, env.sb, tickets))
	e := env.newEngine(t, 6000, func(c *Config) { c.Workers = 2 })
	if err := e.Confirm(t.Context(), run.ID, env.admin, 0); err != nil {
		t.Fatal(err)
	}
	waitCounts(t, env.db, run.ID, 30*time.Second, "3 rows done", func(c store.RunCounts) bool { return c.Done >= 3 })
	if _, err := e.Cancel(t.Context(), run.ID, env.admin); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if _, err := e.Cancel(t.Context(), run.ID, env.admin); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second Cancel = %v, want ErrConflict", err)
	}
	c := waitCounts(t, env.db, run.ID, 30*time.Second, "no row left", func(c store.RunCounts) bool { return c.Remaining() == 0 })
	if c.Skipped == 0 || c.Done+c.Skipped != 60 || c.Failed != 0 {
		t.Errorf("counts after cancel = %+v, want done + skipped = 60", c)
	}
	// Rows skipped are not sent; rows done were sent once.
	time.Sleep(300 * time.Millisecond)
	writes := ratingWrites(t, env.sb)
	sent := 0
	for _, n := range writes {
		sent += n
	}
	c, _ = env.db.RunCounts(t.Context(), run.ID)
	if sent != c.Done {
		t.Errorf("%d ratings sent for %d rows done", sent, c.Done)
	}
	for _, r := range mustRows(t, env.db, run.ID) {
		if r.State == store.RowSkipped && r.Error != "Cancelled by Ada Admin." {
			t.Errorf("skipped row %d says %q", r.Number, r.Error)
		}
	}
	if got, _ := env.db.FindRunByID(t.Context(), run.ID); got.State != store.RunCancelled {
		t.Errorf("run = %s, want cancelled", got.State)
	}
}

// A run whose sign-in dies mid-run pauses until its admin logs in again,
// sending nothing meanwhile and failing no row, then finishes every row once
// on the new sign-in. The sign-in dies two ways: Zendesk revokes it (401,
// then invalid_grant on refresh), or a web request that found it dead also
// deleted its grant (and ended the admin's sessions); the run then finds
// the grant gone, which once failed every row left with an answer
// "onbehalf did not understand".
func TestEnginePausesOnADeadSignInAndResumes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		deleteToo bool
	}{{"revoked at Zendesk", false}, {"revoked and its grant deleted", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newEngineEnv(t, sandbox.Options{Data: sandbox.Generate(4, 60, 200), RateLimit: 6000, RateBurst: 100,
				Faults: sandbox.Faults{Latency: 50 * time.Millisecond}})
			tickets := rateableTickets(t, env.sb, 101, 300, 40)
			run := env.mustImport(t, actions.KindRate, ratingCSV(t, env.sb, tickets))
			e := env.newEngine(t, 6000, func(c *Config) { c.Workers = 2 })
			if err := e.Confirm(t.Context(), run.ID, env.admin, 0); err != nil {
				t.Fatal(err)
			}
			waitCounts(t, env.db, run.ID, 30*time.Second, "3 rows done", func(c store.RunCounts) bool { return c.Done >= 3 })
			env.sb.ExpireAccessToken(env.tokens[0].AccessToken)
			if tc.deleteToo {
				if err := env.db.DeleteGrant(t.Context(), env.grant.ID); err != nil {
					t.Fatal(err)
				}
			}

			paused := waitRun(t, env.db, run.ID, 30*time.Second, store.RunPaused, store.RunDone)
			if paused.State != store.RunPaused || !strings.Contains(paused.PausedReason, "Log in again") {
				t.Errorf("run %s (%q), want paused until the admin logs in again", paused.State, paused.PausedReason)
			}
			before, _ := env.db.RunCounts(t.Context(), run.ID)
			time.Sleep(600 * time.Millisecond) // several pause snoozes
			after, _ := env.db.RunCounts(t.Context(), run.ID)
			if after.Done != before.Done || after.Failed != 0 {
				t.Errorf("a paused run moved on, or failed rows: %+v -> %+v", before, after)
			}

			g := env.newGrant(t)
			ids, err := env.db.ResumeRunsForAdmin(t.Context(), env.admin.ID, g.ID)
			if err != nil || len(ids) != 1 || ids[0] != run.ID {
				t.Fatalf("ResumeRunsForAdmin = %v, %v", ids, err)
			}
			env.mustFinishEveryRowOnce(t, run.ID, 40, "after the new login")
		})
	}
}

func TestEngineFaults(t *testing.T) {
	t.Parallel()
	const limit = 1200
	env := newEngineEnv(t, sandbox.Options{Data: sandbox.Generate(5, 80, 260), Seed: 5, RateLimit: limit,
		Faults: sandbox.Faults{Latency: 20 * time.Millisecond, Rate429: 0.04, Burst429: 3, Rate503: 0.03,
			Rate5xx: 0.05, RetryAfter: time.Second}})
	tickets := rateableTickets(t, env.sb, 101, 360, 80)
	run := env.mustImport(t, actions.KindRate, ratingCSV(t, env.sb, tickets))
	e := env.newEngine(t, limit, nil)
	if err := e.Confirm(t.Context(), run.ID, env.admin, 0); err != nil {
		t.Fatal(err)
	}
	waitRun(t, env.db, run.ID, 120*time.Second, store.RunDone)
	c, _ := env.db.RunCounts(t.Context(), run.ID)
	if c.Done != 80 || c.Failed != 0 {
		for _, r := range mustRows(t, env.db, run.ID) {
			if r.State == store.RowFailed {
				t.Logf("row %d failed: %s", r.Number, r.Error)
			}
		}
		t.Errorf("counts = %+v, want all 80 done despite the faults", c)
	}
	st := env.sb.Stats()
	if st.Injected429+st.Injected503+st.Injected5xx == 0 {
		t.Fatal("no faults were injected; the test proves nothing")
	}
	if st.Throttled != 0 {
		t.Errorf("the sandbox's own limiter answered 429 %d times at a limit equal to ours", st.Throttled)
	}
	if e.Throttle().Stats().Observed429 == 0 && st.Injected429 > 0 {
		t.Error("the throttle did not observe the injected 429s")
	}
	for id, n := range ratingWrites(t, env.sb) {
		if n != 1 {
			t.Errorf("ticket %d rated %d times", id, n)
		}
	}
	t.Logf("faults: %d×429 %d×503 %d×5xx; throttle %+v", st.Injected429, st.Injected503, st.Injected5xx, e.Throttle().Stats())
}

func TestEngineGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	env := newEngineEnv(t, sandbox.Options{Data: sandbox.Generate(7, 20, 60), RateLimit: 6000, RateBurst: 100})
	tickets := rateableTickets(t, env.sb, 101, 160, 2)
	run := env.mustImport(t, actions.KindRate, ratingCSV(t, env.sb, tickets))
	env.sb.SetFaults(sandbox.Faults{Rate5xx: 1}) // every call: 500 or 502
	e := env.newEngine(t, 6000, func(c *Config) { c.retryBase = 10 * time.Millisecond })
	if err := e.Confirm(t.Context(), run.ID, env.admin, 0); err != nil {
		t.Fatal(err)
	}
	waitRun(t, env.db, run.ID, 60*time.Second, store.RunDone)
	for _, r := range mustRows(t, env.db, run.ID) {
		// Every read failed, so no write was ever sent: the row's
		// attempts (writes that may have reached Zendesk) stay 0, and the
		// job's attempts ran out instead.
		if r.State != store.RowFailed || r.Attempts != 0 || !strings.Contains(r.Error, "gave up") {
			t.Errorf("row %d = %s after %d writes: %q; want failed with no write sent, saying it gave up",
				r.Number, r.State, r.Attempts, r.Error)
		}
	}
	// Every row's first attempt reached Run and left a "failed" audit row;
	// later attempts stop at the re-check read, which fails too.
	audited := map[int64]bool{}
	for _, ev := range runAudit(t, env.db, run.ID) {
		if ev.Outcome != store.OutcomeFailed {
			t.Errorf("audit row for ticket %d says %s, want failed", ev.TicketID, ev.Outcome)
		}
		audited[ev.TicketID] = true
	}
	for _, tk := range tickets {
		if !audited[tk.ID] {
			t.Errorf("no audit row for ticket %d", tk.ID)
		}
	}
	if n := len(ratingWrites(t, env.sb)); n != 0 {
		t.Errorf("%d tickets rated although every call failed", n)
	}
}

func TestEngineStopThenRestart(t *testing.T) {
	t.Parallel()
	env := newEngineEnv(t, sandbox.Options{Data: sandbox.Generate(8, 60, 200), RateLimit: 6000, RateBurst: 100,
		Faults: sandbox.Faults{Latency: 300 * time.Millisecond}})
	tickets := rateableTickets(t, env.sb, 101, 300, 40)
	run := env.mustImport(t, actions.KindRate, ratingCSV(t, env.sb, tickets))
	e := env.newEngine(t, 6000, func(c *Config) { c.Workers = 5 })
	if err := e.Confirm(t.Context(), run.ID, env.admin, 0); err != nil {
		t.Fatal(err)
	}
	waitCounts(t, env.db, run.ID, 30*time.Second, "5 rows done", func(c store.RunCounts) bool { return c.Done >= 5 })
	// A deadline shorter than a call: the graceful stop runs out and the
	// rows in flight are cancelled.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	e.Stop(ctx)
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("Stop took %v", took)
	}
	stopped, _ := env.db.RunCounts(t.Context(), run.ID)
	if stopped.Remaining() == 0 {
		t.Fatal("the run finished before the stop; the test proves nothing")
	}
	env.newEngine(t, 6000, nil)
	env.mustFinishEveryRowOnce(t, run.ID, 40, "after restart")
}

// TestProgressETAKeepsToThePaceTheRunHasKept: a run that went slower than
// its rate limit (Zendesk made it wait) is not promised the limit's pace
// for the rest: a quarter of the rows took 50 s, so the other three
// quarters are estimated at about 150 s, not at the limit's second.
func TestProgressETAKeepsToThePaceTheRunHasKept(t *testing.T) {
	t.Parallel()
	env := newEngineEnv(t, sandbox.Options{Data: sandbox.Generate(26, 60, 300), RateLimit: 6000, RateBurst: 100})
	tickets := rateableTickets(t, env.sb, 101, 400, 100)
	run := env.mustImport(t, actions.KindRate, ratingCSV(t, env.sb, tickets))
	// The engine's clock is the run's start plus offset, so the time the
	// test itself takes does not count.
	var offset atomic.Int64
	var start atomic.Pointer[time.Time]
	e, err := NewEngine(t.Context(), Config{DB: env.db, ZendeskURL: env.sb.URL, RateLimit: 6000,
		Now: func() time.Time {
			if s := start.Load(); s != nil {
				return s.Add(time.Duration(offset.Load()))
			}
			return time.Now()
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Confirm(t.Context(), run.ID, env.admin, env.grant.ID); err != nil {
		t.Fatal(err)
	}
	confirmed, err := env.db.FindRunByID(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	start.Store(&confirmed.StartedAt)
	for n := 2; n < 2+25; n++ {
		if _, _, err := env.db.ClaimRow(t.Context(), run.ID, n); err != nil {
			t.Fatal(err)
		}
		if _, err := env.db.FinishRow(t.Context(), run.ID, n, store.RowResult{State: store.RowDone}, nil); err != nil {
			t.Fatal(err)
		}
	}
	p, err := e.Progress(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.ETA > 5*time.Second {
		t.Errorf("ETA at the start = %v, want the limit's pace (about a second)", p.ETA)
	}
	offset.Store(int64(50 * time.Second))
	p, err = e.Progress(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.ETA < 145*time.Second || p.ETA > 155*time.Second {
		t.Errorf("ETA after 25 rows in 50 s = %v, want about 150 s for the 75 left", p.ETA)
	}
}

// A replica keeps a run's shared state (its Zendesk client and its cache of
// users and tickets) only while its rows ask for it: a run that ended on
// another replica, which never calls forget here, must not be kept for the
// life of the process.
func TestRunStateUnusedOnThisReplicaIsDropped(t *testing.T) {
	t.Parallel()
	env := newEngineEnv(t, sandbox.Options{})
	const idle = time.Second
	e := env.newEngine(t, 600, func(c *Config) {
		c.runIdle = idle
		c.RescueStuckJobsAfter = time.Second // a round every 200 ms
	})
	run := env.mustImport(t, actions.KindRate, "email,ticket_id,score\nbea@example.com,1,good\n")
	held := func() (*runState, bool) {
		e.mu.Lock()
		defer e.mu.Unlock()
		rs, ok := e.runs[run.ID]
		return rs, ok
	}

	// Asked for more often than runIdle: kept, the same state each time.
	first, err := e.state(run)
	if err != nil {
		t.Fatal(err)
	}
	for range 25 { // 2.5 s, more than twice runIdle
		time.Sleep(100 * time.Millisecond)
		rs, err := e.state(run)
		if err != nil {
			t.Fatal(err)
		}
		if rs != first {
			t.Fatal("a run state in use was dropped and built again")
		}
	}

	// Then no row asks (the run ended on another replica): dropped.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := held(); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the state of run %d, unused for 10 s, is still held (runIdle %v)", run.ID, idle)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The rows of a chunk share one prefetch. When the row that started it
// stops waiting (its job's deadline, a cancel), the others still get the
// prefetch, not an error that would send them to one call per value.
func TestPrefetchOutlivesTheRowThatStartedIt(t *testing.T) {
	t.Parallel()
	env := newEngineEnv(t, sandbox.Options{})
	e := env.newEngine(t, 600, nil)
	tickets := rateableTickets(t, env.sb, 101, 200, 5)
	run := env.mustImport(t, actions.KindRate, ratingCSV(t, env.sb, tickets))
	gate := sandbox.NewGate(func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/tickets/show_many") })
	env.sb.SetHooks(sandbox.Hooks{BeforeCall: gate.BeforeCall})
	t.Cleanup(gate.Release)
	rs, err := e.state(run)
	if err != nil {
		t.Fatal(err)
	}

	firstCtx, stopFirst := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() { first <- e.prefetch(firstCtx, rs, run, 2) }()
	wctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := gate.WaitHeld(wctx, 1); err != nil {
		t.Fatalf("the prefetch's tickets call never arrived: %v", err)
	}
	second := make(chan error, 1)
	go func() { second <- e.prefetch(t.Context(), rs, run, 3) }()

	stopFirst() // the row that started it gives up
	select {
	case err := <-first:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the row that gave up got %v, want its own context's end", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the row that gave up is still waiting for the prefetch")
	}
	gate.Release()
	select {
	case err := <-second:
		if err != nil {
			t.Errorf("the row still waiting got %v, want the prefetch", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the row still waiting never got the prefetch")
	}
	rs.mu.Lock()
	fetched := rs.fetched[0]
	rs.mu.Unlock()
	if !fetched {
		t.Error("the chunk is not marked fetched")
	}
}

// The audit trail has one event per row's outcome, not one per wait: rows
// whose writes Zendesk answered 429 (it did nothing; the rows wait and go
// again) are audited once, when they are done.
func TestAuditHasOneEventPerRowNotPerWait(t *testing.T) {
	t.Parallel()
	env := newEngineEnv(t, sandbox.Options{Data: sandbox.Generate(4, 60, 200), RateLimit: 600, RateBurst: 2})
	tickets := rateableTickets(t, env.sb, 101, 300, 12)
	run := env.mustImport(t, actions.KindRate, ratingCSV(t, env.sb, tickets))
	// The engine believes it may go ten times faster than the account:
	// Zendesk answers many calls 429.
	e := env.newEngine(t, 6000, nil)
	if err := e.Confirm(t.Context(), run.ID, env.admin, 0); err != nil {
		t.Fatal(err)
	}
	waitRun(t, env.db, run.ID, 60*time.Second, store.RunDone)
	if n := env.sb.Stats().Throttled; n == 0 {
		t.Fatal("Zendesk answered no call 429; the test proves nothing")
	}
	c, _ := env.db.RunCounts(t.Context(), run.ID)
	events := runAudit(t, env.db, run.ID)
	var failed []string
	for _, ev := range events {
		if ev.Outcome != store.OutcomeOK {
			failed = append(failed, ev.Detail)
		}
	}
	if c.Done != 12 || len(events) != 12 || len(failed) != 0 {
		t.Errorf("%d rows done, %d audit events (%d not ok: %q), want 12 done and one ok event each", c.Done, len(events), len(failed), failed)
	}
}
