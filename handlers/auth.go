package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/onbehalf/onbehalf/oauthflow"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/views"
	"github.com/onbehalf/onbehalf/zendesk"
)

// stateTTL is how long a login attempt's state stays valid (promise 1).
const stateTTL = 10 * time.Minute

// preLoginLifetime is how long the pre-login session is kept: the attempt
// it holds is void after stateTTL, so it is deleted soon after (promise 12).
const preLoginLifetime = stateTTL + 5*time.Minute

// handleHome shows the login page when signed out and the home page when
// signed in.
func (a *app) handleHome() echo.HandlerFunc {
	return func(c echo.Context) error {
		page := a.page(c, "Home")
		if page.Admin == nil {
			page.Title = "Log in"
			switch c.QueryParam("signed_out") {
			case "1":
				page.Notice = "You are signed out, and onbehalf's access to Zendesk has been revoked."
			case "runs":
				page.Notice = "You are signed out. Your bulk runs still sending go on with your Zendesk sign-in, which onbehalf revokes when they end."
			}
			return render(c, http.StatusOK, views.Login(views.LoginPage{
				Page:       page,
				LoginURL:   "/login",
				Sandbox:    a.sandbox,
				ZendeskURL: a.zendeskURL,
			}))
		}
		p, err := a.homePage(c, page)
		if err != nil {
			return err
		}
		return render(c, http.StatusOK, views.Home(p))
	}
}

// handleLogin starts a login: a fresh pre-login session holding the state,
// the PKCE verifier and the return path, then off to Zendesk. A signed-in
// admin is sent on to the return path: a GET never ends a session, since
// any site can make a browser send one (logging in again is handleReauth).
func (a *app) handleLogin() echo.HandlerFunc {
	return func(c echo.Context) error {
		returnTo := safeReturnPath(c.QueryParam("return_to"))
		if adminOf(c) != nil {
			return c.Redirect(http.StatusSeeOther, returnTo)
		}
		return a.startLogin(c, returnTo)
	}
}

// handleReauth logs in again although a session exists: a bulk run paused
// on a revoked grant needs a new grant, not the old session. It is a POST
// with the form token, so another site cannot end an admin's session; the
// old session ends here, and its grant is revoked by the sweep once no
// unfinished run uses it.
func (a *app) handleReauth() echo.HandlerFunc {
	return func(c echo.Context) error {
		return a.startLogin(c, safeReturnPath(c.FormValue("return_to")))
	}
}

// startLogin stores the pre-login session (the only session stored before
// sign-in; it expires with the login attempt) and sends the browser to
// Zendesk.
func (a *app) startLogin(c echo.Context, returnTo string) error {
	attempt, err := a.oauth.Begin()
	if err != nil {
		return fmt.Errorf("begin login: %w", err)
	}
	sess := sessionOf(c)
	if err := a.renewSession(c, sess); err != nil {
		return err
	}
	sess.Values[keyOAuthState] = attempt.State
	sess.Values[keyOAuthVerify] = attempt.Verifier
	sess.Values[keyOAuthReturn] = returnTo
	sess.Values[keyOAuthStarted] = a.now().Unix()
	sess.Options.MaxAge = int(preLoginLifetime / time.Second)
	if err := sess.Save(c.Request(), c.Response()); err != nil {
		return fmt.Errorf("save pre-login session: %w", err)
	}
	return c.Redirect(http.StatusFound, attempt.URL)
}

// handleCallback finishes a login: checks the state (single use, bound to
// this browser's pre-login session, at most 10 minutes old), exchanges the
// code, lets only admins in, stores the token pair as an encrypted grant and
// issues a new session id.
func (a *app) handleCallback() echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		q := c.Request().URL.Query()
		sess := sessionOf(c)
		wantState := stringValue(sess, keyOAuthState)
		verifier := stringValue(sess, keyOAuthVerify)
		returnTo := safeReturnPath(stringValue(sess, keyOAuthReturn))
		started := time.Unix(int64Value(sess, keyOAuthStarted), 0)

		// Single use: forget the attempt before anything else can fail.
		if wantState != "" {
			for _, k := range []string{keyOAuthState, keyOAuthVerify, keyOAuthReturn, keyOAuthStarted} {
				delete(sess.Values, k)
			}
			if err := sess.Save(c.Request(), c.Response()); err != nil {
				return fmt.Errorf("clear login attempt: %w", err)
			}
		}

		if wantState == "" {
			// No login is waiting in this browser (a replay, another
			// browser, or anyone on the internet): nothing permanent is
			// written for it (promise 12), only a metric and a log line.
			a.metrics.StrayCallback()
			a.log.Warn("oauth callback with no login in progress", "request_id", requestIDOf(c), "remote", c.RealIP())
		} else if !oauthflow.StatesEqual(wantState, q.Get("state")) {
			a.audit(ctx, c, store.AuditEvent{Action: "state_mismatch", Outcome: "refused",
				Detail: "the OAuth state did not match the login started in this browser"})
		}
		if wantState == "" || !oauthflow.StatesEqual(wantState, q.Get("state")) {
			return &pageError{
				Status:      http.StatusForbidden,
				Heading:     "This sign-in link is not valid here",
				Message:     "The answer from Zendesk does not belong to a login started in this browser, or it was already used. Nothing was signed in. Start the login again from onbehalf.",
				ActionHref:  "/login",
				ActionLabel: "Log in with Zendesk",
			}
		}
		if a.now().Sub(started) > stateTTL {
			a.audit(ctx, c, store.AuditEvent{Action: "state_mismatch", Outcome: "refused", Detail: "the login attempt was older than 10 minutes"})
			return &pageError{
				Status:      http.StatusForbidden,
				Heading:     "The login took too long",
				Message:     "More than 10 minutes passed between starting the login and coming back from Zendesk, so onbehalf did not accept it. Log in again.",
				ActionHref:  "/login?return_to=" + queryEscape(returnTo),
				ActionLabel: "Log in again",
			}
		}
		if err := oauthflow.CallbackError(q); err != nil {
			if errors.Is(err, oauthflow.ErrAccessDenied) {
				a.audit(ctx, c, store.AuditEvent{Action: "login_refused", Outcome: "refused", Detail: "access denied on Zendesk's consent page"})
				return &pageError{
					Status:      http.StatusForbidden,
					Heading:     "Access was not allowed",
					Message:     "Zendesk reports that access was denied on its consent page, so onbehalf cannot act for you. If that was a mistake, log in again and choose Allow.",
					ActionHref:  "/login?return_to=" + queryEscape(returnTo),
					ActionLabel: "Log in again",
				}
			}
			a.log.Warn("oauth callback error", "err", err)
			return &pageError{
				Status:      http.StatusBadGateway,
				Heading:     "Zendesk did not complete the sign-in",
				Message:     "Zendesk sent back an error instead of a sign-in code (" + err.Error() + "). Check that onbehalf is registered as an OAuth client with this redirect URL, then log in again.",
				ActionHref:  "/login",
				ActionLabel: "Log in again",
			}
		}

		tok, err := a.oauth.Exchange(ctx, q.Get("code"), verifier)
		if err != nil {
			return exchangeError(err)
		}

		zc, err := zendesk.New(a.zendeskURL, oauth2.StaticTokenSource(tok), zendesk.WithHTTPClient(a.hc))
		if err != nil {
			return fmt.Errorf("zendesk client: %w", err)
		}
		me, err := zc.Me(ctx)
		if err != nil {
			a.revoke(ctx, tok.AccessToken)
			return fmt.Errorf("identify the signed-in user: %w", err)
		}
		if me.Role != "admin" {
			a.revoke(ctx, tok.AccessToken)
			a.audit(ctx, c, store.AuditEvent{AdminID: me.ID, AdminName: me.Name, Action: "login_refused", Outcome: "refused",
				Detail: fmt.Sprintf("%s is a Zendesk %s, not an admin; their token was revoked", me.Email, roleName(me.Role))})
			return &pageError{
				Status:  http.StatusForbidden,
				Heading: "Only Zendesk admins can use onbehalf",
				Message: fmt.Sprintf("You signed in to Zendesk as %s (%s), who is %s. Acting on behalf of end users needs a Zendesk admin, so onbehalf did not sign you in and gave the access back to Zendesk. Ask an admin, or sign out of Zendesk and log in with an admin account.",
					me.Name, me.Email, withArticle(roleName(me.Role))),
				ActionHref:  "/login",
				ActionLabel: "Log in with another account",
			}
		}

		grant := &store.Grant{AdminID: me.ID, AdminName: me.Name, AdminEmail: me.Email, Token: tok}
		if err := a.db.CreateGrant(ctx, grant); err != nil {
			a.revoke(ctx, tok.AccessToken)
			return fmt.Errorf("save grant: %w", err)
		}
		// A new session id at login (promise 4): the pre-login record is
		// destroyed so its id is worth nothing.
		if err := a.renewSession(c, sess); err != nil {
			return err
		}
		sess.Values[keyAdminID] = me.ID
		sess.Values[keyAdminName] = me.Name
		sess.Values[keyAdminEmail] = me.Email
		sess.Values[keyGrantID] = grant.ID
		sess.Values[keyCSRF] = newCSRFToken()
		sess.Values[keyScopes] = oauthflow.GrantedScope(tok)
		if err := sess.Save(c.Request(), c.Response()); err != nil {
			return fmt.Errorf("save session: %w", err)
		}
		a.audit(ctx, c, store.AuditEvent{AdminID: me.ID, AdminName: me.Name, Action: "login", Outcome: "ok",
			Detail: "scopes: " + oauthflow.GrantedScope(tok)})
		// Bulk runs paused because this admin's previous login died go on
		// with the new one.
		if resumed, err := a.db.ResumeRunsForAdmin(ctx, me.ID, grant.ID); err != nil {
			a.log.Error("resume paused runs", "admin_id", me.ID, "err", err)
		} else if len(resumed) > 0 {
			sess.Values[keyNotice] = fmt.Sprintf("Welcome back. %d paused bulk run(s) continue with your new login.", len(resumed))
			if err := sess.Save(c.Request(), c.Response()); err != nil {
				a.log.Warn("save notice", "err", err)
			}
		}
		return c.Redirect(http.StatusSeeOther, returnTo)
	}
}

// handleLogout revokes the Zendesk token, deletes the grant and the session
// record, and expires the cookie (promise 4). A grant that confirmed bulk
// runs still send with is kept until they end (a run keeps its admin's
// sign-in until it ends, even after the session has; the grant sweep
// revokes it then).
func (a *app) handleLogout() echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		admin := adminOf(c)
		sess := sessionOf(c)
		grantID := int64Value(sess, keyGrantID)
		detail := "token revoked"
		signedOut := "/?signed_out=1"
		sending := 0
		if grantID != 0 {
			n, err := a.db.RunsSendingWithGrant(ctx, grantID)
			if err != nil {
				return err
			}
			sending = n
		}
		if sending > 0 {
			detail = fmt.Sprintf("the Zendesk sign-in is kept for %d bulk runs still sending, and revoked when they end", sending)
			signedOut = "/?signed_out=runs"
		} else if grantID != 0 {
			ts := a.db.TokenSource(grantID, a.refresh)
			if tok, err := ts.Token(); err == nil {
				if err := a.oauth.Revoke(ctx, tok.AccessToken); err != nil {
					a.log.Warn("revoke at logout", "err", err, "admin_id", admin.ID)
					detail = "Zendesk did not confirm the token was revoked"
				}
			} else {
				detail = "the token could not be loaded or refreshed, so it was not revoked"
			}
			if err := a.db.DeleteGrant(ctx, grantID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("delete grant: %w", err)
			}
		}
		if err := a.sessions.Destroy(ctx, sess); err != nil {
			return fmt.Errorf("destroy session: %w", err)
		}
		sess.Values = map[any]any{}
		sess.Options.MaxAge = -1
		if err := sess.Save(c.Request(), c.Response()); err != nil {
			return fmt.Errorf("expire session cookie: %w", err)
		}
		a.audit(ctx, c, store.AuditEvent{AdminID: admin.ID, AdminName: admin.Name, Action: "logout", Outcome: "ok", Detail: detail})
		return c.Redirect(http.StatusSeeOther, signedOut)
	}
}

// refresh renews a grant's token pair at Zendesk; the store calls it at
// most once per grant at a time.
func (a *app) refresh(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
	return RefreshFunc(a.oauth)(ctx, old)
}

// renewSession destroys the session's record and clears it, so the next
// Save issues a brand-new id.
func (a *app) renewSession(c echo.Context, sess *sessions.Session) error {
	if !sess.IsNew {
		if err := a.sessions.Destroy(c.Request().Context(), sess); err != nil {
			return fmt.Errorf("destroy old session: %w", err)
		}
	}
	sess.ID = ""
	sess.IsNew = true
	sess.Values = map[any]any{}
	return nil
}

// revoke gives a token back to Zendesk, logging (never returning) failures:
// it runs on paths that already have a more useful error to show.
func (a *app) revoke(ctx context.Context, accessToken string) {
	if err := a.oauth.Revoke(context.WithoutCancel(ctx), accessToken); err != nil {
		a.log.Warn("revoke token", "err", err)
	}
}

// exchangeError turns a failed code exchange into a page that says what to do.
func exchangeError(err error) error {
	switch {
	case errors.Is(err, oauthflow.ErrInvalidGrant):
		return &pageError{
			Status:      http.StatusBadRequest,
			Heading:     "The sign-in code expired",
			Message:     "Zendesk's sign-in code had expired or was already used (codes last two minutes). Nothing was signed in. Log in again.",
			ActionHref:  "/login",
			ActionLabel: "Log in again",
			Err:         err,
		}
	case errors.Is(err, oauthflow.ErrInvalidClient):
		return &pageError{
			Status:      http.StatusBadGateway,
			Heading:     "Zendesk did not recognise onbehalf",
			Message:     "Zendesk refused onbehalf's client credentials. Check ZENDESK_CLIENT_ID (the OAuth client's Identifier) and ZENDESK_CLIENT_SECRET, then log in again.",
			ActionHref:  "/login",
			ActionLabel: "Log in again",
			Err:         err,
		}
	}
	return &pageError{
		Status:      http.StatusBadGateway,
		Heading:     "Zendesk did not complete the sign-in",
		Message:     "onbehalf could not exchange the sign-in code with Zendesk. Zendesk may be unavailable; try again in a minute.",
		ActionHref:  "/login",
		ActionLabel: "Try again",
		Err:         err,
	}
}

// adminOf is the signed-in admin, or nil.
func adminOf(c echo.Context) *views.Admin {
	sess := sessionOf(c)
	id := int64Value(sess, keyAdminID)
	if id == 0 || int64Value(sess, keyGrantID) == 0 {
		return nil
	}
	return &views.Admin{ID: id, Name: stringValue(sess, keyAdminName), Email: stringValue(sess, keyAdminEmail)}
}

func roleName(role string) string {
	switch role {
	case "end-user", "":
		return "end user"
	}
	return role
}

func withArticle(s string) string {
	switch s {
	case "admin", "agent", "end user":
		if s[0] == 'a' || s[0] == 'e' {
			return "an " + s
		}
	}
	return "a " + s
}
