package bulk

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// testKey is the store secret shared by a test and its helper process.
func testKey() []byte { return bytes.Repeat([]byte("b"), 32) }

// deadRefresh is the app's refresh adapter for a grant whose refresh token
// Zendesk refuses (invalid_grant).
func deadRefresh(context.Context, *oauth2.Token) (*oauth2.Token, error) {
	return nil, fmt.Errorf("refresh: invalid_grant: %w", zendesk.ErrTokenInvalid)
}

// engineEnv is a sandbox Zendesk, a store in a temp dir and the admin's
// grant.
type engineEnv struct {
	sb     *sandbox.Server
	db     *store.DB
	dsn    string
	admin  actions.Admin
	grant  *store.Grant
	tokens []sandbox.Token
}

func newEngineEnv(t testing.TB, opts sandbox.Options) *engineEnv {
	t.Helper()
	return newEngineEnvOn(t, opts, "sqlite:"+filepath.Join(t.TempDir(), "onbehalf.db"))
}

// newEngineEnvOn is newEngineEnv on the database dsn.
func newEngineEnvOn(t testing.TB, opts sandbox.Options, dsn string) *engineEnv {
	t.Helper()
	sb, err := sandbox.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	db := mustOpenStore(t, dsn)
	env := &engineEnv{sb: sb, db: db, dsn: dsn, admin: actions.Admin{ID: sandbox.DemoAdminID, Name: "Ada Admin"}}
	env.grant = env.newGrant(t)
	return env
}

func mustOpenStore(t testing.TB, dsn string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), dsn, store.Options{SecretKey: testKey()})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newGrant issues the admin a fresh token and stores it as a grant.
func (env *engineEnv) newGrant(t testing.TB) *store.Grant {
	t.Helper()
	tok, err := env.sb.IssueToken(sandbox.DemoAdminEmail, "read write impersonate")
	if err != nil {
		t.Fatal(err)
	}
	env.tokens = append(env.tokens, tok)
	g := &store.Grant{AdminID: env.admin.ID, AdminName: env.admin.Name, AdminEmail: sandbox.DemoAdminEmail,
		Token: &oauth2.Token{AccessToken: tok.AccessToken, TokenType: "Bearer"}}
	if err := env.db.CreateGrant(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	return g
}

// newEngine starts an engine on env with fast test knobs; cfg may adjust
// the Config first.
func (env *engineEnv) newEngine(t testing.TB, rate int, cfg func(*Config)) *Engine {
	t.Helper()
	c := Config{DB: env.db, ZendeskURL: env.sb.URL, Refresh: deadRefresh, RateLimit: rate,
		RescueStuckJobsAfter: 10 * time.Second, pausedSnooze: 200 * time.Millisecond,
		retryBase: 100 * time.Millisecond, pollInterval: 50 * time.Millisecond}
	if cfg != nil {
		cfg(&c)
	}
	e, err := NewEngine(context.Background(), c)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Stop(ctx)
	})
	return e
}

// rateableTickets returns up to n tickets of the sandbox that their
// requester can rate: solved, requester a verified, active end user.
func rateableTickets(t testing.TB, sb *sandbox.Server, first, last int64, n int) []sandbox.Ticket {
	t.Helper()
	var out []sandbox.Ticket
	for id := first; id <= last && len(out) < n; id++ {
		tk, ok := sb.TicketByID(id)
		if !ok || tk.Status != "solved" {
			continue
		}
		u, ok := sb.UserByID(tk.RequesterID)
		if !ok || !u.Verified || u.Suspended || !u.Active || u.Role != "end-user" {
			continue
		}
		out = append(out, tk)
	}
	if len(out) < n {
		t.Fatalf("only %d rateable tickets, want %d", len(out), n)
	}
	return out
}

// ratingCSV is a rating file: one row per ticket, by the requester's email.
func ratingCSV(t testing.TB, sb *sandbox.Server, tickets []sandbox.Ticket) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("email,ticket_id,score,comment\n")
	for i, tk := range tickets {
		u, _ := sb.UserByID(tk.RequesterID)
		score := "good"
		if i%4 == 3 {
			score = "bad"
		}
		fmt.Fprintf(&b, "%s,%d,%s,row %d\n", u.Email, tk.ID, score, i)
	}
	return b.String()
}

// mustImport stores a CSV as a new run in preview.
func (env *engineEnv) mustImport(t testing.TB, kind actions.Kind, csv string) *store.Run {
	t.Helper()
	run := &store.Run{AdminID: env.admin.ID, AdminName: env.admin.Name, GrantID: env.grant.ID, Kind: string(kind),
		FileName: "test.csv"}
	if _, err := Import(context.Background(), env.db, run, strings.NewReader(csv), Options{}); err != nil {
		t.Fatalf("Import: %v", err)
	}
	return run
}

// waitRun polls until the run is in one of states, and returns it.
func waitRun(t testing.TB, db *store.DB, runID int64, timeout time.Duration, states ...string) *store.Run {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		run, err := db.FindRunByID(context.Background(), runID)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range states {
			if run.State == s {
				return run
			}
		}
		if time.Now().After(deadline) {
			c, _ := db.RunCounts(context.Background(), runID)
			t.Fatalf("run %d is %s after %v, want %v; counts %+v", runID, run.State, timeout, states, c)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCounts polls until cond holds for the run's counts.
func waitCounts(t testing.TB, db *store.DB, runID int64, timeout time.Duration, what string, cond func(store.RunCounts) bool) store.RunCounts {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := db.RunCounts(context.Background(), runID)
		if err != nil {
			t.Fatal(err)
		}
		if cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %d: %s not reached after %v; counts %+v", runID, what, timeout, c)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustRows(t testing.TB, db *store.DB, runID int64) []store.RunRow {
	t.Helper()
	var rows []store.RunRow
	if err := db.EachRunRow(context.Background(), runID, func(r store.RunRow) error {
		rows = append(rows, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return rows
}

// runAudit returns the audit events of a run.
func runAudit(t testing.TB, db *store.DB, runID int64) []store.AuditEvent {
	t.Helper()
	evs, _, err := db.FindAuditEvents(context.Background(), store.AuditFilter{Limit: store.MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.AuditEvent
	for _, e := range evs {
		if e.RunID == runID {
			out = append(out, e)
		}
	}
	return out
}

// mustFinishEveryRowOnce waits for the run to end done, with all n of its
// rows done and none failed, and every ticket rated exactly once.
func (env *engineEnv) mustFinishEveryRowOnce(t testing.TB, runID int64, n int, when string) {
	t.Helper()
	waitRun(t, env.db, runID, 60*time.Second, store.RunDone)
	if c, _ := env.db.RunCounts(t.Context(), runID); c.Done != n || c.Failed != 0 {
		t.Errorf("counts %s = %+v, want all %d done", when, c, n)
	}
	for id, k := range ratingWrites(t, env.sb) {
		if k != 1 {
			t.Errorf("ticket %d rated %d times, want once", id, k)
		}
	}
}

// ratingWrites counts rating writes per ticket and checks each was made as
// the ticket's requester.
func ratingWrites(t testing.TB, sb *sandbox.Server) map[int64]int {
	t.Helper()
	n := map[int64]int{}
	for _, w := range sb.Writes() {
		if w.Endpoint != "POST /api/v2/tickets/{id}/satisfaction_rating" || w.Status >= 300 {
			continue
		}
		n[w.TicketID]++
		tk, _ := sb.TicketByID(w.TicketID)
		if w.ActorID != tk.RequesterID || w.TokenUserID != sandbox.DemoAdminID {
			t.Errorf("rating of ticket %d written as user %d with token of %d, want requester %d with the admin's token",
				w.TicketID, w.ActorID, w.TokenUserID, tk.RequesterID)
		}
	}
	return n
}
