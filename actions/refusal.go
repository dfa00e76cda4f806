package actions

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/zendesk"
)

// ErrStopped marks an action stopped before its write went out, because its
// bulk run was cancelled or paused meanwhile: the bulk engine's send check
// returns an error wrapping it, or ends the action's context with a cause
// wrapping it. Run answers it with CodeStopped and writes no audit row, so
// a caller may end the context with it only while the action's write has
// not gone out: Run takes whatever failed then for "nothing was sent".
var ErrStopped = errors.New("actions: stopped before anything was sent")

// Refusal is a reason an action was not done (or failed), in words a person
// can act on. Every error Run returns for the action itself is a *Refusal;
// its Message is safe to show, its Err is for logs only.
type Refusal struct {
	// Code is one of the Code* constants.
	Code string
	// Message is a full sentence that says what happened and what to do.
	Message string
	// Field is the form field the refusal concerns ("user", "ticket",
	// "score", ...), or "" when it concerns none.
	Field string
	// Status is Zendesk's HTTP status when Zendesk refused, else 0.
	Status int
	// RetryAfter is how long to wait before trying again, for
	// CodeRateLimited and CodeUnavailable.
	RetryAfter time.Duration
	// Err is the cause (a zendesk error, FieldErrors, ...); never shown to
	// people.
	Err error
}

// Error returns the Message.
func (r *Refusal) Error() string { return r.Message }

// Unwrap returns the cause, so errors.Is(err, zendesk.ErrRateLimited) and
// errors.As(err, &fieldErrors) work through a Refusal.
func (r *Refusal) Unwrap() error { return r.Err }

// Temporary reports whether trying again later may succeed: Zendesk's rate
// limit, Zendesk being unavailable (any 5xx), network failures, and the
// conflicts Zendesk answers concurrent updates with.
func (r *Refusal) Temporary() bool {
	switch r.Code {
	case CodeRateLimited, CodeUnavailable, CodeNetwork:
		return true
	}
	return r.Err != nil && zendesk.IsRetryable(r.Err)
}

// The codes of a Refusal. Handlers and bulk results branch on them; the
// Message carries the sentence.
const (
	CodeUnknownUser    = "unknown_user"
	CodeUnverified     = "unverified"
	CodeSuspended      = "suspended"
	CodeNotEndUser     = "not_end_user"
	CodeNotRequester   = "not_requester"
	CodeNotSolved      = "not_solved"
	CodeClosed         = "closed"
	CodeAlreadySolved  = "already_solved"
	CodeCannotBeSolved = "cannot_be_solved"
	CodeTicketNotFound = "ticket_not_found"
	CodeLegacyCSATOff  = "legacy_csat_off"
	// CodeScoreNotAllowed means Zendesk refused the score (or the reason
	// that goes with it).
	CodeScoreNotAllowed = "score_not_allowed"
	CodeMissingScope    = "missing_scope"
	CodeRateLimited     = "rate_limited"
	CodeUnavailable     = "unavailable"
	CodeNetwork         = "network"
	// CodeLoginExpired means the admin's token is invalid or could not be
	// refreshed (invalid_grant): they must log in again.
	CodeLoginExpired = "login_expired"
	// CodeInvalid means Validate failed; Err is the FieldErrors.
	CodeInvalid = "invalid"
	// CodeImpersonationIgnored means Zendesk did the write but not as the
	// end user: it opened the request under the admin's name (or someone
	// else's) as if X-On-Behalf-Of had not been sent (§2). It is not
	// temporary, and any further write may go the same way, so a bulk run
	// must stop at it rather than carry on.
	CodeImpersonationIgnored = "impersonation_ignored"
	// CodeStopped means the action was stopped before anything was sent,
	// because the bulk run it belongs to was cancelled or paused (ErrStopped).
	// Nothing happened at Zendesk, so Run writes no audit row for it.
	CodeStopped = "stopped"
	// CodeRejected is any other refusal by Zendesk (or an answer we could
	// not understand, or a re-check that could not tell whether an earlier
	// attempt succeeded).
	CodeRejected = "rejected"
)

// Messages that are the same wherever they come from.
const (
	// msgUnverified takes the person (describe) first, as every refusal
	// about a user names them.
	msgUnverified   = "%s has no verified email in Zendesk, so Zendesk won't let anyone act as them. Ask them to verify their email address (or verify it in Zendesk) and try again."
	msgLoginExpired = "Your Zendesk sign-in has expired or was revoked. Log in again to continue."
	msgLegacyCSAT   = "Zendesk refused the rating: legacy satisfaction ratings seem to be turned off for this account. " +
		"The newer CSAT surveys can't be submitted through Zendesk's API, so nobody can rate on a customer's behalf " +
		"until legacy satisfaction ratings are turned back on in Zendesk's Admin Center."
)

// invalidRefusal turns a Validate error into a Refusal naming the first
// field (in the FieldErrors' stable order).
func invalidRefusal(err error) *Refusal {
	ref := &Refusal{Code: CodeInvalid, Message: err.Error(), Err: err}
	var fe FieldErrors
	if errors.As(err, &fe) {
		keys := make([]string, 0, len(fe))
		for k := range fe {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) > 0 {
			ref.Field = keys[0]
		}
	}
	return ref
}

// call describes the Zendesk call that failed, so the refusal can say what
// was being done.
type call struct {
	kind  Kind
	write bool   // the action's one write (else a pre-flight read)
	as    bool   // made as the end user (X-On-Behalf-Of)
	what  string // "ticket #105", "request #105", ""
	id    int64  // the ticket or request id, 0 when none
	ref   string // the user reference as given
	user  zendesk.User
}

// Explain translates any error into a Refusal with a sentence a person can
// act on: a *Refusal is returned as it is, FieldErrors become CodeInvalid,
// zendesk client errors are translated as Run translates them
// (zendesk-api.md §1.7, §2, §4.1, §4.2), and anything else becomes a
// CodeRejected with a general sentence. Unlike Run it makes no calls, so a
// 403 is explained from the client's scope guess alone. nil gives nil.
func Explain(err error) *Refusal {
	if err == nil {
		return nil
	}
	var ref *Refusal
	if errors.As(err, &ref) {
		return ref
	}
	var fe FieldErrors
	if errors.As(err, &fe) {
		return invalidRefusal(err)
	}
	return explain(err, call{})
}

// refusalFor translates a failed call made while running an action. A 403
// is ambiguous in Zendesk (one body for every cause), so forbidden asks
// Zendesk a question or two to tell which.
func (r *Runner) refusalFor(ctx context.Context, err error, c call) *Refusal {
	var ze *zendesk.Error
	if errors.Is(err, zendesk.ErrForbidden) && errors.As(err, &ze) {
		return r.forbidden(ctx, &Refusal{Status: ze.Status, Err: err}, ze, c)
	}
	return explain(err, c)
}

// explain is the translation shared by Explain and Run.
func explain(err error, c call) *Refusal {
	var ze *zendesk.Error
	status := 0
	if errors.As(err, &ze) {
		status = ze.Status
	}
	ref := &Refusal{Status: status, Err: err}
	switch {
	case errors.Is(err, ErrStopped):
		ref.Code, ref.Status = CodeStopped, 0
		ref.Message = "Not sent: the run was cancelled or paused before this row went out, so nothing changed in Zendesk. " +
			"If it was paused for a new Zendesk sign-in, the row goes out once you sign in again."
	case errors.Is(err, zendesk.ErrUnknownUser):
		ref.Code, ref.Field = CodeUnknownUser, "user"
		ref.Message = fmt.Sprintf("Zendesk has no user %s to act as. Check the email address or user id.", quoteRef(c.ref, c.user))
	case errors.Is(err, zendesk.ErrTokenInvalid):
		ref.Code, ref.Message = CodeLoginExpired, msgLoginExpired
	case errors.Is(err, zendesk.ErrForbidden):
		forbiddenGuess(ref, ze)
	case errors.Is(err, zendesk.ErrNotFound):
		ref.Code, ref.Field = CodeTicketNotFound, "ticket"
		if c.what != "" {
			ref.Message = fmt.Sprintf("%s was not found in Zendesk. Check the number.", capitalize(c.what))
		} else {
			ref.Code, ref.Field = CodeRejected, ""
			ref.Message = "Zendesk answered that what was asked for does not exist."
		}
	case errors.Is(err, zendesk.ErrValidation):
		validation(ref, ze, c)
	case errors.Is(err, zendesk.ErrRateLimited):
		_, ref.RetryAfter = zendesk.Classify(err)
		ref.Code = CodeRateLimited
		ref.Message = fmt.Sprintf("Zendesk's rate limit was reached; try again in %s.", seconds(ref.RetryAfter))
	case errors.Is(err, zendesk.ErrUnavailable):
		ref.Code = CodeUnavailable
		ref.RetryAfter, _ = zendesk.RetryAfter(err)
		switch {
		case ref.RetryAfter > 0:
			ref.Message = fmt.Sprintf("Zendesk is unavailable right now (HTTP %d); try again in %s.", status, seconds(ref.RetryAfter))
		default:
			ref.Message = fmt.Sprintf("Zendesk had a server error (HTTP %d); try again in a few minutes.", status)
		}
		if c.write {
			ref.Message += " " + unknownOutcome(c.kind)
		}
	case errors.Is(err, zendesk.ErrNetwork), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		ref.Code = CodeNetwork
		switch {
		case c.write && ze != nil && ze.NotSent:
			ref.Message = "Zendesk could not be reached, and nothing was sent; try again in a moment."
		case c.write:
			ref.Message = "The connection to Zendesk failed before it answered. " + unknownOutcome(c.kind)
		default:
			ref.Message = "Zendesk could not be reached (the connection failed or timed out); try again in a moment."
		}
	case errors.Is(err, zendesk.ErrBadRequest):
		ref.Code = CodeRejected
		ref.Message = "Zendesk refused the request" + zendeskSaid(ze) + "."
	case ze != nil:
		ref.Code = CodeRejected
		ref.Message = fmt.Sprintf("Zendesk gave an answer onbehalf did not understand (HTTP %d)%s.", status, zendeskSaid(ze))
		if c.write {
			ref.Message += " " + unknownOutcome(c.kind)
		}
	default:
		ref.Code = CodeRejected
		ref.Message = "Something went wrong while talking to Zendesk; try again, and tell your administrator if it keeps happening."
	}
	return ref
}

// forbiddenGuess explains a 403 without asking Zendesk anything: the
// client's guess of the missing scope (§1.5) when it has one, else
// Zendesk's words.
func forbiddenGuess(ref *Refusal, ze *zendesk.Error) {
	ref.Code = CodeRejected
	ref.Message = "Zendesk refused it" + zendeskSaid(ze) + "."
	if ze == nil || ze.MissingScope == "" {
		return
	}
	ref.Code = CodeMissingScope
	ref.Message = fmt.Sprintf("Zendesk refused this. Your Zendesk sign-in may lack the %q scope, which %s needs: "+
		"add it to ZENDESK_SCOPES (and allow it for the OAuth client in Zendesk), then log in again.",
		ze.MissingScope, scopePurpose(ze.MissingScope))
}

// scopePurpose says what a general scope is for (§1.5).
func scopePurpose(scope string) string {
	switch scope {
	case "read":
		return "reading from Zendesk"
	case "write":
		return "changing anything in Zendesk"
	case "impersonate":
		return "acting as an end user"
	}
	return "this"
}

// unknownOutcome is said after a write whose fate we do not know. Only a
// request creation can safely be sent again, because Run re-checks it
// (§4.3: Zendesk has no idempotency key for requests); a rating sent twice
// just replaces itself, a comment sent twice is a duplicate.
func unknownOutcome(k Kind) string {
	switch k {
	case KindCreateRequest:
		return "It is not known whether the request was opened; trying again checks the user's recent requests first, so it will not be opened twice."
	case KindRate:
		return "It is not known whether the rating was saved; trying again is safe, as a new rating replaces the old one."
	case KindComment:
		return "It is not known whether the comment was added; check the request in Zendesk before trying again, or it may appear twice."
	}
	return "It is not known whether the change was made; check the request in Zendesk before trying again."
}

// validation fills ref for a 422 RecordInvalid from its details (§4.1).
func validation(ref *Refusal, ze *zendesk.Error, c call) {
	var all []string
	closed, score, reason, solved := false, false, false, false
	var fields []string
	if ze != nil {
		for f := range ze.Details {
			fields = append(fields, f)
		}
	}
	sort.Strings(fields)
	for _, f := range fields {
		for _, d := range ze.Details[f] {
			text := strings.TrimSpace(firstNonEmpty(d.Description, d.Error))
			if text == "" {
				continue
			}
			all = append(all, strings.TrimSuffix(text, "."))
			low := strings.ToLower(text)
			closed = closed || strings.Contains(low, "closed")
			solved = solved || strings.Contains(low, "solved")
			switch f {
			case "score":
				score = true
			case "reason", "reason_code", "reason_id":
				reason = true
			}
		}
	}
	if len(all) == 0 && ze != nil && ze.Description != "" {
		all = append(all, strings.TrimSuffix(ze.Description, "."))
	}
	quoted := ""
	if len(all) > 0 {
		quoted = ": " + strings.Join(all, "; ")
	}
	switch {
	case closed:
		ref.Code, ref.Field = CodeClosed, "ticket"
		ref.Message = closedMessage(c.kind, c.id)
	case c.kind == KindRate && score:
		ref.Code, ref.Field = CodeScoreNotAllowed, "score"
		ref.Message = "Zendesk did not accept the score" + quoted + ". Give good or bad."
	case c.kind == KindRate && reason:
		ref.Code, ref.Field = CodeScoreNotAllowed, "reason"
		ref.Message = "Zendesk did not accept the reason for the bad rating" + quoted +
			". Use one of the reason codes turned on in Zendesk, or leave the reason empty."
	case c.kind == KindRate && solved:
		ref.Code, ref.Field = CodeNotSolved, "ticket"
		ref.Message = fmt.Sprintf("Zendesk accepts ratings only for solved tickets, and ticket #%d is not solved%s.", c.id, quoted)
	case c.kind == KindSolve && solved:
		ref.Code, ref.Field = CodeCannotBeSolved, "ticket"
		ref.Message = cannotBeSolvedMessage(c.id) + " Zendesk said" + quoted + "."
	default:
		ref.Code = CodeRejected
		ref.Message = "Zendesk refused it" + quoted + "."
	}
}

func closedMessage(k Kind, id int64) string {
	if k == KindRate {
		return fmt.Sprintf("Ticket #%d is closed; Zendesk no longer accepts ratings for closed tickets.", id)
	}
	return fmt.Sprintf("Request #%d is closed; Zendesk doesn't allow changes to closed requests. Open a new request instead.", id)
}

func cannotBeSolvedMessage(id int64) string {
	return fmt.Sprintf("Zendesk won't let the requester mark request #%d solved: a requester can solve a request only "+
		"once it is assigned to an agent and its type is not problem. Ask an agent to assign it (or change its type) first.", id)
}

// forbidden explains a 403. Zendesk sends one body for a missing scope, a
// refused impersonation, an unverified user and legacy CSAT being off
// (§1.5, §2, §3.2, §5), so we ask, in order: does the token read at all
// (Me as ourselves)? is the user still an active, verified end user
// (ShowUser)? may we act as them (Me as them)? What is left on a write is a
// missing write scope, or, for a rating, legacy CSAT being off. Only this
// error path pays for the extra reads (at most three).
func (r *Runner) forbidden(ctx context.Context, ref *Refusal, ze *zendesk.Error, c call) *Refusal {
	ref.Code = CodeRejected
	ref.Message = "Zendesk refused it" + zendeskSaid(ze) + "."
	if ze != nil && ze.Hint != "" {
		ref.Message += " " + ze.Hint
	}
	granted := r.granted()
	missing := func(scope, why string) *Refusal {
		if granted != nil && granted[scope] {
			// The token has the scope by its own account, so the 403 is
			// about something else; keep Zendesk's words.
			return ref
		}
		ref.Code = CodeMissingScope
		ref.Message = missingScopeMessage([]string{scope}, why)
		return ref
	}
	if _, err := r.Zendesk.Me(ctx); errors.Is(err, zendesk.ErrForbidden) {
		return missing("read", scopePurpose("read"))
	}
	if !c.as || c.user.ID == 0 {
		if c.write {
			return missing("write", scopePurpose("write"))
		}
		return ref
	}
	// Zendesk also refuses to act as a user who was suspended or lost
	// their verified email since pre-flight looked (§2).
	if u, err := r.Zendesk.ShowUser(ctx, c.user.ID); err == nil {
		if p := CheckEndUser(u); p != nil {
			p.Status, p.Err = ref.Status, ref.Err
			return p
		}
	}
	if _, err := r.Zendesk.AsID(c.user.ID).Me(ctx); errors.Is(err, zendesk.ErrForbidden) {
		return missing("impersonate", scopePurpose("impersonate"))
	} else if err != nil {
		return ref
	}
	if !c.write {
		return ref
	}
	if c.kind == KindRate {
		ref.Code, ref.Message = CodeLegacyCSATOff, msgLegacyCSAT
		if granted == nil {
			ref.Message += " If they are on, your Zendesk sign-in may lack the \"write\" scope: add it to ZENDESK_SCOPES and log in again."
		}
		return ref
	}
	return missing("write", scopePurpose("write"))
}

// missingScopeMessage says which scopes to add and where.
func missingScopeMessage(scopes []string, why string) string {
	q := make([]string, len(scopes))
	for i, s := range scopes {
		q[i] = fmt.Sprintf("%q", s)
	}
	list := strings.Join(q, " and ")
	noun := "scope"
	if len(scopes) > 1 {
		noun = "scopes"
	}
	return fmt.Sprintf("Your Zendesk sign-in lacks the %s %s, which %s needs. Add %s to ZENDESK_SCOPES "+
		"(and allow it for the OAuth client in Zendesk), then log in again.", list, noun, why, list)
}

// zendeskSaid quotes what Zendesk said, for a message: ": <text>" or "".
func zendeskSaid(ze *zendesk.Error) string {
	if ze == nil {
		return ""
	}
	var details []string
	for _, list := range ze.Details {
		for _, d := range list {
			if d.Description != "" {
				details = append(details, strings.TrimSuffix(d.Description, "."))
			}
		}
	}
	sort.Strings(details)
	var parts []string
	if main := firstNonEmpty(ze.Description, ze.Title); main != "" {
		parts = append(parts, strings.TrimSuffix(main, "."))
	}
	parts = append(parts, details...)
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, "; ")
}

// seconds renders a wait as "N seconds", rounded up, at least one.
func seconds(d time.Duration) string {
	n := max(1, int64(math.Ceil(d.Seconds())))
	if n == 1 {
		return "1 second"
	}
	return fmt.Sprintf("%d seconds", n)
}

func quoteRef(ref string, u zendesk.User) string {
	if ref == "" && u.ID != 0 {
		ref = fmt.Sprint(u.ID)
	}
	if _, ok := IsUserID(ref); ok {
		return "with id " + ref
	}
	return fmt.Sprintf("%q", ref)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// statusOf is the HTTP status Zendesk answered a failed call with (0 when
// none arrived).
func statusOf(err error) int {
	var ze *zendesk.Error
	if errors.As(err, &ze) {
		return ze.Status
	}
	return 0
}

// successStatus is the status Zendesk answers each write with on success
// (§3.1, §3.2); the client does not pass it on, so it is stated here.
func successStatus(k Kind) int {
	if k == KindCreateRequest {
		return http.StatusCreated
	}
	return http.StatusOK
}
