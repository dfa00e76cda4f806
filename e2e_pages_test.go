package main

// Browser tests that walk every page of the app at a laptop's width and a
// phone's (390 px): each page is photographed (SHOTS_DIR), must be no wider
// than the screen, and must pass axe-core (mustReview). They also check the
// focus ring's contrast and the CSV drop zone.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// focusRingJS focuses the first element matching the selector as a keyboard
// would and returns the contrast ratio of its outline against the
// background behind it (the nearest ancestor with a background), or -1
// when it shows no outline.
const focusRingJS = `((sel) => {
	const el = document.querySelector(sel);
	if (!el) return -2;
	el.focus({focusVisible: true});
	const st = getComputedStyle(el);
	if (st.outlineStyle === "none" || parseFloat(st.outlineWidth) < 2) return -1;
	const rgb = (c) => (c.match(/[\d.]+/g) || []).slice(0, 3).map(Number);
	const lum = (c) => {
		const [r, g, b] = rgb(c).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
		return 0.2126 * r + 0.7152 * g + 0.0722 * b;
	};
	let bg = "rgb(255, 255, 255)";
	for (let e = el.parentElement; e; e = e.parentElement) {
		const c = getComputedStyle(e).backgroundColor;
		if (c && c !== "transparent" && !/rgba\(.*,\s*0\)$/.test(c)) { bg = c; break; }
	}
	const [a, b] = [lum(st.outlineColor), lum(bg)].sort((x, y) => y - x);
	el.blur();
	return (a + 0.05) / (b + 0.05);
})(%q)`

// mustFocusRingContrast checks that the element's keyboard focus ring
// stands out at least 3:1 from what is behind it (WCAG 1.4.11).
func (b *e2eBrowser) mustFocusRingContrast(what, sel string) {
	b.t.Helper()
	ratio := mustEval[float64](b, fmt.Sprintf(focusRingJS, sel))
	switch {
	case ratio == -2:
		b.fail("no %s (%s) on the page to focus", what, sel)
	case ratio < 0:
		b.t.Errorf("the %s (%s) shows no focus outline", what, sel)
	case ratio < 3:
		b.t.Errorf("the focus ring of the %s (%s) has contrast %.2f:1, want at least 3:1", what, sel, ratio)
	default:
		b.t.Logf("focus ring of the %s: %.1f:1", what, ratio)
	}
}

func TestE2EPagesHomeSearchAndAudit(t *testing.T) {
	// Not parallel: reviewing every page at two widths with axe-core is
	// heavy, and the other browser tests wait for these to finish.
	b := newTestBrowser(t)
	app := newTestE2EApp(t)
	b.mustNavigate(app.URL + "/")
	b.mustWaitVisible(tid("login"))
	b.mustReview("login")
	b.mustLoginAs(app, sandbox.DemoAdminEmail)
	b.mustReview("home")
	b.mustFocusRingContrast("header link", `.topnav a`)
	b.mustFocusRingContrast("log out button in the header", `[data-testid="logout"]`)
	b.mustFocusRingContrast("primary button", `.button.primary`)

	b.mustNavigate(app.URL + "/users?q=be")
	b.mustWaitVisible(chromedp.CSS(`[data-testid="user-results"]`))
	b.mustReview("user-search")
	b.mustPickBea(app)
	b.mustReview("requests")
	b.mustFocusRingContrast("button in the acting banner", `[data-testid="stop-acting"]`)

	b.mustNavigate(app.URL + "/audit")
	b.mustWaitVisible(tid("audit-events"))
	b.mustReview("audit")

	b.mustNavigate(app.URL + "/no-such-page")
	b.mustWaitVisible(tid("error"))
	b.mustReview("not-found")
}

// mustPickBea starts acting as Bea Lindqvist from the user search.
func (b *e2eBrowser) mustPickBea(app *e2eApp) {
	b.t.Helper()
	b.mustNavigate(app.URL + "/users?q=" + sandbox.DemoBeaEmail)
	b.mustClickAndLoad(chromedp.CSS(fmt.Sprintf(`[data-testid="user-%d"] [data-testid="pick"]`, sandbox.DemoBeaID)))
	b.mustWaitVisible(tid("acting-banner"))
}

func TestE2EPagesOfARequest(t *testing.T) {
	// Not parallel: reviewing every page at two widths with axe-core is
	// heavy, and the other browser tests wait for these to finish.
	b := newTestBrowser(t)
	app := newTestE2EApp(t)
	b.mustLoginAs(app, sandbox.DemoAdminEmail)
	b.mustPickBea(app)

	b.mustNavigate(fmt.Sprintf("%s/as/requests/%d", app.URL, sandbox.TicketBeaSolved))
	b.mustWaitVisible(tid("rate"))
	b.mustReview("request")
	b.mustClick(tid("score-bad"))
	b.mustSetValue(chromedp.CSS(`#reason`), "7")
	b.mustClickAndLoad(tid("rate-submit"))
	if got := b.mustText(tid("rating-reason")); !strings.Contains(got, "The agent's knowledge is unsatisfactory") {
		t.Errorf("after rating bad with reason 7 the page says %q", got)
	}
	b.mustReview("rated-bad")

	// A comment that reopens a solved request: the notice, and the amber
	// warning beside it.
	b.mustNavigate(fmt.Sprintf("%s/as/requests/%d", app.URL, sandbox.TicketBeaSolvedProblem))
	b.mustType(tid("comment-body"), "One more thing")
	b.mustClickAndLoad(tid("comment-submit"))
	b.mustWaitVisible(tid("action-warning"))
	b.mustReview("comment-reopened")

	b.mustNavigate(app.URL + "/as/requests/new")
	b.mustClickAndLoad(tid("create-submit"))
	b.mustWaitVisible(tid("error-summary"))
	b.mustReview("new-request-errors")

	b.mustNavigate(fmt.Sprintf("%s/as/requests/%d", app.URL, sandbox.TicketBeaClosed))
	b.mustWaitVisible(tid("closed-notice"))
	b.mustReview("closed-request")
}

func TestE2EPagesOfABulkRun(t *testing.T) {
	// Not parallel: reviewing every page at two widths with axe-core is
	// heavy, and the other browser tests wait for these to finish.
	b := newTestBrowser(t)
	app := newTestE2EApp(t)
	b.mustLoginAs(app, sandbox.DemoAdminEmail)
	dialogs := b.acceptDialogs()
	// Acting as someone, to see what the banner says on bulk pages.
	b.mustPickBea(app)

	b.mustNavigate(app.URL + "/bulk")
	b.mustWaitVisible(tid("upload-form"))
	if banner := b.mustText(tid("acting-banner")); !strings.Contains(banner, "does not apply to bulk runs") {
		t.Errorf("the acting banner on /bulk says %q", banner)
	}
	if hint := b.mustText(chromedp.CSS(`[data-dropzone-hint]`)); !strings.Contains(hint, "Drag") {
		t.Errorf("with JavaScript the drop zone says %q, want it to offer dragging", hint)
	}
	b.mustReview("bulk")

	// The sandbox's own sample file, fetched as the browser would download it.
	sample, err := step(b, chromedp.Evaluate[string](`fetch(document.querySelector('[data-testid="sample-csv"]').href).then((r) => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail("fetch the sample CSV: %v", err)
	}
	if !strings.HasPrefix(sample, "email,ticket_id,score") {
		t.Fatalf("the sample CSV starts %q", sample[:min(len(sample), 60)])
	}
	file := filepath.Join(t.TempDir(), "sandbox-ratings.csv")
	if err := os.WriteFile(file, []byte(sample), 0o600); err != nil {
		t.Fatal(err)
	}
	// Drop it on the zone: the script puts it into the file input.
	mustEval[bool](b, fmt.Sprintf(`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File([%q], "dropped.csv", {type: "text/csv"}));
		const zone = document.querySelector("[data-dropzone]");
		zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
		return true;
	})()`, sample))
	if got := mustEval[string](b, `(document.querySelector("#file").files[0] || {}).name || ""`); got != "dropped.csv" {
		t.Errorf("after a drop the file input holds %q, want dropped.csv", got)
	}
	if got := b.mustText(chromedp.CSS(`[data-chosen]`)); got != "Chosen: dropped.csv" {
		t.Errorf("after a drop the zone says %q", got)
	}

	id := b.mustUpload(app, func() { b.mustSetUploadFile(tid("file"), file) })
	if by := b.mustText(tid("uploaded-by")); !strings.Contains(by, "prepared by Ada Admin") {
		t.Errorf("the preview says %q, want prepared by", by)
	}
	b.mustReview("preview")
	b.mustClickAndLoad(tid("preflight"))
	b.mustWaitVisible(tid("first-refusals"))
	b.mustReview("preflight")

	b.mustClickAndLoad(tid("confirm"))
	<-dialogs
	b.mustWaitFinished()
	b.mustReview("finished")
	if n := b.count(`[data-testid="run-chart"] svg[role="img"]`); n != 1 {
		t.Errorf("the finished run shows %d charts, want 1", n)
	}

	b.mustNavigate(fmt.Sprintf("%s/audit?run=%d", app.URL, id))
	b.mustWaitVisible(tid("audit-events"))
	if n := b.count(fmt.Sprintf(`[data-testid="audit-row"] a[href="/bulk/runs/%d"]`, id)); n < 5 {
		t.Errorf("the audit filtered by run %d links %d rows to it, want the 5 sent rows", id, n)
	}
	b.mustReview("audit-of-run")

	b.mustNavigate(app.URL + "/")
	b.mustWaitVisible(tid("home-runs"))
	b.mustReview("home-with-runs")
}
