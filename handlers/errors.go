package handlers

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/views"
)

// pageError is an error a handler wants shown as a page: what happened and
// what to do. Err, if set, is the cause, logged for 5xx and never shown.
type pageError struct {
	Status      int
	Heading     string
	Message     string
	ActionHref  string
	ActionLabel string
	Err         error
	// NothingSent says nothing of the form was acted on, so the browser
	// tab keeps what was typed in it as not sent (views.DraftKept).
	NothingSent bool
}

func (e *pageError) Error() string {
	if e.Err != nil {
		return e.Heading + ": " + e.Err.Error()
	}
	return e.Heading
}

func (e *pageError) Unwrap() error { return e.Err }

// errorTable maps the project's error kinds to what a person sees. It is the
// one place statuses are chosen for errors that handlers did not phrase
// themselves.
func classify(err error) *pageError {
	var pe *pageError
	if errors.As(err, &pe) {
		return pe
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return &pageError{Status: http.StatusNotFound, Heading: "Page not found", Message: "There is no page at this address. Check the link, or start again from the home page.", ActionHref: "/", ActionLabel: "Home"}
		case http.StatusMethodNotAllowed:
			return &pageError{Status: http.StatusMethodNotAllowed, Heading: "Not allowed here", Message: "This address does not accept that kind of request. Start again from the home page.", ActionHref: "/", ActionLabel: "Home"}
		case http.StatusRequestEntityTooLarge:
			return &pageError{Status: he.Code, Heading: "Too large", Message: "What you sent is larger than onbehalf accepts. Send a smaller file.", ActionHref: "/", ActionLabel: "Home"}
		}
		if he.Code < 500 {
			return &pageError{Status: he.Code, Heading: http.StatusText(he.Code), Message: "onbehalf could not handle this request. Start again from the home page.", ActionHref: "/", ActionLabel: "Home"}
		}
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &pageError{Status: http.StatusNotFound, Heading: "Not found", Message: "What you asked for does not exist (any more).", ActionHref: "/", ActionLabel: "Home", Err: err}
	case errors.Is(err, context.Canceled):
		return &pageError{Status: 499, Heading: "Request cancelled", Message: "The request was cancelled before it finished.", Err: err}
	}
	return &pageError{
		Status:      http.StatusInternalServerError,
		Heading:     "Something went wrong on our side",
		Message:     "onbehalf hit an unexpected problem and did not finish. Try again; if it keeps happening, give the request id below to whoever runs onbehalf.",
		ActionHref:  "/",
		ActionLabel: "Home",
		Err:         err,
	}
}

// handleError is Echo's one HTTP error handler: it maps the error to a page,
// logs only server-side failures, and never shows internal text.
func (a *app) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if isLoginExpired(err) {
		err = a.endLogin(c, err)
	}
	pe := classify(err)
	if pe.Status >= 500 {
		a.log.Error("request failed", "request_id", requestIDOf(c), "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	page := a.page(c, pe.Heading)
	if pe.NothingSent {
		page.DraftSent = views.DraftKept
	}
	status := pe.Status
	if status == 499 {
		status = http.StatusBadRequest
	}
	if err := render(c, status, views.Error(views.ErrorPage{
		Page:        page,
		Status:      status,
		Heading:     pe.Heading,
		Message:     pe.Message,
		ActionHref:  pe.ActionHref,
		ActionLabel: pe.ActionLabel,
	})); err != nil {
		a.log.Error("render error page", "err", err)
	}
}

// endLogin handles a grant Zendesk no longer honours (revoked, or
// invalid_grant on refresh): every session of that admin ends and the grant
// is deleted, so nothing keeps retrying a dead token; the page says to log in
// again and comes back here afterwards.
func (a *app) endLogin(c echo.Context, cause error) error {
	ctx := context.WithoutCancel(c.Request().Context())
	sess := sessionOf(c)
	if admin := adminOf(c); admin != nil {
		if _, err := a.db.DeleteSessionsByAdmin(ctx, admin.ID); err != nil {
			a.log.Error("end sessions after invalid grant", "admin_id", admin.ID, "err", err)
		}
		if err := a.db.DeleteGrant(ctx, int64Value(sess, keyGrantID)); err != nil && !errors.Is(err, store.ErrNotFound) {
			a.log.Error("delete dead grant", "admin_id", admin.ID, "err", err)
		}
		a.audit(ctx, c, store.AuditEvent{AdminID: admin.ID, AdminName: admin.Name, Action: "login_expired", Outcome: "failed",
			Detail: "Zendesk no longer accepts this login's token; the admin's sessions were ended"})
	}
	if sess != nil {
		sess.Values = map[any]any{}
		sess.Options.MaxAge = -1
		_ = sess.Save(c.Request(), c.Response())
	}
	returnTo := "/"
	if c.Request().Method == http.MethodGet {
		returnTo = safeReturnPath(c.Request().URL.RequestURI())
	}
	return &pageError{
		Status:      http.StatusUnauthorized,
		Heading:     "Log in again to continue",
		Message:     "Your Zendesk sign-in has expired or was revoked, so onbehalf can no longer act for you. Nothing more was changed. Log in again to continue.",
		ActionHref:  "/login?return_to=" + queryEscape(returnTo),
		ActionLabel: "Log in with Zendesk",
		Err:         cause,
	}
}

// render writes a component with a status. It renders into a buffer first so
// a failure half-way never sends half a page.
func render(c echo.Context, status int, comp templ.Component) error {
	var buf bytes.Buffer
	if err := comp.Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// page fills the layout's common fields for the current request.
func (a *app) page(c echo.Context, title string) views.Page {
	sess := sessionOf(c)
	p := views.Page{
		Title:     title,
		Admin:     adminOf(c),
		CSRF:      stringValue(sess, keyCSRF),
		RequestID: requestIDOf(c),
		ActingAs:  actingOf(c),
	}
	done := false
	if sess != nil {
		_, done = sess.Values[keyDraftDone]
	}
	if n := stringValue(sess, keyNotice); n != "" || done {
		p.Notice = n
		p.DraftSent = views.DraftDone // a form was just done
		delete(sess.Values, keyNotice)
		delete(sess.Values, keyDraftDone)
		if err := sess.Save(c.Request(), c.Response()); err != nil {
			a.log.Warn("clear notice", "err", err)
		}
	}
	return p
}

// audit records an audit event, filling in the request's id and address.
// Failing to write the audit trail is logged loudly; the user's action has
// already happened by then.
func (a *app) audit(ctx context.Context, c echo.Context, e store.AuditEvent) {
	e.RequestID = requestIDOf(c)
	e.RemoteAddr = c.RealIP()
	if e.Time.IsZero() {
		e.Time = a.now()
	}
	if err := a.db.CreateAuditEvent(context.WithoutCancel(ctx), &e); err != nil {
		a.log.Error("write audit event", "action", e.Action, "err", err)
	}
}

func queryEscape(s string) string { return url.QueryEscape(s) }
