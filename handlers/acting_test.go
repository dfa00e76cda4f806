package handlers

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// signedIn is a browser logged in as an admin, with the page's form token.
type signedIn struct {
	*browser
	csrf string
	// acting is the id of the end user last picked (mustPick).
	acting string
}

func loginAs(t testing.TB, app *testApp, email string) *signedIn {
	t.Helper()
	b := app.newBrowser()
	home := b.login(email)
	if home.Status != http.StatusOK {
		t.Fatalf("login as %s: status %d", email, home.Status)
	}
	return &signedIn{browser: b, csrf: csrfOf(t, home)}
}

// pick starts acting as the end user with this id or email.
func (s *signedIn) pick(ref string) response {
	s.t.Helper()
	return s.post("/acting", url.Values{"_csrf": {s.csrf}, "user": {ref}})
}

func (s *signedIn) mustPick(ref string) {
	s.t.Helper()
	if r := s.pick(ref); r.Status != http.StatusSeeOther || r.Location != "/as" {
		s.t.Fatalf("pick %s: status %d location %q: %.400s", ref, r.Status, r.Location, r.Body)
	}
	// The forms under /as name the end user they were drawn for.
	v, ok := s.get("/as/requests/new").doc(s.t).Find(`input[name="acting_user"]`).Attr("value")
	if !ok {
		s.t.Fatalf("after picking %s the new-request form names no end user", ref)
	}
	s.acting = v
}

// act sends a form as the page would: with the form token and, under /as,
// the end user the page was drawn for (unless the form names one).
func (s *signedIn) act(path string, form url.Values) response {
	s.t.Helper()
	form.Set("_csrf", s.csrf)
	if strings.HasPrefix(path, "/as/") && !form.Has("acting_user") && s.acting != "" {
		form.Set("acting_user", s.acting)
	}
	return s.post(path, form)
}

func ticketPath(id int64, action string) string {
	p := "/as/requests/" + strconv.FormatInt(id, 10)
	if action != "" {
		p += "/" + action
	}
	return p
}

// writesSince returns the sandbox writes after the first n.
func writesSince(app *testApp, n int) []sandbox.Write {
	w := app.Sandbox.Writes()
	if n > len(w) {
		return nil
	}
	return w[n:]
}

func countAudit(t *testing.T, app *testApp, action string) int {
	t.Helper()
	_, total, err := app.DB.FindAuditEvents(context.Background(), store.AuditFilter{Action: action, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

func TestActionsSucceedAsTheEndUser(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		path   string
		form   url.Values
		action string
		ticket int64
		notice string
		// state checks the ticket as the sandbox holds it afterwards.
		state func(t sandbox.Ticket) bool
	}{
		{"rate good", ticketPath(sandbox.TicketBeaSolved, "rate"), url.Values{"score": {"good"}, "comment": {"Thanks, all sorted."}}, "rate", sandbox.TicketBeaSolved, "good", func(tk sandbox.Ticket) bool {
			return tk.Rating != nil && tk.Rating.Score == "good" && tk.Rating.Comment == "Thanks, all sorted."
		}},
		{"rate bad with reason", ticketPath(sandbox.TicketBeaSolved, "rate"), url.Values{"score": {"bad"}, "reason": {"6"}}, "rate", sandbox.TicketBeaSolved, "bad", func(tk sandbox.Ticket) bool {
			return tk.Rating != nil && tk.Rating.Score == "bad" && tk.Rating.ReasonID == 6
		}},
		{"rate reopened after solved", ticketPath(sandbox.TicketBeaReopened, "rate"), url.Values{"score": {"good"}}, "rate", sandbox.TicketBeaReopened, "good", func(tk sandbox.Ticket) bool { return tk.Rating != nil && tk.Rating.Score == "good" }},
		{"comment", ticketPath(sandbox.TicketBeaOpen, "comment"), url.Values{"body": {"Any news?"}}, "comment", sandbox.TicketBeaOpen, "", func(tk sandbox.Ticket) bool { return lastComment(tk) == "Any news?" }},
		{"comment reopens solved", ticketPath(sandbox.TicketBeaSolved, "comment"), url.Values{"body": {"It broke again."}}, "comment", sandbox.TicketBeaSolved, "reopen", func(tk sandbox.Ticket) bool { return lastComment(tk) == "It broke again." && tk.Status == "open" }},
		{"solve", ticketPath(sandbox.TicketBeaOpenAssigned, "solve"), url.Values{"comment": {"Fixed, thanks."}}, "solve", sandbox.TicketBeaOpenAssigned, "solved", func(tk sandbox.Ticket) bool { return tk.Status == "solved" }},
		{"open a request", "/as/requests", url.Values{"subject": {"Printer on fire"}, "body": {"Please send help."}}, "create_request", 0, "#", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := newTestApp(t, testAppOptions{})
			s := loginAs(t, app, sandbox.DemoAdminEmail)
			s.mustPick(strconv.Itoa(sandbox.DemoBeaID))
			before := len(app.Sandbox.Writes())

			r := s.act(tc.path, tc.form)
			if r.Status != http.StatusSeeOther {
				t.Fatalf("status %d, want 303; body %.500s", r.Status, r.Body)
			}
			writes := writesSince(app, before)
			if len(writes) == 0 {
				t.Fatal("no write reached Zendesk")
			}
			for _, w := range writes {
				if w.ActorID != sandbox.DemoBeaID || w.TokenUserID != sandbox.DemoAdminID {
					t.Errorf("write %s %s recorded as user %d with token of %d; want Bea (%d) via the admin's token",
						w.Method, w.Path, w.ActorID, w.TokenUserID, sandbox.DemoBeaID)
				}
			}
			if n := countAudit(t, app, tc.action); n != 1 {
				t.Errorf("%d audit rows for %s, want exactly 1", n, tc.action)
			}
			page := s.follow(r)
			// What was done is the notice; a side effect, the warning beside it.
			notice := page.doc(t).Find(`[data-testid="notice"], [data-testid="action-warning"]`).Text()
			if !strings.Contains(strings.ToLower(notice), tc.notice) {
				t.Errorf("notice %q does not mention %q", notice, tc.notice)
			}
			if tc.state != nil {
				tk, _ := app.Sandbox.TicketByID(tc.ticket)
				if !tc.state(tk) {
					t.Errorf("ticket #%d at Zendesk afterwards: status %s, rating %+v, last comment %q", tc.ticket, tk.Status, tk.Rating, lastComment(tk))
				}
			} else {
				created := writes[len(writes)-1].TicketID
				tk, ok := app.Sandbox.TicketByID(created)
				if !ok || tk.RequesterID != sandbox.DemoBeaID || tk.Subject != "Printer on fire" {
					t.Errorf("created request #%d at Zendesk: %+v, want Bea's 'Printer on fire'", created, tk)
				}
			}
		})
	}
}

func TestActionRefusalsAreExplained(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		switches sandbox.Switches
		faults   sandbox.Faults
		asUser   int64
		path     string
		form     url.Values
		want     string // a phrase the page must contain
		status   int
	}{
		{"not the requester", sandbox.Switches{}, sandbox.Faults{}, sandbox.DemoBeaID, ticketPath(sandbox.TicketCarlosSolved, "rate"), url.Values{"score": {"good"}}, "requester", http.StatusUnprocessableEntity},
		{"not solved", sandbox.Switches{}, sandbox.Faults{}, sandbox.DemoBeaID, ticketPath(sandbox.TicketBeaOpen, "rate"), url.Values{"score": {"good"}}, "solved", http.StatusUnprocessableEntity},
		{"closed", sandbox.Switches{}, sandbox.Faults{}, sandbox.DemoBeaID, ticketPath(sandbox.TicketBeaClosed, "rate"), url.Values{"score": {"good"}}, "closed", http.StatusUnprocessableEntity},
		{"score not allowed", sandbox.Switches{}, sandbox.Faults{}, sandbox.DemoBeaID, ticketPath(sandbox.TicketBeaSolved, "rate"), url.Values{"score": {"great"}}, "good or bad", http.StatusUnprocessableEntity},
		{"reason with good", sandbox.Switches{}, sandbox.Faults{}, sandbox.DemoBeaID, ticketPath(sandbox.TicketBeaSolved, "rate"), url.Values{"score": {"good"}, "reason": {"6"}}, "bad rating", http.StatusUnprocessableEntity},
		{"legacy CSAT off", sandbox.Switches{LegacyCSATOff: true}, sandbox.Faults{}, sandbox.DemoBeaID, ticketPath(sandbox.TicketBeaSolved, "rate"), url.Values{"score": {"good"}}, "CSAT", http.StatusUnprocessableEntity},
		{"cannot be solved", sandbox.Switches{}, sandbox.Faults{}, sandbox.DemoBeaID, ticketPath(sandbox.TicketBeaOpenUnassigned, "solve"), url.Values{}, "assign", http.StatusUnprocessableEntity},
		{"comment on closed", sandbox.Switches{}, sandbox.Faults{}, sandbox.DemoBeaID, ticketPath(sandbox.TicketBeaClosed, "comment"), url.Values{"body": {"hello"}}, "closed", http.StatusUnprocessableEntity},
		{"empty comment", sandbox.Switches{}, sandbox.Faults{}, sandbox.DemoBeaID, ticketPath(sandbox.TicketBeaOpen, "comment"), url.Values{"body": {"  "}}, "required", http.StatusUnprocessableEntity},
		{"rate limited", sandbox.Switches{}, sandbox.Faults{Rate429: 1, Burst429: 1000, RetryAfter: 7 * time.Second}, sandbox.DemoBeaID, ticketPath(sandbox.TicketBeaSolved, "rate"), url.Values{"score": {"good"}}, "rate limit", http.StatusTooManyRequests},
		{"unavailable", sandbox.Switches{}, sandbox.Faults{Rate503: 1}, sandbox.DemoBeaID, ticketPath(sandbox.TicketBeaSolved, "rate"), url.Values{"score": {"good"}}, "unavailable", http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := newTestApp(t, testAppOptions{Switches: tc.switches})
			s := loginAs(t, app, sandbox.DemoAdminEmail)
			s.mustPick(strconv.FormatInt(tc.asUser, 10))
			before := len(app.Sandbox.Writes())
			app.Sandbox.SetFaults(tc.faults)
			r := s.act(tc.path, tc.form)
			app.Sandbox.SetFaults(sandbox.Faults{})
			if r.Status != tc.status {
				t.Errorf("status %d, want %d", r.Status, tc.status)
			}
			text := strings.ToLower(r.doc(t).Find("main").Text())
			if !strings.Contains(text, strings.ToLower(tc.want)) {
				t.Errorf("page does not explain (%q missing): %.600s", tc.want, strings.Join(strings.Fields(text), " "))
			}
			for _, w := range writesSince(app, before) {
				if w.Status < 300 {
					t.Errorf("a refused action still wrote to Zendesk: %s %s", w.Method, w.Path)
				}
			}
			kind := map[bool]string{true: "rate", false: ""}[strings.HasSuffix(tc.path, "/rate")]
			if strings.HasSuffix(tc.path, "/solve") {
				kind = "solve"
			} else if strings.HasSuffix(tc.path, "/comment") {
				kind = "comment"
			}
			if n := countAudit(t, app, kind); n != 1 {
				t.Errorf("%d audit rows for the refused %s, want exactly 1", n, kind)
			}
		})
	}
}

func TestPickRefusesUsersWhoCannotBeActedAs(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	for _, tc := range []struct{ ref, want string }{
		{"nobody@example.com", "no user"},
		{sandbox.DemoUnverifiedEmail, "verified"},
		{sandbox.DemoSuspendedEmail, "suspended"},
		{sandbox.DemoAgentEmail, "end user"},
	} {
		r := s.pick(tc.ref)
		if r.Status != http.StatusUnprocessableEntity {
			t.Errorf("pick %s: status %d, want 422", tc.ref, r.Status)
		}
		msg := strings.ToLower(r.doc(t).Find(`[data-testid="search-error"]`).Text())
		if !strings.Contains(msg, tc.want) {
			t.Errorf("pick %s: message %q lacks %q", tc.ref, msg, tc.want)
		}
		if home := s.get("/users"); home.doc(t).Find(`[data-testid="acting-banner"]`).Length() != 0 {
			t.Errorf("after refusing %s the admin is acting as someone", tc.ref)
		}
	}
}

func TestSearchShowsWhoCanBePicked(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	for _, fragment := range []bool{false, true} {
		path := "/users?q=bea"
		if fragment {
			path += "&fragment=1"
		}
		r := s.get(path)
		doc := r.doc(t)
		rows := doc.Find(`[data-testid="user-results"] tbody tr`)
		if rows.Length() < 2 {
			t.Fatalf("%s: %d results for bea, want Bea and Beau: %.400s", path, rows.Length(), r.Body)
		}
		bea := doc.Find(fmt.Sprintf(`[data-testid="user-%d"]`, sandbox.DemoBeaID))
		if bea.Find(`[data-testid="pick"]`).Length() != 1 {
			t.Errorf("%s: Bea cannot be picked", path)
		}
		if fragment && doc.Find("header").Length() != 0 {
			t.Errorf("the fragment carries the whole page")
		}
	}
	r := s.get("/users?q=" + url.QueryEscape(sandbox.DemoUnverifiedEmail))
	dana := r.doc(t).Find(fmt.Sprintf(`[data-testid="user-%d"]`, sandbox.DemoUnverifiedID))
	if dana.Find(`[data-testid="pick"]`).Length() != 0 || !strings.Contains(dana.Find(`[data-testid="why-not"]`).Text(), "verified") {
		t.Errorf("an unverified user must not be pickable and must say why: %.300s", dana.Text())
	}
}

func TestActingBannerOnEveryPage(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	s.mustPick(sandbox.DemoBeaEmail)
	for _, path := range []string{"/", "/users", "/as", ticketPath(sandbox.TicketBeaSolved, ""), "/as/requests/new", "/audit"} {
		r := s.get(path)
		if r.Status != http.StatusOK {
			t.Errorf("%s: status %d: %.300s", path, r.Status, r.Body)
			continue
		}
		if name := r.doc(t).Find(`[data-testid="acting-name"]`).Text(); name != "Bea Lindqvist" {
			t.Errorf("%s: banner says %q, want Bea Lindqvist", path, name)
		}
	}
	r := s.act("/acting/stop", url.Values{})
	if page := s.follow(r); page.doc(t).Find(`[data-testid="acting-banner"]`).Length() != 0 {
		t.Error("banner still shown after Stop acting")
	}
	if r := s.get("/as"); r.Status != http.StatusSeeOther {
		t.Errorf("/as without a picked user: status %d, want a redirect to the search", r.Status)
	}
}

func TestRequestsListAndPage(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	s.mustPick(sandbox.DemoBeaEmail)
	r := s.get("/as")
	doc := r.doc(t)
	if doc.Find(fmt.Sprintf(`[data-testid="request-%d"]`, sandbox.TicketBeaSolved)).Length() != 1 {
		t.Errorf("Bea's solved request is not listed: %.400s", r.Body)
	}
	if doc.Find(fmt.Sprintf(`[data-testid="request-%d"]`, sandbox.TicketCarlosSolved)).Length() != 0 {
		t.Error("another user's request is listed")
	}
	rated := doc.Find(fmt.Sprintf(`[data-testid="request-%d"] [data-testid="rating"]`, sandbox.TicketBeaSolvedRated)).Text()
	if !strings.Contains(rated, "good") {
		t.Errorf("existing rating not shown: %q", rated)
	}
	closed := s.get(ticketPath(sandbox.TicketBeaClosed, "")).doc(t)
	if why := closed.Find(`[data-testid="rate-why-not"]`).Text(); !strings.Contains(why, "closed") {
		t.Errorf("closed ticket page should say why it cannot be rated; got %q", why)
	}
	if closed.Find(`[data-testid="rate-submit"]`).Length() != 0 {
		t.Error("closed ticket offers the rating form")
	}
	if r := s.get(ticketPath(sandbox.TicketCarlosSolved, "")); r.Status != http.StatusNotFound {
		t.Errorf("another user's request page: status %d, want 404", r.Status)
	}
}

func TestFormsKeepWhatWasTyped(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	s.mustPick(sandbox.DemoBeaEmail)
	r := s.act("/as/requests", url.Values{"subject": {""}, "body": {"A long description I do not want to type again."}})
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", r.Status)
	}
	doc := r.doc(t)
	if got := doc.Find(`textarea[name="body"]`).Text(); got != "A long description I do not want to type again." {
		t.Errorf("description not kept: %q", got)
	}
	if doc.Find(`[data-testid="error-subject"]`).Length() != 1 || doc.Find(`[data-testid="error-summary"]`).Length() != 1 {
		t.Error("the error is not shown next to the field and in a summary")
	}
	r = s.act(ticketPath(sandbox.TicketBeaSolved, "rate"), url.Values{"score": {"good"}, "reason": {"6"}, "comment": {"typed comment"}})
	if got := r.doc(t).Find(`textarea[name="comment"]`).First().Text(); got != "typed comment" {
		t.Errorf("rating comment not kept: %q", got)
	}
}

func TestTwoAdminsActingAtOnceNeverCross(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	admins := []struct {
		email   string
		adminID int64
		userID  int64
		ticket  int64
	}{
		{sandbox.DemoAdminEmail, sandbox.DemoAdminID, sandbox.DemoBeaID, sandbox.TicketBeaOpen},
		{sandbox.DemoAdmin2Email, sandbox.DemoAdmin2ID, sandbox.DemoBeauID, sandbox.TicketBeauOpen},
	}
	sessions := make([]*signedIn, len(admins))
	for i, a := range admins {
		sessions[i] = loginAs(t, app, a.email)
		sessions[i].mustPick(strconv.FormatInt(a.userID, 10))
	}
	before := len(app.Sandbox.Writes())
	var wg sync.WaitGroup
	const perAdmin = 8
	for i, a := range admins {
		for n := 0; n < perAdmin; n++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := sessions[i].act(ticketPath(a.ticket, "comment"), url.Values{"body": {fmt.Sprintf("comment %d from admin %d", n, a.adminID)}})
				if r.Status != http.StatusSeeOther {
					t.Errorf("admin %d comment %d: status %d", a.adminID, n, r.Status)
				}
			}()
		}
	}
	wg.Wait()
	writes := writesSince(app, before)
	if len(writes) != perAdmin*len(admins) {
		t.Fatalf("%d writes, want %d", len(writes), perAdmin*len(admins))
	}
	want := map[int64]int64{sandbox.DemoAdminID: sandbox.DemoBeaID, sandbox.DemoAdmin2ID: sandbox.DemoBeauID}
	for _, w := range writes {
		if want[w.TokenUserID] != w.ActorID {
			t.Errorf("write by admin %d recorded as user %d, want %d", w.TokenUserID, w.ActorID, want[w.TokenUserID])
		}
	}
}

func TestMissingImpersonateScopeIsExplained(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{Scopes: []string{"read", "write"}})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	s.mustPick(sandbox.DemoBeaEmail)
	r := s.act(ticketPath(sandbox.TicketBeaSolved, "rate"), url.Values{"score": {"good"}})
	if !strings.Contains(r.doc(t).Find("main").Text(), "impersonate") {
		t.Errorf("missing impersonate scope not explained: %.500s", r.Body)
	}
}

func TestInvalidGrantEndsTheSession(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{Switches: sandbox.Switches{ExpiringTokens: true}})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	other := loginAs(t, app, sandbox.DemoAdminEmail) // a second session of the same admin
	grant := onlyGrantOf(t, app, 1)
	app.Sandbox.RevokeRefreshToken(grant.Token.RefreshToken)
	app.clock.Advance(31 * time.Minute)

	r := s.get("/users?q=bea")
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401: %.400s", r.Status, r.Body)
	}
	if msg := r.doc(t).Find(`[data-testid="error-message"]`).Text(); !strings.Contains(msg, "Log in again") {
		t.Errorf("message %q does not say to log in again", msg)
	}
	for _, b := range []*signedIn{s, other} {
		if page := b.get("/"); page.doc(t).Find(`[data-testid="login"]`).Length() != 1 {
			t.Error("a session of the admin survived invalid_grant")
		}
	}
}

func TestAuditPageFiltersAndExports(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	s.mustPick(sandbox.DemoBeaEmail)
	s.act(ticketPath(sandbox.TicketBeaSolved, "rate"), url.Values{"score": {"good"}})
	s.act(ticketPath(sandbox.TicketBeaClosed, "rate"), url.Values{"score": {"good"}})
	if err := app.DB.CreateAuditEvent(context.Background(), &store.AuditEvent{AdminID: 99, AdminName: "=cmd|' /C calc'!A0", Action: "rate",
		EndUser: "@evil", Outcome: "failed", Detail: "+SUM(1,2)"}); err != nil {
		t.Fatal(err)
	}

	r := s.get("/audit?action=rate&outcome=done")
	rows := r.doc(t).Find(`[data-testid="audit-row"]`)
	if rows.Length() != 1 || !strings.Contains(rows.Text(), sandbox.DemoBeaEmail) {
		t.Errorf("filter rate+done: %d rows: %q", rows.Length(), rows.Text())
	}
	// The closed ticket's refusal and the broken event both failed.
	r = s.get("/audit?action=rate&outcome=failed")
	if n := r.doc(t).Find(`[data-testid="audit-row"]`).Length(); n != 2 {
		t.Errorf("filter rate+failed: %d rows, want 2", n)
	}
	// An old link's "ok" still means done.
	r = s.get("/audit?action=rate&outcome=ok")
	if r.Status != http.StatusOK {
		t.Errorf("outcome=ok: status %d, want 200", r.Status)
	} else if rows := r.doc(t).Find(`[data-testid="audit-row"]`); rows.Length() != 1 || !strings.Contains(rows.Text(), sandbox.DemoBeaEmail) {
		t.Errorf("filter rate+ok: %d rows, want the one done: %q", rows.Length(), rows.Text())
	}
	if r := s.get("/audit?outcome=bogus"); r.Status != http.StatusBadRequest {
		t.Errorf("an outcome outside the vocabulary: status %d, want 400", r.Status)
	}
	if r := s.get("/audit?from=yesterday"); r.Status != http.StatusBadRequest {
		t.Errorf("bad date: status %d, want 400", r.Status)
	}

	csvRes := s.get("/audit.csv?action=rate")
	if ct := csvRes.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("content type %q", ct)
	}
	recs, err := csv.NewReader(strings.NewReader(csvRes.Body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 { // header + 3 rate events
		t.Fatalf("%d CSV records, want 4: %q", len(recs), recs)
	}
	for _, rec := range recs[1:] {
		for _, cell := range rec {
			if cell != "" && strings.ContainsAny(cell[:1], "=+-@") {
				t.Errorf("dangerous cell not neutralised: %q", cell)
			}
		}
	}
}

// onlyGrantOf returns the grant with the given id.
func onlyGrantOf(t *testing.T, app *testApp, id int64) *store.Grant {
	t.Helper()
	g, err := app.DB.FindGrantByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// lastComment is the body of a ticket's newest comment.
func lastComment(tk sandbox.Ticket) string {
	if len(tk.Comments) == 0 {
		return ""
	}
	return tk.Comments[len(tk.Comments)-1].Body
}

// TestIgnoredImpersonationDoesNotOfferTheSameRequestAgain: when Zendesk
// opens the request but not as the end user, the request exists; the form
// that comes back with the refusal must be empty, so one more click does
// not open a second request.
func TestIgnoredImpersonationDoesNotOfferTheSameRequestAgain(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{Switches: sandbox.Switches{ImpersonationIgnoredOnCreate: true}})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	s.mustPick(sandbox.DemoBeaEmail)
	r := s.act("/as/requests", url.Values{"subject": {"Printer on fire"}, "body": {"Third floor."}})
	if r.Status < 400 {
		t.Fatalf("status %d, want the refusal page", r.Status)
	}
	d := r.doc(t)
	if got := d.Find(`[data-testid="subject"]`).AttrOr("value", ""); got != "" {
		t.Errorf("subject comes back as %q, want empty: the request was opened already", got)
	}
	if got := d.Find(`textarea[name="body"]`).Text(); got != "" {
		t.Errorf("body comes back as %q, want empty", got)
	}
	// The browser tab is told the form was done, so it forgets its draft
	// rather than fill the request in again.
	if got := d.Find("body").AttrOr("data-draft-sent", ""); got != "done" {
		t.Errorf("body[data-draft-sent] = %q, want done", got)
	}
}

// A form drawn for one end user, sent after the session switched to another
// (in another tab), is refused and nothing is sent; so is a form that names
// no end user (a page from before forms did). A refusal by onbehalf or
// Zendesk tells the browser tab the form was not sent.
func TestFormForAnotherEndUserIsRefused(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	s.mustPick(sandbox.DemoBeaEmail)
	bea := s.acting
	s.mustPick(sandbox.DemoBeauEmail) // the other tab
	before := len(app.Sandbox.Writes())
	for _, tc := range []struct {
		name, path, acting, heading string
	}{
		{"new request drawn for Bea", "/as/requests", bea, "You now act as someone else"},
		{"comment drawn for Bea", ticketPath(sandbox.TicketBeaOpen, "comment"), bea, "You now act as someone else"},
		{"form naming no one", "/as/requests", "", "This form is out of date"},
	} {
		form := url.Values{"subject": {"Printer"}, "body": {"Jams."}, "acting_user": {tc.acting}}
		r := s.act(tc.path, form)
		if r.Status != http.StatusConflict {
			t.Errorf("%s: status %d, want 409", tc.name, r.Status)
			continue
		}
		d := r.doc(t)
		if h := d.Find("h1").Text(); h != tc.heading {
			t.Errorf("%s: heading %q, want %q", tc.name, h, tc.heading)
		}
		if got := d.Find("body").AttrOr("data-draft-sent", ""); got != "kept" {
			t.Errorf("%s: body[data-draft-sent] = %q, want kept", tc.name, got)
		}
	}
	if n := len(app.Sandbox.Writes()) - before; n != 0 {
		t.Errorf("forms for another end user made %d writes", n)
	}
	// A refusal before anything is sent (an empty comment): kept.
	s.mustPick(sandbox.DemoBeaEmail)
	r := s.act(ticketPath(sandbox.TicketBeaOpen, "comment"), url.Values{"body": {""}})
	if got := r.doc(t).Find("body").AttrOr("data-draft-sent", ""); r.Status != http.StatusUnprocessableEntity || got != "kept" {
		t.Errorf("an empty comment: status %d, body[data-draft-sent] = %q, want 422 and kept", r.Status, got)
	}
}

// The rating form offers the account's own reasons for a bad rating, custom
// ones included, as the bulk reference does, and shows a rating's custom
// reason as the one chosen.
func TestRateFormOffersTheAccountsReasons(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	s.mustPick(sandbox.DemoBeaEmail)
	options := func() (map[string]string, string) {
		doc := s.get(ticketPath(sandbox.TicketBeaSolved, "")).doc(t)
		got := map[string]string{}
		selected := ""
		doc.Find(`select#reason option`).Each(func(_ int, o *goquery.Selection) {
			v, _ := o.Attr("value")
			got[v] = strings.TrimSpace(o.Text())
			if _, ok := o.Attr("selected"); ok {
				selected = v
			}
		})
		return got, selected
	}
	custom := strconv.Itoa(sandbox.CustomReasonCode)
	got, _ := options()
	if got[custom] != sandbox.CustomReasonName {
		t.Fatalf("reason options %v lack the account's custom reason %s %q", got, custom, sandbox.CustomReasonName)
	}
	if got["0"] != "No reason given" || got["6"] == "" {
		t.Errorf("reason options %v lack 'No reason given' or a system reason", got)
	}
	r := s.act(ticketPath(sandbox.TicketBeaSolved, "rate"), url.Values{"score": {"bad"}, "reason": {custom}})
	if r.Status != http.StatusOK && r.Status != http.StatusSeeOther {
		t.Fatalf("rating with the custom reason: status %d", r.Status)
	}
	if tk, _ := app.Sandbox.TicketByID(sandbox.TicketBeaSolved); tk.Rating == nil || tk.Rating.Reason != sandbox.CustomReasonName {
		t.Fatalf("the ticket's rating after the form: %+v", tk.Rating)
	}
	if _, selected := options(); selected != custom {
		t.Errorf("the rated ticket's form has reason %q selected, want the custom reason %s", selected, custom)
	}
}

// A page under /as/ opened before any end user is picked leads to the user
// search and, after the pick, on to that page (after logging in again, say);
// anywhere else, or a return path that is not local, leads to the requests.
func TestPickGoesOnToThePageAskedFor(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	page := ticketPath(sandbox.TicketBeaOpen, "")
	r := s.get(page)
	if want := "/users?return_to=" + url.QueryEscape(page); r.Status != http.StatusSeeOther || r.Location != want {
		t.Fatalf("GET %s with no one picked: %d to %q, want 303 to %q", page, r.Status, r.Location, want)
	}
	doc := s.get(r.Location).doc(t)
	if v, _ := doc.Find(`form[action="/users"] input[name="return_to"]`).Attr("value"); v != page {
		t.Errorf("the search form carries return_to %q, want %q", v, page)
	}
	if doc.Find(`[data-testid="pick-return"]`).Length() != 1 {
		t.Error("the search page does not say the pick goes on to the page opened")
	}
	// The search results' pick forms carry it too (the live search's
	// fragment included).
	frag := s.get("/users?fragment=1&q=" + url.QueryEscape(sandbox.DemoBeaEmail) + "&return_to=" + url.QueryEscape(page)).doc(t)
	if v, _ := frag.Find(`form[action="/acting"] input[name="return_to"]`).Attr("value"); v != page {
		t.Errorf("the pick form of the results carries return_to %q, want %q", v, page)
	}
	for _, tc := range []struct{ returnTo, want string }{
		{page, page},
		{"", "/as"},
		{"/audit", "/as"},                       // not a page of the end user's
		{"//evil.example/as/requests/1", "/as"}, // not local
		{"https://evil.example/as/requests/1", "/as"},
	} {
		r := s.act("/acting", url.Values{"user": {sandbox.DemoBeaEmail}, "return_to": {tc.returnTo}})
		if r.Status != http.StatusSeeOther || r.Location != tc.want {
			t.Errorf("pick with return_to %q: %d to %q, want 303 to %q", tc.returnTo, r.Status, r.Location, tc.want)
		}
	}
}

// A form sent after the session ended is refused without acting, and its
// page's button leads back to the form it came from (this site's Referer
// only), where the browser tab fills in what was typed (static/app.js).
func TestEndedSessionFormLeadsBackToTheForm(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	s.mustPick(sandbox.DemoBeaEmail)
	page := ticketPath(sandbox.TicketBeaOpen, "")
	doc := s.get(page).doc(t)
	if key, _ := doc.Find(`form[action$="/comment"]`).Attr("data-draft"); !strings.Contains(key, "/comment/") {
		t.Errorf("the comment form's draft key %q does not name the form", key)
	}
	before := len(app.Sandbox.Writes())
	endSessions(t, app)
	send := func(referer string) response {
		form := url.Values{"_csrf": {s.csrf}, "body": {"Typed for ten minutes"}}
		req, err := http.NewRequest(http.MethodPost, s.abs(ticketPath(sandbox.TicketBeaOpen, "comment")), strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", app.URL)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Referer", referer)
		return s.do(req)
	}
	for _, tc := range []struct{ referer, want string }{
		{app.URL + page, page},
		// After a refusal the form was shown at the address it was sent
		// to, which only takes a POST: back to the request page.
		{app.URL + ticketPath(sandbox.TicketBeaOpen, "comment"), page},
		{app.URL + "/as/requests", "/as/requests/new"},
		{"https://evil.example" + page, "/"},
		{"", "/"},
	} {
		r := send(tc.referer)
		if r.Status != http.StatusForbidden {
			t.Errorf("Referer %q: status %d, want 403", tc.referer, r.Status)
			continue
		}
		if href, _ := r.doc(t).Find(`[data-testid="error-action"]`).Attr("href"); href != tc.want {
			t.Errorf("Referer %q: the button leads to %q, want %q", tc.referer, href, tc.want)
		}
	}
	if n := len(app.Sandbox.Writes()) - before; n != 0 {
		t.Errorf("a form of an ended session made %d writes", n)
	}
}

// The pages' calls to Zendesk share the account's throttle with the bulk
// runs: a 429 Zendesk answers a page pauses the runs' calls too, and while
// such a pause is in force a page does not call Zendesk (which would only
// answer 429 again, and count against the account), it says to wait.
func TestPagesShareTheAccountsRateLimitWithBulkRuns(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	throttle := app.Engine.Throttle()
	if d := throttle.Delay(); d != 0 {
		t.Fatalf("a pause in force before any 429: %v", d)
	}
	app.Sandbox.SetRateLimit(60, 1) // one call a second, no burst to speak of
	paused := false
	for range 5 {
		s.get("/users?q=" + url.QueryEscape(sandbox.DemoBeaEmail))
		if throttle.Delay() > 0 {
			paused = true
			break
		}
	}
	app.Sandbox.SetRateLimit(0, 0)
	if !paused {
		t.Error("Zendesk's 429s to the pages' searches did not pause the account's throttle")
	}

	// A pause of 30 s, as a run's 429 would set: the page waits for none.
	throttle.Observe(zendesk.RateInfo{Status: http.StatusTooManyRequests, Limit: -1, Remaining: -1, RetryAfter: 30 * time.Second})
	var calls atomic.Int32
	app.Sandbox.SetHooks(sandbox.Hooks{BeforeCall: func(*http.Request) { calls.Add(1) }})
	start := time.Now()
	r := s.get("/users?q=" + url.QueryEscape(sandbox.DemoBeaEmail))
	app.Sandbox.SetHooks(sandbox.Hooks{})
	if n := calls.Load(); n != 0 {
		t.Errorf("a search during a 30 s pause called Zendesk %d times", n)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the page took %v to answer during the pause", took)
	}
	if msg := r.doc(t).Find(`[data-testid="search-error"]`).Text(); !strings.Contains(msg, "rate limit") || !strings.Contains(msg, "try again in") {
		t.Errorf("the search during the pause says %q; want it to say to try again later", msg)
	}
}
