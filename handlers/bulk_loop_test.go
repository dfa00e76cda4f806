package handlers

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// readCSV reads a downloaded CSV, which must start with a byte order mark.
func readCSV(t *testing.T, body string, comma rune) [][]string {
	t.Helper()
	if !strings.HasPrefix(body, "\ufeff") {
		t.Fatalf("download does not start with a UTF-8 byte order mark: %.40q", body)
	}
	cr := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\ufeff")))
	cr.Comma = comma
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatalf("download is not CSV: %v\n%s", err, body)
	}
	return recs
}

// column returns the index of name in a CSV header, failing the test when
// it is absent.
func column(t *testing.T, header []string, name string) int {
	t.Helper()
	i := slices.Index(header, name)
	if i < 0 {
		t.Fatalf("header %q has no %q column", header, name)
	}
	return i
}

// ratingWrites counts the sandbox's satisfaction-rating writes per ticket.
func ratingWrites(app *testApp) map[int64]int {
	out := map[int64]int{}
	for _, w := range app.Sandbox.Writes() {
		if strings.HasSuffix(w.Endpoint, "/satisfaction_rating") && w.Status < 300 {
			out[w.TicketID]++
		}
	}
	return out
}

// TestBulkPreflightFilters checks the pre-flight that filters: after the
// check, the main button sends only the rows Zendesk would accept; the
// refused row is skipped with its reason, nothing is sent for it, its
// reason is shown once, and it is in the rows to fix.
func TestBulkPreflightFilters(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	content := fmt.Sprintf("email,ticket_id,score\n%s,%d,good\n%s,%d,good\n%s,%d,bad\n",
		sandbox.DemoBeaEmail, sandbox.TicketBeaSolved, sandbox.DemoBeaEmail, sandbox.TicketBeaClosed,
		sandbox.DemoBeauEmail, sandbox.TicketBeauSolved)
	id := runIDFrom(t, s.upload("rate", "three.csv", []byte(content)))
	runURL := fmt.Sprintf("/bulk/runs/%d", id)
	if r := s.act(runURL+"/preflight", url.Values{}); r.Status != http.StatusSeeOther {
		t.Fatalf("preflight: status %d", r.Status)
	}
	doc := s.get(runURL).doc(t)
	main := doc.Find(`[data-testid="confirm"]`)
	if got := main.Text(); got != "Send the 2 rows Zendesk would accept" {
		t.Errorf("main button %q, want it to send the 2 rows Zendesk would accept", got)
	}
	if all := doc.Find(`[data-testid="confirm-all"]`).Text(); !strings.Contains(all, "3 rows") {
		t.Errorf("sending all is no longer offered: %q", all)
	}
	if q, _ := main.Closest("form").Attr("data-confirm"); !strings.Contains(q, "will be skipped") || !strings.Contains(q, "takes") {
		t.Errorf("confirm question %q does not say the refused row is skipped and how long it takes", q)
	}
	if r := s.act(runURL+"/confirm", url.Values{"writes": {"2"}, "send": {"accepted"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("confirm: status %d: %.300s", r.Status, r.Body)
	}
	waitRunState(t, app, id, store.RunDone)
	got := ratingWrites(app)
	if got[sandbox.TicketBeaClosed] != 0 || got[sandbox.TicketBeaSolved] != 1 || got[sandbox.TicketBeauSolved] != 1 {
		t.Errorf("ratings written per ticket %v, want one each for %d and %d and none for the closed %d",
			got, sandbox.TicketBeaSolved, sandbox.TicketBeauSolved, sandbox.TicketBeaClosed)
	}
	if n := len(app.Sandbox.Writes()); n != 2 {
		t.Errorf("%d writes at Zendesk, want 2", n)
	}
	row, err := app.DB.FindRunRow(context.Background(), id, 3)
	if err != nil {
		t.Fatal(err)
	}
	if row.State != store.RowSkipped || !strings.HasPrefix(row.Error, store.RefusedAtPreflightNote) || !strings.Contains(row.Error, "closed") {
		t.Errorf("refused row %s %q, want skipped with the pre-flight's reason", row.State, row.Error)
	}
	page := s.get(runURL).doc(t)
	detail := page.Find(`[data-testid="row-3"] td.detail`).Text()
	if strings.Count(detail, "closed;") > 1 || strings.Count(detail, "is closed") != 1 {
		t.Errorf("the refused row's reason is not shown exactly once: %q", detail)
	}

	fix := s.get(runURL + "/rows-to-fix.csv")
	recs := readCSV(t, fix.Body, ',')
	if len(recs) != 2 {
		t.Fatalf("rows to fix %q, want the header and the refused row", recs)
	}
	if want := []string{"email", "ticket_id", "score", "problem"}; !slices.Equal(recs[0], want) {
		t.Errorf("rows to fix header %q, want %q", recs[0], want)
	}
	if recs[1][1] != fmt.Sprint(sandbox.TicketBeaClosed) || !strings.Contains(recs[1][3], "Row 3") {
		t.Errorf("row to fix %q, want the closed ticket's row with its reason", recs[1])
	}
}

// TestBulkSendAllAfterPreflight checks that sending every row stays
// possible after a pre-flight: the refused row is sent and fails, once.
func TestBulkSendAllAfterPreflight(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	content := fmt.Sprintf("email,ticket_id,score\n%s,%d,good\n%s,%d,good\n",
		sandbox.DemoBeaEmail, sandbox.TicketBeaSolved, sandbox.DemoBeaEmail, sandbox.TicketBeaClosed)
	id := runIDFrom(t, s.upload("rate", "two.csv", []byte(content)))
	runURL := fmt.Sprintf("/bulk/runs/%d", id)
	s.act(runURL+"/preflight", url.Values{})
	// The count seen must match the choice: 1 for "accepted" is stale for "all".
	if r := s.act(runURL+"/confirm", url.Values{"writes": {"1"}, "send": {"all"}}); r.Status != http.StatusConflict {
		t.Errorf("confirm all with the accepted count: status %d, want 409", r.Status)
	}
	if r := s.act(runURL+"/confirm", url.Values{"writes": {"2"}, "send": {"all"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("confirm all: status %d: %.300s", r.Status, r.Body)
	}
	waitRunState(t, app, id, store.RunDone)
	c, _ := app.DB.RunCounts(context.Background(), id)
	if c.Done != 1 || c.Failed != 1 {
		t.Errorf("counts %+v, want 1 done and 1 failed", c)
	}
	detail := s.get(runURL).doc(t).Find(`[data-testid="row-3"] td.detail`).Text()
	if n := strings.Count(detail, "is closed"); n != 1 {
		t.Errorf("failed row's detail says it %d times: %q", n, detail)
	}
}

// TestBulkReasonsCheckedAtPreview checks that a bad rating's reason is the
// account's own: a code or a name is accepted, anything else is a row error
// before anything is sent, and the code reaches Zendesk.
func TestBulkReasonsCheckedAtPreview(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	page := s.get("/bulk").doc(t)
	reasons := page.Find(`[data-testid="reasons"]`).Text()
	if !strings.Contains(reasons, sandbox.CustomReasonName) || !strings.Contains(reasons, fmt.Sprint(sandbox.CustomReasonCode)) {
		t.Errorf("the bulk page does not list the account's custom reason: %q", reasons)
	}
	content := fmt.Sprintf("email,ticket_id,score,reason\n%s,%d,bad,99\n%s,%d,bad,%s\n%s,%d,bad,5\n",
		sandbox.DemoBeaEmail, sandbox.TicketBeaSolved,
		sandbox.DemoBeauEmail, sandbox.TicketBeauSolved, strings.ToUpper(sandbox.CustomReasonName),
		sandbox.DemoBeauEmail, sandbox.TicketBeauSolved2)
	id := runIDFrom(t, s.upload("rate", "reasons.csv", []byte(content)))
	doc := s.get(fmt.Sprintf("/bulk/runs/%d", id)).doc(t)
	if got := doc.Find(`[data-testid="count-invalid"]`).Text(); got != "1" {
		t.Errorf("%s invalid rows, want 1 (reason 99)", got)
	}
	errText := doc.Find(`[data-testid="first-error"]`).Text()
	if !strings.Contains(errText, "Row 2") || !strings.Contains(errText, "99 is not one of this account's reasons") {
		t.Errorf("reason 99 not explained: %q", errText)
	}
	s.act(fmt.Sprintf("/bulk/runs/%d/confirm", id), url.Values{"writes": {"2"}})
	waitRunState(t, app, id, store.RunDone)
	var bodies []string
	for _, w := range app.Sandbox.Writes() {
		bodies = append(bodies, w.Body)
	}
	all := strings.Join(bodies, "\n")
	if len(bodies) != 2 || !strings.Contains(all, fmt.Sprintf(`"reason_code":%d`, sandbox.CustomReasonCode)) || !strings.Contains(all, `"reason_code":5`) {
		t.Errorf("writes %q, want two ratings with reason codes %d and 5", bodies, sandbox.CustomReasonCode)
	}
}

// TestBulkTemplatesUploadClean downloads each action's template and
// uploads it again: every example row reads without an error.
func TestBulkTemplatesUploadClean(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	doc := s.get("/bulk").doc(t)
	for _, kind := range []string{"rate", "create_request", "comment", "solve"} {
		href, ok := doc.Find(`[data-testid="template-` + kind + `"]`).Attr("href")
		if !ok {
			t.Errorf("no template link for %s", kind)
			continue
		}
		tpl := s.get(href)
		if tpl.Status != http.StatusOK || !strings.HasPrefix(tpl.Header.Get("Content-Type"), "text/csv") {
			t.Errorf("template %s: status %d, type %q", kind, tpl.Status, tpl.Header.Get("Content-Type"))
			continue
		}
		recs := readCSV(t, tpl.Body, ',')
		if len(recs) < 3 {
			t.Errorf("template %s has %d lines, want a header and example rows", kind, len(recs))
		}
		id := runIDFrom(t, s.upload(kind, "template.csv", []byte(tpl.Body)))
		run, _ := app.DB.FindRunByID(context.Background(), id)
		if run.Invalid != 0 || run.Valid != len(recs)-1 {
			t.Errorf("template %s uploaded: %d valid, %d invalid; want all %d rows valid", kind, run.Valid, run.Invalid, len(recs)-1)
		}
	}
	if r := s.get("/bulk/templates/nope.csv"); r.Status != http.StatusNotFound {
		t.Errorf("unknown template: status %d, want 404", r.Status)
	}
}

// starsCSV is a survey export: 1–5 stars for Bea's and Beau's tickets.
func starsCSV() string {
	return fmt.Sprintf("Customer email,Ticket,Rating\n%s,%d,5\n%s,%d,1\n%s,%d,3\n%s,%d,4\n",
		sandbox.DemoBeaEmail, sandbox.TicketBeaSolved, sandbox.DemoBeauEmail, sandbox.TicketBeauSolved,
		sandbox.DemoBeauEmail, sandbox.TicketBeauSolved2, sandbox.DemoBeaEmail, sandbox.TicketBeaReopened)
}

// TestBulkScoreMapping checks the score mapping: a 1–5 star column is
// listed value by value with counts and guesses; applying it reads the
// stored cells again (3 left out, nothing sent for it), and the mapping is
// recorded with the run and shown on its page.
func TestBulkScoreMapping(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	id := runIDFrom(t, s.upload("rate", "survey.csv", []byte(starsCSV())))
	runURL := fmt.Sprintf("/bulk/runs/%d", id)
	doc := s.get(runURL).doc(t)
	wantGuess := map[string]string{"5": "good", "4": "good", "3": "out", "1": "bad"}
	form := url.Values{}
	i := 0
	for v, want := range wantGuess {
		row := doc.Find(`[data-testid="score-` + v + `"]`)
		if row.Length() != 1 {
			t.Fatalf("score value %s not listed: %q", v, doc.Find(`[data-testid="scores"]`).Text())
		}
		if got, _ := row.Find(`option[selected]`).Attr("value"); got != want {
			t.Errorf("value %s guessed %q, want %q", v, got, want)
		}
		wantCount := map[string]string{"5": "1 row", "4": "1 row", "3": "1 row", "1": "1 row"}[v]
		if got := row.Find(`[data-testid="score-count"]`).Text(); got != wantCount {
			t.Errorf("value %s shows the count %q, want %q", v, got, wantCount)
		}
		form.Set(fmt.Sprintf("score_key_%d", i), v)
		form.Set(fmt.Sprintf("score_%d", i), want)
		i++
	}
	if r := s.act(runURL+"/scores", form); r.Status != http.StatusSeeOther {
		t.Fatalf("scores: status %d: %.300s", r.Status, r.Body)
	}
	run, _ := app.DB.FindRunByID(context.Background(), id)
	if run.ScoreMap["5"] != "good" || run.ScoreMap["1"] != "bad" || run.ScoreMap["3"] != "" {
		t.Errorf("score map stored %v", run.ScoreMap)
	}
	doc = s.get(runURL).doc(t)
	if got := doc.Find(`[data-testid="count-valid"]`).Text(); got != "3" {
		t.Errorf("%s rows ready, want 3", got)
	}
	if got := doc.Find(`[data-testid="count-left-out"]`).Text(); got != "1" {
		t.Errorf("%s rows left out, want 1", got)
	}
	if sm := doc.Find(`[data-testid="score-map"]`).Text(); !strings.Contains(sm, "“3” → left out") || !strings.Contains(sm, "“5” → good") {
		t.Errorf("score mapping not shown: %q", sm)
	}
	s.act(runURL+"/confirm", url.Values{"writes": {"3"}})
	waitRunState(t, app, id, store.RunDone)
	got := ratingWrites(app)
	if len(got) != 3 || got[sandbox.TicketBeauSolved2] != 0 {
		t.Errorf("ratings written %v, want 3, none for the 3-star ticket %d", got, sandbox.TicketBeauSolved2)
	}
	for _, w := range app.Sandbox.Writes() {
		if w.TicketID == sandbox.TicketBeauSolved && !strings.Contains(w.Body, `"score":"bad"`) {
			t.Errorf("1 star sent as %s, want bad", w.Body)
		}
	}
	if sm := s.get(runURL).doc(t).Find(`[data-testid="score-map"]`).Text(); !strings.Contains(sm, "“1” → bad") {
		t.Errorf("the finished run does not show its score mapping: %q", sm)
	}
}

// TestBulkChangeActionOnPreview uploads a comment file as ratings, sees one
// instruction naming the missing column, and switches the action on the
// preview: the stored cells are read again as comments.
func TestBulkChangeActionOnPreview(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	content := fmt.Sprintf("email,request_id,comment\n%s,%d,Any news?\n%s,%d,Thanks!\n",
		sandbox.DemoBeaEmail, sandbox.TicketBeaOpen, sandbox.DemoBeauEmail, sandbox.TicketBeauOpen)
	id := runIDFrom(t, s.upload("rate", "comments.csv", []byte(content)))
	runURL := fmt.Sprintf("/bulk/runs/%d", id)
	doc := s.get(runURL).doc(t)
	msg := doc.Find(`[data-testid="run-error"]`).Text()
	if !strings.Contains(msg, "score") || !strings.Contains(msg, "change the action") {
		t.Errorf("missing score column not explained in one instruction: %q", msg)
	}
	if n := doc.Find(`[data-testid="first-error"]`).Length(); n != 0 {
		t.Errorf("%d per-row errors listed beside the instruction, want none", n)
	}
	if strings.Contains(doc.Text(), "Fix the file and upload it again") {
		t.Error("the page still tells the admin to fix the file")
	}
	if r := s.act(runURL+"/kind", url.Values{"kind": {"comment"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("kind: status %d: %.300s", r.Status, r.Body)
	}
	run, _ := app.DB.FindRunByID(context.Background(), id)
	if run.Kind != "comment" || run.Valid != 2 || run.Invalid != 0 {
		t.Errorf("after the change: kind %s, %d valid, %d invalid; want comment, 2, 0", run.Kind, run.Valid, run.Invalid)
	}
	if got := s.get(runURL).doc(t).Find(`[data-testid="confirm"]`).Text(); !strings.Contains(got, "2 changes") {
		t.Errorf("confirm button %q after the change", got)
	}
}

// TestBulkRowsToFixRoundTrip uploads a file with a broken row and an
// invalid one, downloads the rows to fix and uploads that file again after
// fixing it: it is read in the same columns.
func TestBulkRowsToFixRoundTrip(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	content := fmt.Sprintf("email;ticket_id;score;comment\n%s;%d;good;fine\n%s;%d;great;typo\n%s;%d;good;a;b\n",
		sandbox.DemoBeaEmail, sandbox.TicketBeaSolved, sandbox.DemoBeauEmail, sandbox.TicketBeauSolved,
		sandbox.DemoBeauEmail, sandbox.TicketBeauSolved2)
	id := runIDFrom(t, s.upload("rate", "mixed.csv", []byte(content)))
	runURL := fmt.Sprintf("/bulk/runs/%d", id)
	// The broken row keeps the table aligned: one cell per header column.
	row4 := s.get(runURL).doc(t).Find(`[data-testid="row-4"] td`)
	if n := row4.Length(); n != 1+4+2 {
		t.Errorf("row 4 has %d cells in the table, want 7 (number, 4 columns, status, details)", n)
	}
	recs := readCSV(t, s.get(runURL+"/rows-to-fix.csv").Body, ';')
	if len(recs) != 3 {
		t.Fatalf("rows to fix %q, want header and 2 rows", recs)
	}
	for _, r := range recs {
		if len(r) != 5 {
			t.Errorf("line %q has %d cells, want 5", r, len(r))
		}
	}
	if recs[2][3] != "a;b" {
		t.Errorf("the broken row's surplus cell was not joined back: %q", recs[2])
	}
	recs[1][2] = "good"
	recs[2][3] = "a and b"
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.Comma = ';'
	w.WriteAll(recs)
	id2 := runIDFrom(t, s.upload("rate", "fixed.csv", []byte(b.String())))
	run, _ := app.DB.FindRunByID(context.Background(), id2)
	if run.Valid != 2 || run.Invalid != 0 {
		t.Errorf("fixed rows: %d valid, %d invalid, want 2 and 0", run.Valid, run.Invalid)
	}
}

// TestBulkResultsCSVColumns checks the results CSV: a row number, an
// outcome, a message for every row and an error only for failed rows.
func TestBulkResultsCSVColumns(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	content := fmt.Sprintf("email,ticket_id,score\n%s,%d,good\n%s,%d,bad\n%s,%d,good\n%s,%d,great\n",
		sandbox.DemoBeaEmail, sandbox.TicketBeaSolved, sandbox.DemoBeaEmail, sandbox.TicketBeaSolved,
		sandbox.DemoBeaEmail, sandbox.TicketBeaClosed, sandbox.DemoBeaEmail, sandbox.TicketBeaSolved)
	id := runIDFrom(t, s.upload("rate", "r.csv", []byte(content)))
	s.act(fmt.Sprintf("/bulk/runs/%d/confirm", id), url.Values{"writes": {"3"}})
	waitRunState(t, app, id, store.RunDone)
	recs := readCSV(t, s.get(fmt.Sprintf("/bulk/runs/%d/results.csv", id)).Body, ',')
	h := recs[0]
	rowCol, outCol, msgCol, errCol := column(t, h, "row"), column(t, h, "outcome"), column(t, h, "message"), column(t, h, "error")
	want := map[string]string{"2": "done", "3": "done", "4": "failed", "5": "invalid"}
	for _, r := range recs[1:] {
		if len(r) != len(h) {
			t.Errorf("line %q has %d cells, header %d", r, len(r), len(h))
		}
		if r[outCol] != want[r[rowCol]] {
			t.Errorf("row %s outcome %q, want %q", r[rowCol], r[outCol], want[r[rowCol]])
		}
		if r[msgCol] == "" {
			t.Errorf("row %s has no message", r[rowCol])
		}
		if (r[errCol] != "") != (r[outCol] == "failed" || r[outCol] == "invalid") {
			t.Errorf("row %s (%s) error %q: want an error only when it failed", r[rowCol], r[outCol], r[errCol])
		}
	}
	// Row 3 rated the ticket row 2 had just rated good: its note says so,
	// not what the ticket held before the run.
	if m := recs[2][msgCol]; !strings.Contains(m, "good rating row 2 gave") {
		t.Errorf("row 3's note %q does not describe the rating it replaced", m)
	}
}

// TestBulkRepeatWarningAndDiscard uploads a file that was already sent:
// the preview names the earlier run. A preview can be discarded, and old
// previews expire.
func TestBulkRepeatWarningAndDiscard(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	content := fmt.Sprintf("email,request_id,comment\n%s,%d,Any news?\n%s,%d,Thanks!\n",
		sandbox.DemoBeaEmail, sandbox.TicketBeaOpen, sandbox.DemoBeauEmail, sandbox.TicketBeauOpen)
	first := runIDFrom(t, s.upload("comment", "c.csv", []byte(content)))
	s.act(fmt.Sprintf("/bulk/runs/%d/confirm", first), url.Values{"writes": {"2"}})
	waitRunState(t, app, first, store.RunDone)
	second := runIDFrom(t, s.upload("comment", "c.csv", []byte(content+fmt.Sprintf("%s,%d,New one\n", sandbox.DemoBeaEmail, sandbox.TicketBeaOpen))))
	warn := s.get(fmt.Sprintf("/bulk/runs/%d", second)).doc(t).Find(`[data-testid="repeat"]`).Text()
	if !strings.Contains(warn, "2 rows of this file were already sent") || !strings.Contains(warn, fmt.Sprintf("run #%d", first)) {
		t.Errorf("repeat warning %q, want 2 rows naming run #%d", warn, first)
	}
	if r := s.act(fmt.Sprintf("/bulk/runs/%d/discard", second), url.Values{}); r.Status != http.StatusSeeOther {
		t.Fatalf("discard: status %d", r.Status)
	}
	if _, err := app.DB.FindRunByID(context.Background(), second); err == nil {
		t.Error("the discarded preview is still stored")
	}
	if r := s.act(fmt.Sprintf("/bulk/runs/%d/discard", first), url.Values{}); r.Status != http.StatusConflict {
		t.Errorf("discarding a sent run: status %d, want 409", r.Status)
	}
	old := runIDFrom(t, s.upload("comment", "c.csv", []byte(content)))
	if n, err := app.DB.ExpirePreviews(context.Background(), time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("ExpirePreviews = %d, %v; want the one preview", n, err)
	}
	if _, err := app.DB.FindRunByID(context.Background(), old); err == nil {
		t.Error("the expired preview is still stored")
	}
	if _, err := app.DB.FindRunByID(context.Background(), first); err != nil {
		t.Errorf("the sent run went with the previews: %v", err)
	}
}

// TestAuditCSVHasByteOrderMark checks that the audit CSV starts with a
// UTF-8 byte order mark, so spreadsheet apps show non-ASCII names right.
func TestAuditCSVHasByteOrderMark(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	recs := readCSV(t, s.get("/audit.csv").Body, ',')
	if len(recs) == 0 || recs[0][0] != "When" {
		t.Errorf("audit CSV header %q", recs)
	}
}

// TestBulkPreflightLinkListsEveryRefusedRow: when the pre-flight finds more
// rows Zendesk would refuse than the page lists, its "See all" link leads to
// a tab that lists every one of them (they are pending with the
// pre-flight's reason, not invalid), and the rows tabs offer that tab.
func TestBulkPreflightLinkListsEveryRefusedRow(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	const refused = 12
	var b strings.Builder
	b.WriteString("email,ticket_id,score\n")
	fmt.Fprintf(&b, "%s,%d,good\n", sandbox.DemoBeaEmail, sandbox.TicketBeaSolved)
	for i := range refused {
		if i%2 == 0 {
			fmt.Fprintf(&b, "%s,%d,good\n", sandbox.DemoBeaEmail, sandbox.TicketBeaClosed)
		} else {
			fmt.Fprintf(&b, "%s,%d,bad\n", sandbox.DemoCarlosEmail, sandbox.TicketCarlosClosed)
		}
	}
	id := runIDFrom(t, s.upload("rate", "refused.csv", []byte(b.String())))
	runURL := fmt.Sprintf("/bulk/runs/%d", id)
	r := s.act(runURL+"/preflight", url.Values{})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("preflight: status %d: %.400s", r.Status, r.Body)
	}
	page := s.follow(r).doc(t)
	if n := page.Find(`[data-testid="first-refusal"]`).Length(); n >= refused {
		t.Fatalf("the page lists %d of %d refused rows; the test needs more than it lists", n, refused)
	}
	href, ok := page.Find(`[data-testid="first-refusals"] a`).FilterFunction(func(_ int, a *goquery.Selection) bool {
		return strings.Contains(a.Text(), "See all")
	}).Attr("href")
	if !ok {
		t.Fatal("no link to all the rows Zendesk would refuse")
	}
	base, _ := url.Parse(app.URL + runURL)
	ref, err := url.Parse(href)
	if err != nil {
		t.Fatalf("link %q: %v", href, err)
	}
	listed := s.get(base.ResolveReference(ref).String()).doc(t)
	var got []string
	listed.Find(`[data-testid="rows"] tbody tr`).Each(func(_ int, tr *goquery.Selection) {
		got = append(got, tr.AttrOr("data-testid", ""))
		if d := tr.Find("td.detail").Text(); !strings.Contains(d, "Zendesk would refuse it") {
			t.Errorf("%s listed without the pre-flight's reason: %q", tr.AttrOr("data-testid", ""), d)
		}
	})
	var want []string
	for n := 3; n < 3+refused; n++ { // row 1 is the header, row 2 the solved ticket
		want = append(want, fmt.Sprintf("row-%d", n))
	}
	if !slices.Equal(got, want) {
		t.Errorf("the link %q lists rows %q, want every refused row %q", href, got, want)
	}
	tab := listed.Find(`nav.tabs a[aria-current="page"]`)
	if tab.Length() != 1 || !strings.Contains(tab.Text(), fmt.Sprintf("(%d)", refused)) {
		t.Errorf("the rows tabs do not show the refused rows' tab as current with its count: %q", tab.Text())
	}
}

// TestRowsToFixUploadedAgainKeepsComments: rows whose comment starts with
// + - = or @ (which the rows to fix neutralise with an apostrophe, against
// spreadsheet formulas) are refused by the pre-flight, downloaded as rows
// to fix and uploaded again as they are: the new run's actions equal the
// first run's, with no apostrophe added to what the end user says.
func TestRowsToFixUploadedAgainKeepsComments(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	comments := []string{"+1 thanks", "-5 stars, but kind", "=SUM(A1) is what I typed", "@support great", "'kept as typed"}
	var b strings.Builder
	b.WriteString("email,ticket_id,score,comment\n")
	for _, c := range comments {
		fmt.Fprintf(&b, "%s,%d,good,%q\n", sandbox.DemoBeaEmail, sandbox.TicketBeaClosed, c)
	}
	first := runIDFrom(t, s.upload("rate", "comments.csv", []byte(b.String())))
	firstURL := fmt.Sprintf("/bulk/runs/%d", first)
	if r := s.act(firstURL+"/preflight", url.Values{}); r.Status != http.StatusSeeOther {
		t.Fatalf("preflight: status %d: %.400s", r.Status, r.Body)
	}
	fix := s.get(firstURL + "/rows-to-fix.csv")
	if fix.Status != http.StatusOK {
		t.Fatalf("rows to fix: status %d", fix.Status)
	}
	if recs := readCSV(t, fix.Body, ','); len(recs) != len(comments)+1 || recs[1][3] != "'+1 thanks" {
		t.Fatalf("rows to fix %q, want every row, the comments neutralised", recs)
	}
	second := runIDFrom(t, s.upload("rate", "comments-fixed.csv", []byte(fix.Body)))

	actionsOf := func(id int64) []string {
		t.Helper()
		rows, _, err := app.DB.ListRunRows(context.Background(), id, store.RowFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			if !r.Valid {
				t.Errorf("run %d row %d invalid: %q", id, r.Number, r.Errors)
			}
			out = append(out, string(r.Action))
		}
		return out
	}
	want, got := actionsOf(first), actionsOf(second)
	if len(want) != len(comments) || !slices.Equal(want, got) {
		t.Errorf("actions after the rows to fix were uploaded again:\n got %q\nwant %q", got, want)
	}
	for i, a := range got {
		if !strings.Contains(a, fmt.Sprintf("%q", comments[i])) {
			t.Errorf("row %d's action %s does not carry the comment %q", i+2, a, comments[i])
		}
	}
}

// A file whose first 250 rows are invalid and whose later rows Zendesk
// would refuse: after the check, the page still lists those refusals (and
// offers the rows to fix), not "none would be refused".
func TestBulkPreflightRefusalsShowBehindManyInvalidRows(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	var b strings.Builder
	b.WriteString("email,ticket_id,score\n")
	for i := range 250 {
		fmt.Fprintf(&b, "%s,%d,excellent\n", sandbox.DemoBeaEmail, 1000+i) // no such score: invalid
	}
	fmt.Fprintf(&b, "%s,%d,good\n", sandbox.DemoBeaEmail, sandbox.TicketBeaSolved)
	fmt.Fprintf(&b, "%s,%d,good\n", sandbox.DemoBeaEmail, sandbox.TicketBeaClosed)
	id := runIDFrom(t, s.upload("rate", "mostly-bad.csv", []byte(b.String())))
	r := s.act(fmt.Sprintf("/bulk/runs/%d/preflight", id), url.Values{})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("preflight: status %d: %.400s", r.Status, r.Body)
	}
	page := s.follow(r).doc(t)
	refusals := page.Find(`[data-testid="first-refusal"]`)
	if refusals.Length() != 1 || !strings.Contains(refusals.Text(), "Row 253") {
		t.Errorf("the page lists refusals %q, want row 253 (the closed ticket)", refusals.Text())
	}
	if page.Find(`[data-testid="rows-to-fix"]`).Length() != 1 {
		t.Error("the page offers no rows to fix")
	}
}
