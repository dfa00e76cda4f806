package actions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// mustOneWrite checks that exactly one write was sent, as the end user
// (never the admin), to endpoint, and returns it.
func mustOneWrite(t *testing.T, e *testEnv, endpoint string, actor int64) sandbox.Write {
	t.Helper()
	ws := e.writes(t)
	if len(ws) != 1 {
		t.Fatalf("%d writes, want 1: %+v", len(ws), ws)
	}
	w := ws[0]
	if w.Endpoint != endpoint {
		t.Errorf("write endpoint = %q, want %q", w.Endpoint, endpoint)
	}
	if w.ActorID != actor || w.ActorID == sandbox.DemoAdminID || w.OnBehalfOf == "" {
		t.Errorf("write recorded as actor %d (X-On-Behalf-Of %q), want end user %d", w.ActorID, w.OnBehalfOf, actor)
	}
	return w
}

func TestRunSuccess(t *testing.T) {
	t.Parallel()
	opt := actions.RunOptions{RunID: 0, RequestID: "req-1", RemoteAddr: "127.0.0.1"}

	t.Run("rate solved ticket", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
		out, ref := e.run(t, actions.Rate{User: sandbox.DemoBeaEmail, Ticket: sandbox.TicketBeaSolved, Score: "good", Comment: "Thanks!"}, opt)
		if ref != nil {
			t.Fatalf("refused: %v", ref)
		}
		w := mustOneWrite(t, e, "POST /api/v2/tickets/{id}/satisfaction_rating", sandbox.DemoBeaID)
		if w.Status != http.StatusOK || out.Status != http.StatusOK {
			t.Errorf("status: sandbox %d, outcome %d", w.Status, out.Status)
		}
		if want := "Rated ticket #105 good as Bea Lindqvist."; out.Message != want {
			t.Errorf("Message = %q, want %q", out.Message, want)
		}
		tk, _ := e.srv.TicketByID(sandbox.TicketBeaSolved)
		if tk.Rating == nil || tk.Rating.Score != "good" || out.ZendeskID != tk.Rating.ID || out.ZendeskID == 0 {
			t.Errorf("ticket rating %+v, outcome ZendeskID %d", tk.Rating, out.ZendeskID)
		}
		if out.EndUserID != sandbox.DemoBeaID || out.EndUser != sandbox.DemoBeaEmail || out.EndUserName != "Bea Lindqvist" ||
			out.TicketID != sandbox.TicketBeaSolved || out.Kind != actions.KindRate || out.Warning != "" {
			t.Errorf("outcome = %+v", out)
		}
	})

	t.Run("rate reopened after solved, by id, rating as object", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, sandbox.Options{Switches: sandbox.Switches{RatingAsObject: true}}, fullScope, fullScope)
		out, ref := e.run(t, actions.Rate{User: fmt.Sprint(sandbox.DemoBeaID), Ticket: sandbox.TicketBeaReopened, Score: "bad", ReasonCode: 5}, opt)
		if ref != nil {
			t.Fatalf("refused: %v", ref)
		}
		mustOneWrite(t, e, "POST /api/v2/tickets/{id}/satisfaction_rating", sandbox.DemoBeaID)
		if out.ZendeskID == 0 || out.EndUser != sandbox.DemoBeaEmail {
			t.Errorf("outcome = %+v", out)
		}
	})

	t.Run("rate again replaces with a warning", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
		out, ref := e.run(t, actions.Rate{User: sandbox.DemoBeaEmail, Ticket: sandbox.TicketBeaSolvedRated, Score: "bad"}, opt)
		if ref != nil {
			t.Fatalf("refused: %v", ref)
		}
		if !strings.Contains(out.Warning, "already had a good rating") {
			t.Errorf("Warning = %q", out.Warning)
		}
		ev := e.mustAuditEvents(t)[0]
		if !strings.Contains(ev.Detail, out.Warning) {
			t.Errorf("audit detail %q lacks the warning", ev.Detail)
		}
	})

	t.Run("create request", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
		out, ref := e.run(t, actions.CreateRequest{User: sandbox.DemoBeauEmail, Subject: "Lost parcel", Body: "It never came."}, opt)
		if ref != nil {
			t.Fatalf("refused: %v", ref)
		}
		w := mustOneWrite(t, e, "POST /api/v2/requests", sandbox.DemoBeauID)
		tk, ok := e.srv.TicketByID(out.ZendeskID)
		if !ok || tk.RequesterID != sandbox.DemoBeauID || tk.Subject != "Lost parcel" || w.TicketID != out.ZendeskID {
			t.Errorf("created ticket %+v (found %v), write %+v, outcome %+v", tk, ok, w, out)
		}
		if out.Status != http.StatusCreated || out.TicketID != out.ZendeskID || out.Existing {
			t.Errorf("outcome = %+v", out)
		}
		if want := fmt.Sprintf("Opened request #%d as Beau Tremblay.", out.ZendeskID); out.Message != want {
			t.Errorf("Message = %q, want %q", out.Message, want)
		}
	})

	t.Run("comment on open request", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
		out, ref := e.run(t, actions.Comment{User: sandbox.DemoBeaEmail, Request: sandbox.TicketBeaOpen, Body: "Any news?"}, opt)
		if ref != nil {
			t.Fatalf("refused: %v", ref)
		}
		mustOneWrite(t, e, "PUT /api/v2/requests/{id}", sandbox.DemoBeaID)
		tk, _ := e.srv.TicketByID(sandbox.TicketBeaOpen)
		last := tk.Comments[len(tk.Comments)-1]
		if last.Body != "Any news?" || last.AuthorID != sandbox.DemoBeaID || out.Warning != "" || out.ZendeskID != sandbox.TicketBeaOpen {
			t.Errorf("last comment %+v, outcome %+v", last, out)
		}
	})

	for _, tc := range []struct {
		name   string
		ticket int64
		warn   string
	}{
		{"comment on solved request warns it reopens", sandbox.TicketBeaSolved, "reopened this solved request"},
		{"comment on pending request warns", sandbox.TicketBeaPending, "pending request back to open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
			out, ref := e.run(t, actions.Comment{User: sandbox.DemoBeaEmail, Request: tc.ticket, Body: "Still broken."}, opt)
			if ref != nil {
				t.Fatalf("refused: %v", ref)
			}
			mustOneWrite(t, e, "PUT /api/v2/requests/{id}", sandbox.DemoBeaID)
			if !strings.Contains(out.Warning, tc.warn) {
				t.Errorf("Warning = %q, want it to mention %q", out.Warning, tc.warn)
			}
			if tk, _ := e.srv.TicketByID(tc.ticket); tk.Status != "open" {
				t.Errorf("status after comment = %q, want open", tk.Status)
			}
		})
	}

	t.Run("solve request with comment", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
		out, ref := e.run(t, actions.Solve{User: sandbox.DemoBeaEmail, Request: sandbox.TicketBeaOpenAssigned, Comment: "All good now."}, opt)
		if ref != nil {
			t.Fatalf("refused: %v", ref)
		}
		mustOneWrite(t, e, "PUT /api/v2/requests/{id}", sandbox.DemoBeaID)
		tk, _ := e.srv.TicketByID(sandbox.TicketBeaOpenAssigned)
		if tk.Status != "solved" || tk.Comments[len(tk.Comments)-1].Body != "All good now." {
			t.Errorf("ticket after solve: status %q, comments %+v", tk.Status, tk.Comments)
		}
		if !strings.HasPrefix(out.Message, "Marked request #110 solved") || out.Status != http.StatusOK {
			t.Errorf("outcome = %+v", out)
		}
	})
}

func TestRunRefusals(t *testing.T) {
	t.Parallel()
	bea := sandbox.DemoBeaEmail
	tests := []struct {
		name       string
		opts       sandbox.Options
		tokenScope string
		scopes     string // Runner.Scopes; "" means the token's scopes
		unknown    bool   // Runner.Scopes = "" (unknown)
		setup      func(t *testing.T, e *testEnv)
		a          actions.Action
		code       string
		field      string
		status     int    // Refusal.Status; -1 means any 5xx
		contains   string // in the message
		writes     int    // writes that reached Zendesk's handlers (a scope 403 does not)
	}{
		{name: "invalid", a: actions.Rate{User: bea, Ticket: 0, Score: "great"}, code: actions.CodeInvalid, field: "score", contains: "good or bad"},
		{name: "unknown user email", a: actions.Rate{User: "nobody@example.com", Ticket: 105, Score: "good"},
			code: actions.CodeUnknownUser, field: "user", contains: `"nobody@example.com"`},
		{name: "unknown user id", a: actions.CreateRequest{User: "999", Subject: "s", Body: "b"},
			code: actions.CodeUnknownUser, field: "user", contains: "id 999"},
		{name: "unverified", a: actions.Rate{User: sandbox.DemoUnverifiedEmail, Ticket: sandbox.TicketDanaSolved, Score: "good"},
			code: actions.CodeUnverified, field: "user", contains: "no verified email"},
		{name: "unverified opening a request",
			a:    actions.CreateRequest{User: sandbox.DemoUnverifiedEmail, Subject: "s", Body: "b"},
			code: actions.CodeUnverified, field: "user", contains: "won't let anyone act as them"},
		{name: "suspended", a: actions.Rate{User: sandbox.DemoSuspendedEmail, Ticket: sandbox.TicketEliSolved, Score: "good"},
			code: actions.CodeSuspended, field: "user", contains: "Eli Novak (eli@example.com) is suspended"},
		{name: "agent", a: actions.Comment{User: sandbox.DemoAgentEmail, Request: sandbox.TicketBeaOpen, Body: "x"},
			code: actions.CodeNotEndUser, field: "user", contains: "Sam Agent (sam@example.com) is an agent"},
		{name: "admin", a: actions.CreateRequest{User: fmt.Sprint(sandbox.DemoAdmin2ID), Subject: "s", Body: "b"},
			code: actions.CodeNotEndUser, field: "user", contains: "is an admin"},
		{name: "rate not requester", a: actions.Rate{User: bea, Ticket: sandbox.TicketCarlosSolved, Score: "good"},
			code: actions.CodeNotRequester, field: "ticket", contains: "requested by Carlos Mendes (carlos@example.com)"},
		{name: "comment not requester", a: actions.Comment{User: bea, Request: sandbox.TicketCarlosSolved, Body: "x"},
			code: actions.CodeNotRequester, field: "ticket", status: 404, contains: "is not a request of Bea Lindqvist"},
		{name: "solve not requester", a: actions.Solve{User: bea, Request: sandbox.TicketBeauOpen},
			code: actions.CodeNotRequester, field: "ticket", status: 404, contains: "is not a request of"},
		{name: "comment missing request", a: actions.Comment{User: bea, Request: 9999, Body: "x"},
			code: actions.CodeNotRequester, field: "ticket", status: 404, contains: "#9999"},
		{name: "rate missing ticket", a: actions.Rate{User: bea, Ticket: 9999, Score: "good"},
			code: actions.CodeTicketNotFound, field: "ticket", status: 404, contains: "Ticket #9999 was not found"},
		{name: "rate closed", a: actions.Rate{User: bea, Ticket: sandbox.TicketBeaClosed, Score: "good"},
			code: actions.CodeClosed, field: "ticket", contains: "Ticket #108 is closed; Zendesk no longer accepts ratings for closed tickets."},
		{name: "comment closed", a: actions.Comment{User: bea, Request: sandbox.TicketBeaClosed, Body: "x"},
			code: actions.CodeClosed, field: "ticket", contains: "closed"},
		{name: "solve closed", a: actions.Solve{User: bea, Request: sandbox.TicketBeaClosed},
			code: actions.CodeClosed, field: "ticket", contains: "closed"},
		{name: "rate never solved open", a: actions.Rate{User: bea, Ticket: sandbox.TicketBeaOpen, Score: "good"},
			code: actions.CodeNotSolved, field: "ticket", contains: "not been solved (it is open)"},
		{name: "rate never solved new", a: actions.Rate{User: bea, Ticket: sandbox.TicketBeaNew, Score: "bad"},
			code: actions.CodeNotSolved, field: "ticket", contains: "#101"},
		{name: "solve already solved", a: actions.Solve{User: bea, Request: sandbox.TicketBeaSolved},
			code: actions.CodeAlreadySolved, field: "ticket", contains: "already solved"},
		{name: "solve unassigned", a: actions.Solve{User: bea, Request: sandbox.TicketBeaOpenUnassigned},
			code: actions.CodeCannotBeSolved, field: "ticket", contains: "assigned to an agent"},
		{name: "solve problem type", a: actions.Solve{User: bea, Request: sandbox.TicketBeaOpenAssigned},
			setup: func(t *testing.T, e *testEnv) {
				e.srv.UpdateTicket(sandbox.TicketBeaOpenAssigned, func(tk *sandbox.Ticket) { tk.Type = "problem" })
			},
			code: actions.CodeCannotBeSolved, field: "ticket", contains: "not problem"},
		{name: "legacy CSAT off", opts: sandbox.Options{Switches: sandbox.Switches{LegacyCSATOff: true}},
			a:    actions.Rate{User: bea, Ticket: sandbox.TicketBeaSolved, Score: "good"},
			code: actions.CodeLegacyCSATOff, status: 403, contains: "CSAT surveys can't be submitted", writes: 1},
		{name: "legacy CSAT off, scopes unknown", opts: sandbox.Options{Switches: sandbox.Switches{LegacyCSATOff: true}}, unknown: true,
			a:    actions.Rate{User: bea, Ticket: sandbox.TicketBeaSolved, Score: "good"},
			code: actions.CodeLegacyCSATOff, status: 403, contains: "legacy satisfaction ratings", writes: 1},
		{name: "reason not allowed by Zendesk", a: actions.Rate{User: bea, Ticket: sandbox.TicketBeaSolved, Score: "bad", ReasonCode: 999},
			code: actions.CodeScoreNotAllowed, field: "reason", status: 422, contains: "Reason: is invalid", writes: 1},
		{name: "rate limited", opts: sandbox.Options{Faults: sandbox.Faults{Rate429: 1, Burst429: 100, RetryAfter: 3 * time.Second}},
			a:    actions.Rate{User: bea, Ticket: sandbox.TicketBeaSolved, Score: "good"},
			code: actions.CodeRateLimited, status: 429, contains: "Zendesk's rate limit was reached; try again in 3 seconds."},
		{name: "unavailable", opts: sandbox.Options{Faults: sandbox.Faults{Rate503: 1, RetryAfter: 2 * time.Second}},
			a:    actions.CreateRequest{User: bea, Subject: "s", Body: "b"},
			code: actions.CodeUnavailable, status: 503, contains: "try again in 2 seconds"},
		{name: "server error", opts: sandbox.Options{Faults: sandbox.Faults{Rate5xx: 1}},
			a:    actions.Comment{User: bea, Request: sandbox.TicketBeaOpen, Body: "x"},
			code: actions.CodeUnavailable, status: -1, contains: "server error"},
		{name: "missing impersonate, scopes known", tokenScope: "read write", scopes: "read write",
			a:    actions.Rate{User: bea, Ticket: sandbox.TicketBeaSolved, Score: "good"},
			code: actions.CodeMissingScope, contains: `lacks the "impersonate" scope`},
		{name: "missing write and impersonate, scopes known", tokenScope: "read", scopes: "read",
			a:    actions.CreateRequest{User: bea, Subject: "s", Body: "b"},
			code: actions.CodeMissingScope, contains: `"write" and "impersonate" scopes`},
		{name: "resource scopes suffice", tokenScope: "read satisfaction_ratings:write impersonate",
			scopes: "users:read tickets:read satisfaction_ratings:write impersonate",
			a:      actions.Rate{User: bea, Ticket: sandbox.TicketBeaSolved, Score: "good"}, writes: 1},
		{name: "missing impersonate on rate, scopes unknown", unknown: true, tokenScope: "read write",
			a:    actions.Rate{User: bea, Ticket: sandbox.TicketBeaSolved, Score: "good"},
			code: actions.CodeMissingScope, status: 403, contains: `"impersonate"`},
		{name: "missing impersonate on comment, scopes unknown", unknown: true, tokenScope: "read write",
			a:    actions.Comment{User: bea, Request: sandbox.TicketBeaOpen, Body: "x"},
			code: actions.CodeMissingScope, status: 403, contains: `"impersonate"`},
		{name: "missing read, scopes unknown", unknown: true, tokenScope: "write impersonate",
			a:    actions.CreateRequest{User: bea, Subject: "s", Body: "b"},
			code: actions.CodeMissingScope, status: 403, contains: `"read"`},
		{name: "missing write on create, scopes unknown", unknown: true, tokenScope: "read impersonate",
			a:    actions.CreateRequest{User: bea, Subject: "s", Body: "b"},
			code: actions.CodeMissingScope, status: 403, contains: `"write"`},
		{name: "login expired: revoked token",
			setup: func(t *testing.T, e *testEnv) { revokeToken(t, e.srv, e.token.AccessToken) },
			a:     actions.Rate{User: bea, Ticket: sandbox.TicketBeaSolved, Score: "good"},
			code:  actions.CodeLoginExpired, status: 401, contains: "Log in again to continue."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			scope := tt.tokenScope
			if scope == "" {
				scope = fullScope
			}
			runnerScopes := tt.scopes
			switch {
			case tt.unknown:
				runnerScopes = ""
			case runnerScopes == "":
				runnerScopes = scope
			}
			e := newTestEnv(t, tt.opts, scope, runnerScopes)
			if tt.setup != nil {
				tt.setup(t, e)
				e.srv.ResetStats()
			}
			before := e.srv.Stats()
			out, ref := e.run(t, tt.a, actions.RunOptions{RequestID: "r"})
			if got := len(e.writes(t)); got != tt.writes {
				t.Errorf("%d writes sent, want %d", got, tt.writes)
			}
			if tt.code == "" {
				if ref != nil {
					t.Fatalf("refused: %+v", ref)
				}
				return
			}
			if ref == nil {
				t.Fatalf("not refused; outcome %+v", out)
			}
			wantStatus := tt.status
			if wantStatus == -1 && ref.Status >= 500 {
				wantStatus = ref.Status
			}
			if ref.Code != tt.code || ref.Field != tt.field || ref.Status != wantStatus {
				t.Errorf("refusal code/field/status = %q/%q/%d, want %q/%q/%d (message %q, cause %v)",
					ref.Code, ref.Field, ref.Status, tt.code, tt.field, tt.status, ref.Message, ref.Err)
			}
			if !strings.Contains(ref.Message, tt.contains) || !strings.HasSuffix(ref.Message, ".") {
				t.Errorf("message %q should contain %q and end a sentence", ref.Message, tt.contains)
			}
			if ref.Code == actions.CodeUnknownUser && (out.EndUser != strings.TrimSpace(tt.a.EndUser()) || out.EndUserID != 0) {
				t.Errorf("unknown user recorded as %q/%d, want the reference as given", out.EndUser, out.EndUserID)
			}
			if ref.Error() != ref.Message {
				t.Errorf("Error() = %q, want the message", ref.Error())
			}
			if strings.Contains(ref.Message, e.token.AccessToken) {
				t.Error("message contains the token")
			}
			if tt.code == actions.CodeMissingScope && !tt.unknown && tt.status == 0 {
				if n := apiCalls(e.srv.Stats()) - apiCalls(before); n != 0 {
					t.Errorf("a known missing scope still made %d API calls", n)
				}
			}
			switch tt.code {
			case actions.CodeRateLimited, actions.CodeUnavailable:
				if !ref.Temporary() {
					t.Error("not Temporary")
				}
				if (tt.status == 429 || tt.status == 503) && ref.RetryAfter <= 0 {
					t.Error("no RetryAfter")
				}
			default:
				if ref.Temporary() {
					t.Errorf("%s is Temporary", tt.code)
				}
			}
		})
	}
}

// TestRunStaleBatch covers refusals Zendesk gives on the write itself, when
// the prefetched data went stale between pre-flight and the run.
func TestRunStaleBatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		opts   sandbox.Options
		change func(u *sandbox.User)
		code   string
		status int
	}{
		{"unverified meanwhile", sandbox.Options{},
			func(u *sandbox.User) { u.Verified = false }, actions.CodeUnverified, 403},
		{"deleted meanwhile", sandbox.Options{}, func(u *sandbox.User) { u.Active = false }, actions.CodeUnknownUser, 401},
		{"suspended meanwhile", sandbox.Options{}, func(u *sandbox.User) { u.Suspended = true }, actions.CodeSuspended, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, tt.opts, fullScope, fullScope)
			b := actions.NewBatch(e.zc)
			if err := b.Prefetch(t.Context(), []string{sandbox.DemoBeaEmail}, []int64{sandbox.TicketBeaOpen}); err != nil {
				t.Fatal(err)
			}
			e.srv.UpdateUser(sandbox.DemoBeaID, tt.change)
			_, ref := e.runWith(t, actions.Comment{User: sandbox.DemoBeaEmail, Request: sandbox.TicketBeaOpen, Body: "x"}, b,
				actions.RunOptions{SkipPreflight: true, RunID: 7})
			if ref == nil || ref.Code != tt.code || ref.Status != tt.status {
				t.Fatalf("refusal = %+v, want %s with status %d", ref, tt.code, tt.status)
			}
			for _, w := range e.writes(t) {
				if w.Status < 400 {
					t.Errorf("a write succeeded: %+v", w)
				}
			}
		})
	}
}

func TestRunNetworkFailureIsAuditedAsFailed(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
	b := actions.NewBatch(e.zc)
	if err := b.Prefetch(t.Context(), []string{sandbox.DemoBeaEmail}, nil); err != nil {
		t.Fatal(err)
	}
	e.srv.SetFaults(sandbox.Faults{DropRate: 1})
	out, ref := e.runWith(t, actions.CreateRequest{User: sandbox.DemoBeaEmail, Subject: "s", Body: "b"}, b, actions.RunOptions{SkipPreflight: true})
	if ref == nil || ref.Code != actions.CodeNetwork || !ref.Temporary() || !errors.Is(ref, zendesk.ErrNetwork) {
		t.Fatalf("refusal = %+v", ref)
	}
	if !strings.Contains(ref.Message, "will not be opened twice") || out.Status != 0 {
		t.Errorf("message %q, status %d", ref.Message, out.Status)
	}
	if ev := e.mustAuditEvents(t)[0]; ev.Outcome != store.OutcomeFailed {
		t.Errorf("audit outcome = %q, want failed", ev.Outcome)
	}
}

func TestRunLoginExpiredOnRefreshFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
	}{
		{"invalid_grant", &oauth2.RetrieveError{ErrorCode: "invalid_grant", ErrorDescription: "The provided authorization grant is invalid"}},
		{"adapter wraps ErrTokenInvalid", fmt.Errorf("refresh grant 3: %w", zendesk.ErrTokenInvalid)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
			e.runner.Zendesk = newTestClient(t, e.srv, tokenSourceFunc(func() (*oauth2.Token, error) { return nil, tt.err }))
			_, ref := e.run(t, actions.Solve{User: sandbox.DemoBeaEmail, Request: sandbox.TicketBeaOpenAssigned}, actions.RunOptions{})
			if ref == nil || ref.Code != actions.CodeLoginExpired {
				t.Fatalf("refusal = %+v, want login_expired", ref)
			}
			if want := "Your Zendesk sign-in has expired or was revoked. Log in again to continue."; ref.Message != want {
				t.Errorf("message = %q, want %q", ref.Message, want)
			}
		})
	}
}

type tokenSourceFunc func() (*oauth2.Token, error)

func (f tokenSourceFunc) Token() (*oauth2.Token, error) { return f() }

func TestRunCreateRequestRecheck(t *testing.T) {
	t.Parallel()
	a := actions.CreateRequest{User: sandbox.DemoBeaEmail, Subject: "Broken heater", Body: "The heater  in room 4\nis cold."}

	t.Run("finds the earlier request and sends nothing", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
		first, ref := e.run(t, a, actions.RunOptions{})
		if ref != nil {
			t.Fatal(ref)
		}
		again, ref := e.run(t, a, actions.RunOptions{Recheck: true})
		if ref != nil {
			t.Fatal(ref)
		}
		if !again.Existing || again.ZendeskID != first.ZendeskID || again.TicketID != first.ZendeskID || again.Status != 0 {
			t.Errorf("recheck outcome = %+v, want Existing with id %d", again, first.ZendeskID)
		}
		if n := len(e.writes(t)); n != 1 {
			t.Errorf("%d writes, want only the first", n)
		}
		if !strings.Contains(again.Message, "already opened") {
			t.Errorf("message = %q", again.Message)
		}
		if ev := e.mustAuditEvents(t)[0]; ev.Outcome != store.OutcomeOK || ev.ZendeskID != first.ZendeskID {
			t.Errorf("audit row = %+v", ev)
		}
	})

	t.Run("sends when there is none", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
		out, ref := e.run(t, a, actions.RunOptions{Recheck: true})
		if ref != nil {
			t.Fatal(ref)
		}
		if out.Existing || len(e.writes(t)) != 1 || e.srv.Stats().Calls["GET /api/v2/requests"] != 1 {
			t.Errorf("outcome %+v, writes %d, stats %v", out, len(e.writes(t)), e.srv.Stats().Calls)
		}
	})

	t.Run("ignores an older or different request", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
		first, ref := e.run(t, a, actions.RunOptions{})
		if ref != nil {
			t.Fatal(ref)
		}
		other := a
		other.Body = "Something else."
		out, ref := e.run(t, other, actions.RunOptions{Recheck: true})
		if ref != nil || out.Existing {
			t.Fatalf("different body: %+v %v", out, ref)
		}
		e.runner.Now = func() time.Time { return time.Now().Add(25 * time.Hour) }
		out, ref = e.run(t, a, actions.RunOptions{Recheck: true})
		if ref != nil || out.Existing || out.ZendeskID == first.ZendeskID {
			t.Fatalf("a day later: %+v %v", out, ref)
		}
		if n := len(e.writes(t)); n != 3 {
			t.Errorf("%d writes, want 3", n)
		}
	})
}

func TestRunSolveNotConfirmed(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Options{RateLimit: 1_000_000, RateBurst: 100_000})
	path := fmt.Sprintf("/api/v2/requests/%d", sandbox.TicketBeaOpenAssigned)
	// A Zendesk that answers the PUT 200 without solving anything.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.TrimSuffix(r.URL.Path, ".json") == path {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"request":{"id":%d,"status":"open"}}`, sandbox.TicketBeaOpenAssigned)
			return
		}
		sb.ServeHTTP(w, r)
	})
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	tok, err := sb.IssueToken(sandbox.DemoAdminEmail, fullScope)
	if err != nil {
		t.Fatal(err)
	}
	zc, err := zendesk.New(hs.URL, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok.AccessToken}))
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{token: tok, zc: zc, db: newTestStore(t)}
	e.runner = &actions.Runner{Zendesk: zc, Audit: e.db, Admin: actions.Admin{ID: sandbox.DemoAdminID, Name: "Ada Admin"}}
	out, ref := e.run(t, actions.Solve{User: sandbox.DemoBeaEmail, Request: sandbox.TicketBeaOpenAssigned}, actions.RunOptions{})
	if ref == nil || ref.Code != actions.CodeRejected || !strings.Contains(ref.Message, "did not mark request #110 solved") {
		t.Fatalf("refusal = %+v", ref)
	}
	if out.Status != http.StatusOK {
		t.Errorf("outcome status = %d, want the write's 200", out.Status)
	}
}

// failingAuditor refuses every event.
type failingAuditor struct{ calls int }

var errAuditDown = errors.New("audit store down")

func (f *failingAuditor) CreateAuditEvent(ctx context.Context, e *store.AuditEvent) error {
	f.calls++
	return errAuditDown
}

func TestRunAuditFailure(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
	fa := &failingAuditor{}
	e.runner.Audit = fa

	out, err := e.runner.Run(t.Context(), actions.Rate{User: sandbox.DemoBeaEmail, Ticket: sandbox.TicketBeaSolved, Score: "good"},
		actions.NewLookup(e.zc), actions.RunOptions{})
	var ref *actions.Refusal
	if !errors.Is(err, errAuditDown) || errors.As(err, &ref) {
		t.Errorf("done but unaudited: err = %v, want the audit error and no Refusal", err)
	}
	if out.ZendeskID == 0 || out.Status != http.StatusOK {
		t.Errorf("outcome = %+v, want the rating", out)
	}

	_, err = e.runner.Run(t.Context(), actions.Rate{User: sandbox.DemoBeaEmail, Ticket: sandbox.TicketBeaClosed, Score: "good"},
		actions.NewLookup(e.zc), actions.RunOptions{})
	if !errors.Is(err, errAuditDown) || !errors.As(err, &ref) || ref.Code != actions.CodeClosed {
		t.Errorf("refused and unaudited: err = %v, want both the audit error and the Refusal", err)
	}
	if fa.calls != 2 {
		t.Errorf("auditor called %d times, want 2", fa.calls)
	}
}

// recordingAuditor keeps events and the context each came with.
type recordingAuditor struct {
	events []store.AuditEvent
	ctxErr []error
}

func (r *recordingAuditor) CreateAuditEvent(ctx context.Context, e *store.AuditEvent) error {
	r.events = append(r.events, *e)
	r.ctxErr = append(r.ctxErr, ctx.Err())
	return nil
}

func TestRunCanceledContextStillAudits(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
	ra := &recordingAuditor{}
	e.runner.Audit = ra
	e.runner.Now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := e.runner.Run(ctx, actions.Comment{User: sandbox.DemoBeaEmail, Request: sandbox.TicketBeaOpen, Body: "x"},
		actions.NewLookup(e.zc), actions.RunOptions{})
	var ref *actions.Refusal
	if !errors.As(err, &ref) || ref.Code != actions.CodeNetwork || !ref.Temporary() {
		t.Fatalf("err = %v, want a network refusal", err)
	}
	if len(ra.events) != 1 || ra.ctxErr[0] != nil {
		t.Fatalf("audit events %d, ctx err %v: want one, written with a live context", len(ra.events), ra.ctxErr)
	}
	if ev := ra.events[0]; ev.Outcome != store.OutcomeFailed || !ev.Time.Equal(e.runner.Now()) || ev.EndUser != sandbox.DemoBeaEmail {
		t.Errorf("audit event = %+v", ev)
	}
	if n := len(e.writes(t)); n != 0 {
		t.Errorf("%d writes after a canceled context", n)
	}
}

func TestRunWithoutAuditorRefusesToAct(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
	e.runner.Audit = nil
	_, err := e.runner.Run(t.Context(), actions.CreateRequest{User: sandbox.DemoBeaEmail, Subject: "s", Body: "b"},
		actions.NewLookup(e.zc), actions.RunOptions{})
	if err == nil || len(e.writes(t)) != 0 {
		t.Errorf("err = %v, writes %d: want an error and nothing sent", err, len(e.writes(t)))
	}
}

func TestPreflight(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
	look := actions.NewLookup(e.zc)

	u, err := e.runner.Preflight(t.Context(), actions.Rate{User: sandbox.DemoBeaEmail, Ticket: sandbox.TicketBeaSolved, Score: "good"}, look)
	if err != nil || u.ID != sandbox.DemoBeaID {
		t.Errorf("Preflight ok case = %+v, %v", u, err)
	}
	u, err = e.runner.Preflight(t.Context(), actions.Rate{User: sandbox.DemoUnverifiedEmail, Ticket: sandbox.TicketDanaSolved, Score: "good"}, look)
	var ref *actions.Refusal
	if !errors.As(err, &ref) || ref.Code != actions.CodeUnverified || u.ID != sandbox.DemoUnverifiedID {
		t.Errorf("Preflight unverified = %+v, %v; want the user and an unverified refusal", u, err)
	}
	_, err = e.runner.Preflight(t.Context(), actions.Solve{User: sandbox.DemoBeaEmail}, look)
	if !errors.As(err, &ref) || ref.Code != actions.CodeInvalid || ref.Field != "ticket" {
		t.Errorf("Preflight invalid = %v", err)
	}
	if n := len(e.writes(t)); n != 0 {
		t.Errorf("Preflight sent %d writes", n)
	}
	if evs := e.mustAuditEvents(t); len(evs) != 0 {
		t.Errorf("Preflight wrote %d audit rows", len(evs))
	}
}

// TestRunConcurrent runs rows for several end users at once through one
// Runner and one Batch, as bulk workers do; every write must land under its
// own end user. Run it with -race.
func TestRunConcurrent(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
	type row struct {
		a     actions.Action
		actor int64
	}
	var rows []row
	for i := range 20 {
		rows = append(rows,
			row{actions.Comment{User: sandbox.DemoBeaEmail, Request: sandbox.TicketBeaOpen, Body: fmt.Sprintf("bea %d", i)}, sandbox.DemoBeaID},
			row{actions.Comment{User: sandbox.DemoBeauEmail, Request: sandbox.TicketBeauOpen, Body: fmt.Sprintf("beau %d", i)}, sandbox.DemoBeauID},
			row{actions.CreateRequest{User: sandbox.DemoCarlosEmail, Subject: fmt.Sprintf("carlos %d", i), Body: "b"}, sandbox.DemoCarlosID})
	}
	b := actions.NewBatch(e.zc)
	var refs []string
	var ids []int64
	for _, r := range rows {
		refs, ids = append(refs, r.a.EndUser()), append(ids, r.a.TicketID())
	}
	if err := b.Prefetch(t.Context(), refs, ids); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, len(rows))
	for i, r := range rows {
		go func() {
			_, err := e.runner.Run(t.Context(), r.a, b, actions.RunOptions{RunID: 1, RowID: int64(i), SkipPreflight: true})
			errs <- err
		}()
	}
	for range rows {
		if err := <-errs; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	ws := e.writes(t)
	if len(ws) != len(rows) {
		t.Fatalf("%d writes, want %d", len(ws), len(rows))
	}
	for _, w := range ws {
		var want int64
		switch {
		case strings.Contains(w.Body, "beau "):
			want = sandbox.DemoBeauID
		case strings.Contains(w.Body, "bea "):
			want = sandbox.DemoBeaID
		default:
			want = sandbox.DemoCarlosID
		}
		if w.ActorID != want {
			t.Errorf("write %q recorded as %d, want %d", w.Body, w.ActorID, want)
		}
	}
	if evs := e.mustAuditEvents(t); len(evs) != len(rows) {
		t.Errorf("%d audit rows, want %d", len(evs), len(rows))
	}
}

func TestRunRecheckCommentAndSolve(t *testing.T) {
	t.Parallel()
	comment := actions.Comment{User: sandbox.DemoBeaEmail, Request: sandbox.TicketBeaOpen, Body: "Did the  refund\ngo out?"}

	t.Run("comment found is not sent again", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
		if _, ref := e.run(t, comment, actions.RunOptions{}); ref != nil {
			t.Fatal(ref)
		}
		out, ref := e.run(t, comment, actions.RunOptions{Recheck: true})
		if ref != nil || !out.Existing || out.ZendeskID != sandbox.TicketBeaOpen {
			t.Fatalf("recheck = %+v, %v; want Existing", out, ref)
		}
		if n := len(e.writes(t)); n != 1 {
			t.Errorf("%d writes, want 1", n)
		}
	})

	t.Run("comment by someone else or another text is sent", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
		// The agent's reply on this request is not Bea's comment.
		tk, _ := e.srv.TicketByID(sandbox.TicketBeaOpen)
		reply := tk.Comments[len(tk.Comments)-1]
		if reply.AuthorID == sandbox.DemoBeaID {
			t.Fatalf("expected the last demo comment to be the agent's: %+v", reply)
		}
		e.srv.UpdateTicket(sandbox.TicketBeaOpen, func(tk *sandbox.Ticket) {
			for i := range tk.Comments {
				tk.Comments[i].CreatedAt = time.Now()
			}
		})
		out, ref := e.run(t, actions.Comment{User: sandbox.DemoBeaEmail, Request: sandbox.TicketBeaOpen, Body: reply.Body}, actions.RunOptions{Recheck: true})
		if ref != nil || out.Existing {
			t.Fatalf("recheck = %+v, %v; want it sent", out, ref)
		}
		if n := len(e.writes(t)); n != 1 || e.srv.Stats().Calls["GET /api/v2/requests/{id}/comments"] != 1 {
			t.Errorf("%d writes, calls %v", n, e.srv.Stats().Calls)
		}
	})

	t.Run("solve already solved on recheck is done", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
		solve := actions.Solve{User: sandbox.DemoBeaEmail, Request: sandbox.TicketBeaOpenAssigned}
		if _, ref := e.run(t, solve, actions.RunOptions{}); ref != nil {
			t.Fatal(ref)
		}
		out, ref := e.run(t, solve, actions.RunOptions{Recheck: true})
		if ref != nil || !out.Existing || !strings.Contains(out.Message, "already solved") {
			t.Fatalf("recheck = %+v, %v; want Existing", out, ref)
		}
		// Without Recheck the same state is a refusal.
		if _, ref := e.run(t, solve, actions.RunOptions{}); ref == nil || ref.Code != actions.CodeAlreadySolved {
			t.Errorf("without recheck: %+v, want already_solved", ref)
		}
		if n := len(e.writes(t)); n != 1 {
			t.Errorf("%d writes, want 1", n)
		}
	})
}

// newManyRequestsEnv starts a sandbox whose one end user, verified and
// active, has n requests, all opened long ago.
func newManyRequestsEnv(t *testing.T, sw sandbox.Switches, n int) (*testEnv, string) {
	t.Helper()
	e := newTestEnv(t, sandbox.Options{Switches: sw, Data: sandbox.Generate(1, 1, n)}, fullScope, fullScope)
	e.srv.UpdateUser(sandbox.GeneratedFirstUserID, func(u *sandbox.User) { u.Verified, u.Suspended, u.Active = true, false, true })
	return e, sandbox.GeneratedUserEmail(0)
}

// TestRunCreateRequestRecheckManyRequests checks the re-check for a user
// with more requests than one page, whatever Zendesk does with the order
// asked for (§3.2): it finds the earlier attempt among the newest, and it
// stops early only when the dates show the newest came first.
func TestRunCreateRequestRecheckManyRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		sw        sandbox.Switches
		earlier   bool // an earlier attempt opened the request
		wantLists int  // GET /api/v2/requests calls of the re-check
	}{
		{"sorted, earlier attempt found", sandbox.Switches{}, true, 1},
		{"sort_by ignored, earlier attempt found", sandbox.Switches{CursorIgnoresSortBy: true}, true, 1},
		{"every sort ignored, earlier attempt found", sandbox.Switches{CursorIgnoresSort: true}, true, 2},
		{"sorted, none: stops at the first old request", sandbox.Switches{}, false, 1},
		{"every sort ignored, none: reads to the end", sandbox.Switches{CursorIgnoresSort: true}, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, user := newManyRequestsEnv(t, tt.sw, 150)
			a := actions.CreateRequest{User: user, Subject: "Broken heater", Body: "The heater in room 4 is cold."}
			var first actions.Outcome
			if tt.earlier {
				var ref *actions.Refusal
				if first, ref = e.run(t, a, actions.RunOptions{}); ref != nil {
					t.Fatal(ref)
				}
			}
			e.srv.ResetStats()
			out, ref := e.run(t, a, actions.RunOptions{Recheck: true})
			if ref != nil {
				t.Fatal(ref)
			}
			posts := 0
			for _, w := range e.writes(t) {
				if w.Endpoint == "POST /api/v2/requests" {
					posts++
				}
			}
			switch {
			case tt.earlier && (!out.Existing || out.ZendeskID != first.ZendeskID || posts != 0):
				t.Errorf("re-check = %+v with %d POSTs, want Existing #%d and nothing sent", out, posts, first.ZendeskID)
			case !tt.earlier && (out.Existing || posts != 1):
				t.Errorf("re-check = %+v with %d POSTs, want one request opened", out, posts)
			}
			if got := e.srv.Stats().Calls["GET /api/v2/requests"]; got != tt.wantLists {
				t.Errorf("the re-check listed %d pages, want %d", got, tt.wantLists)
			}
		})
	}
}

// TestRunCreateRequestRecheckGivesUp checks that a re-check that cannot
// reach the newest requests sends nothing and says why.
func TestRunCreateRequestRecheckGivesUp(t *testing.T) {
	t.Parallel()
	e, user := newManyRequestsEnv(t, sandbox.Switches{CursorIgnoresSort: true}, 2001)
	out, ref := e.run(t, actions.CreateRequest{User: user, Subject: "s", Body: "b"}, actions.RunOptions{Recheck: true})
	if ref == nil || ref.Code != actions.CodeRejected || !strings.Contains(ref.Message, "can't tell whether an earlier attempt already opened") {
		t.Fatalf("refusal = %+v, outcome %+v", ref, out)
	}
	if ref.Temporary() {
		t.Error("a re-check that gave up is Temporary: a retry would give up again")
	}
	if n := len(e.writes(t)); n != 0 {
		t.Errorf("%d writes, want none", n)
	}
}

// TestRunRecheckCommentManyComments checks that the comment re-check reads
// past the first page of a long conversation.
func TestRunRecheckCommentManyComments(t *testing.T) {
	t.Parallel()
	for _, sw := range []sandbox.Switches{{}, {CursorIgnoresSortBy: true}, {CursorIgnoresSort: true}} {
		t.Run(fmt.Sprintf("%+v", sw), func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, sandbox.Options{Switches: sw}, fullScope, fullScope)
			e.srv.UpdateTicket(sandbox.TicketBeaOpen, func(tk *sandbox.Ticket) {
				for i := range 150 {
					tk.Comments = append(tk.Comments, sandbox.Comment{ID: 50_000 + int64(i), AuthorID: sandbox.DemoBeaID,
						Body: fmt.Sprintf("Old note %d", i), Public: true, CreatedAt: time.Now().Add(-72 * time.Hour).Add(time.Duration(i) * time.Minute)})
				}
			})
			c := actions.Comment{User: sandbox.DemoBeaEmail, Request: sandbox.TicketBeaOpen, Body: "Any news?"}
			if _, ref := e.run(t, c, actions.RunOptions{}); ref != nil {
				t.Fatal(ref)
			}
			out, ref := e.run(t, c, actions.RunOptions{Recheck: true})
			if ref != nil || !out.Existing {
				t.Fatalf("re-check = %+v, %v; want Existing", out, ref)
			}
			if n := len(e.writes(t)); n != 1 {
				t.Errorf("%d writes, want only the first", n)
			}
		})
	}
}

// TestRunCreateRequestImpersonationIgnored checks that a request Zendesk
// opened under someone else's name than the end user's is reported with
// its own code, audited as failed, and never taken for success.
func TestRunCreateRequestImpersonationIgnored(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ignored  bool // sandbox.Switches.ImpersonationIgnoredOnCreate
		strip    bool // the answer lacks requester_id
		contains string
		readBack int // GET /api/v2/requests/{id} calls
	}{
		{"requester in the answer", true, false, "in your name instead of as Bea Lindqvist (bea@example.com)", 0},
		{"answer without requester_id", true, true, "in someone else's name instead of as Bea Lindqvist", 1},
		{"answer without requester_id, impersonation honoured", false, true, "", 1},
		{"impersonation honoured", false, false, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, sandbox.Options{Switches: sandbox.Switches{ImpersonationIgnoredOnCreate: tt.ignored}}, fullScope, fullScope)
			if tt.strip {
				zc, err := zendesk.New(newRequesterStripper(t, e.srv), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: e.token.AccessToken}))
				if err != nil {
					t.Fatal(err)
				}
				e.runner.Zendesk = zc
			}
			out, ref := e.run(t, actions.CreateRequest{User: sandbox.DemoBeaEmail, Subject: "Lost parcel", Body: "It never came."}, actions.RunOptions{})
			ws := e.writes(t)
			if len(ws) != 1 || out.ZendeskID != ws[0].TicketID || out.TicketID != out.ZendeskID || out.Status != http.StatusCreated {
				t.Fatalf("writes %+v, outcome %+v: want one create, recorded in the outcome", ws, out)
			}
			if got := e.srv.Stats().Calls["GET /api/v2/requests/{id}"]; got != tt.readBack {
				t.Errorf("%d read-backs, want %d", got, tt.readBack)
			}
			if !tt.ignored {
				if ref != nil || ws[0].ActorID != sandbox.DemoBeaID {
					t.Fatalf("refusal %+v, write %+v; want success as Bea", ref, ws[0])
				}
				return
			}
			if ws[0].ActorID != sandbox.DemoAdminID {
				t.Fatalf("write recorded as %d, want the admin: the switch did not apply", ws[0].ActorID)
			}
			if ref == nil || ref.Code != actions.CodeImpersonationIgnored || ref.Temporary() {
				t.Fatalf("refusal = %+v, want a permanent %s", ref, actions.CodeImpersonationIgnored)
			}
			want := fmt.Sprintf("Zendesk opened request #%d %s", out.ZendeskID, tt.contains)
			if !strings.HasPrefix(ref.Message, want) || !strings.Contains(ref.Message, "make them the requester") {
				t.Errorf("message %q, want it to start %q and say what to do", ref.Message, want)
			}
			ev := e.mustAuditEvents(t)[0]
			if ev.Outcome != store.OutcomeFailed || ev.ZendeskID != out.ZendeskID || !strings.Contains(ev.Detail, "ignored the instruction to act as them") {
				t.Errorf("audit row %+v, want failed, naming the request and what happened", ev)
			}
		})
	}
}

// newRequesterStripper serves srv through a proxy that drops requester_id
// from the answer to POST /api/v2/requests, as a terse Zendesk might, and
// returns the proxy's URL.
func newRequesterStripper(t *testing.T, srv *sandbox.Server) string {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || strings.TrimSuffix(r.URL.Path, ".json") != "/api/v2/requests" {
			srv.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, r)
		var body map[string]map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Errorf("proxy: decode %q: %v", rec.Body.Bytes(), err)
		}
		delete(body["request"], "requester_id")
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_ = json.NewEncoder(w).Encode(body)
	})
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return hs.URL
}

// TestRunStopped checks both ways a bulk run stops an action before its
// write goes out (actions.ErrStopped): nothing is sent, no audit row is
// written, and the refusal says so.
func TestRunStopped(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, e *testEnv) context.Context
	}{
		{"send check refuses", func(t *testing.T, e *testEnv) context.Context {
			e.runner.Zendesk = e.zc.BeforeWrite(func(context.Context) error {
				return fmt.Errorf("%w: run 7 was cancelled", actions.ErrStopped)
			})
			return t.Context()
		}},
		{"context ended with ErrStopped", func(t *testing.T, e *testEnv) context.Context {
			ctx, cancel := context.WithCancelCause(t.Context())
			cancel(fmt.Errorf("%w: run 7 was cancelled", actions.ErrStopped))
			return ctx
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
			ctx := tt.setup(t, e)
			a := actions.Rate{User: sandbox.DemoBeaEmail, Ticket: sandbox.TicketBeaSolved, Score: "good"}
			out, err := e.runner.Run(ctx, a, actions.NewLookup(e.zc), actions.RunOptions{RunID: 7, RowID: 2})
			var ref *actions.Refusal
			if !errors.As(err, &ref) || ref.Code != actions.CodeStopped || ref.Temporary() {
				t.Fatalf("Run = %v, want a permanent %s refusal", err, actions.CodeStopped)
			}
			if !strings.Contains(ref.Message, "nothing changed in Zendesk") || out.Message != ref.Message {
				t.Errorf("message %q (outcome %q), want it to say nothing changed", ref.Message, out.Message)
			}
			if ws := e.writes(t); len(ws) != 0 {
				t.Errorf("writes %+v, want none", ws)
			}
			if evs := e.mustAuditEvents(t); len(evs) != 0 {
				t.Errorf("audit rows %+v, want none", evs)
			}
		})
	}
}
