package bulk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/internal/testpg"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// BenchmarkConfirm100k confirms a 100,000-row rating run and prints how long
// the confirm took to answer (DESIGN.md: under 1 s), how long the rows took
// to be queued in the background, and how long another admin's writes
// (audit rows, one every 20 ms) waited meanwhile (under 100 ms), on SQLite
// and, with TEST_DATABASE_URL, on PostgreSQL.
func BenchmarkConfirm100k(b *testing.B) {
	if b.N > 1 {
		b.Skip("one run is the measurement")
	}
	b.Run("sqlite", func(b *testing.B) {
		benchConfirm(b, "sqlite:"+filepath.Join(b.TempDir(), "onbehalf.db"))
	})
	b.Run("postgres", func(b *testing.B) {
		if os.Getenv("TEST_DATABASE_URL") == "" {
			b.Skip("set TEST_DATABASE_URL to measure PostgreSQL too")
		}
		benchConfirm(b, testpg.Database(b, "onbehalf_bench"))
	})
}

func benchConfirm(b *testing.B, dsn string) {
	const rows = 100000
	env := newEngineEnvOn(b, sandbox.Options{Data: sandbox.Generate(13, 5000, 2000), RateLimit: 600}, dsn)
	var csv strings.Builder
	csv.WriteString("email,ticket_id,score\n")
	for i := range rows {
		// Rows on 2,000 tickets, so the chains are long, as in a file of
		// repeated corrections; the run is cancelled before many are sent.
		id := sandbox.GeneratedFirstTicketID + int64(i%2000)
		tk, _ := env.sb.TicketByID(id)
		u, _ := env.sb.UserByID(tk.RequesterID)
		fmt.Fprintf(&csv, "%s,%d,good\n", u.Email, id)
	}
	run := env.mustImport(b, actions.KindRate, csv.String())
	e := env.newEngine(b, 600, func(c *Config) { c.pollInterval = 0 })

	// Another admin writes while the rows are queued.
	ctx, stop := context.WithCancel(context.Background())
	var mu sync.Mutex
	var waits []time.Duration
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			t0 := time.Now()
			err := env.db.CreateAuditEvent(context.Background(), &store.AuditEvent{AdminID: 2, AdminName: "Ola Owner",
				Action: "login", Outcome: store.OutcomeOK})
			if err != nil {
				b.Error(err)
				return
			}
			mu.Lock()
			waits = append(waits, time.Since(t0))
			mu.Unlock()
		}
	})
	t0 := time.Now()
	if err := e.Confirm(context.Background(), run.ID, env.admin, 0); err != nil {
		b.Fatal(err)
	}
	confirm := time.Since(t0)
	nextReport := t0.Add(10 * time.Second)
	for {
		got, err := env.db.FindRunByID(context.Background(), run.ID)
		if err != nil {
			b.Fatal(err)
		}
		if !got.Queuing() {
			break
		}
		if now := time.Now(); now.After(nextReport) {
			fmt.Fprintf(os.Stderr, "%v: %d rows queued\n", now.Sub(t0).Round(time.Second), got.QueuedRows)
			nextReport = nextReport.Add(10 * time.Second)
		}
		if time.Since(t0) > 5*time.Minute {
			b.Fatal("queuing did not finish in 5 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	queued := time.Since(t0)
	stop()
	wg.Wait()
	if _, err := e.Cancel(context.Background(), run.ID, env.admin); err != nil {
		b.Fatal(err)
	}
	got, err := env.db.FindRunByID(context.Background(), run.ID)
	if err != nil {
		b.Fatal(err)
	}
	mu.Lock()
	if len(waits) == 0 {
		mu.Unlock()
		b.Fatal("no other write was timed while the rows were queued")
	}
	slices.Sort(waits)
	p99, worst := waits[len(waits)*99/100], waits[len(waits)-1]
	mu.Unlock()
	b.ReportMetric(confirm.Seconds(), "s-confirm")
	b.ReportMetric(queued.Seconds(), "s-queued")
	fmt.Fprintf(os.Stderr, "%s: confirm of %d rows answered in %v (target < 1 s); %d rows queued in the background in %v; "+
		"other writes meanwhile: %d, p99 %v, worst %v (target < 100 ms)\n", b.Name(), rows, confirm.Round(time.Millisecond),
		got.QueuedRows, queued.Round(time.Millisecond), len(waits), p99.Round(time.Millisecond), worst.Round(time.Millisecond))
}
