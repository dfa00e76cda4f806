package main

// Browser end-to-end test of security promise 11 with two admins signed in
// at once, each in a browser of their own: a bulk run belongs to the admin
// who uploaded it, and any admin may cancel it once it runs.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// mustPostForm submits a form the page does not offer, as a hand-made
// request from the signed-in browser would (with the page's form token), and
// waits for the page the app answers with.
func (b *e2eBrowser) mustPostForm(path string, fields map[string]string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => {
		const f = document.createElement("form");
		f.method = "post";
		f.action = %q;
		const add = (name, value) => {
			const i = document.createElement("input");
			i.type = "hidden"; i.name = name; i.value = value;
			f.appendChild(i);
		};
		add("_csrf", document.querySelector('input[name="_csrf"]').value);
		for (const [k, v] of Object.entries(%s)) add(k, v);
		document.body.appendChild(f);
		f.submit();
		return true;
	})()`, path, mustJSON(b.t, fields))
	if _, err := step(b, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Evaluate[bool](js))); err != nil {
		b.fail("post %s and wait for the answer: %v", path, err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestE2EBulkRunBelongsToItsAdmin(t *testing.T) {
	t.Parallel()
	ada := newTestBrowser(t) // first: it skips when there is no chromium
	ola := newTestBrowser(t)
	ada.Name, ola.Name = "ada", "ola"
	// One write a second, so the run is still going when Ola cancels it.
	app := newTestE2EAppEnv(t, map[string]string{"ZENDESK_RATE_LIMIT": "60"})
	ada.mustLoginAs(app, sandbox.DemoAdminEmail)
	ola.mustLoginAs(app, sandbox.DemoAdmin2Email)
	adaDialogs, olaDialogs := ada.acceptDialogs(), ola.acceptDialogs()

	rows := newTestBulkRows()
	text := mustBulkCSV(t, rows)
	id := ada.mustUpload(app, func() { ada.mustPaste(tid("pasted"), text) })
	runURL := fmt.Sprintf("%s/bulk/runs/%d", app.URL, id)

	// Ola opens Ada's preview: she sees it, but no button that would send it
	// on Ada's sign-in, and the page tells her whose run it is.
	ola.mustNavigate(runURL)
	ola.mustWaitVisible(tid("preview-counts"))
	if n := ola.count(`[data-testid="confirm"], [data-testid="preflight"], [data-testid="mapping"]`); n != 0 {
		t.Errorf("Ada's run offers Ola %d form(s) to change, check or confirm it", n)
	}
	if note := ola.mustText(tid("not-owner")); !strings.Contains(note, "This run belongs to Ada Admin") || !strings.Contains(note, "confirm it") {
		t.Errorf("Ola's view of Ada's run says %q; want it to name Ada and say why Ola cannot confirm", note)
	}
	ola.mustReview("preview-seen-by-ola")

	// Nor does a hand-made confirmation get through: the answer names Ada.
	ola.mustPostForm(fmt.Sprintf("/bulk/runs/%d/confirm", id), map[string]string{"writes": "17"})
	if msg := ola.mustText(tid("error-message")); !strings.Contains(msg, "This run belongs to Ada Admin") || !strings.Contains(msg, "Only the admin who uploaded a run can confirm it") {
		t.Errorf("Ola's confirmation of Ada's run was answered with %q; want a refusal naming Ada", msg)
	}
	ola.mustReview("confirm-refused")

	// Ada confirms her run.
	ada.mustClickAndLoad(tid("confirm"))
	if msg := <-adaDialogs; !strings.Contains(msg, "Send 17 changes") {
		t.Errorf("Ada's confirmation dialog asks %q", msg)
	}
	ada.mustWaitVisible(tid("progress-counts"))
	if by := ada.mustText(tid("confirmed-by")); !strings.Contains(by, "Confirmed by Ada Admin") {
		t.Errorf("the running run says %q, want Confirmed by Ada Admin", by)
	}

	// Ola pulls the brake on Ada's running run.
	ola.mustNavigate(runURL)
	ola.mustWaitVisible(tid("cancel"))
	ola.mustReview("running-seen-by-ola")
	ola.mustClickAndLoad(tid("cancel"))
	if msg := <-olaDialogs; !strings.Contains(msg, "Stop Ada Admin's run?") {
		t.Errorf("Ola's cancel dialog asks %q; want it to say whose run it stops", msg)
	}
	if notice := ola.mustText(tid("notice")); !strings.Contains(notice, "The run was cancelled") {
		t.Errorf("after cancelling Ola reads %q", notice)
	}

	// Ada's page follows: once the last write sent has its answer, it shows
	// the final counts and who cancelled.
	ada.mustWaitFinished()
	if got := ada.mustText(tid("run-state")); got != "cancelled" {
		t.Errorf("Ada's run is %q after Ola cancelled it, want cancelled", got)
	}
	if by := ada.mustText(tid("cancelled-by")); !strings.Contains(by, "Cancelled by Ola Owner") {
		t.Errorf("Ada's page says %q, want Cancelled by Ola Owner", by)
	}
	if skipped := ada.mustInt(tid("count-skipped")); skipped == 0 {
		t.Error("Ola's cancel skipped no row: the run had ended before it")
	}
	ada.mustReview("cancelled-by-ola")
}
