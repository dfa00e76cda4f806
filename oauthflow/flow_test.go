package oauthflow_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/onbehalf/onbehalf/oauthflow"
)

// validConfig is a Config that New accepts.
func validConfig() oauthflow.Config {
	return oauthflow.Config{
		BaseURL:     "https://acme.zendesk.com",
		ClientID:    "onbehalf",
		RedirectURL: "https://onbehalf.example.org/oauth/callback",
	}
}

func mustNew(t *testing.T, cfg oauthflow.Config) *oauthflow.Flow {
	t.Helper()
	f, err := oauthflow.New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return f
}

func mustBegin(t *testing.T, f *oauthflow.Flow) oauthflow.Attempt {
	t.Helper()
	a, err := f.Begin()
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	return a
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*oauthflow.Config)
		ok     bool
	}{
		{"https base", func(*oauthflow.Config) {}, true},
		{"https base with slash", func(c *oauthflow.Config) { c.BaseURL = "https://acme.zendesk.com/" }, true},
		{"http 127.0.0.1", func(c *oauthflow.Config) { c.BaseURL = "http://127.0.0.1:8081" }, true},
		{"http localhost", func(c *oauthflow.Config) { c.BaseURL = "http://localhost:8081" }, true},
		{"http ::1", func(c *oauthflow.Config) { c.BaseURL = "http://[::1]:8081" }, true},
		{"http 127.0.0.2", func(c *oauthflow.Config) { c.BaseURL = "http://127.0.0.2" }, true},
		{"public client, custom scopes", func(c *oauthflow.Config) { c.Scopes = []string{"read", "requests:write"} }, true},
		{"confidential client", func(c *oauthflow.Config) { c.ClientSecret = "s3cret" }, true},
		{"http redirect on localhost", func(c *oauthflow.Config) { c.RedirectURL = "http://localhost:8080/oauth/callback" }, true},

		{"http non-loopback", func(c *oauthflow.Config) { c.BaseURL = "http://acme.zendesk.com" }, false},
		{"http loopback-looking name", func(c *oauthflow.Config) { c.BaseURL = "http://127.0.0.1.evil.example" }, false},
		{"http localhost suffix", func(c *oauthflow.Config) { c.BaseURL = "http://localhost.evil.example" }, false},
		{"empty base", func(c *oauthflow.Config) { c.BaseURL = "" }, false},
		{"no scheme", func(c *oauthflow.Config) { c.BaseURL = "acme.zendesk.com" }, false},
		{"unparsable", func(c *oauthflow.Config) { c.BaseURL = "https://acme.zendesk.com:port" }, false},
		{"control char", func(c *oauthflow.Config) { c.BaseURL = "https://acme.zendesk.com\n" }, false},
		{"ftp scheme", func(c *oauthflow.Config) { c.BaseURL = "ftp://acme.zendesk.com" }, false},
		{"no host", func(c *oauthflow.Config) { c.BaseURL = "https://" }, false},
		{"opaque", func(c *oauthflow.Config) { c.BaseURL = "https:acme.zendesk.com" }, false},
		{"path", func(c *oauthflow.Config) { c.BaseURL = "https://acme.zendesk.com/api/v2" }, false},
		{"query", func(c *oauthflow.Config) { c.BaseURL = "https://acme.zendesk.com?x=1" }, false},
		{"fragment", func(c *oauthflow.Config) { c.BaseURL = "https://acme.zendesk.com#x" }, false},
		{"credentials", func(c *oauthflow.Config) { c.BaseURL = "https://u:p@acme.zendesk.com" }, false},
		{"empty client id", func(c *oauthflow.Config) { c.ClientID = "" }, false},
		{"blank client id", func(c *oauthflow.Config) { c.ClientID = "  " }, false},
		{"empty redirect", func(c *oauthflow.Config) { c.RedirectURL = "" }, false},
		{"relative redirect", func(c *oauthflow.Config) { c.RedirectURL = "/oauth/callback" }, false},
		{"javascript redirect", func(c *oauthflow.Config) { c.RedirectURL = "javascript:alert(1)" }, false},
		{"redirect with fragment", func(c *oauthflow.Config) { c.RedirectURL = "https://onbehalf.example.org/cb#x" }, false},
		{"scope with space", func(c *oauthflow.Config) { c.Scopes = []string{"read write"} }, false},
		{"empty scope", func(c *oauthflow.Config) { c.Scopes = []string{"read", ""} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := validConfig()
			tt.modify(&cfg)
			f, err := oauthflow.New(cfg)
			if tt.ok && (err != nil || f == nil) {
				t.Fatalf("New(%+v) = %v, %v; want a Flow", cfg, f, err)
			}
			if !tt.ok && (err == nil || f != nil) {
				t.Fatalf("New(%+v) = %v, %v; want an error", cfg, f, err)
			}
		})
	}
}

func TestBeginURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		base      string
		scopes    []string
		wantScope string
	}{
		{"default scopes", "https://acme.zendesk.com", nil, "read write impersonate"},
		{"custom scopes", "https://acme.zendesk.com", []string{"read", "requests:write", "impersonate"}, "read requests:write impersonate"},
		{"base with slash", "https://acme.zendesk.com/", nil, "read write impersonate"},
		{"loopback", "http://127.0.0.1:9999", []string{"read"}, "read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := validConfig()
			cfg.BaseURL, cfg.Scopes = tt.base, tt.scopes
			a := mustBegin(t, mustNew(t, cfg))

			u, err := url.Parse(a.URL)
			if err != nil {
				t.Fatalf("parse %q: %v", a.URL, err)
			}
			base, _ := url.Parse(tt.base)
			if u.Scheme != base.Scheme || u.Host != base.Host || u.Path != "/oauth/authorizations/new" {
				t.Errorf("authorize endpoint = %s://%s%s, want %s://%s/oauth/authorizations/new", u.Scheme, u.Host, u.Path, base.Scheme, base.Host)
			}
			sum := sha256.Sum256([]byte(a.Verifier))
			want := url.Values{
				"response_type":         {"code"},
				"client_id":             {cfg.ClientID},
				"redirect_uri":          {cfg.RedirectURL},
				"scope":                 {tt.wantScope},
				"state":                 {a.State},
				"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
				"code_challenge_method": {"S256"},
			}
			if got := u.Query(); !reflect.DeepEqual(got, want) {
				t.Errorf("authorize query = %v\nwant %v", got, want)
			}
			if strings.Contains(a.URL, a.Verifier) {
				t.Errorf("authorize URL %q carries the verifier itself", a.URL)
			}
		})
	}
}

func TestBeginStateAndVerifierShape(t *testing.T) {
	t.Parallel()
	a := mustBegin(t, mustNew(t, validConfig()))
	raw, err := base64.RawURLEncoding.DecodeString(a.State)
	if err != nil {
		t.Fatalf("state %q is not unpadded base64url: %v", a.State, err)
	}
	if len(raw)*8 < 128 {
		t.Errorf("state carries %d bits, want >= 128", len(raw)*8)
	}
	// RFC 7636 §4.1: 43 to 128 characters of [A-Za-z0-9-._~].
	if n := len(a.Verifier); n < 43 || n > 128 {
		t.Errorf("verifier length %d, want 43..128", n)
	}
	if strings.Trim(a.Verifier, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") != "" {
		t.Errorf("verifier %q has characters outside RFC 7636's set", a.Verifier)
	}
}

func TestBeginIsFreshEveryTime(t *testing.T) {
	t.Parallel()
	f := mustNew(t, validConfig())
	states := make(map[string]bool, 1000)
	verifiers := make(map[string]bool, 1000)
	for i := range 1000 {
		a := mustBegin(t, f)
		if states[a.State] {
			t.Fatalf("Begin #%d repeated state %q", i, a.State)
		}
		if verifiers[a.Verifier] {
			t.Fatalf("Begin #%d repeated verifier %q", i, a.Verifier)
		}
		states[a.State], verifiers[a.Verifier] = true, true
	}
}

func TestBeginConcurrent(t *testing.T) {
	t.Parallel()
	f := mustNew(t, validConfig())
	var mu sync.Mutex
	var states []string
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				a, err := f.Begin()
				if err != nil {
					t.Errorf("Begin: %v", err)
					return
				}
				mu.Lock()
				states = append(states, a.State)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(states)
	if len(states) != 400 || len(slices.Compact(states)) != 400 {
		t.Errorf("got %d states, %d distinct; want 400 distinct", len(states), len(slices.Compact(states)))
	}
}

func TestStatesEqual(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"same", "abcDEF-_123", "abcDEF-_123", true},
		{"different", "abcDEF-_123", "abcDEF-_124", false},
		{"prefix", "abcDEF-_123", "abcDEF-_12", false},
		{"case", "abc", "ABC", false},
		{"both empty", "", "", false},
		{"one empty", "abc", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := oauthflow.StatesEqual(tt.a, tt.b); got != tt.want {
				t.Errorf("StatesEqual(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestCallbackError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		query    string
		wantNil  bool
		sentinel error // nil: must match none
		wantCode string
		wantDesc string
	}{
		{name: "success", query: "code=abc&state=xyz", wantNil: true},
		{name: "empty", query: "", wantNil: true},
		{name: "denied", query: "error=access_denied&error_description=The+end-user+denied&state=xyz",
			sentinel: oauthflow.ErrAccessDenied, wantCode: "access_denied", wantDesc: "The end-user denied"},
		{name: "invalid scope", query: "error=invalid_scope&state=xyz",
			sentinel: oauthflow.ErrInvalidScope, wantCode: "invalid_scope"},
		{name: "invalid request", query: "error=invalid_request&error_description=bad",
			sentinel: oauthflow.ErrInvalidRequest, wantCode: "invalid_request", wantDesc: "bad"},
		{name: "other code", query: "error=server_error", wantCode: "server_error"},
		{name: "empty code", query: "error=&error_description=x",
			sentinel: oauthflow.ErrInvalidRequest, wantCode: "invalid_request", wantDesc: "x"},
		{name: "control characters", query: "error=access_denied&error_description=a%0D%0A%0D%0Ab%00c",
			sentinel: oauthflow.ErrAccessDenied, wantCode: "access_denied", wantDesc: "a bc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			err = oauthflow.CallbackError(q)
			if tt.wantNil {
				if err != nil {
					t.Fatalf("CallbackError(%q) = %v, want nil", tt.query, err)
				}
				return
			}
			var oe *oauthflow.Error
			if !errors.As(err, &oe) {
				t.Fatalf("CallbackError(%q) = %#v, want *Error", tt.query, err)
			}
			if oe.Code != tt.wantCode || oe.Description != tt.wantDesc || oe.Status != 0 {
				t.Errorf("got %+v, want code %q description %q status 0", *oe, tt.wantCode, tt.wantDesc)
			}
			for _, s := range allSentinels {
				if got := errors.Is(err, s); got != (s == tt.sentinel) {
					t.Errorf("errors.Is(%v, %v) = %v", err, s, got)
				}
			}
		})
	}
}

func TestCallbackErrorTruncatesDescription(t *testing.T) {
	t.Parallel()
	q := url.Values{"error": {strings.Repeat("e", 500)}, "error_description": {strings.Repeat("d", 5000)}}
	err := oauthflow.CallbackError(q)
	if err == nil {
		t.Fatal("CallbackError = nil, want an error")
	}
	if n := len(err.Error()); n > 400 {
		t.Errorf("error text is %d bytes, want it truncated (<= 400)", n)
	}
}

var allSentinels = []error{
	oauthflow.ErrAccessDenied, oauthflow.ErrInvalidGrant, oauthflow.ErrInvalidClient,
	oauthflow.ErrInvalidScope, oauthflow.ErrInvalidRequest,
}

func TestErrorIs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		want error
	}{
		{"access_denied", oauthflow.ErrAccessDenied},
		{"invalid_grant", oauthflow.ErrInvalidGrant},
		{"invalid_client", oauthflow.ErrInvalidClient},
		{"invalid_scope", oauthflow.ErrInvalidScope},
		{"invalid_request", oauthflow.ErrInvalidRequest},
		{"unsupported_grant_type", nil},
		{"INVALID_GRANT", nil},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			err := error(&oauthflow.Error{Code: tt.code, Status: 400})
			for _, s := range allSentinels {
				if got := errors.Is(err, s); got != (s == tt.want) {
					t.Errorf("errors.Is(Error{%s}, %v) = %v, want %v", tt.code, s, got, s == tt.want)
				}
			}
			if !strings.Contains(err.Error(), tt.code) || !strings.Contains(err.Error(), "400") {
				t.Errorf("Error() = %q, want the code and status", err.Error())
			}
		})
	}
}
