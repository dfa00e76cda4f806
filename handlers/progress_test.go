package handlers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// fakeProgress stands in for the database behind a hub: each read of a run
// returns "run <id> read <n>", and the lastAt-th read of a run says the run
// finished. It counts reads per run.
type fakeProgress struct {
	lastAt int // 0: never
	mu     sync.Mutex
	reads  map[int64]int
}

func (p *fakeProgress) read(_ context.Context, runID int64) ([]byte, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reads == nil {
		p.reads = map[int64]int{}
	}
	p.reads[runID]++
	n := p.reads[runID]
	return fmt.Appendf(nil, "run %d read %d", runID, n), p.lastAt > 0 && n >= p.lastAt, nil
}

func (p *fakeProgress) readsOf(runID int64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reads[runID]
}

// newTestHub is a hub that ticks every `every`, closed when the test ends;
// the test fails if any of its readers outlives close.
func newTestHub(t *testing.T, every time.Duration, read func(context.Context, int64) ([]byte, bool, error)) *progressHub {
	t.Helper()
	h := newProgressHub(read, every, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { closeHub(t, h) })
	return h
}

// closeHub closes h, failing the test if close still waits for its readers
// after 10 s.
func closeHub(t *testing.T, h *progressHub) {
	t.Helper()
	closed := make(chan struct{})
	go func() {
		h.close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Errorf("the hub's close still waits after 10s for %d readers", h.stats.running.Load())
	}
}

func mustSubscribe(t *testing.T, h *progressHub, runID int64) *progressViewer {
	t.Helper()
	v, ok := h.subscribe(runID)
	if !ok {
		t.Fatalf("subscribe to run %d: the hub is closed", runID)
	}
	return v
}

// mustNext returns the viewer's next frame, failing the test if none comes
// within 10 s.
func mustNext(t *testing.T, v *progressViewer) *progressFrame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fr, ok := v.next(ctx)
	if !ok {
		t.Fatalf("no frame for run %d within 10s", v.feed.runID)
	}
	return fr
}

// waitReadersStopped waits until none of h's readers runs.
func waitReadersStopped(t *testing.T, h *progressHub) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.stats.running.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d progress readers still running 10s after their viewers left", h.stats.running.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestProgressHubOneReadPerTickForAllViewers(t *testing.T) {
	t.Parallel()
	const viewers, frames = 50, 5
	every := 10 * time.Millisecond
	p := &fakeProgress{}
	h := newTestHub(t, every, p.read)

	start := time.Now()
	got := make([][]*progressFrame, viewers)
	vs := make([]*progressViewer, viewers)
	for i := range vs {
		vs[i] = mustSubscribe(t, h, 7)
	}
	var wg sync.WaitGroup
	for i, v := range vs {
		wg.Go(func() {
			defer v.leave()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for len(got[i]) < frames {
				fr, ok := v.next(ctx)
				if !ok {
					t.Errorf("viewer %d: no frame after %d", i, len(got[i]))
					return
				}
				got[i] = append(got[i], fr)
			}
		})
	}
	wg.Wait()
	waitReadersStopped(t, h)
	elapsed := time.Since(start)

	// One reader serves everyone: at most one read at the start and one a
	// tick. Polling per viewer would have read 50 times at once.
	reads := p.readsOf(7)
	if limit := int(elapsed/every) + 2; reads > limit {
		t.Errorf("%d viewers caused %d reads in %v; want at most one a tick (%d)", viewers, reads, elapsed, limit)
	}
	if n := h.stats.started.Load(); n != 1 {
		t.Errorf("%d readers started for one run; want 1", n)
	}
	// Every viewer writes the bytes the reader encoded once, in order.
	bySeq := map[uint64]*progressFrame{}
viewers:
	for i, frs := range got {
		for j, fr := range frs {
			switch first, ok := bySeq[fr.seq]; {
			case j > 0 && fr.seq <= frs[j-1].seq:
				t.Errorf("viewer %d got frame %d after frame %d", i, fr.seq, frs[j-1].seq)
			case string(fr.data) != fmt.Sprintf("run 7 read %d", fr.seq):
				t.Errorf("viewer %d frame %d is %q; want run 7 read %d", i, fr.seq, fr.data, fr.seq)
			case ok && &first.data[0] != &fr.data[0]:
				t.Errorf("viewer %d got its own copy of frame %d; want the bytes encoded once", i, fr.seq)
			default:
				bySeq[fr.seq] = fr
				continue
			}
			break viewers
		}
	}
}

func TestProgressHubSlowViewerDoesNotHoldUpOthers(t *testing.T) {
	t.Parallel()
	const fast, frames = 5, 10
	p := &fakeProgress{}
	h := newTestHub(t, 5*time.Millisecond, p.read)

	// The slow viewer takes one frame, then stops reading (as a viewer on
	// a stalled connection does, stuck writing it).
	slow := mustSubscribe(t, h, 7)
	defer slow.leave()
	first := mustNext(t, slow)

	var wg sync.WaitGroup
	for i := range fast {
		v := mustSubscribe(t, h, 7)
		wg.Go(func() {
			defer v.leave()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var last uint64
			for n := range frames {
				fr, ok := v.next(ctx)
				if !ok {
					t.Errorf("fast viewer %d got %d frames in 10s while another viewer stalled; want %d", i, n, frames)
					return
				}
				last = fr.seq
			}
			if last < first.seq+frames-1 {
				t.Errorf("fast viewer %d ended at frame %d; want at least %d", i, last, first.seq+frames-1)
			}
		})
	}
	wg.Wait()

	// Back at last, the slow viewer skips what it missed: it gets the
	// newest frame, not the one after the frame it had.
	if fr := mustNext(t, slow); fr.seq < first.seq+frames-1 {
		t.Errorf("the slow viewer, back after frame %d, got frame %d; want the newest (at least %d)", first.seq, fr.seq, first.seq+frames-1)
	}
}

func TestProgressHubReaderStops(t *testing.T) {
	t.Parallel()

	t.Run("last viewer leaves", func(t *testing.T) {
		t.Parallel()
		p := &fakeProgress{}
		h := newTestHub(t, 5*time.Millisecond, p.read)
		var vs []*progressViewer
		for range 3 {
			v := mustSubscribe(t, h, 7)
			mustNext(t, v)
			vs = append(vs, v)
		}
		for _, v := range vs[:2] {
			v.leave()
		}
		// One viewer still watches: the reader goes on.
		n := p.readsOf(7)
		mustNext(t, vs[2])
		mustNext(t, vs[2])
		if p.readsOf(7) <= n {
			t.Fatal("the reader stopped while a viewer was still watching")
		}
		vs[2].leave()
		waitReadersStopped(t, h)
		n = p.readsOf(7)
		time.Sleep(50 * time.Millisecond)
		if m := p.readsOf(7); m != n {
			t.Errorf("%d reads after the last viewer left; want none", m-n)
		}
	})

	t.Run("last viewer leaves during a read", func(t *testing.T) {
		t.Parallel()
		// A read that waits (a slow database) is cancelled.
		reading := make(chan struct{}, 1)
		h := newTestHub(t, time.Millisecond, func(ctx context.Context, runID int64) ([]byte, bool, error) {
			reading <- struct{}{}
			<-ctx.Done()
			return nil, false, ctx.Err()
		})
		v := mustSubscribe(t, h, 7)
		<-reading
		v.leave()
		waitReadersStopped(t, h)
	})

	t.Run("final event", func(t *testing.T) {
		t.Parallel()
		p := &fakeProgress{lastAt: 3}
		h := newTestHub(t, 5*time.Millisecond, p.read)
		v := mustSubscribe(t, h, 7)
		defer v.leave()
		var frs []*progressFrame
		for {
			fr := mustNext(t, v)
			frs = append(frs, fr)
			if fr.last {
				break
			}
		}
		// The final event is published before the reader stops, and
		// the reader stops though its viewer has not left yet.
		if last := frs[len(frs)-1]; string(last.data) != "run 7 read 3" {
			t.Errorf("the last frame is %q; want the final event, run 7 read 3", last.data)
		}
		waitReadersStopped(t, h)
		if n := p.readsOf(7); n != 3 {
			t.Errorf("%d reads; want 3, none after the final event", n)
		}
		if fr, ok := v.next(context.Background()); ok {
			t.Errorf("a frame (%q) after the final event", fr.data)
		}
		// Someone opening the finished run later gets a reader of its
		// own, which reads once and stops.
		late := mustSubscribe(t, h, 7)
		defer late.leave()
		if fr := mustNext(t, late); !fr.last || string(fr.data) != "run 7 read 4" {
			t.Errorf("a late viewer of a finished run got %q (last %v); want a fresh final read", fr.data, fr.last)
		}
		waitReadersStopped(t, h)
	})

	t.Run("read fails", func(t *testing.T) {
		t.Parallel()
		h := newTestHub(t, 5*time.Millisecond, func(context.Context, int64) ([]byte, bool, error) {
			return nil, false, errors.New("database gone")
		})
		v := mustSubscribe(t, h, 7)
		defer v.leave()
		if fr := mustNext(t, v); !fr.last || fr.data != nil {
			t.Errorf("after a failed read the viewer got %q (last %v); want the stream to end with no event", fr.data, fr.last)
		}
		waitReadersStopped(t, h)
	})

	t.Run("hub closes", func(t *testing.T) {
		t.Parallel()
		p := &fakeProgress{}
		h := newTestHub(t, 5*time.Millisecond, p.read)
		var vs []*progressViewer
		for run := range int64(3) {
			v := mustSubscribe(t, h, run)
			mustNext(t, v)
			vs = append(vs, v)
		}
		closeHub(t, h)
		if n := h.stats.running.Load(); n != 0 {
			t.Errorf("%d readers running after close returned", n)
		}
		// Each viewer skips to its feed's newest frame, the last.
		for _, v := range vs {
			if fr := mustNext(t, v); !fr.last || fr.data != nil {
				t.Errorf("after close a viewer of run %d got %q (last %v); want its stream to end with no event", v.feed.runID, fr.data, fr.last)
			}
			v.leave()
		}
		if _, ok := h.subscribe(1); ok {
			t.Error("a closed hub took a new viewer")
		}
	})
}

func TestProgressHubKeepsRunsApart(t *testing.T) {
	t.Parallel()
	p := &fakeProgress{}
	h := newTestHub(t, 5*time.Millisecond, p.read)
	type viewerOf struct {
		run int64
		v   *progressViewer
	}
	var vs []viewerOf
	for run := range int64(4) {
		for range 3 {
			vs = append(vs, viewerOf{run, mustSubscribe(t, h, run)})
		}
	}
	var wg sync.WaitGroup
	var frames atomic.Int64
	for _, w := range vs {
		wg.Go(func() {
			defer w.v.leave()
			prefix := []byte("run " + strconv.FormatInt(w.run, 10) + " ")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for range 5 {
				fr, ok := w.v.next(ctx)
				if !ok {
					t.Errorf("a viewer of run %d got no frame in 10s", w.run)
					return
				}
				if !bytes.HasPrefix(fr.data, prefix) {
					t.Errorf("a viewer of run %d got %q", w.run, fr.data)
				}
				frames.Add(1)
			}
		})
	}
	wg.Wait()
	if n := h.stats.started.Load(); n != 4 {
		t.Errorf("%d readers for 4 runs; want one each", n)
	}
	if frames.Load() != 4*3*5 {
		t.Errorf("%d frames; want %d", frames.Load(), 4*3*5)
	}
}

// sseStream reads a run's event stream the way a browser's EventSource does.
type sseStream struct{ br *bufio.Reader }

// sseEvent is one Server-Sent Event.
type sseEvent struct{ Name, Data string }

// openEvents opens the event stream at path; it is closed when the test ends.
func (s *signedIn) openEvents(t *testing.T, path string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.app.URL+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	res, err := s.c.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancel()
		res.Body.Close()
	})
	if ct := res.Header.Get("Content-Type"); res.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("GET %s: status %d, content type %q; want 200 text/event-stream", path, res.StatusCode, ct)
	}
	return &sseStream{br: bufio.NewReader(res.Body)}
}

// next reads the next event; io.EOF when the server ended the stream. Any
// line other than an event name, its data, or the blank line ending the
// event is an error: the page's script expects exactly these.
func (s *sseStream) next() (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			if line != "" || ev != (sseEvent{}) {
				return ev, fmt.Errorf("the stream ended inside an event: %q", line)
			}
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && ev != (sseEvent{}):
			return ev, nil
		case strings.HasPrefix(line, "event: ") && ev.Name == "":
			ev.Name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && ev.Data == "":
			ev.Data = strings.TrimPrefix(line, "data: ")
		default:
			return ev, fmt.Errorf("unexpected line %q in the event stream", line)
		}
	}
}

// progress reads the next event as a progress event, checking that it
// carries the fields the page's script reads.
func (s *sseStream) progress() (progressEvent, error) {
	ev, err := s.next()
	if err != nil {
		return progressEvent{}, err
	}
	if ev.Name != "progress" {
		return progressEvent{}, fmt.Errorf("event %q, want progress", ev.Name)
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(ev.Data), &fields); err != nil {
		return progressEvent{}, fmt.Errorf("event data %q: %w", ev.Data, err)
	}
	for _, k := range []string{"cancellable", "cancelling", "done", "eta", "failed", "finished", "percent", "remaining", "skipped", "state", "waiting"} {
		if _, ok := fields[k]; !ok {
			return progressEvent{}, fmt.Errorf("event fields %v, want %s too", slices.Sorted(maps.Keys(fields)), k)
		}
	}
	var p progressEvent
	err = json.Unmarshal([]byte(ev.Data), &p)
	return p, err
}

func TestBulkProgressFanOutToViewers(t *testing.T) {
	t.Parallel()
	// A write may be held for as long as the test needs (a quarter of this).
	app := newTestApp(t, testAppOptions{RescueAfter: time.Minute})
	hub := app.Server.app.progress
	every := app.Server.app.progressEvery
	ada := loginAs(t, app, sandbox.DemoAdminEmail)
	ola := loginAs(t, app, sandbox.DemoAdmin2Email)
	// 30 ratings of one ticket go one after another; while Zendesk holds
	// the answer to the first, the run stays running.
	var b strings.Builder
	b.WriteString("email,ticket_id,score,comment\n")
	for i := range 30 {
		fmt.Fprintf(&b, "%s,%d,good,row %d\n", sandbox.DemoBeaEmail, sandbox.TicketBeaSolved, i)
	}
	id := runIDFrom(t, ada.upload("rate", "fan-out.csv", []byte(b.String())))
	events := fmt.Sprintf("/bulk/runs/%d/events", id)
	gate := sandbox.NewGate(nil)
	app.Sandbox.SetHooks(sandbox.Hooks{AfterWrite: gate.AfterWrite})
	t.Cleanup(gate.Release)
	if r := ada.act(fmt.Sprintf("/bulk/runs/%d/confirm", id), url.Values{"writes": {"30"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("confirm: status %d: %.400s", r.Status, r.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := gate.WaitHeld(ctx, 1); err != nil {
		t.Fatalf("no write reached Zendesk: %v", err)
	}

	// Four viewers (two tabs each of two admins) share one reader.
	const perStream = 4
	start := time.Now()
	var wg sync.WaitGroup
	for _, s := range []*signedIn{ada, ada, ola, ola} {
		st := s.openEvents(t, events)
		wg.Go(func() {
			for range perStream {
				p, err := st.progress()
				if err != nil {
					t.Errorf("a viewer of run %d: %v", id, err)
					return
				}
				if p.State != store.RunRunning || !p.Cancellable || p.Finished || p.Remaining == 0 {
					t.Errorf("a viewer of the running run got %+v", p)
				}
			}
		})
	}
	wg.Wait()
	reads := hub.stats.reads.Load()
	elapsed := time.Since(start)
	if limit := int64(elapsed/every) + 2; reads > limit {
		t.Errorf("4 viewers caused %d progress reads in %v; want at most one a tick (%d), not one a viewer", reads, elapsed, limit)
	}
	if n := hub.stats.started.Load(); n != 1 {
		t.Errorf("%d progress readers for one run; want 1", n)
	}

	// A viewer of another run gets that run's events only, alongside.
	other := runIDFrom(t, ola.upload("rate", "other.csv", []byte(ratingCSV())))
	mine := ada.openEvents(t, events)
	theirs := ola.openEvents(t, fmt.Sprintf("/bulk/runs/%d/events", other))
	for range 3 {
		if p, err := mine.progress(); err != nil || p.State != store.RunRunning {
			t.Errorf("a viewer of run %d got %+v (%v); want it running", id, p, err)
		}
		if p, err := theirs.progress(); err != nil || p.State != store.RunPreview || p.Remaining != 17 {
			t.Errorf("a viewer of run %d got %+v (%v); want it in preview with 17 rows", other, p, err)
		}
	}

	// When the run ends, every viewer gets the final event and the stream
	// ends; the readers stop.
	gate.Release()
	var finals atomic.Int64
	for _, s := range []*signedIn{ada, ola} {
		st := s.openEvents(t, events)
		wg.Go(func() {
			for {
				p, err := st.progress()
				if err != nil {
					t.Errorf("a viewer of run %d: %v", id, err)
					return
				}
				if p.Finished {
					if p.State != store.RunDone || p.Done != 30 || p.Remaining != 0 || p.Cancellable {
						t.Errorf("the final event is %+v; want the run done with 30 rows", p)
					}
					finals.Add(1)
					if _, err := st.next(); err != io.EOF {
						t.Errorf("after the final event: %v; want the stream to end", err)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	if finals.Load() != 2 {
		t.Errorf("%d viewers saw the run finish; want 2", finals.Load())
	}
	// The preview run's viewer is still connected; closing the app (as
	// the server's Shutdown does) ends its stream.
	app.Server.Close()
	var err error
	for err == nil {
		_, err = theirs.next() // the events sent before Close, then the end
	}
	if err != io.EOF {
		t.Errorf("the preview run's stream after Close: %v; want it ended", err)
	}
	if n := hub.stats.running.Load(); n != 0 {
		t.Errorf("%d progress readers running after Close", n)
	}
}
