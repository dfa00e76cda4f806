package handlers

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// Sign-in rate limit (security promise 12): each client address may start
// or finish this many logins in a burst, refilled at the same number per
// minute. A login costs two requests (/login and the callback), so a person
// can log in about ten times a minute; a script hammering either endpoint
// is turned away before a session, an audit row or a Zendesk call.
const defaultLoginRatePerMinute = 20

// maxLimiterAddrs bounds the addresses the limiter remembers. When full, it
// forgets the addresses whose allowance has refilled (they lose nothing); if
// that is not enough (a flood from many addresses), every address it does
// not know shares one more allowance, overflowKey's, until room is made. So
// a flood costs bounded memory, and gets no more sign-ins a minute than one
// address, however many addresses it comes from.
const maxLimiterAddrs = 10000

// overflowKey names the allowance addresses share while the limiter is full.
const overflowKey = "overflow"

// addrLimiter is a token bucket per client address, kept in this process's
// memory: with several replicas each applies the limit on its own.
type addrLimiter struct {
	perMinute float64
	now       func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newAddrLimiter(perMinute int, now func() time.Time) *addrLimiter {
	return &addrLimiter{perMinute: float64(perMinute), now: now, buckets: map[string]*bucket{}}
}

// allow takes one request from addr's allowance. When none is left it
// returns false and how long until there is.
func (l *addrLimiter) allow(addr string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	addr = limitKey(addr)
	b, ok := l.buckets[addr]
	if !ok {
		if len(l.buckets) >= maxLimiterAddrs {
			l.prune(now)
		}
		if len(l.buckets) >= maxLimiterAddrs {
			addr = overflowKey
		}
		if b, ok = l.buckets[addr]; !ok {
			b = &bucket{tokens: l.perMinute, at: now}
			l.buckets[addr] = b
		}
	}
	b.tokens = min(l.perMinute, b.tokens+now.Sub(b.at).Minutes()*l.perMinute)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.perMinute * float64(time.Minute))
	return false, wait
}

func (l *addrLimiter) prune(now time.Time) {
	for addr, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Minutes()*l.perMinute >= l.perMinute {
			delete(l.buckets, addr)
		}
	}
}

// limitKey is whose allowance a client address uses: an IPv4 address its
// own, an IPv6 address its /64 network's (one host is usually given a whole
// /64, so its addresses are no more than one client).
func limitKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.WithZone("").Prefix(64)
	if err != nil {
		return addr
	}
	return p.String()
}

// limitLogins applies the sign-in rate limit per client address (the TCP
// peer: X-Forwarded-For is not trusted, see New).
func (a *app) limitLogins(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ok, wait := a.loginLimit.allow(c.RealIP())
		if ok {
			return next(c)
		}
		a.metrics.RateLimited(c.Path())
		secs := int(math.Ceil(wait.Seconds()))
		a.log.Warn("sign-in rate limit", "remote", c.RealIP(), "route", c.Path(), "retry_after_s", secs)
		c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
		return &pageError{
			Status:      http.StatusTooManyRequests,
			Heading:     "Too many sign-in attempts",
			Message:     "onbehalf received more sign-in attempts from your network address than it allows in a minute, so it did not start another. Wait " + strconv.Itoa(secs) + " seconds and log in again.",
			ActionHref:  "/",
			ActionLabel: "Back to onbehalf",
		}
	}
}
