package main

// Browser end-to-end tests of a bulk run: upload (or paste) a CSV, read the
// preview with its row errors, confirm through the browser's confirmation
// dialog, watch the live progress, and download the results CSV. They build
// on the helpers in e2e_helpers_test.go.

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/onbehalf/onbehalf/bulk"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// e2eRunTimeout bounds the wait for a confirmed run to finish. The app keeps
// to its own rate limit (ZENDESK_RATE_LIMIT, 200 a minute by default) also
// against the sandbox, so a run of a few dozen calls takes several seconds.
const e2eRunTimeout = 40 * time.Second

// bulkRow is one data row of the test CSV and what the app should make of it.
type bulkRow struct {
	email, ticket, score, comment string
	// bad names the field the app must reject the row for, "" for a good row.
	bad string
}

func (r bulkRow) cells() []string { return []string{r.email, r.ticket, r.score, r.comment} }

// bulkHeader is the test CSV's header, in the column names the upload form's
// placeholder suggests, so the columns are recognised without the mapping
// form.
var bulkHeader = []string{"email", "ticket_id", "score", "comment"}

// newTestBulkRows returns the 20 rows of the issue: 17 good ratings of the
// solved (or solved and reopened) tickets of Bea and Beau, by the ticket's
// requester, and 3 bad rows, at data rows 5, 11 and 17 (spreadsheet rows
// 6, 12 and 18). Every row differs from the others in its comment or score,
// so a row of the results CSV can only be matched to its own input.
func newTestBulkRows() []bulkRow {
	targets := []struct{ email, ticket string }{
		{sandbox.DemoBeaEmail, strconv.Itoa(sandbox.TicketBeaSolved)},
		{sandbox.DemoBeaEmail, strconv.Itoa(sandbox.TicketBeaReopened)},
		{sandbox.DemoBeauEmail, strconv.Itoa(sandbox.TicketBeauSolved)},
		{sandbox.DemoBeauEmail, "#" + strconv.Itoa(sandbox.TicketBeauSolved2)}, // the "#123" form the help allows
	}
	var rows []bulkRow
	for i := range 17 {
		tg := targets[i%len(targets)]
		score := "good"
		if i%3 == 2 {
			score = "bad"
		}
		comment := fmt.Sprintf("Bulk rating %d", i+1)
		if i%5 == 1 {
			comment = fmt.Sprintf("Fast, friendly \"and\" clear (%d)", i+1) // needs CSV quoting
		}
		rows = append(rows, bulkRow{email: tg.email, ticket: tg.ticket, score: score, comment: comment})
	}
	bad := map[int]bulkRow{
		4:  {email: sandbox.DemoBeaEmail, ticket: strconv.Itoa(sandbox.TicketBeaSolved), score: "great", comment: "Bad score", bad: "score"},
		10: {email: sandbox.DemoBeauEmail, ticket: "", score: "good", comment: "No ticket", bad: "ticket"},
		16: {email: "not-an-email", ticket: strconv.Itoa(sandbox.TicketBeauSolved), score: "good", comment: "Bad user", bad: "user"},
	}
	for _, i := range []int{4, 10, 16} {
		rows = slices.Insert(rows, i, bad[i])
	}
	return rows
}

// rowNumber is the number the app shows for data row i (0-based): the
// header is spreadsheet row 1.
func rowNumber(i int) int { return i + 2 }

// mustBulkCSV renders rows as a CSV with bulkHeader.
func mustBulkCSV(t *testing.T, rows []bulkRow) string {
	t.Helper()
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(bulkHeader); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := w.Write(r.cells()); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// acceptDialogs accepts every JavaScript dialog (the data-confirm questions
// of app.js) from now on, and returns the channel on which it reports each
// dialog's message. A dialog blocks the page and with it the click that
// opened it, so it is accepted from its own goroutine.
func (b *e2eBrowser) acceptDialogs() <-chan string {
	b.t.Helper()
	messages := make(chan string, 8)
	dialogs := chromedp.Events(b.ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			select {
			case messages <- ev.Message:
			default:
			}
			ctx, cancel := context.WithTimeout(b.ctx, e2eStepTimeout)
			_, err := chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			cancel()
			if err != nil && b.ctx.Err() == nil {
				b.t.Errorf("accept the dialog %q: %v", ev.Message, err)
			}
		}
	}()
	return messages
}

// mustSetUploadFile chooses the file in a file input, as picking it in the
// file dialog would.
func (b *e2eBrowser) mustSetUploadFile(sel chromedp.CSS, path string) {
	b.t.Helper()
	if _, err := step(b, chromedp.SetUploadFiles(sel, []string{path})); err != nil {
		b.fail("choose %s in %s: %v", path, sel, err)
	}
}

// mustPaste focuses the element and inserts text in one go, as pasting from
// the clipboard does (one input event, not a key press per character).
func (b *e2eBrowser) mustPaste(sel chromedp.CSS, text string) {
	b.t.Helper()
	if _, err := step(b, chromedp.Focus(sel)); err != nil {
		b.fail("focus %s: %v", sel, err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, e2eStepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: text}); err != nil {
		b.fail("paste into %s: %v", sel, err)
	}
}

// mustInt is the element's text as a whole number.
func (b *e2eBrowser) mustInt(sel chromedp.CSS) int {
	b.t.Helper()
	s := b.mustText(sel)
	n, err := strconv.Atoi(s)
	if err != nil {
		b.fail("%s reads %q, want a whole number", sel, s)
	}
	return n
}

// mustWaitFinished waits until the run page shows run-finished. The page
// reloads itself when the run ends, so the wait polls (and shrugs off the
// errors of evaluating while the page is being replaced) instead of holding
// on to one document.
func (b *e2eBrowser) mustWaitFinished() {
	b.t.Helper()
	deadline := time.Now().Add(e2eRunTimeout)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
			`document.readyState === "complete" && document.querySelector('[data-testid="run-finished"]') !== null`))
		cancel()
		if err == nil && done {
			return
		}
		if b.ctx.Err() != nil {
			break
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	b.fail("the run did not finish within %v (last error: %v)", e2eRunTimeout, last)
}

// mustUpload opens /bulk, fills the upload form through fill, submits it and
// returns the id of the run whose preview it leads to.
func (b *e2eBrowser) mustUpload(app *e2eApp, fill func()) int64 {
	b.t.Helper()
	b.mustNavigate(app.URL + "/bulk")
	b.mustWaitVisible(tid("upload-form"))
	b.mustSetValue(tid("kind"), "rate")
	fill()
	b.shot("upload-form")
	b.mustClickAndLoad(tid("upload-submit"))
	b.mustWaitVisible(tid("preview-counts"))
	loc := b.mustLocation()
	m := regexp.MustCompile(`/bulk/runs/(\d+)$`).FindStringSubmatch(loc)
	if m == nil {
		b.fail("the upload led to %s, want a run's preview at /bulk/runs/<id>", loc)
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	if got := b.mustAttr(tid("run"), "data-run-id"); got != m[1] {
		b.t.Errorf("the preview at %s is of run %q", loc, got)
	}
	return id
}

// checkPreview asserts what the preview says about rows: the counts, and one
// first-error item for each bad row naming its row number and its field.
func (b *e2eBrowser) checkPreview(rows []bulkRow) {
	b.t.Helper()
	t := b.t
	var bad []int
	for i, r := range rows {
		if r.bad != "" {
			bad = append(bad, i)
		}
	}
	if got := b.mustInt(tid("count-total")); got != len(rows) {
		t.Errorf("preview count-total = %d, want %d", got, len(rows))
	}
	if got := b.mustInt(tid("count-valid")); got != len(rows)-len(bad) {
		t.Errorf("preview count-valid = %d, want %d", got, len(rows)-len(bad))
	}
	if got := b.mustInt(tid("count-invalid")); got != len(bad) {
		t.Errorf("preview count-invalid = %d, want %d", got, len(bad))
	}
	b.mustWaitVisible(tid("first-errors"))
	items := mustEval[[]string](b, `Array.from(document.querySelectorAll('[data-testid="first-errors"] [data-testid="first-error"]'), li => li.innerText.trim())`)
	if len(items) != len(bad) {
		t.Errorf("the preview lists %d first errors, want %d:\n  %s", len(items), len(bad), strings.Join(items, "\n  "))
	}
	for _, i := range bad {
		prefix := fmt.Sprintf("Row %d: %s:", rowNumber(i), rows[i].bad)
		found := false
		for _, it := range items {
			if strings.HasPrefix(it, prefix) {
				found = true
			}
		}
		if !found {
			t.Errorf("no first error starts with %q (row %d, bad %s); the errors are:\n  %s", prefix, rowNumber(i), rows[i].bad, strings.Join(items, "\n  "))
		}
		// The row itself is marked in the rows table of the preview.
		state := b.mustText(chromedp.CSS(fmt.Sprintf(`[data-testid="rows"] [data-testid="row-%d"] [data-testid="row-state"]`, rowNumber(i))))
		if state != "invalid" {
			t.Errorf("preview row %d shows the state %q, want invalid", rowNumber(i), state)
		}
	}
	want := fmt.Sprintf("Send %d changes to Zendesk", len(rows)-len(bad))
	if got := b.mustText(tid("confirm")); got != want {
		t.Errorf("the confirm button says %q, want %q", got, want)
	}
}

// resultsDownload is what fetching the results CSV from inside the page got.
type resultsDownload struct {
	Status      int    `json:"status"`
	ContentType string `json:"contentType"`
	Disposition string `json:"disposition"`
	Body        string `json:"body"`
}

// mustFetchResults fetches the results-csv link's URL from inside the page,
// with the page's cookies, instead of making the browser download a file.
func (b *e2eBrowser) mustFetchResults() resultsDownload {
	b.t.Helper()
	b.mustWaitVisible(tid("results-csv"))
	ctx, cancel := context.WithTimeout(b.ctx, e2eStepTimeout)
	defer cancel()
	res, err := chromedp.Run(ctx, chromedp.Evaluate[resultsDownload](`(async () => {
		const res = await fetch(document.querySelector('[data-testid="results-csv"]').href, {credentials: "same-origin"});
		return {status: res.status, contentType: res.headers.get("Content-Type") || "",
			disposition: res.headers.get("Content-Disposition") || "", body: await res.text()};
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail("fetch the results CSV: %v", err)
	}
	return res
}

func TestE2EBulkRun(t *testing.T) {
	t.Parallel()
	b := newTestBrowser(t) // first: it skips when there is no chromium
	app := newTestE2EApp(t)
	b.mustLoginAs(app, sandbox.DemoAdminEmail)
	dialogs := b.acceptDialogs()

	rows := newTestBulkRows()
	file := filepath.Join(t.TempDir(), "ratings.csv")
	if err := os.WriteFile(file, []byte(mustBulkCSV(t, rows)), 0o600); err != nil {
		t.Fatal(err)
	}

	// Upload and preview: nothing is sent yet.
	id := b.mustUpload(app, func() { b.mustSetUploadFile(tid("file"), file) })
	b.shot("preview")
	if got := b.mustText(tid("run-state")); got != "preview" {
		t.Errorf("after the upload the run is %q, want preview", got)
	}
	b.checkPreview(rows)
	if got := b.mustInt(tid("count-duplicates")); got != 13 {
		// 17 good rows rate 4 tickets: every rating after a ticket's first is flagged.
		t.Errorf("preview count-duplicates = %d, want 13", got)
	}

	// Confirm: the browser asks first, naming the number of changes.
	b.mustClickAndLoad(tid("confirm"))
	select {
	case msg := <-dialogs:
		if !strings.Contains(msg, "Send 17 changes to Zendesk") {
			t.Errorf("the confirmation dialog asks %q, want it to name the 17 changes", msg)
		}
	default:
		t.Error("confirming sent the run without the confirmation dialog")
	}
	if loc, want := b.mustLocation(), fmt.Sprintf("%s/bulk/runs/%d", app.URL, id); loc != want {
		t.Errorf("after confirming the browser is at %s, want %s", loc, want)
	}

	// Progress: the page is live while the run goes on. A MutationObserver
	// notes each value the Server-Sent Events write into count-done; it keeps
	// them in sessionStorage, which outlives the page's reload at the end.
	b.mustWaitVisible(tid("progress-counts"))
	if n := b.count(`[data-testid="run"][data-active]`); n != 1 {
		t.Errorf("right after confirming the run page is not active (state %q); want live progress", b.mustText(tid("run-state")))
	}
	// The rows table follows: its Done tab counts in place, and its
	// section is drawn again as rows end (e2eRows notes how many rows it
	// showed done each time).
	mustEval[bool](b, `(() => {
		const note = (key, value) => {
			const seen = JSON.parse(sessionStorage.getItem(key) || "[]");
			seen.push(value);
			sessionStorage.setItem(key, JSON.stringify(seen));
		};
		sessionStorage.setItem("e2eDone", "[]");
		sessionStorage.setItem("e2eTab", "[]");
		sessionStorage.setItem("e2eRows", "[]");
		const el = document.querySelector('[data-testid="count-done"]');
		new MutationObserver(() => note("e2eDone", el.textContent))
			.observe(el, {childList: true, characterData: true, subtree: true});
		const tab = document.querySelector('[data-testid="tab-done"] [data-live="done"]');
		new MutationObserver(() => note("e2eTab", tab.textContent))
			.observe(tab, {childList: true, characterData: true, subtree: true});
		new MutationObserver((records) => {
			for (const r of records) for (const n of r.addedNodes) {
				if (n.nodeType === 1 && n.matches('[data-testid="rows-section"]')) {
					note("e2eRows", [...n.querySelectorAll('[data-testid="row-state"]')].filter((s) => s.textContent === "done").length);
				}
			}
		}).observe(document.querySelector("main") || document.body, {childList: true, subtree: true});
		return true;
	})()`)
	b.shot("progress")
	b.mustWaitFinished()
	b.mustReview("finished")

	live := mustEval[[]string](b, `JSON.parse(sessionStorage.getItem("e2eDone") || "[]")`)
	t.Logf("count-done as the live updates wrote it: %q", live)
	if len(live) == 0 {
		t.Error("count-done never changed in place while the run went on; want live progress over Server-Sent Events")
	}
	tabs := mustEval[[]string](b, `JSON.parse(sessionStorage.getItem("e2eTab") || "[]")`)
	drawn := mustEval[[]int](b, `JSON.parse(sessionStorage.getItem("e2eRows") || "[]")`)
	t.Logf("the Done tab as the live updates wrote it: %q; rows shown done each time the table was drawn again: %v", tabs, drawn)
	if len(tabs) == 0 {
		t.Error("the rows table's Done tab never changed while the run went on; want it to agree with the counters")
	}
	if len(drawn) == 0 || slices.Max(drawn) == 0 {
		t.Error("the rows table was never drawn again with rows done while the run went on; want it to follow the counters")
	}
	if got := b.mustText(tid("run-state")); got != "done" {
		t.Errorf("finished run is %q, want done", got)
	}
	if n := b.count(`[data-testid="run"][data-active]`); n != 0 {
		t.Error("the finished run page is still marked active")
	}
	for _, c := range []struct {
		id   string
		want int
	}{{"count-done", 17}, {"count-failed", 0}, {"count-remaining", 0}} {
		if got := b.mustInt(tid(c.id)); got != c.want {
			t.Errorf("finished run: %s = %d, want %d", c.id, got, c.want)
		}
	}
	if msg := b.mustText(tid("run-finished")); !strings.Contains(msg, "17 done") || !strings.Contains(msg, "3 rows were not sent") {
		t.Errorf("run-finished says %q, want 17 done and 3 rows not sent", msg)
	}
	for i, r := range rows {
		want := "done"
		if r.bad != "" {
			want = "invalid"
		}
		sel := fmt.Sprintf(`[data-testid="rows"] [data-testid="row-%d"] [data-testid="row-state"]`, rowNumber(i))
		if got := b.mustText(chromedp.CSS(sel)); got != want {
			t.Errorf("finished run: row %d shows %q, want %q", rowNumber(i), got, want)
		}
	}

	// The results CSV: every input row with its input cells and how it ended.
	res := b.mustFetchResults()
	if res.Status != 200 || !strings.HasPrefix(res.ContentType, "text/csv") {
		t.Fatalf("results CSV: status %d, Content-Type %q; body %.300s", res.Status, res.ContentType, res.Body)
	}
	if !strings.Contains(res.Disposition, "attachment") || !strings.Contains(res.Disposition, fmt.Sprintf("run-%d", id)) {
		t.Errorf("results CSV Content-Disposition %q, want an attachment named after run %d", res.Disposition, id)
	}
	checkResultsCSV(t, res.Body, rows)
}

// checkResultsCSV asserts that body (the results CSV) has the input header
// plus the result columns, and one line per input row, in order, with the
// input cells unchanged and the status the row must have ended in.
func checkResultsCSV(t *testing.T, body string, rows []bulkRow) {
	t.Helper()
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\uFEFF")))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("results CSV does not parse: %v\n%s", err, body)
	}
	wantHeader := append(append([]string{}, bulkHeader...), bulk.ResultColumns...)
	if len(recs) == 0 || strings.Join(recs[0], ",") != strings.Join(wantHeader, ",") {
		t.Fatalf("results CSV header %q, want %q", recs[0], wantHeader)
	}
	recs = recs[1:]
	if len(recs) != len(rows) {
		t.Fatalf("results CSV has %d rows, want %d:\n%s", len(recs), len(rows), body)
	}
	col := func(name string) int { return slices.Index(wantHeader, name) }
	counts := map[string]int{}
	for i, rec := range recs {
		in := rows[i]
		if got, want := strings.Join(rec[:len(bulkHeader)], "|"), strings.Join(in.cells(), "|"); got != want {
			t.Errorf("results row %d: input cells %q, want %q", rowNumber(i), got, want)
		}
		if rec[col("row")] != strconv.Itoa(rowNumber(i)) {
			t.Errorf("results line %d names row %q, want %d", i+2, rec[col("row")], rowNumber(i))
		}
		status, httpStatus, msg, zid := rec[col("outcome")], rec[col("http_status")], rec[col("error")], rec[col("zendesk_id")]
		counts[status]++
		switch in.bad {
		case "":
			if status != "done" || !strings.HasPrefix(httpStatus, "2") || zid == "" || zid == "0" || msg != "" {
				t.Errorf("results row %d (good): status %q, http_status %q, zendesk_id %q, error %q; want done, 2xx, a rating id, no error",
					rowNumber(i), status, httpStatus, zid, msg)
			}
		default:
			sent := httpStatus != "" && httpStatus != "0"
			if status != "invalid" || sent || !strings.HasPrefix(msg, in.bad+":") {
				t.Errorf("results row %d (bad %s): status %q, http_status %q, error %q; want invalid, nothing sent, an error about %s",
					rowNumber(i), in.bad, status, httpStatus, msg, in.bad)
			}
		}
	}
	if counts["done"] != 17 || counts["invalid"] != 3 || len(counts) != 2 {
		t.Errorf("results CSV statuses %v, want 17 done and 3 invalid", counts)
	}
}

func TestE2EBulkPaste(t *testing.T) {
	t.Parallel()
	b := newTestBrowser(t) // first: it skips when there is no chromium
	app := newTestE2EApp(t)
	b.mustLoginAs(app, sandbox.DemoAdminEmail)

	// Neither a file nor rows: the form says what to do, and nothing is stored.
	b.mustNavigate(app.URL + "/bulk")
	b.mustWaitVisible(tid("upload-form"))
	b.mustClickAndLoad(tid("upload-submit"))
	if msg := b.mustText(tid("upload-error")); !strings.Contains(msg, "paste rows") {
		t.Errorf("submitting an empty form says %q, want it to ask for a file or pasted rows", msg)
	}
	b.shot("upload-error")
	if n := b.count(`[data-testid="runs"] tbody tr`); n != 0 {
		t.Errorf("an empty submission left %d run(s) in the history", n)
	}

	rows := newTestBulkRows()
	text := mustBulkCSV(t, rows)
	b.mustUpload(app, func() { b.mustPaste(tid("pasted"), text) })
	b.shot("preview")
	b.checkPreview(rows)
	if body := mustEval[string](b, `document.querySelector('[data-testid="run"]').innerText`); !strings.Contains(body, "pasted rows") {
		t.Errorf("the preview of pasted rows does not name them as such:\n%s", indent(body))
	}
	if got := b.mustText(tid("run-state")); got != "preview" {
		t.Errorf("pasted rows made a run in state %q, want preview (nothing sent before confirming)", got)
	}
}
