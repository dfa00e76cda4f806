package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"
)

// answer is what a call made in the background got.
type answer struct {
	status int
	err    error
}

// send makes one API call on hc and returns its status, or the error when
// no answer came; it is safe to call from any goroutine.
func send(ctx context.Context, hc *http.Client, srv *Server, method, path, token string, body any, obo string) answer {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, rd)
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if obo != "" {
		req.Header.Set("X-On-Behalf-Of", obo)
	}
	res, err := hc.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return answer{status: res.StatusCode, err: err}
	}
	return answer{status: res.StatusCode}
}

// sendAsync is send in a goroutine; the answer arrives on the channel.
func sendAsync(ctx context.Context, hc *http.Client, srv *Server, method, path, token string, body any, obo string) <-chan answer {
	ch := make(chan answer, 1)
	go func() { ch <- send(ctx, hc, srv, method, path, token, body, obo) }()
	return ch
}

func newRequestBody(subject string) map[string]any {
	return map[string]any{"request": map[string]any{"subject": subject, "comment": map[string]any{"body": "Body of " + subject}}}
}

func isCreate(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.TrimSuffix(r.URL.Path, ".json") == "/api/v2/requests"
}

func mustWaitHeld(t *testing.T, g *Gate, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := g.WaitHeld(ctx, n); err != nil {
		t.Fatalf("WaitHeld(%d): %v (held %d, seen %d)", n, err, g.Held(), g.Seen())
	}
}

func mustAnswer(t *testing.T, ch <-chan answer) answer {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(5 * time.Second):
		t.Fatal("no answer within 5s")
		return answer{}
	}
}

func TestGateHoldsCallsUntilRelease(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
	g := NewGate(isCreate)
	t.Cleanup(g.Release)
	srv.SetHooks(Hooks{BeforeCall: g.BeforeCall})
	hc := &http.Client{}

	held := sendAsync(t.Context(), hc, srv, "POST", "/api/v2/requests.json", tok, newRequestBody("Held"), DemoBeaEmail)
	mustWaitHeld(t, g, 1)
	// A call the gate does not match goes through meanwhile.
	if a := send(t.Context(), hc, srv, "GET", "/api/v2/users/me", tok, nil, ""); a.err != nil || a.status != http.StatusOK {
		t.Fatalf("unmatched call while one is held: %+v", a)
	}
	select {
	case a := <-held:
		t.Fatalf("held call answered before Release: %+v", a)
	default:
	}
	if w := srv.Writes(); len(w) != 0 {
		t.Fatalf("held write reached its handler: %+v", w)
	}
	if n := srv.Stats().Calls["POST /api/v2/requests"]; n != 0 {
		t.Errorf("held call already counted %d times", n)
	}
	if g.Held() != 1 || g.Seen() != 1 {
		t.Errorf("Held, Seen = %d, %d; want 1, 1", g.Held(), g.Seen())
	}

	g.Release()
	if a := mustAnswer(t, held); a.err != nil || a.status != http.StatusCreated {
		t.Fatalf("released call: %+v", a)
	}
	w := srv.Writes()
	if len(w) != 1 || w[0].Status != http.StatusCreated || w[0].ActorID != DemoBeaID {
		t.Fatalf("writes after Release: %+v", w)
	}
	// After Release, matching calls pass at once and are still seen.
	if a := send(t.Context(), hc, srv, "POST", "/api/v2/requests", tok, newRequestBody("Later"), DemoBeaEmail); a.status != http.StatusCreated {
		t.Fatalf("call after Release: %+v", a)
	}
	if g.Held() != 0 || g.Seen() != 2 {
		t.Errorf("after Release: Held, Seen = %d, %d; want 0, 2", g.Held(), g.Seen())
	}
}

// TestGateHeldCallIsJudgedWhenLetGo checks that a held call meets
// authentication only once released: a token revoked while it waited
// fails it.
func TestGateHeldCallIsJudgedWhenLetGo(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
	g := NewGate(isCreate)
	t.Cleanup(g.Release)
	srv.SetHooks(Hooks{BeforeCall: g.BeforeCall})
	held := sendAsync(t.Context(), &http.Client{}, srv, "POST", "/api/v2/requests", tok, newRequestBody("Held"), DemoBeaEmail)
	mustWaitHeld(t, g, 1)
	wantStatus(t, do(t, srv, "DELETE", "/api/v2/oauth/tokens/current.json", tok, nil), http.StatusNoContent)
	g.Release()
	if a := mustAnswer(t, held); a.err != nil || a.status != http.StatusUnauthorized {
		t.Fatalf("released call with a token revoked meanwhile: %+v, want 401", a)
	}
	if n := srv.Stats().Calls["POST /api/v2/requests"]; n != 1 {
		t.Errorf("the released call was counted %d times, want 1", n)
	}
	for _, w := range srv.Writes() {
		if w.Endpoint == "POST /api/v2/requests" {
			t.Errorf("the refused call reached its handler: %+v", w)
		}
	}
}

// TestGateAbandonedCallNeverArrives checks that a held call whose client
// gives up is dropped, not applied at some later moment.
func TestGateAbandonedCallNeverArrives(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
	g := NewGate(nil)
	t.Cleanup(g.Release)
	srv.SetHooks(Hooks{BeforeCall: g.BeforeCall})
	ctx, cancel := context.WithCancel(t.Context())
	held := sendAsync(ctx, &http.Client{}, srv, "POST", "/api/v2/requests", tok, newRequestBody("Abandoned"), DemoBeaEmail)
	mustWaitHeld(t, g, 1)
	cancel()
	if a := mustAnswer(t, held); a.err == nil {
		t.Fatalf("canceled call answered %d", a.status)
	}
	// The server notices the closed connection and lets the call go.
	deadline := time.Now().Add(5 * time.Second)
	for g.Held() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the abandoned call is still held")
		}
		time.Sleep(5 * time.Millisecond)
	}
	g.Release()
	// Were it carried on, the write would land within microseconds.
	time.Sleep(100 * time.Millisecond)
	if w := srv.Writes(); len(w) != 0 {
		t.Errorf("an abandoned held write was applied: %+v", w)
	}
	if n := srv.Stats().Calls["POST /api/v2/requests"]; n != 0 {
		t.Errorf("abandoned call counted %d times", n)
	}
}

func TestGateHoldsAnswerAfterWrite(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
	g := NewGate(nil)
	t.Cleanup(g.Release)
	srv.SetHooks(Hooks{AfterWrite: g.AfterWrite})
	hc := &http.Client{}
	held := sendAsync(t.Context(), hc, srv, "POST", "/api/v2/requests", tok, newRequestBody("Answer held"), DemoBeaEmail)
	mustWaitHeld(t, g, 1)
	// Reads are never held by AfterWrite.
	if a := send(t.Context(), hc, srv, "GET", "/api/v2/users/me", tok, nil, ""); a.status != http.StatusOK {
		t.Fatalf("read while an answer is held: %+v", a)
	}
	w := srv.Writes()
	if len(w) != 1 || w[0].Status != http.StatusCreated {
		t.Fatalf("the write is not applied while its answer is held: %+v", w)
	}
	if _, ok := srv.TicketByID(w[0].TicketID); !ok {
		t.Errorf("request %d not stored", w[0].TicketID)
	}
	select {
	case a := <-held:
		t.Fatalf("answer arrived before Release: %+v", a)
	default:
	}
	g.Release()
	if a := mustAnswer(t, held); a.err != nil || a.status != http.StatusCreated {
		t.Fatalf("released answer: %+v", a)
	}
}

// TestDropAfterWrite covers both ways of applying a write and dropping its
// answer: the AfterWrite hook and Faults.DropAfterWriteRate.
func TestDropAfterWrite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		opts        Options
		hooks       Hooks
		wantCounted int // Stats().DroppedAfterWrite
	}{
		{"AfterWrite hook", Options{}, Hooks{AfterWrite: func(Write) bool { return true }}, 0},
		{"DropAfterWriteRate 1", Options{Faults: Faults{DropAfterWriteRate: 1}}, Hooks{}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, tt.opts)
			srv.SetHooks(tt.hooks)
			tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
			hc := &http.Client{}
			a := send(t.Context(), hc, srv, "POST", "/api/v2/requests", tok, newRequestBody("Dropped"), DemoBeaEmail)
			if a.err == nil {
				t.Fatalf("dropped write answered %d", a.status)
			}
			w := srv.Writes()
			if len(w) != 1 || w[0].Status != http.StatusCreated || w[0].ActorID != DemoBeaID {
				t.Fatalf("writes %+v, want the applied create", w)
			}
			tk, ok := srv.TicketByID(w[0].TicketID)
			if !ok || tk.Subject != "Dropped" || tk.RequesterID != DemoBeaID {
				t.Errorf("stored request %+v (found %v)", tk, ok)
			}
			st := srv.Stats()
			if st.DroppedAfterWrite != tt.wantCounted || st.Dropped != 0 {
				t.Errorf("DroppedAfterWrite, Dropped = %d, %d; want %d, 0", st.DroppedAfterWrite, st.Dropped, tt.wantCounted)
			}
			// Reads are answered as usual.
			if a := send(t.Context(), hc, srv, "GET", fmt.Sprintf("/api/v2/requests/%d", tk.ID), tok, nil, DemoBeaEmail); a.err != nil || a.status != http.StatusOK {
				t.Errorf("read after a dropped write: %+v", a)
			}
		})
	}
}

func TestIdleTimeoutClosesKeepAliveConnections(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		idle      time.Duration
		wantReuse bool
	}{
		{"idle timeout closes", 50 * time.Millisecond, false},
		{"no idle timeout keeps", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, Options{IdleTimeout: tt.idle})
			tr := &http.Transport{}
			t.Cleanup(tr.CloseIdleConnections)
			hc := &http.Client{Transport: tr}
			get := func() bool {
				t.Helper()
				reused := false
				trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
				req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", srv.URL+"/api/v2/users/me", nil)
				if err != nil {
					t.Fatal(err)
				}
				res, err := hc.Do(req)
				if err != nil {
					t.Fatalf("GET: %v", err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				return reused
			}
			get()
			time.Sleep(300 * time.Millisecond)
			if got := get(); got != tt.wantReuse {
				t.Errorf("second call reused the connection: %v, want %v", got, tt.wantReuse)
			}
		})
	}
}
