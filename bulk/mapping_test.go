package bulk

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/onbehalf/onbehalf/actions"
)

func TestFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind          actions.Kind
		req, optional []Field
	}{
		{actions.KindRate, []Field{FieldUser, FieldTicket, FieldScore}, []Field{FieldComment, FieldReason}},
		{actions.KindCreateRequest, []Field{FieldUser, FieldSubject, FieldBody}, []Field{}},
		{actions.KindComment, []Field{FieldUser, FieldTicket, FieldBody}, []Field{}},
		{actions.KindSolve, []Field{FieldUser, FieldTicket}, []Field{FieldComment}},
		{"dance", nil, nil},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			t.Parallel()
			req, opt := Fields(tt.kind)
			if diff := cmp.Diff(tt.req, req); diff != "" {
				t.Errorf("required (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.optional, opt); diff != "" {
				t.Errorf("optional (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGuessMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		kind   actions.Kind
		header []string
		want   Mapping
	}{
		{"rate exact names", actions.KindRate, []string{"user", "ticket", "score", "comment", "reason"},
			Mapping{FieldUser: 0, FieldTicket: 1, FieldScore: 2, FieldComment: 3, FieldReason: 4}},
		{"rate case, spaces, underscores", actions.KindRate, []string{"User_Email", "TICKET ID", "Satisfaction", "Rating Comment", "reason-code"},
			Mapping{FieldUser: 0, FieldTicket: 1, FieldScore: 2, FieldComment: 3, FieldReason: 4}},
		{"rate other synonyms", actions.KindRate, []string{"customer", "#", "rating", "note", "reason_id"},
			Mapping{FieldUser: 0, FieldTicket: 1, FieldScore: 2, FieldComment: 3, FieldReason: 4}},
		{"rate requester and request", actions.KindRate, []string{"Requester", "Request"},
			Mapping{FieldUser: 0, FieldTicket: 1}},
		{"rate requester email, request id, end user", actions.KindRate, []string{"end_user", "requester_email", "request_id"},
			Mapping{FieldUser: 0, FieldTicket: 2}},
		{"user id and id", actions.KindRate, []string{"id", "user_id"},
			Mapping{FieldUser: 1, FieldTicket: 0}},
		{"the better synonym wins", actions.KindRate, []string{"id", "email", "ticket_id"},
			Mapping{FieldUser: 1, FieldTicket: 2}},
		{"a column serves one field", actions.KindRate, []string{"email", "email"},
			Mapping{FieldUser: 0}},
		{"create request: title, description", actions.KindCreateRequest, []string{"end user", "Title", "Description"},
			Mapping{FieldUser: 0, FieldSubject: 1, FieldBody: 2}},
		{"create request: comment is the body", actions.KindCreateRequest, []string{"email", "subject", "comment", "score"},
			Mapping{FieldUser: 0, FieldSubject: 1, FieldBody: 2}},
		{"create request: message", actions.KindCreateRequest, []string{"message", "subject", "useremail"},
			Mapping{FieldUser: 2, FieldSubject: 1, FieldBody: 0}},
		{"comment: comment is the body", actions.KindComment, []string{"requester_email", "request_id", "comment"},
			Mapping{FieldUser: 0, FieldTicket: 1, FieldBody: 2}},
		{"comment: text", actions.KindComment, []string{"user_id", "ticket", "text"},
			Mapping{FieldUser: 0, FieldTicket: 1, FieldBody: 2}},
		{"comment: body beats comment", actions.KindComment, []string{"comment", "body", "email", "id"},
			Mapping{FieldUser: 2, FieldTicket: 3, FieldBody: 1}},
		{"solve: comment stays the comment", actions.KindSolve, []string{"email", "ticket_id", "comment", "description"},
			Mapping{FieldUser: 0, FieldTicket: 1, FieldComment: 2}},
		{"solve: note", actions.KindSolve, []string{"user", "id", "note"},
			Mapping{FieldUser: 0, FieldTicket: 1, FieldComment: 2}},
		{"nothing matches", actions.KindRate, []string{"foo", "bar"}, Mapping{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, GuessMapping(tt.kind, tt.header)); diff != "" {
				t.Errorf("GuessMapping(%s, %q) (-want +got):\n%s", tt.kind, tt.header, diff)
			}
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	rateMap := Mapping{FieldUser: 0, FieldTicket: 1, FieldScore: 2, FieldComment: 3, FieldReason: 4}
	textMap := Mapping{FieldUser: 0, FieldTicket: 1, FieldSubject: 1, FieldBody: 2, FieldComment: 2}
	tests := []struct {
		name  string
		kind  actions.Kind
		m     Mapping
		cells []string
		want  actions.Action
		errs  []string // exact when they end in ".", else a prefix
	}{
		{"rate", actions.KindRate, rateMap, []string{" bea@example.com ", "#12", "Good", " Thanks ", ""},
			actions.Rate{User: "bea@example.com", Ticket: 12, Score: "good", Comment: "Thanks"}, nil},
		{"rate bad with reason", actions.KindRate, rateMap, []string{"1004", "12", "BAD", "", "7"},
			actions.Rate{User: "1004", Ticket: 12, Score: "bad", ReasonCode: 7}, nil},
		{"rate missing cells", actions.KindRate, rateMap, []string{"bea@example.com"}, nil,
			[]string{"ticket: Give the ticket number", "score: Choose a score: good or bad."}},
		{"rate errors in field order", actions.KindRate, rateMap, []string{"", "# x", "great", "", "-1"}, nil,
			[]string{"user: Say which end user to act as", `ticket: "# x" is not a ticket number; write it as 123 or #123.`,
				`score: "great" is neither good nor bad`, "reason: The reason must be one of Zendesk's reason codes."}},
		{"rate score keeps what was written", actions.KindRate, rateMap, []string{"bea@example.com", "1", "Great"}, nil,
			[]string{`score: "Great" is neither good nor bad`}},
		{"create request", actions.KindCreateRequest, textMap, []string{"bea@example.com", "Printer", "It jams.\nAgain."},
			actions.CreateRequest{User: "bea@example.com", Subject: "Printer", Body: "It jams.\nAgain."}, nil},
		{"create request without body", actions.KindCreateRequest, textMap, []string{"bea@example.com", "Printer", " "}, nil,
			[]string{"body: The description is required."}},
		{"comment", actions.KindComment, textMap, []string{"bea@example.com", "#7", "Called back"},
			actions.Comment{User: "bea@example.com", Request: 7, Body: "Called back"}, nil},
		{"comment on a bad request id", actions.KindComment, textMap, []string{"bea@example.com", "7a", "hi"}, nil,
			[]string{`ticket: "7a" is not a request number; write it as 123 or #123.`}},
		{"solve", actions.KindSolve, textMap, []string{"bea@example.com", "7", ""},
			actions.Solve{User: "bea@example.com", Request: 7}, nil},
		{"solve with a zero id", actions.KindSolve, textMap, []string{"bea@example.com", "0", ""}, nil,
			[]string{"ticket: Give the request number"}},
		{"unknown kind", "dance", rateMap, []string{"x"}, nil, []string{`Unknown action "dance".`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, errs := Parse(tt.kind, tt.m, tt.cells)
			if diff := cmp.Diff(tt.want, a); diff != "" {
				t.Errorf("action (-want +got):\n%s", diff)
			}
			if len(errs) != len(tt.errs) {
				t.Fatalf("errors = %q, want %q", errs, tt.errs)
			}
			for i, want := range tt.errs {
				exact := strings.HasSuffix(want, ".")
				if exact && errs[i] != want || !exact && !strings.HasPrefix(errs[i], want) {
					t.Errorf("errors[%d] = %q, want %q (exact=%v)", i, errs[i], want, exact)
				}
			}
		})
	}
}

func TestRowKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		a, b       actions.Action
		wantPrefix string
		same       bool
	}{
		{"rate: same ticket, any user or score", actions.Rate{User: "a@x.io", Ticket: 5, Score: "good"},
			actions.Rate{User: "b@x.io", Ticket: 5, Score: "bad"}, "rate:ticket:5", true},
		{"rate: other ticket", actions.Rate{Ticket: 5}, actions.Rate{Ticket: 6}, "rate:ticket:5", false},
		{"solve: same request", actions.Solve{Request: 9}, actions.Solve{Request: 9, Comment: "x"}, "solve:request:9", true},
		{"comment: same text", actions.Comment{Request: 9, Body: "hi"}, actions.Comment{Request: 9, Body: "hi"}, "comment:request:9:", true},
		{"comment: other text", actions.Comment{Request: 9, Body: "hi"}, actions.Comment{Request: 9, Body: "ho"}, "comment:request:9:", false},
		{"create: email case ignored", actions.CreateRequest{User: "Bea@Example.com", Subject: "s", Body: "b"},
			actions.CreateRequest{User: "bea@example.com", Subject: "s", Body: "b"}, "create_request:user:bea@example.com:", true},
		{"create: subject and body are not run together", actions.CreateRequest{User: "u@x.io", Subject: "ab", Body: "c"},
			actions.CreateRequest{User: "u@x.io", Subject: "a", Body: "bc"}, "create_request:user:u@x.io:", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ka, kb := rowKey(tt.a), rowKey(tt.b)
			if !strings.HasPrefix(ka, tt.wantPrefix) {
				t.Errorf("key %q, want prefix %q", ka, tt.wantPrefix)
			}
			if (ka == kb) != tt.same {
				t.Errorf("keys %q and %q: same = %v, want %v", ka, kb, ka == kb, tt.same)
			}
		})
	}
}
