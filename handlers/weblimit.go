package handlers

import (
	"context"
	"time"

	"github.com/onbehalf/onbehalf/bulk"
	"github.com/onbehalf/onbehalf/zendesk"
)

// webMaxWait is the longest a page waits out a pause of the account's calls
// (a Retry-After in force). Past it the page says Zendesk asked to wait,
// rather than hang.
const webMaxWait = 5 * time.Second

// webLimiter is the account's throttle (the bulk engine's) as the pages'
// calls to Zendesk use it. What Zendesk answers them (a 429, the rate
// headers) pauses and paces the bulk runs too, and a pause in force, from
// any call on any replica, holds the pages' calls as well. The pages' calls
// are not paced at the runs' rate: they are few, a person waits for each,
// and twenty of them queued behind a run's rows would take seconds; one
// that tips the account over its limit is answered 429, which pauses the
// runs.
type webLimiter struct{ t *bulk.Throttle }

// Wait implements zendesk.Limiter: it waits out a pause in force, if it is
// short.
func (w webLimiter) Wait(ctx context.Context) error {
	d := w.t.PauseLeft(ctx)
	switch {
	case d <= 0:
		return nil
	case d > webMaxWait:
		return waitTooLong(d)
	}
	select {
	case <-time.After(d): // at most webMaxWait
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Delay implements zendesk.Limiter.
func (w webLimiter) Delay() time.Duration { return w.t.Delay() }

// Observe implements zendesk.Limiter.
func (w webLimiter) Observe(info zendesk.RateInfo) { w.t.Observe(info) }

// waitTooLong is the error of a call not sent because its turn at the rate
// limit is further off than a page waits: the actions explain it as
// Zendesk's rate limit reached, to try again in d.
func waitTooLong(d time.Duration) error {
	return &zendesk.Error{Kind: zendesk.ErrRateLimited, RetryAfter: d.Round(time.Second), NotSent: true,
		Description: "onbehalf is holding its calls to Zendesk at the account's rate limit"}
}
