package handlers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/oauthflow"
	"github.com/onbehalf/onbehalf/views"
	"github.com/onbehalf/onbehalf/zendesk"
)

// Session keys for the end user being acted as, and the one-shot notice.
const (
	keyActingID    = "acting_id"
	keyActingName  = "acting_name"
	keyActingEmail = "acting_email"
	keyScopes      = "scopes"
	keyNotice      = "notice"
	// keyDraftDone tells the next page that the form just sent was done
	// (views.DraftDone) when it has no notice to say so.
	keyDraftDone = "draft_done"
	// keyWarning is a one-shot caution for the request page (amber, beside
	// the green notice): what an action did besides what was asked.
	keyWarning = "warning"
)

// maxSearchResults bounds the user list shown for one search.
const maxSearchResults = 25

// RefreshFunc adapts the OAuth flow to the store's refresh hook. A refresh
// refused with invalid_grant becomes zendesk.ErrTokenInvalid, so everything
// downstream (actions, bulk) sees one kind for "log in again".
func RefreshFunc(flow *oauthflow.Flow) func(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
	return func(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
		tok, err := flow.Refresh(ctx, old.RefreshToken)
		if errors.Is(err, oauthflow.ErrInvalidGrant) {
			return nil, fmt.Errorf("%w: %w", zendesk.ErrTokenInvalid, err)
		}
		return tok, err
	}
}

// zendeskFor is the signed-in admin's Zendesk client, on their stored grant.
func (a *app) zendeskFor(c echo.Context) (*zendesk.Client, error) {
	grantID := int64Value(sessionOf(c), keyGrantID)
	opts := []zendesk.Option{zendesk.WithHTTPClient(a.hc)}
	if a.bulk != nil {
		opts = append(opts, zendesk.WithLimiter(webLimiter{a.bulk.Throttle()}))
	}
	return zendesk.New(a.zendeskURL, a.db.TokenSource(grantID, a.refresh), opts...)
}

// runnerFor is the actions runner for the signed-in admin.
func (a *app) runnerFor(c echo.Context, zc *zendesk.Client) *actions.Runner {
	admin := adminOf(c)
	return &actions.Runner{
		Zendesk: zc,
		Audit:   a.db,
		Admin:   actions.Admin{ID: admin.ID, Name: admin.Name},
		Scopes:  stringValue(sessionOf(c), keyScopes),
		Now:     a.now,
	}
}

// actingOf is the end user the admin acts as, or nil.
func actingOf(c echo.Context) *views.EndUser {
	sess := sessionOf(c)
	id := int64Value(sess, keyActingID)
	if id == 0 {
		return nil
	}
	return &views.EndUser{ID: id, Name: stringValue(sess, keyActingName), Email: stringValue(sess, keyActingEmail)}
}

// requireActing sends admins who have not picked an end user to the search.
func (a *app) requireActing(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if actingOf(c) == nil {
			if c.Request().Method == http.MethodGet {
				// After the pick, the admin goes on to the page asked for
				// (a request page after logging in again, say).
				return c.Redirect(http.StatusSeeOther, "/users?return_to="+queryEscape(safeReturnPath(c.Request().URL.RequestURI())))
			}
			return &pageError{Status: http.StatusConflict, Heading: "No end user picked",
				Message: "Pick the end user to act as first; nothing was changed.", ActionHref: "/users", ActionLabel: "Find an end user",
				NothingSent: true}
		}
		if c.Request().Method != http.MethodGet {
			if err := sameActingUser(c); err != nil {
				return err
			}
		}
		return next(c)
	}
}

// sameActingUser refuses a form drawn for another end user than the one
// the session acts as now: the admin switched in another tab or window
// after opening it, and sending it would act as the wrong person. Every
// form under /as carries the end user it was drawn for (acting_user).
func sameActingUser(c echo.Context) error {
	who := actingOf(c)
	form := strings.TrimSpace(c.FormValue("acting_user"))
	if form == strconv.FormatInt(who.ID, 10) {
		return nil
	}
	back := formPage(c.Request())
	if form == "" {
		return &pageError{Status: http.StatusConflict, Heading: "This form is out of date",
			Message:    "The page this form came from does not say which end user it was for (it is older than this version of onbehalf), so nothing was sent. Open the page again and send the form from there.",
			ActionHref: back, ActionLabel: "Open the page again", NothingSent: true}
	}
	id, err := strconv.ParseInt(form, 10, 64)
	if err != nil || id <= 0 {
		return &pageError{Status: http.StatusBadRequest, Heading: "This form is damaged",
			Message:    "The form named no end user onbehalf can read, so nothing was sent. Open the page again and send the form from there.",
			ActionHref: back, ActionLabel: "Open the page again", NothingSent: true}
	}
	again := "/users?q=" + queryEscape(form)
	if r := pickReturn(back); r != "" {
		again += "&return_to=" + queryEscape(r)
	}
	return &pageError{Status: http.StatusConflict, Heading: "You now act as someone else",
		Message: fmt.Sprintf("This form was for the end user with Zendesk id %d, but since it was opened you switched to %s (in another tab or window), so nothing was sent. "+
			"Act as the form's end user again to send it: this browser tab keeps what you typed.", id, who.Name),
		ActionHref: again, ActionLabel: "Act as them again", NothingSent: true}
}

// setNotice keeps a one-line confirmation for the next page.
func (a *app) setNotice(c echo.Context, msg string) error {
	sess := sessionOf(c)
	sess.Values[keyNotice] = msg
	return sess.Save(c.Request(), c.Response())
}

// handleUsers searches Zendesk's users. With fragment=1 it returns only the
// result list, for search-as-you-type.
func (a *app) handleUsers() echo.HandlerFunc {
	return func(c echo.Context) error {
		q := strings.TrimSpace(c.QueryParam("q"))
		p := views.UsersPage{Page: a.page(c, "Find an end user"), Query: q, ReturnTo: pickReturn(c.QueryParam("return_to"))}
		p.Nav = "users"
		if p.Error, p.Query = searchTooLong(q); p.Error != "" {
			p.Searched = true
		} else if q != "" {
			zc, err := a.zendeskFor(c)
			if err != nil {
				return err
			}
			users, err := searchUsers(c.Request().Context(), zc, q)
			if err != nil {
				if errors.Is(err, zendesk.ErrTokenInvalid) {
					return err
				}
				p.Error = actions.Explain(err).Message
			}
			p.Searched = true
			for _, u := range users {
				p.Results = append(p.Results, userRow(u))
			}
		}
		if c.QueryParam("fragment") == "1" {
			return render(c, http.StatusOK, views.UserResults(p))
		}
		return render(c, http.StatusOK, views.Users(p))
	}
}

// searchUsers finds users by id, by email, or by the start of a name
// (autocomplete, falling back to full search).
func searchUsers(ctx context.Context, zc *zendesk.Client, q string) ([]zendesk.User, error) {
	if id, ok := actions.IsUserID(q); ok {
		u, err := zc.ShowUser(ctx, id)
		if errors.Is(err, zendesk.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []zendesk.User{u}, nil
	}
	var users []zendesk.User
	if !strings.Contains(q, "@") {
		found, err := zc.AutocompleteUsers(ctx, q)
		if err != nil {
			return nil, err
		}
		users = found
	}
	if len(users) == 0 {
		page, err := zc.SearchUsers(ctx, q, 1, maxSearchResults)
		if err != nil {
			return nil, err
		}
		users = page.Users
	}
	if len(users) > maxSearchResults {
		users = users[:maxSearchResults]
	}
	return users, nil
}

func userRow(u zendesk.User) views.UserRow {
	row := views.UserRow{ID: u.ID, Name: u.Name, Email: u.Email, Role: u.Role, Verified: u.Verified, Suspended: u.Suspended}
	if r := actions.CheckEndUser(u); r != nil {
		row.WhyNot = r.Message
	} else {
		row.Pickable = true
	}
	return row
}

// handlePick starts acting as an end user, after checking with Zendesk that
// they can be acted as.
func (a *app) handlePick() echo.HandlerFunc {
	return func(c echo.Context) error {
		ref := strings.TrimSpace(c.FormValue("user"))
		zc, err := a.zendeskFor(c)
		if err != nil {
			return err
		}
		returnTo := pickReturn(c.FormValue("return_to"))
		p := views.UsersPage{Page: a.page(c, "Find an end user"), Query: ref, Searched: true, ReturnTo: returnTo}
		p.Nav = "users"
		u, err := actions.NewLookup(zc).User(c.Request().Context(), ref)
		if err != nil {
			if errors.Is(err, zendesk.ErrTokenInvalid) {
				return err
			}
			if errors.Is(err, zendesk.ErrNotFound) {
				p.Error = fmt.Sprintf("Zendesk has no user %q. Search again by name or email.", ref)
			} else {
				p.Error = actions.Explain(err).Message
			}
			return render(c, http.StatusUnprocessableEntity, views.Users(p))
		}
		if r := actions.CheckEndUser(u); r != nil {
			p.Error = r.Message
			p.Results = []views.UserRow{userRow(u)}
			return render(c, http.StatusUnprocessableEntity, views.Users(p))
		}
		sess := sessionOf(c)
		sess.Values[keyActingID] = u.ID
		sess.Values[keyActingName] = u.Name
		sess.Values[keyActingEmail] = u.Email
		if err := sess.Save(c.Request(), c.Response()); err != nil {
			return fmt.Errorf("save acting user: %w", err)
		}
		return c.Redirect(http.StatusSeeOther, cmp.Or(returnTo, "/as"))
	}
}

// pickReturn is where a pick goes on to: a local page under /as/ (the page
// the admin asked for before any end user was picked), or "" for the
// picked user's requests.
func pickReturn(p string) string {
	if p = safeReturnPath(p); strings.HasPrefix(p, "/as/") {
		return p
	}
	return ""
}

// handleStopActing forgets the picked end user.
func (a *app) handleStopActing() echo.HandlerFunc {
	return func(c echo.Context) error {
		sess := sessionOf(c)
		name := stringValue(sess, keyActingName)
		for _, k := range []string{keyActingID, keyActingName, keyActingEmail} {
			delete(sess.Values, k)
		}
		sess.Values[keyNotice] = "You are no longer acting as " + name + "."
		if err := sess.Save(c.Request(), c.Response()); err != nil {
			return fmt.Errorf("save session: %w", err)
		}
		return c.Redirect(http.StatusSeeOther, "/users")
	}
}

// handleRequests lists the end user's requests as they see them, with any
// rating (read from the tickets, as the admin, in one batched call).
func (a *app) handleRequests() echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		who := actingOf(c)
		p := views.RequestsPage{Page: a.page(c, who.Name+"'s requests"), First: c.QueryParam("after") == ""}
		p.Nav = "as"
		zc, err := a.zendeskFor(c)
		if err != nil {
			return err
		}
		page, err := zc.AsID(who.ID).ListRequests(ctx, zendesk.ListRequestsOptions{
			PageSize: 25, After: c.QueryParam("after"), SortBy: "updated_at", SortOrder: "desc",
		})
		if err != nil {
			if errors.Is(err, zendesk.ErrTokenInvalid) {
				return err
			}
			p.Error = actions.Explain(err).Message
			return render(c, http.StatusOK, views.Requests(p))
		}
		ids := make([]int64, len(page.Requests))
		for i, r := range page.Requests {
			ids[i] = r.ID
		}
		ratings := map[int64]string{}
		if tickets, err := zc.ShowManyTickets(ctx, ids); err == nil {
			for _, t := range tickets {
				if t.SatisfactionRating != nil {
					ratings[t.ID] = t.SatisfactionRating.Score
				}
			}
		} else if errors.Is(err, zendesk.ErrTokenInvalid) {
			return err
		}
		for _, r := range page.Requests {
			p.Requests = append(p.Requests, views.RequestRow{ID: r.ID, Subject: r.Subject, Status: r.Status, Rating: ratings[r.ID], UpdatedAt: r.UpdatedAt})
		}
		if page.HasMore {
			p.Next = page.AfterCursor
		}
		return render(c, http.StatusOK, views.Requests(p))
	}
}

// requestIDParam reads the :id path parameter.
func requestIDParam(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, &pageError{Status: http.StatusNotFound, Heading: "No such request", Message: "Request numbers are whole numbers, as in #123.", ActionHref: "/as", ActionLabel: "Their requests"}
	}
	return id, nil
}

// loadRequestPage reads what the request page shows: the request and its
// comments as the end user sees them, and the ticket (for its rating) as the
// admin. The forms on offer follow the same checks the actions run.
func (a *app) loadRequestPage(c echo.Context, zc *zendesk.Client, id int64) (views.RequestPage, error) {
	ctx := c.Request().Context()
	who := actingOf(c)
	p := views.RequestPage{Page: a.page(c, fmt.Sprintf("Request #%d", id))}
	p.Nav = "as"
	as := zc.AsID(who.ID)
	req, err := as.ShowRequest(ctx, id)
	if err != nil {
		if errors.Is(err, zendesk.ErrNotFound) {
			return p, &pageError{Status: http.StatusNotFound, Heading: "Not one of their requests",
				Message:    fmt.Sprintf("Request #%d does not exist or is not a request of %s, so you cannot act on it as them.", id, who.Name),
				ActionHref: "/as", ActionLabel: who.Name + "'s requests", Err: err}
		}
		return p, err
	}
	ticket, err := zc.ShowTicket(ctx, id)
	if err != nil {
		return p, err
	}
	comments, err := as.ListComments(ctx, id)
	if err != nil {
		return p, err
	}
	p.Request = views.RequestDetail{ID: req.ID, Subject: req.Subject, Description: req.Description, Status: req.Status,
		Type: req.Type, CanBeSolvedByMe: req.CanBeSolvedByMe, CreatedAt: req.CreatedAt, UpdatedAt: req.UpdatedAt}
	if sr := ticket.SatisfactionRating; sr != nil {
		p.Request.Rating = sr.Score
		p.Request.RatingComment = sr.Comment
		if sr.Score == "bad" {
			p.Request.RatingReason = sr.Reason
		}
	}
	names := map[int64]string{who.ID: who.Name}
	for _, cm := range comments {
		author := names[cm.AuthorID]
		if author == "" {
			author = "Support"
		}
		p.Comments = append(p.Comments, views.CommentRow{Author: author, Body: cm.Body, CreatedAt: cm.CreatedAt})
	}
	user := zendesk.User{ID: who.ID, Name: who.Name, Email: who.Email, Role: zendesk.RoleEndUser, Verified: true, Active: true}
	if r := actions.CheckRate(user, ticket); r != nil {
		p.Rate.WhyNot = r.Message
	} else {
		p.Rate.Allowed = true
		// The account's reasons, custom ones included (cached, as for
		// the bulk page); Zendesk's defaults when they cannot be read.
		reasons, _ := a.reasonsFor(c)
		for _, r := range reasons {
			p.Rate.Reasons = append(p.Rate.Reasons, views.Reason{Code: r.Code, Label: r.Name})
		}
		if sr := ticket.SatisfactionRating; sr != nil && (sr.Score == "good" || sr.Score == "bad") {
			p.Rate.Score, p.Rate.Comment = sr.Score, sr.Comment
			if sr.Score == "bad" {
				p.Rate.ReasonCode = views.ReasonCodeOf(p.Rate.ReasonChoices(), sr.Reason)
			}
		}
	}
	warning, r := actions.CheckComment(req)
	if r != nil {
		p.Comment.WhyNot = r.Message
	} else {
		p.Comment.Allowed = true
		p.Comment.Reopens = warning != ""
	}
	if r := actions.CheckSolve(req); r != nil {
		p.Solve.WhyNot = r.Message
	} else {
		p.Solve.Allowed = true
	}
	return p, nil
}

// handleRequest shows one request and the forms allowed on it.
func (a *app) handleRequest() echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := requestIDParam(c)
		if err != nil {
			return err
		}
		zc, err := a.zendeskFor(c)
		if err != nil {
			return err
		}
		p, err := a.loadRequestPage(c, zc, id)
		if err != nil {
			return err
		}
		sess := sessionOf(c)
		if w := stringValue(sess, keyWarning); w != "" {
			p.Warning = w
			delete(sess.Values, keyWarning)
			if err := sess.Save(c.Request(), c.Response()); err != nil {
				a.log.Warn("clear warning", "err", err)
			}
		}
		return render(c, http.StatusOK, views.Request(p))
	}
}

// handleAct runs one action from a form on the request page. On success it
// redirects back with a notice; on a refusal it shows the page again with
// the sentence and what was typed.
func (a *app) handleAct(kind actions.Kind) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := requestIDParam(c)
		if err != nil {
			return err
		}
		who := actingOf(c)
		user := strconv.FormatInt(who.ID, 10)
		var act actions.Action
		switch kind {
		case actions.KindRate:
			reason, _ := strconv.Atoi(c.FormValue("reason"))
			act = actions.Rate{User: user, Ticket: id, Score: c.FormValue("score"), Comment: c.FormValue("comment"), ReasonCode: reason}
		case actions.KindComment:
			act = actions.Comment{User: user, Request: id, Body: c.FormValue("body")}
		case actions.KindSolve:
			act = actions.Solve{User: user, Request: id, Comment: c.FormValue("comment")}
		default:
			return fmt.Errorf("handleAct: unexpected kind %q", kind)
		}
		zc, err := a.zendeskFor(c)
		if err != nil {
			return err
		}
		out, err := a.runnerFor(c, zc).Run(c.Request().Context(), act, actions.NewLookup(zc), a.runOptions(c))
		if err == nil {
			if out.Warning != "" {
				sessionOf(c).Values[keyWarning] = out.Warning
			}
			if err := a.setNotice(c, out.Message); err != nil {
				return err
			}
			return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/as/requests/%d", id))
		}
		if isLoginExpired(err) {
			return err
		}
		p, lerr := a.loadRequestPage(c, zc, id)
		if lerr != nil {
			// The request cannot be shown to this user (not theirs, or
			// Zendesk is down): the refusal itself is the answer.
			return &pageError{Status: refusalStatus(err), Heading: "Not done", Message: refusalMessage(err),
				ActionHref: "/as", ActionLabel: who.Name + "'s requests", Err: err}
		}
		fields := fieldErrors(err)
		switch a := act.(type) {
		case actions.Rate:
			p.Rate.Score, p.Rate.Comment, p.Rate.ReasonCode, p.Rate.Errors = a.Score, a.Comment, a.ReasonCode, fields
		case actions.Comment:
			p.Comment.Body, p.Comment.Errors = a.Body, fields
		case actions.Solve:
			p.Solve.Comment, p.Solve.Errors = a.Comment, fields
		}
		if fields == nil {
			p.Error = refusalMessage(err)
		}
		if nothingSent(err) {
			p.DraftSent = views.DraftKept
		}
		return render(c, refusalStatus(err), views.Request(p))
	}
}

// handleNewRequest shows the form to open a request as the end user.
func (a *app) handleNewRequest() echo.HandlerFunc {
	return func(c echo.Context) error {
		p := views.NewRequestPage{Page: a.page(c, "Open a request")}
		p.Nav = "as"
		return render(c, http.StatusOK, views.NewRequest(p))
	}
}

// handleCreateRequest opens a request as the end user.
func (a *app) handleCreateRequest() echo.HandlerFunc {
	return func(c echo.Context) error {
		who := actingOf(c)
		act := actions.CreateRequest{User: strconv.FormatInt(who.ID, 10), Subject: c.FormValue("subject"), Body: c.FormValue("body")}
		zc, err := a.zendeskFor(c)
		if err != nil {
			return err
		}
		out, err := a.runnerFor(c, zc).Run(c.Request().Context(), act, actions.NewLookup(zc), a.runOptions(c))
		if err == nil {
			if err := a.setNotice(c, out.Message); err != nil {
				return err
			}
			return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/as/requests/%d", out.ZendeskID))
		}
		if isLoginExpired(err) {
			return err
		}
		p := views.NewRequestPage{Page: a.page(c, "Open a request"), Subject: act.Subject, Body: act.Body, Errors: fieldErrors(err)}
		p.Nav = "as"
		if ref := (*actions.Refusal)(nil); errors.As(err, &ref) && ref.Code == actions.CodeImpersonationIgnored {
			// The request exists at Zendesk (not as the end user): the form
			// comes back empty, so one more click cannot open another,
			// and the browser tab forgets what was typed.
			p.Subject, p.Body = "", ""
			p.DraftSent = views.DraftDone
		} else if nothingSent(err) {
			p.DraftSent = views.DraftKept
		}
		if p.Errors == nil {
			p.Error = refusalMessage(err)
		}
		return render(c, refusalStatus(err), views.NewRequest(p))
	}
}

// runOptions are the options of an action from a form: the audit row
// names the request, the admin's address and the picked end user.
func (a *app) runOptions(c echo.Context) actions.RunOptions {
	opt := actions.RunOptions{RequestID: requestIDOf(c), RemoteAddr: c.RealIP()}
	if who := actingOf(c); who != nil {
		opt.KnownUser = actions.KnownUser{ID: who.ID, Email: who.Email}
	}
	return opt
}

// fieldErrors returns the per-field problems of a validation refusal.
func fieldErrors(err error) map[string]string {
	var fe actions.FieldErrors
	if errors.As(err, &fe) {
		return fe
	}
	return nil
}

func refusalMessage(err error) string {
	var r *actions.Refusal
	if errors.As(err, &r) {
		return r.Message
	}
	return "onbehalf could not finish this action. Try again; if it keeps happening, give the request id at the bottom of the page to whoever runs onbehalf."
}

// refusalStatus picks the status for a page that shows a refusal.
func refusalStatus(err error) int {
	var r *actions.Refusal
	if !errors.As(err, &r) {
		return http.StatusInternalServerError
	}
	switch r.Code {
	case actions.CodeRateLimited:
		return http.StatusTooManyRequests
	case actions.CodeUnavailable, actions.CodeNetwork:
		return http.StatusServiceUnavailable
	}
	return http.StatusUnprocessableEntity
}

// nothingSent reports whether a failed action surely did nothing at
// Zendesk: refused before anything was sent, or refused by Zendesk, or a
// call that never went out. A network failure or a 5xx after the write went
// out may have acted.
func nothingSent(err error) bool {
	var r *actions.Refusal
	if !errors.As(err, &r) {
		return false
	}
	switch r.Code {
	case actions.CodeNetwork, actions.CodeUnavailable:
		var ze *zendesk.Error
		return errors.As(err, &ze) && ze.NotSent
	case actions.CodeImpersonationIgnored, actions.CodeRejected, actions.CodeStopped:
		return false
	}
	return true
}

func isLoginExpired(err error) bool {
	var r *actions.Refusal
	return errors.Is(err, zendesk.ErrTokenInvalid) || (errors.As(err, &r) && r.Code == actions.CodeLoginExpired)
}
