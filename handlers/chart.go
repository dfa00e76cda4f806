package handlers

import (
	"context"
	"sync"

	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/views"
)

// chartCacheSize bounds how many finished runs' charts are kept.
const chartCacheSize = 256

// chartCache keeps the charts of finished runs: their rows no longer change
// (a retry is a new run), and reading every row of a 100,000-row run on
// each view would cost far more than the page itself.
type chartCache struct {
	mu     sync.Mutex
	charts map[int64]*views.Chart
}

func newChartCache() *chartCache { return &chartCache{charts: map[int64]*views.Chart{}} }

// runChart is the run page's chart: rows per minute by outcome against the
// rate limit, for finished runs only (a running one shows live counts);
// nil when there is nothing to draw or it cannot be read (the page does
// without it).
func (a *app) runChart(ctx context.Context, run *store.Run, finished bool) *views.Chart {
	if !finished {
		return nil
	}
	a.charts.mu.Lock()
	c, ok := a.charts.charts[run.ID]
	a.charts.mu.Unlock()
	if ok {
		return c
	}
	minutes, err := a.db.FindRunMinutes(ctx, run.ID)
	if err != nil {
		a.log.Warn("read run chart", "run_id", run.ID, "err", err)
		return nil
	}
	c = &views.Chart{Limit: a.rateLimit}
	for _, m := range minutes {
		c.Minutes = append(c.Minutes, views.RunMinute{Start: m.Start, Done: m.Done, Failed: m.Failed, Skipped: m.Skipped})
	}
	a.charts.mu.Lock()
	if len(a.charts.charts) >= chartCacheSize {
		clear(a.charts.charts) // simple and rare: the next views refill it
	}
	a.charts.charts[run.ID] = c
	a.charts.mu.Unlock()
	return c
}
