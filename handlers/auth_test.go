package handlers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

func TestLoginAsAdminLandsSignedIn(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	b := app.newBrowser()

	page := b.login(sandbox.DemoAdminEmail)
	if page.Status != http.StatusOK {
		t.Fatalf("after login: status %d: %.300s", page.Status, page.Body)
	}
	got := strings.TrimSpace(page.doc(t).Find(`[data-testid="signed-in"]`).Text())
	if !strings.Contains(got, "Signed in as Ada Admin") {
		t.Errorf("header = %q, want it to say Signed in as Ada Admin", got)
	}
	events := auditEventsOf(t, app.DB, "login")
	if len(events) != 1 || events[0].Outcome != "ok" || events[0].AdminID != sandbox.DemoAdminID {
		t.Errorf("login audit events = %+v, want one ok event for admin %d", events, sandbox.DemoAdminID)
	}
}

func TestSessionIDChangesAtLogin(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	b := app.newBrowser()

	authorize := b.startLogin("")
	preLogin := b.cookie()
	if preLogin == "" {
		t.Fatal("no session cookie after /login")
	}
	cb := b.consent(authorize, sandbox.DemoAdminEmail, "allow")
	b.follow(b.get(cb))
	postLogin := b.cookie()
	if postLogin == "" || postLogin == preLogin {
		t.Fatalf("session cookie did not change at login (before %q, after %q)", preLogin, postLogin)
	}

	// The pre-login cookie is worth nothing now.
	other := app.newBrowser()
	u, _ := url.Parse(app.URL)
	other.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionName, Value: preLogin, Path: "/"}})
	if r := other.get("/"); r.doc(t).Find(`[data-testid="login"]`).Length() != 1 {
		t.Errorf("the pre-login cookie still reaches a signed-in page: %.300s", r.Body)
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		publicURL  string
		wantSecure bool
		wantName   string
	}{
		{"http", "", false, sessionName},
		// Browsers take a __Host- cookie only with Secure and Path=/.
		{"https public URL", "https://onbehalf.example.com", true, "__Host-" + sessionName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := newTestApp(t, testAppOptions{PublicURL: tc.publicURL})
			b := app.newBrowser()
			req, _ := http.NewRequest(http.MethodGet, app.URL+"/login", nil)
			if tc.publicURL != "" {
				req.Host = "onbehalf.example.com"
			}
			r := b.do(req)
			var c *http.Cookie
			for _, sc := range (&http.Response{Header: r.Header}).Cookies() {
				if sc.Name == tc.wantName {
					c = sc
				}
			}
			if c == nil {
				t.Fatalf("no %s cookie set by /login; headers %v", tc.wantName, r.Header)
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure != tc.wantSecure {
				t.Errorf("cookie HttpOnly=%v SameSite=%v Path=%q Secure=%v; want HttpOnly, Lax, /, Secure=%v",
					c.HttpOnly, c.SameSite, c.Path, c.Secure, tc.wantSecure)
			}
			if len(c.Value) > 200 {
				t.Errorf("cookie is %d bytes; it should hold a signed id only", len(c.Value))
			}
		})
	}
}

func TestCallbackRefusesBadState(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mangle func(t *testing.T, app *testApp, b *browser, cb string) (response, *browser)
	}{
		{"mismatch", func(t *testing.T, app *testApp, b *browser, cb string) (response, *browser) {
			u, _ := url.Parse(cb)
			q := u.Query()
			q.Set("state", "forged-"+q.Get("state"))
			u.RawQuery = q.Encode()
			return b.get(u.String()), b
		}},
		{"missing", func(t *testing.T, app *testApp, b *browser, cb string) (response, *browser) {
			u, _ := url.Parse(cb)
			q := u.Query()
			q.Del("state")
			u.RawQuery = q.Encode()
			return b.get(u.String()), b
		}},
		{"replay in the same browser", func(t *testing.T, app *testApp, b *browser, cb string) (response, *browser) {
			if r := b.follow(b.get(cb)); r.Status != http.StatusOK {
				t.Fatalf("first use of the callback: status %d", r.Status)
			}
			return b.get(cb), b
		}},
		{"another browser", func(t *testing.T, app *testApp, b *browser, cb string) (response, *browser) {
			other := app.newBrowser()
			return other.get(cb), other
		}},
		{"expired after 10 minutes", func(t *testing.T, app *testApp, b *browser, cb string) (response, *browser) {
			app.clock.Advance(11 * time.Minute)
			return b.get(cb), b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := newTestApp(t, testAppOptions{})
			b := app.newBrowser()
			cb := b.consent(b.startLogin(""), sandbox.DemoAdminEmail, "allow")
			before := len(auditEventsOf(t, app.DB, "state_mismatch"))
			r, used := tc.mangle(t, app, b, cb)
			if r.Status != http.StatusForbidden {
				t.Fatalf("status %d, want 403; body %.300s", r.Status, r.Body)
			}
			// A login waiting in this browser answered wrongly is audited;
			// a callback no login waits for (a replay, another browser)
			// is counted, never written (promise 12).
			wantAudit, wantStray := before+1, "0"
			if tc.name == "replay in the same browser" || tc.name == "another browser" {
				wantAudit, wantStray = before, "1"
			}
			if n := len(auditEventsOf(t, app.DB, "state_mismatch")); n != wantAudit {
				t.Errorf("state_mismatch audit events: %d, want %d", n, wantAudit)
			}
			if got := app.metric("onbehalf_oauth_stray_callbacks_total"); got != wantStray {
				t.Errorf("stray callbacks counted: %q, want %s", got, wantStray)
			}
			if home := used.get("/"); home.doc(t).Find(`[data-testid="signed-in"]`).Length() != 0 && tc.name != "replay in the same browser" {
				t.Errorf("browser is signed in after a refused callback")
			}
		})
	}
}

func TestConsentDeniedExplains(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	b := app.newBrowser()
	r := b.get(b.consent(b.startLogin(""), sandbox.DemoAdminEmail, "deny"))
	if r.Status != http.StatusForbidden {
		t.Fatalf("status %d, want 403", r.Status)
	}
	msg := r.doc(t).Find(`[data-testid="error-message"]`).Text()
	if !strings.Contains(msg, "denied") || r.doc(t).Find(`[data-testid="error-action"]`).AttrOr("href", "") == "" {
		t.Errorf("deny page should explain and offer to log in again; message %q", msg)
	}
}

func TestAgentIsRefusedAndTokenRevoked(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	b := app.newBrowser()
	r := b.get(b.consent(b.startLogin(""), sandbox.DemoAgentEmail, "allow"))
	if r.Status != http.StatusForbidden {
		t.Fatalf("status %d, want 403: %.300s", r.Status, r.Body)
	}
	msg := r.doc(t).Find(`[data-testid="error-message"]`).Text()
	if !strings.Contains(msg, "Sam Agent") || !strings.Contains(msg, "agent") {
		t.Errorf("refusal should name the person and their role; got %q", msg)
	}
	if st := app.Sandbox.Stats(); st.Revocations < 1 {
		t.Errorf("sandbox saw %d revocations, want the agent's token revoked", st.Revocations)
	}
	events := auditEventsOf(t, app.DB, "login_refused")
	if len(events) != 1 || events[0].AdminID != sandbox.DemoAgentID {
		t.Errorf("login_refused events = %+v", events)
	}
	if len(auditEventsOf(t, app.DB, "login")) != 0 {
		t.Error("an agent's login was recorded as a login")
	}
	if home := b.get("/"); home.doc(t).Find(`[data-testid="login"]`).Length() != 1 {
		t.Error("the agent's browser is not on the login page")
	}
}

func TestLogoutRevokesAndForgets(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	b := app.newBrowser()
	home := b.login(sandbox.DemoAdminEmail)
	grant := onlyGrant(t, app)
	if !app.Sandbox.TokenActive(grant.Token.AccessToken) {
		t.Fatal("the stored token is not active at the sandbox")
	}
	oldCookie := b.cookie()

	r := b.post("/logout", url.Values{"_csrf": {csrfOf(t, home)}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("logout status %d: %.300s", r.Status, r.Body)
	}
	if app.Sandbox.TokenActive(grant.Token.AccessToken) {
		t.Error("the token still works at Zendesk after logout")
	}
	if _, err := app.DB.FindGrantByID(context.Background(), grant.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("grant after logout: err %v, want ErrNotFound", err)
	}
	if page := b.follow(r); page.doc(t).Find(`[data-testid="login"]`).Length() != 1 {
		t.Error("after logout the browser is not shown the login page")
	}
	// The old cookie, replayed, gets the login page.
	other := app.newBrowser()
	u, _ := url.Parse(app.URL)
	other.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionName, Value: oldCookie, Path: "/"}})
	if page := other.get("/"); page.doc(t).Find(`[data-testid="login"]`).Length() != 1 {
		t.Error("the old cookie still reaches a signed-in page")
	}
	if events := auditEventsOf(t, app.DB, "logout"); len(events) != 1 {
		t.Errorf("logout audit events: %d, want 1", len(events))
	}
}

func TestPostWithoutFormTokenIsRefused(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	b := app.newBrowser()
	b.login(sandbox.DemoAdminEmail)

	for _, token := range []string{"", "wrong-token"} {
		r := b.post("/logout", url.Values{"_csrf": {token}})
		if r.Status != http.StatusForbidden {
			t.Errorf("logout with token %q: status %d, want 403", token, r.Status)
		}
	}
	if home := b.get("/"); home.doc(t).Find(`[data-testid="signed-in"]`).Length() != 1 {
		t.Error("a refused logout signed the admin out")
	}
}

func TestCrossOriginPostIsRefused(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	b := app.newBrowser()
	home := b.login(sandbox.DemoAdminEmail)

	req, _ := http.NewRequest(http.MethodPost, app.URL+"/logout", strings.NewReader(url.Values{"_csrf": {csrfOf(t, home)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if r := b.do(req); r.Status != http.StatusForbidden {
		t.Errorf("cross-site POST: status %d, want 403", r.Status)
	}
	if page := b.get("/"); page.doc(t).Find(`[data-testid="signed-in"]`).Length() != 1 {
		t.Error("a cross-site POST signed the admin out")
	}
}

func TestReturnToAfterLogin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ returnTo, want string }{
		{"/audit?admin=1", "/audit?admin=1"},
		{"//evil.example/x", "/"},
		{"https://evil.example", "/"},
		{`/\evil.example`, "/"},
	} {
		t.Run(tc.returnTo, func(t *testing.T) {
			t.Parallel()
			app := newTestApp(t, testAppOptions{})
			b := app.newBrowser()
			r := b.get(b.consent(b.startLogin(tc.returnTo), sandbox.DemoAdminEmail, "allow"))
			if r.Status != http.StatusSeeOther || r.Location != tc.want {
				t.Errorf("after login redirected (%d) to %q, want %q", r.Status, r.Location, tc.want)
			}
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	r := app.newBrowser().get("/")
	csp := r.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP allows inline code: %q", csp)
	}
	for h, want := range map[string]string{
		"Referrer-Policy":        "same-origin",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if r.doc(t).Find("script:not([src])").Length() != 0 {
		t.Error("page has an inline script")
	}
}

func TestTokensNeverLeak(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{Switches: sandbox.Switches{ExpiringTokens: true}})
	b := app.newBrowser()
	home := b.login(sandbox.DemoAdminEmail)
	grant := onlyGrant(t, app)
	secrets := []string{grant.Token.AccessToken, grant.Token.RefreshToken}
	if secrets[1] == "" {
		t.Fatal("expected a refresh token with expiring tokens on")
	}
	// Provoke error pages and a refusal too.
	b.get("/no-such-page")
	b.post("/logout", url.Values{"_csrf": {"wrong"}})
	agent := app.newBrowser()
	agent.get(agent.consent(agent.startLogin(""), sandbox.DemoAgentEmail, "allow"))
	b.post("/logout", url.Values{"_csrf": {csrfOf(t, home)}})

	all := app.Logs.String() + strings.Join(b.Pages, "\n") + strings.Join(agent.Pages, "\n")
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("a token (%.6s…) appears in logs or pages", s)
		}
	}
	for _, e := range auditEventsOf(t, app.DB, "") {
		for _, s := range secrets {
			if strings.Contains(e.Detail, s) {
				t.Errorf("a token appears in the audit trail")
			}
		}
	}
}

func TestLoginWorksWithEveryTokenEndpointVariant(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		sw   sandbox.Switches
	}{
		{"JSON only", sandbox.Switches{TokenJSONOnly: true}},
		{"201 Created", sandbox.Switches{TokenStatusCreated: true}},
		{"expiring tokens", sandbox.Switches{ExpiringTokens: true}},
		{"non-expiring tokens", sandbox.Switches{ExpiringTokens: false}},
		{"revoke current ignored", sandbox.Switches{RevokeCurrentIgnored: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := newTestApp(t, testAppOptions{Switches: tc.sw})
			b := app.newBrowser()
			home := b.login(sandbox.DemoAdminEmail)
			if home.doc(t).Find(`[data-testid="signed-in"]`).Length() != 1 {
				t.Fatalf("not signed in: %.300s", home.Body)
			}
			grant := onlyGrant(t, app)
			if tc.sw.ExpiringTokens != !grant.Token.Expiry.IsZero() {
				t.Errorf("stored token expiry %v with expiring tokens %v", grant.Token.Expiry, tc.sw.ExpiringTokens)
			}
			b.post("/logout", url.Values{"_csrf": {csrfOf(t, home)}})
			if app.Sandbox.TokenActive(grant.Token.AccessToken) {
				t.Error("token still active after logout")
			}
		})
	}
}

func TestExpiredTokenIsRefreshedOnce(t *testing.T) {
	t.Parallel()
	for _, handles := range []int{1, 2} {
		t.Run(map[int]string{1: "one store handle", 2: "two store handles"}[handles], func(t *testing.T) {
			t.Parallel()
			app := newTestApp(t, testAppOptions{Switches: sandbox.Switches{ExpiringTokens: true}})
			b := app.newBrowser()
			b.login(sandbox.DemoAdminEmail)
			grant := onlyGrant(t, app)
			// 31 minutes later the 30-minute access token has expired, at
			// the sandbox and in the store alike.
			app.clock.Advance(31 * time.Minute)
			if app.Sandbox.TokenActive(grant.Token.AccessToken) {
				t.Fatal("the access token is still active 31 minutes on")
			}

			dbs := []*store.DB{app.DB}
			if handles == 2 {
				second, err := store.Open(context.Background(), "sqlite:"+app.DBPath, store.Options{SecretKey: []byte("0123456789abcdef0123456789abcdef-test"), Now: app.clock.Now})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { second.Close() })
				dbs = append(dbs, second)
			}
			before := app.Sandbox.Stats().Refreshes
			var wg sync.WaitGroup
			errs := make(chan error, 20)
			for i := 0; i < 20; i++ {
				db := dbs[i%len(dbs)]
				wg.Add(1)
				go func() {
					defer wg.Done()
					zc, err := zendesk.New(app.Sandbox.URL, db.TokenSource(grant.ID, func(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
						return app.Flow.Refresh(ctx, old.RefreshToken)
					}))
					if err != nil {
						errs <- err
						return
					}
					me, err := zc.Me(context.Background())
					if err == nil && me.ID != sandbox.DemoAdminID {
						err = errors.New("me is not the admin")
					}
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("call with refreshed token: %v", err)
				}
			}
			if n := app.Sandbox.Stats().Refreshes - before; n != 1 {
				t.Errorf("sandbox saw %d refreshes, want exactly 1", n)
			}
		})
	}
}

// onlyGrant returns the one grant in the store (the test logged in once).
func onlyGrant(t *testing.T, app *testApp) *store.Grant {
	t.Helper()
	for id := int64(1); id < 10; id++ {
		g, err := app.DB.FindGrantByID(context.Background(), id)
		if err == nil {
			return g
		}
	}
	t.Fatal("no grant stored")
	return nil
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	b := app.newBrowser()
	if r := b.get("/healthz"); r.Status != http.StatusOK {
		t.Errorf("/healthz: %d", r.Status)
	}
	if r := b.get("/readyz"); r.Status != http.StatusOK || !strings.Contains(r.Body, "ready") {
		t.Errorf("/readyz: %d %q", r.Status, r.Body)
	}
	// A database that no longer answers makes the app not ready.
	app.DB.Close()
	if r := b.get("/readyz"); r.Status != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database closed: %d, want 503", r.Status)
	} else if strings.Contains(r.Body, "sql") || strings.Contains(r.Body, "database is closed") {
		t.Errorf("/readyz shows the database's error to anyone: %q", r.Body)
	}
	if r := b.get("/healthz"); r.Status != http.StatusOK {
		t.Errorf("/healthz must not depend on the database: %d", r.Status)
	}
}

func TestUnknownPathsSignedOutAreNotFoundWithoutSession(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	b := app.newBrowser()
	for _, path := range []string{"/no-such-page", "/as/nothing/here", "/users/x"} {
		r := b.get(path)
		if r.Status != http.StatusNotFound {
			t.Errorf("%s signed out: status %d, want 404", path, r.Status)
		}
		if sc := r.Header.Get("Set-Cookie"); sc != "" {
			t.Errorf("%s signed out set a cookie %q: an unknown path must not start a session", path, sc)
		}
	}
	if r := b.get("/favicon.ico"); r.Status != http.StatusMovedPermanently || r.Header.Get("Set-Cookie") != "" {
		t.Errorf("/favicon.ico: status %d, Set-Cookie %q", r.Status, r.Header.Get("Set-Cookie"))
	}
	// Known admin pages still send a signed-out browser to log in.
	if r := b.get("/users"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/login?return_to=") {
		t.Errorf("/users signed out: %d %q, want a redirect to /login", r.Status, r.Location)
	}
}

func TestConcurrentPagesWithExpiredTokenRefreshOnce(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{Switches: sandbox.Switches{ExpiringTokens: true}})
	b := app.newBrowser()
	b.login(sandbox.DemoAdminEmail)
	app.clock.Advance(31 * time.Minute) // the 30-minute access token has expired
	before := app.Sandbox.Stats().Refreshes
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, app.URL+"/users?q=bea", nil)
			res, err := b.c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "Bea Lindqvist") {
				t.Errorf("search with an expired token: status %d", res.StatusCode)
			}
		}()
	}
	wg.Wait()
	if n := app.Sandbox.Stats().Refreshes - before; n != 1 {
		t.Errorf("20 concurrent pages caused %d refreshes at Zendesk, want exactly 1", n)
	}
}

func countSessions(t *testing.T, app *testApp) int {
	t.Helper()
	var n int
	if err := app.DB.SQL().QueryRow(`SELECT count(*) FROM sessions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStrayCallbacksWriteNothing replays the attack in issue 12: callbacks
// with no login in progress made one permanent audit row each. Now they
// get their page, a metric and a log line, no row; past the rate limit
// they are refused outright.
func TestStrayCallbacksWriteNothing(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	for i := range 300 {
		r := app.newBrowser().get("/oauth/callback?state=x&code=y")
		if i < defaultLoginRatePerMinute && r.Status != http.StatusForbidden {
			t.Fatalf("stray callback %d: status %d, want 403", i, r.Status)
		}
		if i >= defaultLoginRatePerMinute && r.Status != http.StatusTooManyRequests {
			t.Fatalf("stray callback %d past the limit: status %d, want 429", i, r.Status)
		}
		if sc := r.Header.Get("Set-Cookie"); sc != "" {
			t.Fatalf("stray callback %d set a cookie %q", i, sc)
		}
	}
	events, total, err := app.DB.FindAuditEvents(t.Context(), store.AuditFilter{Limit: 10})
	if err != nil || total != 0 {
		t.Errorf("audit rows after 300 stray callbacks: %d (%v, err %v), want none", total, events, err)
	}
	if n := countSessions(t, app); n != 0 {
		t.Errorf("sessions after 300 stray callbacks: %d, want none", n)
	}
	if got := app.metric("onbehalf_oauth_stray_callbacks_total"); got != strconv.Itoa(defaultLoginRatePerMinute) {
		t.Errorf("stray callbacks counted: %q, want %d", got, defaultLoginRatePerMinute)
	}
	if got := app.metric(`onbehalf_rate_limited_requests_total{route="/oauth/callback"}`); got != strconv.Itoa(300-defaultLoginRatePerMinute) {
		t.Errorf("rate-limited callbacks counted: %q, want %d", got, 300-defaultLoginRatePerMinute)
	}
	if !strings.Contains(app.Logs.String(), "oauth callback with no login in progress") {
		t.Error("no log line for the stray callbacks")
	}
}

// TestLoginIsRateLimitedPerAddress checks that /login is limited per client
// address with a Retry-After, stores no session when refused, and lets the
// address in again once its allowance refills.
func TestLoginIsRateLimitedPerAddress(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	for i := range defaultLoginRatePerMinute {
		if r := app.newBrowser().get("/login"); r.Status != http.StatusFound {
			t.Fatalf("login %d: status %d, want 302", i, r.Status)
		}
	}
	r := app.newBrowser().get("/login")
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || r.Header.Get("Set-Cookie") != "" {
		t.Fatalf("login past the limit: status %d, Retry-After %q, Set-Cookie %q; want 429, a wait and no session",
			r.Status, r.Header.Get("Retry-After"), r.Header.Get("Set-Cookie"))
	}
	if msg := r.doc(t).Find(`[data-testid="error-message"]`).Text(); !strings.Contains(msg, "Wait") {
		t.Errorf("rate-limit page = %q, want it to say to wait", msg)
	}
	if n := countSessions(t, app); n != defaultLoginRatePerMinute {
		t.Errorf("sessions: %d, want %d (one per login started)", n, defaultLoginRatePerMinute)
	}
	app.clock.Advance(time.Minute)
	if r := app.newBrowser().get("/login"); r.Status != http.StatusFound {
		t.Errorf("login a minute later: status %d, want 302", r.Status)
	}
}

// TestPreLoginSessionEndsWithTheAttempt checks that the session /login
// stores lives only a little longer than its 10-minute attempt, and is
// swept afterwards.
func TestPreLoginSessionEndsWithTheAttempt(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	app.newBrowser().startLogin("")
	var created, expires int64
	if err := app.DB.SQL().QueryRow(`SELECT created_at, expires_at FROM sessions`).Scan(&created, &expires); err != nil {
		t.Fatal(err)
	}
	if life := time.Duration(expires-created) * time.Microsecond; life > 15*time.Minute {
		t.Errorf("pre-login session lives %v, want at most 15m", life)
	}
	app.clock.Advance(16 * time.Minute)
	if n, err := app.DB.DeleteExpiredSessions(t.Context()); err != nil || n != 1 {
		t.Errorf("expired sessions swept after 16 minutes: %d (err %v), want 1", n, err)
	}
}

// TestReauthIsAPost checks that a link cannot end a session: GET
// /login?reauth=1 leaves a signed-in admin signed in, a POST without the
// form token is refused, and the POST with it starts a new login.
func TestReauthIsAPost(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	if r := s.get("/login?reauth=1&return_to=/audit"); r.Status != http.StatusSeeOther || r.Location != "/audit" {
		t.Errorf("GET /login?reauth=1 signed in: status %d location %q, want 303 to /audit", r.Status, r.Location)
	}
	if r := s.post("/login", url.Values{"return_to": {"/audit"}}); r.Status != http.StatusForbidden {
		t.Errorf("POST /login without the form token: status %d, want 403", r.Status)
	}
	if home := s.get("/"); home.doc(t).Find(`[data-testid="signed-in"]`).Length() != 1 {
		t.Fatal("the admin was signed out by a GET or a tokenless POST")
	}
	r := s.act("/login", url.Values{"return_to": {"/audit"}})
	if r.Status != http.StatusFound || !strings.HasPrefix(r.Location, app.Sandbox.URL+"/oauth/authorizations/new") {
		t.Fatalf("POST /login with the token: status %d location %q, want a redirect to Zendesk", r.Status, r.Location)
	}
	cb := s.consent(mustParseURL(t, r.Location), sandbox.DemoAdminEmail, "allow")
	if back := s.get(cb); back.Location != "/audit" {
		t.Errorf("after logging in again: location %q, want /audit", back.Location)
	}
}

func mustParseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// A page's script asking for something after the session ended (the live
// search, the rows table's refresh, the progress stream) gets a 401, not a
// redirect to /login: following it would start a login, store a session and
// spend the address's sign-in allowance, and replace the pre-login session
// of a login another tab is in the middle of. A person's navigation is
// still sent to log in.
func TestBackgroundRequestsAfterTheSessionEndedDoNotStartALogin(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	b := app.newBrowser()
	for _, tc := range []struct {
		name, path string
		header     map[string]string
	}{
		{"live search", "/users?fragment=1&q=bea", map[string]string{"Sec-Fetch-Mode": "cors"}},
		{"live search, no fetch metadata", "/users?fragment=1&q=bea", nil},
		{"rows table refresh", "/bulk/runs/1?fragment=rows", map[string]string{"Sec-Fetch-Mode": "same-origin"}},
		{"progress stream", "/bulk/runs/1/events", map[string]string{"Accept": "text/event-stream"}},
	} {
		req, err := http.NewRequest(http.MethodGet, b.abs(tc.path), nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		r := b.do(req)
		if r.Status != http.StatusUnauthorized || r.Location != "" || r.Header.Get("Set-Cookie") != "" {
			t.Errorf("%s: status %d, Location %q, Set-Cookie %q; want 401, no redirect, no session",
				tc.name, r.Status, r.Location, r.Header.Get("Set-Cookie"))
		}
	}
	if n := countSessions(t, app); n != 0 {
		t.Errorf("background requests stored %d sessions", n)
	}
	req, _ := http.NewRequest(http.MethodGet, b.abs("/users?q=bea"), nil)
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	if r := b.do(req); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/login?return_to=") {
		t.Errorf("a navigation: status %d to %q, want 303 to /login", r.Status, r.Location)
	}
}
