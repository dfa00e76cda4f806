package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/metrics"
)

// Example shows the wiring run does: metrics on their own listener, the
// Zendesk HTTP client's transport wrapped, and the scrape-time sources set.
func Example() {
	m := metrics.New()

	// METRICS_ADDR: a listener of its own (here a test server).
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	metricsSrv := httptest.NewServer(mux)
	defer metricsSrv.Close()

	// Every Zendesk call goes through the wrapped transport.
	zendesk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer zendesk.Close()
	hc := &http.Client{Timeout: 60 * time.Second, Transport: m.Transport(nil)}
	if resp, err := hc.Post(zendesk.URL+"/api/v2/tickets/105/satisfaction_rating.json", "application/json", nil); err == nil {
		resp.Body.Close()
	}

	// The HTTP middleware reports each request; the throttle and the
	// database are read at scrape time.
	m.ObserveHTTP("/as/requests/:id", http.StatusOK, 12*time.Millisecond)
	m.SetThrottleSource(func() metrics.ThrottleSnapshot { return metrics.ThrottleSnapshot{Waits: 1, Waited: time.Second} })
	m.SetBulkSource(func(ctx context.Context) (metrics.BulkSnapshot, error) {
		return metrics.BulkSnapshot{RowsByState: map[string]int{"queued": 40}}, nil
	})

	resp, err := http.Get(metricsSrv.URL + "/metrics")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Println(err)
		return
	}
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "onbehalf_") && !strings.Contains(line, "_bucket") &&
			!strings.Contains(line, "_sum") && !strings.Contains(line, "_count") {
			fmt.Print(line)
		}
	}
	// Output:
	// onbehalf_bulk_rows{state="queued"} 40
	// onbehalf_bulk_source_up 1
	// onbehalf_http_requests_total{route="/as/requests/:id",status="200"} 1
	// onbehalf_oauth_stray_callbacks_total 0
	// onbehalf_throttle_wait_seconds_total 1
	// onbehalf_throttle_waits_total 1
	// onbehalf_zendesk_calls_total{endpoint="POST /api/v2/tickets/{id}/satisfaction_rating",status="429"} 1
	// onbehalf_zendesk_rate_limited_total 1
}
