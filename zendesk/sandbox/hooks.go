package sandbox

import (
	"bytes"
	"context"
	"net/http"
	"sync"
)

// Hooks let a test step into API calls at the two moments where the bad
// interleavings happen: when a call arrives (before the rate limit,
// authentication and faults, so a held call is judged on what is true when
// it is let go) and after a write was applied but before its answer leaves.
// They are test instruments; Zendesk has nothing like them.
type Hooks struct {
	// BeforeCall runs for every /api/v2 call as it arrives, once its body
	// has been read (r.Body reads it again). It may block to hold the call
	// (see Gate). A call whose client gives up while it is held goes no
	// further: it is not counted and never reaches its handler.
	BeforeCall func(r *http.Request)
	// AfterWrite runs for every write that reached its handler, after the
	// sandbox applied and recorded it and before the answer is sent. It
	// may block to hold the answer. Returning true closes the connection
	// instead of answering: the write stays applied, and the client never
	// learns its outcome.
	AfterWrite func(w Write) (drop bool)
}

// SetHooks replaces the hooks; the zero Hooks removes them.
func (s *Sandbox) SetHooks(h Hooks) {
	s.mu.Lock()
	s.hooks = h
	s.mu.Unlock()
}

func (s *Sandbox) currentHooks() Hooks {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hooks
}

// Gate holds the calls it matches until Release: a test makes a call wait
// on purpose (a write waiting while a cancel, a refresh or a 429 happens)
// instead of hoping a scheduler produces the interleaving. Its BeforeCall
// and AfterWrite methods fit Hooks.
type Gate struct {
	match func(*http.Request) bool

	mu       sync.Mutex
	held     int
	total    int
	changed  chan struct{} // closed and replaced whenever held or total changes
	released chan struct{}
	once     sync.Once
}

// NewGate returns a Gate holding every call for which match is true (nil
// matches every call).
func NewGate(match func(*http.Request) bool) *Gate {
	return &Gate{match: match, changed: make(chan struct{}), released: make(chan struct{})}
}

// BeforeCall holds r if it matches, until Release or until r's context ends.
func (g *Gate) BeforeCall(r *http.Request) {
	if g.match != nil && !g.match(r) {
		return
	}
	g.hold(r.Context())
}

// AfterWrite holds every write's answer (match is not consulted: it needs a
// request), until Release, even after the client has gone: a test that
// uses it releases the gate in t.Cleanup, or a handler stays blocked. It
// never drops the connection.
func (g *Gate) AfterWrite(Write) bool {
	g.hold(context.Background())
	return false
}

func (g *Gate) hold(ctx context.Context) {
	select {
	case <-g.released:
		g.note(0, 1)
		return
	default:
	}
	g.note(1, 1)
	defer g.note(-1, 0)
	select {
	case <-g.released:
	case <-ctx.Done():
	}
}

func (g *Gate) note(held, total int) {
	g.mu.Lock()
	g.held += held
	g.total += total
	close(g.changed)
	g.changed = make(chan struct{})
	g.mu.Unlock()
}

// Held is the number of calls held right now.
func (g *Gate) Held() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held
}

// Seen is the number of matching calls that arrived so far, held or not.
func (g *Gate) Seen() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

// WaitHeld blocks until at least n calls are held at once, or ctx ends.
func (g *Gate) WaitHeld(ctx context.Context, n int) error {
	for {
		g.mu.Lock()
		held, ch := g.held, g.changed
		g.mu.Unlock()
		if held >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Release lets every held call go on, and every later one pass at once.
func (g *Gate) Release() { g.once.Do(func() { close(g.released) }) }

// bufferedWriter keeps a write's answer until AfterWrite has decided what
// becomes of it.
type bufferedWriter struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func newBufferedWriter() *bufferedWriter {
	return &bufferedWriter{header: http.Header{}, status: http.StatusOK}
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(code int) {
	if !b.wrote {
		b.status, b.wrote = code, true
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}

// flush sends the kept answer on w.
func (b *bufferedWriter) flush(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2, a recorder): abort the response, which
		// the server turns into a reset connection.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
