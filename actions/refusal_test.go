package actions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk"
)

// TestRefusalFor covers the translation of every kind of zendesk error that
// needs no follow-up call (403s are covered against the sandbox).
func TestRefusalFor(t *testing.T) {
	t.Parallel()
	details := func(field, desc string) map[string][]zendesk.FieldError {
		return map[string][]zendesk.FieldError{field: {{Description: desc, Error: "InvalidValue"}}}
	}
	tests := []struct {
		name      string
		err       error
		c         call
		code      string
		field     string
		contains  string
		temporary bool
		outcome   string
	}{
		{"422 closed on comment", &zendesk.Error{Kind: zendesk.ErrValidation, Status: 422, Details: details("status", "Status: closed prevents ticket update")},
			call{kind: KindComment, write: true, id: 5}, CodeClosed, "ticket", "Request #5 is closed", false, store.OutcomeRefused},
		{"422 closed on rate", &zendesk.Error{Kind: zendesk.ErrValidation, Status: 422, Details: details("status", "Status: closed prevents ticket update")},
			call{kind: KindRate, write: true, id: 5}, CodeClosed, "ticket", "Ticket #5 is closed; Zendesk no longer accepts ratings for closed tickets.", false, store.OutcomeRefused},
		{"422 score", &zendesk.Error{Kind: zendesk.ErrValidation, Status: 422, Details: details("score", "Score: is not included in the list")},
			call{kind: KindRate, write: true, id: 5}, CodeScoreNotAllowed, "score", "Score: is not included in the list", false, store.OutcomeRefused},
		{"422 not solved", &zendesk.Error{Kind: zendesk.ErrValidation, Status: 422, Details: details("base", "Satisfaction rating can only be given for solved tickets")},
			call{kind: KindRate, write: true, id: 5}, CodeNotSolved, "ticket", "only for solved tickets", false, store.OutcomeRefused},
		{"422 cannot be solved", &zendesk.Error{Kind: zendesk.ErrValidation, Status: 422, Details: details("base", "This request cannot be solved by you")},
			call{kind: KindSolve, write: true, id: 5}, CodeCannotBeSolved, "ticket", "cannot be solved by you", false, store.OutcomeRefused},
		{"422 other", &zendesk.Error{Kind: zendesk.ErrValidation, Status: 422, Description: "Record validation errors", Details: details("description", "Description: cannot be blank")},
			call{kind: KindCreateRequest, write: true}, CodeRejected, "", "Zendesk refused it: Description: cannot be blank.", false, store.OutcomeRefused},
		{"400", &zendesk.Error{Kind: zendesk.ErrBadRequest, Status: 400, Code: "InvalidParameter", Title: "ids must be numbers"},
			call{kind: KindRate}, CodeRejected, "", "ids must be numbers", false, store.OutcomeRefused},
		{"404 request", &zendesk.Error{Kind: zendesk.ErrNotFound, Status: 404},
			call{kind: KindComment, what: "request #77", id: 77}, CodeTicketNotFound, "ticket", "Request #77 was not found", false, store.OutcomeRefused},
		{"unknown user", &zendesk.Error{Kind: zendesk.ErrUnknownUser, Status: 401},
			call{kind: KindRate, ref: "x@example.com"}, CodeUnknownUser, "user", `no user "x@example.com"`, false, store.OutcomeRefused},
		{"token invalid", fmt.Errorf("wrapped: %w", &zendesk.Error{Kind: zendesk.ErrTokenInvalid, Status: 401}),
			call{kind: KindRate}, CodeLoginExpired, "", msgLoginExpired, false, store.OutcomeRefused},
		{"429 without Retry-After", &zendesk.Error{Kind: zendesk.ErrRateLimited, Status: 429},
			call{kind: KindRate, write: true}, CodeRateLimited, "", "try again in 10 seconds.", true, store.OutcomeFailed},
		{"500 on a write", &zendesk.Error{Kind: zendesk.ErrUnavailable, Status: 500},
			call{kind: KindComment, write: true}, CodeUnavailable, "", "not known whether the comment was added", true, store.OutcomeFailed},
		{"503 with Retry-After", &zendesk.Error{Kind: zendesk.ErrUnavailable, Status: 503, RetryAfter: 90 * time.Second},
			call{kind: KindRate}, CodeUnavailable, "", "try again in 90 seconds.", true, store.OutcomeFailed},
		{"409 conflict", &zendesk.Error{Kind: zendesk.ErrUnexpected, Status: 409},
			call{kind: KindSolve, write: true}, CodeRejected, "", "HTTP 409", true, store.OutcomeFailed},
		{"unexpected 200 body", &zendesk.Error{Kind: zendesk.ErrUnexpected, Status: 200, Description: "response is not the JSON Zendesk documents"},
			call{kind: KindCreateRequest, write: true}, CodeRejected, "", "will not be opened twice", false, store.OutcomeFailed},
		{"bare deadline", context.DeadlineExceeded, call{kind: KindRate}, CodeNetwork, "", "could not be reached", true, store.OutcomeFailed},
		{"network on write", &zendesk.Error{Kind: zendesk.ErrNetwork}, call{kind: KindRate, write: true}, CodeNetwork, "", "trying again is safe", true, store.OutcomeFailed},
		{"foreign error", errors.New("boom"), call{kind: KindRate}, CodeRejected, "", "Something went wrong", false, store.OutcomeFailed},
	}
	r := &Runner{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ref := r.refusalFor(t.Context(), tt.err, tt.c)
			if ref.Code != tt.code || ref.Field != tt.field {
				t.Errorf("code/field = %q/%q, want %q/%q (message %q)", ref.Code, ref.Field, tt.code, tt.field, ref.Message)
			}
			if !strings.Contains(ref.Message, tt.contains) {
				t.Errorf("message %q lacks %q", ref.Message, tt.contains)
			}
			if ref.Temporary() != tt.temporary {
				t.Errorf("Temporary() = %v, want %v", ref.Temporary(), tt.temporary)
			}
			if got := ref.outcome(); got != tt.outcome {
				t.Errorf("outcome() = %q, want %q", got, tt.outcome)
			}
			if !errors.Is(ref, tt.err) {
				t.Errorf("refusal does not wrap its cause")
			}
			if ref.Status != statusOf(tt.err) {
				t.Errorf("Status = %d, want %d", ref.Status, statusOf(tt.err))
			}
		})
	}
}

func TestInvalidRefusal(t *testing.T) {
	t.Parallel()
	err := Comment{}.Validate()
	ref := invalidRefusal(err)
	var fe FieldErrors
	if ref.Code != CodeInvalid || ref.Field != "body" || ref.Message != err.Error() || !errors.As(ref, &fe) || len(fe) != 3 {
		t.Errorf("invalidRefusal = %+v", ref)
	}
	if ref.Temporary() || ref.outcome() != store.OutcomeRefused {
		t.Errorf("invalid is temporary or not refused")
	}
}

func TestMissingScopes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scopes string
		kind   Kind
		cheap  bool
		want   []string
	}{
		{"", KindRate, false, nil},
		{"read write impersonate", KindSolve, false, nil},
		{"read write", KindComment, false, []string{"impersonate"}},
		{"write impersonate", KindCreateRequest, false, []string{"read"}},
		{"read impersonate", KindRate, false, []string{"write"}},
		{"users:read tickets:read satisfaction_ratings:write impersonate", KindRate, false, nil},
		{"users:read tickets:read satisfaction_ratings:write impersonate", KindComment, false, []string{"read", "write"}},
		{"users:read requests:read requests:write impersonate", KindComment, false, nil},
		{"users:read requests:read requests:write impersonate", KindComment, true, []string{"read"}},
		{"impersonate", KindSolve, false, []string{"read", "write"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%v", tt.scopes, tt.kind, tt.cheap), func(t *testing.T) {
			t.Parallel()
			r := &Runner{Scopes: tt.scopes}
			got := r.missingScopes(tt.kind, tt.cheap)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("missingScopes = %v, want %v", got, tt.want)
			}
		})
	}
	msg := missingScopeMessage([]string{"write", "impersonate"}, "commenting as an end user")
	for _, want := range []string{`"write" and "impersonate" scopes`, "ZENDESK_SCOPES", "log in again"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}
