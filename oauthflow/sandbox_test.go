package oauthflow_test

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/onbehalf/onbehalf/oauthflow"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// These tests run the whole flow against the sandbox Zendesk over loopback.

const (
	testClientID     = "onbehalf-test"
	testClientSecret = "confidential-secret-0123456789"
	testRedirectURL  = "http://127.0.0.1:1/oauth/callback" // never contacted: redirects are not followed
)

// leakGuard collects every secret a test sees and checks error texts against
// all of them.
type leakGuard struct {
	t       *testing.T
	secrets []string
}

func (g *leakGuard) add(secrets ...string) {
	for _, s := range secrets {
		if s != "" {
			g.secrets = append(g.secrets, s)
		}
	}
}

func (g *leakGuard) addToken(tok *oauth2.Token) {
	if tok != nil {
		g.add(tok.AccessToken, tok.RefreshToken)
	}
}

// check fails the test if err's text holds any secret seen so far.
func (g *leakGuard) check(err error) {
	g.t.Helper()
	assertNoSecret(g.t, err, g.secrets...)
}

// sandboxEnv is one sandbox and a Flow registered with it.
type sandboxEnv struct {
	srv   *sandbox.Server
	flow  *oauthflow.Flow
	guard *leakGuard
	now   time.Time // the Flow's clock
}

type envOptions struct {
	switches     sandbox.Switches
	confidential bool   // register the client with a secret
	flowSecret   string // the secret the Flow sends
	scopes       []string
}

func newTestSandboxEnv(t *testing.T, o envOptions) *sandboxEnv {
	t.Helper()
	client := sandbox.Client{Identifier: testClientID, Public: !o.confidential, RedirectURIs: []string{testRedirectURL}}
	if o.confidential {
		client.Secret = testClientSecret
	}
	srv, err := sandbox.Start(sandbox.Options{Clients: []sandbox.Client{client}, Switches: o.switches})
	if err != nil {
		t.Fatalf("sandbox.Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	now := time.Now().UTC().Truncate(time.Second)
	f := mustNew(t, oauthflow.Config{
		BaseURL:      srv.URL,
		ClientID:     testClientID,
		ClientSecret: o.flowSecret,
		RedirectURL:  testRedirectURL,
		Scopes:       o.scopes,
		Now:          func() time.Time { return now },
	})
	g := &leakGuard{t: t}
	g.add(testClientSecret, o.flowSecret)
	return &sandboxEnv{srv: srv, flow: f, guard: g, now: now}
}

// noRedirect is a browser stand-in that stops at every redirect.
func noRedirect() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

var (
	inputTag = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	formTag  = regexp.MustCompile(`(?is)<form\b[^>]*>`)
	attr     = regexp.MustCompile(`(?is)([a-z-]+)\s*=\s*"([^"]*)"`)
)

func attrs(tag string) map[string]string {
	m := map[string]string{}
	for _, a := range attr.FindAllStringSubmatch(tag, -1) {
		m[strings.ToLower(a[1])] = html.UnescapeString(a[2])
	}
	return m
}

// authorize plays the person at Zendesk's consent page: it opens a.URL,
// submits the page's form with decision and user, and returns the query of
// the redirect to the callback.
func (e *sandboxEnv) authorize(t *testing.T, a oauthflow.Attempt, decision, user string) url.Values {
	t.Helper()
	e.guard.add(a.Verifier)
	c := noRedirect()
	resp, err := c.Get(a.URL)
	if err != nil {
		t.Fatalf("GET authorize: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusFound { // an error straight away (e.g. invalid_scope)
		return e.callbackQuery(t, resp)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET authorize = %d, want 200; page:\n%s", resp.StatusCode, page)
	}
	body := string(page)
	if !strings.Contains(body, `data-testid="allow"`) || !strings.Contains(body, `data-testid="deny"`) {
		t.Fatalf("consent page has no allow/deny buttons:\n%s", body)
	}
	form := url.Values{}
	for _, tag := range inputTag.FindAllString(body, -1) {
		if m := attrs(tag); strings.EqualFold(m["type"], "hidden") && m["name"] != "" {
			form.Set(m["name"], m["value"])
		}
	}
	if form.Get("state") != a.State || form.Get("code_challenge") == "" {
		t.Fatalf("consent form does not carry state and challenge: %v", form)
	}
	form.Set("decision", decision)
	form.Set("user", user)
	action := attrs(formTag.FindString(body))["action"]
	target, err := resp.Request.URL.Parse(action)
	if err != nil {
		t.Fatalf("form action %q: %v", action, err)
	}
	resp, err = c.PostForm(target.String(), form)
	if err != nil {
		t.Fatalf("POST consent: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		page, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST consent = %d, want 302; page:\n%s", resp.StatusCode, page)
	}
	return e.callbackQuery(t, resp)
}

// callbackQuery checks that resp redirects to the callback and returns the
// query it carries.
func (e *sandboxEnv) callbackQuery(t *testing.T, resp *http.Response) url.Values {
	t.Helper()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("redirect without Location: %v", err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirectURL {
		t.Fatalf("redirected to %s, want the callback %s", got, testRedirectURL)
	}
	q := loc.Query()
	e.guard.add(q.Get("code"))
	return q
}

// login runs Begin, Allow as user, and the state check, and returns the code
// and the attempt.
func (e *sandboxEnv) login(t *testing.T, user string) (string, oauthflow.Attempt) {
	t.Helper()
	a := mustBegin(t, e.flow)
	q := e.authorize(t, a, "allow", user)
	if err := oauthflow.CallbackError(q); err != nil {
		t.Fatalf("CallbackError = %v, want nil", err)
	}
	if !oauthflow.StatesEqual(q.Get("state"), a.State) {
		t.Fatalf("callback state %q, want %q", q.Get("state"), a.State)
	}
	if q.Get("code") == "" {
		t.Fatalf("callback has no code: %v", q)
	}
	return q.Get("code"), a
}

// mustExchange logs in as user and exchanges the code.
func (e *sandboxEnv) mustExchange(t *testing.T, user string) *oauth2.Token {
	t.Helper()
	code, a := e.login(t, user)
	tok, err := e.flow.Exchange(context.Background(), code, a.Verifier)
	e.guard.check(err)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	e.guard.addToken(tok)
	if !e.srv.TokenActive(tok.AccessToken) {
		t.Fatalf("the sandbox does not know the exchanged token as active")
	}
	return tok
}

// wantSentinel checks err against want with errors.Is (and that no secret
// leaks into it).
func (e *sandboxEnv) wantSentinel(t *testing.T, what string, err, want error) {
	t.Helper()
	e.guard.check(err)
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

func TestSandboxLogin(t *testing.T) {
	t.Parallel()

	t.Run("full login with PKCE, then revoke", func(t *testing.T) {
		t.Parallel()
		e := newTestSandboxEnv(t, envOptions{})
		tok := e.mustExchange(t, sandbox.DemoAdminEmail)
		if got := oauthflow.GrantedScope(tok); got != "read write impersonate" {
			t.Errorf("GrantedScope = %q, want the default scopes", got)
		}
		if st := e.srv.Stats(); st.Exchanges != 1 {
			t.Errorf("sandbox Exchanges = %d, want 1", st.Exchanges)
		}
		err := e.flow.Revoke(context.Background(), tok.AccessToken)
		e.guard.check(err)
		if err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if e.srv.TokenActive(tok.AccessToken) {
			t.Errorf("token still active after Revoke")
		}
		// A dead token counts as revoked.
		err = e.flow.Revoke(context.Background(), tok.AccessToken)
		e.guard.check(err)
		if err != nil {
			t.Errorf("second Revoke = %v, want nil", err)
		}
	})

	t.Run("wrong verifier", func(t *testing.T) {
		t.Parallel()
		e := newTestSandboxEnv(t, envOptions{})
		code, _ := e.login(t, sandbox.DemoAdminEmail)
		other := mustBegin(t, e.flow)
		e.guard.add(other.Verifier)
		tok, err := e.flow.Exchange(context.Background(), code, other.Verifier)
		e.guard.addToken(tok)
		e.wantSentinel(t, "Exchange with another attempt's verifier", err, oauthflow.ErrInvalidGrant)
		if tok != nil {
			t.Errorf("got a token with the wrong verifier")
		}
	})

	t.Run("reused code", func(t *testing.T) {
		t.Parallel()
		e := newTestSandboxEnv(t, envOptions{})
		code, a := e.login(t, sandbox.DemoAdminEmail)
		tok, err := e.flow.Exchange(context.Background(), code, a.Verifier)
		e.guard.addToken(tok)
		e.guard.check(err)
		if err != nil {
			t.Fatalf("first Exchange: %v", err)
		}
		tok2, err := e.flow.Exchange(context.Background(), code, a.Verifier)
		e.guard.addToken(tok2)
		e.wantSentinel(t, "second Exchange of the same code", err, oauthflow.ErrInvalidGrant)
	})

	t.Run("deny", func(t *testing.T) {
		t.Parallel()
		e := newTestSandboxEnv(t, envOptions{})
		a := mustBegin(t, e.flow)
		q := e.authorize(t, a, "deny", sandbox.DemoAdminEmail)
		if q.Has("code") {
			t.Errorf("a denied login got a code")
		}
		if !oauthflow.StatesEqual(q.Get("state"), a.State) {
			t.Errorf("deny redirect state %q, want %q", q.Get("state"), a.State)
		}
		e.wantSentinel(t, "CallbackError after deny", oauthflow.CallbackError(q), oauthflow.ErrAccessDenied)
	})

	t.Run("unknown scope", func(t *testing.T) {
		t.Parallel()
		e := newTestSandboxEnv(t, envOptions{scopes: []string{"read", "teleport"}})
		a := mustBegin(t, e.flow)
		q := e.authorize(t, a, "allow", sandbox.DemoAdminEmail)
		e.wantSentinel(t, "CallbackError for an unknown scope", oauthflow.CallbackError(q), oauthflow.ErrInvalidScope)
	})

	t.Run("confidential client, right secret", func(t *testing.T) {
		t.Parallel()
		e := newTestSandboxEnv(t, envOptions{confidential: true, flowSecret: testClientSecret})
		e.mustExchange(t, sandbox.DemoAdminEmail)
	})

	t.Run("confidential client, wrong secret", func(t *testing.T) {
		t.Parallel()
		e := newTestSandboxEnv(t, envOptions{confidential: true, flowSecret: "wrong-secret-0123456789"})
		code, a := e.login(t, sandbox.DemoAdminEmail)
		tok, err := e.flow.Exchange(context.Background(), code, a.Verifier)
		e.guard.addToken(tok)
		e.wantSentinel(t, "Exchange with a wrong secret", err, oauthflow.ErrInvalidClient)
		var oe *oauthflow.Error
		if errors.As(err, &oe) && oe.Status != http.StatusUnauthorized {
			t.Errorf("status = %d, want 401", oe.Status)
		}
	})
}

func TestSandboxSwitches(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name     string
		switches sandbox.Switches
	}{
		{"TokenJSONOnly", sandbox.Switches{TokenJSONOnly: true}},
		{"TokenStatusCreated", sandbox.Switches{TokenStatusCreated: true}},
		{"TokenJSONOnly and TokenStatusCreated with expiring tokens",
			sandbox.Switches{TokenJSONOnly: true, TokenStatusCreated: true, ExpiringTokens: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestSandboxEnv(t, envOptions{switches: tt.switches})
			tok := e.mustExchange(t, sandbox.DemoAdminEmail)
			if tt.switches.ExpiringTokens {
				tok2, err := e.flow.Refresh(context.Background(), tok.RefreshToken)
				e.guard.addToken(tok2)
				e.guard.check(err)
				if err != nil {
					t.Fatalf("Refresh: %v", err)
				}
			}
		})
	}

	t.Run("ExpiringTokens on", func(t *testing.T) {
		t.Parallel()
		e := newTestSandboxEnv(t, envOptions{switches: sandbox.Switches{
			ExpiringTokens: true, AccessTokenTTL: 10 * time.Minute, RefreshTokenTTL: 14 * 24 * time.Hour}})
		ctx := context.Background()
		tok := e.mustExchange(t, sandbox.DemoAdminEmail)
		if want := e.now.Add(10 * time.Minute); !tok.Expiry.Equal(want) {
			t.Errorf("Expiry = %v, want %v (now + expires_in)", tok.Expiry, want)
		}
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token")
		}
		if want := e.now.Add(14 * 24 * time.Hour); !oauthflow.RefreshExpiry(tok).Equal(want) {
			t.Errorf("RefreshExpiry = %v, want %v", oauthflow.RefreshExpiry(tok), want)
		}

		tok2, err := e.flow.Refresh(ctx, tok.RefreshToken)
		e.guard.addToken(tok2)
		e.guard.check(err)
		if err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		if tok2.AccessToken == tok.AccessToken || tok2.RefreshToken == tok.RefreshToken || tok2.RefreshToken == "" {
			t.Errorf("refresh did not rotate both tokens")
		}
		if tok2.Expiry.IsZero() || oauthflow.GrantedScope(tok2) != "read write impersonate" {
			t.Errorf("refreshed token: Expiry %v, scope %q", tok2.Expiry, oauthflow.GrantedScope(tok2))
		}
		if e.srv.TokenActive(tok.AccessToken) || !e.srv.TokenActive(tok2.AccessToken) {
			t.Errorf("after rotation: old active %v, new active %v; want false, true",
				e.srv.TokenActive(tok.AccessToken), e.srv.TokenActive(tok2.AccessToken))
		}
		if st := e.srv.Stats(); st.Refreshes != 1 {
			t.Errorf("sandbox Refreshes = %d, want 1", st.Refreshes)
		}
		_, err = e.flow.Refresh(ctx, tok.RefreshToken)
		e.wantSentinel(t, "Refresh with the rotated-out refresh token", err, oauthflow.ErrInvalidGrant)

		// Logout revokes the pair: the refresh token must die with the access token.
		err = e.flow.Revoke(ctx, tok2.AccessToken)
		e.guard.check(err)
		if err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		_, err = e.flow.Refresh(ctx, tok2.RefreshToken)
		e.wantSentinel(t, "Refresh after Revoke", err, oauthflow.ErrInvalidGrant)
	})

	t.Run("ExpiringTokens off", func(t *testing.T) {
		t.Parallel()
		e := newTestSandboxEnv(t, envOptions{})
		tok := e.mustExchange(t, sandbox.DemoAdminEmail)
		if !tok.Expiry.IsZero() || tok.RefreshToken != "" || !oauthflow.RefreshExpiry(tok).IsZero() {
			t.Errorf("legacy token: Expiry %v, refresh token set %v, RefreshExpiry %v; want none",
				tok.Expiry, tok.RefreshToken != "", oauthflow.RefreshExpiry(tok))
		}
		if !tok.Valid() {
			t.Errorf("a never-expiring token is not Valid()")
		}
		_, err := e.flow.Refresh(context.Background(), "no-such-refresh-token-0123456789")
		e.wantSentinel(t, "Refresh of an unknown token", err, oauthflow.ErrInvalidGrant)
	})

	t.Run("RevokeCurrentIgnored", func(t *testing.T) {
		t.Parallel()
		e := newTestSandboxEnv(t, envOptions{switches: sandbox.Switches{RevokeCurrentIgnored: true}})
		tok := e.mustExchange(t, sandbox.DemoAdminEmail)
		err := e.flow.Revoke(context.Background(), tok.AccessToken)
		e.guard.check(err)
		if err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if e.srv.TokenActive(tok.AccessToken) {
			t.Errorf("token still active after Revoke with RevokeCurrentIgnored")
		}
		if st := e.srv.Stats(); st.Calls["DELETE /api/v2/oauth/tokens/{id}"] != 1 {
			t.Errorf("Calls = %v, want one DELETE by id", st.Calls)
		}
	})

	t.Run("revoke a token without read scope", func(t *testing.T) {
		t.Parallel()
		e := newTestSandboxEnv(t, envOptions{scopes: []string{"write"}})
		tok := e.mustExchange(t, sandbox.DemoAdminEmail)
		err := e.flow.Revoke(context.Background(), tok.AccessToken)
		e.guard.check(err)
		if err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if e.srv.TokenActive(tok.AccessToken) {
			t.Errorf("token still active after Revoke")
		}
	})
}
