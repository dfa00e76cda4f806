package actions_test

import (
	"bytes"
	"errors"
	"net/http"
	"path/filepath"
	"testing"

	"golang.org/x/oauth2"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

const fullScope = "read write impersonate"

// testEnv is one sandbox account, the admin's client, a real SQLite store
// and a Runner wired to them.
type testEnv struct {
	srv    *sandbox.Server
	token  sandbox.Token
	zc     *zendesk.Client
	db     *store.DB
	runner *actions.Runner
}

// newTestSandbox starts a sandbox on loopback; unless the test sets one, the
// rate limit is too high to interfere.
func newTestSandbox(t *testing.T, opts sandbox.Options) *sandbox.Server {
	t.Helper()
	if opts.RateLimit == 0 {
		opts.RateLimit, opts.RateBurst = 1_000_000, 100_000
	}
	srv, err := sandbox.Start(opts)
	if err != nil {
		t.Fatalf("sandbox.Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// newTestStore opens a fresh SQLite store in a temp dir.
func newTestStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "onbehalf.db"),
		store.Options{SecretKey: bytes.Repeat([]byte("k"), store.MinSecretKeyLen)})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newTestClient returns a client for srv using ts.
func newTestClient(t *testing.T, srv *sandbox.Server, ts oauth2.TokenSource) *zendesk.Client {
	t.Helper()
	zc, err := zendesk.New(srv.URL, ts)
	if err != nil {
		t.Fatalf("zendesk.New: %v", err)
	}
	return zc
}

// newTestEnv starts a Demo sandbox with opts, issues the admin a token with
// tokenScope, and builds a Runner that believes the token has runnerScopes
// ("" = unknown).
func newTestEnv(t *testing.T, opts sandbox.Options, tokenScope, runnerScopes string) *testEnv {
	t.Helper()
	srv := newTestSandbox(t, opts)
	tok, err := srv.IssueToken(sandbox.DemoAdminEmail, tokenScope)
	if err != nil {
		t.Fatalf("IssueToken: %v", err)
	}
	zc := newTestClient(t, srv, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok.AccessToken}))
	db := newTestStore(t)
	return &testEnv{srv: srv, token: tok, zc: zc, db: db, runner: &actions.Runner{
		Zendesk: zc, Audit: db, Admin: actions.Admin{ID: sandbox.DemoAdminID, Name: "Ada Admin"}, Scopes: runnerScopes,
	}}
}

// mustAuditEvents returns every audit event in the env's store.
func (e *testEnv) mustAuditEvents(t *testing.T) []store.AuditEvent {
	t.Helper()
	evs, total, err := e.db.FindAuditEvents(t.Context(), store.AuditFilter{Limit: store.MaxAuditLimit})
	if err != nil {
		t.Fatalf("FindAuditEvents: %v", err)
	}
	if total != len(evs) {
		t.Fatalf("FindAuditEvents: %d events of %d", len(evs), total)
	}
	return evs
}

// run runs a with a DirectLookup and checks that exactly one audit row was
// added, with the outcome and fields that match what Run returned. It
// returns the Outcome and the Refusal (nil on success).
func (e *testEnv) run(t *testing.T, a actions.Action, opt actions.RunOptions) (actions.Outcome, *actions.Refusal) {
	t.Helper()
	return e.runWith(t, a, actions.NewLookup(e.zc), opt)
}

func (e *testEnv) runWith(t *testing.T, a actions.Action, look actions.Lookup, opt actions.RunOptions) (actions.Outcome, *actions.Refusal) {
	t.Helper()
	before := len(e.mustAuditEvents(t))
	out, err := e.runner.Run(t.Context(), a, look, opt)
	var ref *actions.Refusal
	if err != nil && !errors.As(err, &ref) {
		t.Fatalf("Run returned %T %v, want nil or *Refusal", err, err)
	}
	evs := e.mustAuditEvents(t)
	if len(evs) != before+1 {
		t.Fatalf("Run left %d audit rows, want exactly 1", len(evs)-before)
	}
	ev := evs[0] // newest first
	wantOutcome := store.OutcomeOK
	if ref != nil {
		wantOutcome = store.OutcomeRefused
		if ref.Temporary() || ref.Code == actions.CodeImpersonationIgnored {
			wantOutcome = store.OutcomeFailed
		}
	}
	if ev.Outcome != wantOutcome {
		t.Errorf("audit outcome = %q, want %q (refusal %+v)", ev.Outcome, wantOutcome, ref)
	}
	if ev.Action != string(a.Kind()) || ev.AdminID != sandbox.DemoAdminID || ev.AdminName != "Ada Admin" {
		t.Errorf("audit row action/admin = %q/%d/%q", ev.Action, ev.AdminID, ev.AdminName)
	}
	if ev.EndUserID != out.EndUserID || ev.EndUser != out.EndUser || ev.TicketID != out.TicketID || ev.ZendeskID != out.ZendeskID {
		t.Errorf("audit row %+v does not match outcome %+v", ev, out)
	}
	if ev.RunID != opt.RunID || ev.RequestID != opt.RequestID || ev.RemoteAddr != opt.RemoteAddr {
		t.Errorf("audit row run/request/remote = %d/%q/%q, want %d/%q/%q", ev.RunID, ev.RequestID, ev.RemoteAddr,
			opt.RunID, opt.RequestID, opt.RemoteAddr)
	}
	if ev.Detail == "" || !bytes.Contains([]byte(ev.Detail), []byte(out.Message)) {
		t.Errorf("audit detail %q does not carry the message %q", ev.Detail, out.Message)
	}
	if bytes.Contains([]byte(ev.Detail), []byte(e.token.AccessToken)) {
		t.Errorf("audit detail contains the access token")
	}
	if ref != nil && out.Message != ref.Message {
		t.Errorf("Outcome.Message = %q, want the refusal's %q", out.Message, ref.Message)
	}
	return out, ref
}

// writes returns the sandbox writes, checking every one was made with the
// admin's token.
func (e *testEnv) writes(t *testing.T) []sandbox.Write {
	t.Helper()
	ws := e.srv.Writes()
	for _, w := range ws {
		if w.TokenUserID != sandbox.DemoAdminID {
			t.Errorf("write %s %s made with the token of user %d", w.Method, w.Path, w.TokenUserID)
		}
	}
	return ws
}

// apiCalls is the number of API calls the sandbox saw.
func apiCalls(s sandbox.Stats) int {
	n := 0
	for _, c := range s.Calls {
		n += c
	}
	return n
}

// revokeToken revokes the access token the way logout does (§1.6).
func revokeToken(t *testing.T, srv *sandbox.Server, access string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodDelete, srv.URL+"/api/v2/oauth/tokens/current.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke: status %d", resp.StatusCode)
	}
}
