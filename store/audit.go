package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Audit outcomes, the only values AuditEvent.Outcome may take.
const (
	// OutcomeOK means the action was done.
	OutcomeOK = "ok"
	// OutcomeRefused means we or Zendesk declined it (validation,
	// pre-flight, a 4xx refusal).
	OutcomeRefused = "refused"
	// OutcomeFailed means it broke (network, 5xx, internal error).
	OutcomeFailed = "failed"
)

// Results are the audit trail's outcome words, the vocabulary the audit
// page, its CSV and the bulk run pages share: a bulk row that failed is
// "failed" on its run and in the audit trail. They are read from the stored
// outcome (which keeps the finer refused/failed split) by AuditEvent.Result.
const (
	// ResultDone: it was done (stored outcome ok).
	ResultDone = "done"
	// ResultFailed: an action as an end user was tried and did not happen,
	// whether we or Zendesk refused it or it broke, as a bulk row's
	// "failed"; or anything else broke (stored outcome failed).
	ResultFailed = "failed"
	// ResultRefused: onbehalf did not let an admin do something (a login
	// refused, a login state that did not match, another admin's bulk run).
	ResultRefused = "refused"
)

// endUserActions are the actions done as an end user (actions.Kind's
// values). Their refusals are failures in the shared vocabulary.
var endUserActions = []string{"rate", "create_request", "comment", "solve"}

// Result is the event's outcome in the shared vocabulary (ResultDone,
// ResultFailed or ResultRefused).
func (e AuditEvent) Result() string {
	return resultOf(e.Action, e.Outcome)
}

func resultOf(action, outcome string) string {
	switch outcome {
	case OutcomeOK:
		return ResultDone
	case OutcomeRefused:
		if slices.Contains(endUserActions, action) {
			return ResultFailed
		}
		return ResultRefused
	}
	return ResultFailed
}

// Audit paging limits for FindAuditEvents.
const (
	// DefaultAuditLimit is the page size when AuditFilter.Limit is zero.
	DefaultAuditLimit = 50
	// MaxAuditLimit caps AuditFilter.Limit.
	MaxAuditLimit = 1000
)

// AuditEvent is one entry of the audit trail: which admin acted as which end
// user, what they did, on which ticket, with what result, and when.
type AuditEvent struct {
	ID        int64
	Time      time.Time // zero: set by CreateAuditEvent to now
	AdminID   int64
	AdminName string
	// Action names what was done, e.g. "rate", "create_request",
	// "login_refused".
	Action    string
	EndUserID int64
	EndUser   string // email or name
	TicketID  int64
	// Outcome is OutcomeOK, OutcomeRefused (we or Zendesk said no) or
	// OutcomeFailed (an error).
	Outcome    string
	Detail     string
	ZendeskID  int64 // id of what Zendesk created, if anything
	RunID      int64 // bulk run, if any
	RequestID  string
	RemoteAddr string
}

// CreateAuditEvent appends e to the audit trail and sets its ID (and Time
// when zero). Action is required and Outcome must be one of the Outcome
// constants.
func (db *DB) CreateAuditEvent(ctx context.Context, e *AuditEvent) error {
	return db.insertAuditEvent(ctx, db.db, e)
}

// insertAuditEvent is CreateAuditEvent on q: the handle, or a transaction
// the event must commit with.
func (db *DB) insertAuditEvent(ctx context.Context, q queryer, e *AuditEvent) error {
	if e.Action == "" {
		return fmt.Errorf("store: create audit event: empty action: %w", ErrInvalid)
	}
	switch e.Outcome {
	case OutcomeOK, OutcomeRefused, OutcomeFailed:
	default:
		return fmt.Errorf("store: create audit event: outcome %q: %w", e.Outcome, ErrInvalid)
	}
	t := e.Time
	if t.IsZero() {
		t = db.now()
	}
	var id int64
	err := q.QueryRowContext(ctx, db.dialect.rebind(`INSERT INTO audit_events
		(occurred_at, admin_id, admin_name, action, end_user_id, end_user, ticket_id,
		 outcome, detail, zendesk_id, run_id, request_id, remote_addr)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		toDBTime(t), e.AdminID, e.AdminName, e.Action, e.EndUserID, e.EndUser, e.TicketID,
		e.Outcome, e.Detail, e.ZendeskID, e.RunID, e.RequestID, e.RemoteAddr).Scan(&id)
	if err != nil {
		return fmt.Errorf("store: create audit event: %w", err)
	}
	e.ID = id
	e.Time = fromDBTime(toDBTime(t))
	return nil
}

// AuditFilter selects audit events. Zero fields match everything.
type AuditFilter struct {
	AdminID int64
	// EndUser matches the event's end user exactly, ignoring case; a
	// number also matches the end user's Zendesk id.
	EndUser string
	Action  string
	// Outcome matches the stored outcome (OutcomeOK, …).
	Outcome string
	// Result matches the outcome in the shared vocabulary (ResultDone, …).
	Result string
	// RunID matches the events of one bulk run.
	RunID int64
	// From is inclusive, To exclusive.
	From, To time.Time
	// Limit defaults to DefaultAuditLimit and is capped at MaxAuditLimit.
	Limit, Offset int
}

// FindAuditEvents returns one page of the events matching f, newest first,
// and the total number of matching events.
func (db *DB) FindAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, int, error) {
	var where []string
	var args []any
	if f.AdminID != 0 {
		where = append(where, "admin_id = ?")
		args = append(args, f.AdminID)
	}
	if f.EndUser != "" {
		// lower() on both sides matches the expression index.
		if id, err := strconv.ParseInt(f.EndUser, 10, 64); err == nil && id > 0 {
			where = append(where, "(lower(end_user) = lower(?) OR end_user_id = ?)")
			args = append(args, f.EndUser, id)
		} else {
			where = append(where, "lower(end_user) = lower(?)")
			args = append(args, f.EndUser)
		}
	}
	if f.RunID != 0 {
		where = append(where, "run_id = ?")
		args = append(args, f.RunID)
	}
	if f.Result != "" {
		// The inverse of resultOf; the action names are constants, not input.
		in := "('" + strings.Join(endUserActions, "', '") + "')"
		switch f.Result {
		case ResultDone:
			where = append(where, "outcome = ?")
			args = append(args, OutcomeOK)
		case ResultFailed:
			where = append(where, "(outcome = ? OR (outcome = ? AND action IN "+in+"))")
			args = append(args, OutcomeFailed, OutcomeRefused)
		case ResultRefused:
			where = append(where, "(outcome = ? AND action NOT IN "+in+")")
			args = append(args, OutcomeRefused)
		default:
			return nil, 0, fmt.Errorf("store: find audit events: result %q: %w", f.Result, ErrInvalid)
		}
	}
	if f.Action != "" {
		where = append(where, "action = ?")
		args = append(args, f.Action)
	}
	if f.Outcome != "" {
		where = append(where, "outcome = ?")
		args = append(args, f.Outcome)
	}
	if !f.From.IsZero() {
		where = append(where, "occurred_at >= ?")
		args = append(args, toDBTime(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "occurred_at < ?")
		args = append(args, toDBTime(f.To))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}

	var total int
	if err := db.queryRow(ctx, "SELECT COUNT(*) FROM audit_events"+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("store: find audit events: count: %w", err)
	}

	limit := f.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	limit = min(limit, MaxAuditLimit)
	offset := max(f.Offset, 0)
	rows, err := db.query(ctx, `SELECT id, occurred_at, admin_id, admin_name, action, end_user_id,
		end_user, ticket_id, outcome, detail, zendesk_id, run_id, request_id, remote_addr
		FROM audit_events`+cond+` ORDER BY occurred_at DESC, id DESC LIMIT ? OFFSET ?`,
		append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("store: find audit events: %w", err)
	}
	defer rows.Close()
	events := []AuditEvent{}
	for rows.Next() {
		var e AuditEvent
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.AdminID, &e.AdminName, &e.Action, &e.EndUserID,
			&e.EndUser, &e.TicketID, &e.Outcome, &e.Detail, &e.ZendeskID, &e.RunID,
			&e.RequestID, &e.RemoteAddr); err != nil {
			return nil, 0, fmt.Errorf("store: find audit events: %w", err)
		}
		e.Time = fromDBTime(at)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("store: find audit events: %w", err)
	}
	return events, total, nil
}

// AuditAdmin is an admin who appears in the audit trail, for the audit
// page's admin filter.
type AuditAdmin struct {
	ID   int64
	Name string // the name on the admin's most recent event
}

// ListAuditAdmins returns the distinct admins (non-zero admin id) in the
// audit trail, each with the name of their most recent event (admins get
// renamed in Zendesk), ordered by name ignoring case.
func (db *DB) ListAuditAdmins(ctx context.Context) ([]AuditAdmin, error) {
	// Window functions: SQLite 3.25+ and PostgreSQL both have them.
	rows, err := db.query(ctx, `SELECT admin_id, admin_name FROM (
			SELECT admin_id, admin_name, ROW_NUMBER() OVER (
				PARTITION BY admin_id ORDER BY occurred_at DESC, id DESC) AS rn
			FROM audit_events WHERE admin_id <> 0
		) latest WHERE rn = 1
		ORDER BY lower(admin_name), admin_id`)
	if err != nil {
		return nil, fmt.Errorf("store: list audit admins: %w", err)
	}
	defer rows.Close()
	admins := []AuditAdmin{}
	for rows.Next() {
		var a AuditAdmin
		if err := rows.Scan(&a.ID, &a.Name); err != nil {
			return nil, fmt.Errorf("store: list audit admins: %w", err)
		}
		admins = append(admins, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list audit admins: %w", err)
	}
	return admins, nil
}
