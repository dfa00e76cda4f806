package bulk

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testpg"
	"github.com/onbehalf/onbehalf/store"
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

// fakeLimit is a SharedLimit that answers every slot with slot (or err) and
// records what the throttle asked of it.
type fakeLimit struct {
	mu         sync.Mutex
	slot       store.RateSlot
	err        error
	intervals  []time.Duration
	tolerances []time.Duration
	extended   []time.Duration
	givenBack  int
	pauseReads int
}

func (f *fakeLimit) TakeRateSlot(_ context.Context, interval, tolerance time.Duration) (store.RateSlot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.intervals = append(f.intervals, interval)
	f.tolerances = append(f.tolerances, tolerance)
	return f.slot, f.err
}

func (f *fakeLimit) GiveBackRateSlot(context.Context, time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.givenBack++
	return f.err
}

func (f *fakeLimit) RatePause(context.Context) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pauseReads++
	return 0, f.err
}

func (f *fakeLimit) ExtendRatePause(_ context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.extended = append(f.extended, d)
	return f.err
}

func (f *fakeLimit) lastSlot() (interval, tolerance time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.intervals) == 0 {
		return 0, 0
	}
	return f.intervals[len(f.intervals)-1], f.tolerances[len(f.tolerances)-1]
}

// TestThrottleSharedSlotsFollowZendesk checks what a throttle sharing its
// limit asks the database for: slots as long as the rate it keeps to,
// which a lower X-Rate-Limit lowers — but not a nearly spent window, whose
// pacing would commit every replica to slots far longer than the window —
// and the sleep its slot needs.
func TestThrottleSharedSlotsFollowZendesk(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		info          *zendesk.RateInfo
		wantInterval  time.Duration
		wantTolerance time.Duration
	}{
		{"configured rate", nil, 100 * time.Millisecond, 500 * time.Millisecond},
		{"lower Zendesk limit", &zendesk.RateInfo{Status: 200, Limit: 200, Remaining: 150}, 300 * time.Millisecond, 1500 * time.Millisecond},
		{"nearly spent window", &zendesk.RateInfo{Status: 200, Limit: 700, Remaining: 10, Reset: 20 * time.Second}, 100 * time.Millisecond, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			th, clock := newFakeThrottle(t, 600) // 10/s, burst 5
			f := &fakeLimit{slot: store.RateSlot{Wait: 250 * time.Millisecond}}
			th.ShareLimit(f)
			if tt.info != nil {
				th.Observe(*tt.info)
			}
			if err := th.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			if iv, tol := f.lastSlot(); iv != tt.wantInterval || tol != tt.wantTolerance {
				t.Errorf("slot asked with interval %v, tolerance %v; want %v, %v", iv, tol, tt.wantInterval, tt.wantTolerance)
			}
			if got := clock.Slept(); got != 250*time.Millisecond {
				t.Errorf("Wait slept %v, want the slot's 250ms", got)
			}
			if f.pauseReads != 1 {
				t.Errorf("the pause was read %d times after the sleep, want 1", f.pauseReads)
			}
			if st := th.Stats(); st.Waits != 1 || st.Waited != 250*time.Millisecond {
				t.Errorf("Stats = %+v, want one wait of 250ms", st)
			}
		})
	}
}

func TestThrottleSharedPauses(t *testing.T) {
	t.Parallel()
	th, clock := newFakeThrottle(t, 600)
	f := &fakeLimit{}
	th.ShareLimit(f)
	th.Observe(zendesk.RateInfo{Status: http.StatusTooManyRequests, Limit: -1, Remaining: -1, RetryAfter: 7 * time.Second})
	if len(f.extended) != 1 || f.extended[0] != 7*time.Second {
		t.Errorf("pauses saved for the replicas: %v, want [7s]", f.extended)
	}
	// The pause is known here: Wait sleeps it out before taking a slot.
	if err := th.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if clock.Slept() != 7*time.Second || len(f.intervals) != 1 {
		t.Errorf("slept %v and took %d slots, want 7s then one slot", clock.Slept(), len(f.intervals))
	}
	// A pause another replica saved arrives with the slot.
	f.slot = store.RateSlot{Pause: 3 * time.Second, Wait: 3100 * time.Millisecond}
	if err := th.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := clock.Slept(); got != 10100*time.Millisecond {
		t.Errorf("slept %v in all, want 7s + 3.1s", got)
	}
	// It is not written back: only this replica's own pauses are.
	if len(f.extended) != 1 {
		t.Errorf("pauses saved: %v, want only the first", f.extended)
	}
}

func TestThrottleSharedFallsBackToOwnBucket(t *testing.T) {
	t.Parallel()
	th, clock := newFakeThrottle(t, 600) // 10/s, burst 5
	th.ShareLimit(&fakeLimit{err: errors.New("database down")})
	for range 5 + 100 {
		if err := th.Wait(t.Context()); err != nil {
			t.Fatalf("Wait with the database down = %v, want calls to go on", err)
		}
	}
	if got := clock.Slept(); got < 9900*time.Millisecond || got > 10100*time.Millisecond {
		t.Errorf("105 calls with the database down slept %v, want about 10s (this process's bucket)", got)
	}
}

// newSharedThrottle is a throttle at perMinute whose limit lives in db,
// for account.
func newSharedThrottle(db *store.DB, account string, perMinute int) *Throttle {
	th := NewThrottle(perMinute, nil)
	th.ShareLimit(dbLimit{db: db, account: account})
	return th
}

func TestThrottleSharedGivesBackCancelledSlot(t *testing.T) {
	t.Parallel()
	db := mustOpenStore(t, "sqlite:"+filepath.Join(t.TempDir(), "onbehalf.db"))
	th := newSharedThrottle(db, "https://acme.zendesk.com", 60) // 1/s, burst 1
	if err := th.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := th.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait for a slot 1s away with 200ms to spare = %v, want the deadline", err)
	}
	// The abandoned slot, due about 0.8s from now, is the next caller's;
	// without it the next slot is 1.8s away.
	start := time.Now()
	if err := th.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 1300*time.Millisecond || waited < 500*time.Millisecond {
		t.Errorf("the call after a cancelled one waited %v, want about 0.8s", waited)
	}
}

func TestThrottleSharedPauseWakesSleepers(t *testing.T) {
	t.Parallel()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "onbehalf.db")
	const acct = "https://acme.zendesk.com"
	a := newSharedThrottle(mustOpenStore(t, dsn), acct, 120) // 2/s, burst 1
	b := newSharedThrottle(mustOpenStore(t, dsn), acct, 120) // another replica
	if err := b.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	returned := make(chan time.Duration, 1)
	go func() {
		// Takes the slot 0.5s away and sleeps for it.
		if err := b.Wait(t.Context()); err != nil {
			t.Error(err)
		}
		returned <- time.Since(start)
	}()
	time.Sleep(100 * time.Millisecond)
	a.Observe(zendesk.RateInfo{Status: http.StatusTooManyRequests, Limit: -1, Remaining: -1, RetryAfter: time.Second})
	// The pause ends about 1.1s after start; the sleeper wakes at 0.5s,
	// finds it, and goes one interval after it.
	if got := <-returned; got < 1100*time.Millisecond {
		t.Errorf("a call whose slot fell in another replica's Retry-After went %v after start, before the pause ended (1.1s)", got)
	}
	if b.Delay() != 0 {
		t.Errorf("Delay() = %v after the pause", b.Delay())
	}
}

// TestThrottleReplicasShareOneLimit runs two throttles on two handles of
// one PostgreSQL database (two replicas), each given the whole limit, and
// counts the calls they let through together; the control keeps a bucket
// per replica, as before the limit was shared, to show that the count
// tells the two apart.
func TestThrottleReplicasShareOneLimit(t *testing.T) {
	t.Parallel()
	dsn := testpg.Database(t, "onbehalf_throttle")
	const (
		perMinute = 6000 // 100/s, burst 50
		burst     = 50
		window    = 3 * time.Second
	)
	for _, tt := range []struct {
		name      string
		ownBucket bool
	}{{"shared bucket", false}, {"own buckets (control)", true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			account := "https://" + strings.ReplaceAll(tt.name, " ", "-") + ".zendesk.com"
			var replicas []*Throttle
			for range 2 {
				th := newSharedThrottle(mustOpenStore(t, dsn), account, perMinute)
				th.ownBucket = tt.ownBucket
				replicas = append(replicas, th)
			}
			var calls atomic.Int64
			start := time.Now()
			end := start.Add(window)
			ctx, cancel := context.WithDeadline(t.Context(), end)
			defer cancel()
			var wg sync.WaitGroup
			for _, th := range replicas {
				for range 8 {
					wg.Go(func() {
						for th.Wait(ctx) == nil && !time.Now().After(end) {
							calls.Add(1)
						}
					})
				}
			}
			wg.Wait()
			n, limit := float64(calls.Load()), window.Seconds()*perMinute/60
			t.Logf("%.0f calls in %v: %.2f × the limit (%.0f)", n, window, n/limit, limit)
			if tt.ownBucket {
				if n < 1.5*limit {
					t.Errorf("with a bucket per replica, only %.0f calls (limit %.0f): the count does not tell shared from own buckets", n, limit)
				}
				return
			}
			if n > limit+burst {
				t.Errorf("%.0f calls in %v, more than the limit plus one burst (%.0f)", n, window, limit+burst)
			}
			if n < 0.9*limit {
				t.Errorf("%.0f calls in %v, under 0.9 × the limit (%.0f)", n, window, limit)
			}
		})
	}
}
