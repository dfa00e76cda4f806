package handlers

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// upload posts a CSV as a file, like the browser's upload form.
func (s *signedIn) upload(kind, filename string, content []byte) response {
	s.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("_csrf", s.csrf)
	mw.WriteField("kind", kind)
	fw, _ := mw.CreateFormFile("file", filename)
	fw.Write(content)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, s.app.URL+"/bulk", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", s.app.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return s.do(req)
}

var runPath = regexp.MustCompile(`^/bulk/runs/(\d+)$`)

func runIDFrom(t *testing.T, r response) int64 {
	t.Helper()
	m := runPath.FindStringSubmatch(r.Location)
	if r.Status != http.StatusSeeOther || m == nil {
		t.Fatalf("upload: status %d location %q, want a redirect to the run: %.500s", r.Status, r.Location, r.Body)
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	return id
}

// ratingCSV is 20 rating rows for Bea's and Beau's solved tickets, three of
// them bad (unknown score, missing ticket, a user that is no email).
func ratingCSV() string {
	var b strings.Builder
	b.WriteString("email,ticket_id,score,comment\n")
	good := []struct {
		email  string
		ticket int64
	}{
		{sandbox.DemoBeaEmail, sandbox.TicketBeaSolved},
		{sandbox.DemoBeauEmail, sandbox.TicketBeauSolved},
		{sandbox.DemoBeauEmail, sandbox.TicketBeauSolved2},
		{sandbox.DemoBeaEmail, sandbox.TicketBeaReopened},
	}
	for i := 0; i < 17; i++ {
		g := good[i%len(good)]
		fmt.Fprintf(&b, "%s,%d,good,phone call %d\n", g.email, g.ticket, i)
	}
	b.WriteString("bea@example.com,105,great,typo in score\n")
	b.WriteString("bea@example.com,,good,no ticket\n")
	b.WriteString("not-an-email,105,good,bad user\n")
	return b.String()
}

func waitRunState(t *testing.T, app *testApp, id int64, states ...string) *store.Run {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		run, err := app.DB.FindRunByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range states {
			if run.State == s {
				return run
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	run, _ := app.DB.FindRunByID(context.Background(), id)
	c, _ := app.DB.RunCounts(context.Background(), id)
	t.Fatalf("run %d did not reach %v in 30s: state %s (%q), counts %+v", id, states, run.State, run.PausedReason, c)
	return nil
}

func TestBulkUploadPreviewConfirmResults(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	id := runIDFrom(t, s.upload("rate", "phone-ratings.csv", []byte(ratingCSV())))

	preview := s.get(fmt.Sprintf("/bulk/runs/%d", id))
	doc := preview.doc(t)
	if got := doc.Find(`[data-testid="count-invalid"]`).Text(); got != "3" {
		t.Errorf("preview invalid count %q, want 3", got)
	}
	if n := doc.Find(`[data-testid="first-error"]`).Length(); n != 3 {
		t.Errorf("%d first errors listed, want 3", n)
	}
	if !strings.Contains(doc.Find(`[data-testid="first-errors"]`).Text(), "Row 19") {
		t.Errorf("errors do not name their row numbers: %q", doc.Find(`[data-testid="first-errors"]`).Text())
	}
	confirm := doc.Find(`[data-testid="confirm"]`).Text()
	if !strings.Contains(confirm, "17 changes") {
		t.Errorf("confirm button %q does not say how many writes", confirm)
	}
	if len(app.Sandbox.Writes()) != 0 {
		t.Fatal("the preview wrote to Zendesk")
	}

	// A confirmation for a different count starts nothing.
	if r := s.act(fmt.Sprintf("/bulk/runs/%d/confirm", id), url.Values{"writes": {"16"}}); r.Status != http.StatusConflict {
		t.Errorf("stale confirmation: status %d, want 409", r.Status)
	}
	r := s.act(fmt.Sprintf("/bulk/runs/%d/confirm", id), url.Values{"writes": {"17"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("confirm: status %d: %.400s", r.Status, r.Body)
	}
	if r := s.act(fmt.Sprintf("/bulk/runs/%d/confirm", id), url.Values{"writes": {"0"}}); r.Status != http.StatusConflict {
		t.Errorf("second confirm: status %d, want 409", r.Status)
	}
	waitRunState(t, app, id, store.RunDone)

	page := s.get(fmt.Sprintf("/bulk/runs/%d", id)).doc(t)
	if got := page.Find(`[data-testid="count-done"]`).Text(); got != "17" {
		t.Errorf("done count %q, want 17", got)
	}
	writes := app.Sandbox.Writes()
	if len(writes) != 17 {
		t.Errorf("%d writes at Zendesk, want 17", len(writes))
	}
	for _, w := range writes {
		if w.ActorID != sandbox.DemoBeaID && w.ActorID != sandbox.DemoBeauID {
			t.Errorf("write recorded as user %d", w.ActorID)
		}
	}

	res := s.get(fmt.Sprintf("/bulk/runs/%d/results.csv", id))
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(res.Body, "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatalf("results CSV: %v", err)
	}
	if len(recs) != 21 {
		t.Fatalf("results CSV has %d records, want header + 20", len(recs))
	}
	outcome := slices.Index(recs[0], "outcome")
	if outcome < 0 {
		t.Fatalf("results CSV header %q has no outcome column", recs[0])
	}
	statuses := map[string]int{}
	for _, rec := range recs[1:] {
		statuses[rec[outcome]]++
	}
	if statuses["done"] != 17 || statuses["invalid"] != 3 {
		t.Errorf("result statuses %v, want 17 done and 3 invalid", statuses)
	}
	if n := countAudit(t, app, "rate"); n != 17 {
		t.Errorf("%d audit rows, want one per sent row (17)", n)
	}
}

func TestBulkUploadRefusesBadFilesWhole(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	big := bytes.Repeat([]byte("bea@example.com,105,good,padding padding padding padding\n"), 21<<20/56+10)
	huge := bytes.Repeat(big, 3) // far past the limit: refused before it is read
	for _, tc := range []struct {
		name    string
		content []byte
		status  int
		want    string
	}{
		{"empty", nil, http.StatusUnprocessableEntity, "Choose a CSV file"},
		{"header only", []byte("email,ticket_id,score\n"), http.StatusUnprocessableEntity, "no data rows"},
		{"not UTF-8", []byte("em\xe9il,ticket_id,score\nbea@example.com,105,good\n"), http.StatusUnprocessableEntity, "UTF-8"},
		{"21 MB", append([]byte("email,ticket_id,score,comment\n"), big...), http.StatusRequestEntityTooLarge, "MB"},
		{"63 MB", append([]byte("email,ticket_id,score,comment\n"), huge...), http.StatusRequestEntityTooLarge, "up to 20 MB"},
	} {
		r := s.upload("rate", tc.name+".csv", tc.content)
		if r.Status != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, r.Status, tc.status)
		}
		doc := r.doc(t)
		msg := doc.Find(`[data-testid="upload-error"]`).Text() + doc.Find(`[data-testid="error-message"]`).Text()
		if !strings.Contains(strings.ToLower(msg), strings.ToLower(tc.want)) {
			t.Errorf("%s: message %q lacks %q", tc.name, msg, tc.want)
		}
	}
	if runs, total, err := app.DB.ListRuns(context.Background(), store.RunFilter{}); err != nil || total != 0 {
		t.Errorf("refused uploads left %d runs behind (%v, %v)", total, runs, err)
	}
}

// A form past the limit for forms (not a file) is not called a file, and
// nothing is done.
func TestLongFormIsRefusedAsAForm(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	s.mustPick(sandbox.DemoBeaEmail)
	before := len(app.Sandbox.Writes())
	r := s.act(ticketPath(sandbox.TicketBeaOpen, "comment"), url.Values{"body": {strings.Repeat("long ", 600_000)}})
	if r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("a 3 MB comment: status %d, want 413", r.Status)
	}
	doc := r.doc(t)
	if h := doc.Find("h1").Text(); !strings.Contains(h, "form is too large") {
		t.Errorf("heading %q, want it to say the form is too large", h)
	}
	if msg := doc.Find(`[data-testid="error-message"]`).Text(); !strings.Contains(msg, "Shorten the text") || strings.Contains(msg, "file") {
		t.Errorf("message %q should say to shorten the text, and not speak of a file", msg)
	}
	if n := len(app.Sandbox.Writes()) - before; n != 0 {
		t.Errorf("a refused form made %d writes", n)
	}
}

// An upload the server cannot spool to its temporary storage (a full disk,
// here a temporary directory that does not exist) is the server's failure,
// said as such, not "the upload did not arrive whole"; nothing is stored.
// Not parallel: it sets TMPDIR for the process.
func TestUploadTheServerCannotStoreSaysSo(t *testing.T) {
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "gone"))
	// Past uploadMemory, so the parser writes it to a temporary file.
	content := "email,ticket_id,score,comment\n" + strings.Repeat("bea@example.com,105,good,padding padding padding\n", 8000)
	r := s.upload("rate", "big.csv", []byte(content))
	if r.Status != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", r.Status)
	}
	doc := r.doc(t)
	if h := doc.Find("h1").Text(); !strings.Contains(h, "could not store the upload") {
		t.Errorf("heading %q", h)
	}
	if msg := doc.Find(`[data-testid="error-message"]`).Text(); !strings.Contains(msg, "disk space") {
		t.Errorf("message %q should name the likely cause", msg)
	}
	if _, total, err := app.DB.ListRuns(context.Background(), store.RunFilter{}); err != nil || total != 0 {
		t.Errorf("an upload that could not be stored left %d runs (%v)", total, err)
	}
}

func TestBulkPastedRowsAndRetryFailed(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	pasted := fmt.Sprintf("email;ticket_id;score\n%s;%d;good\n%s;%d;good\n", sandbox.DemoBeaEmail, sandbox.TicketBeaSolved, sandbox.DemoBeaEmail, sandbox.TicketBeaClosed)
	r := s.act("/bulk", url.Values{"kind": {"rate"}, "pasted": {pasted}})
	id := runIDFrom(t, r)
	s.act(fmt.Sprintf("/bulk/runs/%d/confirm", id), url.Values{"writes": {"2"}})
	waitRunState(t, app, id, store.RunDone)
	counts, err := app.DB.RunCounts(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if counts.Done != 1 || counts.Failed != 1 {
		t.Fatalf("counts %+v, want 1 done (solved) and 1 failed (closed)", counts)
	}
	failed, _, _ := app.DB.ListRunRows(context.Background(), id, store.RowFilter{States: []string{store.RowFailed}})
	if len(failed) != 1 || !strings.Contains(failed[0].Error, "closed") {
		t.Errorf("failed row's reason: %+v", failed)
	}
	// The closed ticket's failure would not pass by itself: the default
	// retry makes no run and says why; retrying all of them does.
	if r := s.act(fmt.Sprintf("/bulk/runs/%d/retry", id), url.Values{}); r.Status != http.StatusConflict ||
		!strings.Contains(r.Body, "may pass by itself") {
		t.Errorf("default retry of a permanent failure: status %d, want 409 saying why: %.300s", r.Status, r.Body)
	}
	others := s.get(fmt.Sprintf("/bulk/runs/%d", id)).doc(t)
	if li := others.Find(`[data-testid="retry-other"]`).Text(); !strings.Contains(li, "Row 3") || !strings.Contains(li, "closed") {
		t.Errorf("the finished run does not list the closed row as one that would fail again: %q", li)
	}
	if w := others.Find(`[data-testid="retry-others"] strong`).Text(); !strings.Contains(w, "1 failed row would fail again as it stands") {
		t.Errorf("the warning over the rows that would fail again reads %q", w)
	}
	if others.Find(`[data-testid="retry"]`).Length() != 0 {
		t.Error("the run offers to retry rows that may pass, but it has none")
	}
	retry := s.act(fmt.Sprintf("/bulk/runs/%d/retry", id), url.Values{"rows": {"all"}})
	newID := runIDFrom(t, retry)
	if newID == id {
		t.Fatal("retry did not start a new run")
	}
	nc, _ := app.DB.RunCounts(context.Background(), newID)
	if nc.Total != 1 || nc.Pending != 1 {
		t.Errorf("retry run counts %+v, want the one failed row pending", nc)
	}
	// Asked for again (a second click, another tab) while that retry has
	// not ended: no second run, which would send the same rows again.
	again := s.act(fmt.Sprintf("/bulk/runs/%d/retry", id), url.Values{"rows": {"all"}})
	if again.Status != http.StatusSeeOther || again.Location != fmt.Sprintf("/bulk/runs/%d", newID) {
		t.Errorf("a second retry: %d to %q, want 303 to the first retry, run %d", again.Status, again.Location, newID)
	} else if n := s.follow(again).doc(t).Find(`[data-testid="notice"]`).Text(); !strings.Contains(n, "no second run") {
		t.Errorf("the second retry's notice says %q", n)
	}
	hist := s.get("/bulk").doc(t)
	if hist.Find(`[data-testid="runs"] tbody tr`).Length() != 2 {
		t.Errorf("run history does not list both runs")
	}
}

func TestBulkProgressStreamsEvents(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	id := runIDFrom(t, s.upload("rate", "r.csv", []byte(ratingCSV())))
	s.act(fmt.Sprintf("/bulk/runs/%d/confirm", id), url.Values{"writes": {"17"}})
	ev := s.get(fmt.Sprintf("/bulk/runs/%d/events", id))
	if ct := ev.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("content type %q", ct)
	}
	if !strings.Contains(ev.Body, "event: progress") || !strings.Contains(ev.Body, `"finished":true`) || !strings.Contains(ev.Body, `"done":17`) {
		t.Errorf("event stream did not report the run to its end: %.600s", ev.Body)
	}
}

func TestBulkMappingFormFixesColumns(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	content := fmt.Sprintf("who,case,verdict\n%s,%d,good\n%s,%d,bad\n", sandbox.DemoBeaEmail, sandbox.TicketBeaSolved, sandbox.DemoBeauEmail, sandbox.TicketBeauSolved)
	id := runIDFrom(t, s.upload("rate", "odd-headers.csv", []byte(content)))
	page := s.get(fmt.Sprintf("/bulk/runs/%d", id)).doc(t)
	if msg := page.Find(`[data-testid="run-error"]`).Text(); !strings.Contains(msg, "No column of this file is chosen for end user") {
		t.Errorf("missing columns not explained: %q", msg)
	}
	if page.Find(`[data-testid="confirm"]`).Length() != 0 {
		t.Error("a run with no sendable row offers to confirm")
	}
	r := s.act(fmt.Sprintf("/bulk/runs/%d/mapping", id), url.Values{"map_user": {"0"}, "map_ticket": {"1"}, "map_score": {"2"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("mapping: status %d: %.400s", r.Status, r.Body)
	}
	page = s.get(fmt.Sprintf("/bulk/runs/%d", id)).doc(t)
	if got := page.Find(`[data-testid="count-invalid"]`).Text(); got != "0" {
		t.Errorf("after mapping, %s invalid rows, want 0", got)
	}
	if !strings.Contains(page.Find(`[data-testid="confirm"]`).Text(), "2 changes") {
		t.Errorf("after mapping the run should offer to send 2 changes: %q", page.Find(`[data-testid="confirm"]`).Text())
	}
	if sel := page.Find(`[data-testid="map-ticket"] option[selected]`).Text(); sel != "case" {
		t.Errorf("mapping form shows ticket column %q, want case", sel)
	}
}

func TestBulkPreflightMarksRowsThatWouldFail(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	content := fmt.Sprintf("email,ticket_id,score\n%s,%d,good\n%s,%d,good\n%s,%d,good\n",
		sandbox.DemoBeaEmail, sandbox.TicketBeaSolved, sandbox.DemoBeaEmail, sandbox.TicketBeaClosed, sandbox.DemoBeaEmail, sandbox.TicketCarlosSolved)
	id := runIDFrom(t, s.upload("rate", "pf.csv", []byte(content)))
	r := s.act(fmt.Sprintf("/bulk/runs/%d/preflight", id), url.Values{})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("preflight: status %d: %.400s", r.Status, r.Body)
	}
	for _, w := range app.Sandbox.Writes() {
		t.Errorf("the pre-flight wrote to Zendesk: %s %s", w.Method, w.Path)
	}
	page := s.follow(r).doc(t)
	if notice := page.Find(`[data-testid="notice"]`).Text(); !strings.Contains(notice, "3 rows") || !strings.Contains(notice, "2 would be refused") {
		t.Errorf("notice %q", notice)
	}
	if page.Find(`[data-testid="first-errors"]`).Length() != 0 {
		t.Error("valid rows are listed as rows with errors in the file")
	}
	errs := page.Find(`[data-testid="first-refusals"]`).Text()
	if !strings.Contains(errs, "closed") || !strings.Contains(errs, "Row 4") || page.Find(`[data-testid="first-refusal"]`).Length() != 2 {
		t.Errorf("rows that would fail are not listed with their reason: %q", errs)
	}
}

func TestBulkCancelSkipsRowsNotYetSent(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	var b strings.Builder
	b.WriteString("email,ticket_id,score,comment\n")
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&b, "%s,%d,good,row %d\n", sandbox.DemoBeaEmail, sandbox.TicketBeaSolved, i)
	}
	id := runIDFrom(t, s.upload("rate", "cancel.csv", []byte(b.String())))
	app.Sandbox.SetFaults(sandbox.Faults{Latency: 300 * time.Millisecond})
	s.act(fmt.Sprintf("/bulk/runs/%d/confirm", id), url.Values{"writes": {"60"}})
	r := s.act(fmt.Sprintf("/bulk/runs/%d/cancel", id), url.Values{})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("cancel: status %d: %.300s", r.Status, r.Body)
	}
	run := waitRunState(t, app, id, store.RunCancelled)
	// Rows in flight when the run was cancelled still end in one state.
	deadline := time.Now().Add(30 * time.Second)
	var c store.RunCounts
	for time.Now().Before(deadline) {
		c, _ = app.DB.RunCounts(context.Background(), id)
		if c.Remaining() == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c.Remaining() != 0 || c.Done+c.Failed+c.Skipped != 60 {
		t.Errorf("after cancel: %+v, want every row done, failed or skipped", c)
	}
	if c.Skipped == 0 {
		t.Errorf("cancel skipped no row (%+v)", c)
	}
	if writes := len(app.Sandbox.Writes()); writes != c.Done+c.Failed {
		t.Errorf("%d writes at Zendesk for %d rows sent", writes, c.Done+c.Failed)
	}
	page := s.get(fmt.Sprintf("/bulk/runs/%d", id)).doc(t)
	if !strings.Contains(page.Find(`[data-testid="cancelled-by"]`).Text(), "Cancelled by Ada Admin") {
		t.Errorf("the run page does not say who cancelled it (state %s, reason %q)", run.State, run.PausedReason)
	}
}

func TestPausedRunResumesAfterLoggingInAgain(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	id := runIDFrom(t, s.upload("rate", "p.csv", []byte(ratingCSV())))
	// Zendesk stops honouring the login before the run starts.
	grant := onlyGrantOf(t, app, 1)
	app.Sandbox.SetFaults(sandbox.Faults{})
	if err := app.Flow.Revoke(context.Background(), grant.Token.AccessToken); err != nil {
		t.Fatal(err)
	}
	s.act(fmt.Sprintf("/bulk/runs/%d/confirm", id), url.Values{"writes": {"17"}})
	waitRunState(t, app, id, store.RunPaused)
	page := s.get(fmt.Sprintf("/bulk/runs/%d", id))
	doc := page.doc(t)
	form := doc.Find(`[data-testid="paused"] form[data-testid="reauth"]`)
	action, _ := form.Attr("action")
	method, _ := form.Attr("method")
	returnTo, _ := form.Find(`input[name="return_to"]`).Attr("value")
	if !strings.Contains(doc.Find(`[data-testid="paused"]`).Text(), "Log in again") || action != "/login" || method != "post" {
		t.Fatalf("paused run page does not offer to log in again with a POST: %q action %q method %q", doc.Find(`[data-testid="paused"]`).Text(), action, method)
	}
	// Logging in again (from the form, while the old session cookie is
	// still there) resumes the run with the new grant.
	r := s.act("/login", url.Values{"return_to": {returnTo}})
	if r.Status != http.StatusFound {
		t.Fatalf("log in again: status %d, want a redirect to Zendesk", r.Status)
	}
	u, _ := url.Parse(r.Location)
	cb := s.consent(u, sandbox.DemoAdminEmail, "allow")
	s.follow(s.get(cb))
	waitRunState(t, app, id, store.RunDone)
	c, _ := app.DB.RunCounts(context.Background(), id)
	if c.Done != 17 {
		t.Errorf("after resuming: %+v, want 17 done", c)
	}
}

// TestBulkRunPageSaysRowsAreBeingQueued confirms a run whose rows the
// background queuer has not reached yet (its job is left out, as if it
// were still busy with the batches before): the page and the progress
// stream say "Queuing rows… 0 of 17", and it goes away (hidden, empty) once
// they are queued.
func TestBulkRunPageSaysRowsAreBeingQueued(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	id := runIDFrom(t, s.upload("rate", "r.csv", []byte(ratingCSV())))
	if err := app.DB.StartRun(t.Context(), id, store.Actor{ID: sandbox.DemoAdminID, Name: "Ada Admin"}, 0,
		func(*sql.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	page := s.get(fmt.Sprintf("/bulk/runs/%d", id)).doc(t)
	if got := strings.TrimSpace(page.Find("[data-testid=queuing]").Text()); !strings.HasPrefix(got, "Queuing rows… 0 of 17.") {
		t.Errorf("queuing note = %q, want it to say 0 of 17 rows queued", got)
	}
	if _, hidden := page.Find("[data-testid=queuing]").Attr("hidden"); hidden {
		t.Error("the queuing note is hidden while rows are being queued")
	}
	// The stream goes on while the run does: read its first event.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/bulk/runs/%d/events", app.URL, id), nil)
	res, err := s.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	first, err := bufio.NewReader(res.Body).ReadString('}')
	if err != nil || !strings.Contains(first, `"queuing":"Queuing rows… 0 of 17.`) {
		t.Errorf("the progress stream does not say the rows are being queued: %q, %v", first, err)
	}

	// Queue every row (no job is inserted, so none is sent): the note is
	// left empty and hidden, for the live page to show again if need be.
	if _, err := app.DB.QueueBatch(t.Context(), id, 0, 100, func(store.RunRow) string { return "" }, map[string]int{},
		func(*sql.Tx, []int) error { return nil }); err != nil {
		t.Fatal(err)
	}
	note := s.get(fmt.Sprintf("/bulk/runs/%d", id)).doc(t).Find("[data-testid=queuing]")
	if _, hidden := note.Attr("hidden"); !hidden || strings.TrimSpace(note.Text()) != "" {
		t.Errorf("once every row is queued the queuing note reads %q (hidden %v); want it empty and hidden", note.Text(), hidden)
	}
}

// TestRunRowsFragmentIsTheRowsSectionAlone: the run page names where its
// rows section can be fetched on its own (for the tab and page shown), and
// that address answers with the rows section only — its tabs with the live
// counts' names, and the rows — so the page's script can keep the table in
// step with the counters while a run goes.
func TestRunRowsFragmentIsTheRowsSectionAlone(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	id := runIDFrom(t, s.upload("rate", "fragment.csv", []byte(ratingCSV())))
	page := s.get(fmt.Sprintf("/bulk/runs/%d?rows=invalid", id)).doc(t)
	url, ok := page.Find(`[data-testid="rows-section"]`).Attr("data-rows-url")
	if want := fmt.Sprintf("/bulk/runs/%d?page=1&rows=invalid&fragment=rows", id); !ok || url != want {
		t.Fatalf("rows section's data-rows-url = %q, want %q", url, want)
	}
	r := s.get(url)
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s: %d", url, r.Status)
	}
	frag := r.doc(t)
	if n := frag.Find(`[data-testid="rows-section"]`).Length(); n != 1 {
		t.Errorf("the fragment has %d rows sections, want 1", n)
	}
	if n := frag.Find(`[data-testid="run"], header, footer`).Length(); n != 0 {
		t.Errorf("the fragment carries %d elements of the rest of the page, want the rows section alone", n)
	}
	if got := frag.Find(`[data-testid="tab-invalid"]`).AttrOr("aria-current", ""); got != "page" {
		t.Error("the fragment lost the tab being shown")
	}
	full := s.get(fmt.Sprintf("/bulk/runs/%d", id)).doc(t)
	if a, b := full.Find(`[data-testid="rows"] tbody tr`).Length(), s.get(fmt.Sprintf("/bulk/runs/%d?fragment=rows", id)).doc(t).Find(`[data-testid="rows"] tbody tr`).Length(); a == 0 || a != b {
		t.Errorf("the page shows %d rows and its fragment %d, want the same, more than none", a, b)
	}
}
