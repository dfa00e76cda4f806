package views

import (
	"fmt"
	"strconv"
	"time"
)

// RunMinute is how many rows of a run ended in one minute, by outcome.
type RunMinute struct {
	Start                 time.Time
	Done, Failed, Skipped int
}

// Total is the minute's rows.
func (m RunMinute) Total() int { return m.Done + m.Failed + m.Skipped }

// Chart is a finished run's pace: rows per minute, by outcome, against the
// configured rate limit. The server draws it as SVG (RunChart).
type Chart struct {
	Minutes []RunMinute
	// Limit is ZENDESK_RATE_LIMIT in calls per minute; each row makes at
	// least one call, so it bounds the rows per minute. 0: unknown.
	Limit int
}

// The chart's drawing area, in SVG user units.
const (
	chartW, chartH          = 480.0, 200.0
	chartLeft, chartRight   = 40.0, 8.0
	chartTop, chartBottom   = 14.0, 30.0
	chartPlotW, chartPlotH  = chartW - chartLeft - chartRight, chartH - chartTop - chartBottom
	chartMaxBars            = 60
	chartMinBar             = 2.0
	chartDone, chartFailed  = "#2f8a4f", "#c93a3a"
	chartSkipped, chartAxis = "#8a94a6", "#5b6576"
)

// chartBar is one drawn bar: a stretch of minutes, stacked by outcome.
type chartBar struct {
	X, W                  float64
	Done, Failed, Skipped chartRect
}

// chartRect is one stacked piece of a bar.
type chartRect struct{ Y, H float64 }

func (r chartRect) y() string { return num(r.Y) }
func (r chartRect) h() string { return num(r.H) }

// num writes an SVG coordinate with one decimal.
func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// span is the whole minutes from the first to the last minute, inclusive.
func (c Chart) span() int {
	if len(c.Minutes) == 0 {
		return 0
	}
	return int(c.Minutes[len(c.Minutes)-1].Start.Sub(c.Minutes[0].Start)/time.Minute) + 1
}

// step is how many minutes one bar covers, so at most chartMaxBars bars.
func (c Chart) step() int { return max(1, (c.span()+chartMaxBars-1)/chartMaxBars) }

// perMinute are the bars' values: each bar's rows per minute by outcome
// (the average over its minutes when a bar covers several).
func (c Chart) perMinute() []RunMinute {
	step := c.step()
	n := (c.span() + step - 1) / step
	out := make([]RunMinute, n)
	for i := range out {
		out[i].Start = c.Minutes[0].Start.Add(time.Duration(i*step) * time.Minute)
	}
	for _, m := range c.Minutes {
		i := int(m.Start.Sub(c.Minutes[0].Start)/time.Minute) / step
		out[i].Done += m.Done
		out[i].Failed += m.Failed
		out[i].Skipped += m.Skipped
	}
	if step > 1 {
		for i := range out {
			out[i].Done, out[i].Failed, out[i].Skipped = out[i].Done/step, out[i].Failed/step, out[i].Skipped/step
		}
	}
	return out
}

// top is the value at the top of the plot: the limit or the busiest bar,
// whichever is higher, with a little room.
func (c Chart) top(bars []RunMinute) float64 {
	top := float64(c.Limit)
	for _, b := range bars {
		top = max(top, float64(b.Total()))
	}
	return max(top*1.1, 1)
}

func (c Chart) yOf(v, top float64) float64 { return chartTop + chartPlotH - v/top*chartPlotH }

// bars lays the bars out.
func (c Chart) bars() []chartBar {
	per := c.perMinute()
	top := c.top(per)
	slot := chartPlotW / float64(len(per))
	w := min(max(slot*0.8, 1), 40)
	var out []chartBar
	for i, m := range per {
		b := chartBar{X: chartLeft + float64(i)*slot + (slot-w)/2, W: w}
		y := chartTop + chartPlotH
		stack := func(n int) chartRect {
			h := float64(n) / top * chartPlotH
			if n > 0 {
				// A few rows under a high limit still show.
				h = max(h, chartMinBar)
			}
			y -= h
			return chartRect{Y: y, H: h}
		}
		b.Done, b.Failed, b.Skipped = stack(m.Done), stack(m.Failed), stack(m.Skipped)
		out = append(out, b)
	}
	return out
}

// limitY is where the limit's line is drawn.
func (c Chart) limitY() string { return num(c.yOf(float64(c.Limit), c.top(c.perMinute()))) }

// topLabel is the value written at the top of the y axis.
func (c Chart) topLabel() string { return strconv.Itoa(int(c.top(c.perMinute()))) }

// totals are the run's rows by outcome over the whole chart.
func (c Chart) totals() RunMinute {
	var t RunMinute
	for _, m := range c.Minutes {
		t.Done += m.Done
		t.Failed += m.Failed
		t.Skipped += m.Skipped
	}
	return t
}

// busiest is the most rows that ended in one minute.
func (c Chart) busiest() int {
	b := 0
	for _, m := range c.Minutes {
		b = max(b, m.Total())
	}
	return b
}

// describe says in words what the chart shows: its text equivalent.
func (c Chart) describe() string {
	t := c.totals()
	first, last := c.Minutes[0].Start, c.Minutes[len(c.Minutes)-1].Start
	s := fmt.Sprintf("From %s to %s UTC: %s done, %s failed, %s skipped; at most %s %s in one minute",
		first.UTC().Format("15:04"), last.Add(time.Minute).UTC().Format("15:04"), Thousands(t.Done), Thousands(t.Failed),
		Thousands(t.Skipped), Thousands(c.busiest()), map[bool]string{true: "row", false: "rows"}[c.busiest() == 1])
	if c.Limit > 0 {
		s += fmt.Sprintf(", against a limit of %s calls a minute", Thousands(c.Limit))
	}
	if c.step() > 1 {
		s += fmt.Sprintf(". Each bar is %d minutes, drawn as rows per minute", c.step())
	}
	return s + "."
}

// axisLabels are the times under the x axis: the first and the last.
func (c Chart) axisLabels() (string, string) {
	last := c.Minutes[0].Start.Add(time.Duration(c.span()) * time.Minute)
	return c.Minutes[0].Start.UTC().Format("15:04"), last.UTC().Format("15:04")
}
