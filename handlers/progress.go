package handlers

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// progressHub fans a run's live progress out to everyone watching it. The
// first viewer of a run starts one reader, which reads the run from the
// database once per tick and encodes the event once; every viewer of that
// run writes the same bytes. Before it, each viewer polled the database on
// its own, so the cost of a run page grew with its audience: 30 viewers of
// one large run kept both cores busy.
//
// A viewer that falls behind (a slow connection) is never waited for: a
// feed keeps only its latest frame, and a viewer that comes back for more
// gets that one, skipping what it missed. Progress is a snapshot, so nothing
// is lost by skipping. A reader stops when its last viewer leaves, after it
// has published a finished run's final event, when a read fails, or when
// the hub closes; none outlives close.
//
// Feeds are keyed by run id alone, and a viewer reaches only the feed of the
// run loadRun authorized for its request, so no viewer receives another
// run's events.
type progressHub struct {
	// read returns run runID's progress as one encoded Server-Sent Event,
	// and whether it is the run's last (the run finished).
	read  func(ctx context.Context, runID int64) (frame []byte, last bool, err error)
	every time.Duration
	log   *slog.Logger

	mu     sync.Mutex
	feeds  map[int64]*progressFeed
	closed bool

	readers sync.WaitGroup
	stats   progressStats
}

// progressStats counts a hub's work; tests and benchmarks read it.
type progressStats struct {
	started atomic.Int64 // readers ever started
	running atomic.Int64 // readers not yet stopped
	reads   atomic.Int64 // calls of read
}

// progressFeed is one run's reader and the viewers it serves.
type progressFeed struct {
	runID  int64
	cancel context.CancelFunc
	// viewers is guarded by progressHub.mu.
	viewers int
	// latest is the newest frame. Only the reader replaces it, and it
	// never blocks doing so.
	latest atomic.Pointer[progressFrame]
}

// progressFrame is one state of a feed, shared read-only by its viewers.
type progressFrame struct {
	// data is the encoded event; nil for the frame that ends a feed
	// without one (a failed read, the last viewer gone, the hub closed).
	data []byte
	seq  uint64
	// last means nothing follows: the viewer's stream ends after it.
	last bool
	// newer is closed when a newer frame replaces this one, waking every
	// viewer waiting for it at once.
	newer chan struct{}
}

// newProgressHub returns a hub whose readers call read once every every.
func newProgressHub(read func(ctx context.Context, runID int64) ([]byte, bool, error), every time.Duration, log *slog.Logger) *progressHub {
	return &progressHub{read: read, every: every, log: log, feeds: map[int64]*progressFeed{}}
}

// progressViewer is one viewer's place in a feed.
type progressViewer struct {
	hub  *progressHub
	feed *progressFeed
	seen uint64
}

// subscribe adds a viewer of run runID, starting the run's reader if it is
// the first. It returns false once the hub is closed. The viewer must leave.
func (h *progressHub) subscribe(runID int64) (*progressViewer, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	f := h.feeds[runID]
	if f == nil {
		// The reader's context is the hub's, not the first viewer's
		// request: it serves every viewer, and stops when the last leaves.
		ctx, cancel := context.WithCancel(context.Background())
		f = &progressFeed{runID: runID, cancel: cancel}
		f.latest.Store(&progressFrame{newer: make(chan struct{})})
		h.feeds[runID] = f
		h.readers.Add(1)
		h.stats.started.Add(1)
		h.stats.running.Add(1)
		go h.runReader(ctx, f)
	}
	f.viewers++
	return &progressViewer{hub: h, feed: f}, true
}

// next waits for a frame newer than the one it last returned. It returns
// false when ctx ends, or after the feed's last frame was returned.
func (v *progressViewer) next(ctx context.Context) (*progressFrame, bool) {
	for {
		fr := v.feed.latest.Load()
		if fr.seq > v.seen {
			v.seen = fr.seq
			return fr, true
		}
		if fr.last {
			return nil, false
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-fr.newer:
		}
	}
}

// leave removes the viewer; the last to leave stops the reader.
func (v *progressViewer) leave() {
	h, f := v.hub, v.feed
	h.mu.Lock()
	defer h.mu.Unlock()
	f.viewers--
	if f.viewers == 0 {
		if h.feeds[f.runID] == f {
			delete(h.feeds, f.runID)
		}
		f.cancel()
	}
}

// runReader reads f's run once per tick and publishes each frame until the
// run finishes, a read fails, or ctx ends. Whatever stops it, it publishes a
// last frame first, so no viewer waits for a reader that is gone.
func (h *progressHub) runReader(ctx context.Context, f *progressFeed) {
	defer h.readers.Done()
	defer h.stats.running.Add(-1)
	defer h.drop(f)
	tick := time.NewTicker(h.every)
	defer tick.Stop()
	for {
		data, last, err := h.read(ctx, f.runID)
		h.stats.reads.Add(1)
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("read run progress", "run", f.runID, "err", err)
			}
			f.publish(nil, true)
			return
		}
		f.publish(data, last)
		if last {
			return
		}
		select {
		case <-ctx.Done():
			f.publish(nil, true)
			return
		case <-tick.C:
		}
	}
}

// drop forgets f once its reader has stopped, so that the run's next
// viewer starts a fresh reader. A feed its last viewer already left may
// have been replaced meanwhile; the replacement stays.
func (h *progressHub) drop(f *progressFeed) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.feeds[f.runID] == f {
		delete(h.feeds, f.runID)
	}
}

// publish replaces the latest frame and wakes the viewers waiting for it.
// Only f's reader calls it.
func (f *progressFeed) publish(data []byte, last bool) {
	old := f.latest.Load()
	f.latest.Store(&progressFrame{data: data, seq: old.seq + 1, last: last, newer: make(chan struct{})})
	close(old.newer)
}

// close stops every reader and waits for them; their viewers' streams end
// (with no further event: the browser reconnects, to this process or the
// next). A viewer arriving later is turned away. Safe to call twice.
func (h *progressHub) close() {
	h.mu.Lock()
	h.closed = true
	for id, f := range h.feeds {
		f.cancel()
		delete(h.feeds, id)
	}
	h.mu.Unlock()
	h.readers.Wait()
}
