package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ThrottleSnapshot is what the per-account Zendesk throttle has done since it
// was made (bulk.Throttle's Stats has both numbers).
type ThrottleSnapshot struct {
	// Waits counts calls that had to wait before they were sent.
	Waits int64
	// Waited is the total time those calls waited.
	Waited time.Duration
}

// SetThrottleSource makes every scrape report f's numbers as
// onbehalf_throttle_waits_total and onbehalf_throttle_wait_seconds_total.
// The throttle counts its own waits, so reading them at scrape time needs no
// hook in the hot path; f must be cheap and must never go down (counters
// that shrink read as a restart). A later call replaces f; nil removes it.
func (m *Metrics) SetThrottleSource(f func() ThrottleSnapshot) {
	if m == nil {
		return
	}
	m.throttle.setSource(f)
}

// throttleCollector is a prometheus.Collector reading the throttle's own
// counters at collection time.
type throttleCollector struct {
	waits  *prometheus.Desc
	waited *prometheus.Desc

	mu     sync.Mutex
	source func() ThrottleSnapshot
}

func newThrottleCollector() *throttleCollector {
	return &throttleCollector{
		waits: prometheus.NewDesc(prometheus.BuildFQName(namespace, "throttle", "waits_total"),
			"Zendesk calls that had to wait for the per-account throttle before being sent.", nil, nil),
		waited: prometheus.NewDesc(prometheus.BuildFQName(namespace, "throttle", "wait_seconds_total"),
			"Total time Zendesk calls spent waiting for the per-account throttle.", nil, nil),
	}
}

func (c *throttleCollector) setSource(f func() ThrottleSnapshot) {
	c.mu.Lock()
	c.source = f
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *throttleCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.waits
	ch <- c.waited
}

// Collect implements prometheus.Collector. It reports nothing until a source
// is set.
func (c *throttleCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	f := c.source
	c.mu.Unlock()
	if f == nil {
		return
	}
	s := f()
	ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(s.Waits))
	ch <- prometheus.MustNewConstMetric(c.waited, prometheus.CounterValue, s.Waited.Seconds())
}
