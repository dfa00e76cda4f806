package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

func newTestMetrics(t *testing.T) *Metrics {
	t.Helper()
	m := New()
	if m == nil {
		t.Fatal("New returned nil")
	}
	return m
}

// mustCompare fails the test unless the registry's families named in names
// are exactly expected (Prometheus text format).
func mustCompare(t *testing.T, m *Metrics, expected string, names ...string) {
	t.Helper()
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(expected), names...); err != nil {
		t.Fatal(err)
	}
}

// histogramCount is the number of observations of the histogram family name
// in the series whose label has value, or -1 if there is no such series.
func histogramCount(t *testing.T, m *Metrics, name, label, value string) int {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			if labelValue(mt, label) == value {
				return int(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

func labelValue(mt *dto.Metric, name string) string {
	for _, lp := range mt.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// mustScrape fetches h's metrics over loopback HTTP, as Prometheus would,
// and returns the status code and body.
func mustScrape(t *testing.T, h http.Handler) (int, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape: read body: %v", err)
	}
	return resp.StatusCode, string(b)
}

func TestObserveHTTPCountsByRouteAndStatus(t *testing.T) {
	t.Parallel()
	m := newTestMetrics(t)
	m.ObserveHTTP("/as/requests/:id", 200, 30*time.Millisecond)
	m.ObserveHTTP("/as/requests/:id", 200, 10*time.Millisecond)
	m.ObserveHTTP("/as/requests/:id", 404, time.Millisecond)
	m.ObserveHTTP("/login", 302, time.Millisecond)
	m.ObserveHTTP("", 404, time.Millisecond)

	mustCompare(t, m, `
# HELP onbehalf_http_requests_total HTTP requests served, by route pattern and status code.
# TYPE onbehalf_http_requests_total counter
onbehalf_http_requests_total{route="/as/requests/:id",status="200"} 2
onbehalf_http_requests_total{route="/as/requests/:id",status="404"} 1
onbehalf_http_requests_total{route="/login",status="302"} 1
onbehalf_http_requests_total{route="unmatched",status="404"} 1
`, "onbehalf_http_requests_total")

	tests := []struct {
		route string
		want  int
	}{
		{"/as/requests/:id", 3},
		{"/login", 1},
		{"unmatched", 1},
		{"/audit", -1},
	}
	for _, tt := range tests {
		t.Run(tt.route, func(t *testing.T) {
			if got := histogramCount(t, m, "onbehalf_http_request_duration_seconds", "route", tt.route); got != tt.want {
				t.Errorf("duration observations for %q = %d, want %d", tt.route, got, tt.want)
			}
		})
	}
}

func TestThrottleSourceReportedAtScrapeTime(t *testing.T) {
	t.Parallel()
	m := newTestMetrics(t)
	names := []string{"onbehalf_throttle_waits_total", "onbehalf_throttle_wait_seconds_total"}
	if n, err := testutil.GatherAndCount(m.reg, names...); err != nil || n != 0 {
		t.Fatalf("before a source is set: %d series (err %v), want 0", n, err)
	}

	var mu sync.Mutex
	snap := ThrottleSnapshot{Waits: 2, Waited: 1500 * time.Millisecond}
	m.SetThrottleSource(func() ThrottleSnapshot {
		mu.Lock()
		defer mu.Unlock()
		return snap
	})
	mustCompare(t, m, `
# HELP onbehalf_throttle_waits_total Zendesk calls that had to wait for the per-account throttle before being sent.
# TYPE onbehalf_throttle_waits_total counter
onbehalf_throttle_waits_total 2
# HELP onbehalf_throttle_wait_seconds_total Total time Zendesk calls spent waiting for the per-account throttle.
# TYPE onbehalf_throttle_wait_seconds_total counter
onbehalf_throttle_wait_seconds_total 1.5
`, names...)

	// The throttle makes another call wait: the next scrape shows it.
	mu.Lock()
	snap = ThrottleSnapshot{Waits: 3, Waited: 2 * time.Second}
	mu.Unlock()
	mustCompare(t, m, `
# HELP onbehalf_throttle_waits_total Zendesk calls that had to wait for the per-account throttle before being sent.
# TYPE onbehalf_throttle_waits_total counter
onbehalf_throttle_waits_total 3
# HELP onbehalf_throttle_wait_seconds_total Total time Zendesk calls spent waiting for the per-account throttle.
# TYPE onbehalf_throttle_wait_seconds_total counter
onbehalf_throttle_wait_seconds_total 2
`, names...)

	m.SetThrottleSource(nil)
	if n, err := testutil.GatherAndCount(m.reg, names...); err != nil || n != 0 {
		t.Errorf("after the source is removed: %d series (err %v), want 0", n, err)
	}
}

func TestHandlerServesOwnRegistry(t *testing.T) {
	t.Parallel()
	m := newTestMetrics(t)
	other := newTestMetrics(t)
	m.ObserveHTTP("/users", 200, time.Millisecond)
	other.ObserveHTTP("/audit", 500, time.Millisecond)

	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	// Only m's request shows: two Metrics values share nothing.
	err := testutil.ScrapeAndCompare(srv.URL, strings.NewReader(`
# HELP onbehalf_http_requests_total HTTP requests served, by route pattern and status code.
# TYPE onbehalf_http_requests_total counter
onbehalf_http_requests_total{route="/users",status="200"} 1
`), "onbehalf_http_requests_total")
	if err != nil {
		t.Fatal(err)
	}

	status, body := mustScrape(t, m.Handler())
	if status != http.StatusOK {
		t.Fatalf("scrape status = %d, want 200", status)
	}
	for _, want := range []string{"go_goroutines ", "process_start_time_seconds ", "onbehalf_zendesk_rate_limited_total 0"} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

func TestNilMetricsRecordsNothing(t *testing.T) {
	t.Parallel()
	var m *Metrics
	m.ObserveHTTP("/", 200, time.Millisecond)
	m.SetThrottleSource(func() ThrottleSnapshot { return ThrottleSnapshot{Waits: 1} })
	m.SetBulkSource(nil)

	base := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, io.EOF })
	if got := m.Transport(base); got == nil {
		t.Error("nil Metrics: Transport(base) = nil, want base")
	} else if _, ok := got.(*transport); ok {
		t.Error("nil Metrics: Transport wrapped base, want base unwrapped")
	}
	if got := m.Transport(nil); got != http.DefaultTransport {
		t.Errorf("nil Metrics: Transport(nil) = %T, want http.DefaultTransport", got)
	}
	if status, _ := mustScrape(t, m.Handler()); status != http.StatusNotFound {
		t.Errorf("nil Metrics: Handler status = %d, want 404", status)
	}
}

// TestConcurrentUse is meant for -race: recording and scraping at once.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	m := newTestMetrics(t)
	zd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(zd.Close)
	hc := &http.Client{Transport: m.Transport(nil)}
	m.SetBulkSource(fixedSource(BulkSnapshot{RowsByState: map[string]int{"done": 1}}))

	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m.ObserveHTTP("/users", 200, time.Millisecond)
			m.SetThrottleSource(func() ThrottleSnapshot { return ThrottleSnapshot{Waits: int64(i)} })
			resp, err := hc.Get(zd.URL + "/api/v2/users/me")
			if err != nil {
				t.Errorf("call %d: %v", i, err)
				return
			}
			resp.Body.Close()
		})
		wg.Go(func() {
			if _, err := m.reg.Gather(); err != nil {
				t.Errorf("gather %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := testutil.ToFloat64(m.httpRequests.WithLabelValues("/users", "200")); got != n {
		t.Errorf("requests = %v, want %d", got, n)
	}
	if got := testutil.ToFloat64(m.zendeskCalls.WithLabelValues("GET /api/v2/users/me", "200")); got != n {
		t.Errorf("zendesk calls = %v, want %d", got, n)
	}
}

func TestMetricNamesFollowPrometheusConventions(t *testing.T) {
	t.Parallel()
	m := newTestMetrics(t)
	// Every family must exist to be linted: record one of each.
	m.ObserveHTTP("/", 200, time.Millisecond)
	m.SetThrottleSource(func() ThrottleSnapshot { return ThrottleSnapshot{Waits: 1, Waited: time.Second} })
	m.zendeskCalls.WithLabelValues("GET /api/v2/users/me", "200").Inc()
	m.zendeskDuration.WithLabelValues("GET /api/v2/users/me").Observe(0.1)
	m.SetBulkSource(fixedSource(BulkSnapshot{RowsByState: map[string]int{"done": 1}, JobsByState: map[string]int{"completed": 1}}))

	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, namespace+"_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}
