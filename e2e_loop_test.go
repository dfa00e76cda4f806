package main

// The support lead's loop in a browser: a survey export with 1–5 stars goes
// through the score mapping, the pre-flight and "send the rows Zendesk would
// accept"; the rows to fix are downloaded, edited and uploaded again, and
// sent. The app talks to a sandbox Zendesk the test starts itself, so the
// test can check what Zendesk received at each step.

import (
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// newTestLoopApp starts the app against a sandbox Zendesk of the test's own
// and returns both.
func newTestLoopApp(t *testing.T) (*e2eApp, *sandbox.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sb, err := sandbox.Start(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	public := "http://" + addr
	sb.RegisterClient(sandbox.Client{Identifier: "onbehalf-e2e-loop", Secret: "e2e-loop-secret",
		RedirectURIs: []string{public + "/oauth/callback"}})
	u, _, _ := startRun(t, map[string]string{"ADDR": addr, "PUBLIC_URL": public, "DATA_DIR": t.TempDir(),
		"ZENDESK_URL": sb.URL, "ZENDESK_CLIENT_ID": "onbehalf-e2e-loop", "ZENDESK_CLIENT_SECRET": "e2e-loop-secret",
		"ZENDESK_RATE_LIMIT": "2000"})
	return &e2eApp{URL: strings.TrimRight(u, "/")}, sb
}

// ratingsByTicket is what the sandbox received: each ticket's rating
// bodies, in order.
func ratingsByTicket(sb *sandbox.Server) map[int64][]string {
	out := map[int64][]string{}
	for _, w := range sb.Writes() {
		if strings.HasSuffix(w.Endpoint, "/satisfaction_rating") {
			out[w.TicketID] = append(out[w.TicketID], w.Body)
		}
	}
	return out
}

// mustFetchLink fetches the href of the element sel from inside the page,
// with the page's cookies, as mustFetchResults does.
func (b *e2eBrowser) mustFetchLink(sel string) resultsDownload {
	b.t.Helper()
	b.mustWaitVisible(chromedp.CSS(sel))
	ctx, cancel := context.WithTimeout(b.ctx, e2eStepTimeout)
	defer cancel()
	res, err := chromedp.Run(ctx, chromedp.Evaluate[resultsDownload](`(async () => {
		const res = await fetch(document.querySelector(`+strconv.Quote(sel)+`).href, {credentials: "same-origin"});
		return {status: res.status, contentType: res.headers.get("Content-Type") || "",
			disposition: res.headers.get("Content-Disposition") || "", body: await res.text()};
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail("fetch %s: %v", sel, err)
	}
	return res
}

// mustApplyScores checks that the score form proposes want for each value
// and applies it.
func (b *e2eBrowser) mustApplyScores(want map[string]string) {
	b.t.Helper()
	b.mustWaitVisible(tid("score-form"))
	for v, w := range want {
		got := mustEval[string](b, fmt.Sprintf(`document.querySelector('[data-testid="score-choice-%s"]').value`, v))
		if got != w {
			b.t.Errorf("the score form proposes %q for %q, want %q", got, v, w)
		}
	}
	b.mustClickAndLoad(tid("apply-scores"))
	b.mustWaitVisible(tid("score-map"))
}

func TestE2ELoop(t *testing.T) {
	t.Parallel()
	b := newTestBrowser(t) // first: it skips when there is no chromium
	app, sb := newTestLoopApp(t)
	b.mustLoginAs(app, sandbox.DemoAdminEmail)
	dialogs := b.acceptDialogs()

	// A phone-survey export: 1–5 stars, the tool's own column names.
	survey := strings.Join([]string{
		"Customer email,Ticket,Stars,Notes",
		fmt.Sprintf("%s,%d,5,Lovely", sandbox.DemoBeaEmail, sandbox.TicketBeaSolved),         // row 2: good
		fmt.Sprintf("%s,%d,1,Slow", sandbox.DemoBeauEmail, sandbox.TicketBeauSolved),         // row 3: bad
		fmt.Sprintf("%s,%d,4,Fine", sandbox.DemoBeaEmail, sandbox.TicketBeaClosed),           // row 4: refused (closed)
		fmt.Sprintf("%s,%d,3,Meh", sandbox.DemoBeauEmail, sandbox.TicketBeauSolved2),         // row 5: left out
		fmt.Sprintf("%s,%d,4,Good again", sandbox.DemoBeaEmail, sandbox.TicketBeaReopened),   // row 6: good
		fmt.Sprintf("not-an-email,%d,5,Typo in the address", sandbox.TicketBeaSolvedProblem), // row 7: invalid
	}, "\r\n") + "\r\n"
	file := filepath.Join(t.TempDir(), "survey.csv")
	if err := os.WriteFile(file, []byte(survey), 0o600); err != nil {
		t.Fatal(err)
	}

	// The bulk page: the reference, with the account's reasons.
	b.mustNavigate(app.URL + "/bulk")
	b.mustWaitVisible(tid("reference"))
	mustEval[bool](b, `(document.querySelector('[data-testid="reference-rate"]').open = true)`)
	if txt := b.mustText(tid("reasons")); !strings.Contains(txt, sandbox.CustomReasonName) {
		t.Errorf("the bulk page's reasons %q do not name the account's custom reason", txt)
	}
	b.mustReview("bulk-reference")

	// Upload: the stars are not good/bad, so the preview offers the score
	// mapping with its guesses, and nothing is sent.
	id := b.mustUpload(app, func() { b.mustSetUploadFile(tid("file"), file) })
	b.shot("preview-scores")
	b.mustApplyScores(map[string]string{"5": "good", "4": "good", "3": "out", "1": "bad"})
	if got := b.mustInt(tid("count-valid")); got != 4 {
		t.Errorf("after the score mapping %d rows are ready, want 4", got)
	}
	if got := b.mustInt(tid("count-left-out")); got != 1 {
		t.Errorf("after the score mapping %d rows are left out, want 1", got)
	}
	if n := len(sb.Writes()); n != 0 {
		t.Fatalf("the preview wrote %d times to Zendesk", n)
	}

	// Pre-flight: Zendesk would refuse the closed ticket; the main button
	// sends the 3 others.
	b.mustClickAndLoad(tid("preflight"))
	b.mustWaitVisible(tid("first-refusals"))
	if got, want := b.mustText(tid("confirm")), "Send the 3 rows Zendesk would accept"; got != want {
		t.Errorf("after the pre-flight the main button says %q, want %q", got, want)
	}
	b.mustReview("preview-preflighted")
	if b.count(`[data-testid="tab-refused"]`) != 1 {
		t.Error("the pre-flighted preview offers no 'Zendesk would refuse' tab")
	}
	if n := len(sb.Writes()); n != 0 {
		t.Fatalf("the pre-flight wrote %d times to Zendesk", n)
	}
	b.mustClickAndLoad(tid("confirm"))
	select {
	case msg := <-dialogs:
		if !strings.Contains(msg, "Send 3 changes") || !strings.Contains(msg, "will be skipped") {
			t.Errorf("the confirmation asks %q, want 3 changes and the refused row skipped", msg)
		}
	default:
		t.Error("sending went without the confirmation dialog")
	}
	b.mustWaitFinished()
	b.mustReview("finished")
	got := ratingsByTicket(sb)
	if len(got) != 3 || len(got[sandbox.TicketBeaSolved]) != 1 || len(got[sandbox.TicketBeauSolved]) != 1 || len(got[sandbox.TicketBeaReopened]) != 1 {
		t.Errorf("Zendesk received ratings %v, want one each for tickets %d, %d and %d", got,
			sandbox.TicketBeaSolved, sandbox.TicketBeauSolved, sandbox.TicketBeaReopened)
	}
	if body := strings.Join(got[sandbox.TicketBeauSolved], ""); !strings.Contains(body, `"score":"bad"`) {
		t.Errorf("1 star reached Zendesk as %s, want bad", body)
	}
	if b.mustInt(tid("count-done")) != 3 || b.mustInt(tid("count-skipped")) != 2 {
		t.Errorf("finished: %d done, %d skipped; want 3 and 2 (the refused and the left-out row)",
			b.mustInt(tid("count-done")), b.mustInt(tid("count-skipped")))
	}

	// Results: one line per row, outcome and message apart.
	res := b.mustFetchResults()
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(res.Body, "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatalf("results CSV: %v", err)
	}
	outcome := slices.Index(recs[0], "outcome")
	var outcomes []string
	for _, r := range recs[1:] {
		outcomes = append(outcomes, r[outcome])
	}
	if want := []string{"done", "done", "skipped", "skipped", "done", "invalid"}; !slices.Equal(outcomes, want) {
		t.Errorf("results outcomes %q, want %q", outcomes, want)
	}

	// The rows to fix: the refused and the invalid row, in the file's own
	// columns with a problem column. Fix them as a lead would in a
	// spreadsheet, and upload the file again.
	fix := b.mustFetchLink(`[data-testid="rows-to-fix"]`)
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(fix.Body, "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatalf("rows to fix: %v", err)
	}
	if len(rows) != 3 || !slices.Equal(rows[0], []string{"Customer email", "Ticket", "Stars", "Notes", "problem"}) {
		t.Fatalf("rows to fix %q, want the header with a problem column and 2 rows", rows)
	}
	if !strings.Contains(rows[1][4], "Row 4") || !strings.Contains(rows[1][4], "closed") || !strings.Contains(rows[2][4], "Row 7") {
		t.Errorf("problems %q / %q, want row 4 (closed) and row 7", rows[1][4], rows[2][4])
	}
	rows[1][1] = strconv.Itoa(sandbox.TicketBeaSolvedRated) // the ticket the customer meant
	rows[2][0] = sandbox.DemoBeaEmail                       // the address corrected
	fixedFile := filepath.Join(t.TempDir(), "fixed.csv")
	f, err := os.Create(fixedFile)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.WriteAll(rows)
	f.Close()

	// Sending the fixed rows: a browser of its own, as each browser test
	// lives under one deadline and this one has done a whole run already.
	b = newTestBrowser(t)
	b.Name = "resend"
	b.mustLoginAs(app, sandbox.DemoAdminEmail)
	b.acceptDialogs()
	before := len(sb.Writes())
	id2 := b.mustUpload(app, func() { b.mustSetUploadFile(tid("file"), fixedFile) })
	if id2 == id {
		t.Fatal("the fixed file did not make a new run")
	}
	b.mustApplyScores(map[string]string{"5": "good", "4": "good"})
	if got := b.mustInt(tid("count-valid")); got != 2 {
		t.Errorf("the fixed file has %d rows ready, want 2", got)
	}
	b.mustClickAndLoad(tid("confirm"))
	b.mustWaitFinished()
	if got := b.mustInt(tid("count-done")); got != 2 {
		t.Errorf("the fixed rows: %d done, want 2", got)
	}
	got = ratingsByTicket(sb)
	if len(sb.Writes())-before != 2 || len(got[sandbox.TicketBeaSolvedRated]) != 1 || len(got[sandbox.TicketBeaSolvedProblem]) != 1 {
		t.Errorf("after the fixed upload Zendesk received %d more writes, ratings %v; want one each for %d and %d",
			len(sb.Writes())-before, got, sandbox.TicketBeaSolvedRated, sandbox.TicketBeaSolvedProblem)
	}
}
