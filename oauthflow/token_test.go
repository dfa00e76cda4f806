package oauthflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/onbehalf/onbehalf/oauthflow"
)

// Secrets the fakes use; no error text may contain any of them.
const (
	fakeCode     = "CODE-0123456789abcdef"
	fakeVerifier = "VERIFIER-0123456789abcdefghijklmnopqrstuvwxyz"
	fakeSecret   = "SECRET-0123456789abcdef"
	fakeAccess   = "ACCESS-0123456789abcdef"
	fakeRefresh  = "REFRESH-0123456789abcdef"
	fakeAccess2  = "ACCESS2-0123456789abcdef"
	fakeRefresh2 = "REFRESH2-0123456789abcdef"
)

var fakeSecrets = []string{fakeCode, fakeVerifier, fakeSecret, fakeAccess, fakeRefresh, fakeAccess2, fakeRefresh2}

// assertNoSecret fails when err's text holds any of secrets.
func assertNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error %q contains the secret %q", msg, s)
		}
	}
}

// tokenRequest is what the fake token endpoint saw.
type tokenRequest struct {
	Method, Path, ContentType string
	Body                      map[string]string
}

// fakeTokenServer answers every request with status and body, and records
// what it received.
type fakeTokenServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []tokenRequest
}

func newTestTokenServer(t *testing.T, status int, contentType, body string) *fakeTokenServer {
	t.Helper()
	f := &fakeTokenServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var m map[string]string
		_ = json.Unmarshal(raw, &m)
		f.mu.Lock()
		f.reqs = append(f.reqs, tokenRequest{r.Method, r.URL.Path, r.Header.Get("Content-Type"), m})
		f.mu.Unlock()
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeTokenServer) requests() []tokenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]tokenRequest(nil), f.reqs...)
}

// fixedNow is the clock of the fake-server tests.
var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestFakeFlow(t *testing.T, base, secret string) *oauthflow.Flow {
	t.Helper()
	cfg := validConfig()
	cfg.BaseURL = base
	cfg.ClientSecret = secret
	cfg.Now = func() time.Time { return fixedNow }
	return mustNew(t, cfg)
}

func TestExchangeSendsJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		secret string
		want   map[string]string
	}{
		{"public client", "", map[string]string{
			"grant_type": "authorization_code", "code": fakeCode, "client_id": "onbehalf",
			"redirect_uri": "https://onbehalf.example.org/oauth/callback", "code_verifier": fakeVerifier,
			"scope": "read write impersonate",
		}},
		{"confidential client", fakeSecret, map[string]string{
			"grant_type": "authorization_code", "code": fakeCode, "client_id": "onbehalf",
			"client_secret": fakeSecret, "redirect_uri": "https://onbehalf.example.org/oauth/callback",
			"code_verifier": fakeVerifier, "scope": "read write impersonate",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestTokenServer(t, http.StatusOK, "application/json",
				`{"access_token":"`+fakeAccess+`","token_type":"bearer","scope":"read write impersonate"}`)
			tok, err := newTestFakeFlow(t, srv.URL, tt.secret).Exchange(context.Background(), fakeCode, fakeVerifier)
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if tok.AccessToken != fakeAccess || tok.Type() != "Bearer" {
				t.Errorf("token = %q %q, want %q Bearer", tok.AccessToken, tok.Type(), fakeAccess)
			}
			reqs := srv.requests()
			if len(reqs) != 1 {
				t.Fatalf("token endpoint got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || r.Path != "/oauth/tokens" || r.ContentType != "application/json" {
				t.Errorf("request = %s %s (%s), want POST /oauth/tokens (application/json)", r.Method, r.Path, r.ContentType)
			}
			if !reflect.DeepEqual(r.Body, tt.want) {
				t.Errorf("body = %v\nwant %v", r.Body, tt.want)
			}
		})
	}
}

func TestRefreshSendsJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		secret string
		want   map[string]string
	}{
		{"public client", "", map[string]string{
			"grant_type": "refresh_token", "refresh_token": fakeRefresh, "client_id": "onbehalf",
		}},
		{"confidential client", fakeSecret, map[string]string{
			"grant_type": "refresh_token", "refresh_token": fakeRefresh, "client_id": "onbehalf", "client_secret": fakeSecret,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestTokenServer(t, http.StatusOK, "application/json",
				`{"access_token":"`+fakeAccess2+`","token_type":"bearer","refresh_token":"`+fakeRefresh2+`","expires_in":1800}`)
			tok, err := newTestFakeFlow(t, srv.URL, tt.secret).Refresh(context.Background(), fakeRefresh)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if tok.AccessToken != fakeAccess2 || tok.RefreshToken != fakeRefresh2 {
				t.Errorf("token = %q/%q, want the rotated pair", tok.AccessToken, tok.RefreshToken)
			}
			reqs := srv.requests()
			if len(reqs) != 1 || reqs[0].Path != "/oauth/tokens" || reqs[0].ContentType != "application/json" {
				t.Fatalf("requests = %+v, want one JSON POST to /oauth/tokens", reqs)
			}
			if !reflect.DeepEqual(reqs[0].Body, tt.want) {
				t.Errorf("body = %v\nwant %v", reqs[0].Body, tt.want)
			}
		})
	}
}

func TestRefreshKeepsOldRefreshTokenWhenNoneReturned(t *testing.T) {
	t.Parallel()
	srv := newTestTokenServer(t, http.StatusOK, "application/json", `{"access_token":"`+fakeAccess2+`","token_type":"bearer"}`)
	tok, err := newTestFakeFlow(t, srv.URL, "").Refresh(context.Background(), fakeRefresh)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if tok.RefreshToken != fakeRefresh {
		t.Errorf("RefreshToken = %q, want the old %q", tok.RefreshToken, fakeRefresh)
	}
}

func TestTokenAnswers(t *testing.T) {
	t.Parallel()
	type want struct {
		expiry        time.Time
		refresh       string
		scope         string
		refreshExpiry time.Time
	}
	tests := []struct {
		name   string
		status int
		body   string
		want   want
	}{
		{"legacy never expires", 200, `{"access_token":"` + fakeAccess + `","token_type":"bearer","scope":"read write"}`,
			want{scope: "read write"}},
		{"201 created", 201, `{"access_token":"` + fakeAccess + `","token_type":"bearer","scope":"read"}`,
			want{scope: "read"}},
		{"expiring", 200, `{"access_token":"` + fakeAccess + `","token_type":"bearer","scope":"read write impersonate",
			"expires_in":1800,"refresh_token":"` + fakeRefresh + `","refresh_token_expires_in":2592000}`,
			want{fixedNow.Add(30 * time.Minute), fakeRefresh, "read write impersonate", fixedNow.Add(30 * 24 * time.Hour)}},
		{"numbers as strings", 200, `{"access_token":"` + fakeAccess + `","token_type":"Bearer",
			"expires_in":"86400","refresh_token":"` + fakeRefresh + `","refresh_token_expires_in":"604800"}`,
			want{fixedNow.Add(24 * time.Hour), fakeRefresh, "", fixedNow.Add(7 * 24 * time.Hour)}},
		{"no token_type", 200, `{"access_token":"` + fakeAccess + `","expires_in":null}`, want{}},
		{"scope as array", 200, `{"access_token":"` + fakeAccess + `","scope":["read","write"]}`, want{scope: "read write"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestTokenServer(t, tt.status, "application/json; charset=utf-8", tt.body)
			tok, err := newTestFakeFlow(t, srv.URL, "").Exchange(context.Background(), fakeCode, fakeVerifier)
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			got := want{tok.Expiry, tok.RefreshToken, oauthflow.GrantedScope(tok), oauthflow.RefreshExpiry(tok)}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			if tok.AccessToken != fakeAccess || tok.Type() != "Bearer" {
				t.Errorf("access token %q type %q", tok.AccessToken, tok.Type())
			}
			if tt.want.expiry.IsZero() && !tok.Valid() {
				t.Errorf("a token without expiry must stay valid")
			}
			if tt.want.refresh != "" && tok.Extra(oauthflow.ExtraRefreshToken) != tt.want.refresh {
				t.Errorf("Extra(refresh_token) = %v", tok.Extra(oauthflow.ExtraRefreshToken))
			}
		})
	}
}

func TestTokenErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		sentinel    error // the sentinel errors.Is must match, nil for none
		wantCode    string
		wantStatus  int // *Error or *StatusError status; 0 for neither
	}{
		{"invalid_grant", 400, "application/json",
			`{"error":"invalid_grant","error_description":"The provided authorization grant is invalid, expired, revoked"}`,
			oauthflow.ErrInvalidGrant, "invalid_grant", 400},
		{"invalid_grant echoing the code", 400, "application/json",
			`{"error":"invalid_grant","error_description":"code ` + fakeCode + ` with verifier ` + fakeVerifier + ` is bad"}`,
			oauthflow.ErrInvalidGrant, "invalid_grant", 400},
		{"invalid_client", 401, "application/json",
			`{"error":"invalid_client","error_description":"secret ` + fakeSecret + ` is wrong"}`,
			oauthflow.ErrInvalidClient, "invalid_client", 401},
		{"invalid_scope", 400, "application/json", `{"error":"invalid_scope"}`, oauthflow.ErrInvalidScope, "invalid_scope", 400},
		{"invalid_request form refused", 400, "application/json",
			`{"error":"invalid_request","error_description":"JSON only"}`, oauthflow.ErrInvalidRequest, "invalid_request", 400},
		{"unsupported_grant_type", 400, "application/json", `{"error":"unsupported_grant_type"}`, nil, "unsupported_grant_type", 400},
		{"error in a 200", 200, "application/json", `{"error":"invalid_grant"}`, oauthflow.ErrInvalidGrant, "invalid_grant", 200},
		{"HTML 502 echoing secrets", 502, "text/html",
			`<html><body>Bad gateway for code=` + fakeCode + `&client_secret=` + fakeSecret + `</body></html>`, nil, "", 502},
		{"202 with a token", 202, "application/json", `{"access_token":"` + fakeAccess + `"}`, nil, "", 202},
		{"JSON 500", 500, "application/json", `{"error":"server_error","error_description":"oops"}`, nil, "", 500},
		{"JSON 503", 503, "application/json", `{"error":"temporarily_unavailable"}`, nil, "", 503},
		{"plain 400", 400, "text/plain", `Bad Request ` + fakeVerifier, nil, "", 400},
		{"non-JSON 200", 200, "text/html", `<html>access_token=` + fakeAccess + `</html>`, nil, "", 0},
		{"200 without access token", 200, "application/json", `{"token_type":"bearer","refresh_token":"` + fakeRefresh + `"}`, nil, "", 0},
		{"200 not bearer", 200, "application/json", `{"access_token":"` + fakeAccess + `","token_type":"mac"}`, nil, "", 0},
		{"200 negative expires_in", 200, "application/json", `{"access_token":"` + fakeAccess + `","expires_in":-5}`, nil, "", 0},
		{"200 bad expires_in", 200, "application/json", `{"access_token":"` + fakeAccess + `","expires_in":"soon"}`, nil, "", 0},
		{"200 huge expires_in", 200, "application/json", `{"access_token":"` + fakeAccess + `","expires_in":1e300}`, nil, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestTokenServer(t, tt.status, tt.contentType, tt.body)
			f := newTestFakeFlow(t, srv.URL, fakeSecret)
			for _, call := range []struct {
				name string
				do   func() (*oauth2.Token, error)
			}{
				{"exchange", func() (*oauth2.Token, error) { return f.Exchange(context.Background(), fakeCode, fakeVerifier) }},
				{"refresh", func() (*oauth2.Token, error) { return f.Refresh(context.Background(), fakeRefresh) }},
			} {
				tok, err := call.do()
				if err == nil || tok != nil {
					t.Fatalf("%s = %v, %v; want an error", call.name, tok, err)
				}
				assertNoSecret(t, err, fakeSecrets...)
				for _, s := range allSentinels {
					if got := errors.Is(err, s); got != (s == tt.sentinel) {
						t.Errorf("%s: errors.Is(%v, %v) = %v", call.name, err, s, got)
					}
				}
				var oe *oauthflow.Error
				var se *oauthflow.StatusError
				switch {
				case tt.wantCode != "":
					if !errors.As(err, &oe) || oe.Code != tt.wantCode || oe.Status != tt.wantStatus {
						t.Errorf("%s: err = %v, want *Error %s status %d", call.name, err, tt.wantCode, tt.wantStatus)
					}
				case tt.wantStatus != 0:
					if !errors.As(err, &se) || se.Status != tt.wantStatus {
						t.Fatalf("%s: err = %v, want *StatusError %d", call.name, err, tt.wantStatus)
					}
					if tt.status/100 == 2 && se.Snippet != "" {
						t.Errorf("%s: snippet %q of a 2xx answer, want none (it may hold a token)", call.name, se.Snippet)
					}
				default:
					if errors.As(err, &oe) || errors.As(err, &se) {
						t.Errorf("%s: err = %v, want a plain malformed-answer error", call.name, err)
					}
					if strings.Contains(err.Error(), "<html>") {
						t.Errorf("%s: err = %v includes the body of a 2xx answer", call.name, err)
					}
				}
			}
		})
	}
}

func TestTokenEmptyInputsAreRefusedLocally(t *testing.T) {
	t.Parallel()
	srv := newTestTokenServer(t, 200, "application/json", `{"access_token":"x"}`)
	f := newTestFakeFlow(t, srv.URL, "")
	ctx := context.Background()
	for name, do := range map[string]func() error{
		"exchange no code":     func() error { _, err := f.Exchange(ctx, "", fakeVerifier); return err },
		"exchange no verifier": func() error { _, err := f.Exchange(ctx, fakeCode, ""); return err },
		"refresh no token":     func() error { _, err := f.Refresh(ctx, ""); return err },
		"revoke no token":      func() error { return f.Revoke(ctx, "") },
	} {
		if err := do(); !errors.Is(err, oauthflow.ErrInvalidRequest) {
			t.Errorf("%s: err = %v, want ErrInvalidRequest", name, err)
		}
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

func TestTokenRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	var stolen atomic.Int32
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		io.WriteString(w, `{"access_token":"`+fakeAccess+`"}`)
	}))
	t.Cleanup(thief.Close)
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, thief.URL+"/oauth/tokens", status)
		}))
		t.Cleanup(redirector.Close)
		f := newTestFakeFlow(t, redirector.URL, fakeSecret)
		_, err := f.Exchange(context.Background(), fakeCode, fakeVerifier)
		var se *oauthflow.StatusError
		if !errors.As(err, &se) || se.Status != status {
			t.Errorf("redirect %d: err = %v, want *StatusError %d", status, err, status)
		}
		assertNoSecret(t, err, fakeSecrets...)
		if err := f.Revoke(context.Background(), fakeAccess); err == nil {
			t.Errorf("redirect %d: Revoke = nil, want an error", status)
		}
	}
	if n := stolen.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests, want 0", n)
	}
}

func TestTokenUsesCallersClientAndContext(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(block); srv.Close() })
	cfg := validConfig()
	cfg.BaseURL = srv.URL
	var used atomic.Bool
	cfg.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used.Store(true)
		return http.DefaultTransport.RoundTrip(r)
	})}
	f := mustNew(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.Exchange(ctx, fakeCode, fakeVerifier)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Exchange with a cancelled context = %v, want context.Canceled", err)
	}
	assertNoSecret(t, err, fakeSecrets...)
	if !used.Load() {
		t.Errorf("the configured HTTPClient was not used")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestGrantedScopeAndRefreshExpiryOnForeignTokens(t *testing.T) {
	t.Parallel()
	for name, tok := range map[string]*oauth2.Token{
		"nil":        nil,
		"plain":      {AccessToken: "x"},
		"wrong type": (&oauth2.Token{AccessToken: "x"}).WithExtra(map[string]any{"scope": 5, "refresh_token_expires_at": "tomorrow"}),
	} {
		if s := oauthflow.GrantedScope(tok); s != "" {
			t.Errorf("%s: GrantedScope = %q, want empty", name, s)
		}
		if e := oauthflow.RefreshExpiry(tok); !e.IsZero() {
			t.Errorf("%s: RefreshExpiry = %v, want zero", name, e)
		}
	}
}

func TestExchangeConcurrent(t *testing.T) {
	t.Parallel()
	srv := newTestTokenServer(t, 200, "application/json", `{"access_token":"`+fakeAccess+`","expires_in":60}`)
	f := newTestFakeFlow(t, srv.URL, "")
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := f.Exchange(context.Background(), fakeCode, fakeVerifier); err != nil {
				t.Errorf("Exchange: %v", err)
			}
		})
	}
	wg.Wait()
	if n := len(srv.requests()); n != 16 {
		t.Errorf("server got %d requests, want 16", n)
	}
}
