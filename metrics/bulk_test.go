package metrics

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func fixedSource(s BulkSnapshot) func(context.Context) (BulkSnapshot, error) {
	return func(context.Context) (BulkSnapshot, error) { return s, nil }
}

func TestBulkSourceReportedAtScrapeTime(t *testing.T) {
	t.Parallel()
	m := newTestMetrics(t)
	var mu sync.Mutex
	snap := BulkSnapshot{
		RowsByState: map[string]int{"pending": 3, "queued": 7, "done": 0},
		JobsByState: map[string]int{"available": 7, "running": 2},
	}
	m.SetBulkSource(func(context.Context) (BulkSnapshot, error) {
		mu.Lock()
		defer mu.Unlock()
		return snap, nil
	})

	mustCompare(t, m, `
# HELP onbehalf_bulk_rows Bulk rows in the database, by state.
# TYPE onbehalf_bulk_rows gauge
onbehalf_bulk_rows{state="done"} 0
onbehalf_bulk_rows{state="pending"} 3
onbehalf_bulk_rows{state="queued"} 7
# HELP onbehalf_queue_jobs River jobs in the database, by River's job state.
# TYPE onbehalf_queue_jobs gauge
onbehalf_queue_jobs{state="available"} 7
onbehalf_queue_jobs{state="running"} 2
# HELP onbehalf_bulk_source_up 1 if the last read of bulk rows and queue jobs succeeded, 0 if it failed or timed out.
# TYPE onbehalf_bulk_source_up gauge
onbehalf_bulk_source_up 1
`, "onbehalf_bulk_rows", "onbehalf_queue_jobs", "onbehalf_bulk_source_up")

	// A row finishes: the next scrape shows it, with nothing else to update.
	mu.Lock()
	snap = BulkSnapshot{
		RowsByState: map[string]int{"pending": 3, "queued": 6, "done": 1},
		JobsByState: map[string]int{"available": 6, "running": 2, "completed": 1},
	}
	mu.Unlock()
	mustCompare(t, m, `
# HELP onbehalf_bulk_rows Bulk rows in the database, by state.
# TYPE onbehalf_bulk_rows gauge
onbehalf_bulk_rows{state="done"} 1
onbehalf_bulk_rows{state="pending"} 3
onbehalf_bulk_rows{state="queued"} 6
# HELP onbehalf_queue_jobs River jobs in the database, by River's job state.
# TYPE onbehalf_queue_jobs gauge
onbehalf_queue_jobs{state="available"} 6
onbehalf_queue_jobs{state="completed"} 1
onbehalf_queue_jobs{state="running"} 2
`, "onbehalf_bulk_rows", "onbehalf_queue_jobs")
}

func TestBulkSourceErrorKeepsScrape(t *testing.T) {
	t.Parallel()
	m := newTestMetrics(t)
	m.ObserveHTTP("/users", 200, time.Millisecond)
	m.SetBulkSource(func(context.Context) (BulkSnapshot, error) {
		return BulkSnapshot{RowsByState: map[string]int{"done": 5}}, errors.New("database is locked")
	})

	status, body := mustScrape(t, m.Handler())
	if status != http.StatusOK {
		t.Fatalf("scrape status = %d, want 200 despite the failing source", status)
	}
	for _, want := range []string{
		`onbehalf_http_requests_total{route="/users",status="200"} 1`,
		"onbehalf_bulk_source_up 0",
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	// What a failing source returned alongside its error is not trusted.
	if strings.Contains(body, "onbehalf_bulk_rows{") {
		t.Error("scrape reports bulk rows from a failed read")
	}
}

func TestBulkSourceTimeout(t *testing.T) {
	t.Parallel()
	m := newTestMetrics(t)
	m.bulk.timeout = 50 * time.Millisecond
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hadDeadline := make(chan bool, 1)
	// A source that ignores its context, like a query stuck in a driver.
	m.SetBulkSource(func(ctx context.Context) (BulkSnapshot, error) {
		_, ok := ctx.Deadline()
		hadDeadline <- ok
		<-release
		return BulkSnapshot{RowsByState: map[string]int{"done": 1}}, nil
	})

	status, body := mustScrape(t, m.Handler())
	if status != http.StatusOK {
		t.Fatalf("scrape status = %d, want 200", status)
	}
	if !strings.Contains(body, "onbehalf_bulk_source_up 0") {
		t.Error("a source that outlived its deadline is not reported as down")
	}
	if !<-hadDeadline {
		t.Error("the source's context had no deadline")
	}
}

func TestBulkSourceUnsetOrRemoved(t *testing.T) {
	t.Parallel()
	names := []string{"onbehalf_bulk_rows", "onbehalf_queue_jobs", "onbehalf_bulk_source_up"}
	tests := []struct {
		name string
		set  func(m *Metrics)
		want int
	}{
		{"never set", func(*Metrics) {}, 0},
		{"set", func(m *Metrics) {
			m.SetBulkSource(fixedSource(BulkSnapshot{RowsByState: map[string]int{"done": 1}, JobsByState: map[string]int{"completed": 1}}))
		}, 3},
		{"set then removed", func(m *Metrics) {
			m.SetBulkSource(fixedSource(BulkSnapshot{RowsByState: map[string]int{"done": 1}}))
			m.SetBulkSource(nil)
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := newTestMetrics(t)
			tt.set(m)
			n, err := testutil.GatherAndCount(m.reg, names...)
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.want {
				t.Errorf("bulk series = %d, want %d", n, tt.want)
			}
		})
	}
}
