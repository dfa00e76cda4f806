package sandbox

import (
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestRateLimit(t *testing.T) {
	t.Parallel()
	// One token a minute: the bucket does not visibly refill during the test.
	srv := newTestServer(t, Options{RateLimit: 1, RateBurst: 2})
	tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read").AccessToken
	for i, wantRemaining := range []string{"1", "0"} {
		r := do(t, srv, "GET", "/api/v2/users/me", tok, nil)
		wantStatus(t, r, http.StatusOK)
		for _, h := range []string{"X-Rate-Limit", "ratelimit-limit"} {
			if r.Header.Get(h) != "1" {
				t.Errorf("call %d: %s = %q", i, h, r.Header.Get(h))
			}
		}
		for _, h := range []string{"X-Rate-Limit-Remaining", "ratelimit-remaining"} {
			if r.Header.Get(h) != wantRemaining {
				t.Errorf("call %d: %s = %q, want %s", i, h, r.Header.Get(h), wantRemaining)
			}
		}
		if reset, err := strconv.Atoi(r.Header.Get("ratelimit-reset")); err != nil || reset < 1 || reset > 120 {
			t.Errorf("call %d: ratelimit-reset = %q", i, r.Header.Get("ratelimit-reset"))
		}
	}
	r := do(t, srv, "GET", "/api/v2/users/me", tok, nil)
	wantStatus(t, r, http.StatusTooManyRequests)
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After = %q, want whole seconds in [1,60]", r.Header.Get("Retry-After"))
	}
	if r.str("error") == "" || r.Header.Get("X-Rate-Limit-Remaining") != "0" {
		t.Errorf("429 body %s headers %v", r.Raw, r.Header)
	}
	// Unauthenticated calls are counted and carry the headers too.
	if r := do(t, srv, "GET", "/api/v2/requests", "bad", nil); r.Status != http.StatusTooManyRequests || r.Header.Get("X-Rate-Limit") != "1" {
		t.Errorf("bad-token call: %d %v", r.Status, r.Header)
	}
	// OAuth endpoints are outside the API limit.
	wantStatus(t, postToken(t, srv, exchangeFields(mustCode(t, srv, testClientID, "")), false), http.StatusOK)
	if st := srv.Stats(); st.Throttled != 2 || st.Injected429 != 0 {
		t.Errorf("stats %+v", st)
	}
	srv.SetRateLimit(1, 1)
	wantStatus(t, do(t, srv, "GET", "/api/v2/users/me", tok, nil), http.StatusOK)
}

func TestRateLimitDefaults(t *testing.T) {
	t.Parallel()
	srv, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read").AccessToken
	r := do(t, srv, "GET", "/api/v2/users/me", tok, nil)
	// 700 a minute, burst 11: one call leaves 10 (refill in between is far
	// below one token).
	if r.Header.Get("X-Rate-Limit") != "700" || r.Header.Get("X-Rate-Limit-Remaining") != "10" {
		t.Errorf("headers %v", r.Header)
	}
}

// statuses makes n sequential calls and returns their statuses.
func statusSeq(t *testing.T, srv *Server, tok string, n int) []int {
	t.Helper()
	var out []int
	for range n {
		out = append(out, do(t, srv, "GET", "/api/v2/users/me", tok, nil).Status)
	}
	return out
}

func TestFaultsAreDeterministicBySeed(t *testing.T) {
	t.Parallel()
	f := Faults{Rate429: 0.15, Burst429: 2, Rate503: 0.15, Rate5xx: 0.15}
	run := func(seed int64) ([]int, Stats) {
		srv := newTestServer(t, Options{Seed: seed, Faults: f})
		tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read").AccessToken
		return statusSeq(t, srv, tok, 60), srv.Stats()
	}
	a, st := run(42)
	b, _ := run(42)
	c, _ := run(43)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different faults:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("different seeds gave the same 60 outcomes: %v", a)
	}
	count := map[int]int{}
	for _, s := range a {
		count[s]++
	}
	if count[429] != st.Injected429 || count[503] != st.Injected503 || count[500]+count[502] != st.Injected5xx || st.Throttled != 0 {
		t.Errorf("observed %v, stats %+v", count, st)
	}
	if count[200] == 0 || count[429] == 0 || count[503] == 0 || count[500]+count[502] == 0 {
		t.Errorf("expected every kind in 60 calls: %v", count)
	}
}

func TestFaultKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		f          Faults
		want       []int
		retryAfter string // "" = must be absent
	}{
		{"429 default retry", Faults{Rate429: 1}, []int{429}, "1"},
		{"429 retry rounded up", Faults{Rate429: 1, RetryAfter: 1500 * time.Millisecond}, []int{429}, "2"},
		{"503", Faults{Rate503: 1, RetryAfter: 3 * time.Second}, []int{503}, "3"},
		{"5xx", Faults{Rate5xx: 1}, []int{500, 502}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, Options{Faults: tt.f})
			tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read").AccessToken
			seen := map[int]bool{}
			for range 20 {
				r := do(t, srv, "GET", "/api/v2/users/me", tok, nil)
				if !slices.Contains(tt.want, r.Status) {
					t.Fatalf("status %d, want one of %v", r.Status, tt.want)
				}
				seen[r.Status] = true
				if got := r.Header.Get("Retry-After"); got != tt.retryAfter {
					t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
				}
				if r.Status == 502 && r.Header.Get("Content-Type") != "text/html; charset=utf-8" {
					t.Errorf("502 content type %q", r.Header.Get("Content-Type"))
				}
			}
			if len(seen) != len(tt.want) {
				t.Errorf("saw %v, want all of %v", seen, tt.want)
			}
			// Faults stop at the API: OAuth and bad tokens are untouched.
			wantStatus(t, postToken(t, srv, exchangeFields(mustCode(t, srv, testClientID, "")), false), http.StatusOK)
			wantInvalidToken(t, do(t, srv, "GET", "/api/v2/users/me", "bad", nil))
			srv.SetFaults(Faults{})
			wantStatus(t, do(t, srv, "GET", "/api/v2/users/me", tok, nil), http.StatusOK)
		})
	}
}

func TestFault429Bursts(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{Seed: 3, Faults: Faults{Rate429: 0.1, Burst429: 4}})
	tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read").AccessToken
	seq := statusSeq(t, srv, tok, 150)
	run := 0
	bursts := 0
	for i, s := range seq {
		if s == 429 {
			run++
			continue
		}
		if run > 0 {
			bursts++
			if run%4 != 0 {
				t.Errorf("429 run of %d ending at call %d, want a multiple of 4", run, i)
			}
		}
		run = 0
	}
	if bursts == 0 {
		t.Errorf("no bursts in %v", seq)
	}
	if st := srv.Stats(); st.Injected429 != countOf(seq, 429) {
		t.Errorf("Injected429 %d, saw %d", st.Injected429, countOf(seq, 429))
	}
}

func countOf(seq []int, v int) int {
	n := 0
	for _, s := range seq {
		if s == v {
			n++
		}
	}
	return n
}

func TestFaultDrop(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{Faults: Faults{DropRate: 1}})
	tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range 3 {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v2/users/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := hc.Do(req)
		if err == nil {
			res.Body.Close()
			t.Fatalf("dropped call answered %d", res.StatusCode)
		}
	}
	if st := srv.Stats(); st.Dropped != 3 {
		t.Errorf("Dropped = %d, want 3", st.Dropped)
	}
	// A dropped write never reached a handler.
	if w := srv.Writes(); len(w) != 0 {
		t.Errorf("writes %v", w)
	}
}

func TestFaultLatency(t *testing.T) {
	t.Parallel()
	const lat = 250 * time.Millisecond
	srv := newTestServer(t, Options{Faults: Faults{Latency: lat, Jitter: 50 * time.Millisecond}})
	tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read").AccessToken
	start := time.Now()
	wantStatus(t, do(t, srv, "GET", "/api/v2/users/me", tok, nil), http.StatusOK)
	if d := time.Since(start); d < lat {
		t.Errorf("call took %v, want at least %v", d, lat)
	}
	// Latency is slept outside the lock: 8 concurrent calls overlap, so
	// they take far less than 8 × latency.
	start = time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { do(t, srv, "GET", "/api/v2/users/me", tok, nil) })
	}
	wg.Wait()
	if d := time.Since(start); d >= 8*lat {
		t.Errorf("8 concurrent calls took %v: latency is serialised", d)
	}
	// OAuth endpoints have no latency.
	start = time.Now()
	mustCode(t, srv, testClientID, "")
	if d := time.Since(start); d >= lat {
		t.Errorf("authorize took %v", d)
	}
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	d := Generate(7, 10000, 100000)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	t.Logf("Generate(7, 10000, 100000): %v, %d MB allocated", took, (after.TotalAlloc-before.TotalAlloc)>>20)
	if mb := (after.TotalAlloc - before.TotalAlloc) >> 20; mb > 150 {
		t.Errorf("allocated %d MB, want modest memory", mb)
	}
	// A loose bound only: the point is "well under a second" on an idle
	// machine, without failing on a loaded one.
	if took > 10*time.Second {
		t.Errorf("took %v", took)
	}
	if len(d.Users) != 10003 || len(d.Tickets) != 100000 {
		t.Fatalf("%d users %d tickets", len(d.Users), len(d.Tickets))
	}
	solved := 0
	for i, tk := range d.Tickets {
		if tk.ID != GeneratedFirstTicketID+int64(i) || tk.RequesterID != GeneratedFirstUserID+int64(i%10000) {
			t.Fatalf("ticket %d = %+v", i, tk)
		}
		if tk.Status == "solved" {
			solved++
		}
	}
	if solved < 65000 || solved > 75000 {
		t.Errorf("%d solved, want about 70%%", solved)
	}
	again := Generate(7, 10000, 100000)
	for _, i := range []int{0, 777, 99999} {
		if again.Tickets[i].Status != d.Tickets[i].Status || again.Users[i%10000].Verified != d.Users[i%10000].Verified {
			t.Errorf("Generate is not deterministic at %d", i)
		}
	}

	srv := newTestServer(t, Options{Data: d})
	tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
	r := do(t, srv, "GET", "/api/v2/requests?per_page=100", tok, nil, withOBO(GeneratedUserEmail(4)))
	wantStatus(t, r, http.StatusOK)
	if int(r.num("count")) != 10 {
		t.Errorf("user 4 has %v requests, want 10", r.get("count"))
	}
	r = do(t, srv, "GET", fmt.Sprintf("/api/v2/users/%d", GeneratedFirstUserID+4), tok, nil)
	if r.str("user", "email") != GeneratedUserEmail(4) {
		t.Errorf("user %s", r.Raw)
	}
}

func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		Generate(1, 10000, 100000)
	}
}

func BenchmarkNewGenerated(b *testing.B) {
	d := Generate(1, 10000, 100000)
	for b.Loop() {
		New(Options{Data: d})
	}
}
