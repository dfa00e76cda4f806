package actions_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/zendesk"
)

func code(r *actions.Refusal) string {
	if r == nil {
		return ""
	}
	return r.Code
}

func TestCheckEndUser(t *testing.T) {
	t.Parallel()
	ok := zendesk.User{ID: 10, Name: "Bea", Email: "bea@example.com", Role: zendesk.RoleEndUser, Verified: true, Active: true}
	tests := []struct {
		name   string
		change func(*zendesk.User)
		code   string
		says   string
	}{
		{"ok", func(*zendesk.User) {}, "", ""},
		{"agent", func(u *zendesk.User) { u.Role = zendesk.RoleAgent }, actions.CodeNotEndUser, "is an agent"},
		{"admin", func(u *zendesk.User) { u.Role = zendesk.RoleAdmin }, actions.CodeNotEndUser, "is an admin"},
		{"no role", func(u *zendesk.User) { u.Role = "" }, actions.CodeNotEndUser, "is not an end user"},
		{"unverified", func(u *zendesk.User) { u.Verified = false },
			actions.CodeUnverified, "Bea (bea@example.com) has no verified email in Zendesk, so Zendesk won't let anyone act as them."},
		{"deleted", func(u *zendesk.User) { u.Active = false }, actions.CodeSuspended, "deleted"},
		{"suspended", func(u *zendesk.User) { u.Suspended = true }, actions.CodeSuspended, "Bea (bea@example.com) is suspended"},
		{"agent and unverified: role first", func(u *zendesk.User) { u.Role, u.Verified = zendesk.RoleAgent, false }, actions.CodeNotEndUser, "agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := ok
			tt.change(&u)
			r := actions.CheckEndUser(u)
			if code(r) != tt.code || (r != nil && (!strings.Contains(r.Message, tt.says) || r.Field != "user")) {
				t.Errorf("CheckEndUser = %+v, want %q saying %q", r, tt.code, tt.says)
			}
		})
	}
}

func TestCheckRate(t *testing.T) {
	t.Parallel()
	bea := zendesk.User{ID: 10, Name: "Bea", Email: "bea@example.com", Role: zendesk.RoleEndUser}
	rating := func(s string) *zendesk.SatisfactionRating { return &zendesk.SatisfactionRating{Score: s} }
	tests := []struct {
		name string
		t    zendesk.Ticket
		code string
		says string
	}{
		{"solved", zendesk.Ticket{ID: 1, RequesterID: 10, Status: "solved", SatisfactionRating: rating("offered")}, "", ""},
		{"solved rated", zendesk.Ticket{ID: 1, RequesterID: 10, Status: "solved", SatisfactionRating: rating("good")}, "", ""},
		{"solved without CSAT state", zendesk.Ticket{ID: 1, RequesterID: 10, Status: "solved"}, "", ""},
		{"reopened", zendesk.Ticket{ID: 1, RequesterID: 10, Status: "open", SatisfactionRating: rating("offered")}, "", ""},
		{"reopened after rating", zendesk.Ticket{ID: 1, RequesterID: 10, Status: "pending", SatisfactionRating: rating("bad")}, "", ""},
		{"never solved", zendesk.Ticket{ID: 1, RequesterID: 10, Status: "open", SatisfactionRating: rating("unoffered")}, actions.CodeNotSolved, "it is open"},
		{"never solved hold", zendesk.Ticket{ID: 1, RequesterID: 10, Status: "hold"}, actions.CodeNotSolved, "it is hold"},
		{"closed", zendesk.Ticket{ID: 7, RequesterID: 10, Status: "closed", SatisfactionRating: rating("offered")}, actions.CodeClosed,
			"Ticket #7 is closed; Zendesk no longer accepts ratings for closed tickets."},
		{"not requester", zendesk.Ticket{ID: 8, RequesterID: 12, Status: "solved"}, actions.CodeNotRequester, "requested by someone else (user #12), not by Bea"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if r := actions.CheckRate(bea, tt.t); code(r) != tt.code || (r != nil && !strings.Contains(r.Message, tt.says)) {
				t.Errorf("CheckRate = %+v, want %q saying %q", r, tt.code, tt.says)
			}
		})
	}
}

func TestCheckCommentAndSolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status    string
		canSolve  bool
		comment   string
		warn      string
		solveCode string
	}{
		{"new", true, "", "", ""},
		{"open", true, "", "", ""},
		{"open", false, "", "", actions.CodeCannotBeSolved},
		{"hold", true, "", "", ""},
		{"pending", true, "", "pending request back to open", ""},
		{"solved", false, "", "reopened this solved request", actions.CodeAlreadySolved},
		{"closed", false, actions.CodeClosed, "", actions.CodeClosed},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v", tt.status, tt.canSolve), func(t *testing.T) {
			t.Parallel()
			r := zendesk.Request{ID: 5, Status: tt.status, CanBeSolvedByMe: tt.canSolve}
			warn, ref := actions.CheckComment(r)
			if code(ref) != tt.comment || (tt.warn == "") != (warn == "") || !strings.Contains(warn, tt.warn) {
				t.Errorf("CheckComment = %q, %+v; want %q, %q", warn, ref, tt.warn, tt.comment)
			}
			if ref := actions.CheckSolve(r); code(ref) != tt.solveCode || (ref != nil && !strings.Contains(ref.Message, "#5")) {
				t.Errorf("CheckSolve = %+v, want %q", ref, tt.solveCode)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	if actions.Explain(nil) != nil {
		t.Error("Explain(nil) != nil")
	}
	own := &actions.Refusal{Code: actions.CodeClosed, Message: "m"}
	if got := actions.Explain(fmt.Errorf("ctx: %w", own)); got != own {
		t.Errorf("Explain of a wrapped Refusal = %+v, want it unchanged", got)
	}
	if got := actions.Explain(actions.Rate{}.Validate()); got.Code != actions.CodeInvalid || got.Field != "score" {
		t.Errorf("Explain(FieldErrors) = %+v", got)
	}
	tests := []struct {
		name string
		err  error
		code string
		says string
	}{
		{"403 with scope guess", &zendesk.Error{Kind: zendesk.ErrForbidden, Status: 403, MissingScope: "read"}, actions.CodeMissingScope, `may lack the "read" scope`},
		{"403 without guess", &zendesk.Error{Kind: zendesk.ErrForbidden, Status: 403, Title: "Forbidden", Description: "You do not have access to this page."},
			actions.CodeRejected, "You do not have access to this page"},
		{"401", &zendesk.Error{Kind: zendesk.ErrTokenInvalid, Status: 401}, actions.CodeLoginExpired, "Log in again"},
		{"429", &zendesk.Error{Kind: zendesk.ErrRateLimited, Status: 429}, actions.CodeRateLimited, "try again in 10 seconds"},
		{"network", &zendesk.Error{Kind: zendesk.ErrNetwork}, actions.CodeNetwork, "could not be reached"},
		{"404", &zendesk.Error{Kind: zendesk.ErrNotFound, Status: 404}, actions.CodeRejected, "does not exist"},
		{"other", errors.New("boom"), actions.CodeRejected, "Something went wrong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := actions.Explain(tt.err)
			if got.Code != tt.code || !strings.Contains(got.Message, tt.says) || !errors.Is(got, tt.err) {
				t.Errorf("Explain = %+v, want %q saying %q", got, tt.code, tt.says)
			}
		})
	}
}
