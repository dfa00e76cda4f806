package metrics

import "github.com/prometheus/client_golang/prometheus"

// security counts what security promise 12 keeps out of the database:
// OAuth callbacks no login in that browser was waiting for, requests turned
// away by the sign-in rate limit, and Zendesk sign-ins the sweep revoked.
type security struct {
	strayCallbacks prometheus.Counter
	rateLimited    *prometheus.CounterVec
	grantsSwept    *prometheus.CounterVec
}

func newSecurity() *security {
	return &security{
		strayCallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "oauth_stray_callbacks_total",
			Help: "OAuth callbacks refused because no login was in progress in that browser (counted here, not audited).",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "rate_limited_requests_total",
			Help: "Requests refused by the per-address sign-in rate limit, by route pattern.",
		}, []string{"route"}),
		grantsSwept: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "grants_swept_total",
			Help: "Zendesk sign-ins no session or unfinished bulk run used, by what the sweep did: revoked (and deleted), dead (Zendesk no longer honoured it; deleted) or failed (kept for the next sweep).",
		}, []string{"outcome"}),
	}
}

func (s *security) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.strayCallbacks, s.rateLimited, s.grantsSwept}
}

// StrayCallback counts an OAuth callback that no login in that browser was
// waiting for.
func (m *Metrics) StrayCallback() {
	if m == nil {
		return
	}
	m.security.strayCallbacks.Inc()
}

// RateLimited counts a request the sign-in rate limit refused; route is
// the route pattern.
func (m *Metrics) RateLimited(route string) {
	if m == nil {
		return
	}
	m.security.rateLimited.WithLabelValues(route).Inc()
}

// GrantSwept counts an unused grant the sweep handled, by outcome:
// "revoked", "dead" or "failed" (bulk.GrantSweep.Swept).
func (m *Metrics) GrantSwept(outcome string) {
	if m == nil {
		return
	}
	m.security.grantsSwept.WithLabelValues(outcome).Inc()
}
