package handlers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testpg"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// Sizes of BenchmarkBigRunPages: the issue "Big runs stay fast" measured one
// stored 100,000-row run and 10 concurrent clients.
const (
	bigRunRows    = 100_000
	bigRunClients = 10
	bigRunFor     = 5 * time.Second
)

// BenchmarkBigRunPages stores one 100,000-row run half-way through (done,
// failed, skipped, queued rows, some waiting or in flight), then has 10
// keep-alive clients load GET /bulk (the run list with each run's counts)
// and GET /bulk/runs/:id (counts, progress and the first page of rows) in
// turn for 5 seconds, and reports requests per second and the p50 and p99
// latency of each page against DESIGN.md's target (p99 < 50 ms on 2
// cores). It runs on SQLite, and on PostgreSQL too when TEST_DATABASE_URL
// is set.
//
//	go test -bench BigRunPages -run '^$' ./handlers/
func BenchmarkBigRunPages(b *testing.B) {
	for _, state := range []string{store.RunRunning, store.RunPreview} {
		b.Run("sqlite/"+state, func(b *testing.B) { benchBigRunPages(b, "", state) })
		b.Run("postgres/"+state, func(b *testing.B) {
			if os.Getenv("TEST_DATABASE_URL") == "" {
				b.Skip("set TEST_DATABASE_URL to measure PostgreSQL too")
			}
			benchBigRunPages(b, testpg.Database(b, "onbehalf_bigrun"), state)
		})
	}
}

func benchBigRunPages(b *testing.B, dsn, state string) {
	if b.N > 1 {
		b.Skip("one run is the measurement")
	}
	app := newTestApp(b, testAppOptions{DSN: dsn})
	s := loginAs(b, app, sandbox.DemoAdminEmail)
	t0 := time.Now()
	id := storeBigRun(b, app.DB, bigRunRows, state)
	b.Logf("stored a %d-row run in %v", bigRunRows, time.Since(t0).Round(time.Millisecond))

	transport := &http.Transport{MaxIdleConnsPerHost: bigRunClients}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	b.Cleanup(transport.CloseIdleConnections)
	cookie := &http.Cookie{Name: sessionName, Value: s.cookie()}
	pages := []struct{ name, path, want string }{
		{"list", "/bulk", fmt.Sprintf(`data-testid="run-%d"`, id)},
		{"run", fmt.Sprintf("/bulk/runs/%d", id), `data-testid="run"`},
	}
	get := func(path string) (int, string, error) {
		req, _ := http.NewRequest(http.MethodGet, app.URL+path, nil)
		req.AddCookie(cookie)
		res, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		return res.StatusCode, string(body), err
	}
	// The pages must show the run, signed in: a redirect to the login or
	// an error page would be fast and measure nothing.
	for _, p := range pages {
		status, body, err := get(p.path)
		if err != nil || status != http.StatusOK || !strings.Contains(body, p.want) {
			b.Fatalf("GET %s: %d, %v, want 200 with %s: %.300s", p.path, status, err, p.want, body)
		}
	}

	latencies := make([][]time.Duration, len(pages))
	var mu sync.Mutex
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	deadline := start.Add(bigRunFor)
	for c := range bigRunClients {
		wg.Go(func() {
			local := make([][]time.Duration, len(pages))
			for i := c; time.Now().Before(deadline); i++ {
				p := i % len(pages)
				t := time.Now()
				status, _, err := get(pages[p].path)
				if err != nil || status != http.StatusOK {
					b.Errorf("GET %s: %d, %v", pages[p].path, status, err)
					return
				}
				local[p] = append(local[p], time.Since(t))
			}
			mu.Lock()
			defer mu.Unlock()
			for p := range pages {
				latencies[p] = append(latencies[p], local[p]...)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()

	var all []time.Duration
	for p, l := range latencies {
		all = append(all, l...)
		rps, p50, p99 := latencyStats(l, elapsed)
		b.ReportMetric(float64(p99.Microseconds())/1000, pages[p].name+"-p99-ms")
		b.Logf("GET %s: %d requests, %.0f req/s, p50 %v, p99 %v (target < 50ms)", pages[p].path, len(l), rps,
			p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
	}
	rps, p50, p99 := latencyStats(all, elapsed)
	b.ReportMetric(rps, "req/s")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.Logf("both pages, %d clients: %d requests in %v, %.0f req/s, p50 %v, p99 %v (target < 50ms)", bigRunClients,
		len(all), elapsed.Round(time.Millisecond), rps, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
}

// latencyStats returns the rate of requests over elapsed and the median and
// 99th-percentile latency.
func latencyStats(l []time.Duration, elapsed time.Duration) (float64, time.Duration, time.Duration) {
	if len(l) == 0 {
		return 0, 0, 0
	}
	l = slices.Clone(l)
	slices.Sort(l)
	return float64(len(l)) / elapsed.Seconds(), l[len(l)/2], l[len(l)*99/100]
}

// storeBigRun stores a rating run of n rows straight into the store, in
// batches. A running run has a tenth of its rows invalid, and of the valid
// ones about half done, some failed or skipped, the rest queued (a few
// waiting on the rate limit, a few with a pre-flight error); no job exists
// for them, so the engine leaves the run alone. A run in preview has all
// its rows pending but one in 10,000 invalid: the page's search for the
// first errors finds few.
func storeBigRun(b *testing.B, db *store.DB, n int, state string) int64 {
	b.Helper()
	r := &store.Run{AdminID: 1, AdminName: "Ada Admin", GrantID: 1, Kind: "rate", FileName: "big.csv",
		State: state, Header: []string{"email", "ticket_id", "score"},
		Mapping: map[string]int{"user": 0, "ticket": 1, "score": 2}, Delimiter: ","}
	if state != store.RunPreview {
		r.StartedAt = time.Now()
	}
	err := db.CreateRunWithRows(context.Background(), r, func(add func([]store.RunRow) error) error {
		batch := make([]store.RunRow, 0, 1000)
		for i := range n {
			num := i + 2
			row := store.RunRow{Number: num, Cells: []string{fmt.Sprintf("user%d@example.com", i), fmt.Sprint(1000 + i), "good"},
				Key: fmt.Sprintf("rate:ticket:%d", 1000+i)}
			switch {
			case state == store.RunPreview && i%10_000 == 9, state != store.RunPreview && i%10 == 9:
				row.State = store.RowInvalid
				row.Errors = []string{"score: say good or bad"}
			default:
				row.Valid = true
				row.Action = fmt.Appendf(nil, `{"User":"user%d@example.com","Ticket":%d,"Score":"good"}`, i, 1000+i)
				switch {
				case state == store.RunPreview:
				case i < n/2 && i%50 == 7:
					row.State, row.HTTPStatus, row.Error = store.RowFailed, 422, "This ticket is not solved yet."
				case i < n/2 && i%50 == 8:
					row.State, row.Error = store.RowSkipped, "Already rated."
				case i < n/2:
					row.State, row.HTTPStatus, row.ZendeskID = store.RowDone, 200, int64(5000+i)
				case i%100 == 3:
					row.State, row.WaitingUntil = store.RowQueued, time.Now().Add(time.Hour)
				case i%100 == 4:
					row.State, row.PreflightError = store.RowQueued, "This user has no verified email in Zendesk."
				default:
					row.State = store.RowQueued
				}
			}
			batch = append(batch, row)
			if len(batch) == cap(batch) {
				if err := add(batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		return add(batch)
	})
	if err != nil {
		b.Fatalf("store a %d-row run: %v", n, err)
	}
	return r.ID
}
