package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// statusError is the status label of a Zendesk call that got no response at
// all (connection refused or reset, timeout, cancelled context).
const statusError = "error"

// Transport returns an http.RoundTripper that sends requests through base
// (http.DefaultTransport when nil) and records each one as a Zendesk call:
// onbehalf_zendesk_calls_total{endpoint,status}, the latency histogram by
// endpoint, and onbehalf_zendesk_rate_limited_total for 429 answers. Wrap the
// transport of the HTTP client given to the zendesk and oauthflow packages.
// A nil receiver returns base unwrapped.
func (m *Metrics) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if m == nil {
		return base
	}
	return &transport{base: base, m: m}
}

// transport is the RoundTripper Transport returns.
type transport struct {
	base http.RoundTripper
	m    *Metrics
}

// RoundTrip sends req through the base transport and records the call. The
// duration ends when the response headers arrive: the body belongs to the
// caller, who may read it much later.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	endpoint := Endpoint(req.Method, req.URL.Path)
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	t.m.zendeskDuration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	if err != nil {
		t.m.zendeskCalls.WithLabelValues(endpoint, statusError).Inc()
		return resp, err
	}
	t.m.zendeskCalls.WithLabelValues(endpoint, strconv.Itoa(resp.StatusCode)).Inc()
	if resp.StatusCode == http.StatusTooManyRequests {
		t.m.zendeskRateLimited.Inc()
	}
	return resp, nil
}

// Endpoint is the endpoint label of a call: the method, a space and the path
// with ".json" dropped and every id segment replaced by "{id}", for example
// "POST /api/v2/tickets/{id}/satisfaction_rating". The query string is never
// part of it. Zendesk's documentation spells paths with ".json" and our
// client without (zendesk-api.md §1.6 and §3 mix both), so both spellings of
// one endpoint share one label. Ids are replaced because each would otherwise
// become a series of its own, without bound.
func Endpoint(method, path string) string {
	path = strings.TrimSuffix(path, ".json")
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if isIDSegment(s) {
			segs[i] = "{id}"
		}
	}
	path = strings.Join(segs, "/")
	if path == "" {
		path = "/"
	}
	return method + " " + path
}

// isIDSegment reports whether a path segment names one object rather than a
// fixed part of the API: a number, a comma-separated list of numbers
// (show_many-style paths), or anything with an "@" (an email address, which
// some endpoints accept in place of a user id).
func isIDSegment(s string) bool {
	if s == "" {
		return false
	}
	if strings.Contains(s, "@") {
		return true
	}
	digits := false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits = true
		case r == ',':
		default:
			return false
		}
	}
	return digits
}
