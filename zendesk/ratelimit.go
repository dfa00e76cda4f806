package zendesk

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Limiter is what the client needs from a throttle; the bulk runner provides
// one per Zendesk account so that every client value acting for that account
// shares one budget (§4.2).
type Limiter interface {
	// Wait blocks until a request may be sent, or returns ctx's error.
	Wait(ctx context.Context) error
	// Delay is how long a request would still have to wait for a pause
	// (a Retry-After) in force right now; 0 when none is. The client asks
	// it again just before a request goes out, so that a 429 that arrived
	// while this request fetched its token still stops it.
	Delay() time.Duration
	// Observe reports what a response said about the rate limit. It is
	// called after every response, including 429 and 503 answers.
	Observe(info RateInfo)
}

// RateInfo is what one response said about the account's rate limit (§4.2).
type RateInfo struct {
	// Status is the HTTP status of the response.
	Status int
	// Limit is the requests per minute allowed (X-Rate-Limit or
	// ratelimit-limit); -1 when the response did not say.
	Limit int
	// Remaining is the requests left in the current window
	// (X-Rate-Limit-Remaining or ratelimit-remaining); -1 when absent.
	Remaining int
	// Reset is the time until the window resets (ratelimit-reset); 0 when absent.
	Reset time.Duration
	// RetryAfter is the wait Zendesk asked for (Retry-After, in seconds or as
	// an HTTP date); 0 when absent.
	RetryAfter time.Duration
	// Endpoint is the request path without the query string.
	Endpoint string
}

// parseRateInfo reads the rate-limit headers of a response. Retry-After as
// an HTTP date is measured against the response's own Date header when
// present, so that clock skew between us and Zendesk does not matter, and
// against now otherwise.
func parseRateInfo(status int, endpoint string, h http.Header, now time.Time) RateInfo {
	info := RateInfo{Status: status, Endpoint: endpoint, Limit: -1, Remaining: -1}
	info.Limit = firstInt(h, "X-Rate-Limit", "Ratelimit-Limit")
	info.Remaining = firstInt(h, "X-Rate-Limit-Remaining", "Ratelimit-Remaining")
	if d, ok := parseSeconds(h.Get("Ratelimit-Reset")); ok {
		info.Reset = d
	}
	info.RetryAfter = parseRetryAfter(h, now)
	return info
}

func firstInt(h http.Header, names ...string) int {
	for _, n := range names {
		v := strings.TrimSpace(h.Get(n))
		if v == "" {
			continue
		}
		if i, err := strconv.Atoi(v); err == nil && i >= 0 {
			return i
		}
	}
	return -1
}

// parseSeconds reads a non-negative number of seconds (integers as
// documented; fractions are tolerated).
func parseSeconds(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, false
	}
	// A day is far beyond anything Zendesk sends; the cap keeps a broken
	// header from overflowing or parking a worker for years.
	f = math.Min(f, 24*60*60)
	return time.Duration(f * float64(time.Second)), true
}

func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if d, ok := parseSeconds(v); ok {
		return d
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	ref := now
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		ref = date
	}
	d := at.Sub(ref)
	if d < 0 {
		return 0
	}
	return min(d, 24*time.Hour)
}
