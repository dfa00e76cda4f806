package bulk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// Environment of the helper process started by TestEngineCrashRecovery.
const (
	crashEnvDSN     = "ONBEHALF_BULK_CRASH_DSN"
	crashEnvZendesk = "ONBEHALF_BULK_CRASH_ZENDESK"
	// crashEnvRescue is the helper engine's rescue threshold (10s when
	// unset): how long it lets a killed engine stay silent.
	crashEnvRescue = "ONBEHALF_BULK_CRASH_RESCUE"
)

// crashJobTimeout is the job timeout of the crash tests' engines, the
// child and the one that finishes after it: a row whose write was in
// flight when its engine died waits for half of it (the write timeout)
// before another engine takes it, so it is kept short.
const crashJobTimeout = 10 * time.Second

// TestHelperCrashEngine is not a test: it is the engine process that
// TestEngineCrashRecovery kills with SIGKILL in the middle of a run.
func TestHelperCrashEngine(t *testing.T) {
	dsn := os.Getenv(crashEnvDSN)
	if dsn == "" {
		t.Skip("helper process for TestEngineCrashRecovery")
	}
	db := mustOpenStore(t, dsn)
	rescue := 10 * time.Second
	if v := os.Getenv(crashEnvRescue); v != "" {
		rescue, _ = time.ParseDuration(v)
	}
	e, err := NewEngine(context.Background(), Config{DB: db, ZendeskURL: os.Getenv(crashEnvZendesk),
		Refresh: deadRefresh, RateLimit: 6000, RescueStuckJobsAfter: rescue, JobTimeout: crashJobTimeout,
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
		retryBase: 100 * time.Millisecond, pollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Minute) // killed long before
}

// confirmIdle confirms runs with an engine that never starts working: their
// rows wait in the queue for the engine under test.
func confirmIdle(t *testing.T, env *engineEnv, runs ...*store.Run) {
	t.Helper()
	confirmer, err := NewEngine(t.Context(), Config{DB: env.db, ZendeskURL: env.sb.URL, RateLimit: 6000})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if err := confirmer.Confirm(t.Context(), r.ID, env.admin, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// startCrashEngine starts TestHelperCrashEngine in a child process on env's
// database and sandbox, taking back the jobs of engines silent for rescue;
// the caller kills it.
func startCrashEngine(t *testing.T, env *engineEnv, rescue time.Duration) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCrashEngine$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnvDSN+"="+env.dsn, crashEnvZendesk+"="+env.sb.URL, crashEnvRescue+"="+rescue.String())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestEngineCrashRecovery runs an engine in a child process, kills it with
// SIGKILL mid-run, and finishes the runs with a new engine on the same
// database: every row ends in exactly one terminal state, no row is written
// twice, and a create_request row whose earlier attempt has an unknown
// outcome is re-checked against the user's recent requests, not sent again.
func TestEngineCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills an engine process")
	}
	t.Parallel()
	env := newEngineEnv(t, sandbox.Options{Data: sandbox.Generate(6, 150, 600), RateLimit: 6000, RateBurst: 100,
		Faults: sandbox.Faults{Latency: 150 * time.Millisecond, Jitter: 100 * time.Millisecond}})
	tickets := rateableTickets(t, env.sb, 101, 700, 300)
	ratings := env.mustImport(t, actions.KindRate, ratingCSV(t, env.sb, tickets))

	var users []sandbox.User // 30 end users who can open requests
	for n := 0; len(users) < 30; n++ {
		if u, _ := env.sb.UserByEmail(sandbox.GeneratedUserEmail(n)); u.Verified && !u.Suspended && u.Active {
			users = append(users, u)
		}
	}
	var b strings.Builder
	b.WriteString("email,subject,body\n")
	for i, u := range users {
		fmt.Fprintf(&b, "%s,Crash test %d,Body of request %d\n", u.Email, i, i)
	}
	requests := env.mustImport(t, actions.KindCreateRequest, b.String())

	confirmIdle(t, env, ratings, requests)
	// Row 2 of the requests: an earlier attempt reached Zendesk and the
	// process died before recording it.
	if err := env.db.BeginWrite(t.Context(), requests.ID, 2); err != nil {
		t.Fatal(err)
	}
	zc, err := zendesk.New(env.sb.URL, env.db.TokenSource(env.grant.ID, deadRefresh))
	if err != nil {
		t.Fatal(err)
	}
	earlier, err := zc.AsID(users[0].ID).CreateRequest(t.Context(), zendesk.NewRequest{Subject: "Crash test 0", Body: "Body of request 0"})
	if err != nil {
		t.Fatal(err)
	}

	cmd := startCrashEngine(t, env, 10*time.Second)
	waitCounts(t, env.db, ratings.ID, 60*time.Second, "30 rows done", func(c store.RunCounts) bool { return c.Done >= 30 })
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	atKill, _ := env.db.RunCounts(t.Context(), ratings.ID)
	if atKill.Remaining() == 0 {
		t.Fatal("the run finished before the kill; the test proves nothing")
	}
	t.Logf("killed with ratings %+v", atKill)

	env.newEngine(t, 6000, func(c *Config) {
		c.RescueStuckJobsAfter = 2 * time.Second
		c.JobTimeout = crashJobTimeout
	})
	for _, r := range []*store.Run{ratings, requests} {
		waitRun(t, env.db, r.ID, 120*time.Second, store.RunDone)
	}

	c, _ := env.db.RunCounts(t.Context(), ratings.ID)
	if c.Done != 300 || c.Failed+c.Skipped != 0 {
		t.Errorf("ratings after the crash = %+v, want all 300 done", c)
	}
	for _, tk := range tickets {
		if n := ratingWrites(t, env.sb)[tk.ID]; n != 1 {
			t.Errorf("ticket %d rated %d times, want once", tk.ID, n)
		}
	}
	c, _ = env.db.RunCounts(t.Context(), requests.ID)
	if c.Done != 30 || c.Failed+c.Skipped != 0 {
		t.Errorf("requests after the crash = %+v, want all 30 done", c)
	}
	created := map[int64]int{}
	for _, w := range env.sb.Writes() {
		if w.Endpoint == "POST /api/v2/requests" && w.Status < 300 {
			created[w.ActorID]++
		}
	}
	for _, u := range users {
		if n := created[u.ID]; n != 1 {
			t.Errorf("user %d has %d requests created, want 1", u.ID, n)
		}
	}
	row2, _ := env.db.FindRunRow(t.Context(), requests.ID, 2)
	if row2.ZendeskID != earlier.ID {
		t.Errorf("re-checked row has Zendesk id %d, want the earlier request %d", row2.ZendeskID, earlier.ID)
	}
	found := false
	for _, ev := range runAudit(t, env.db, requests.ID) {
		if ev.ZendeskID == earlier.ID && strings.Contains(ev.Detail, "earlier attempt") {
			found = true
		}
	}
	if !found {
		t.Error("no audit row says the earlier attempt's request was found")
	}
}

// crashWindowCase is one action for TestKillAfterZendeskActedNeverWritesTwice:
// a one-row file, and how to count the successful writes for its target.
type crashWindowCase struct {
	kind   actions.Kind
	csv    string
	writes func(sandbox.Write) bool
}

func crashWindowCases() map[string]crashWindowCase {
	onTicket := func(endpoint string, id int64) func(sandbox.Write) bool {
		return func(w sandbox.Write) bool { return w.Endpoint == endpoint && w.TicketID == id }
	}
	return map[string]crashWindowCase{
		"rate": {actions.KindRate, fmt.Sprintf("email,ticket_id,score,comment\n%s,%d,good,Crash window\n",
			sandbox.DemoBeauEmail, sandbox.TicketBeauSolved),
			onTicket("POST /api/v2/tickets/{id}/satisfaction_rating", sandbox.TicketBeauSolved)},
		"comment": {actions.KindComment, fmt.Sprintf("email,ticket_id,body\n%s,%d,Crash window comment\n",
			sandbox.DemoBeauEmail, sandbox.TicketBeauOpen),
			onTicket("PUT /api/v2/requests/{id}", sandbox.TicketBeauOpen)},
		"solve": {actions.KindSolve, fmt.Sprintf("email,ticket_id,comment\n%s,%d,Solved in the crash window\n",
			sandbox.DemoBeaEmail, sandbox.TicketBeaOpenAssigned),
			onTicket("PUT /api/v2/requests/{id}", sandbox.TicketBeaOpenAssigned)},
		"create_request": {actions.KindCreateRequest, fmt.Sprintf("email,subject,body\n%s,Crash window,Opened in the crash window\n",
			sandbox.DemoCarlosEmail),
			func(w sandbox.Write) bool {
				return w.Endpoint == "POST /api/v2/requests" && w.ActorID == sandbox.DemoCarlosID
			}},
	}
}

// TestKillAfterZendeskActedNeverWritesTwice kills the engine process in the
// one window the duplicate guard exists for: Zendesk has recorded the
// row's write, its answer is held (a sandbox hook), and the process dies
// with SIGKILL before it could mark the row done. Another engine takes the
// row back once the dead one is silent. For every action the row must end
// done exactly once with no second write. With the guard switched off
// (noRecheck) the same kill must be caught: a second write, or a row that
// does not end done, so the check is shown able to fail.
func TestKillAfterZendeskActedNeverWritesTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills engine processes")
	}
	t.Parallel()
	for name, tc := range crashWindowCases() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if problem := crashInWindow(t, tc, false); problem != "" {
				t.Error(problem)
			}
		})
		t.Run(name+"/guard off", func(t *testing.T) {
			t.Parallel()
			if problem := crashInWindow(t, tc, true); problem == "" {
				t.Error("with the duplicate guard off the kill after the write went unnoticed: the test cannot fail")
			} else {
				t.Logf("guard off, as expected: %s", problem)
			}
		})
	}
}

// crashInWindow runs tc's row in a child engine, kills it while Zendesk's
// answer to the row's write is held, finishes the run with an engine in
// this process (noRecheck switches its duplicate guard off), and returns
// what went wrong ("" when the row ended done once, written once).
func crashInWindow(t *testing.T, tc crashWindowCase, noRecheck bool) string {
	env := newEngineEnv(t, sandbox.Options{RateLimit: 6000, RateBurst: 100})
	run := env.mustImport(t, tc.kind, tc.csv)
	confirmIdle(t, env, run)
	gate := sandbox.NewGate(nil)
	env.sb.SetHooks(sandbox.Hooks{AfterWrite: gate.AfterWrite})
	t.Cleanup(gate.Release)

	cmd := startCrashEngine(t, env, 10*time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := gate.WaitHeld(ctx, 1); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child engine's write never reached Zendesk: %v", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	gate.Release() // Zendesk answers a process that is gone
	row, err := env.db.FindRunRow(t.Context(), run.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if row.State != store.RowQueued && row.State != store.RowPending || !row.InFlight {
		t.Fatalf("after the kill the row is %s (in flight %v); the kill missed the window", row.State, row.InFlight)
	}

	env.newEngine(t, 6000, func(c *Config) {
		c.RescueStuckJobsAfter = 2 * time.Second
		c.JobTimeout = crashJobTimeout
		c.noRecheck = noRecheck
	})
	waitRun(t, env.db, run.ID, 60*time.Second, store.RunDone)

	var problems []string
	writes := 0
	for _, w := range env.sb.Writes() {
		if w.Status < 300 && tc.writes(w) {
			writes++
		}
	}
	if writes != 1 {
		problems = append(problems, fmt.Sprintf("Zendesk recorded %d writes for the row, want 1", writes))
	}
	row, err = env.db.FindRunRow(t.Context(), run.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if row.State != store.RowDone {
		problems = append(problems, fmt.Sprintf("the row ended %s (%s), want done", row.State, row.Error))
	}
	if c, _ := env.db.RunCounts(t.Context(), run.ID); c.Done+c.Failed+c.Skipped != 1 {
		problems = append(problems, fmt.Sprintf("run counts %+v, want one row ended once", c))
	}
	return strings.Join(problems, "; ")
}

// TestCrashesDoNotWearARowOut kills the engine process holding a row more
// times than a row may fail (each time with the row's write sent and held
// at Zendesk, so the kill lands after the send gate), then lets the next
// attempt fail once for a reason of its own: Zendesk applies the write and
// the connection drops. Before, every rescue counted as an attempt and
// that one failure, on the ninth attempt, failed the row ("gave up after
// several attempts"); the kills must count for nothing, the real failure
// once, and the row must end done with its one write.
func TestCrashesDoNotWearARowOut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills engine processes")
	}
	t.Parallel()
	env := newEngineEnv(t, sandbox.Options{RateLimit: 6000, RateBurst: 100})
	tc := crashWindowCases()["rate"]
	run := env.mustImport(t, tc.kind, tc.csv)
	confirmIdle(t, env, run)
	for kill := 1; kill <= maxAttempts+1; kill++ {
		// Held on arrival, before Zendesk applies it: the killed
		// process's write is never applied.
		gate := sandbox.NewGate(func(r *http.Request) bool { return r.Method == http.MethodPost })
		env.sb.SetHooks(sandbox.Hooks{BeforeCall: gate.BeforeCall})
		cmd := startCrashEngine(t, env, time.Second)
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		err := gate.WaitHeld(ctx, 1)
		cancel()
		cmd.Process.Kill()
		cmd.Wait()
		if err != nil {
			gate.Release()
			t.Fatalf("kill %d: the row's write never reached Zendesk: %v", kill, err)
		}
		// The gate lets go of the call once Zendesk's side sees its
		// connection gone, and the call is then never applied; released
		// before that, it would be.
		for deadline := time.Now().Add(10 * time.Second); gate.Held() > 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: the held write's connection still looks open", kill)
			}
		}
		gate.Release()
	}
	row, err := env.db.FindRunRow(t.Context(), run.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if row.Failures != 0 || row.State != store.RowQueued && row.State != store.RowPending {
		t.Fatalf("after %d kills the row is %s with %d failures, want still to run with none", maxAttempts+1, row.State, row.Failures)
	}
	// The next attempt's write is applied and its answer lost: one
	// failure of the row's own.
	var dropped atomic.Bool
	env.sb.SetHooks(sandbox.Hooks{AfterWrite: func(sandbox.Write) bool { return dropped.CompareAndSwap(false, true) }})
	env.newEngine(t, 6000, func(c *Config) {
		c.RescueStuckJobsAfter = time.Second
		c.JobTimeout = crashJobTimeout
	})
	waitRun(t, env.db, run.ID, 60*time.Second, store.RunDone)

	row, err = env.db.FindRunRow(t.Context(), run.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if row.State != store.RowDone || row.Failures != 1 {
		t.Errorf("row ended %s (%s) with %d failures counted, want done with 1 (the dropped answer)", row.State, row.Error, row.Failures)
	}
	if !dropped.Load() {
		t.Error("no answer was dropped; the test proves nothing")
	}
	if n := ratingWrites(t, env.sb)[sandbox.TicketBeauSolved]; n != 1 {
		t.Errorf("ticket rated %d times, want once", n)
	}
}

// logCounter is a slog handler counting records whose message contains
// what; safe for concurrent use.
type logCounter struct {
	what string
	n    *atomic.Int64
}

func (h logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h logCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.what) {
		h.n.Add(1)
	}
	return nil
}
func (h logCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logCounter) WithGroup(string) slog.Handler      { return h }

// TestRowsWaitForTheRateLimitOutsideTheirJob: 20 workers on 30 rows at two
// calls a second queue for up to ten seconds, well over a job timeout of
// six. The queue must not eat the job's time: a row whose turn is further
// off than a quarter of it hands its worker back and comes again, so no job
// times out, no attempt is counted, and every row is written once.
func TestRowsWaitForTheRateLimitOutsideTheirJob(t *testing.T) {
	t.Parallel()
	env := newEngineEnv(t, sandbox.Options{Data: sandbox.Generate(25, 40, 200), RateLimit: 6000, RateBurst: 100})
	tickets := rateableTickets(t, env.sb, 101, 300, 30)
	run := env.mustImport(t, actions.KindRate, ratingCSV(t, env.sb, tickets))
	var timeouts atomic.Int64
	e := env.newEngine(t, 120, func(c *Config) {
		c.JobTimeout = 6 * time.Second
		c.Logger = slog.New(logCounter{what: "job timeout", n: &timeouts})
	})
	if err := e.Confirm(t.Context(), run.ID, env.admin, env.grant.ID); err != nil {
		t.Fatal(err)
	}
	waitRun(t, env.db, run.ID, 90*time.Second, store.RunDone)
	if n := timeouts.Load(); n != 0 {
		t.Errorf("%d jobs timed out waiting for the rate limit, want none", n)
	}
	for _, r := range mustRows(t, env.db, run.ID) {
		if r.State != store.RowDone || r.Failures != 0 {
			t.Errorf("row %d ended %s with %d failures counted, want done with none", r.Number, r.State, r.Failures)
		}
	}
	for _, tk := range tickets {
		if n := ratingWrites(t, env.sb)[tk.ID]; n != 1 {
			t.Errorf("ticket %d rated %d times, want once", tk.ID, n)
		}
	}
}

// newUnstartedRatingEngine confirms a one-row rating run with no engine
// working it, and returns an engine that is not started: the test calls its
// work itself, one attempt at a time.
func newUnstartedRatingEngine(t *testing.T) (*engineEnv, *store.Run, *Engine) {
	t.Helper()
	env := newEngineEnv(t, sandbox.Options{RateLimit: 6000, RateBurst: 100})
	tc := crashWindowCases()["rate"]
	run := env.mustImport(t, tc.kind, tc.csv)
	confirmIdle(t, env, run)
	e, err := NewEngine(t.Context(), Config{DB: env.db, ZendeskURL: env.sb.URL, Refresh: deadRefresh, RateLimit: 6000})
	if err != nil {
		t.Fatal(err)
	}
	return env, run, e
}

// TestTakenOverAttemptKeepsTheJob: an engine thought dead (silent too long)
// still works a row when another attempt of its job takes the row over.
// The old attempt, refused at the send gate, must not end the job: River
// would then mark the job completed under the attempt that took over, and
// lose the row if that one snoozes. It hands the job back with a snooze,
// and sends nothing.
func TestTakenOverAttemptKeepsTheJob(t *testing.T) {
	t.Parallel()
	env, run, e := newUnstartedRatingEngine(t)
	// The old attempt is held on its first read, after it claimed the row.
	gate := sandbox.NewGate(func(r *http.Request) bool { return r.Method == http.MethodGet })
	env.sb.SetHooks(sandbox.Hooks{BeforeCall: gate.BeforeCall})
	t.Cleanup(gate.Release)
	done := make(chan error, 1)
	go func() { done <- e.work(t.Context(), run.ID, 2, "old/1/1") }()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := gate.WaitHeld(ctx, 1); err != nil {
		t.Fatalf("the old attempt never read: %v", err)
	}
	if _, _, err := env.db.ClaimRowFor(t.Context(), run.ID, 2, "new/1/2", 0); err != nil {
		t.Fatal(err)
	}
	gate.Release()
	err := <-done
	var snooze *river.JobSnoozeError
	if !errors.As(err, &snooze) {
		t.Errorf("the taken-over attempt returned %v, want a snooze that keeps the job", err)
	}
	if n := ratingWrites(t, env.sb)[sandbox.TicketBeauSolved]; n != 0 {
		t.Errorf("the taken-over attempt rated the ticket %d times, want none", n)
	}
	if row, _ := env.db.FindRunRow(t.Context(), run.ID, 2); row.State != store.RowQueued && row.State != store.RowPending {
		t.Errorf("the row is %s, want still to run for the new attempt", row.State)
	}
}

// TestRetryEndsARunWhoseEndWasLost: the last row of a run ended, but ending
// the run did not happen (the database failed right then, or the process
// died between the two). The job's next attempt finds the row ended and
// must end the run, not leave it running for ever.
func TestRetryEndsARunWhoseEndWasLost(t *testing.T) {
	t.Parallel()
	env, run, e := newUnstartedRatingEngine(t)
	if _, _, err := env.db.ClaimRow(t.Context(), run.ID, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := env.db.FinishRow(t.Context(), run.ID, 2, store.RowResult{State: store.RowDone}, nil); err != nil {
		t.Fatal(err)
	}
	if r, _ := env.db.FindRunByID(t.Context(), run.ID); r.State != store.RunRunning {
		t.Fatalf("the run is %s before the retry, want running (its end lost)", r.State)
	}
	if err := e.work(t.Context(), run.ID, 2, "retry/1/2"); err != nil {
		t.Fatal(err)
	}
	if r, _ := env.db.FindRunByID(t.Context(), run.ID); r.State != store.RunDone {
		t.Errorf("after the retry the run is %s, want done", r.State)
	}
}
