package handlers

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// multipartBody streams a multipart upload of size bytes without holding
// it: an optional _csrf field first, then a file part of filler rows. It
// counts the bytes the server has taken.
type multipartBody struct {
	head, row, tail string
	rows            int64 // rows of file content after head
	sent            atomic.Int64
	pos             int64
}

const testBoundary = "hardeningtestboundary"

func newMultipartBody(csrf string, size int64, row string) *multipartBody {
	var head strings.Builder
	if csrf != "" {
		fmt.Fprintf(&head, "--%s\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n%s\r\n", testBoundary, csrf)
	}
	fmt.Fprintf(&head, "--%s\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nrate\r\n", testBoundary)
	fmt.Fprintf(&head, "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\n", testBoundary)
	head.WriteString("email,ticket_id,score,comment\n")
	return &multipartBody{head: head.String(), row: row, rows: size / int64(len(row)), tail: "\r\n--" + testBoundary + "--\r\n"}
}

func (m *multipartBody) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		off, part := m.pos, ""
		switch body := m.rows * int64(len(m.row)); {
		case off < int64(len(m.head)):
			part = m.head[off:]
		case off < int64(len(m.head))+body:
			part = m.row[(off-int64(len(m.head)))%int64(len(m.row)):]
		case off < m.Len():
			part = m.tail[off-int64(len(m.head))-body:]
		default:
			m.sent.Add(int64(n))
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		}
		c := copy(p[n:], part)
		n += c
		m.pos += int64(c)
	}
	m.sent.Add(int64(n))
	return n, nil
}

func (m *multipartBody) Len() int64 {
	return int64(len(m.head)+len(m.tail)) + m.rows*int64(len(m.row))
}

// heapObjects is the bytes of live and not yet swept heap objects.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// peakHeap samples heapObjects every millisecond until stop is closed and
// returns the highest value seen.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if h := heapObjects(); h > peak {
				peak = h
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// TestPostsWithoutSessionAreRefusedUnread sends 16 parallel 20 MB uploads
// with no session and no token (issue: they used to be parsed whole before
// the token check) and checks that each is refused with 403 while the
// server allocates almost nothing and reads almost none of the bodies.
// Not parallel: it measures the process's allocations.
func TestPostsWithoutSessionAreRefusedUnread(t *testing.T) {
	app := newTestApp(t, testAppOptions{})
	const n, size = 16, 20 << 20
	bodies := make([]*multipartBody, n)
	for i := range bodies {
		bodies[i] = newMultipartBody("", size, "bea@example.com,1,good,"+strings.Repeat("x", 70)+"\n")
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	peak := peakHeap(stop)
	base := heapObjects()
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, app.URL+"/bulk", bodies[i])
			req.ContentLength = bodies[i].Len()
			req.Header.Set("Content-Type", "multipart/form-data; boundary="+testBoundary)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				// The server may close the connection while the client
				// is still sending; that is a refusal too. Any other
				// error is not.
				if !isCutOff(err) {
					t.Errorf("POST %d without a session: %v", i, err)
				}
				statuses[i] = -1
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses[i] = res.StatusCode
		})
	}
	wg.Wait()
	close(stop)
	peakDelta := int64(<-peak) - int64(base)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc

	var sent int64
	refused := 0
	for i, b := range bodies {
		sent += b.sent.Load()
		switch statuses[i] {
		case http.StatusForbidden:
			refused++
		case -1:
		default:
			t.Errorf("POST %d without a session: status %d, want 403", i, statuses[i])
		}
	}
	if refused == 0 {
		t.Error("no POST without a session got its 403 page; all were cut off")
	}
	// What the client managed to send is mostly what the kernels' socket
	// buffers took before the server closed the connection; a server
	// reading the bodies would take all 320 MB.
	if sent > int64(n*size/2) {
		t.Errorf("%.1f MB of %d MB bodies were taken in; the server must not read them", float64(sent)/(1<<20), n*size>>20)
	}
	// The bytes sent include what the kernel's socket buffers took.
	t.Logf("%d × %d MB POSTs without a session: %.1f MB allocated in all, heap peak +%.1f MB, %.1f MB of %d MB bodies sent",
		n, size>>20, float64(alloc)/(1<<20), float64(peakDelta)/(1<<20), float64(sent)/(1<<20), n*size>>20)
	if alloc > 32<<20 {
		t.Errorf("the server allocated %.1f MB for %d refused uploads; it must not read them", float64(alloc)/(1<<20), n)
	}
	if rss, ok := vmHWM(); ok {
		t.Logf("test process peak RSS (VmHWM): %d MB", rss>>20)
	}
}

// TestSignedInUploadIsNotHeldInMemory uploads 20 MB signed in and checks
// that the heap grows by a few MB at most: the file is spooled to a
// temporary file and read from there as a stream.
// Not parallel: it measures the process's heap.
func TestSignedInUploadIsNotHeldInMemory(t *testing.T) {
	for _, tc := range []struct {
		name string
		row  string
	}{
		// 20 MB of rows just under the row limit.
		{"short rows", "bea@example.com,1,good," + strings.Repeat("x", 200) + "\n"},
		// 20 MB in a thousand rows with long comments.
		{"long rows", "bea@example.com,1,good," + strings.Repeat("x", 20000) + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := newTestApp(t, testAppOptions{})
			s := loginAs(t, app, sandbox.DemoAdminEmail)
			body := newMultipartBody(s.csrf, 20<<20, tc.row)
			defer debug.SetGCPercent(debug.SetGCPercent(10))
			runtime.GC()
			base := heapObjects()
			stop := make(chan struct{})
			peak := peakHeap(stop)
			req, _ := http.NewRequest(http.MethodPost, app.URL+"/bulk", body)
			req.ContentLength = body.Len()
			req.Header.Set("Content-Type", "multipart/form-data; boundary="+testBoundary)
			req.Header.Set("Origin", app.URL)
			req.Header.Set("Sec-Fetch-Site", "same-origin")
			// Reading and storing 90,000 rows takes a while under the race
			// detector on a busy CI machine: more than the harness's 30 s.
			s.c.Timeout = 5 * time.Minute
			r := s.do(req)
			close(stop)
			delta := int64(<-peak) - int64(base)
			if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/bulk/runs/") {
				t.Fatalf("signed-in upload: status %d location %q: %.300s", r.Status, r.Location, r.Body)
			}
			t.Logf("signed-in 20 MB upload (%s): heap peak +%.1f MB over %.1f MB", tc.name, float64(delta)/(1<<20), float64(base)/(1<<20))
			if delta > 8<<20 {
				t.Errorf("the heap grew by %.1f MB for a 20 MB upload; the file must not be held in memory", float64(delta)/(1<<20))
			}
		})
	}
}

// vmHWM is the process's peak resident set size, where /proc has it.
func vmHWM() (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// TestSignedInPostWithWrongTokenReadsOnlyTheFirstPart checks that an
// upload with a session but a wrong token is refused after its first part:
// the server allocates far less than the file.
// Not parallel: it measures the process's allocations.
func TestSignedInPostWithWrongTokenReadsOnlyTheFirstPart(t *testing.T) {
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	body := newMultipartBody("wrong-token", 20<<20, "bea@example.com,1,good,hello\n")
	req, _ := http.NewRequest(http.MethodPost, app.URL+"/bulk", body)
	req.ContentLength = body.Len()
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+testBoundary)
	req.Header.Set("Origin", app.URL)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := s.c.Do(req)
	switch {
	case err == nil:
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("upload with a wrong token: status %d, want 403", res.StatusCode)
		}
	case !isCutOff(err):
		t.Errorf("upload with a wrong token: %v, want a 403 (or the connection cut off)", err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("%.1f MB allocated for a refused 20 MB upload; it must not be read", float64(alloc)/(1<<20))
	}
	runs, _, err := app.DB.ListRuns(t.Context(), store.RunFilter{})
	if err != nil || len(runs) != 0 {
		t.Errorf("runs after a refused upload: %d (err %v), want none", len(runs), err)
	}
}

// TestHostHeaderMustMatchPublicURL checks that requests addressed to
// another host are refused before any session work, that loopback names
// stand in for each other when PUBLIC_URL is on loopback (go run .), and
// that health checks answer on any host.
func TestHostHeaderMustMatchPublicURL(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	u, _ := url.Parse(app.URL)
	get := func(host, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, app.URL+path, nil)
		req.Host = host
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	for _, host := range []string{"evil.example", "evil.example:" + u.Port(), "127.0.0.1:1", "localhost"} {
		res := get(host, "/login")
		if res.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("Host %q: status %d, want 421", host, res.StatusCode)
		}
		if sc := res.Header.Get("Set-Cookie"); sc != "" {
			t.Errorf("Host %q: a session was started (%q)", host, sc)
		}
	}
	for _, host := range []string{u.Host, "localhost:" + u.Port(), "[::1]:" + u.Port()} {
		if res := get(host, "/"); res.StatusCode != http.StatusOK {
			t.Errorf("Host %q (loopback, same port): status %d, want 200", host, res.StatusCode)
		}
	}
	if res := get("10.1.2.3:8080", "/healthz"); res.StatusCode != http.StatusOK {
		t.Errorf("/healthz on another host: status %d, want 200", res.StatusCode)
	}

	// A forged Host with a matching Origin passes the cross-origin check;
	// the host check stops it.
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	req, _ := http.NewRequest(http.MethodPost, app.URL+"/acting", strings.NewReader(url.Values{"_csrf": {s.csrf}, "user": {sandbox.DemoBeaEmail}}.Encode()))
	req.Host = "evil.example"
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := s.do(req); r.Status != http.StatusMisdirectedRequest {
		t.Errorf("POST with Host and Origin evil.example: status %d, want 421", r.Status)
	}

	// With a public URL elsewhere, only its host is served.
	pub := newTestApp(t, testAppOptions{PublicURL: "https://onbehalf.example.com"})
	req, _ = http.NewRequest(http.MethodGet, pub.URL+"/", nil)
	if r := pub.newBrowser().do(req); r.Status != http.StatusMisdirectedRequest {
		t.Errorf("GET by the listener's address with PUBLIC_URL elsewhere: status %d, want 421", r.Status)
	} else if msg := r.doc(t).Find(`[data-testid="error-message"]`).Text(); !strings.Contains(msg, "onbehalf.example.com") || !strings.Contains(msg, "PUBLIC_URL") {
		t.Errorf("the 421 page says %q; want it to name onbehalf's address and PUBLIC_URL", msg)
	}
	req, _ = http.NewRequest(http.MethodGet, pub.URL+"/", nil)
	req.Host = "onbehalf.example.com"
	if r := pub.newBrowser().do(req); r.Status != http.StatusOK {
		t.Errorf("GET with Host onbehalf.example.com: status %d, want 200", r.Status)
	}
}

// TestStaticHasNoDirectoryListing checks that /static/ lists nothing while
// its files are served.
func TestStaticHasNoDirectoryListing(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	b := app.newBrowser()
	for _, path := range []string{"/static/", "/static", "/static/.", "/static//"} {
		r := b.get(path)
		if r.Status == http.StatusOK || strings.Contains(r.Body, `href="style.css"`) {
			t.Errorf("GET %s: status %d, body %.200q: a listing", path, r.Status, r.Body)
		}
	}
	if r := b.get("/static/style.css"); r.Status != http.StatusOK {
		t.Errorf("GET /static/style.css: status %d, want 200", r.Status)
	}
}

// TestSearchTermLengthIsLimited checks that an overlong search is not
// forwarded to Zendesk and the page says why.
func TestSearchTermLengthIsLimited(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	app.Sandbox.ResetStats()
	r := s.get("/users?q=" + strings.Repeat("a", 5000))
	if r.Status != http.StatusOK {
		t.Fatalf("long search: status %d", r.Status)
	}
	msg := r.doc(t).Find(`[data-testid="search-error"]`).Text()
	if !strings.Contains(msg, "5000 characters") || !strings.Contains(msg, "shorter") {
		t.Errorf("search error = %q, want it to give the length and say what to do", msg)
	}
	if v, _ := r.doc(t).Find(`input[name="q"]`).Attr("value"); len(v) > maxSearchLen {
		t.Errorf("the search box shows back %d characters", len(v))
	}
	for call, n := range app.Sandbox.Stats().Calls {
		if strings.Contains(call, "/users") && n > 0 {
			t.Errorf("the long search reached Zendesk: %s × %d", call, n)
		}
	}
	// A normal search still goes through.
	if r := s.get("/users?q=" + url.QueryEscape(sandbox.DemoBeaEmail)); r.doc(t).Find(`[data-testid="search-error"]`).Length() != 0 {
		t.Errorf("a normal search was refused: %.300s", r.Body)
	}
}

// TestCookieHasHostPrefixOnHTTPS checks the __Host- prefix when PUBLIC_URL
// is https, and its absence on http (browsers refuse __Host- cookies
// without Secure).
func TestCookieHasHostPrefixOnHTTPS(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{PublicURL: "https://onbehalf.example.com"})
	req, _ := http.NewRequest(http.MethodGet, app.URL+"/login", nil)
	req.Host = "onbehalf.example.com"
	r := app.newBrowser().do(req)
	var names []string
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		names = append(names, c.Name)
		if c.Name == "__Host-onbehalf" && (!c.Secure || c.Path != "/" || c.Domain != "") {
			t.Errorf("__Host- cookie with Secure=%v Path=%q Domain=%q", c.Secure, c.Path, c.Domain)
		}
	}
	if len(names) != 1 || names[0] != "__Host-onbehalf" {
		t.Errorf("cookies set on https: %v, want [__Host-onbehalf]", names)
	}
}

// TestAuditCSVNeutralisesHiddenFormulas checks the audit export: a name
// whose formula hides behind a line break, a zero-width space or a
// no-break space comes out as text.
func TestAuditCSVNeutralisesHiddenFormulas(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	hostile := []string{"\n=HYPERLINK(\"http://x\")", "\u200b=1+1", "\u00a0@SUM(A1)", "\ufeff-1+1"}
	for i, name := range hostile {
		if err := app.DB.CreateAuditEvent(t.Context(), &store.AuditEvent{Time: time.Now(), AdminID: int64(100 + i), AdminName: "Eve",
			Action: "rate", EndUser: name, Outcome: "ok", Detail: name}); err != nil {
			t.Fatal(err)
		}
	}
	r := s.get("/audit.csv")
	recs, err := csv.NewReader(strings.NewReader(r.Body)).ReadAll()
	if err != nil || len(recs) < 1+len(hostile) {
		t.Fatalf("audit CSV: %d records, err %v: %.300s", len(recs), err, r.Body)
	}
	col, admin := slices.Index(recs[0], "End user"), slices.Index(recs[0], "Admin")
	if col < 0 || admin < 0 {
		t.Fatalf("audit CSV header %q lacks End user or Admin", recs[0])
	}
	checked := 0
	for _, rec := range recs[1:] {
		if rec[admin] != "Eve" {
			continue
		}
		checked++
		if !strings.HasPrefix(rec[col], "'") {
			t.Errorf("audit CSV end_user %q is not neutralised", rec[col])
		}
	}
	if checked != len(hostile) {
		t.Errorf("found %d of Eve's %d events in the export", checked, len(hostile))
	}
}

// isCutOff reports whether err is the server closing the connection while
// the client was still sending: how a refusal of an unread body may reach
// the client instead of its 403.
func isCutOff(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}
