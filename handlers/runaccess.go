package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/views"
)

// ctxRun is the context key under which loadRun leaves the run.
const ctxRun = "run"

// runOp is one thing a /bulk/runs/:id route does to a run.
type runOp int

// The ops of routes.go.
const (
	opView      runOp = iota // look at it, follow its progress, download its results
	opRemap                  // change its columns
	opPreflight              // check its rows with Zendesk
	opConfirm                // start sending it
	opCancel                 // skip the rows not yet sent
	opRetry                  // start a new run from its failed rows
)

// runRule says who may do an op and how a refusal reads. The rules are the
// one statement of security promise 11: a run belongs to the admin who
// uploaded it. Its writes go to Zendesk under that admin's sign-in and the
// audit trail names them, so only they change its columns, pre-flight it
// (its reads use their sign-in too), confirm it or retry it. Anyone signed
// in may look at a run and download its results, and may cancel a run once
// it has been confirmed: cancelling is a brake, audited under the name of
// whoever pulled it.
type runRule struct {
	// audit is the audit action recorded when the op is refused (and, for
	// confirm, cancel and retry, when it is done).
	audit string
	// verb says what the op does, for the refusal: "confirm it".
	verb string
	// why says why only the owner may, completing "because …".
	why string
	// next says what the refused admin can do instead; %s is the owner.
	next string
	// owner is true when only the run's owner may do it.
	owner bool
	// brake is true for cancel: anyone may once the run was confirmed (a
	// run that has ended gets its own answer from the handler).
	brake bool
}

func (op runOp) rule() runRule {
	const ask = "Ask %s, or upload the file yourself."
	switch op {
	case opRemap:
		return runRule{audit: "bulk_mapping", verb: "change its columns", owner: true,
			why: "they confirm it, and its changes go to Zendesk under their sign-in", next: ask}
	case opPreflight:
		return runRule{audit: "bulk_preflight", verb: "check its rows with Zendesk", owner: true,
			why: "the check reads Zendesk under their sign-in", next: ask}
	case opConfirm:
		return runRule{audit: "bulk_confirm", verb: "confirm it", owner: true,
			why: "its changes go to Zendesk under their sign-in", next: ask}
	case opCancel:
		return runRule{audit: "bulk_cancel", verb: "cancel it before it has started", brake: true,
			why: "nothing is being sent yet, and throwing away the upload is their decision", next: ask}
	case opRetry:
		return runRule{audit: "bulk_retry", verb: "retry its failed rows", owner: true,
			why:  "sending the rows again is their decision, under their own sign-in",
			next: "Ask %s, or download the results, keep the failed rows and upload them yourself."}
	}
	return runRule{}
}

// isOwner reports whether admin uploaded run.
func isOwner(run *store.Run, admin *views.Admin) bool {
	return admin != nil && admin.ID == run.AdminID
}

// underWay reports whether run is being sent (or waits to be).
func underWay(run *store.Run) bool {
	switch run.State {
	case store.RunQueued, store.RunRunning, store.RunPaused:
		return true
	}
	return false
}

// allows reports whether admin may do op to run.
func (op runOp) allows(run *store.Run, admin *views.Admin) bool {
	r := op.rule()
	switch {
	case admin == nil:
		return false
	case r.owner:
		return isOwner(run, admin)
	case r.brake:
		return isOwner(run, admin) || run.State != store.RunPreview
	}
	return true
}

// loadRun is the one prologue of the /bulk/runs/:id routes: it requires a
// signed-in admin (requireAdmin), reads :id, loads the run (a page saying so
// when there is none), lets the request through only if the admin may do op
// to the run, and leaves the run for the handler (runOf). A refusal is a 403
// page naming the owner and an audit event, and changes nothing.
func (a *app) loadRun(op runOp) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return a.requireAdmin(func(c echo.Context) error {
			notFound := &pageError{Status: http.StatusNotFound, Heading: "No such run",
				Message:    fmt.Sprintf("There is no bulk run #%s. Check the link, or pick the run from the list of bulk runs.", c.Param("id")),
				ActionHref: "/bulk", ActionLabel: "Bulk runs"}
			id, err := strconv.ParseInt(c.Param("id"), 10, 64)
			if err != nil || id <= 0 {
				notFound.Message = "Run numbers are whole numbers. Pick the run from the list of bulk runs."
				return notFound
			}
			run, err := a.db.FindRunByID(c.Request().Context(), id)
			if errors.Is(err, store.ErrNotFound) {
				return notFound
			}
			if err != nil {
				return err
			}
			admin := adminOf(c)
			if !op.allows(run, admin) {
				r := op.rule()
				a.audit(c.Request().Context(), c, store.AuditEvent{AdminID: admin.ID, AdminName: admin.Name, Action: r.audit,
					Outcome: store.OutcomeRefused, RunID: run.ID,
					Detail: fmt.Sprintf("Refused: run #%d belongs to %s; only they can %s", run.ID, run.AdminName, r.verb)})
				return &pageError{Status: http.StatusForbidden, Heading: fmt.Sprintf("This is %s's run", run.AdminName),
					Message: fmt.Sprintf("This run belongs to %s. Only the admin who uploaded a run can %s, because %s. Nothing was changed. ",
						run.AdminName, r.verb, r.why) + fmt.Sprintf(r.next, run.AdminName),
					ActionHref: fmt.Sprintf("/bulk/runs/%d", run.ID), ActionLabel: "Back to the run"}
			}
			c.Set(ctxRun, run)
			return next(c)
		})
	}
}

// runOf is the run loadRun found for this request.
func runOf(c echo.Context) *store.Run {
	r, _ := c.Get(ctxRun).(*store.Run)
	return r
}

// auditRun records that the signed-in admin did op to run, with the outcome
// and a sentence.
func (a *app) auditRun(c echo.Context, run *store.Run, op runOp, outcome, detail string) {
	admin := adminOf(c)
	a.audit(c.Request().Context(), c, store.AuditEvent{AdminID: admin.ID, AdminName: admin.Name, Action: op.rule().audit,
		Outcome: outcome, RunID: run.ID, Detail: detail})
}
