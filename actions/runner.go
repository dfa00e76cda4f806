package actions

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk"
)

// Admin is the Zendesk admin on whose authority actions are taken; it is
// recorded in every audit row.
type Admin struct {
	ID   int64
	Name string
}

// Auditor keeps the audit trail; *store.DB satisfies it.
type Auditor interface {
	CreateAuditEvent(ctx context.Context, e *store.AuditEvent) error
}

// Runner does actions as end users for one admin: it checks them, sends the
// one write with X-On-Behalf-Of, and records exactly one audit row each.
// Its fields are set once; a Runner is safe for concurrent use when its
// Auditor is.
type Runner struct {
	// Zendesk is the admin's client, not acting as anyone; Run uses
	// Zendesk.AsID(endUser.ID) for everything done as the end user.
	Zendesk *zendesk.Client
	// Audit receives one event per Run.
	Audit Auditor
	// Admin is recorded in audit rows.
	Admin Admin
	// Scopes is the space-separated list of scopes the admin's token was
	// granted; "" means unknown, and then scopes are not checked up front.
	Scopes string
	// Now is the clock for audit rows and the re-check window; nil means
	// time.Now.
	Now func() time.Time
}

// RunOptions carries what Run records besides the action, and how a bulk
// row is run.
type RunOptions struct {
	RunID      int64  // the bulk run, 0 for the web
	RowID      int64  // the bulk row, 0 for the web
	RequestID  string // the HTTP request id, for the audit row
	RemoteAddr string // the admin's address, for the audit row
	// KnownUser is the end user as the caller already knows them (the web
	// forms act as the picked user, by id): an action refused before
	// Zendesk is asked (an empty comment) still records their id and
	// email. It is used only when it is the user the action names.
	KnownUser KnownUser
	// SkipPreflight says bulk already pre-flighted the row in batch: Run
	// re-checks only from the Lookup (no extra calls with a prefetched
	// Batch). For comments and solves it then judges the request from the
	// admin's view of the ticket instead of reading it as the end user.
	SkipPreflight bool
	// Recheck says an earlier attempt of this row ended without a known
	// outcome (a crash or a timeout). For CreateRequest, Run then first
	// looks for the request among the user's recent ones (§4.3: Zendesk has
	// no idempotency key for requests).
	Recheck bool
	// Unaudited, if set, is asked about a refusal before it is audited: it
	// reports true when the caller takes the refusal for no outcome of the
	// action at all — nothing was done, and the caller will try it again
	// (a bulk row that waits for Zendesk's rate limit, for a login, or for
	// a job of its own that ran out of time before its write went out). Run
	// then writes no audit event: the trail has one event per outcome, not
	// one per wait.
	Unaudited func(*Refusal) bool
}

// KnownUser is an end user's Zendesk id and email as a caller knows them.
type KnownUser struct {
	ID    int64
	Email string
}

// names reports whether ref (an id or an email) is this user.
func (k KnownUser) names(ref string) bool {
	if k.ID == 0 {
		return false
	}
	return ref == strconv.FormatInt(k.ID, 10) || (k.Email != "" && strings.EqualFold(ref, k.Email))
}

// Outcome is what Run did, in a form pages, results CSVs and audit rows
// share. Run fills it as far as it got, also when it returns a Refusal.
type Outcome struct {
	Kind        Kind
	EndUserID   int64  // 0 when the user was not found
	EndUser     string // the end user's email, or the reference as given (email or id) if they were not found
	EndUserName string
	TicketID    int64 // the ticket or request acted on; for CreateRequest the new request
	// ZendeskID is the rating id, the new request id, or the id of the
	// request updated.
	ZendeskID int64
	// Status is Zendesk's HTTP status for the write; 0 if none was sent
	// (or no answer came back).
	Status int
	// Message says what happened in plain words ("Rated ticket #123 good
	// as Bea Lindqvist."), or is the Refusal's message.
	Message string
	// Warning is a side effect worth knowing, e.g. "Commenting reopened
	// this solved request."
	Warning string
	// Existing is true when CreateRequest with Recheck found that the
	// earlier attempt had opened the request; nothing was sent.
	Existing bool
}

// auditTimeout bounds the audit write. It runs on a context detached from
// the caller's, so a request that timed out during the Zendesk call still
// leaves its audit row.
const auditTimeout = 10 * time.Second

// recheckWindow is how far back CreateRequest with Recheck looks for an
// earlier attempt.
const recheckWindow = 24 * time.Hour

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// checked is what pre-flight learned.
type checked struct {
	user    zendesk.User
	status  string // the ticket's or request's status before the write
	warning string
	done    bool // a re-checked solve found the request solved already
}

// Preflight checks the action against Zendesk without changing anything:
// the value is valid, the token has the scopes (when Runner.Scopes is set),
// the end user exists, is an end user, verified, active and not suspended,
// and the ticket or request is one they may act on (zendesk-api.md §2,
// §3.1, §3.2). It returns the resolved end user, and a *Refusal when the
// action would be refused; the user is returned with a refusal too when it
// was found, so a page can say whom the refusal concerns.
func (r *Runner) Preflight(ctx context.Context, a Action, look Lookup) (zendesk.User, error) {
	if err := a.Validate(); err != nil {
		return zendesk.User{}, invalidRefusal(err)
	}
	c, ref := r.preflight(ctx, a, look, false, false)
	if ref != nil {
		return c.user, ref
	}
	return c.user, nil
}

// preflight runs the checks; cheap limits them to what look can answer;
// recheck is RunOptions.Recheck.
func (r *Runner) preflight(ctx context.Context, a Action, look Lookup, cheap, recheck bool) (checked, *Refusal) {
	var c checked
	if missing := r.missingScopes(a.Kind(), cheap); len(missing) > 0 {
		return c, &Refusal{Code: CodeMissingScope, Message: missingScopeMessage(missing, doing(a.Kind()))}
	}
	ref := strings.TrimSpace(a.EndUser())
	u, err := look.User(ctx, ref)
	if err != nil {
		if errors.Is(err, zendesk.ErrNotFound) {
			return c, &Refusal{Code: CodeUnknownUser, Field: "user", Err: err,
				Message: fmt.Sprintf("No Zendesk user has %s. Check the email address or user id.", refNoun(ref))}
		}
		return c, r.refusalFor(ctx, err, call{kind: a.Kind(), ref: ref})
	}
	c.user = u
	if p := CheckEndUser(u); p != nil {
		return c, p
	}

	switch a := a.(type) {
	case Rate:
		return r.checkRate(ctx, a, look, c)
	case Comment:
		return r.checkRequest(ctx, a.Kind(), a.Request, look, cheap, recheck, c)
	case Solve:
		return r.checkRequest(ctx, a.Kind(), a.Request, look, cheap, recheck, c)
	}
	return c, nil
}

// checkRate applies CheckRate to the ticket from look, naming the real
// requester when the user is not them.
func (r *Runner) checkRate(ctx context.Context, a Rate, look Lookup, c checked) (checked, *Refusal) {
	t, err := look.Ticket(ctx, a.Ticket)
	if err != nil {
		return c, r.refusalFor(ctx, err, call{kind: KindRate, what: fmt.Sprintf("ticket #%d", a.Ticket), id: a.Ticket, user: c.user})
	}
	c.status = t.Status
	c.warning = rateWarning(t)
	who := ""
	if t.RequesterID != c.user.ID {
		if req, err := look.User(ctx, strconv.FormatInt(t.RequesterID, 10)); err == nil {
			who = describe(req)
		}
	}
	return c, checkRate(c.user, t, who)
}

// checkRequest applies CheckComment or CheckSolve. Normally it reads the
// request as the user, exactly as Zendesk will judge the write; cheap
// judges from the admin's view of the ticket in look instead. With recheck,
// a solve whose request is already solved is done, not refused.
func (r *Runner) checkRequest(ctx context.Context, k Kind, id int64, look Lookup, cheap, recheck bool, c checked) (checked, *Refusal) {
	what := fmt.Sprintf("request #%d", id)
	notTheirs := &Refusal{Code: CodeNotRequester, Field: "ticket", Message: fmt.Sprintf(
		"Request #%d is not a request of %s, so it can't be changed as them. Check the request number and the user.",
		id, describe(c.user))}
	var req zendesk.Request
	if cheap {
		t, err := look.Ticket(ctx, id)
		if err != nil {
			return c, r.refusalFor(ctx, err, call{kind: k, what: what, id: id, user: c.user})
		}
		if t.RequesterID != c.user.ID && !slices.Contains(t.CollaboratorIDs, c.user.ID) {
			return c, notTheirs
		}
		req = requestFromTicket(t)
	} else {
		var err error
		req, err = r.Zendesk.AsID(c.user.ID).ShowRequest(ctx, id)
		if errors.Is(err, zendesk.ErrNotFound) {
			// As the user, a request of someone else and a request that
			// does not exist look the same (§3.1).
			notTheirs.Err, notTheirs.Status = err, statusOf(err)
			return c, notTheirs
		}
		if err != nil {
			return c, r.refusalFor(ctx, err, call{kind: k, what: what, id: id, as: true, user: c.user})
		}
	}
	c.status = req.Status
	if k == KindSolve {
		if recheck && req.Status == zendesk.StatusSolved {
			c.done = true
			return c, nil
		}
		return c, CheckSolve(req)
	}
	var ref *Refusal
	c.warning, ref = CheckComment(req)
	return c, ref
}

// Run does the action as its end user: Validate, then Preflight (or only
// the cheap re-check with SkipPreflight), then ONE write with
// X-On-Behalf-Of, then exactly one audit row whatever happened — outcome
// "ok", "refused" (Validate, pre-flight and Zendesk's permanent refusals) or
// "failed" (temporary or unknown failures).
//
// The error is nil or a *Refusal wrapping the cause, with one exception: if
// the audit row cannot be written, Run returns the Outcome and an error that
// says so and wraps the store's error (and the Refusal too, if there was
// one, so errors.As still finds it). The action itself is not undone: by
// then Zendesk has done it.
func (r *Runner) Run(ctx context.Context, a Action, look Lookup, opt RunOptions) (Outcome, error) {
	if r.Audit == nil || r.Zendesk == nil {
		// Acting without an audit trail is not allowed at all.
		return Outcome{Kind: a.Kind()}, fmt.Errorf("actions: run %s: runner without Zendesk client or auditor", a.Kind())
	}
	ref := strings.TrimSpace(a.EndUser())
	// Until the user is found, the audit row names them as given.
	out := Outcome{Kind: a.Kind(), EndUser: ref, TicketID: a.TicketID()}
	if opt.KnownUser.names(ref) {
		out.EndUserID, out.EndUser = opt.KnownUser.ID, firstNonEmpty(opt.KnownUser.Email, ref)
	}
	var refusal *Refusal
	if err := a.Validate(); err != nil {
		refusal = invalidRefusal(err)
	} else {
		var c checked
		c, refusal = r.preflight(ctx, a, look, opt.SkipPreflight, opt.Recheck)
		if c.user.ID != 0 {
			out.EndUserID, out.EndUser, out.EndUserName = c.user.ID, firstNonEmpty(c.user.Email, ref), c.user.Name
		}
		if refusal == nil {
			refusal = r.do(ctx, a, c, opt, &out)
		}
	}
	if refusal != nil && ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrStopped) {
		// The caller stopped the action (its bulk run was cancelled) while
		// it waited or read: whatever failed, nothing was sent.
		refusal = explain(context.Cause(ctx), call{})
	}
	if refusal != nil && (refusal.Code == CodeStopped || opt.Unaudited != nil && opt.Unaudited(refusal)) {
		out.Message = refusal.Message
		return out, refusal
	}
	outcome := store.OutcomeOK
	if refusal != nil {
		out.Message = refusal.Message
		outcome = refusal.outcome()
	}
	detail := out.Message
	if out.Warning != "" {
		detail += " " + out.Warning
	}
	ev := &store.AuditEvent{
		Time: r.now(), AdminID: r.Admin.ID, AdminName: r.Admin.Name, Action: string(a.Kind()),
		EndUserID: out.EndUserID, EndUser: out.EndUser, TicketID: out.TicketID, Outcome: outcome,
		Detail: detail, ZendeskID: out.ZendeskID, RunID: opt.RunID, RequestID: opt.RequestID, RemoteAddr: opt.RemoteAddr,
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if err := r.Audit.CreateAuditEvent(actx, ev); err != nil {
		aerr := fmt.Errorf("actions: %s: the audit row was not written: %w", a.Kind(), err)
		if refusal != nil {
			return out, fmt.Errorf("%w (%w)", refusal, aerr)
		}
		return out, aerr
	}
	if refusal != nil {
		return out, refusal
	}
	return out, nil
}

// do sends the action's one write as the end user and fills out.
func (r *Runner) do(ctx context.Context, a Action, c checked, opt RunOptions, out *Outcome) *Refusal {
	zc := r.Zendesk.AsID(c.user.ID)
	name := displayName(c.user)
	fail := func(err error, what string, id int64) *Refusal {
		out.Status = statusOf(err)
		return r.refusalFor(ctx, err, call{kind: a.Kind(), write: true, as: true, what: what, id: id, user: c.user})
	}
	switch a := a.(type) {
	case Rate:
		sr, err := zc.RateTicket(ctx, a.Ticket, zendesk.RatingInput{Score: a.Score, Comment: a.Comment, ReasonCode: a.ReasonCode})
		if err != nil {
			return fail(err, fmt.Sprintf("ticket #%d", a.Ticket), a.Ticket)
		}
		out.Status, out.ZendeskID = successStatus(KindRate), sr.ID
		out.Message = fmt.Sprintf("Rated ticket #%d %s as %s.", a.Ticket, a.Score, name)
		if sr.Reason != "" && a.Score == zendesk.ScoreBad {
			// The reason as Zendesk stored it (its text, §3.2), not our label.
			out.Message = fmt.Sprintf("Rated ticket #%d bad as %s, reason: %s.", a.Ticket, name, strings.TrimSuffix(sr.Reason, "."))
		}
		out.Warning = c.warning
	case CreateRequest:
		if opt.Recheck {
			found, ok, err := findEarlier(ctx, zc, a, r.now())
			if errors.Is(err, errRecheckIncomplete) {
				return &Refusal{Code: CodeRejected, Message: fmt.Sprintf(
					"onbehalf can't tell whether an earlier attempt already opened this request: %s has more than %d requests "+
						"and Zendesk did not list the newest first. Look for it among their requests in Zendesk, and open it "+
						"again only if it is not there.", describe(c.user), recheckMaxRequests)}
			}
			if err != nil {
				return r.refusalFor(ctx, err, call{kind: KindCreateRequest, as: true, user: c.user})
			}
			if ok {
				out.Existing, out.ZendeskID, out.TicketID = true, found.ID, found.ID
				out.Message = fmt.Sprintf("Request #%d was already opened as %s by an earlier attempt; nothing was sent again.", found.ID, name)
				return nil
			}
		}
		req, err := zc.CreateRequest(ctx, zendesk.NewRequest{Subject: a.Subject, Body: a.Body})
		if err != nil {
			return fail(err, "", 0)
		}
		out.Status, out.ZendeskID, out.TicketID = successStatus(KindCreateRequest), req.ID, req.ID
		if ref := r.impersonationIgnored(ctx, zc, req, c.user); ref != nil {
			return ref
		}
		out.Message = fmt.Sprintf("Opened request #%d as %s.", req.ID, name)
	case Comment:
		if opt.Recheck {
			found, ok, err := findEarlierComment(ctx, zc, a, c.user.ID, r.now())
			if err != nil {
				return r.refusalFor(ctx, err, call{kind: KindComment, as: true, what: fmt.Sprintf("request #%d", a.Request), id: a.Request, user: c.user})
			}
			if ok {
				out.Existing, out.ZendeskID = true, a.Request
				out.Message = fmt.Sprintf("The comment was already added to request #%d as %s by an earlier attempt (comment %d); nothing was sent again.",
					a.Request, name, found.ID)
				return nil
			}
		}
		req, err := zc.UpdateRequest(ctx, a.Request, zendesk.RequestUpdate{Comment: a.Body})
		if err != nil {
			return fail(err, fmt.Sprintf("request #%d", a.Request), a.Request)
		}
		out.Status, out.ZendeskID = successStatus(KindComment), req.ID
		out.Message = fmt.Sprintf("Added a comment to request #%d as %s.", a.Request, name)
		out.Warning = c.warning
	case Solve:
		if c.done {
			out.Existing, out.ZendeskID = true, a.Request
			out.Message = fmt.Sprintf("Request #%d is already solved (by an earlier attempt or by someone else); nothing was sent again.", a.Request)
			return nil
		}
		req, err := zc.UpdateRequest(ctx, a.Request, zendesk.RequestUpdate{Comment: a.Comment, Solved: true})
		if err != nil {
			return fail(err, fmt.Sprintf("request #%d", a.Request), a.Request)
		}
		out.Status, out.ZendeskID = successStatus(KindSolve), req.ID
		// Zendesk may accept the update and still not solve the request
		// (§3.1: only when can_be_solved_by_me), so read it back. If the
		// read fails, the update's own answer has to do.
		status := req.Status
		if back, err := zc.ShowRequest(ctx, a.Request); err == nil {
			status = back.Status
		}
		if status != zendesk.StatusSolved {
			return &Refusal{Code: CodeRejected, Field: "ticket", Message: fmt.Sprintf(
				"Zendesk accepted the update but did not mark request #%d solved (it is %s). Check the request in Zendesk.",
				a.Request, status)}
		}
		out.Message = fmt.Sprintf("Marked request #%d solved as %s.", a.Request, name)
		if a.Comment != "" {
			out.Message = fmt.Sprintf("Marked request #%d solved, with a comment, as %s.", a.Request, name)
		}
	default:
		return &Refusal{Code: CodeInvalid, Message: fmt.Sprintf("onbehalf does not know how to do %q.", a.Kind())}
	}
	return nil
}

// outcome is the audit outcome of a refusal: "failed" when trying again
// may help or when we could not tell what Zendesk did (an answer we did not
// understand, an error not from Zendesk), "refused" otherwise.
func (r *Refusal) outcome() string {
	if r.Temporary() || r.Code == CodeImpersonationIgnored {
		return store.OutcomeFailed
	}
	if r.Code == CodeRejected && r.Err != nil {
		var ze *zendesk.Error
		if !errors.As(r.Err, &ze) || ze.Kind == zendesk.ErrUnexpected {
			return store.OutcomeFailed
		}
	}
	return store.OutcomeRefused
}

// recheckMaxRequests bounds how many of the user's requests findEarlier
// reads when Zendesk does not list them newest first.
const recheckMaxRequests = 2000

// errRecheckIncomplete says findEarlier gave up before it could tell.
var errRecheckIncomplete = errors.New("actions: re-check requests: too many requests to look through")

// findEarlier looks among the user's requests for one with the same subject
// and description opened within recheckWindow. It asks for the newest
// first, but whether Zendesk honours that on cursor pages is unconfirmed
// (§3.2), so the order is trusted only as far as the dates show it: the
// search stops at a request older than the window only once created_at has
// been seen to fall and never to rise. Otherwise it reads on, to the end or
// to recheckMaxRequests (errRecheckIncomplete).
func findEarlier(ctx context.Context, zc *zendesk.Client, a CreateRequest, now time.Time) (zendesk.Request, bool, error) {
	since := now.Add(-recheckWindow)
	var prev time.Time
	falling, rising := false, false
	n := 0
	for q, err := range zc.AllRequests(ctx, zendesk.ListRequestsOptions{PageSize: 100, SortBy: "created_at", SortOrder: "desc"}) {
		if err != nil {
			return zendesk.Request{}, false, fmt.Errorf("actions: re-check requests: %w", err)
		}
		if sameText(q.Subject, a.Subject) && sameText(q.Description, a.Body) && !q.CreatedAt.Before(since) {
			return q, true, nil
		}
		if n > 0 {
			falling = falling || q.CreatedAt.Before(prev)
			rising = rising || q.CreatedAt.After(prev)
		}
		prev = q.CreatedAt
		n++
		if falling && !rising && q.CreatedAt.Before(since) {
			return zendesk.Request{}, false, nil
		}
		if n >= recheckMaxRequests {
			return zendesk.Request{}, false, errRecheckIncomplete
		}
	}
	return zendesk.Request{}, false, nil
}

// impersonationIgnored checks that the request Zendesk opened is the end
// user's: Zendesk may take a write from the admin as if X-On-Behalf-Of had
// not been sent (§2), and then the request is the admin's. An answer
// without requester_id is settled by reading the request back as the user,
// who cannot see a request that is not theirs (§3.1). If that read fails
// otherwise, the answer has to do.
func (r *Runner) impersonationIgnored(ctx context.Context, zc *zendesk.Client, req zendesk.Request, u zendesk.User) *Refusal {
	requester, theirs := req.RequesterID, true
	if requester == 0 {
		back, err := zc.ShowRequest(ctx, req.ID)
		switch {
		case err == nil:
			requester = back.RequesterID
		case errors.Is(err, zendesk.ErrNotFound):
			theirs = false
		}
	}
	if theirs && (requester == 0 || requester == u.ID) {
		return nil
	}
	in := "in someone else's name"
	switch {
	case requester == r.Admin.ID:
		in = "in your name"
	case requester != 0:
		in = fmt.Sprintf("in the name of user #%d", requester)
	}
	return &Refusal{Code: CodeImpersonationIgnored, Message: fmt.Sprintf(
		"Zendesk opened request #%d %s instead of as %s: it ignored the instruction to act as them. "+
			"In Zendesk, make them the requester of request #%d (or delete it), and don't act as end users again "+
			"until Zendesk support has explained why this happened.", req.ID, in, describe(u), req.ID)}
}

// findEarlierComment looks among the request's comments for one by the
// user with the same body, made within recheckWindow.
func findEarlierComment(ctx context.Context, zc *zendesk.Client, a Comment, userID int64, now time.Time) (zendesk.Comment, bool, error) {
	comments, err := zc.ListComments(ctx, a.Request)
	if err != nil {
		return zendesk.Comment{}, false, fmt.Errorf("actions: re-check comments of request %d: %w", a.Request, err)
	}
	since := now.Add(-recheckWindow)
	for _, cm := range comments {
		body := firstNonEmpty(cm.PlainBody, cm.Body)
		if cm.AuthorID == userID && (sameText(body, a.Body) || sameText(cm.Body, a.Body)) && !cm.CreatedAt.Before(since) {
			return cm, true, nil
		}
	}
	return zendesk.Comment{}, false, nil
}

// sameText compares texts the way Zendesk may have stored them: with
// whitespace runs collapsed and trimmed.
func sameText(a, b string) bool {
	return strings.Join(strings.Fields(a), " ") == strings.Join(strings.Fields(b), " ")
}

// missingScopes lists the scopes (by their general name) the action needs
// that Runner.Scopes lacks; none when Scopes is unknown. Each need is met
// by the general scope or the resource's own (§1.5; write does not imply
// read).
func (r *Runner) missingScopes(k Kind, cheap bool) []string {
	granted := r.granted()
	if granted == nil {
		return nil
	}
	type need struct{ general, resource string }
	needs := []need{{"read", "users:read"}}
	switch k {
	case KindRate:
		needs = append(needs, need{"read", "tickets:read"}, need{"write", "satisfaction_ratings:write"})
	case KindCreateRequest:
		// Read for the re-check after an unknown outcome.
		needs = append(needs, need{"read", "requests:read"}, need{"write", "requests:write"})
	default:
		if cheap {
			needs = append(needs, need{"read", "tickets:read"})
		}
		needs = append(needs, need{"read", "requests:read"}, need{"write", "requests:write"})
	}
	needs = append(needs, need{"impersonate", ""})
	var missing []string
	for _, n := range needs {
		if granted[n.general] || (n.resource != "" && granted[n.resource]) || slices.Contains(missing, n.general) {
			continue
		}
		missing = append(missing, n.general)
	}
	return missing
}

// granted is the set of Runner.Scopes, or nil when unknown.
func (r *Runner) granted() map[string]bool {
	fields := strings.Fields(r.Scopes)
	if len(fields) == 0 {
		return nil
	}
	set := make(map[string]bool, len(fields))
	for _, s := range fields {
		set[s] = true
	}
	return set
}

// doing names what a kind does, for "which ... needs".
func doing(k Kind) string {
	switch k {
	case KindRate:
		return "rating a ticket as an end user"
	case KindCreateRequest:
		return "opening a request as an end user"
	case KindComment:
		return "commenting as an end user"
	case KindSolve:
		return "marking a request solved as an end user"
	}
	return "acting as an end user"
}

// describe names a user for a sentence: "Bea Lindqvist (bea@example.com)".
func describe(u zendesk.User) string {
	switch {
	case u.Name != "" && u.Email != "":
		return fmt.Sprintf("%s (%s)", u.Name, u.Email)
	case u.Name != "":
		return u.Name
	case u.Email != "":
		return u.Email
	}
	return fmt.Sprintf("user #%d", u.ID)
}

// displayName is the short name of a user for outcome messages.
func displayName(u zendesk.User) string {
	return firstNonEmpty(u.Name, u.Email, fmt.Sprintf("user #%d", u.ID))
}

// refNoun says what was looked up: "the email address x" or "the id 42".
func refNoun(ref string) string {
	if _, ok := IsUserID(ref); ok {
		return "the id " + ref
	}
	return fmt.Sprintf("the email address %q", ref)
}
