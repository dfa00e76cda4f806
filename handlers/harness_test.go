package handlers

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/onbehalf/onbehalf/bulk"
	"github.com/onbehalf/onbehalf/metrics"
	"github.com/onbehalf/onbehalf/oauthflow"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/views"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// testApp is onbehalf's HTTP layer on a real SQLite store, talking to a
// sandbox Zendesk over loopback.
type testApp struct {
	t       testing.TB
	URL     string
	Sandbox *sandbox.Server
	DB      *store.DB
	DBPath  string // the SQLite file; "" on PostgreSQL (testAppOptions.DSN)
	Server  *Server
	Flow    *oauthflow.Flow
	Logs    *syncBuffer
	Metrics *metrics.Metrics
	Engine  *bulk.Engine
	clock   *testClock
}

type testAppOptions struct {
	Switches  sandbox.Switches
	PublicURL string // default: the test server's URL
	Secret    string
	Scopes    []string // default: read write impersonate
	// RescueAfter is the engine's RescueStuckJobsAfter (default 5 s); a
	// write may take a quarter of it before it times out.
	RescueAfter time.Duration
	// DSN is the store's database (default: SQLite in a temp dir).
	DSN string
	// ProgressEvery is how often run progress is pushed (default 50 ms).
	ProgressEvery time.Duration
	// Sandbox says the app runs in demo mode, as `go run .` without a
	// Zendesk does (the login page's hint, the sample CSV).
	Sandbox bool
	// SweepEvery is how often the grant sweep runs (default: the
	// engine's, 10 minutes, which is once at start in a test).
	SweepEvery time.Duration
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testClock is a settable clock shared by the app and the test.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

const testClientID, testClientSecret = "onbehalf-test", "test-client-secret-0123456789"

func newTestApp(t testing.TB, opts testAppOptions) *testApp {
	t.Helper()
	// The sandbox and the app share one clock, so moving it expires tokens
	// on both sides alike. The rate limit is high: these tests are not about it.
	clock := &testClock{}
	sb, err := sandbox.Start(sandbox.Options{Seed: 1, Switches: opts.Switches, Now: clock.Now, RateLimit: 60000, RateBurst: 1000})
	if err != nil {
		t.Fatalf("start sandbox: %v", err)
	}
	t.Cleanup(func() { sb.Close() })

	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	secret := opts.Secret
	if secret == "" {
		secret = "0123456789abcdef0123456789abcdef-test"
	}
	dbPath := filepath.Join(t.TempDir(), "onbehalf.db")
	dsn := "sqlite:" + dbPath
	if opts.DSN != "" {
		dsn, dbPath = opts.DSN, ""
	}
	db, err := store.Open(context.Background(), dsn, store.Options{Logger: logger, SecretKey: []byte(secret), Now: clock.Now})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })

	// The server must exist before the OAuth client is registered, because
	// the redirect URL contains its port.
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	public := opts.PublicURL
	if public == "" {
		public = srv.URL
	}
	pub, _ := url.Parse(public)
	redirect := public + "/oauth/callback"
	sb.RegisterClient(sandbox.Client{Identifier: testClientID, Secret: testClientSecret, RedirectURIs: []string{redirect}})
	flow, err := oauthflow.New(oauthflow.Config{BaseURL: sb.URL, ClientID: testClientID, ClientSecret: testClientSecret, RedirectURL: redirect, Now: clock.Now, Scopes: opts.Scopes})
	if err != nil {
		t.Fatalf("oauthflow: %v", err)
	}
	rescue := opts.RescueAfter
	if rescue == 0 {
		rescue = 5 * time.Second
	}
	m := metrics.New()
	engine, err := bulk.NewEngine(context.Background(), bulk.Config{DB: db, Logger: logger, ZendeskURL: sb.URL,
		Refresh: RefreshFunc(flow), RateLimit: 6000, Now: clock.Now, RescueStuckJobsAfter: rescue,
		GrantSweep: bulk.GrantSweep{Revoke: flow.Revoke, Every: opts.SweepEvery, Swept: m.GrantSwept}})
	if err != nil {
		t.Fatalf("bulk engine: %v", err)
	}
	if err := engine.Start(context.Background()); err != nil {
		t.Fatalf("start bulk engine: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		engine.Stop(ctx)
	})
	every := opts.ProgressEvery
	if every == 0 {
		every = 50 * time.Millisecond
	}
	var hint *views.SandboxHint
	if opts.Sandbox {
		hint = &views.SandboxHint{ZendeskURL: sb.URL, AdminName: "Ada Admin", AdminEmail: sandbox.DemoAdminEmail,
			AgentEmail: sandbox.DemoAgentEmail, EndUser: "Bea Lindqvist"}
	}
	server, err := New(Config{
		Sandbox:       hint,
		Metrics:       m,
		Logger:        logger,
		DB:            db,
		Sessions:      db.SessionStore(store.SessionOptions{Secure: pub.Scheme == "https"}),
		OAuth:         flow,
		ZendeskURL:    sb.URL,
		PublicURL:     pub,
		Now:           clock.Now,
		Bulk:          engine,
		ProgressEvery: every,
		RateLimit:     6000,
	})
	if err != nil {
		t.Fatalf("handlers.New: %v", err)
	}
	h = server
	// Cleanups run last first: the progress streams end before the engine,
	// the server and the store close.
	t.Cleanup(server.Close)
	return &testApp{t: t, URL: srv.URL, Sandbox: sb, DB: db, DBPath: dbPath, Server: server, Flow: flow, Logs: logs, Metrics: m, Engine: engine, clock: clock}
}

// browser is a cookie-keeping HTTP client that does not follow redirects, so
// tests can look at every hop.
type browser struct {
	t   testing.TB
	app *testApp
	c   *http.Client
	// Pages collects every body the browser received.
	mu    sync.Mutex
	Pages []string
}

func (a *testApp) newBrowser() *browser {
	a.t.Helper()
	jar, _ := cookiejar.New(nil)
	return &browser{t: a.t, app: a, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}}
}

type response struct {
	Status   int
	Header   http.Header
	Body     string
	Location string
}

func (r response) doc(t testing.TB) *goquery.Document {
	t.Helper()
	d, err := goquery.NewDocumentFromReader(strings.NewReader(r.Body))
	if err != nil {
		t.Fatalf("parse html: %v", err)
	}
	return d
}

func (b *browser) do(req *http.Request) response {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	b.mu.Lock()
	b.Pages = append(b.Pages, string(body))
	b.mu.Unlock()
	return response{Status: res.StatusCode, Header: res.Header, Body: string(body), Location: res.Header.Get("Location")}
}

func (b *browser) get(rawURL string) response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.abs(rawURL), nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a same-origin form POST, as a browser would.
func (b *browser) post(path string, form url.Values) response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.abs(path), strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.app.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(req)
}

func (b *browser) abs(u string) string {
	if strings.HasPrefix(u, "/") {
		return b.app.URL + u
	}
	return u
}

// follow follows redirects within the app and the sandbox until a page.
func (b *browser) follow(r response) response {
	b.t.Helper()
	for i := 0; i < 10 && r.Status >= 300 && r.Status < 400; i++ {
		r = b.get(r.Location)
	}
	return r
}

// startLogin goes to /login and on to the sandbox's consent page; it returns
// the consent page's URL.
func (b *browser) startLogin(returnTo string) *url.URL {
	b.t.Helper()
	path := "/login"
	if returnTo != "" {
		path += "?return_to=" + url.QueryEscape(returnTo)
	}
	r := b.get(path)
	if r.Status != http.StatusFound {
		b.t.Fatalf("GET %s: status %d, want 302; body: %.300s", path, r.Status, r.Body)
	}
	u, err := url.Parse(r.Location)
	if err != nil || !strings.HasPrefix(r.Location, b.app.Sandbox.URL+"/oauth/authorizations/new") {
		b.t.Fatalf("login redirected to %q, want the sandbox's authorize endpoint", r.Location)
	}
	return u
}

// consent answers the sandbox's consent page as the given person and returns
// the callback URL Zendesk redirects the browser to (not yet followed).
func (b *browser) consent(authorize *url.URL, email, decision string) string {
	b.t.Helper()
	page := b.get(authorize.String())
	if page.Status != http.StatusOK {
		b.t.Fatalf("sandbox consent page: status %d: %.300s", page.Status, page.Body)
	}
	form := url.Values{}
	page.doc(b.t).Find("form input[type=hidden]").Each(func(_ int, s *goquery.Selection) {
		name, _ := s.Attr("name")
		val, _ := s.Attr("value")
		form.Set(name, val)
	})
	form.Set("user", email)
	form.Set("decision", decision)
	req, _ := http.NewRequest(http.MethodPost, b.app.Sandbox.URL+"/oauth/authorizations/new", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r := b.do(req)
	if r.Status != http.StatusFound && r.Status != http.StatusSeeOther {
		b.t.Fatalf("sandbox consent POST: status %d: %.300s", r.Status, r.Body)
	}
	return r.Location
}

// login signs in as the given sandbox person and returns the final page.
func (b *browser) login(email string) response {
	b.t.Helper()
	cb := b.consent(b.startLogin(""), email, "allow")
	return b.follow(b.get(cb))
}

// cookie returns the browser's onbehalf session cookie value.
func (b *browser) cookie() string {
	u, _ := url.Parse(b.app.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == sessionName {
			return c.Value
		}
	}
	return ""
}

// csrf reads the form token from a page.
func csrfOf(t testing.TB, r response) string {
	t.Helper()
	v, ok := r.doc(t).Find(`input[name="_csrf"]`).First().Attr("value")
	if !ok || v == "" {
		t.Fatalf("no _csrf input on the page: %.300s", r.Body)
	}
	return v
}

func auditEventsOf(t *testing.T, db *store.DB, action string) []store.AuditEvent {
	t.Helper()
	events, _, err := db.FindAuditEvents(context.Background(), store.AuditFilter{Action: action, Limit: 100})
	if err != nil {
		t.Fatalf("find audit events: %v", err)
	}
	return events
}

// metric returns the value of one series from the app's metrics, as the
// exposition format prints it (e.g. `onbehalf_oauth_stray_callbacks_total`
// or `onbehalf_grants_swept_total{outcome="revoked"}`), or "" if absent.
func (a *testApp) metric(series string) string {
	a.t.Helper()
	rec := httptest.NewRecorder()
	a.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}
