package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// roundTripFunc is a hand-written http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, path, want string
	}{
		{"GET", "/api/v2/users/me", "GET /api/v2/users/me"},
		{"GET", "/api/v2/users/me.json", "GET /api/v2/users/me"},
		{"GET", "/api/v2/users/12345", "GET /api/v2/users/{id}"},
		{"GET", "/api/v2/tickets/987.json", "GET /api/v2/tickets/{id}"},
		{"POST", "/api/v2/tickets/105/satisfaction_rating.json", "POST /api/v2/tickets/{id}/satisfaction_rating"},
		{"POST", "/api/v2/tickets/105/satisfaction_rating", "POST /api/v2/tickets/{id}/satisfaction_rating"},
		{"PUT", "/api/v2/requests/42", "PUT /api/v2/requests/{id}"},
		{"GET", "/api/v2/requests/42/comments", "GET /api/v2/requests/{id}/comments"},
		{"GET", "/api/v2/users/show_many", "GET /api/v2/users/show_many"},
		{"GET", "/api/v2/tickets/1,2,3/things", "GET /api/v2/tickets/{id}/things"},
		{"GET", "/api/v2/users/bea@example.com", "GET /api/v2/users/{id}"},
		{"DELETE", "/api/v2/oauth/tokens/current.json", "DELETE /api/v2/oauth/tokens/current"},
		{"POST", "/oauth/tokens", "POST /oauth/tokens"},
		{"GET", "", "GET /"},
		{"GET", "/", "GET /"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			if got := Endpoint(tt.method, tt.path); got != tt.want {
				t.Errorf("Endpoint(%q, %q) = %q, want %q", tt.method, tt.path, got, tt.want)
			}
		})
	}
}

// newTestZendesk is a loopback server answering each path with a fixed
// status, the way Zendesk answers would look to the transport.
func newTestZendesk(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/api/v2/users/me":
			io.WriteString(w, `{"user":{"id":1}}`)
		case strings.HasSuffix(r.URL.Path, "/satisfaction_rating.json"):
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		case r.URL.Path == "/api/v2/requests" && r.Method == http.MethodPost:
			w.WriteHeader(http.StatusCreated)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func mustDo(t *testing.T, hc *http.Client, method, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestTransportCountsCallsByEndpointAndStatus(t *testing.T) {
	t.Parallel()
	m := newTestMetrics(t)
	zd := newTestZendesk(t)
	hc := &http.Client{Transport: m.Transport(zd.Client().Transport)}

	resp := mustDo(t, hc, "GET", zd.URL+"/api/v2/users/me")
	// The caller still gets the response untouched.
	if b, _ := io.ReadAll(resp.Body); string(b) != `{"user":{"id":1}}` {
		t.Errorf("body through the transport = %q", b)
	}
	mustDo(t, hc, "GET", zd.URL+"/api/v2/users/me?include=x")
	mustDo(t, hc, "POST", zd.URL+"/api/v2/tickets/105/satisfaction_rating.json")
	mustDo(t, hc, "POST", zd.URL+"/api/v2/tickets/106/satisfaction_rating.json")
	mustDo(t, hc, "POST", zd.URL+"/api/v2/requests")
	mustDo(t, hc, "GET", zd.URL+"/api/v2/tickets/5")

	mustCompare(t, m, `
# HELP onbehalf_zendesk_calls_total Calls to Zendesk, by endpoint (method and path with ids as {id}) and status code, or "error" when no response arrived.
# TYPE onbehalf_zendesk_calls_total counter
onbehalf_zendesk_calls_total{endpoint="GET /api/v2/tickets/{id}",status="404"} 1
onbehalf_zendesk_calls_total{endpoint="GET /api/v2/users/me",status="200"} 2
onbehalf_zendesk_calls_total{endpoint="POST /api/v2/requests",status="201"} 1
onbehalf_zendesk_calls_total{endpoint="POST /api/v2/tickets/{id}/satisfaction_rating",status="429"} 2
# HELP onbehalf_zendesk_rate_limited_total Zendesk answers with 429 Too Many Requests.
# TYPE onbehalf_zendesk_rate_limited_total counter
onbehalf_zendesk_rate_limited_total 2
`, "onbehalf_zendesk_calls_total", "onbehalf_zendesk_rate_limited_total")

	latency := []struct {
		endpoint string
		want     int
	}{
		{"GET /api/v2/users/me", 2},
		{"POST /api/v2/tickets/{id}/satisfaction_rating", 2},
		{"POST /api/v2/requests", 1},
		{"GET /api/v2/tickets/{id}", 1},
	}
	for _, tt := range latency {
		t.Run(tt.endpoint, func(t *testing.T) {
			if got := histogramCount(t, m, "onbehalf_zendesk_call_duration_seconds", "endpoint", tt.endpoint); got != tt.want {
				t.Errorf("latency observations = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestTransportCountsFailuresAsError(t *testing.T) {
	t.Parallel()
	m := newTestMetrics(t)
	refused := errors.New("connection refused")
	hc := &http.Client{Transport: m.Transport(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, refused
	}))}

	req, _ := http.NewRequest("PUT", "http://127.0.0.1:1/api/v2/requests/42.json", nil)
	_, err := hc.Do(req)
	if !errors.Is(err, refused) {
		t.Fatalf("Do error = %v, want the base transport's error", err)
	}

	mustCompare(t, m, `
# HELP onbehalf_zendesk_calls_total Calls to Zendesk, by endpoint (method and path with ids as {id}) and status code, or "error" when no response arrived.
# TYPE onbehalf_zendesk_calls_total counter
onbehalf_zendesk_calls_total{endpoint="PUT /api/v2/requests/{id}",status="error"} 1
`, "onbehalf_zendesk_calls_total")
	if got := testutil.ToFloat64(m.zendeskRateLimited); got != 0 {
		t.Errorf("rate limited = %v after a transport failure, want 0", got)
	}
}
