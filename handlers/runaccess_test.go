package handlers

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// Security promise 11: a bulk run belongs to the admin who uploaded it. These
// tests sign in two sandbox admins at once, Ada (who uploads) and Ola.

func mustFindRun(t *testing.T, app *testApp, id int64) *store.Run {
	t.Helper()
	run, err := app.DB.FindRunByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func mustRunCounts(t *testing.T, app *testApp, id int64) store.RunCounts {
	t.Helper()
	c, err := app.DB.RunCounts(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// zendeskCalls counts every API call the sandbox has answered.
func zendeskCalls(app *testApp) int {
	n := 0
	for _, c := range app.Sandbox.Stats().Calls {
		n += c
	}
	return n
}

// runAuditEvents are the audit events of one action about run id.
func runAuditEvents(t *testing.T, app *testApp, action string, id int64) []store.AuditEvent {
	t.Helper()
	var out []store.AuditEvent
	for _, e := range auditEventsOf(t, app.DB, action) {
		if e.RunID == id {
			out = append(out, e)
		}
	}
	return out
}

// checkRefusedAsNotOwner asserts a 403 page that names the owner, says why
// and offers the way back to the run.
func checkRefusedAsNotOwner(t *testing.T, r response, id int64, verb string) {
	t.Helper()
	if r.Status != http.StatusForbidden {
		t.Fatalf("status %d, want 403: %.500s", r.Status, r.Body)
	}
	doc := r.doc(t)
	msg := doc.Find(`[data-testid="error-message"]`).Text()
	for _, want := range []string{"This run belongs to Ada Admin.", "Only the admin who uploaded a run can " + verb, "Nothing was changed", "Ask Ada Admin"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the refusal says %q; want it to contain %q", msg, want)
		}
	}
	if h := doc.Find(`[data-testid="error"] h1`).Text(); !strings.Contains(h, "Ada Admin") {
		t.Errorf("the refusal's heading %q does not name the run's owner", h)
	}
	if href, _ := doc.Find(`[data-testid="error-action"]`).Attr("href"); href != fmt.Sprintf("/bulk/runs/%d", id) {
		t.Errorf("the refusal leads to %q, want back to the run", href)
	}
}

func TestBulkOnlyTheOwnerChangesARun(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	ada := loginAs(t, app, sandbox.DemoAdminEmail)
	ola := loginAs(t, app, sandbox.DemoAdmin2Email)
	id := runIDFrom(t, ada.upload("rate", "phone-ratings.csv", []byte(ratingCSV())))
	runURL := fmt.Sprintf("/bulk/runs/%d", id)
	before := mustFindRun(t, app, id)
	countsBefore := mustRunCounts(t, app, id)
	calls := zendeskCalls(app)

	// Ola may look, and is told why nothing on the page changes the run.
	page := ola.get(runURL)
	if page.Status != http.StatusOK {
		t.Fatalf("Ola opens Ada's run: status %d", page.Status)
	}
	doc := page.doc(t)
	own := ada.get(runURL).doc(t)
	for _, sel := range []string{"confirm", "preflight", "mapping"} {
		if doc.Find(`[data-testid="`+sel+`"]`).Length() != 0 {
			t.Errorf("Ada's run offers Ola the %s form", sel)
		}
		// The selectors are the forms' own: Ada, the owner, has them
		// (the mapping form shows only when columns are missing).
		if sel != "mapping" && own.Find(`[data-testid="`+sel+`"]`).Length() == 0 {
			t.Errorf("Ada's own run does not offer her the %s form; the check on Ola's page proves nothing", sel)
		}
	}
	if note := doc.Find(`[data-testid="not-owner"]`).Text(); !strings.Contains(note, "belongs to Ada Admin") || !strings.Contains(note, "confirm it") {
		t.Errorf("the page does not tell Ola whose run it is and why she cannot confirm it: %q", note)
	}
	if by := doc.Find(`[data-testid="uploaded-by"]`).Text(); !strings.Contains(by, "prepared by Ada Admin") {
		t.Errorf("the page names the uploader as %q", by)
	}
	if r := ola.get(runURL + "/results.csv"); r.Status != http.StatusOK || !strings.Contains(r.Body, "email,ticket_id") {
		t.Errorf("Ola downloads the results: status %d", r.Status)
	}

	for _, tc := range []struct {
		name, path, verb, audit string
		form                    url.Values
	}{
		// A mapping that, if it were applied, would make every row invalid.
		{"mapping", "/mapping", "change its columns", "bulk_mapping", url.Values{"map_user": {"1"}, "map_ticket": {"0"}, "map_score": {"3"}}},
		{"pre-flight", "/preflight", "check its rows with Zendesk", "bulk_preflight", url.Values{}},
		{"confirm", "/confirm", "confirm it", "bulk_confirm", url.Values{"writes": {"17"}}},
		// Cancelling is a brake for a run under way; a preview is not.
		{"cancel a preview", "/cancel", "cancel it before it has started", "bulk_cancel", url.Values{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkRefusedAsNotOwner(t, ola.act(runURL+tc.path, tc.form), id, tc.verb)
			run := mustFindRun(t, app, id)
			if diff := cmp.Diff(before, run); diff != "" {
				t.Errorf("Ola's refused %s changed the run (-before +after):\n%s", tc.name, diff)
			}
			if diff := cmp.Diff(countsBefore, mustRunCounts(t, app, id)); diff != "" {
				t.Errorf("Ola's refused %s changed the rows (-before +after):\n%s", tc.name, diff)
			}
			events := runAuditEvents(t, app, tc.audit, id)
			if len(events) != 1 || events[0].AdminID != sandbox.DemoAdmin2ID || events[0].AdminName != "Ola Owner" ||
				events[0].Outcome != store.OutcomeRefused || !strings.Contains(events[0].Detail, "belongs to Ada Admin") {
				t.Errorf("audit events %s of run %d: %+v; want one refused event naming Ola", tc.audit, id, events)
			}
		})
	}
	if n := zendeskCalls(app) - calls; n != 0 {
		t.Errorf("Ola's refused attempts made %d Zendesk calls: %v", n, app.Sandbox.Stats().Calls)
	}
	if w := app.Sandbox.Writes(); len(w) != 0 {
		t.Errorf("Ola's refused attempts wrote to Zendesk: %+v", w)
	}

	// Ada's own confirmation goes through: nothing was queued before it.
	if r := ada.act(runURL+"/confirm", url.Values{"writes": {"17"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("Ada confirms her run: status %d: %.400s", r.Status, r.Body)
	}
	waitRunState(t, app, id, store.RunDone)
	// Confirming again (a second tab) is told the run already started, not
	// that it changed, although none of its rows is pending any more.
	if r := ada.act(runURL+"/confirm", url.Values{"writes": {"17"}}); r.Status != http.StatusConflict ||
		r.doc(t).Find(`[data-testid="error"] h1`).Text() != "Already started" {
		t.Errorf("Ada confirms her finished run again: status %d: %.400s", r.Status, r.Body)
	}
	run := mustFindRun(t, app, id)
	if run.ConfirmedBy.ID != sandbox.DemoAdminID {
		t.Errorf("run confirmed by %+v, want Ada", run.ConfirmedBy)
	}
	for _, w := range app.Sandbox.Writes() {
		if w.TokenUserID != sandbox.DemoAdminID {
			t.Errorf("a write of Ada's run went out on user %d's sign-in", w.TokenUserID)
		}
	}
	events := runAuditEvents(t, app, "bulk_confirm", id)
	var ok []store.AuditEvent
	for _, e := range events {
		if e.Outcome == store.OutcomeOK {
			ok = append(ok, e)
		}
	}
	if len(ok) != 1 || ok[0].AdminID != sandbox.DemoAdminID || ok[0].AdminName != "Ada Admin" ||
		!strings.Contains(ok[0].Detail, fmt.Sprintf("Confirmed run #%d (17 rows to send)", id)) {
		t.Errorf("confirm audit events %+v; want one ok event naming Ada", ok)
	}
	if doc := ada.get(runURL).doc(t); !strings.Contains(doc.Find(`[data-testid="confirmed-by"]`).Text(), "Confirmed by Ada Admin") {
		t.Errorf("the run page does not say who confirmed it: %q", doc.Find(`[data-testid="confirmed-by"]`).Text())
	}
}

func TestBulkOnlyTheOwnerRetriesARun(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	ada := loginAs(t, app, sandbox.DemoAdminEmail)
	ola := loginAs(t, app, sandbox.DemoAdmin2Email)
	pasted := fmt.Sprintf("email;ticket_id;score\n%s;%d;good\n%s;%d;good\n", sandbox.DemoBeaEmail, sandbox.TicketBeaSolved, sandbox.DemoBeaEmail, sandbox.TicketBeaClosed)
	id := runIDFrom(t, ada.act("/bulk", url.Values{"kind": {"rate"}, "pasted": {pasted}}))
	runURL := fmt.Sprintf("/bulk/runs/%d", id)
	ada.act(runURL+"/confirm", url.Values{"writes": {"2"}})
	waitRunState(t, app, id, store.RunDone)
	if c := mustRunCounts(t, app, id); c.Failed != 1 {
		t.Fatalf("counts %+v, want the closed ticket's row failed", c)
	}

	doc := ola.get(runURL).doc(t)
	if doc.Find(`[data-testid="retry"]`).Length() != 0 {
		t.Error("Ada's finished run offers Ola to retry its failed rows")
	}
	if note := doc.Find(`[data-testid="not-owner"]`).Text(); !strings.Contains(note, "Ada Admin") || !strings.Contains(note, "retry its failed rows") {
		t.Errorf("the page does not tell Ola why she cannot retry: %q", note)
	}
	checkRefusedAsNotOwner(t, ola.act(runURL+"/retry", url.Values{}), id, "retry its failed rows")
	if _, total, err := app.DB.ListRuns(context.Background(), store.RunFilter{}); err != nil || total != 1 {
		t.Errorf("after Ola's refused retry there are %d runs (%v), want Ada's one", total, err)
	}
	if ev := runAuditEvents(t, app, "bulk_retry", id); len(ev) != 1 || ev[0].AdminID != sandbox.DemoAdmin2ID || ev[0].Outcome != store.OutcomeRefused {
		t.Errorf("retry audit events after Ola's attempt: %+v; want one refused event naming Ola", ev)
	}

	// Ada retries (all failed rows: the closed ticket's failure would not
	// pass by itself): a new run of hers, and an audit event naming her.
	newID := runIDFrom(t, ada.act(runURL+"/retry", url.Values{"rows": {"all"}}))
	if retry := mustFindRun(t, app, newID); retry.AdminID != sandbox.DemoAdminID || retry.RetryOf != id {
		t.Errorf("the retry run is %+v, want Ada's retry of run %d", retry, id)
	}
	var ok []store.AuditEvent
	for _, e := range runAuditEvents(t, app, "bulk_retry", id) {
		if e.Outcome == store.OutcomeOK {
			ok = append(ok, e)
		}
	}
	want := fmt.Sprintf("Retried the 1 failed row of run #%d as run #%d", id, newID)
	if len(ok) != 1 || ok[0].AdminID != sandbox.DemoAdminID || ok[0].AdminName != "Ada Admin" || !strings.Contains(ok[0].Detail, want) {
		t.Errorf("retry audit events %+v; want one ok event naming Ada: %q", ok, want)
	}
}

// firstEvent reads a run's event stream up to its first event.
func (s *signedIn) firstEvent(path string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.app.URL+path, nil)
	res, err := s.c.Do(req)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	var b strings.Builder
	br := bufio.NewReader(res.Body)
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if line == "\n" || err != nil {
			return b.String()
		}
	}
}

func TestBulkAnyAdminMayCancelARunningRun(t *testing.T) {
	t.Parallel()
	// A write may be held for as long as the test needs (a quarter of this).
	app := newTestApp(t, testAppOptions{RescueAfter: time.Minute})
	ada := loginAs(t, app, sandbox.DemoAdminEmail)
	ola := loginAs(t, app, sandbox.DemoAdmin2Email)
	// 60 ratings of one ticket go one after another: while Zendesk holds
	// the answer to the first, exactly one row is in flight.
	var b strings.Builder
	b.WriteString("email,ticket_id,score,comment\n")
	for i := range 60 {
		fmt.Fprintf(&b, "%s,%d,good,row %d\n", sandbox.DemoBeaEmail, sandbox.TicketBeaSolved, i)
	}
	id := runIDFrom(t, ada.upload("rate", "cancel.csv", []byte(b.String())))
	runURL := fmt.Sprintf("/bulk/runs/%d", id)
	gate := sandbox.NewGate(nil)
	app.Sandbox.SetHooks(sandbox.Hooks{AfterWrite: gate.AfterWrite})
	t.Cleanup(gate.Release)

	if r := ada.act(runURL+"/confirm", url.Values{"writes": {"60"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("Ada confirms: status %d: %.400s", r.Status, r.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := gate.WaitHeld(ctx, 1); err != nil {
		t.Fatalf("no write reached Zendesk: %v", err)
	}

	// Ola sees the cancel button on Ada's running run, and uses it.
	if ola.get(runURL).doc(t).Find(`[data-testid="cancel"]`).Length() != 1 {
		t.Error("Ada's running run offers Ola no cancel button")
	}
	r := ola.act(runURL+"/cancel", url.Values{})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("Ola cancels Ada's run: status %d: %.400s", r.Status, r.Body)
	}
	notice := ola.follow(r).doc(t).Find(`[data-testid="notice"]`).Text()
	for _, want := range []string{"59 rows not yet sent were skipped", "1 row was already on its way to Zendesk", "its result shows here when Zendesk answers"} {
		if !strings.Contains(notice, want) {
			t.Errorf("the cancel notice says %q; want %q", notice, want)
		}
	}

	// While the row is in flight, the page and its live stream say so.
	doc := ada.get(runURL).doc(t)
	cancelling := doc.Find(`[data-testid="cancelling"]`)
	if _, hidden := cancelling.Attr("hidden"); hidden || !strings.Contains(cancelling.Text(), "Cancelling… 1 row still being sent") {
		t.Errorf("the cancelled run with a row in flight shows %q (hidden %v); want Cancelling… 1 row still being sent", cancelling.Text(), hidden)
	}
	if doc.Find(`[data-testid="run-finished"]`).Length() != 0 || doc.Find(`[data-testid="run"][data-active]`).Length() != 1 {
		t.Error("the run page calls the run finished (or stops following it) while a row is still being sent")
	}
	if doc.Find(`[data-testid="cancel"]`).Length() != 0 {
		t.Error("the cancelled run still offers to cancel it")
	}
	if ev := ada.firstEvent(runURL + "/events"); !strings.Contains(ev, `"cancelling":"Cancelling… 1 row still being sent`) ||
		!strings.Contains(ev, `"finished":false`) || !strings.Contains(ev, `"cancellable":false`) {
		t.Errorf("the progress event while a row is in flight: %s", ev)
	}

	gate.Release()
	deadline := time.Now().Add(30 * time.Second)
	c := mustRunCounts(t, app, id)
	for c.InFlight+c.Remaining() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		c = mustRunCounts(t, app, id)
	}
	if c.Done != 1 || c.Skipped != 59 || c.InFlight != 0 {
		t.Errorf("after the held write ended: %+v, want 1 done and 59 skipped", c)
	}
	run := mustFindRun(t, app, id)
	if run.State != store.RunCancelled || run.CancelledBy.ID != sandbox.DemoAdmin2ID || run.ConfirmedBy.ID != sandbox.DemoAdminID {
		t.Errorf("run %s, confirmed by %+v, cancelled by %+v; want cancelled by Ola after Ada confirmed", run.State, run.ConfirmedBy, run.CancelledBy)
	}

	doc = ada.get(runURL).doc(t)
	if got := doc.Find(`[data-testid="cancelled-by"]`).Text(); !strings.Contains(got, "Cancelled by Ola Owner") {
		t.Errorf("Ada's page says %q, want Cancelled by Ola Owner", got)
	}
	if got := doc.Find(`[data-testid="confirmed-by"]`).Text(); !strings.Contains(got, "Confirmed by Ada Admin") {
		t.Errorf("Ada's page says %q, want Confirmed by Ada Admin", got)
	}
	if doc.Find(`[data-testid="cancelling"]`).Length() != 0 || doc.Find(`[data-testid="run-finished"]`).Length() != 1 {
		t.Error("once the last row ended the page still says Cancelling… instead of the final counts")
	}

	confirms, cancels := runAuditEvents(t, app, "bulk_confirm", id), runAuditEvents(t, app, "bulk_cancel", id)
	if len(confirms) != 1 || confirms[0].AdminID != sandbox.DemoAdminID || confirms[0].Outcome != store.OutcomeOK {
		t.Errorf("confirm audit events %+v; want one naming Ada", confirms)
	}
	want := fmt.Sprintf("Cancelled run #%d: 59 rows skipped, 1 being sent", id)
	if len(cancels) != 1 || cancels[0].AdminID != sandbox.DemoAdmin2ID || cancels[0].AdminName != "Ola Owner" ||
		cancels[0].Outcome != store.OutcomeOK || cancels[0].Detail != want {
		t.Errorf("cancel audit events %+v; want one naming Ola: %q", cancels, want)
	}

	// A second cancel finds the run ended and says so.
	if r := ola.act(runURL+"/cancel", url.Values{}); r.Status != http.StatusConflict ||
		!strings.Contains(r.doc(t).Find(`[data-testid="error-message"]`).Text(), "nothing left to cancel") {
		t.Errorf("cancelling an ended run: status %d: %.300s", r.Status, r.Body)
	}
}

func TestBulkRunRoutesOfMissingRuns(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	for _, r := range []response{
		s.get("/bulk/runs/424242"),
		s.get("/bulk/runs/abc"),
		s.get("/bulk/runs/424242/results.csv"),
		s.act("/bulk/runs/424242/confirm", url.Values{"writes": {"1"}}),
		s.act("/bulk/runs/424242/cancel", url.Values{}),
	} {
		if r.Status != http.StatusNotFound || r.doc(t).Find(`[data-testid="error"] h1`).Text() != "No such run" {
			t.Errorf("status %d, heading %q; want 404 No such run", r.Status, r.doc(t).Find(`[data-testid="error"] h1`).Text())
		}
	}
}

// TestPausedRunOffersLogInAgainOnlyToItsOwner: a run paused on a dead
// sign-in resumes only with its owner's new sign-in. Another admin gets no
// "Log in again" (it would only end their own session) but is told whose
// sign-in the run waits for; the owner gets the button.
func TestPausedRunOffersLogInAgainOnlyToItsOwner(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	ada := loginAs(t, app, sandbox.DemoAdminEmail)
	id := runIDFrom(t, ada.upload("rate", "paused.csv", []byte(ratingCSV())))
	if _, err := app.DB.SetRunState(t.Context(), id, []string{store.RunPreview}, store.RunPaused,
		"Your Zendesk sign-in expired or was revoked. Log in again to continue."); err != nil {
		t.Fatal(err)
	}
	page := fmt.Sprintf("/bulk/runs/%d", id)
	if d := ada.get(page).doc(t); d.Find(`[data-testid="paused"] [data-testid="reauth"]`).Length() != 1 {
		t.Error("the owner of the paused run is not offered Log in again")
	}
	ola := loginAs(t, app, sandbox.DemoAdmin2Email)
	d := ola.get(page).doc(t)
	if d.Find(`[data-testid="reauth"]`).Length() != 0 {
		t.Error("another admin is offered Log in again on a run only its owner's sign-in can resume")
	}
	if got := d.Find(`[data-testid="paused"]`).Text(); !strings.Contains(got, "waits for Ada Admin to log in again") {
		t.Errorf("another admin reads %q, want whose sign-in the run waits for", strings.TrimSpace(got))
	}
}

// TestRowsFragmentLeavesTheNoticeForThePage: the rows section fetched in
// the background while a run goes must not take the one-time notice meant
// for the next page the admin opens.
func TestRowsFragmentLeavesTheNoticeForThePage(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	id := runIDFrom(t, s.upload("rate", "notice.csv", []byte(ratingCSV())))
	// Choosing the columns again leaves a notice for the run page; the
	// fragment is fetched first.
	if r := s.act(fmt.Sprintf("/bulk/runs/%d/mapping", id), url.Values{"map_user": {"0"}, "map_ticket": {"1"}, "map_score": {"2"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("mapping: %d", r.Status)
	}
	if r := s.get(fmt.Sprintf("/bulk/runs/%d?fragment=rows", id)); r.Status != http.StatusOK {
		t.Fatalf("fragment: %d", r.Status)
	}
	full := s.get(fmt.Sprintf("/bulk/runs/%d", id)).doc(t)
	if full.Find(`[data-testid="notice"]`).Length() == 0 {
		t.Error("the notice was taken by the background fetch of the rows; the page never showed it")
	}
}
