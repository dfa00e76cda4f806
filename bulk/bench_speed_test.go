package bulk

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/internal/benchcpu"
	"github.com/onbehalf/onbehalf/internal/testpg"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// topSpeedRows is how many rating rows BenchmarkEngineTopSpeed runs.
const topSpeedRows = 10_000

// topSpeedLimit is a rate limit (per minute) so high that neither the
// sandbox nor the throttle ever makes a row wait.
const topSpeedLimit = 100_000_000

// BenchmarkEngineTopSpeed runs 10,000 rating rows through the engine with
// nothing to wait for (a sandbox with no latency, no limit worth the name)
// and prints the rows per second and the CPU time the whole process spent
// per row: the engine's own cost per row, which is what bounds a run once
// the rate limit is high. It runs on SQLite, and on PostgreSQL too when
// TEST_DATABASE_URL is set. The engine has its default workers
// (DefaultWorkers): River fetches jobs at most once per fetch cooldown
// (50 ms), so that many workers cap a run near DefaultWorkers ÷ 50 ms.
//
//	go test -bench EngineTopSpeed -run '^$' ./bulk/
//	go test -bench EngineTopSpeed -run '^$' -cpuprofile cpu.out ./bulk/
func BenchmarkEngineTopSpeed(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchTopSpeed(b, "sqlite:"+filepath.Join(b.TempDir(), "onbehalf.db"))
	})
	b.Run("postgres", func(b *testing.B) {
		if os.Getenv("TEST_DATABASE_URL") == "" {
			b.Skip("set TEST_DATABASE_URL to measure PostgreSQL too")
		}
		benchTopSpeed(b, testpg.Database(b, "onbehalf_speed"))
	})
}

func benchTopSpeed(b *testing.B, dsn string) {
	if b.N > 1 {
		b.Skip("one run is the measurement")
	}
	env := newEngineEnvOn(b, sandbox.Options{Data: sandbox.Generate(13, 5000, 16000), Seed: 13,
		RateLimit: topSpeedLimit}, dsn)
	tickets := rateableTickets(b, env.sb, sandbox.GeneratedFirstTicketID, sandbox.GeneratedFirstTicketID+15999, topSpeedRows)
	run := env.mustImport(b, actions.KindRate, ratingCSV(b, env.sb, tickets))
	e := env.newEngine(b, topSpeedLimit, func(c *Config) { c.RescueStuckJobsAfter = time.Minute; c.pollInterval = 0 })
	env.sb.ResetStats()

	cpu0 := benchcpu.Used()
	start := time.Now()
	b.ResetTimer()
	if err := e.Confirm(context.Background(), run.ID, env.admin, 0); err != nil {
		b.Fatal(err)
	}
	waitRun(b, env.db, run.ID, 10*time.Minute, store.RunDone)
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := benchcpu.Used() - cpu0

	c, err := env.db.RunCounts(context.Background(), run.ID)
	if err != nil {
		b.Fatal(err)
	}
	if c.Done != topSpeedRows {
		b.Fatalf("%d rows done, want %d; counts %+v", c.Done, topSpeedRows, c)
	}
	rps := topSpeedRows / elapsed.Seconds()
	perRow := cpu / topSpeedRows
	calls := float64(totalCalls(env.sb.Stats())) / topSpeedRows
	b.ReportMetric(rps, "rows/s")
	b.ReportMetric(float64(perRow.Microseconds()), "cpu-µs/row")
	b.ReportMetric(calls, "calls/row")
	b.Logf("%s, %d workers: %d rating rows in %v: %.0f rows/s; process CPU %v (%v a row, sandbox included); %.3f Zendesk calls/row",
		env.db.Dialect(), DefaultWorkers, topSpeedRows, elapsed.Round(time.Millisecond), rps, cpu.Round(time.Millisecond), perRow, calls)
}
