package handlers

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/onbehalf/onbehalf/internal/benchcpu"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// progressBenchFor is how long each BenchmarkProgressFanOut case measures.
const progressBenchFor = 10 * time.Second

// BenchmarkProgressFanOut stores one running 100,000-row run and has 100,
// then 1,000, concurrent viewers follow its live progress over
// /bulk/runs/:id/events at the app's default pace (one event a second) for
// 10 seconds each; it reports the process's CPU use in cores (CPU time ÷
// wall time, clients and sandbox included), each viewer's events per
// second (the slowest and the median), and database progress reads per
// second. "per-viewer" serves the same viewers the way handleEvents did
// before the hub, each viewer polling the database on its own, for
// comparison; "idle" is the process with no viewer at all. The issue "Big
// runs stay fast" asks for < 0.2 cores and about one event a second each
// with 100 viewers, and that 1,000 hold.
//
//	go test -bench ProgressFanOut -benchtime 1x -run '^$' ./handlers/
func BenchmarkProgressFanOut(b *testing.B) {
	app := newTestApp(b, testAppOptions{ProgressEvery: time.Second})
	s := loginAs(b, app, sandbox.DemoAdminEmail)
	t0 := time.Now()
	id := storeBigRun(b, app.DB, bigRunRows, store.RunRunning)
	b.Logf("stored a running %d-row run in %v", bigRunRows, time.Since(t0).Round(time.Millisecond))
	hub := app.Server.app.progress
	legacy := newPerViewerServer(b, app.Server.app)
	cookie := &http.Cookie{Name: sessionName, Value: s.cookie()}

	b.Run("idle", func(b *testing.B) {
		cpu, wall := benchcpu.Used(), time.Now()
		time.Sleep(progressBenchFor)
		cores := (benchcpu.Used() - cpu).Seconds() / time.Since(wall).Seconds()
		b.ReportMetric(cores, "cores")
		b.Logf("no viewer: %.3f cores", cores)
	})
	for _, mode := range []string{"hub", "per-viewer"} {
		for _, n := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/viewers=%d", mode, n), func(b *testing.B) {
				if b.N > 1 {
					b.Skip("one run is the measurement")
				}
				base, reads := app.URL, hub.stats.reads.Load
				if mode == "per-viewer" {
					base, reads = legacy.URL, legacy.reads.Load
				}
				benchViewers(b, base+fmt.Sprintf("/bulk/runs/%d/events", id), cookie, n, reads)
				if mode == "hub" {
					deadline := time.Now().Add(10 * time.Second)
					for hub.stats.running.Load() != 0 && time.Now().Before(deadline) {
						time.Sleep(10 * time.Millisecond)
					}
					if n := hub.stats.running.Load(); n != 0 {
						b.Errorf("%d progress readers still running 10s after every viewer left", n)
					}
				}
			})
		}
	}
}

// benchViewers connects n viewers to the event stream at url, waits until
// each has its first event, then measures for progressBenchFor.
func benchViewers(b *testing.B, url string, cookie *http.Cookie, n int, reads func() int64) {
	transport := &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	counts := make([]atomic.Int64, n)
	var started, wg sync.WaitGroup
	started.Add(n)
	connectedAt := time.Now()
	for i := range n {
		wg.Go(func() {
			first := true
			defer func() {
				if first {
					started.Done()
				}
			}()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			req.AddCookie(cookie)
			req.Header.Set("Accept", "text/event-stream")
			res, err := client.Do(req)
			if err != nil {
				if ctx.Err() == nil {
					b.Errorf("viewer %d: %v", i, err)
				}
				return
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("viewer %d: status %d", i, res.StatusCode)
				return
			}
			br := bufio.NewReader(res.Body)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(line, "data: ") {
					if !strings.Contains(line, `"state":"running"`) {
						b.Errorf("viewer %d got %q", i, line)
					}
					counts[i].Add(1)
					if first {
						first = false
						started.Done()
					}
				}
			}
		})
	}
	// Viewers polling on their own may not all get through in time; the
	// measurement then starts anyway, and their rates show it.
	allStarted := make(chan struct{})
	go func() {
		started.Wait()
		close(allStarted)
	}()
	select {
	case <-allStarted:
		b.Logf("%d viewers had their first event after %v", n, time.Since(connectedAt).Round(time.Millisecond))
	case <-time.After(time.Minute):
		b.Logf("not all %d viewers had their first event after a minute; measuring anyway", n)
	}

	b.ResetTimer()
	before := make([]int64, n)
	for i := range counts {
		before[i] = counts[i].Load()
	}
	reads0, cpu, wall := reads(), benchcpu.Used(), time.Now()
	time.Sleep(progressBenchFor)
	elapsed := time.Since(wall).Seconds()
	cores := (benchcpu.Used() - cpu).Seconds() / elapsed
	readRate := float64(reads()-reads0) / elapsed
	rates := make([]float64, n)
	for i := range counts {
		rates[i] = float64(counts[i].Load()-before[i]) / elapsed
	}
	b.StopTimer()
	cancel()
	wg.Wait()

	slices.Sort(rates)
	b.ReportMetric(cores, "cores")
	b.ReportMetric(rates[0], "events/s-min")
	b.ReportMetric(rates[n/2], "events/s-median")
	b.ReportMetric(readRate, "reads/s")
	b.Logf("%d viewers: %.3f cores; events/s per viewer min %.2f, median %.2f; %.1f progress reads/s",
		n, cores, rates[0], rates[n/2], readRate)
}

// perViewerServer serves a run's events the way handleEvents did before
// progressHub: every viewer reads the run's progress from the database once
// a tick, on its own. Only BenchmarkProgressFanOut uses it, to compare.
type perViewerServer struct {
	URL   string
	reads atomic.Int64
}

func newPerViewerServer(b *testing.B, a *app) *perViewerServer {
	b.Helper()
	s := &perViewerServer{}
	e := echo.New()
	e.HTTPErrorHandler = a.handleError
	e.Use(requestID(), a.accessLog(), middleware.Recover(), securityHeaders(false, ""), a.withSession(), a.checkCSRF())
	e.GET("/bulk/runs/:id/events", func(c echo.Context) error {
		ctx := c.Request().Context()
		id := runOf(c).ID
		w := c.Response()
		startEventStream(w)
		tick := time.NewTicker(a.progressEvery)
		defer tick.Stop()
		for {
			frame, last, err := a.readProgress(ctx, id)
			s.reads.Add(1)
			if err != nil {
				return nil
			}
			if _, err := w.Write(frame); err != nil {
				return nil
			}
			w.Flush()
			if last {
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
	}, a.loadRun(opView))
	srv := httptest.NewServer(e)
	b.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}
