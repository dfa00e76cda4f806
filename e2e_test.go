package main

// Browser end-to-end tests: the real app (run, as `go run .` starts it, with
// its built-in sandbox Zendesk) driven by a headless Debian chromium through
// chromedp. They are skipped when chromium is missing, and required with
// E2E=1. With SHOTS_DIR set they also save a screenshot of every page they
// pass through, for review.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

func TestE2ELoginAsAdmin(t *testing.T) {
	t.Parallel()
	b := newTestBrowser(t) // first: it skips when there is no chromium
	app := newTestE2EApp(t)

	b.mustLoginAs(app, sandbox.DemoAdminEmail)

	if got := b.mustText(tid("signed-in")); !strings.Contains(got, "Signed in as Ada Admin") {
		t.Errorf("header says %q, want it to say Signed in as Ada Admin", got)
	}
	if loc := b.mustLocation(); loc != app.URL+"/" {
		t.Errorf("after login the browser is at %s, want the home page %s/", loc, app.URL)
	}
	if n := b.count(`[data-testid="login"]`); n != 0 {
		t.Errorf("the signed-in home page still offers %d login button(s)", n)
	}
}

func TestE2EDenyShowsMessage(t *testing.T) {
	t.Parallel()
	b := newTestBrowser(t) // first: it skips when there is no chromium
	app := newTestE2EApp(t)

	zendeskURL := b.mustReachConsent(app)
	b.mustConsent(sandbox.DemoAdminEmail, "deny")
	msg := b.mustText(tid("error-message"))
	b.shot("error-access-denied")

	if !strings.Contains(strings.ToLower(msg), "denied") {
		t.Errorf("error message %q does not say that access was denied", msg)
	}
	if n := b.count(`[data-testid="signed-in"]`); n != 0 {
		t.Error("the page shows an admin signed in after Deny")
	}
	action := b.mustText(tid("error-action"))
	if !strings.Contains(strings.ToLower(action), "log in") {
		t.Errorf("the error page's action is %q, want an offer to log in again", action)
	}
	// The offer must work: it leads back to Zendesk's consent page.
	b.mustClickAndLoad(tid("error-action"))
	b.mustWaitVisible(tid("allow"))
	if loc := b.mustLocation(); !strings.HasPrefix(loc, zendeskURL+"/oauth/authorizations/new?") {
		t.Errorf("%q led to %s, want the sandbox Zendesk's authorize page", action, loc)
	}
}

func TestE2EAgentIsRefused(t *testing.T) {
	t.Parallel()
	b := newTestBrowser(t) // first: it skips when there is no chromium
	app := newTestE2EApp(t)

	b.mustReachConsent(app)
	b.mustConsent(sandbox.DemoAgentEmail, "allow")
	heading := b.mustText(chromedp.CSS(`[data-testid="error"] h1`))
	msg := b.mustText(tid("error-message"))
	b.shot("error-agent-refused")

	if !strings.Contains(heading+" "+msg, "Only Zendesk admins can use onbehalf") {
		t.Errorf("refusal page says %q / %q, want \"Only Zendesk admins can use onbehalf\"", heading, msg)
	}
	if !strings.Contains(msg, sandbox.DemoAgentEmail) {
		t.Errorf("refusal %q does not say who signed in (%s)", msg, sandbox.DemoAgentEmail)
	}
	if n := b.count(`[data-testid="signed-in"]`); n != 0 {
		t.Error("the refusal page shows someone signed in")
	}
	// Nobody is signed in afterwards: the home page offers the login again.
	b.mustNavigate(app.URL + "/")
	b.mustWaitVisible(tid("login"))
}

func TestE2EActAsEndUser(t *testing.T) {
	t.Parallel()
	b := newTestBrowser(t) // first: it skips when there is no chromium
	app := newTestE2EApp(t)
	b.mustLoginAs(app, sandbox.DemoAdminEmail)

	// Search as you type: the results follow the typing without a page load.
	b.mustNavigate(app.URL + "/users")
	b.mustWaitVisible(tid("user-search"))
	b.shot("user-search")
	mustEval[bool](b, `window.e2eSamePage = true`)
	b.mustType(tid("user-search"), "bea")
	beaRow := chromedp.CSS(fmt.Sprintf(`[data-testid="user-results"] [data-testid="user-%d"]`, sandbox.DemoBeaID))
	row := b.mustText(beaRow)
	b.shot("search-results")
	if !strings.Contains(row, "Bea Lindqvist") || !strings.Contains(row, sandbox.DemoBeaEmail) {
		t.Errorf("Bea's result row reads %q", row)
	}
	if !mustEval[bool](b, `window.e2eSamePage === true`) {
		t.Error("the results came with a page load; want search as you type (the live search script)")
	}
	if n := b.count(fmt.Sprintf(`[data-testid="user-%d"]`, sandbox.DemoBeauID)); n != 1 {
		t.Errorf("searching \"bea\" shows Beau Tremblay %d times, want once", n)
	}

	// Pick Bea: the acting banner names her on every page from now on.
	b.mustClickAndLoad(beaRow + ` [data-testid="pick"]`)
	if got := b.mustText(tid("acting-name")); got != "Bea Lindqvist" {
		t.Errorf("acting banner names %q, want Bea Lindqvist", got)
	}
	solved := fmt.Sprintf(`[data-testid="request-%d"]`, sandbox.TicketBeaSolved)
	b.mustWaitVisible(chromedp.CSS(solved))
	b.shot("requests")
	if n := b.count(`[data-testid="requests"] tbody tr`); n < 5 {
		t.Errorf("Bea's requests list has %d rows, want all of her demo requests", n)
	}

	// Open solved ticket #105 from the list and rate it good with a comment.
	b.mustClickAndLoad(chromedp.CSS(solved + ` a[href="/as/requests/` + strconv.Itoa(sandbox.TicketBeaSolved) + `"]`))
	b.mustWaitVisible(tid("rate-submit"))
	if got := b.mustText(tid("acting-name")); got != "Bea Lindqvist" {
		t.Errorf("on the request page the acting banner names %q, want Bea Lindqvist", got)
	}
	b.shot("request")
	comment := "Quick and friendly, thank you!"
	b.mustClick(tid("score-good"))
	b.mustType(tid("rate-comment"), comment)
	b.mustClickAndLoad(tid("rate-submit"))
	notice := b.mustText(tid("notice"))
	b.shot("rating-confirmation")
	if want := fmt.Sprintf("#%d", sandbox.TicketBeaSolved); !strings.Contains(notice, want) || !strings.Contains(strings.ToLower(notice), "good") {
		t.Errorf("confirmation notice %q, want it to name ticket %s and the score good", notice, want)
	}
	if loc := b.mustLocation(); loc != fmt.Sprintf("%s/as/requests/%d", app.URL, sandbox.TicketBeaSolved) {
		t.Errorf("after rating the browser is at %s, want back on the request page", loc)
	}
	if got := b.mustText(tid("rating")); got != "rated good" {
		t.Errorf("the request page shows the rating %q after rating good", got)
	}

	// The audit trail has the rating, as Bea, on #105, done.
	b.mustNavigate(app.URL + "/audit")
	b.mustWaitVisible(tid("audit-row"))
	b.mustWaitVisible(tid("audit-csv"))
	b.shot("audit")
	rows := mustEval[[][]string](b, `Array.from(document.querySelectorAll('[data-testid="audit-row"]'),
		tr => Array.from(tr.cells, td => td.innerText.trim()))`)
	found := false
	for _, r := range rows {
		// Columns: when, admin, action, end user, ticket, run, outcome, details.
		if len(r) >= 7 && r[2] == "Rate a ticket" && r[4] == fmt.Sprintf("#%d", sandbox.TicketBeaSolved) {
			found = true
			if !strings.Contains(strings.ToLower(r[3]), "bea") {
				t.Errorf("audit row %q: end user %q, want Bea", r, r[3])
			}
			if r[6] != "done" {
				t.Errorf("audit row %q: outcome %q, want done", r, r[6])
			}
			if r[1] != "Ada Admin" {
				t.Errorf("audit row %q: admin %q, want Ada Admin", r, r[1])
			}
		}
	}
	if !found {
		t.Errorf("no audit row for rating #%d; rows:\n%q", sandbox.TicketBeaSolved, rows)
	}

	// A closed ticket offers no rating form, and says why.
	b.mustNavigate(fmt.Sprintf("%s/as/requests/%d", app.URL, sandbox.TicketBeaClosed))
	why := b.mustText(tid("rate-why-not"))
	b.shot("closed-request")
	if !strings.Contains(strings.ToLower(why), "closed") {
		t.Errorf("rate-why-not on a closed ticket says %q, want it to explain the ticket is closed", why)
	}
	if n := b.count(`[data-testid="rate-submit"]`); n != 0 {
		t.Error("a closed ticket still offers the rating form")
	}
}

func TestE2EUserSearchWithoutJavascript(t *testing.T) {
	t.Parallel()
	b := newTestBrowser(t) // first: it skips when there is no chromium
	app := newTestE2EApp(t)
	b.mustLoginAs(app, sandbox.DemoAdminEmail)

	b.mustDisableJavaScript()
	b.mustNavigate(app.URL + "/users")
	b.mustType(tid("user-search"), "bea")
	b.mustClickAndLoad(chromedp.CSS(`form[role="search"] button[type="submit"]`))
	beaRow := chromedp.CSS(fmt.Sprintf(`[data-testid="user-results"] [data-testid="user-%d"]`, sandbox.DemoBeaID))
	if row := b.mustText(beaRow); !strings.Contains(row, "Bea Lindqvist") {
		t.Errorf("Bea's result row reads %q", row)
	}
	if loc := b.mustLocation(); loc != app.URL+"/users?q=bea" {
		t.Errorf("the plain search form went to %s, want %s/users?q=bea", loc, app.URL)
	}
	b.mustClickAndLoad(beaRow + ` [data-testid="pick"]`)
	if got := b.mustText(tid("acting-name")); got != "Bea Lindqvist" {
		t.Errorf("acting banner names %q, want Bea Lindqvist", got)
	}
}
