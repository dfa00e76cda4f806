package bulk

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/internal/testpg"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

const (
	replicaBenchRows  = 1000
	replicaBenchLimit = 1200 // per minute: the sandbox's, and each replica's
	// replicaBenchWindow is the window of the peak rate.
	replicaBenchWindow = 10 * time.Second
)

// BenchmarkSharedLimit runs 1,000 rating rows on two engines (two replicas
// on one PostgreSQL database), each given the sandbox's whole limit
// (1,200/min, 50 ms latency), and prints what DESIGN.md's replica target
// names: the rate both send together ÷ the limit (target 0.9–1.0; steady,
// leaving out the opening burst and the tail), the 429s the sandbox's own
// limiter gave (target 0), and the run's time ÷ the rate-limit bound (rows
// ÷ limit). "shared" is the throttle as NewEngine builds it on PostgreSQL;
// "own-buckets" is the behaviour before the bucket was shared (a bucket per
// replica, the pause shared), for comparison.
//
//	TEST_DATABASE_URL=postgres://… go test -bench SharedLimit -run '^$' ./bulk/
func BenchmarkSharedLimit(b *testing.B) {
	b.Run("shared", func(b *testing.B) { benchReplicas(b, false) })
	b.Run("own-buckets", func(b *testing.B) { benchReplicas(b, true) })
}

// countingTransport counts the requests one replica sends.
type countingTransport struct {
	rt http.RoundTripper
	n  *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

func benchReplicas(b *testing.B, ownBuckets bool) {
	if b.N > 1 {
		b.Skip("one run is the measurement")
	}
	dsn := testpg.Database(b, "onbehalf_replicas")
	env := newEngineEnvOn(b, sandbox.Options{Data: sandbox.Generate(14, 1500, 3200), Seed: 14,
		RateLimit: replicaBenchLimit, Faults: sandbox.Faults{Latency: benchLatency}}, dsn)
	tickets := rateableTickets(b, env.sb, sandbox.GeneratedFirstTicketID, sandbox.GeneratedFirstTicketID+3199, replicaBenchRows)
	run := env.mustImport(b, actions.KindRate, ratingCSV(b, env.sb, tickets))

	var mu sync.Mutex
	var arrived []time.Time
	env.sb.SetHooks(sandbox.Hooks{BeforeCall: func(*http.Request) {
		mu.Lock()
		arrived = append(arrived, time.Now())
		mu.Unlock()
	}})
	sent := make([]atomic.Int64, 2)
	engines := make([]*Engine, 2)
	for i := range engines {
		db := env.db
		if i > 0 {
			db = mustOpenStore(b, dsn) // the other replica's own handle
		}
		engines[i] = env.newEngine(b, replicaBenchLimit, func(c *Config) {
			c.DB = db
			c.RescueStuckJobsAfter = time.Minute
			c.pollInterval = 0
			c.HTTPClient = &http.Client{Transport: countingTransport{
				rt: zendesk.NewTransport(zendesk.DefaultIdleConnTimeout), n: &sent[i]}}
			if ownBuckets {
				th := NewThrottle(replicaBenchLimit, nil)
				th.ShareLimit(dbLimit{db: db, account: env.sb.URL})
				th.ownBucket = true
				c.Throttle = th
			}
		})
	}
	env.sb.ResetStats()
	start := time.Now()
	if err := engines[0].Confirm(context.Background(), run.ID, env.admin, 0); err != nil {
		b.Fatal(err)
	}
	waitRun(b, env.db, run.ID, 10*time.Minute, store.RunDone)
	elapsed := time.Since(start)
	c, err := env.db.RunCounts(context.Background(), run.ID)
	if err != nil {
		b.Fatal(err)
	}
	st := env.sb.Stats()

	mu.Lock()
	at := slices.Clone(arrived)
	mu.Unlock()
	if len(at) < 2 {
		b.Fatalf("%d calls reached the sandbox", len(at))
	}
	perMinute := func(n int, d time.Duration) float64 { return float64(n) / d.Minutes() }
	// The steady rate leaves out the first and last tenth of the calls:
	// the opening burst and the tail, when fewer rows are left than
	// workers.
	lo, hi := len(at)/10, len(at)*9/10
	rate := perMinute(hi-lo, at[hi].Sub(at[lo])) / replicaBenchLimit
	span := at[len(at)-1].Sub(at[0])
	overall := perMinute(len(at)-1, span) / replicaBenchLimit
	accepted := perMinute(len(at)-1-st.Throttled, span) / replicaBenchLimit
	peak := 0
	for i, j := 0, 0; j < len(at); j++ {
		for at[j].Sub(at[i]) > replicaBenchWindow {
			i++
		}
		peak = max(peak, j-i+1)
	}
	peakRate := perMinute(peak, replicaBenchWindow) / replicaBenchLimit
	bound := time.Duration(float64(replicaBenchRows) / replicaBenchLimit * float64(time.Minute))

	b.ReportMetric(rate, "x-limit")
	b.ReportMetric(peakRate, "peak-x-limit")
	b.ReportMetric(float64(st.Throttled), "own-429s")
	b.ReportMetric(elapsed.Seconds()/bound.Seconds(), "x-bound")
	b.Logf("two replicas, each given the whole limit (%d/min), own buckets %v: %d rows in %v, bound (rows ÷ limit) %v, ratio %.3f; "+
		"together they sent %.3f × the limit steadily (target 0.9–1.0; %.3f × from first to last call, burst included, %.3f × accepted), peak %v window %.3f ×; "+
		"sandbox's own 429s %d (target 0); calls per replica %d + %d (%.3f per row); done %d failed %d",
		replicaBenchLimit, ownBuckets, replicaBenchRows, elapsed.Round(time.Millisecond), bound, elapsed.Seconds()/bound.Seconds(),
		rate, overall, accepted, replicaBenchWindow, peakRate, st.Throttled, sent[0].Load(), sent[1].Load(),
		float64(len(at))/replicaBenchRows, c.Done, c.Failed)
}
