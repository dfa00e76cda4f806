package bulk

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/zendesk"
)

// fakeClock is a clock whose sleeps advance it instead of waiting.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept += d
	return nil
}

func (c *fakeClock) Slept() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slept
}

func newFakeThrottle(t *testing.T, perMinute int) (*Throttle, *fakeClock) {
	t.Helper()
	c := newFakeClock()
	th := NewThrottle(perMinute, c.Now)
	th.sleep = c.Sleep
	return th, c
}

func TestThrottleRealRateOverWindow(t *testing.T) {
	t.Parallel()
	const perMinute = 1200 // 20/s, burst 10
	th := NewThrottle(perMinute, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	var calls atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for th.Wait(ctx) == nil {
				calls.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	max := 10 + int64(elapsed.Seconds()*perMinute/60) + 1
	if n := calls.Load(); n > max {
		t.Errorf("%d calls in %v, more than burst + rate allows (%d)", n, elapsed, max)
	}
	if n := calls.Load(); n < 10 {
		t.Errorf("only %d calls in %v: the throttle starves callers", n, elapsed)
	}
	if th.Stats().Waits == 0 {
		t.Error("Stats().Waits = 0 although callers had to wait")
	}
}

func TestThrottlePacesAtRate(t *testing.T) {
	t.Parallel()
	th, clock := newFakeThrottle(t, 600) // 10/s, burst 5
	for range 5 + 100 {
		if err := th.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// The burst is free; 100 more calls need 10 s of earned tokens.
	if got := clock.Slept(); got < 9900*time.Millisecond || got > 10100*time.Millisecond {
		t.Errorf("105 calls at 10/s with burst 5 slept %v, want about 10s", got)
	}
}

func TestThrottleObserve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		info      zendesk.RateInfo
		wantDelay time.Duration
		wantRate  float64 // per minute, after the observation
		want429   int64
	}{
		{"429 with Retry-After blocks everyone", zendesk.RateInfo{Status: http.StatusTooManyRequests, Limit: -1, Remaining: -1, RetryAfter: 7 * time.Second}, 7 * time.Second, 600, 1},
		{"429 without Retry-After uses reset", zendesk.RateInfo{Status: http.StatusTooManyRequests, Limit: -1, Remaining: -1, Reset: 3 * time.Second}, 3 * time.Second, 600, 1},
		{"429 with no hint waits the default", zendesk.RateInfo{Status: http.StatusTooManyRequests, Limit: -1, Remaining: -1}, zendesk.DefaultRetryAfter, 600, 1},
		{"503 with Retry-After blocks", zendesk.RateInfo{Status: http.StatusServiceUnavailable, Limit: -1, Remaining: -1, RetryAfter: 4 * time.Second}, 4 * time.Second, 600, 0},
		{"500 does not block", zendesk.RateInfo{Status: http.StatusInternalServerError, Limit: -1, Remaining: -1, RetryAfter: 4 * time.Second}, 0, 600, 0},
		{"lower Zendesk limit is followed", zendesk.RateInfo{Status: 200, Limit: 200, Remaining: 150}, 0, 200, 0},
		{"higher Zendesk limit is not", zendesk.RateInfo{Status: 200, Limit: 2500, Remaining: 2400}, 0, 600, 0},
		{"spent window waits for the reset", zendesk.RateInfo{Status: 200, Limit: 700, Remaining: 0, Reset: 30 * time.Second}, 30 * time.Second, 600, 0},
		{"nearly spent window slows to the reset", zendesk.RateInfo{Status: 200, Limit: 700, Remaining: 10, Reset: 20 * time.Second}, 0, 30, 0},
		{"window resetting within a second is left to the bucket", zendesk.RateInfo{Status: 200, Limit: 6000, Remaining: 50, Reset: time.Second}, 0, 600, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			th, _ := newFakeThrottle(t, 600)
			th.Observe(tt.info)
			if got := th.Delay(); got != tt.wantDelay {
				t.Errorf("Delay() = %v, want %v", got, tt.wantDelay)
			}
			if got := th.RatePerMinute(); got < tt.wantRate-0.01 || got > tt.wantRate+0.01 {
				t.Errorf("RatePerMinute() = %v, want %v", got, tt.wantRate)
			}
			if got := th.Stats().Observed429; got != tt.want429 {
				t.Errorf("Observed429 = %d, want %d", got, tt.want429)
			}
		})
	}
}

func TestThrottleHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	th, clock := newFakeThrottle(t, 6000)
	th.Observe(zendesk.RateInfo{Status: http.StatusTooManyRequests, Limit: -1, Remaining: -1, RetryAfter: 5 * time.Second})
	start := clock.Now()
	if err := th.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if waited := clock.Now().Sub(start); waited < 5*time.Second {
		t.Errorf("Wait returned after %v, before Retry-After (5s) passed", waited)
	}
	// The bucket restarts empty: the next call waits for a token too.
	before := clock.Slept()
	if err := th.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if clock.Slept() == before {
		t.Error("the call right after the block did not wait for a token")
	}

	// A cancelled caller stops waiting.
	th.Observe(zendesk.RateInfo{Status: http.StatusTooManyRequests, Limit: -1, Remaining: -1, RetryAfter: time.Minute})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := th.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a cancelled context = %v, want context.Canceled", err)
	}
}
