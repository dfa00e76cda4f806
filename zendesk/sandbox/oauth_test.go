package sandbox

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

const testVerifier = "dBjftJeZ4CVP-mJ92K27uhbUJU1p1r_wW1gFWFOEjXk-extra-entropy"

func challengeOf(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func authParams(client string) url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {client},
		"redirect_uri":          {testRedirect},
		"scope":                 {"read write impersonate"},
		"state":                 {"st4te"},
		"code_challenge":        {challengeOf(testVerifier)},
		"code_challenge_method": {"S256"},
	}
}

func noRedirectClient() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// getConsent fetches the sign-in page and parses it.
func getConsent(t *testing.T, srv *Server, q url.Values) (*http.Response, *goquery.Document) {
	t.Helper()
	res, err := noRedirectClient().Get(srv.URL + "/oauth/authorizations/new?" + q.Encode())
	if err != nil {
		t.Fatalf("GET authorize: %v", err)
	}
	defer res.Body.Close()
	doc, err := goquery.NewDocumentFromReader(res.Body)
	if err != nil {
		t.Fatalf("parse page: %v", err)
	}
	return res, doc
}

// mustAuthorize walks the consent page as a browser would: it posts the
// page's own form with the chosen user and decision and returns the
// redirect target.
func mustAuthorize(t *testing.T, srv *Server, q url.Values, user, decision string) *url.URL {
	t.Helper()
	res, doc := getConsent(t, srv, q)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("consent page status %d", res.StatusCode)
	}
	form := url.Values{}
	doc.Find(`form input[type="hidden"]`).Each(func(_ int, s *goquery.Selection) {
		form.Set(s.AttrOr("name", ""), s.AttrOr("value", ""))
	})
	if user == "" {
		user = doc.Find(`[data-testid="user"] option[selected]`).AttrOr("value", "")
	}
	form.Set("user", user)
	form.Set("decision", doc.Find(`[data-testid="`+decision+`"]`).AttrOr("value", ""))
	action := doc.Find("form").AttrOr("action", "")
	res2, err := noRedirectClient().PostForm(srv.URL+action, form)
	if err != nil {
		t.Fatalf("POST authorize: %v", err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusFound {
		t.Fatalf("POST authorize status %d, want 302", res2.StatusCode)
	}
	loc, err := url.Parse(res2.Header.Get("Location"))
	if err != nil {
		t.Fatalf("Location: %v", err)
	}
	return loc
}

func mustCode(t *testing.T, srv *Server, client, user string) string {
	t.Helper()
	loc := mustAuthorize(t, srv, authParams(client), user, "allow")
	code := loc.Query().Get("code")
	if code == "" || loc.Query().Get("state") != "st4te" {
		t.Fatalf("redirect %s lacks code or state", loc)
	}
	return code
}

// postToken posts fields to /oauth/tokens as JSON, or as a form when form
// is true.
func postToken(t *testing.T, srv *Server, fields map[string]string, form bool, opts ...reqOpt) resp {
	t.Helper()
	var body io.Reader
	ct := "application/json"
	if form {
		v := url.Values{}
		for k, f := range fields {
			v.Set(k, f)
		}
		body, ct = strings.NewReader(v.Encode()), "application/x-www-form-urlencoded"
	} else {
		b, _ := json.Marshal(fields)
		body = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth/tokens", body)
	req.Header.Set("Content-Type", ct)
	for _, o := range opts {
		o(req)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /oauth/tokens: %v", err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{Status: res.StatusCode, Header: res.Header, Raw: raw}
	_ = json.Unmarshal(raw, &out.JSON)
	return out
}

func exchangeFields(code string) map[string]string {
	return map[string]string{"grant_type": "authorization_code", "code": code, "client_id": testClientID,
		"client_secret": testSecret, "redirect_uri": testRedirect, "code_verifier": testVerifier}
}

func wantOAuthError(t *testing.T, r resp, status int, code string) {
	t.Helper()
	if r.Status != status || r.str("error") != code || r.str("error_description") == "" {
		t.Fatalf("got %d %s, want %d with error %q and a description", r.Status, r.Raw, status, code)
	}
}

func TestOAuthLoginWithPKCE(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	res, doc := getConsent(t, srv, authParams(testClientID))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if got := doc.Find(`[data-testid="user"] option[selected]`).AttrOr("value", ""); got != DemoAdminEmail {
		t.Errorf("preselected user = %q, want the first admin %q", got, DemoAdminEmail)
	}
	if got := strings.TrimSpace(doc.Find(`[data-testid="user"] option`).First().Text()); got != "Ada Admin — admin (ada@example.com)" {
		t.Errorf("first option reads %q, want the name, role and email", got)
	}
	if n := doc.Find(`[data-testid="user"] option`).Length(); n != 8 {
		t.Errorf("people on page = %d, want 8", n)
	}
	if doc.Find(`form button[data-testid="allow"]`).Length() != 1 || doc.Find(`form button[data-testid="deny"]`).Length() != 1 {
		t.Error("allow and deny buttons must be in the form")
	}
	if got := doc.Find(`[data-testid="client"]`).Text(); got != testClientID {
		t.Errorf("client shown = %q", got)
	}

	for _, public := range []bool{false, true} {
		client := testClientID
		fields := func(code string) map[string]string { return exchangeFields(code) }
		if public {
			client = "public-app"
			fields = func(code string) map[string]string {
				return map[string]string{"grant_type": "authorization_code", "code": code, "client_id": client,
					"redirect_uri": testRedirect, "code_verifier": testVerifier}
			}
		}
		code := mustCode(t, srv, client, DemoAdmin2Email)
		tr := postToken(t, srv, fields(code), false)
		wantStatus(t, tr, http.StatusOK)
		if tr.str("token_type") != "bearer" || tr.str("scope") != "read write impersonate" || tr.str("access_token") == "" {
			t.Fatalf("token answer %s", tr.Raw)
		}
		if tr.get("refresh_token") != nil || tr.get("expires_in") != nil {
			t.Errorf("legacy token has expiry fields: %s", tr.Raw)
		}
		me := do(t, srv, "GET", "/api/v2/users/me.json", tr.str("access_token"), nil)
		wantStatus(t, me, http.StatusOK)
		if me.num("user", "id") != DemoAdmin2ID {
			t.Errorf("me = %s, want user %d", me.Raw, DemoAdmin2ID)
		}
	}
	if got := srv.Stats().Exchanges; got != 2 {
		t.Errorf("Exchanges = %d, want 2", got)
	}
}

func TestAuthorizeBadClientOrRedirectNeverRedirects(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	tests := []struct {
		name string
		mod  func(url.Values)
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "nope") }},
		{"redirect mismatch", func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:9/evil") }},
		{"redirect prefix only", func(q url.Values) { q.Set("redirect_uri", testRedirect+"/x") }},
		{"no redirect", func(q url.Values) { q.Del("redirect_uri") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := authParams(testClientID)
			tt.mod(q)
			q.Set("scope", "bogus") // would redirect with invalid_scope if client and redirect were fine
			res, doc := getConsent(t, srv, q)
			if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
				t.Fatalf("status %d Location %q, want 400 and no redirect", res.StatusCode, res.Header.Get("Location"))
			}
			if doc.Find(`[data-testid="error"]`).Text() == "" {
				t.Error("error page has no message")
			}
		})
	}
}

func TestAuthorizeErrorsRedirectWithState(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	tests := []struct {
		name   string
		client string
		mod    func(url.Values)
		want   string
	}{
		{"unknown scope", testClientID, func(q url.Values) { q.Set("scope", "read admin") }, "invalid_scope"},
		{"read-only resource written", testClientID, func(q url.Values) { q.Set("scope", "auditlogs:write") }, "invalid_scope"},
		{"empty scope", testClientID, func(q url.Values) { q.Set("scope", "") }, "invalid_scope"},
		{"plain PKCE", testClientID, func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
		{"missing method", testClientID, func(q url.Values) { q.Del("code_challenge_method") }, "invalid_request"},
		{"public without PKCE", "public-app", func(q url.Values) {
			q.Del("code_challenge")
			q.Del("code_challenge_method")
		}, "invalid_request"},
		{"response_type token", testClientID, func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := authParams(tt.client)
			tt.mod(q)
			res, _ := getConsent(t, srv, q)
			if res.StatusCode != http.StatusFound {
				t.Fatalf("status %d, want 302", res.StatusCode)
			}
			loc, _ := url.Parse(res.Header.Get("Location"))
			if !strings.HasPrefix(loc.String(), testRedirect+"?") {
				t.Fatalf("redirected to %s", loc)
			}
			got := loc.Query()
			if got.Get("error") != tt.want || got.Get("error_description") == "" || got.Get("state") != "st4te" || got.Get("code") != "" {
				t.Fatalf("redirect query %v, want error=%s with description and state", got, tt.want)
			}
		})
	}

	t.Run("resource scopes accepted", func(t *testing.T) {
		t.Parallel()
		q := authParams(testClientID)
		q.Set("scope", "requests:write satisfaction_ratings:write users:read")
		if res, _ := getConsent(t, srv, q); res.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want the consent page", res.StatusCode)
		}
	})
	t.Run("deny", func(t *testing.T) {
		t.Parallel()
		loc := mustAuthorize(t, srv, authParams(testClientID), "", "deny")
		q := loc.Query()
		if q.Get("error") != "access_denied" || q.Get("error_description") == "" || q.Get("state") != "st4te" || q.Get("code") != "" {
			t.Fatalf("deny redirect %s", loc)
		}
	})
}

func TestTokenExchangeErrors(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := newTestServer(t, Options{Now: clock.Now})
	tests := []struct {
		name   string
		mod    func(f map[string]string)
		form   bool
		before func()
		status int
		want   string
	}{
		{"wrong verifier", func(f map[string]string) { f["code_verifier"] = testVerifier + "x" }, false, nil, 400, "invalid_grant"},
		{"missing verifier", func(f map[string]string) { delete(f, "code_verifier") }, false, nil, 400, "invalid_grant"},
		{"redirect mismatch", func(f map[string]string) { f["redirect_uri"] = testRedirect + "2" }, false, nil, 400, "invalid_grant"},
		{"unknown code", func(f map[string]string) { f["code"] = "nope" }, false, nil, 400, "invalid_grant"},
		{"wrong secret", func(f map[string]string) { f["client_secret"] = "wrong" }, false, nil, 401, "invalid_client"},
		{"unknown client", func(f map[string]string) { f["client_id"] = "nope" }, false, nil, 401, "invalid_client"},
		{"code of another client", func(f map[string]string) {
			f["client_id"] = "public-app"
			delete(f, "client_secret")
		}, false, nil, 400, "invalid_grant"},
		{"unsupported grant", func(f map[string]string) { f["grant_type"] = "password" }, false, nil, 400, "unsupported_grant_type"},
		{"expired code", nil, false, func() { clock.Advance(121 * time.Second) }, 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: "expired code" moves the shared clock.
			code := mustCode(t, srv, testClientID, "")
			f := exchangeFields(code)
			if tt.mod != nil {
				tt.mod(f)
			}
			if tt.before != nil {
				tt.before()
			}
			wantOAuthError(t, postToken(t, srv, f, tt.form), tt.status, tt.want)
		})
	}
	t.Run("code just inside 120s works", func(t *testing.T) {
		code := mustCode(t, srv, testClientID, "")
		clock.Advance(119 * time.Second)
		wantStatus(t, postToken(t, srv, exchangeFields(code), false), http.StatusOK)
	})
}

func TestTokenReusedCodeRevokesItsToken(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	code := mustCode(t, srv, testClientID, "")
	first := postToken(t, srv, exchangeFields(code), false)
	wantStatus(t, first, http.StatusOK)
	wantOAuthError(t, postToken(t, srv, exchangeFields(code), false), 400, "invalid_grant")
	if srv.TokenActive(first.str("access_token")) {
		t.Error("token from a replayed code is still active")
	}
}

func TestTokenConfidentialClientAuth(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	t.Run("neither secret nor PKCE", func(t *testing.T) {
		t.Parallel()
		q := authParams(testClientID)
		q.Del("code_challenge")
		q.Del("code_challenge_method")
		code := mustAuthorize(t, srv, q, "", "allow").Query().Get("code")
		f := exchangeFields(code)
		delete(f, "client_secret")
		delete(f, "code_verifier")
		wantOAuthError(t, postToken(t, srv, f, false), 401, "invalid_client")
	})
	t.Run("secret without PKCE", func(t *testing.T) {
		t.Parallel()
		q := authParams(testClientID)
		q.Del("code_challenge")
		q.Del("code_challenge_method")
		code := mustAuthorize(t, srv, q, "", "allow").Query().Get("code")
		f := exchangeFields(code)
		delete(f, "code_verifier")
		wantStatus(t, postToken(t, srv, f, false), http.StatusOK)
	})
	t.Run("PKCE without secret", func(t *testing.T) {
		t.Parallel()
		f := exchangeFields(mustCode(t, srv, testClientID, ""))
		delete(f, "client_secret")
		wantStatus(t, postToken(t, srv, f, false), http.StatusOK)
	})
	t.Run("HTTP Basic", func(t *testing.T) {
		t.Parallel()
		f := exchangeFields(mustCode(t, srv, testClientID, ""))
		delete(f, "client_secret")
		delete(f, "client_id")
		wantStatus(t, postToken(t, srv, f, true, func(r *http.Request) { r.SetBasicAuth(testClientID, testSecret) }), http.StatusOK)
	})
	t.Run("HTTP Basic wrong secret", func(t *testing.T) {
		t.Parallel()
		f := exchangeFields(mustCode(t, srv, testClientID, ""))
		delete(f, "client_secret")
		wantOAuthError(t, postToken(t, srv, f, true, func(r *http.Request) { r.SetBasicAuth(testClientID, "bad") }), 401, "invalid_client")
	})
}

func TestTokenBodyFormatsAndStatusSwitches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		sw     Switches
		form   bool
		status int
		errMsg string
	}{
		{"json", Switches{}, false, 200, ""},
		{"form", Switches{}, true, 200, ""},
		{"json only refuses form", Switches{TokenJSONOnly: true}, true, 400, "invalid_request"},
		{"json only takes json", Switches{TokenJSONOnly: true}, false, 200, ""},
		{"201 switch", Switches{TokenStatusCreated: true}, false, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, Options{Switches: tt.sw})
			r := postToken(t, srv, exchangeFields(mustCode(t, srv, testClientID, "")), tt.form)
			if tt.errMsg != "" {
				wantOAuthError(t, r, tt.status, tt.errMsg)
				return
			}
			wantStatus(t, r, tt.status)
			if r.str("access_token") == "" {
				t.Fatalf("no access token: %s", r.Raw)
			}
		})
	}
}

func TestExpiringTokensAndRefreshRotation(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := newTestServer(t, Options{Now: clock.Now, Switches: Switches{ExpiringTokens: true, AccessTokenTTL: 10 * time.Minute}})
	tr := postToken(t, srv, exchangeFields(mustCode(t, srv, testClientID, "")), false)
	wantStatus(t, tr, http.StatusOK)
	if tr.num("expires_in") != 600 || tr.num("refresh_token_expires_in") != 30*24*3600 || tr.str("refresh_token") == "" {
		t.Fatalf("expiring token answer %s", tr.Raw)
	}
	access, refresh := tr.str("access_token"), tr.str("refresh_token")
	refreshFields := func(rt string) map[string]string {
		return map[string]string{"grant_type": "refresh_token", "refresh_token": rt, "client_id": testClientID, "client_secret": testSecret}
	}

	clock.Advance(10 * time.Minute)
	wantInvalidToken(t, do(t, srv, "GET", "/api/v2/users/me", access, nil))

	r2 := postToken(t, srv, refreshFields(refresh), false)
	wantStatus(t, r2, http.StatusOK)
	access2, refresh2 := r2.str("access_token"), r2.str("refresh_token")
	if access2 == access || refresh2 == refresh || refresh2 == "" {
		t.Fatalf("refresh did not rotate: %s", r2.Raw)
	}
	wantStatus(t, do(t, srv, "GET", "/api/v2/users/me", access2, nil), http.StatusOK)
	wantOAuthError(t, postToken(t, srv, refreshFields(refresh), false), 400, "invalid_grant")

	// Rotation kills the old pair even while the access token is fresh.
	r3 := postToken(t, srv, refreshFields(refresh2), false)
	wantStatus(t, r3, http.StatusOK)
	if srv.TokenActive(access2) {
		t.Error("old access token still active after refresh")
	}
	wantOAuthError(t, postToken(t, srv, refreshFields(refresh2), false), 400, "invalid_grant")

	t.Run("wrong client secret", func(t *testing.T) {
		f := refreshFields(r3.str("refresh_token"))
		f["client_secret"] = "bad"
		wantOAuthError(t, postToken(t, srv, f, false), 401, "invalid_client")
	})
	t.Run("revoked refresh token", func(t *testing.T) {
		tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read")
		srv.RevokeRefreshToken(tok.RefreshToken)
		if !srv.TokenActive(tok.AccessToken) {
			t.Error("RevokeRefreshToken killed the access token")
		}
		wantOAuthError(t, postToken(t, srv, refreshFields(tok.RefreshToken), false), 400, "invalid_grant")
	})
	t.Run("expired refresh token", func(t *testing.T) {
		tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read")
		clock.Advance(30*24*time.Hour + time.Second)
		wantOAuthError(t, postToken(t, srv, refreshFields(tok.RefreshToken), false), 400, "invalid_grant")
	})
	t.Run("ExpireAccessToken keeps refresh", func(t *testing.T) {
		tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read")
		srv.ExpireAccessToken(tok.AccessToken)
		if srv.TokenActive(tok.AccessToken) {
			t.Fatal("token still active")
		}
		r := postToken(t, srv, refreshFields(tok.RefreshToken), false)
		wantStatus(t, r, http.StatusOK)
		if r.str("scope") != "read" {
			t.Errorf("scope after refresh = %q", r.str("scope"))
		}
	})
	if got := srv.Stats().Refreshes; got != 3 {
		t.Errorf("Refreshes = %d, want 3", got)
	}
}

func TestLegacyTokensHaveNoRefresh(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := newTestServer(t, Options{Now: clock.Now})
	tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read")
	if tok.RefreshToken != "" || !tok.ExpiresAt.IsZero() {
		t.Fatalf("legacy token %+v has expiry", tok)
	}
	clock.Advance(5 * 365 * 24 * time.Hour)
	wantStatus(t, do(t, srv, "GET", "/api/v2/users/me", tok.AccessToken, nil), http.StatusOK)
	wantOAuthError(t, postToken(t, srv, map[string]string{"grant_type": "refresh_token", "refresh_token": "",
		"client_id": testClientID, "client_secret": testSecret}, false), 400, "invalid_grant")
}

func TestRevokeTokens(t *testing.T) {
	t.Parallel()
	t.Run("current", func(t *testing.T) {
		t.Parallel()
		srv := newTestServer(t, Options{})
		tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write")
		cur := do(t, srv, "GET", "/api/v2/oauth/tokens/current.json", tok.AccessToken, nil)
		wantStatus(t, cur, http.StatusOK)
		if int64(cur.num("token", "id")) != tok.ID || cur.str("token", "token") != tok.AccessToken[:10] ||
			int64(cur.num("token", "user_id")) != DemoAdminID || cur.num("token", "client_id") == 0 {
			t.Fatalf("current = %s", cur.Raw)
		}
		if sc, _ := cur.get("token", "scopes").([]any); len(sc) != 2 {
			t.Errorf("scopes = %v", cur.get("token", "scopes"))
		}
		wantStatus(t, do(t, srv, "DELETE", "/api/v2/oauth/tokens/current.json", tok.AccessToken, nil), http.StatusNoContent)
		wantInvalidToken(t, do(t, srv, "GET", "/api/v2/oauth/tokens/current.json", tok.AccessToken, nil))
		if srv.Stats().Revocations != 1 {
			t.Error("revocation not counted")
		}
	})
	t.Run("current needs no scope", func(t *testing.T) {
		t.Parallel()
		srv := newTestServer(t, Options{})
		tok := mustToken(t, srv.Sandbox, DemoBeaEmail, "impersonate")
		wantStatus(t, do(t, srv, "DELETE", "/api/v2/oauth/tokens/current", tok.AccessToken, nil), http.StatusNoContent)
		if srv.TokenActive(tok.AccessToken) {
			t.Error("token alive")
		}
	})
	t.Run("RevokeCurrentIgnored", func(t *testing.T) {
		t.Parallel()
		srv := newTestServer(t, Options{Switches: Switches{RevokeCurrentIgnored: true}})
		tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write")
		wantStatus(t, do(t, srv, "DELETE", "/api/v2/oauth/tokens/current.json", tok.AccessToken, nil), http.StatusNoContent)
		if !srv.TokenActive(tok.AccessToken) {
			t.Fatal("token died although the switch ignores revoke-current")
		}
		path := "/api/v2/oauth/tokens/" + itoa(tok.ID) + ".json"
		wantStatus(t, do(t, srv, "DELETE", path, tok.AccessToken, nil), http.StatusNoContent)
		if srv.TokenActive(tok.AccessToken) {
			t.Fatal("revoke by id left the token alive")
		}
	})
	t.Run("revoke kills the refresh token too", func(t *testing.T) {
		t.Parallel()
		srv := newTestServer(t, Options{Switches: Switches{ExpiringTokens: true}})
		for _, byID := range []bool{false, true} {
			tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write")
			path := "/api/v2/oauth/tokens/current.json"
			if byID {
				path = "/api/v2/oauth/tokens/" + itoa(tok.ID) + ".json"
			}
			wantStatus(t, do(t, srv, "DELETE", path, tok.AccessToken, nil), http.StatusNoContent)
			wantOAuthError(t, postToken(t, srv, map[string]string{"grant_type": "refresh_token", "refresh_token": tok.RefreshToken,
				"client_id": testClientID, "client_secret": testSecret}, false), 400, "invalid_grant")
		}
	})
	t.Run("by id", func(t *testing.T) {
		t.Parallel()
		srv := newTestServer(t, Options{})
		admin := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write")
		agent := mustToken(t, srv.Sandbox, DemoAgentEmail, "read write")
		bea := mustToken(t, srv.Sandbox, DemoBeaEmail, "read")
		bea2 := mustToken(t, srv.Sandbox, DemoBeaEmail, "read")
		del := func(tok string, id int64) resp {
			return do(t, srv, "DELETE", "/api/v2/oauth/tokens/"+itoa(id)+".json", tok, nil)
		}
		wantForbidden(t, del(agent.AccessToken, bea.ID))
		wantStatus(t, del(bea2.AccessToken, bea.ID), http.StatusNoContent) // own token, no write scope
		wantStatus(t, del(admin.AccessToken, agent.ID), http.StatusNoContent)
		wantStatus(t, del(admin.AccessToken, 999999), http.StatusNotFound)
		if srv.TokenActive(bea.AccessToken) || srv.TokenActive(agent.AccessToken) || !srv.TokenActive(admin.AccessToken) {
			t.Error("wrong tokens revoked")
		}
	})
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestTokenRequestedLifetimes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		expiring    bool
		form        bool
		expiresIn   string
		refreshIn   string
		wantErr     bool
		wantExpires float64 // 0: field absent
		wantRefresh float64
	}{
		{"defaults", true, false, "", "", false, 1800, 2592000},
		{"asked", true, false, "3600", "864000", false, 3600, 864000},
		{"asked as form", true, true, "3600", "864000", false, 3600, 864000},
		{"too short", true, false, "300", "", true, 0, 0},
		{"too long", true, false, "172800", "", true, 0, 0},
		{"refresh too short", true, false, "", "604800", true, 0, 0},
		{"legacy ignores", false, false, "3600", "", false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, Options{Switches: Switches{ExpiringTokens: tt.expiring}})
			f := exchangeFields(mustCode(t, srv, testClientID, ""))
			if tt.expiresIn != "" {
				f["expires_in"] = tt.expiresIn
			}
			if tt.refreshIn != "" {
				f["refresh_token_expires_in"] = tt.refreshIn
			}
			var r resp
			if tt.form {
				r = postToken(t, srv, f, true)
			} else {
				// JSON numbers, as a JSON client sends them.
				m := map[string]any{}
				for k, v := range f {
					m[k] = v
					if k == "expires_in" || k == "refresh_token_expires_in" {
						n, _ := strconv.Atoi(v)
						m[k] = n
					}
				}
				r = do(t, srv, "POST", "/oauth/tokens", "", m)
			}
			if tt.wantErr {
				wantOAuthError(t, r, 400, "invalid_request")
				return
			}
			wantStatus(t, r, http.StatusOK)
			if r.num("expires_in") != tt.wantExpires || r.num("refresh_token_expires_in") != tt.wantRefresh {
				t.Errorf("answer %s", r.Raw)
			}
		})
	}
}
