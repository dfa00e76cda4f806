package zendesk

import (
	"bytes"
	"encoding/json"
	"time"
)

// User is a Zendesk user (§3.3). End users calling the API see a reduced
// set of fields; missing or null fields are left at their zero value.
type User struct {
	ID             int64     `json:"id"`
	URL            string    `json:"url"`
	Name           string    `json:"name"`
	Email          string    `json:"email"`
	Role           string    `json:"role"` // "end-user", "agent" or "admin"
	RoleType       int       `json:"role_type"`
	Verified       bool      `json:"verified"` // any identity verified
	Active         bool      `json:"active"`   // false once deleted
	Suspended      bool      `json:"suspended"`
	ExternalID     string    `json:"external_id"`
	OrganizationID int64     `json:"organization_id"`
	Locale         string    `json:"locale"`
	TimeZone       string    `json:"time_zone"`
	Phone          string    `json:"phone"`
	Tags           []string  `json:"tags"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	LastLoginAt    time.Time `json:"last_login_at"`
}

// Role values of User.Role.
const (
	RoleEndUser = "end-user"
	RoleAgent   = "agent"
	RoleAdmin   = "admin"
)

// IsEndUser reports whether u is an end user, the only kind of user Zendesk
// lets an admin act as (§2).
func (u User) IsEndUser() bool { return u.Role == RoleEndUser }

// IsAdmin reports whether u is an admin, the only role that may act on behalf
// of end users (§2).
func (u User) IsAdmin() bool { return u.Role == RoleAdmin }

// UserPage is one page of a user search (offset pagination, §3.4).
type UserPage struct {
	Users []User
	// NextPage is the number of the next page; 0 when this is the last.
	NextPage int
	// Count is the total number of matches Zendesk reported.
	Count int
}

// SatisfactionRating is a legacy CSAT rating (§3.2). On a ticket it may
// also be only a state: Score "offered" or "unoffered" with no ID.
type SatisfactionRating struct {
	ID          int64     `json:"id"`
	URL         string    `json:"url"`
	AssigneeID  int64     `json:"assignee_id"`
	GroupID     int64     `json:"group_id"`
	RequesterID int64     `json:"requester_id"`
	TicketID    int64     `json:"ticket_id"`
	Score       string    `json:"score"` // "offered", "unoffered", "good" or "bad"
	Comment     string    `json:"comment"`
	Reason      string    `json:"reason"`
	ReasonID    int64     `json:"reason_id"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Score values of SatisfactionRating.Score.
const (
	ScoreOffered   = "offered"
	ScoreUnoffered = "unoffered"
	ScoreGood      = "good"
	ScoreBad       = "bad"
)

// Ticket is a ticket as an agent or admin sees it.
type Ticket struct {
	ID              int64     `json:"id"`
	URL             string    `json:"url"`
	Subject         string    `json:"subject"`
	Description     string    `json:"description"`
	Status          string    `json:"status"` // new, open, pending, hold, solved, closed
	Type            string    `json:"type"`   // question, incident, problem, task (or empty)
	Priority        string    `json:"priority"`
	RequesterID     int64     `json:"requester_id"`
	SubmitterID     int64     `json:"submitter_id"`
	AssigneeID      int64     `json:"assignee_id"`
	GroupID         int64     `json:"group_id"`
	OrganizationID  int64     `json:"organization_id"`
	CollaboratorIDs []int64   `json:"collaborator_ids"`
	Tags            []string  `json:"tags"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	// SatisfactionRating is the ticket's rating or rating state (object
	// form, §3.2); nil on plans without CSAT.
	SatisfactionRating *SatisfactionRating `json:"satisfaction_rating"`
}

// Rated reports whether the ticket already carries a good or bad rating.
func (t Ticket) Rated() bool {
	if t.SatisfactionRating == nil {
		return false
	}
	s := t.SatisfactionRating.Score
	return s == ScoreGood || s == ScoreBad
}

// Status values of tickets and requests.
const (
	StatusNew     = "new"
	StatusOpen    = "open"
	StatusPending = "pending"
	StatusHold    = "hold"
	StatusSolved  = "solved"
	StatusClosed  = "closed"
)

// Request is a ticket as its requester sees it through the Requests API (§3.1).
type Request struct {
	ID              int64   `json:"id"`
	URL             string  `json:"url"`
	Subject         string  `json:"subject"`
	Description     string  `json:"description"`
	Status          string  `json:"status"`
	Priority        string  `json:"priority"`
	Type            string  `json:"type"`
	RequesterID     int64   `json:"requester_id"`
	AssigneeID      int64   `json:"assignee_id"`
	GroupID         int64   `json:"group_id"`
	OrganizationID  int64   `json:"organization_id"`
	CollaboratorIDs []int64 `json:"collaborator_ids"`
	// CanBeSolvedByMe is true when the requester may mark it solved: it is
	// assigned and not of type problem (§3.1).
	CanBeSolvedByMe bool      `json:"can_be_solved_by_me"`
	Solved          bool      `json:"solved"`
	IsPublic        bool      `json:"is_public"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// UnmarshalJSON decodes a request, accepting "solved" as a boolean or as the
// string "true"/"false" (Zendesk's own examples quote it, §3.1).
func (r *Request) UnmarshalJSON(data []byte) error {
	type plain Request
	var v struct {
		*plain
		Solved looseBool `json:"solved"`
	}
	v.plain = (*plain)(r)
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	r.Solved = bool(v.Solved)
	return nil
}

// looseBool decodes true, false, "true", "false" and null.
type looseBool bool

func (b *looseBool) UnmarshalJSON(data []byte) error {
	data = bytes.Trim(bytes.TrimSpace(data), `"`)
	*b = looseBool(string(data) == "true")
	return nil
}

// RequestPage is one page of requests (cursor pagination, §3.4).
type RequestPage struct {
	Requests []Request
	// AfterCursor continues the listing (ListRequestsOptions.After).
	AfterCursor string
	// HasMore is true when another page follows.
	HasMore bool
}

// Comment is a comment on a request (§3.1).
type Comment struct {
	ID        int64     `json:"id"`
	Type      string    `json:"type"` // "Comment" or "VoiceComment"
	RequestID int64     `json:"request_id"`
	Body      string    `json:"body"`
	HTMLBody  string    `json:"html_body"`
	PlainBody string    `json:"plain_body"`
	Public    bool      `json:"public"`
	AuthorID  int64     `json:"author_id"`
	CreatedAt time.Time `json:"created_at"`
}

// ListRequestsOptions selects and orders a listing of the acting user's
// requests.
type ListRequestsOptions struct {
	// PageSize is the number of requests per page; 0 means 100, values above
	// 100 are lowered to 100 (Zendesk's maximum, §3.4).
	PageSize int
	// After is the AfterCursor of the previous page; empty for the first.
	After string
	// SortBy is "updated_at" or "created_at"; empty for Zendesk's default.
	// It is sent both as sort_by/sort_order and as the cursor-style sort
	// ("-updated_at"), since which one Zendesk honours on cursor pages is
	// unconfirmed (§3.2); the order is a request, not a promise.
	SortBy string
	// SortOrder is "asc" or "desc"; empty for Zendesk's default (asc).
	SortOrder string
	// Status keeps only requests in these states (e.g. "solved").
	Status []string
}

// NewRequest is a request to open as the acting user.
type NewRequest struct {
	Subject string
	// Body is the first (public) comment; Zendesk requires it (§3.1).
	Body string
}

// RequestUpdate is what an end user may change on a request (§3.1).
type RequestUpdate struct {
	// Comment adds a public comment by the acting user when not empty.
	Comment string
	// Solved marks the request solved; Zendesk allows it only when
	// Request.CanBeSolvedByMe is true.
	Solved bool
}

// RatingInput is a legacy CSAT rating to give as the ticket's requester (§3.2).
type RatingInput struct {
	// Score is "good" or "bad".
	Score string
	// Comment is optional.
	Comment string
	// ReasonCode is optional and only allowed with Score "bad"; 0 means none.
	ReasonCode int
}

// SatisfactionReason is one of the account's reasons for a bad rating
// (§3.2): ReasonCode is what a rating gives as reason_code, Value the name
// shown.
type SatisfactionReason struct {
	ID         int64      `json:"id"`
	ReasonCode int        `json:"reason_code"`
	Value      string     `json:"value"`
	RawValue   string     `json:"raw_value"`
	DeletedAt  *time.Time `json:"deleted_at"`
}
