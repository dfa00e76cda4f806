package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// The session ends while the admin types a comment (its cookie is gone, as
// after a timeout or a restart with a new key). Sending refuses without
// acting; the error page leads back to the form through logging in again and
// picking the end user again; the form comes back with the text filled in,
// and a line saying it was not sent; sending it then posts it once, and the
// draft is gone.
func TestE2EDraftSurvivesAnEndedSession(t *testing.T) {
	t.Parallel()
	b := newTestBrowser(t)
	app := newTestE2EApp(t)
	b.mustLoginAs(app, sandbox.DemoAdminEmail)
	b.mustPickBea(app)
	page := fmt.Sprintf("/as/requests/%d", sandbox.TicketBeaOpen)
	b.mustNavigate(app.URL + page)
	text := "Here is the long answer I took ten minutes to write"
	b.mustType(tid("comment-body"), text)

	b.mustClearCookies() // the session ends
	b.mustClickAndLoad(tid("comment-submit"))
	if h := b.mustText(chromedp.CSS("h1")); h != "This form has expired" {
		t.Fatalf("sending after the session ended shows %q", h)
	}
	if href := b.mustAttr(tid("error-action"), "href"); href != page {
		t.Errorf("the expired form's button leads to %q, want back to %q", href, page)
	}
	b.mustReview("form-expired")

	// Back to the form: log in again, pick Bea again, and on to the page.
	b.mustClickAndLoad(tid("error-action"))
	b.mustWaitVisible(chromedp.CSS(`select[data-testid="user"]`)) // Zendesk's sign-in
	b.mustConsent(sandbox.DemoAdminEmail, "allow")
	b.mustWaitVisible(tid("pick-return"))
	b.mustReview("pick-then-return")
	b.mustType(tid("user-search"), sandbox.DemoBeaEmail)
	b.mustClickAndLoad(chromedp.CSS(fmt.Sprintf(`[data-testid="user-%d"] [data-testid="pick"]`, sandbox.DemoBeaID)))
	if loc := b.mustLocation(); loc != app.URL+page {
		t.Fatalf("after logging in and picking again the browser is at %s, want %s", loc, app.URL+page)
	}
	b.mustWaitVisible(tid("draft-restored"))
	if got := mustEval[string](b, `document.querySelector('[data-testid="comment-body"]').value`); got != text {
		t.Errorf("the comment box holds %q after the round trip, want what was typed: %q", got, text)
	}
	if n := postedTimes(b, text); n != 0 {
		t.Errorf("the conversation shows the comment %d times before it was sent again, want none", n)
	}
	b.mustReview("draft-restored")

	b.mustClickAndLoad(tid("comment-submit"))
	b.mustWaitVisible(tid("notice"))
	if n := postedTimes(b, text); n != 1 {
		t.Errorf("the conversation shows the comment %d times after sending, want once", n)
	}
	if got := mustEval[string](b, `document.querySelector('[data-testid="comment-body"]').value`); got != "" {
		t.Errorf("after sending, the comment box holds %q, want it empty", got)
	}
	b.mustNavigate(app.URL + page)
	b.mustWaitVisible(tid("comment-body"))
	if n := b.count(`[data-testid="draft-restored"]`); n != 0 {
		t.Error("the draft was filled in again after it was sent")
	}
}

// postedTimes counts the comments of the request page's conversation that
// read text.
func postedTimes(b *e2eBrowser, text string) int {
	b.t.Helper()
	return mustEval[int](b, fmt.Sprintf(`Array.from(document.querySelectorAll('[data-testid="comments"] .body'),
		e => e.textContent.trim()).filter(t => t === %q).length`, text))
}

// Two tabs of one browser share the session, and so whom the admin acts as.
// A form opened in one tab as Bea, sent after the other tab switched to
// Beau, must not be sent as Beau: it is refused, nothing is sent, and the
// refusal leads back, through acting as Bea again, to the form with the text
// filled in; sent then, it opens the request as Bea.
func TestE2EFormFromAnOlderTabIsNotSentAsSomeoneElse(t *testing.T) {
	t.Parallel()
	b := newTestBrowser(t)
	app := newTestE2EApp(t)
	b.mustLoginAs(app, sandbox.DemoAdminEmail)
	b.mustPickBea(app)
	b.mustNavigate(app.URL + "/as/requests/new")
	subject, body := "Printer on floor 3", "It jams on every second page since Monday."
	b.mustType(tid("subject"), subject)
	b.mustType(tid("body"), body)

	other := b.newTab("second-tab")
	other.mustNavigate(app.URL + "/users?q=" + sandbox.DemoBeauEmail)
	other.mustClickAndLoad(chromedp.CSS(fmt.Sprintf(`[data-testid="user-%d"] [data-testid="pick"]`, sandbox.DemoBeauID)))
	other.mustWaitVisible(tid("acting-banner"))

	b.mustClickAndLoad(tid("create-submit"))
	if h := b.mustText(chromedp.CSS("h1")); h != "You now act as someone else" {
		t.Fatalf("sending Bea's form after the other tab switched to Beau shows %q", h)
	}
	if msg := b.mustText(tid("error-message")); !strings.Contains(msg, "Beau Tremblay") || !strings.Contains(msg, "nothing was sent") {
		t.Errorf("the refusal says %q; want it to name Beau and say nothing was sent", msg)
	}
	b.mustReview("acting-switched")

	// Act as Bea again, and on to the form, filled in.
	b.mustClickAndLoad(tid("error-action"))
	b.mustWaitVisible(tid("pick-return"))
	b.mustClickAndLoad(chromedp.CSS(fmt.Sprintf(`[data-testid="user-%d"] [data-testid="pick"]`, sandbox.DemoBeaID)))
	if loc := b.mustLocation(); loc != app.URL+"/as/requests/new" {
		t.Fatalf("after acting as Bea again the tab is at %s, want the new-request form", loc)
	}
	b.mustWaitVisible(tid("draft-restored"))
	got := mustEval[[]string](b, `[document.querySelector('[data-testid="subject"]').value, document.querySelector('[data-testid="body"]').value]`)
	if len(got) != 2 || got[0] != subject || got[1] != body {
		t.Errorf("the form holds %q after the round trip, want %q and %q", got, subject, body)
	}
	b.mustClickAndLoad(tid("create-submit"))
	b.mustWaitVisible(tid("notice"))
	if banner := b.mustText(tid("acting-name")); banner != "Bea Lindqvist" {
		t.Errorf("after sending, the banner names %q, want Bea Lindqvist", banner)
	}
	if h := b.mustText(chromedp.CSS("h1")); !strings.Contains(h, subject) {
		t.Errorf("the new request's page is titled %q, want the subject %q", h, subject)
	}
}
