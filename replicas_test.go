package main

import (
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/onbehalf/onbehalf/internal/testpg"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// TestMain doubles as the app's main when a replica test starts this test
// binary as a child process: that is how a replica can be killed abruptly
// (SIGKILL) while the test process survives to check what happened.
func TestMain(m *testing.M) {
	if os.Getenv("ONBEHALF_TEST_REPLICA") == "1" {
		if err := run(context.Background(), []string{"onbehalf"}, os.Getenv, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "onbehalf replica:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// newTestPostgres creates a fresh database on TEST_DATABASE_URL's server and
// drops it at the end; without TEST_DATABASE_URL the test is skipped.
func newTestPostgres(t testing.TB) string {
	t.Helper()
	return testpg.Database(t, "onbehalf_replicas")
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// replica is one onbehalf process.
type replica struct {
	URL    string
	cmd    *exec.Cmd
	log    *lockedBuilder
	exited chan struct{}
}

// cluster is several replicas on one PostgreSQL database, one Zendesk
// (a sandbox in the test process) and one SECRET_KEY.
type cluster struct {
	t        testing.TB
	Sandbox  *sandbox.Server
	DSN      string
	env      []string
	replicas []*replica
}

func newTestCluster(t testing.TB, n int, opts sandbox.Options, extraEnv ...string) *cluster {
	t.Helper()
	dsn := newTestPostgres(t)
	sb, err := sandbox.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	c := &cluster{t: t, Sandbox: sb, DSN: dsn}
	addrs := make([]string, n)
	var redirects []string
	for i := range addrs {
		addrs[i] = freeAddr(t)
		redirects = append(redirects, "http://"+addrs[i]+"/oauth/callback")
	}
	sb.RegisterClient(sandbox.Client{Identifier: "onbehalf-replicas", Secret: "replica-secret-0123456789", RedirectURIs: redirects})
	c.env = append([]string{
		"ONBEHALF_TEST_REPLICA=1",
		"DATABASE_URL=" + dsn,
		"SECRET_KEY=replicas-share-this-secret-key-0123456789",
		"ZENDESK_URL=" + sb.URL,
		"ZENDESK_CLIENT_ID=onbehalf-replicas",
		"ZENDESK_CLIENT_SECRET=replica-secret-0123456789",
		"BULK_RESCUE_AFTER=3s",
		"SHUTDOWN_TIMEOUT=5s",
	}, extraEnv...)
	for _, addr := range addrs {
		c.start(addr)
	}
	return c
}

// start runs one replica on addr and waits until it is ready.
func (c *cluster) start(addr string) *replica {
	t := c.t
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Env = append(cmd.Env, "ADDR="+addr, "PUBLIC_URL=http://"+addr, "DATA_DIR="+t.TempDir())
	r := &replica{URL: "http://" + addr, cmd: cmd, log: &lockedBuilder{}, exited: make(chan struct{})}
	cmd.Stdout = writerFunc(func(p []byte) (int, error) { r.log.WriteString(string(p)); return len(p), nil })
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-r.exited:
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-r.exited
			}
		}
		if t.Failed() {
			t.Logf("replica %s log:\n%s", r.URL, r.log.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(r.URL + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-r.exited:
			t.Fatalf("replica %s exited at start:\n%s", r.URL, r.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s not ready in 60s:\n%s", r.URL, r.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.replicas = append(c.replicas, r)
	return r
}

// kill ends a replica abruptly, as a crash or a lost machine would.
func (r *replica) kill(t testing.TB) {
	t.Helper()
	if err := r.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-r.exited
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// agent is a cookie-keeping client that does not follow redirects. Cookies
// are per host, not per port, so one agent carries its session from one
// replica to another, as a load balancer would.
type agent struct {
	t testing.TB
	c *http.Client
}

func newAgent(t testing.TB) *agent {
	jar, _ := cookiejar.New(nil)
	return &agent{t: t, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (a *agent) do(req *http.Request) (*http.Response, string) {
	a.t.Helper()
	res, err := a.c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func (a *agent) get(u string) (*http.Response, string) {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return a.do(req)
}

func (a *agent) post(base, path string, body io.Reader, contentType string) (*http.Response, string) {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+path, body)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Origin", base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return a.do(req)
}

func mustDoc(t testing.TB, body string) *goquery.Document {
	t.Helper()
	d, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// login signs in on replica r as the sandbox admin; it returns the home page.
func (a *agent) login(r *replica) string {
	a.t.Helper()
	res, _ := a.get(r.URL + "/login")
	consentURL := res.Header.Get("Location")
	_, page := a.get(consentURL)
	form := url.Values{}
	mustDoc(a.t, page).Find("form input[type=hidden]").Each(func(_ int, s *goquery.Selection) {
		form.Set(s.AttrOr("name", ""), s.AttrOr("value", ""))
	})
	form.Set("user", sandbox.DemoAdminEmail)
	form.Set("decision", "allow")
	u, _ := url.Parse(consentURL)
	req, _ := http.NewRequest(http.MethodPost, u.Scheme+"://"+u.Host+"/oauth/authorizations/new", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, _ = a.do(req)
	res, _ = a.get(res.Header.Get("Location")) // the callback, on r
	if res.StatusCode != http.StatusSeeOther {
		a.t.Fatalf("callback on %s: status %d", r.URL, res.StatusCode)
	}
	_, home := a.get(r.URL + "/")
	return home
}

func signedInName(t *testing.T, page string) string {
	t.Helper()
	return strings.TrimSpace(mustDoc(t, page).Find(`[data-testid="signed-in"] strong`).Text())
}

func TestReplicasShareLoginsAndLogouts(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 2, sandbox.Options{Seed: 1, RateLimit: 60000, RateBurst: 1000})
	a, b := c.replicas[0], c.replicas[1]
	ag := newAgent(t)
	home := ag.login(a)
	if got := signedInName(t, home); got != "Ada Admin" {
		t.Fatalf("signed in on A as %q", got)
	}
	_, onB := ag.get(b.URL + "/")
	if got := signedInName(t, onB); got != "Ada Admin" {
		t.Fatalf("the login on A does not work on B: %.300s", onB)
	}
	// An action on B with A's session: search users through Zendesk.
	res, page := ag.get(b.URL + "/users?q=bea")
	if res.StatusCode != http.StatusOK || mustDoc(t, page).Find(`[data-testid="user-results"] tbody tr`).Length() < 2 {
		t.Errorf("search on B with A's login: %d %.300s", res.StatusCode, page)
	}
	// Logging out on B ends the session on A too.
	csrf := mustDoc(t, onB).Find(`input[name="_csrf"]`).AttrOr("value", "")
	res, _ = ag.post(b.URL, "/logout", strings.NewReader(url.Values{"_csrf": {csrf}}.Encode()), "application/x-www-form-urlencoded")
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout on B: %d", res.StatusCode)
	}
	_, onA := ag.get(a.URL + "/")
	if mustDoc(t, onA).Find(`[data-testid="login"]`).Length() != 1 {
		t.Error("after logging out on B, A still shows a signed-in page")
	}
}

var runLocation = regexp.MustCompile(`^/bulk/runs/(\d+)$`)

func TestBulkRunFinishesAfterItsReplicaIsKilled(t *testing.T) {
	t.Parallel()
	// Slow enough that the run is mid-way when A dies: 150 ms per call and
	// 300 calls a minute. A generated account gives every row its own
	// solved ticket, so each row's write can be told apart at Zendesk.
	data := sandbox.Generate(3, 200, 400)
	c := newTestCluster(t, 2, sandbox.Options{Seed: 2, RateLimit: 60000, RateBurst: 1000, Data: data,
		Faults: sandbox.Faults{Latency: 150 * time.Millisecond}}, "ZENDESK_RATE_LIMIT=300", "BULK_RESCUE_AFTER=5s")
	a, b := c.replicas[0], c.replicas[1]
	ag := newAgent(t)
	home := ag.login(a)
	csrf := mustDoc(t, home).Find(`input[name="_csrf"]`).AttrOr("value", "")

	const rows = 40
	tickets := rateableTickets(t, c.Sandbox, data, rows)
	var csvBody strings.Builder
	csvBody.WriteString("email,ticket_id,score,comment\n")
	for n, tk := range tickets {
		u, _ := c.Sandbox.UserByID(tk.RequesterID)
		fmt.Fprintf(&csvBody, "%s,%d,good,replica row %03d\n", u.Email, tk.ID, n)
	}
	runID := fmt.Sprint(ag.startRun(a, csrf, "rate", csvBody.String(), rows))

	db, err := store.Open(context.Background(), c.DSN, store.Options{SecretKey: []byte("replicas-share-this-secret-key-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	id := int64(0)
	fmt.Sscan(runID, &id)
	// Kill A once some rows are done and many are not.
	deadline := time.Now().Add(60 * time.Second)
	for {
		counts, err := db.RunCounts(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if counts.Done >= 5 {
			if counts.Done >= rows-5 {
				t.Fatalf("the run finished (%d done) before A could be killed; slow the sandbox down", counts.Done)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress on A: %+v", counts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.kill(t)

	// B alone finishes the run: River on B rescues A's stuck jobs.
	deadline = time.Now().Add(90 * time.Second)
	var counts store.RunCounts
	for {
		counts, err = db.RunCounts(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		run, err := db.FindRunByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if run.State == store.RunDone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run not finished by B in 90s: state %s, counts %+v", run.State, counts)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if counts.Done != rows || counts.Failed != 0 || counts.Skipped != 0 {
		t.Errorf("counts %+v, want all %d rows done exactly once", counts, rows)
	}
	// Every row reached Zendesk, and none twice.
	perRow := map[string]int{}
	for _, w := range c.Sandbox.Writes() {
		if w.Status < 300 {
			if i := strings.Index(w.Body, "replica row "); i >= 0 {
				perRow[w.Body[i:i+len("replica row 000")]]++
			}
		}
	}
	for i := 0; i < rows; i++ {
		key := fmt.Sprintf("replica row %03d", i)
		if perRow[key] != 1 {
			t.Errorf("%s written %d times at Zendesk, want exactly 1", key, perRow[key])
		}
	}
	// The results page on B shows the whole run.
	_, page := ag.get(b.URL + "/bulk/runs/" + runID)
	if got := strings.TrimSpace(mustDoc(t, page).Find(`[data-testid="count-done"]`).Text()); got != fmt.Sprint(rows) {
		t.Errorf("B's run page shows %q done, want %d", got, rows)
	}
}

func TestProcessStopsCleanlyOnSIGTERM(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ONBEHALF_TEST_REPLICA=1", "ADDR="+addr, "DATA_DIR="+t.TempDir(), "SHUTDOWN_TIMEOUT=5s")
	out := &lockedBuilder{}
	cmd.Stdout = writerFunc(func(p []byte) (int, error) { out.WriteString(string(p)); return len(p), nil })
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("not ready in 60s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("still running 20s after SIGTERM:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "shutting down") {
		t.Errorf("no shutdown in the log:\n%s", out.String())
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
}

func TestReplicasRefreshAnExpiredTokenOnce(t *testing.T) {
	t.Parallel()
	// An 8-second access token: onbehalf refreshes a quarter of its
	// lifetime (2 s) before expiry, so 6.5 seconds after login both
	// replicas consider it due.
	c := newTestCluster(t, 2, sandbox.Options{Seed: 4, RateLimit: 60000, RateBurst: 1000,
		Switches: sandbox.Switches{ExpiringTokens: true, AccessTokenTTL: 8 * time.Second}})
	ag := newAgent(t)
	ag.login(c.replicas[0])
	time.Sleep(6500 * time.Millisecond)
	before := c.Sandbox.Stats().Refreshes
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		r := c.replicas[i%2]
		go func() {
			req, _ := http.NewRequest(http.MethodGet, r.URL+"/users?q=bea", nil)
			res, err := ag.c.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK || !strings.Contains(string(b), "Bea Lindqvist") {
				err = fmt.Errorf("%s: status %d", r.URL, res.StatusCode)
			}
			errs <- err
		}()
	}
	for i := 0; i < 20; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := c.Sandbox.Stats().Refreshes - before; n != 1 {
		t.Errorf("20 concurrent pages on two replicas caused %d refreshes at Zendesk, want exactly 1", n)
	}
}

// rateableTickets returns n tickets of data an end user who can be acted as
// can rate: solved, not rated yet, each its own.
func rateableTickets(t testing.TB, sb *sandbox.Server, data *sandbox.Data, n int) []sandbox.Ticket {
	t.Helper()
	var out []sandbox.Ticket
	for _, tk := range data.Tickets {
		if len(out) == n {
			break
		}
		u, ok := sb.UserByID(tk.RequesterID)
		if tk.Status != "solved" || tk.Rating != nil && (tk.Rating.Score == "good" || tk.Rating.Score == "bad") ||
			!ok || u.Role != "end-user" || !u.Verified || u.Suspended || !u.Active {
			continue
		}
		out = append(out, tk)
	}
	if len(out) != n {
		t.Fatalf("the generated account has only %d rateable tickets, want %d", len(out), n)
	}
	return out
}

// startRun uploads csvBody as a bulk run of kind on replica r and confirms
// its rows writes; it returns the run's id.
func (a *agent) startRun(r *replica, csrf, kind, csvBody string, writes int) int64 {
	a.t.Helper()
	var body strings.Builder
	mw := multipart.NewWriter(&body)
	mw.WriteField("_csrf", csrf)
	mw.WriteField("kind", kind)
	fw, _ := mw.CreateFormFile("file", "run.csv")
	io.WriteString(fw, csvBody)
	mw.Close()
	res, page := a.post(r.URL, "/bulk", strings.NewReader(body.String()), mw.FormDataContentType())
	m := runLocation.FindStringSubmatch(res.Header.Get("Location"))
	if m == nil {
		a.t.Fatalf("upload on %s: %d %q %.300s", r.URL, res.StatusCode, res.Header.Get("Location"), page)
	}
	res, _ = a.post(r.URL, "/bulk/runs/"+m[1]+"/confirm", strings.NewReader(url.Values{"_csrf": {csrf},
		"writes": {fmt.Sprint(writes)}}.Encode()), "application/x-www-form-urlencoded")
	if res.StatusCode != http.StatusSeeOther {
		a.t.Fatalf("confirm on %s: %d", r.URL, res.StatusCode)
	}
	var id int64
	fmt.Sscan(m[1], &id)
	return id
}
