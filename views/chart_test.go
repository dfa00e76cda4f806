package views

import (
	"strings"
	"testing"
	"time"
)

func TestChartBarsCoverLongRunsInAtMostSixtyBars(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	c := Chart{Limit: 200}
	// 150 minutes at 180 done rows a minute, 20 failed in the last one.
	for i := range 150 {
		c.Minutes = append(c.Minutes, RunMinute{Start: t0.Add(time.Duration(i) * time.Minute), Done: 180})
	}
	c.Minutes[149].Failed = 20
	if got := c.step(); got != 3 {
		t.Fatalf("step = %d minutes a bar, want 3 (150 minutes in at most 60 bars)", got)
	}
	per := c.perMinute()
	if len(per) != 50 {
		t.Fatalf("%d bars, want 50", len(per))
	}
	if per[0].Done != 180 {
		t.Errorf("a 3-minute bar of 180 a minute reads %d rows per minute, want 180", per[0].Done)
	}
	bars := c.bars()
	if len(bars) != 50 {
		t.Fatalf("%d bars drawn, want 50", len(bars))
	}
	for _, b := range bars {
		if b.X < chartLeft || b.X+b.W > chartW-chartRight+0.01 {
			t.Errorf("bar at %.1f+%.1f leaves the plot", b.X, b.W)
		}
		if b.Done.Y < chartTop {
			t.Errorf("bar reaches above the plot: y %.1f", b.Done.Y)
		}
	}
	// The limit (200) is above the busiest bar (180), and the axis top is
	// 10% above the limit.
	if c.topLabel() != "220" {
		t.Errorf("axis top %s, want 220", c.topLabel())
	}
	d := c.describe()
	for _, want := range []string{"27,000 done", "20 failed", "limit of 200 calls a minute", "Each bar is 3 minutes"} {
		if !strings.Contains(d, want) {
			t.Errorf("description %q lacks %q", d, want)
		}
	}
}
