package sandbox

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
)

func TestIssueTokenErrors(t *testing.T) {
	t.Parallel()
	s := New(Options{})
	if _, err := s.IssueToken("nobody@example.com", "read"); err == nil {
		t.Error("unknown user: no error")
	}
	_, err := s.IssueToken(DemoAdminEmail, "read everything")
	if !errors.Is(err, errInvalidScope) {
		t.Errorf("bad scope: err = %v, want errInvalidScope", err)
	}
	tok, err := s.IssueToken("ADA@example.com", "read write read")
	if err != nil || tok.Scope != "read write" || tok.UserID != DemoAdminID || len(tok.AccessToken) < 32 || !s.TokenActive(tok.AccessToken) {
		t.Errorf("token %+v, err %v", tok, err)
	}
}

func TestRegisterClientAndSetSwitches(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	const redirect2 = "http://127.0.0.1:9/other"
	srv.RegisterClient(Client{Identifier: "late", Secret: "x", RedirectURIs: []string{redirect2}})
	q := authParams("late")
	q.Set("redirect_uri", redirect2)
	if res, _ := getConsent(t, srv, q); res.StatusCode != http.StatusOK {
		t.Fatalf("late client: status %d", res.StatusCode)
	}
	// Re-registering replaces the redirect URIs.
	srv.RegisterClient(Client{Identifier: "late", Secret: "x", RedirectURIs: []string{testRedirect}})
	if res, _ := getConsent(t, srv, q); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("replaced client still accepts the old redirect: %d", res.StatusCode)
	}

	code := mustCode(t, srv, testClientID, "")
	srv.SetSwitches(Switches{TokenJSONOnly: true})
	wantOAuthError(t, postToken(t, srv, exchangeFields(code), true), 400, "invalid_request")
	srv.SetSwitches(Switches{TokenStatusCreated: true})
	wantStatus(t, postToken(t, srv, exchangeFields(mustCode(t, srv, testClientID, "")), true), http.StatusCreated)
}

func TestUpdateUser(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
	srv.UpdateUser(DemoBeaID, func(u *User) {
		u.Email = "bea.new@example.com"
		u.Suspended = true
		u.ID = 77 // ignored
	})
	if _, ok := srv.UserByEmail(DemoBeaEmail); ok {
		t.Error("old email still found")
	}
	u, ok := srv.UserByEmail("bea.new@example.com")
	if !ok || u.ID != DemoBeaID {
		t.Fatalf("new email: %+v %v", u, ok)
	}
	wantInvalidToken(t, do(t, srv, "GET", "/api/v2/users/me", tok, nil, withOBO(DemoBeaEmail)))
	wantForbidden(t, do(t, srv, "GET", "/api/v2/users/me", tok, nil, withOBO("bea.new@example.com")))
}

func TestRefreshDetails(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{Switches: Switches{ExpiringTokens: true}})
	publicRefresh := func(rt string, scope string) resp {
		f := map[string]string{"grant_type": "refresh_token", "refresh_token": rt, "client_id": "public-app"}
		if scope != "" {
			f["scope"] = scope
		}
		return postToken(t, srv, f, true)
	}
	exchangePublic := func() resp {
		code := mustCode(t, srv, "public-app", "")
		return postToken(t, srv, map[string]string{"grant_type": "authorization_code", "code": code, "client_id": "public-app",
			"redirect_uri": testRedirect, "code_verifier": testVerifier}, false)
	}
	t.Run("public client needs no secret", func(t *testing.T) {
		r := publicRefresh(exchangePublic().str("refresh_token"), "")
		wantStatus(t, r, http.StatusOK)
	})
	t.Run("narrower scope", func(t *testing.T) {
		r := publicRefresh(exchangePublic().str("refresh_token"), "read")
		wantStatus(t, r, http.StatusOK)
		if r.str("scope") != "read" {
			t.Errorf("scope %q", r.str("scope"))
		}
	})
	t.Run("wider scope", func(t *testing.T) {
		wantOAuthError(t, publicRefresh(exchangePublic().str("refresh_token"), "read tickets:write"), 400, "invalid_scope")
	})
	t.Run("other client", func(t *testing.T) {
		rt := exchangePublic().str("refresh_token")
		wantOAuthError(t, postToken(t, srv, map[string]string{"grant_type": "refresh_token", "refresh_token": rt,
			"client_id": testClientID, "client_secret": testSecret}, false), 400, "invalid_grant")
	})
	t.Run("confidential without secret", func(t *testing.T) {
		tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read")
		wantOAuthError(t, postToken(t, srv, map[string]string{"grant_type": "refresh_token", "refresh_token": tok.RefreshToken,
			"client_id": testClientID}, false), 401, "invalid_client")
	})
	t.Run("after switch off still rotates", func(t *testing.T) {
		rt := exchangePublic().str("refresh_token")
		srv.SetSwitches(Switches{})
		r := publicRefresh(rt, "")
		wantStatus(t, r, http.StatusOK)
		if r.str("refresh_token") == "" || r.num("expires_in") == 0 {
			t.Errorf("answer %s", r.Raw)
		}
	})
}

func TestAuthorizeMalformedChallenge(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	for _, c := range []string{"short", "has space in it and is long enough to pass the length check ok", "é" + challengeOf("x")} {
		q := authParams(testClientID)
		q.Set("code_challenge", c)
		res, _ := getConsent(t, srv, q)
		loc, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_request" {
			t.Errorf("challenge %q: status %d location %s", c, res.StatusCode, loc)
		}
	}
}

func TestAuthorizeUnknownUserOrDecision(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	for _, form := range []url.Values{{"user": {"nobody@example.com"}, "decision": {"allow"}}, {"user": {DemoAdminEmail}, "decision": {"maybe"}}} {
		q := authParams(testClientID)
		for k, v := range form {
			q[k] = v
		}
		res, err := noRedirectClient().PostForm(srv.URL+"/oauth/authorizations/new", q)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
			t.Errorf("form %v: status %d location %q", form, res.StatusCode, res.Header.Get("Location"))
		}
	}
}
