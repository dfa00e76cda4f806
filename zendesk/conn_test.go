package zendesk_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/onbehalf/onbehalf/zendesk"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// spacedWrites sends n comments as Bea, each after a pause of gap (about
// the server's idle timeout: a pooled connection is then picked just as
// the server closes it), and returns the failed calls' errors.
func spacedWrites(t *testing.T, c *zendesk.Client, n int, gap time.Duration, prefix string) []error {
	t.Helper()
	bea := c.As(sandbox.DemoBeaEmail)
	var errs []error
	for i := range n {
		time.Sleep(gap)
		_, err := bea.UpdateRequest(t.Context(), sandbox.TicketBeaOpen, zendesk.RequestUpdate{Comment: fmt.Sprintf("%s %d", prefix, i)})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// TestIdleKeepAliveWrites reproduces writes failing against a server that
// closes idle keep-alive connections (sandbox IdleTimeout): Go's transport
// reuses a pooled connection just as the server closes it, and does not
// retry a PUT or POST. A client whose idle timeout is below the server's
// never reuses such a connection.
func TestIdleKeepAliveWrites(t *testing.T) {
	t.Parallel()
	const (
		serverIdle = 100 * time.Millisecond
		writes     = 40
	)
	tests := []struct {
		name       string
		clientIdle time.Duration
		mustPass   bool
	}{
		// Go's own default (90 s) is far above the server's timeout: the
		// failures this shows are logged, not asserted, as they depend on
		// timing.
		{"client idle above the server's", 90 * time.Second, false},
		{"client idle below the server's", serverIdle / 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestSandbox(t, sandbox.Options{IdleTimeout: serverIdle})
			c := newSandboxClient(t, srv, sandbox.DemoAdminEmail, fullScope, zendesk.WithIdleConnTimeout(tt.clientIdle))
			prefix := strings.ReplaceAll(tt.name, " ", "-")
			errs := spacedWrites(t, c, writes, serverIdle, prefix)
			t.Logf("%d of %d writes failed", len(errs), writes)
			for _, err := range errs {
				ze := mustZendeskError(t, err)
				// A write that had not gone out yet is sent again; one
				// that went out on a connection the server was closing
				// has an unknown outcome, and the error says so.
				if ze.Kind != zendesk.ErrNetwork || ze.NotSent {
					t.Errorf("failed write: %v (NotSent %v), want ErrNetwork with NotSent false", err, ze.NotSent)
				}
				if !strings.Contains(err.Error(), "sent, no answer, on a keep-alive connection reused after") {
					t.Errorf("failed write: %q does not say it went out on a reused connection", err)
				}
			}
			if tt.mustPass && len(errs) > 0 {
				t.Errorf("%d of %d writes failed with the client's idle timeout below the server's; first: %v", len(errs), writes, errs[0])
			}
			// Nothing was sent twice.
			seen := map[string]int{}
			for _, w := range srv.Writes() {
				seen[w.Body]++
				if seen[w.Body] > 1 {
					t.Errorf("write %s recorded twice", w.Body)
				}
			}
			if len(seen)+len(errs) != writes {
				t.Errorf("%d writes recorded and %d failed, want %d in all", len(seen), len(errs), writes)
			}
		})
	}
}

// newConnCountingServer serves h and counts the connections clients open.
func newConnCountingServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestDefaultTransportClosesIdleConnections(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts []zendesk.Option
	}{
		{"no HTTP client", nil},
		{"HTTP client without transport", []zendesk.Option{zendesk.WithHTTPClient(&http.Client{Timeout: time.Minute})}},
		{"HTTP client on the default transport", []zendesk.Option{zendesk.WithHTTPClient(&http.Client{Transport: http.DefaultTransport})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, conns := newConnCountingServer(t, echoHandler())
			c := mustNew(t, srv.URL, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: testToken}), tt.opts...)
			for range 2 {
				if _, err := c.Me(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Fatalf("%d connections for two calls in a row, want 1 (kept alive)", n)
			}
			time.Sleep(zendesk.DefaultIdleConnTimeout + 500*time.Millisecond)
			if _, err := c.Me(t.Context()); err != nil {
				t.Fatal(err)
			}
			if n := conns.Load(); n != 2 {
				t.Errorf("%d connections, want 2: a connection idle beyond DefaultIdleConnTimeout must not be reused", n)
			}
		})
	}
}

func TestNetworkErrorSaysWhetherSent(t *testing.T) {
	t.Parallel()
	closed := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr
	}
	dropping := func(t *testing.T) string {
		srv := httptest.NewServer(dropHandler(t))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name        string
		base        func(*testing.T) string
		ctx         context.Context
		ts          oauth2.TokenSource
		wantKind    zendesk.Kind
		wantNotSent bool
		wantText    string
	}{
		{name: "connection refused", base: closed, wantKind: zendesk.ErrNetwork, wantNotSent: true, wantText: "(not sent)"},
		{name: "context ended first", base: dropping, ctx: cancelled, wantKind: zendesk.ErrNetwork, wantNotSent: true, wantText: "(not sent)"},
		{name: "token source failed", base: dropping, ts: failingTokenSource{errors.New("store closed")}, wantKind: zendesk.ErrUnexpected, wantNotSent: true, wantText: "store closed"},
		{name: "dropped after the request", base: dropping, wantKind: zendesk.ErrNetwork, wantNotSent: false, wantText: "(sent, no answer, on a new connection)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := tt.ts
			if ts == nil {
				ts = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: testToken})
			}
			ctx := tt.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			c := mustNew(t, tt.base(t), ts).As(sandbox.DemoBeaEmail)
			_, err := c.CreateRequest(ctx, zendesk.NewRequest{Subject: "s", Body: "b"})
			ze := mustZendeskError(t, err)
			if ze.Kind != tt.wantKind || ze.NotSent != tt.wantNotSent {
				t.Errorf("err = %v: kind %v NotSent %v, want %v NotSent %v", err, ze.Kind, ze.NotSent, tt.wantKind, tt.wantNotSent)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("Error() = %q, want it to contain %q", err, tt.wantText)
			}
		})
	}
}

// idleDropTransport passes requests to base, except that the first one
// fails as a server closing an idle keep-alive connection makes it fail:
// on a reused connection that ends before any answer, after the request
// was written, or before when unwritten is set. It counts the requests it
// sees.
type idleDropTransport struct {
	base      http.RoundTripper
	unwritten bool
	mu        sync.Mutex
	calls     int
}

func (d *idleDropTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	d.mu.Lock()
	d.calls++
	first := d.calls == 1
	d.mu.Unlock()
	if !first {
		return d.base.RoundTrip(req)
	}
	if tr := httptrace.ContextClientTrace(req.Context()); tr != nil {
		tr.GetConn(req.URL.Host)
		tr.GotConn(httptrace.GotConnInfo{Reused: true, WasIdle: true, IdleTime: 5 * time.Second})
		if d.unwritten {
			tr.WroteRequest(httptrace.WroteRequestInfo{Err: net.ErrClosed})
		} else {
			tr.WroteRequest(httptrace.WroteRequestInfo{})
		}
	}
	return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
}

func (d *idleDropTransport) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

func TestDroppedIdleConnection(t *testing.T) {
	t.Parallel()
	newClient := func(t *testing.T, unwritten bool) (*sandbox.Server, *zendesk.Client, *idleDropTransport) {
		srv := newTestSandbox(t, sandbox.Options{})
		tr := &idleDropTransport{base: zendesk.NewTransport(0), unwritten: unwritten}
		c := newSandboxClient(t, srv, sandbox.DemoAdminEmail, fullScope, zendesk.WithHTTPClient(&http.Client{Transport: tr}))
		return srv, c.As(sandbox.DemoBeaEmail), tr
	}
	t.Run("read is sent again once", func(t *testing.T) {
		t.Parallel()
		_, c, tr := newClient(t, false)
		if _, err := c.ShowRequest(t.Context(), sandbox.TicketBeaOpen); err != nil {
			t.Errorf("read after a dropped idle connection: %v, want it sent again", err)
		}
		if n := tr.count(); n != 2 {
			t.Errorf("read sent %d times, want 2", n)
		}
	})
	t.Run("write not gone out is sent again once", func(t *testing.T) {
		t.Parallel()
		srv, c, tr := newClient(t, true)
		if _, err := c.UpdateRequest(t.Context(), sandbox.TicketBeaOpen, zendesk.RequestUpdate{Comment: "once"}); err != nil {
			t.Errorf("write that never went out: %v, want it sent again", err)
		}
		if n := tr.count(); n != 2 {
			t.Errorf("write tried %d times, want 2", n)
		}
		if n := len(srv.Writes()); n != 1 {
			t.Errorf("%d writes recorded, want 1", n)
		}
	})
	t.Run("write gone out is not sent again", func(t *testing.T) {
		t.Parallel()
		srv, c, tr := newClient(t, false)
		_, err := c.UpdateRequest(t.Context(), sandbox.TicketBeaOpen, zendesk.RequestUpdate{Comment: "once"})
		ze := mustZendeskError(t, err)
		if ze.Kind != zendesk.ErrNetwork || ze.NotSent {
			t.Errorf("err = %v (NotSent %v), want ErrNetwork, NotSent false: Zendesk may have acted", err, ze.NotSent)
		}
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("err = %v, want the transport's error reachable", err)
		}
		if !strings.Contains(err.Error(), "sent, no answer, on a keep-alive connection reused after 5s idle") {
			t.Errorf("Error() = %q, want it to say how the request was lost", err)
		}
		if n := tr.count(); n != 1 {
			t.Errorf("write sent %d times, want 1", n)
		}
		if n := len(srv.Writes()); n != 0 {
			t.Errorf("%d writes recorded, want 0", n)
		}
	})
}
