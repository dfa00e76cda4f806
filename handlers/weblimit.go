package handlers

import (
	"context"
	"errors"
	"time"

	"github.com/onbehalf/onbehalf/bulk"
	"github.com/onbehalf/onbehalf/zendesk"
)

// webMaxWait is the longest a page waits for its turn at the account's rate
// limit. Past it (a Retry-After in force, or a queue of bulk rows that long)
// the page says Zendesk asked to wait, rather than hang.
const webMaxWait = 5 * time.Second

// webLimiter is the account's throttle (the bulk engine's) as the pages'
// calls to Zendesk use it: they take their turn at ZENDESK_RATE_LIMIT with
// the bulk runs' calls, so together they stay under the account's limit,
// and what Zendesk answers them (a 429, the rate headers) pauses and paces
// the runs too.
type webLimiter struct{ t *bulk.Throttle }

// Wait implements zendesk.Limiter.
func (w webLimiter) Wait(ctx context.Context) error {
	if d := w.t.Delay(); d > webMaxWait {
		return waitTooLong(d)
	}
	wctx, cancel := context.WithTimeout(ctx, webMaxWait)
	defer cancel()
	err := w.t.Wait(wctx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return waitTooLong(max(w.t.Delay(), webMaxWait))
	}
	return err
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
