package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// squash is s with runs of white space made one space, trimmed.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestFormRefusalAuditNamesTheEndUser(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	s.mustPick(strconv.FormatInt(sandbox.DemoBeaID, 10))
	// An empty comment is refused before Zendesk is asked anything.
	if r := s.act(ticketPath(sandbox.TicketBeaOpen, "comment"), url.Values{"body": {" "}}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("empty comment: status %d", r.Status)
	}
	events, _, err := app.DB.FindAuditEvents(context.Background(), store.AuditFilter{Action: "comment"})
	if err != nil || len(events) != 1 {
		t.Fatalf("%d comment events (%v), want 1", len(events), err)
	}
	if e := events[0]; e.EndUserID != sandbox.DemoBeaID || e.EndUser != sandbox.DemoBeaEmail {
		t.Errorf("the refusal's audit row names end user %d %q, want %d %q", e.EndUserID, e.EndUser, sandbox.DemoBeaID, sandbox.DemoBeaEmail)
	}
	// Filtering by her email finds it.
	r := s.get("/audit?end_user=" + url.QueryEscape(sandbox.DemoBeaEmail) + "&action=comment")
	if n := r.doc(t).Find(`[data-testid="audit-row"]`).Length(); n != 1 {
		t.Errorf("filter by %s: %d rows, want the refusal", sandbox.DemoBeaEmail, n)
	}
}

// auditTable reads the audit page's table: its headings and, per row, the
// text of each cell.
func auditTable(t *testing.T, doc *goquery.Document) ([]string, [][]string) {
	t.Helper()
	var head []string
	doc.Find(`[data-testid="audit-events"] thead th`).Each(func(_ int, th *goquery.Selection) { head = append(head, squash(th.Text())) })
	var rows [][]string
	doc.Find(`[data-testid="audit-row"]`).Each(func(_ int, tr *goquery.Selection) {
		var cells []string
		tr.Find("td").Each(func(_ int, td *goquery.Selection) { cells = append(cells, squash(td.Text())) })
		rows = append(rows, cells)
	})
	return head, rows
}

func TestAuditPageSpeaksPlainlyAndAgreesWithItsCSV(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	s.mustPick(sandbox.DemoBeaEmail)
	s.act(ticketPath(sandbox.TicketBeaSolved, "rate"), url.Values{"score": {"good"}})
	s.act(ticketPath(sandbox.TicketBeaClosed, "rate"), url.Values{"score": {"good"}}) // refused: closed
	// A bulk row refused by Zendesk, as the bulk worker records it.
	if err := app.DB.CreateAuditEvent(context.Background(), &store.AuditEvent{AdminID: sandbox.DemoAdminID, AdminName: "Ada Admin",
		Action: "rate", EndUserID: sandbox.DemoBeauID, EndUser: sandbox.DemoBeauEmail, TicketID: sandbox.TicketBeauOpen,
		Outcome: store.OutcomeRefused, Detail: "Ticket #114 is not solved.", RunID: 42}); err != nil {
		t.Fatal(err)
	}

	r := s.get("/audit")
	doc := r.doc(t)
	head, rows := auditTable(t, doc)
	wantHead := []string{"When", "Admin", "Action", "End user", "Ticket", "Run", "Outcome", "Details"}
	if strings.Join(head, "|") != strings.Join(wantHead, "|") {
		t.Fatalf("audit columns %q, want %q", head, wantHead)
	}
	for _, row := range rows {
		for _, cell := range row {
			for _, code := range []string{"create_request", "login_refused", "rate", "_"} {
				if cell == code || (code == "_" && strings.Contains(cell, "_")) {
					t.Errorf("a cell shows the raw code %q: row %q", cell, row)
				}
			}
		}
	}
	// The bulk row: a link to its run, and "failed" as on the run's page.
	link := doc.Find(`[data-testid="audit-row"] a[href="/bulk/runs/42"]`)
	if link.Length() != 1 {
		t.Errorf("no link to run 42 in the audit rows")
	}
	var bulkRow []string
	for _, row := range rows {
		if strings.Contains(strings.Join(row, " "), sandbox.DemoBeauEmail) {
			bulkRow = row
		}
	}
	if bulkRow == nil || bulkRow[6] != "failed" || bulkRow[2] != "Rate a ticket" {
		t.Errorf("the bulk row reads %q, want action %q and outcome %q", bulkRow, "Rate a ticket", "failed")
	}

	// Filters: by run, and by outcome in the shared vocabulary.
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"run=42", 1},
		{"outcome=failed&action=rate", 2}, // the closed ticket and the bulk row
		{"outcome=done&action=rate", 1},
		{"outcome=refused", 0},
	} {
		_, got := auditTable(t, s.get("/audit?"+tc.query).doc(t))
		if len(got) != tc.want {
			t.Errorf("/audit?%s: %d rows, want %d", tc.query, len(got), tc.want)
		}
	}
	if r := s.get("/audit?run=x"); r.Status != http.StatusBadRequest {
		t.Errorf("run=x: status %d, want 400", r.Status)
	}

	// The CSV has the page's columns and words, then the ids a program wants.
	recs := readCSV(t, s.get("/audit.csv").Body, ',')
	if len(recs) != len(rows)+1 {
		t.Fatalf("%d CSV records for %d page rows", len(recs)-1, len(rows))
	}
	if got := recs[0][:len(wantHead)]; strings.Join(got, "|") != strings.Join(wantHead, "|") {
		t.Errorf("CSV columns %q, want the page's %q first", recs[0], wantHead)
	}
	for i, row := range rows {
		for j := 1; j < len(wantHead); j++ { // the time is RFC 3339 in the file
			if recs[i+1][j] != row[j] {
				t.Errorf("row %d column %q: page %q, CSV %q", i, wantHead[j], row[j], recs[i+1][j])
			}
		}
	}
}

func TestErrorSummaryListsErrorsInFormOrder(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	s.mustPick(sandbox.DemoBeaEmail)
	r := s.act("/as/requests", url.Values{"subject": {""}, "body": {""}})
	doc := r.doc(t)
	var got []string
	doc.Find(`[data-testid="error-summary"] li`).Each(func(_ int, li *goquery.Selection) { got = append(got, squash(li.Text())) })
	want := []string{squash(doc.Find(`[data-testid="error-subject"]`).Text()), squash(doc.Find(`[data-testid="error-body"]`).Text())}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("summary %q, want the fields' errors in form order %q", got, want)
	}
}

func TestRefusalsNameThePerson(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	for _, tc := range []struct{ email, name string }{
		{sandbox.DemoUnverifiedEmail, "Dana Park"},
		{sandbox.DemoSuspendedEmail, "Eli Novak"},
	} {
		r := s.pick(tc.email)
		if msg := squash(r.doc(t).Find(`[data-testid="search-error"]`).Text()); !strings.Contains(msg, tc.name) {
			t.Errorf("refusing %s says %q, which does not name %s", tc.email, msg, tc.name)
		}
	}
}

func TestBadRatingShowsItsStoredReason(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	s.mustPick(sandbox.DemoBeaEmail)
	const reason = "The agent's knowledge is unsatisfactory"
	r := s.act(ticketPath(sandbox.TicketBeaSolved, "rate"), url.Values{"score": {"bad"}, "reason": {"7"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("rate bad: status %d: %.400s", r.Status, r.Body)
	}
	page := s.get(r.Location)
	doc := page.doc(t)
	if notice := squash(doc.Find(`[data-testid="notice"]`).Text()); !strings.Contains(notice, reason) {
		t.Errorf("notice %q leaves the reason out", notice)
	}
	if got := squash(doc.Find(`[data-testid="rating-reason"]`).Text()); !strings.Contains(got, reason) {
		t.Errorf("the page shows reason %q, want %q", got, reason)
	}
	if sel := doc.Find(`#reason option[selected]`).AttrOr("value", ""); sel != "7" {
		t.Errorf("the reason select has %q selected, want the stored 7", sel)
	}
}

func TestCommentWarningIsAWarning(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	s.mustPick(sandbox.DemoBeaEmail)
	r := s.act(ticketPath(sandbox.TicketBeaSolvedProblem, "comment"), url.Values{"body": {"one more thing"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("comment: status %d: %.400s", r.Status, r.Body)
	}
	doc := s.get(r.Location).doc(t)
	warn := doc.Find(`[data-testid="action-warning"]`)
	if !warn.HasClass("warn") || !strings.Contains(strings.ToLower(warn.Text()), "reopen") {
		t.Errorf("warning %q (class %q), want the reopening said in a .warn box", squash(warn.Text()), warn.AttrOr("class", ""))
	}
	if n := squash(doc.Find(`[data-testid="notice"]`).Text()); strings.Contains(strings.ToLower(n), "reopen") {
		t.Errorf("the green notice %q carries the warning too", n)
	}
}

func TestBulkPagesSayActingDoesNotApply(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	s.mustPick(sandbox.DemoBeaEmail)
	bulkBanner := squash(s.get("/bulk").doc(t).Find(`[data-testid="acting-banner"]`).Text())
	if !strings.Contains(bulkBanner, "does not apply to bulk runs") || strings.Contains(bulkBanner, "records what you do here as theirs") {
		t.Errorf("banner on /bulk: %q", bulkBanner)
	}
	id := runIDFrom(t, s.upload("rate", "r.csv", []byte(ratingCSV())))
	doc := s.get(fmt.Sprintf("/bulk/runs/%d", id)).doc(t)
	if b := squash(doc.Find(`[data-testid="acting-banner"]`).Text()); !strings.Contains(b, "does not apply to bulk runs") {
		t.Errorf("banner on the run page: %q", b)
	}
	if by := squash(doc.Find(`[data-testid="uploaded-by"]`).Text()); !strings.Contains(by, "prepared by Ada Admin") {
		t.Errorf("an unsent preview says %q, want prepared by", by)
	}
	if b := squash(s.get("/as").doc(t).Find(`[data-testid="acting-banner"]`).Text()); !strings.Contains(b, "records what you do here as theirs") {
		t.Errorf("banner on /as: %q", b)
	}
}

func TestHomeShowsRecentRunsAndActivity(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	s.mustPick(sandbox.DemoBeaEmail)
	s.act(ticketPath(sandbox.TicketBeaSolved, "rate"), url.Values{"score": {"good"}})
	id := runIDFrom(t, s.upload("rate", "ratings.csv", []byte(ratingCSV())))
	doc := s.get("/").doc(t)
	if doc.Find(fmt.Sprintf(`[data-testid="home-runs"] a[href="/bulk/runs/%d"]`, id)).Length() != 1 {
		t.Errorf("the home page does not list run %d: %q", id, squash(doc.Find("main").Text()))
	}
	act := squash(doc.Find(`[data-testid="home-activity"]`).Text())
	if !strings.Contains(act, "Rate a ticket") || !strings.Contains(act, sandbox.DemoBeaEmail) {
		t.Errorf("recent activity %q does not show the rating", act)
	}
}

func TestSandboxOffersARunnableSampleCSV(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{Sandbox: true})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	link := s.get("/bulk").doc(t).Find(`[data-testid="sample-csv"]`)
	href, ok := link.Attr("href")
	if !ok {
		t.Fatal("the bulk page offers no sample CSV in sandbox mode")
	}
	res := s.get(href)
	if res.Status != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("sample: status %d, type %q", res.Status, res.Header.Get("Content-Type"))
	}
	id := runIDFrom(t, s.upload("rate", "sample.csv", []byte(res.Body)))
	counts, err := app.DB.RunCounts(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if counts.Invalid != 0 || counts.Total < 3 {
		t.Fatalf("the sample has %d rows, %d invalid: %+v", counts.Total, counts.Invalid, counts)
	}
	// Pre-flight: only Dana's row would be refused (she is unverified), and
	// the page names her.
	pf := s.post(fmt.Sprintf("/bulk/runs/%d/preflight", id), url.Values{"_csrf": {s.csrf}})
	doc := s.follow(pf).doc(t)
	refusals := doc.Find(`[data-testid="first-refusal"]`)
	if refusals.Length() != 1 || !strings.Contains(refusals.Text(), "Dana Park") {
		t.Errorf("pre-flight of the sample: %d refusals: %q", refusals.Length(), squash(refusals.Text()))
	}

	// Without the sandbox there is no sample: its tickets exist only there.
	plain := newTestApp(t, testAppOptions{})
	p := loginAs(t, plain, sandbox.DemoAdminEmail)
	if p.get("/bulk").doc(t).Find(`[data-testid="sample-csv"]`).Length() != 0 {
		t.Error("the sample is offered against a real Zendesk")
	}
	if r := p.get(href); r.Status != http.StatusNotFound {
		t.Errorf("sample without the sandbox: status %d, want 404", r.Status)
	}
}

func TestFinishedRunShowsItsChart(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{Sandbox: true})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	sample := s.get(sampleCSVPath).Body
	id := runIDFrom(t, s.upload("rate", "sample.csv", []byte(sample)))
	runURL := fmt.Sprintf("/bulk/runs/%d", id)
	if n := s.get(runURL).doc(t).Find(`[data-testid="run-chart"]`).Length(); n != 0 {
		t.Errorf("an unsent preview shows %d charts", n)
	}
	if r := s.act(runURL+"/confirm", url.Values{"writes": {"5"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("confirm: status %d: %.400s", r.Status, r.Body)
	}
	waitRunState(t, app, id, store.RunDone)
	doc := s.get(runURL).doc(t)
	chart := doc.Find(`[data-testid="run-chart"]`)
	svg := chart.Find(`svg[role="img"]`)
	if svg.Length() != 1 || svg.Find("title").Text() == "" {
		t.Fatalf("the finished run has no labelled SVG chart: %q", squash(chart.Text()))
	}
	desc := squash(svg.Find("desc").Text())
	for _, want := range []string{"4 done", "1 failed", "0 skipped", "limit of 6,000 calls a minute"} {
		if !strings.Contains(desc, want) {
			t.Errorf("the chart's description %q does not say %q", desc, want)
		}
	}
	if cap := squash(chart.Find("figcaption").Text()); cap != desc {
		t.Errorf("the visible caption %q differs from the description %q", cap, desc)
	}
	// The bars: as many done and failed rows as the run has, stacked.
	var done, failed int
	chart.Find(`[data-testid="chart-table"] tbody tr`).Each(func(_ int, tr *goquery.Selection) {
		d, _ := strconv.Atoi(tr.Find("td").Eq(1).Text())
		f, _ := strconv.Atoi(tr.Find("td").Eq(2).Text())
		done, failed = done+d, failed+f
	})
	if done != 4 || failed != 1 {
		t.Errorf("the chart's table counts %d done and %d failed, want 4 and 1", done, failed)
	}
	if n := svg.Find(`rect[fill="#c93a3a"]`).FilterFunction(func(_ int, r *goquery.Selection) bool {
		return r.AttrOr("height", "0") != "0.0"
	}).Length(); n != 1 {
		t.Errorf("%d red (failed) bar pieces with a height, want 1", n)
	}
	if svg.Find(`line[stroke-dasharray]`).Length() != 1 {
		t.Error("no limit line on the chart")
	}
}
