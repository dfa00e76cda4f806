// Package metrics is onbehalf's Prometheus instrumentation: HTTP requests by
// route and status, Zendesk calls by endpoint and status and 429s (recorded
// as they happen), and throttle waits, bulk rows and queue jobs by state
// (read from their owners at scrape time).
//
// A *Metrics owns its own registry (never the process-wide default one), so
// tests and several instances in one process never share counters. A nil
// *Metrics is valid and records nothing: run passes nil when METRICS_ADDR is
// empty, and callers need no "if metrics enabled" branches.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every onbehalf metric name.
const namespace = "onbehalf"

// unmatchedRoute is the route label of requests that matched no route.
// Echo's c.Path() is "" for them; the raw URL path is never used as a label,
// because anyone on the internet could then create series at will.
const unmatchedRoute = "unmatched"

// Metrics records onbehalf's metrics in its own registry and serves them with
// Handler. Its methods are safe for concurrent use, and all of them accept a
// nil receiver, which records nothing.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	zendeskCalls       *prometheus.CounterVec
	zendeskDuration    *prometheus.HistogramVec
	zendeskRateLimited prometheus.Counter

	throttle *throttleCollector
	bulk     *bulkCollector
	security *security
}

// New returns a Metrics with every onbehalf metric registered, plus the Go
// runtime and process collectors (memory, goroutines, open files, CPU).
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests served, by route pattern and status code.",
		}, []string{"route", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		zendeskCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "zendesk_calls_total",
			Help: "Calls to Zendesk, by endpoint (method and path with ids as {id}) and status code, or \"error\" when no response arrived.",
		}, []string{"endpoint", "status"}),
		zendeskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "zendesk_call_duration_seconds",
			Help: "Time until Zendesk's response headers arrived, by endpoint.",
			// Up to the zendesk client's 60 s timeout; DefBuckets stop at 10 s.
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"endpoint"}),
		zendeskRateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "zendesk_rate_limited_total",
			Help: "Zendesk answers with 429 Too Many Requests.",
		}),
		throttle: newThrottleCollector(),
		bulk:     newBulkCollector(),
		security: newSecurity(),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpRequests, m.httpDuration,
		m.zendeskCalls, m.zendeskDuration, m.zendeskRateLimited,
		m.throttle, m.bulk,
	)
	m.reg.MustRegister(m.security.collectors()...)
	return m
}

// Handler serves the metrics in Prometheus' exposition format. It belongs on
// its own listener (METRICS_ADDR), not on the app's, so metrics are never
// public by accident. A nil receiver's Handler answers 404.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	// ContinueOnError: a collector that fails must not hide all the others
	// from the scrape.
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// ObserveHTTP records one served HTTP request: route is the route pattern
// (Echo's c.Path(), such as "/as/requests/:id", never the raw URL path), status
// the response's status code and d the time it took. An empty route, Echo's
// answer for requests that matched nothing, is recorded as "unmatched".
func (m *Metrics) ObserveHTTP(route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = unmatchedRoute
	}
	m.httpRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(d.Seconds())
}
