// Package actions is onbehalf's domain: each thing an admin can do as an end
// user (rate a solved ticket, open a request, comment, mark solved) as a value
// with pure validation, pre-flight checks against Zendesk, the one write that
// does it with X-On-Behalf-Of, and the audit record. Web forms and bulk runs
// both go through here, so a refusal reads the same wherever it comes from.
package actions

import (
	"fmt"
	"net/mail"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind names an action; it is stored in audit rows and bulk runs.
type Kind string

// The actions an admin can take as an end user.
const (
	KindRate          Kind = "rate"
	KindCreateRequest Kind = "create_request"
	KindComment       Kind = "comment"
	KindSolve         Kind = "solve"
)

// Kinds lists every action kind in display order (a fresh slice each call,
// so no caller can change another's list).
func Kinds() []Kind { return []Kind{KindRate, KindCreateRequest, KindComment, KindSolve} }

// Label is the kind in plain words, for pages and messages.
func (k Kind) Label() string {
	switch k {
	case KindRate:
		return "Rate a solved ticket"
	case KindCreateRequest:
		return "Open a request"
	case KindComment:
		return "Comment on a request"
	case KindSolve:
		return "Mark a request solved"
	}
	return string(k)
}

// ParseKind accepts a kind's name.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds() {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown action %q", s)
}

// Limits on free text, well inside Zendesk's own, so a mistake (a whole
// file pasted into one cell) is caught before anything is sent.
const (
	MaxSubjectLen = 255
	MaxBodyLen    = 65000
	MaxCommentLen = 65000
)

// Action is one thing done as an end user.
type Action interface {
	// Kind says which action this is.
	Kind() Kind
	// EndUser is the end user to act as: an email address or a numeric id.
	EndUser() string
	// TicketID is the ticket or request acted on; 0 when opening a request.
	TicketID() int64
	// Validate checks the value alone, without Zendesk. It returns nil or a
	// FieldErrors.
	Validate() error
}

// Rate is a satisfaction rating of a solved ticket, as its requester.
type Rate struct {
	User    string
	Ticket  int64
	Score   string // "good" or "bad"
	Comment string
	// ReasonCode is Zendesk's reason for a bad rating (0 for none); only
	// allowed with "bad" (zendesk-api.md §3.2).
	ReasonCode int
}

// CreateRequest opens a new request as the end user.
type CreateRequest struct {
	User    string
	Subject string
	Body    string
}

// Comment adds a public comment to one of the end user's requests.
type Comment struct {
	User    string
	Request int64
	Body    string
}

// Solve marks one of the end user's requests solved, optionally with a
// closing comment.
type Solve struct {
	User    string
	Request int64
	Comment string
}

// Kind implements Action.
func (Rate) Kind() Kind { return KindRate }

// Kind implements Action.
func (CreateRequest) Kind() Kind { return KindCreateRequest }

// Kind implements Action.
func (Comment) Kind() Kind { return KindComment }

// Kind implements Action.
func (Solve) Kind() Kind { return KindSolve }

// EndUser implements Action.
func (a Rate) EndUser() string { return a.User }

// EndUser implements Action.
func (a CreateRequest) EndUser() string { return a.User }

// EndUser implements Action.
func (a Comment) EndUser() string { return a.User }

// EndUser implements Action.
func (a Solve) EndUser() string { return a.User }

// TicketID implements Action.
func (a Rate) TicketID() int64 { return a.Ticket }

// TicketID implements Action.
func (CreateRequest) TicketID() int64 { return 0 }

// TicketID implements Action.
func (a Comment) TicketID() int64 { return a.Request }

// TicketID implements Action.
func (a Solve) TicketID() int64 { return a.Request }

// FieldErrors maps a field name ("user", "ticket", "score", "reason",
// "comment", "subject", "body") to a sentence saying what is wrong with it.
type FieldErrors map[string]string

// Error lists the problems in a stable order.
func (fe FieldErrors) Error() string {
	keys := make([]string, 0, len(fe))
	for k := range fe {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	msgs := make([]string, len(keys))
	for i, k := range keys {
		msgs[i] = fe[k]
	}
	return strings.Join(msgs, " ")
}

func (fe FieldErrors) orNil() error {
	if len(fe) == 0 {
		return nil
	}
	return fe
}

// Validate implements Action.
func (a Rate) Validate() error {
	fe := FieldErrors{}
	checkUser(fe, a.User)
	checkID(fe, "ticket", "ticket", a.Ticket)
	switch a.Score {
	case "good", "bad":
	case "":
		fe["score"] = "Choose a score: good or bad."
	default:
		fe["score"] = fmt.Sprintf("The score must be good or bad, not %q (Zendesk accepts only these two).", a.Score)
	}
	if a.ReasonCode < 0 {
		fe["reason"] = "The reason must be one of Zendesk's reason codes."
	} else if a.ReasonCode != 0 && a.Score == "good" {
		fe["reason"] = "A reason can only be given with a bad rating."
	}
	checkText(fe, "comment", "The comment", a.Comment, MaxCommentLen, false)
	return fe.orNil()
}

// Validate implements Action.
func (a CreateRequest) Validate() error {
	fe := FieldErrors{}
	checkUser(fe, a.User)
	checkText(fe, "subject", "The subject", a.Subject, MaxSubjectLen, true)
	checkText(fe, "body", "The description", a.Body, MaxBodyLen, true)
	return fe.orNil()
}

// Validate implements Action.
func (a Comment) Validate() error {
	fe := FieldErrors{}
	checkUser(fe, a.User)
	checkID(fe, "ticket", "request", a.Request)
	checkText(fe, "body", "The comment", a.Body, MaxCommentLen, true)
	return fe.orNil()
}

// Validate implements Action.
func (a Solve) Validate() error {
	fe := FieldErrors{}
	checkUser(fe, a.User)
	checkID(fe, "ticket", "request", a.Request)
	checkText(fe, "comment", "The comment", a.Comment, MaxCommentLen, false)
	return fe.orNil()
}

// IsUserID reports whether ref is a numeric Zendesk user id rather than an
// email address.
func IsUserID(ref string) (int64, bool) {
	id, err := strconv.ParseInt(ref, 10, 64)
	return id, err == nil && id > 0
}

func checkUser(fe FieldErrors, ref string) {
	ref = strings.TrimSpace(ref)
	switch {
	case ref == "":
		fe["user"] = "Say which end user to act as: their email address or Zendesk user id."
	case strings.ContainsAny(ref, "@"):
		if a, err := mail.ParseAddress(ref); err != nil || a.Address != ref {
			fe["user"] = fmt.Sprintf("%q is not a valid email address.", ref)
		}
	default:
		if _, ok := IsUserID(ref); !ok {
			fe["user"] = fmt.Sprintf("%q is neither an email address nor a Zendesk user id (a whole number).", ref)
		}
	}
}

func checkID(fe FieldErrors, field, noun string, id int64) {
	if id <= 0 {
		fe[field] = fmt.Sprintf("Give the %s number (a whole number, as in Zendesk's #123).", noun)
	}
}

func checkText(fe FieldErrors, field, label, s string, max int, required bool) {
	switch {
	case !utf8.ValidString(s):
		fe[field] = label + " is not valid UTF-8 text."
	case required && strings.TrimSpace(s) == "":
		fe[field] = label + " is required."
	case utf8.RuneCountInString(s) > max:
		fe[field] = fmt.Sprintf("%s is too long: %d characters, at most %d.", label, utf8.RuneCountInString(s), max)
	}
}
