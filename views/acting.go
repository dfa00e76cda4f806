package views

import (
	"strings"
	"time"
)

// UsersPage is the end-user search page.
type UsersPage struct {
	Page
	Query   string
	Results []UserRow
	// Searched is true when a search ran (so "no results" can be said).
	Searched bool
	// Error says why the search failed, in words a person can act on.
	Error string
	// ReturnTo is the page the admin goes on to after picking ("" for
	// the picked user's requests).
	ReturnTo string
}

// UserRow is one search result. Only verified, active end users can be
// picked; WhyNot says why the others cannot.
type UserRow struct {
	ID        int64
	Name      string
	Email     string
	Role      string
	Verified  bool
	Suspended bool
	Pickable  bool
	WhyNot    string
}

// RequestsPage is the picked end user's requests, as they see them.
type RequestsPage struct {
	Page
	Requests []RequestRow
	// Next is the cursor of the next page, "" on the last page.
	Next string
	// First is true on the first page.
	First bool
	Error string
}

// RequestRow is one request in the end user's list.
type RequestRow struct {
	ID        int64
	Subject   string
	Status    string
	Rating    string // good, bad, offered, unoffered, or ""
	UpdatedAt time.Time
}

// RequestPage is one request with what can be done to it.
type RequestPage struct {
	Page
	Request  RequestDetail
	Comments []CommentRow
	Rate     RateForm
	Comment  CommentForm
	Solve    SolveForm
	// Error is an action's refusal, shown above the forms.
	Error string
	// Warning is a caution that did not stop the action.
	Warning string
}

// RequestDetail is what the page shows of the request.
type RequestDetail struct {
	ID            int64
	Subject       string
	Description   string
	Status        string
	Type          string
	Rating        string
	RatingComment string
	// RatingReason is the reason Zendesk stored with a bad rating, in its
	// own words.
	RatingReason    string
	CanBeSolvedByMe bool
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// CommentRow is one public comment on a request.
type CommentRow struct {
	Author    string
	Body      string
	CreatedAt time.Time
}

// RateForm is the rating form: whether it is offered, what was typed, and
// errors per field.
type RateForm struct {
	Allowed    bool
	WhyNot     string
	Score      string
	Comment    string
	ReasonCode int
	Errors     map[string]string
	// Reasons are the account's reasons for a bad rating; nil when they
	// could not be read (ReasonChoices then offers Zendesk's defaults).
	Reasons []Reason
}

// ReasonChoices is what the reason list offers: "No reason given" first,
// then the account's reasons, custom ones included, or Zendesk's default
// reasons when the account's could not be read.
func (f RateForm) ReasonChoices() []Reason {
	if len(f.Reasons) == 0 {
		return BadRatingReasons()
	}
	out := []Reason{{0, "No reason given"}}
	for _, r := range f.Reasons {
		if r.Code != 0 {
			out = append(out, r)
		}
	}
	return out
}

// CommentForm is the comment form.
type CommentForm struct {
	Allowed bool
	WhyNot  string
	// Reopens warns that commenting reopens a solved or pending request.
	Reopens bool
	Body    string
	Errors  map[string]string
}

// SolveForm is the "mark solved" form.
type SolveForm struct {
	Allowed bool
	WhyNot  string
	Comment string
	Errors  map[string]string
}

// NewRequestPage is the form to open a request as the end user.
type NewRequestPage struct {
	Page
	Subject string
	Body    string
	Errors  map[string]string
	Error   string
}

// Reason is one of Zendesk's reasons for a bad rating (legacy CSAT).
type Reason struct {
	Code  int
	Label string
}

// BadRatingReasons are Zendesk's default reasons for a bad rating (legacy
// CSAT reason codes), in the order the form offers them.
func BadRatingReasons() []Reason {
	return []Reason{
		{0, "No reason given"},
		{5, "The issue took too long to resolve"},
		{6, "The issue was not resolved"},
		{7, "The agent's knowledge is unsatisfactory"},
		{8, "The agent's attitude is unsatisfactory"},
		{100, "Some other reason"},
	}
}

// ReasonCodeOf is the code of the reason among reasons whose label is text
// (Zendesk returns a rating's reason as text, never its code:
// zendesk-api.md §3.2), or 0 when none matches.
func ReasonCodeOf(reasons []Reason, text string) int {
	text = strings.TrimSuffix(strings.TrimSpace(text), ".")
	for _, r := range reasons {
		if r.Code != 0 && strings.EqualFold(r.Label, text) {
			return r.Code
		}
	}
	return 0
}

// AuditPage is the audit trail with its filters.
type AuditPage struct {
	Page
	Filter  AuditFilter
	Events  []AuditRow
	Total   int
	Page1   int // current page, 1-based
	Pages   int
	PrevURL string
	NextURL string
	CSVURL  string
	// Actions are the action codes the filter offers (shown by ActionName).
	Actions []string
	// Outcomes are the outcome words the filter offers.
	Outcomes []string
	Admins   []AuditAdmin
	Error    string
}

// AuditAdmin is an admin the filter can select.
type AuditAdmin struct {
	ID   int64
	Name string
}

// AuditFilter is the filter form's values, as typed.
type AuditFilter struct {
	Admin   string
	EndUser string
	Action  string
	Outcome string
	From    string
	To      string
	Run     string
}

// AuditRow is one audit event as the page and its CSV show it.
type AuditRow struct {
	Time  time.Time
	Admin string
	// Action is the action's plain name (ActionName).
	Action    string
	EndUser   string // email, or the reference as given
	EndUserID int64
	TicketID  int64
	RunID     int64
	// Outcome is "done", "failed" or "refused", the words runs use too.
	Outcome   string
	Detail    string
	ZendeskID int64
}

// Ticket is the ticket cell: "#105", or "" for none.
func (r AuditRow) Ticket() string { return hashID(r.TicketID) }

// Run is the run cell: "#12", or "" for none.
func (r AuditRow) Run() string { return hashID(r.RunID) }

// AuditColumns are the audit table's headings, which its CSV repeats.
func AuditColumns() []string {
	return []string{"When", "Admin", "Action", "End user", "Ticket", "Run", "Outcome", "Details"}
}
