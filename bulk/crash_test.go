package bulk

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// Environment of the helper process started by TestEngineCrashRecovery.
const (
	crashEnvDSN     = "ONBEHALF_BULK_CRASH_DSN"
	crashEnvZendesk = "ONBEHALF_BULK_CRASH_ZENDESK"
)

// TestHelperCrashEngine is not a test: it is the engine process that
// TestEngineCrashRecovery kills with SIGKILL in the middle of a run.
func TestHelperCrashEngine(t *testing.T) {
	dsn := os.Getenv(crashEnvDSN)
	if dsn == "" {
		t.Skip("helper process for TestEngineCrashRecovery")
	}
	db := mustOpenStore(t, dsn)
	e, err := NewEngine(context.Background(), Config{DB: db, ZendeskURL: os.Getenv(crashEnvZendesk),
		Refresh: deadRefresh, RateLimit: 6000, RescueStuckJobsAfter: 10 * time.Second,
		retryBase: 100 * time.Millisecond, pollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Minute) // killed long before
}

// TestEngineCrashRecovery runs an engine in a child process, kills it with
// SIGKILL mid-run, and finishes the runs with a new engine on the same
// database: every row ends in exactly one terminal state, no row is written
// twice, and a create_request row whose earlier attempt has an unknown
// outcome is re-checked against the user's recent requests, not sent again.
func TestEngineCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for River's leader and rescuer (about half a minute)")
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

	// Confirm with an engine that never starts working.
	confirmer, err := NewEngine(t.Context(), Config{DB: env.db, ZendeskURL: env.sb.URL, RateLimit: 6000})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*store.Run{ratings, requests} {
		if err := confirmer.Confirm(t.Context(), r.ID, env.admin, 0); err != nil {
			t.Fatal(err)
		}
	}
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

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCrashEngine$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnvDSN+"="+env.dsn, crashEnvZendesk+"="+env.sb.URL)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
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

	env.newEngine(t, 6000, func(c *Config) { c.RescueStuckJobsAfter = 2 * time.Second })
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
