package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testClientID = "onbehalf-test"
	testSecret   = "s3cret"
	testRedirect = "http://127.0.0.1:9/oauth/callback"
)

// newTestServer starts a sandbox on loopback with a generous rate limit
// unless opts sets one, and a confidential and a public client.
func newTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.RateLimit == 0 {
		opts.RateLimit, opts.RateBurst = 600000, 100000
	}
	if opts.Clients == nil {
		opts.Clients = []Client{
			{Identifier: testClientID, Secret: testSecret, RedirectURIs: []string{testRedirect}},
			{Identifier: "public-app", Public: true, RedirectURIs: []string{testRedirect}},
		}
	}
	srv, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func mustToken(t *testing.T, s *Sandbox, email, scope string) Token {
	t.Helper()
	tok, err := s.IssueToken(email, scope)
	if err != nil {
		t.Fatalf("IssueToken(%q, %q): %v", email, scope, err)
	}
	return tok
}

// fakeClock is a settable clock for expiry tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// resp is a decoded answer.
type resp struct {
	Status int
	Header http.Header
	Raw    []byte
	JSON   map[string]any
}

func (r resp) str(path ...string) string {
	v := r.get(path...)
	s, _ := v.(string)
	return s
}

func (r resp) num(path ...string) float64 {
	f, _ := r.get(path...).(float64)
	return f
}

func (r resp) get(path ...string) any {
	var v any = r.JSON
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

type reqOpt func(*http.Request)

func withOBO(who string) reqOpt { return func(r *http.Request) { r.Header.Set("X-On-Behalf-Of", who) } }

func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

// do makes one API call with a bearer token ("" for none) and a JSON body
// (nil for none).
func do(t *testing.T, srv *Server, method, path, token string, body any, opts ...reqOpt) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			buf, err := json.Marshal(b)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			rd = bytes.NewReader(buf)
		}
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	out := resp{Status: res.StatusCode, Header: res.Header, Raw: raw}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") && len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.JSON); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return out
}

func wantStatus(t *testing.T, r resp, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status = %d, want %d; body %s", r.Status, want, r.Raw)
	}
}

// wantForbidden checks the §4.1 403 shape.
func wantForbidden(t *testing.T, r resp) {
	t.Helper()
	wantStatus(t, r, http.StatusForbidden)
	if r.str("error", "title") != "Forbidden" || r.str("error", "message") != forbiddenMessage {
		t.Fatalf("403 body = %s, want the Forbidden shape", r.Raw)
	}
}

func wantInvalid(t *testing.T, r resp, field string) {
	t.Helper()
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if r.str("error") != "RecordInvalid" {
		t.Fatalf("422 body = %s, want RecordInvalid", r.Raw)
	}
	d, _ := r.get("details", field).([]any)
	if len(d) == 0 {
		t.Fatalf("422 body = %s, want details.%s", r.Raw, field)
	}
}

func wantInvalidToken(t *testing.T, r resp) {
	t.Helper()
	wantStatus(t, r, http.StatusUnauthorized)
	if r.str("error") != "invalid_token" || r.str("error_description") != invalidTokenDesc {
		t.Fatalf("401 body = %s, want invalid_token", r.Raw)
	}
	h := r.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(h, `Bearer realm="Zendesk::OAuth Bearer Token Authentication", error="invalid_token"`) {
		t.Fatalf("WWW-Authenticate = %q", h)
	}
}

func ids(t *testing.T, list any) []int64 {
	t.Helper()
	items, ok := list.([]any)
	if !ok {
		t.Fatalf("not a list: %v", list)
	}
	out := []int64{}
	for _, it := range items {
		m := it.(map[string]any)
		out = append(out, int64(m["id"].(float64)))
	}
	return out
}
