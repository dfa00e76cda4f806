package actions_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/actions"
)

// fieldsOf returns the sorted field names of a Validate error (nil for none)
// and fails the test if err is not a FieldErrors.
func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var fe actions.FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("Validate error %T %v is not a FieldErrors", err, err)
	}
	var keys []string
	for k, msg := range fe {
		keys = append(keys, k)
		if !strings.HasSuffix(msg, ".") || msg == "" {
			t.Errorf("field %s: message %q is not a sentence", k, msg)
		}
	}
	slices.Sort(keys)
	return keys
}

func TestValidate(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("é", n) }
	tests := []struct {
		name string
		a    actions.Action
		want []string // fields with errors
	}{
		{"rate ok", actions.Rate{User: "bea@example.com", Ticket: 105, Score: "good"}, nil},
		{"rate ok by id", actions.Rate{User: "10", Ticket: 105, Score: "bad", Comment: "slow", ReasonCode: 5}, nil},
		{"rate empty", actions.Rate{}, []string{"score", "ticket", "user"}},
		{"rate bad score", actions.Rate{User: "bea@example.com", Ticket: 1, Score: "great"}, []string{"score"}},
		{"rate offered score", actions.Rate{User: "bea@example.com", Ticket: 1, Score: "offered"}, []string{"score"}},
		{"rate reason with good", actions.Rate{User: "bea@example.com", Ticket: 1, Score: "good", ReasonCode: 5}, []string{"reason"}},
		{"rate negative reason", actions.Rate{User: "bea@example.com", Ticket: 1, Score: "bad", ReasonCode: -1}, []string{"reason"}},
		{"rate negative ticket", actions.Rate{User: "bea@example.com", Ticket: -3, Score: "good"}, []string{"ticket"}},
		{"rate long comment", actions.Rate{User: "bea@example.com", Ticket: 1, Score: "good", Comment: long(actions.MaxCommentLen + 1)}, []string{"comment"}},
		{"rate comment at limit", actions.Rate{User: "bea@example.com", Ticket: 1, Score: "good", Comment: long(actions.MaxCommentLen)}, nil},
		{"rate bad utf8 comment", actions.Rate{User: "bea@example.com", Ticket: 1, Score: "good", Comment: "\xff"}, []string{"comment"}},
		{"rate display-name email", actions.Rate{User: "Bea <bea@example.com>", Ticket: 1, Score: "good"}, []string{"user"}},
		{"rate user neither", actions.Rate{User: "bea", Ticket: 1, Score: "good"}, []string{"user"}},
		{"rate user zero id", actions.Rate{User: "0", Ticket: 1, Score: "good"}, []string{"user"}},
		{"rate user blank", actions.Rate{User: "   ", Ticket: 1, Score: "good"}, []string{"user"}},

		{"create ok", actions.CreateRequest{User: "bea@example.com", Subject: "Hi", Body: "Help"}, nil},
		{"create empty", actions.CreateRequest{}, []string{"body", "subject", "user"}},
		{"create blank subject", actions.CreateRequest{User: "10", Subject: "  ", Body: "Help"}, []string{"subject"}},
		{"create long subject", actions.CreateRequest{User: "10", Subject: long(actions.MaxSubjectLen + 1), Body: "Help"}, []string{"subject"}},
		{"create long body", actions.CreateRequest{User: "10", Subject: "Hi", Body: long(actions.MaxBodyLen + 1)}, []string{"body"}},
		{"create bad utf8 body", actions.CreateRequest{User: "10", Subject: "Hi", Body: "a\xffb"}, []string{"body"}},

		{"comment ok", actions.Comment{User: "bea@example.com", Request: 102, Body: "Thanks"}, nil},
		{"comment empty", actions.Comment{}, []string{"body", "ticket", "user"}},
		{"comment blank body", actions.Comment{User: "10", Request: 102, Body: "\n\t"}, []string{"body"}},
		{"comment long body", actions.Comment{User: "10", Request: 102, Body: long(actions.MaxCommentLen + 1)}, []string{"body"}},

		{"solve ok", actions.Solve{User: "bea@example.com", Request: 110}, nil},
		{"solve ok with comment", actions.Solve{User: "10", Request: 110, Comment: "Fixed, thanks"}, nil},
		{"solve empty", actions.Solve{}, []string{"ticket", "user"}},
		{"solve long comment", actions.Solve{User: "10", Request: 110, Comment: long(actions.MaxCommentLen + 1)}, []string{"comment"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := fieldsOf(t, tt.a.Validate()); !slices.Equal(got, tt.want) {
				t.Errorf("Validate() fields = %v, want %v (err: %v)", got, tt.want, tt.a.Validate())
			}
		})
	}
}

func TestKindsAndAccessors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a      actions.Action
		kind   actions.Kind
		user   string
		ticket int64
	}{
		{actions.Rate{User: "a@b.c", Ticket: 7}, actions.KindRate, "a@b.c", 7},
		{actions.CreateRequest{User: "12"}, actions.KindCreateRequest, "12", 0},
		{actions.Comment{User: "a@b.c", Request: 8}, actions.KindComment, "a@b.c", 8},
		{actions.Solve{User: "a@b.c", Request: 9}, actions.KindSolve, "a@b.c", 9},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			t.Parallel()
			if tt.a.Kind() != tt.kind || tt.a.EndUser() != tt.user || tt.a.TicketID() != tt.ticket {
				t.Errorf("got (%s, %s, %d), want (%s, %s, %d)", tt.a.Kind(), tt.a.EndUser(), tt.a.TicketID(), tt.kind, tt.user, tt.ticket)
			}
			k, err := actions.ParseKind(string(tt.kind))
			if err != nil || k != tt.kind {
				t.Errorf("ParseKind(%q) = %q, %v", tt.kind, k, err)
			}
			if tt.kind.Label() == string(tt.kind) {
				t.Errorf("Label(%q) has no plain-words label", tt.kind)
			}
		})
	}
	if _, err := actions.ParseKind("delete"); err == nil {
		t.Error("ParseKind(delete) succeeded")
	}
}

func TestFieldErrorsOrder(t *testing.T) {
	t.Parallel()
	fe := actions.FieldErrors{"user": "U.", "body": "B.", "subject": "S."}
	if got, want := fe.Error(), "B. S. U."; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
