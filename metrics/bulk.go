package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// bulkSourceTimeout bounds one read of the bulk source: well under
// Prometheus' default 10 s scrape timeout, so a slow database costs the bulk
// gauges of one scrape and never the whole scrape.
const bulkSourceTimeout = 3 * time.Second

// BulkSnapshot is the state of bulk work at one moment, as the database
// holds it: it is shared by every replica, so each replica reports the same
// numbers and dashboards should use max() rather than sum() across replicas.
type BulkSnapshot struct {
	// RowsByState counts bulk rows by their state (store.Row* constants:
	// invalid, pending, queued, done, failed, skipped).
	RowsByState map[string]int
	// JobsByState counts River jobs by River's job state (available,
	// scheduled, running, retryable, completed, cancelled, discarded,
	// pending). available + scheduled + retryable + running is the queue's
	// depth.
	JobsByState map[string]int
}

// SetBulkSource makes every scrape report what f returns, as
// onbehalf_bulk_rows{state} and onbehalf_queue_jobs{state}, plus
// onbehalf_bulk_source_up (1 when f succeeded, 0 when it failed or took
// longer than a few seconds). f runs at scrape time with a context that
// expires after a few seconds; it should return every state it knows,
// zeros included, so that series do not disappear when a count drops to
// zero. When f fails the scrape still succeeds, without the bulk gauges;
// f should log its own error, since only f knows what it was doing. A later
// call replaces f; nil removes it.
func (m *Metrics) SetBulkSource(f func(ctx context.Context) (BulkSnapshot, error)) {
	if m == nil {
		return
	}
	m.bulk.setSource(f)
}

// bulkCollector is a prometheus.Collector that reads its values from the
// bulk source at collection time, so nothing has to keep gauges up to date
// as rows and jobs change state, on whichever replica that happens.
type bulkCollector struct {
	timeout time.Duration
	rows    *prometheus.Desc
	jobs    *prometheus.Desc
	up      *prometheus.Desc

	mu     sync.Mutex
	source func(ctx context.Context) (BulkSnapshot, error)
}

func newBulkCollector() *bulkCollector {
	return &bulkCollector{
		timeout: bulkSourceTimeout,
		rows: prometheus.NewDesc(prometheus.BuildFQName(namespace, "bulk", "rows"),
			"Bulk rows in the database, by state.", []string{"state"}, nil),
		jobs: prometheus.NewDesc(prometheus.BuildFQName(namespace, "queue", "jobs"),
			"River jobs in the database, by River's job state.", []string{"state"}, nil),
		up: prometheus.NewDesc(prometheus.BuildFQName(namespace, "bulk", "source_up"),
			"1 if the last read of bulk rows and queue jobs succeeded, 0 if it failed or timed out.", nil, nil),
	}
}

func (c *bulkCollector) setSource(f func(ctx context.Context) (BulkSnapshot, error)) {
	c.mu.Lock()
	c.source = f
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *bulkCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.rows
	ch <- c.jobs
	ch <- c.up
}

// Collect implements prometheus.Collector. It reports nothing until a source
// is set.
func (c *bulkCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	f := c.source
	c.mu.Unlock()
	if f == nil {
		return
	}
	snap, err := c.read(f)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for state, n := range snap.RowsByState {
		ch <- prometheus.MustNewConstMetric(c.rows, prometheus.GaugeValue, float64(n), state)
	}
	for state, n := range snap.JobsByState {
		ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(n), state)
	}
}

// read calls f with a deadline and gives up at the deadline even if f does
// not honour its context, so a stuck query cannot hang the scrape; f's
// goroutine then finishes on its own and its result is dropped.
func (c *bulkCollector) read(f func(ctx context.Context) (BulkSnapshot, error)) (BulkSnapshot, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	type result struct {
		snap BulkSnapshot
		err  error
	}
	done := make(chan result, 1)
	go func() {
		snap, err := f(ctx)
		done <- result{snap, err}
	}()
	select {
	case r := <-done:
		return r.snap, r.err
	case <-ctx.Done():
		return BulkSnapshot{}, ctx.Err()
	}
}
