package bulk

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk"
)

// lowRemainingPercent is the share of Zendesk's per-minute limit below which
// the throttle stops trusting its own bucket and paces the calls left over
// the time until the window resets (zendesk-api.md §4.2).
const lowRemainingPercent = 5

// Throttle is the one budget of calls to one Zendesk account, shared by every
// client acting for it in this process (zendesk-api.md §4.2: the limit is per
// account, whoever's token and whichever end user), and, with ShareLimit, by
// every replica. It implements zendesk.Limiter: a token bucket at the
// configured rate with a small burst, and on top of it whatever Zendesk's
// answers say (Retry-After, X-Rate-Limit, X-Rate-Limit-Remaining). It is safe
// for concurrent use.
type Throttle struct {
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu      sync.Mutex
	rate    float64 // tokens per second, the lower of ours and Zendesk's
	ownRate float64
	burst   float64
	tokens  float64
	last    time.Time
	// blockedUntil: nobody sends before it (a 429 or 503 Retry-After, or a
	// spent window).
	blockedUntil time.Time
	// lowRate (tokens per second) applies until lowUntil: the calls left
	// in a nearly spent window, spread over the time until it resets.
	lowRate  float64
	lowUntil time.Time

	waits, observed429, observed503 int64
	waitedTotal                     time.Duration

	// shared, when set, holds the account's bucket and its Retry-After
	// pause where every replica sees them (ShareLimit). The bucket above
	// then paces calls only while the database does not answer.
	shared SharedLimit
	// ownBucket keeps the bucket in this process and shares only the
	// pause: what replicas did before the bucket was shared, kept so
	// tests and benchmarks can show the difference.
	ownBucket bool
	// sharedUntil is the latest pause this throttle wrote to shared.
	sharedUntil time.Time
}

// waitBudgetKey carries the longest a caller will wait for its turn.
type waitBudgetKey struct{}

// withWaitBudget makes Wait refuse, with a *queueTooLong, a turn further
// away than budget holds (a pause, or the queue of calls before it), giving
// back the slot it took: a bulk row does not spend its job's time in the
// queue, it hands the worker back and comes again when its turn is near.
// The caller may change budget meanwhile; zero lifts it (once a row's write
// has gone out, what follows must finish).
func withWaitBudget(ctx context.Context, budget *atomic.Int64) context.Context {
	return context.WithValue(ctx, waitBudgetKey{}, budget)
}

// overBudget reports the error for a wait of d when it is longer than the
// caller's budget; nil when it is not, or the caller set none.
func overBudget(ctx context.Context, d time.Duration) error {
	if b, ok := ctx.Value(waitBudgetKey{}).(*atomic.Int64); ok {
		if max := time.Duration(b.Load()); max > 0 && d > max {
			return &queueTooLong{wait: d, budget: max}
		}
	}
	return nil
}

// queueTooLong is Wait's refusal of a turn further away than the caller's
// budget (withWaitBudget). Nothing was sent, so it is actions.ErrStopped
// too: no audit row.
type queueTooLong struct{ wait, budget time.Duration }

func (e *queueTooLong) Error() string {
	return fmt.Sprintf("bulk: the turn to call Zendesk is %v away", e.wait.Round(time.Millisecond))
}

func (e *queueTooLong) Unwrap() error { return actions.ErrStopped }

// SharedLimit keeps a Zendesk account's call bucket and Retry-After pause
// where every replica sees them (the database, on PostgreSQL). Its answers
// are durations from its own clock's now, so replicas need not agree on
// the time. store.DB has these methods for one account.
type SharedLimit interface {
	// TakeRateSlot takes the next call slot: slots are interval apart,
	// up to tolerance's worth of them free after the account was idle.
	TakeRateSlot(ctx context.Context, interval, tolerance time.Duration) (store.RateSlot, error)
	// GiveBackRateSlot returns an unused slot of interval.
	GiveBackRateSlot(ctx context.Context, interval time.Duration) error
	// RatePause returns how long the pause still lasts (zero: none).
	RatePause(ctx context.Context) (time.Duration, error)
	// ExtendRatePause makes the pause last at least d from now.
	ExtendRatePause(ctx context.Context, d time.Duration) error
}

// ShareLimit makes the throttle take every call's slot from s instead of
// from its own bucket, and keep 429 and 503 pauses in s as well as in
// memory, so that replicas each given the account's whole limit send no
// more than that limit together, and a Retry-After one of them got stops
// them all until it has passed (zendesk-api.md §4.2: the limit is the
// account's). Call it before use.
//
// What Zendesk's headers say stays with the process that read them, as it
// shapes the slots it takes: a lower X-Rate-Limit makes its slots longer,
// which slows every replica; the other replicas read the same headers on
// their own calls. A nearly spent window does not stretch the slots (see
// waitShared); a spent one (Remaining 0) pauses everyone until it resets.
func (t *Throttle) ShareLimit(s SharedLimit) {
	t.mu.Lock()
	t.shared = s
	t.mu.Unlock()
}

// dbLimit is a SharedLimit on the store's database.
type dbLimit struct {
	db      *store.DB
	account string
}

func (l dbLimit) TakeRateSlot(ctx context.Context, interval, tolerance time.Duration) (store.RateSlot, error) {
	return l.db.TakeRateSlot(ctx, l.account, interval, tolerance)
}

func (l dbLimit) GiveBackRateSlot(ctx context.Context, interval time.Duration) error {
	return l.db.GiveBackRateSlot(ctx, l.account, interval)
}

func (l dbLimit) RatePause(ctx context.Context) (time.Duration, error) {
	return l.db.RatePause(ctx, l.account)
}

func (l dbLimit) ExtendRatePause(ctx context.Context, d time.Duration) error {
	return l.db.ExtendRatePause(ctx, l.account, d)
}

// ThrottleStats counts what a Throttle did, for logs and tests.
type ThrottleStats struct {
	// Waits counts Wait calls that had to wait.
	Waits int64
	// Waited is the total time Wait calls spent waiting.
	Waited time.Duration
	// Observed429 and Observed503 count the 429 and 503 answers reported.
	Observed429, Observed503 int64
	// RatePerMinute is the rate the throttle currently keeps to.
	RatePerMinute float64
}

// NewThrottle returns a Throttle allowing perMinute calls a minute (at least
// 1). now is the clock (nil: time.Now).
//
// The burst is half a second's worth (at least 1), half of the one second
// Zendesk-style buckets allow: calls reach Zendesk after a varying delay, so
// a stream that is exactly at the rate when it leaves here arrives bunched
// up; the slack in Zendesk's own bucket absorbs that only if ours is smaller.
func NewThrottle(perMinute int, now func() time.Time) *Throttle {
	if perMinute < 1 {
		perMinute = 1
	}
	if now == nil {
		now = time.Now
	}
	rate := float64(perMinute) / 60
	burst := max(1, float64(perMinute/120))
	return &Throttle{now: now, sleep: sleepCtx, rate: rate, ownRate: rate, burst: burst, tokens: burst, last: now()}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refillLocked adds the tokens earned since the last refill.
func (t *Throttle) refillLocked(now time.Time) {
	if el := now.Sub(t.last); el > 0 {
		t.tokens = min(t.burst, t.tokens+el.Seconds()*t.rateLocked(now))
		t.last = now
	}
}

// rateLocked is the rate in force at now.
func (t *Throttle) rateLocked(now time.Time) float64 {
	if now.Before(t.lowUntil) {
		return min(t.rate, t.lowRate)
	}
	return t.rate
}

// Wait blocks until a call may be sent, or returns ctx's error. A caller
// takes its slot at once and sleeps until it comes, so waiting callers are
// served in order; a block that starts while it sleeps (a call got a 429,
// here or, with ShareLimit, on another replica) makes it wait for that too.
func (t *Throttle) Wait(ctx context.Context) error {
	t.mu.Lock()
	shared, own := t.shared, t.ownBucket
	t.mu.Unlock()
	switch {
	case shared == nil:
		return t.waitLocal(ctx)
	case own:
		return t.waitOwnBucket(ctx, shared)
	}
	return t.waitShared(ctx, shared)
}

// waitShared is Wait with the bucket in shared: one round trip takes the
// slot and reads the pause, and one more after a sleep looks for a pause
// that began meanwhile.
//
// A caller that gives up (ctx) or finds a pause after its sleep gives its
// slot back; a slot whose answer was lost with the caller's context (or
// the process) is lost, which only leaves the account a call short.
func (t *Throttle) waitShared(ctx context.Context, shared SharedLimit) error {
	counted := false
	for {
		// A pause already known here: no slot is taken before it ends.
		waited, err := t.sitOutPause(ctx, &counted)
		if err != nil {
			return err
		}
		if waited {
			continue
		}
		t.mu.Lock()
		// The slot length follows the configured rate, or Zendesk's lower
		// X-Rate-Limit, but not the pacing of a nearly spent window: a slot
		// taken here is committed for every replica, so slots stretched to
		// spread a window's last calls would outlast the window by far and
		// stall the account (20 waiting workers at a few seconds each).
		// The shared bucket keeps the account at its limit anyway, and a
		// spent window still stops everyone (Remaining 0 blocks).
		interval := time.Duration(float64(time.Second) / t.rate)
		tolerance := time.Duration(t.burst * float64(interval))
		t.mu.Unlock()

		slot, err := shared.TakeRateSlot(ctx, interval, tolerance)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// A database that does not answer does not stop the calls:
			// this process's own bucket paces them, and Zendesk's 429s
			// still stop them.
			return t.waitLocal(ctx)
		}
		t.pauseFor(slot.Pause)
		if slot.Wait == 0 {
			return nil
		}
		if err := overBudget(ctx, slot.Wait); err != nil {
			t.giveBackShared(ctx, shared, interval)
			return err
		}
		t.mu.Lock()
		t.noteWaitLocked(&counted, slot.Wait)
		t.mu.Unlock()
		if err := t.sleep(ctx, slot.Wait); err != nil {
			t.giveBackShared(ctx, shared, interval)
			return err
		}
		if !t.blocked() {
			left, err := shared.RatePause(ctx)
			if err != nil && ctx.Err() != nil {
				t.giveBackShared(ctx, shared, interval)
				return ctx.Err()
			}
			if err != nil || left == 0 {
				return nil
			}
			t.pauseFor(left)
		}
		// Paused while asleep: take a slot after the pause instead.
		t.giveBackShared(ctx, shared, interval)
	}
}

// giveBackShared returns an unused slot; on a context of its own, since
// the caller's is usually what ended.
func (t *Throttle) giveBackShared(ctx context.Context, shared SharedLimit, interval time.Duration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = shared.GiveBackRateSlot(ctx, interval)
}

// waitOwnBucket is Wait with this process's bucket and the shared pause.
func (t *Throttle) waitOwnBucket(ctx context.Context, shared SharedLimit) error {
	for {
		if err := t.waitLocal(ctx); err != nil {
			return err
		}
		// Another replica may have been told to wait: the pause it saved
		// holds here too. A database that does not answer does not stop
		// the calls: Zendesk's own 429s still would.
		left, err := shared.RatePause(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.giveBack()
				return ctx.Err()
			}
			return nil
		}
		if left == 0 {
			return nil
		}
		t.pauseFor(left)
	}
}

// waitLocal is Wait within this process: the bucket and the pauses it knows.
func (t *Throttle) waitLocal(ctx context.Context) error {
	counted := false
	for {
		waited, err := t.sitOutPause(ctx, &counted)
		if err != nil {
			return err
		}
		if waited {
			continue
		}
		t.mu.Lock()
		now := t.now()
		t.refillLocked(now)
		var d time.Duration
		if t.tokens < 1 {
			d = time.Duration((1 - t.tokens) / t.rateLocked(now) * float64(time.Second))
			if err := overBudget(ctx, d); err != nil {
				t.mu.Unlock()
				return err
			}
			t.noteWaitLocked(&counted, d)
		}
		t.tokens--
		t.mu.Unlock()
		if d == 0 {
			return nil
		}
		if err := t.sleep(ctx, d); err != nil {
			t.giveBack()
			return err
		}
		if !t.blocked() {
			return nil
		}
		t.giveBack()
	}
}

// sitOutPause waits for the pause known here, if there is one (or refuses
// a pause longer than the caller's budget); it reports whether it waited.
func (t *Throttle) sitOutPause(ctx context.Context, counted *bool) (bool, error) {
	t.mu.Lock()
	d := t.pauseLocked(counted)
	t.mu.Unlock()
	if d <= 0 {
		return false, nil
	}
	if err := overBudget(ctx, d); err != nil {
		return false, err
	}
	return true, t.sleep(ctx, d)
}

// pauseLocked is how long the pause known here still lasts, counted as a
// wait; zero when there is none.
func (t *Throttle) pauseLocked(counted *bool) time.Duration {
	d := t.blockedUntil.Sub(t.now())
	if d <= 0 {
		return 0
	}
	t.noteWaitLocked(counted, d)
	return d
}

// blocked reports whether a pause is on now: one that began while a
// caller slept for its slot, which then waits for it too.
func (t *Throttle) blocked() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.now().Before(t.blockedUntil)
}

// pauseFor makes the pause known here last at least d from now: what the
// shared limit said another replica was told to wait.
func (t *Throttle) pauseFor(d time.Duration) {
	if d <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.blockLocked(now, now.Add(d))
}

func (t *Throttle) noteWaitLocked(counted *bool, d time.Duration) {
	if !*counted {
		*counted = true
		t.waits++
	}
	t.waitedTotal += d
}

func (t *Throttle) giveBack() {
	t.mu.Lock()
	t.tokens = min(t.burst, t.tokens+1)
	t.mu.Unlock()
}

// Observe follows what Zendesk said about the limit (zendesk-api.md §4.2):
// a 429, or a 503 with Retry-After, stops every caller until the wait is
// over; a lower X-Rate-Limit than ours becomes our rate; a window nearly
// spent (X-Rate-Limit-Remaining under 5% of the limit) spreads the calls
// left over the time until it resets (ratelimit-reset), or stops every
// caller until then when none are left.
func (t *Throttle) Observe(info zendesk.RateInfo) {
	t.mu.Lock()
	before := t.blockedUntil
	t.observeLocked(info)
	shared, until := t.shared, t.blockedUntil
	share := shared != nil && until.After(before) && until.After(t.sharedUntil)
	var left time.Duration
	if share {
		t.sharedUntil = until
		left = until.Sub(t.now())
	}
	t.mu.Unlock()
	if share && left > 0 {
		// Written before the caller goes on, so that the replicas see the
		// pause as soon as possible; a failure leaves them to find out
		// from Zendesk.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = shared.ExtendRatePause(ctx, left)
	}
}

// blockLocked stops everyone until until; the bucket earns nothing
// meanwhile, so calls resume at the rate, not with a burst.
func (t *Throttle) blockLocked(now, until time.Time) {
	if until.After(t.blockedUntil) {
		t.blockedUntil = until
		t.refillLocked(now)
		t.tokens = min(t.tokens, 0)
		t.last = until
	}
}

func (t *Throttle) observeLocked(info zendesk.RateInfo) {
	now := t.now()
	block := func(d time.Duration) { t.blockLocked(now, now.Add(d)) }
	switch info.Status {
	case http.StatusTooManyRequests:
		t.observed429++
		d := info.RetryAfter
		if d <= 0 {
			d = info.Reset
		}
		if d <= 0 {
			d = zendesk.DefaultRetryAfter
		}
		block(d)
	case http.StatusServiceUnavailable:
		t.observed503++
		if info.RetryAfter > 0 {
			block(info.RetryAfter)
		}
	}
	if info.Limit > 0 {
		if r := float64(info.Limit) / 60; r < t.ownRate {
			t.rate = r
		} else {
			t.rate = t.ownRate
		}
	}
	// A window that resets within a second is left to the bucket, which
	// paces at that scale already; the sandbox's one-second bucket always
	// looks "nearly spent" at high limits and would otherwise halve the rate.
	if info.Limit > 0 && info.Remaining >= 0 && info.Remaining*100 < info.Limit*lowRemainingPercent &&
		info.Reset > time.Second {
		if info.Remaining == 0 {
			block(info.Reset)
			return
		}
		t.lowRate = float64(info.Remaining) / info.Reset.Seconds()
		t.lowUntil = now.Add(info.Reset)
	}
}

// Delay is how long a call made now would have to wait for a block
// (Retry-After or a spent window) to pass, ignoring the bucket. Workers
// snooze their job instead of holding a worker through a long block.
func (t *Throttle) Delay() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return max(0, t.blockedUntil.Sub(t.now()))
}

// PauseLeft is how long a call made now would have to wait for a pause:
// Delay, or the pause another replica saved (ShareLimit), whichever ends
// later. It reads the shared pause afresh, so it is the check to make last
// before a write goes out.
func (t *Throttle) PauseLeft(ctx context.Context) time.Duration {
	t.mu.Lock()
	shared := t.shared
	t.mu.Unlock()
	d := t.Delay()
	if shared == nil {
		return d
	}
	left, err := shared.RatePause(ctx)
	if err != nil || left == 0 {
		return d
	}
	t.pauseFor(left)
	return max(d, left)
}

// RatePerMinute is the rate the throttle keeps to now: the configured rate,
// or Zendesk's advertised limit when that is lower, or the pace a nearly
// spent window allows. With ShareLimit it is the account's rate, all
// replicas together.
func (t *Throttle) RatePerMinute() float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rateLocked(t.now()) * 60
}

// Stats returns the throttle's counters.
func (t *Throttle) Stats() ThrottleStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return ThrottleStats{Waits: t.waits, Waited: t.waitedTotal, Observed429: t.observed429,
		Observed503: t.observed503, RatePerMinute: t.rateLocked(t.now()) * 60}
}
