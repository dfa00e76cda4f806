package handlers

import (
	"context"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/static"
)

// routes lists every route of the app, so the whole surface is one screen.
// Every state change is a POST (security promise 5).
func (a *app) routes(e *echo.Echo) {
	e.GET("/", a.handleHome())
	// Signing in is rate-limited per client address (promise 12).
	e.GET("/login", a.handleLogin(), a.limitLogins)
	e.POST("/login", a.handleReauth(), a.requireAdmin, a.limitLogins)
	e.GET("/oauth/callback", a.handleCallback(), a.limitLogins)
	e.POST("/logout", a.handleLogout(), a.requireAdmin)

	// Middleware is attached per route, not with Group(""): an Echo group
	// registers catch-all routes, which would send every unknown path (even
	// a browser's favicon probe) through the login redirect.
	signedIn := a.requireAdmin
	acting := chain(a.requireAdmin, a.requireActing)
	e.GET("/users", a.handleUsers(), signedIn)
	e.POST("/acting", a.handlePick(), signedIn)
	e.POST("/acting/stop", a.handleStopActing(), signedIn)
	e.GET("/audit", a.handleAudit(), signedIn)
	e.GET("/audit.csv", a.handleAuditCSV(), signedIn)

	e.GET("/as", a.handleRequests(), acting)
	e.GET("/as/requests/new", a.handleNewRequest(), acting)
	e.POST("/as/requests", a.handleCreateRequest(), acting)
	e.GET("/as/requests/:id", a.handleRequest(), acting)
	e.POST("/as/requests/:id/rate", a.handleAct(actions.KindRate), acting)
	e.POST("/as/requests/:id/comment", a.handleAct(actions.KindComment), acting)
	e.POST("/as/requests/:id/solve", a.handleAct(actions.KindSolve), acting)

	e.GET("/bulk", a.handleBulk(), signedIn)
	e.POST("/bulk", a.handleUpload(), signedIn)
	e.GET(sampleCSVPath, a.handleSampleCSV(), signedIn) // sandbox only (sample.go)
	e.GET("/bulk/templates/:kind", a.handleTemplate(), signedIn)
	// loadRun signs in, loads the run and applies runOp (runaccess.go), the
	// one statement of who may do what to a run (security promise 11):
	// anyone signed in looks, and may cancel a run once it is confirmed;
	// only the admin who uploaded it changes, pre-flights, confirms or
	// retries it.
	e.GET("/bulk/runs/:id", a.handleRun(), a.loadRun(opView))
	e.GET("/bulk/runs/:id/events", a.handleEvents(), a.loadRun(opView))
	e.GET("/bulk/runs/:id/results.csv", a.handleResults(), a.loadRun(opView))
	e.GET("/bulk/runs/:id/rows-to-fix.csv", a.handleRowsToFix(), a.loadRun(opView))
	e.POST("/bulk/runs/:id/mapping", a.handleMapping(), a.loadRun(opRemap))
	e.POST("/bulk/runs/:id/kind", a.handleKind(), a.loadRun(opRemap))
	e.POST("/bulk/runs/:id/scores", a.handleScores(), a.loadRun(opRemap))
	// Discarding a preview is the owner's, as cancelling one is.
	e.POST("/bulk/runs/:id/discard", a.handleDiscard(), a.loadRun(opCancel))
	e.POST("/bulk/runs/:id/preflight", a.handleRunPreflight(), a.loadRun(opPreflight))
	e.POST("/bulk/runs/:id/confirm", a.handleConfirm(), a.loadRun(opConfirm))
	e.POST("/bulk/runs/:id/cancel", a.handleCancel(), a.loadRun(opCancel))
	e.POST("/bulk/runs/:id/retry", a.handleRetry(), a.loadRun(opRetry))

	// Liveness says the process serves HTTP; readiness that the database
	// answers and its schema matches this binary (and whatever else run adds).
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", a.handleReady())
	e.GET("/static/*", echo.WrapHandler(staticFiles()), cacheStatic)
	e.GET("/favicon.ico", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/static/favicon.svg") })
}

// staticFiles serves the embedded CSS and JS, files only: a directory
// (the root included) is "not found" rather than a listing.
func staticFiles() http.Handler {
	files := http.StripPrefix("/static/", http.FileServerFS(static.FS))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		if info, err := fs.Stat(static.FS, strings.TrimSuffix(name, "/")); name == "" || err != nil || info.IsDir() {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// cacheStatic lets browsers keep the small static files for an hour.
func cacheStatic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=3600")
		return next(c)
	}
}

// handleReady answers 200 when the app can serve, 503 (with the reason, for
// the operator) when it cannot. It holds no user data, so the reason is safe
// to show.
func (a *app) handleReady() echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
		defer cancel()
		if err := a.ready(ctx); err != nil {
			a.log.Warn("not ready", "err", err)
			// The cause is logged; anyone may ask /readyz, and a database
			// error can name hosts and users.
			return c.String(http.StatusServiceUnavailable, "not ready (the cause is in the log)\n")
		}
		return c.String(http.StatusOK, "ready\n")
	}
}

// chain composes middleware, first outermost; none is the identity.
func chain(m ...echo.MiddlewareFunc) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		for i := len(m) - 1; i >= 0; i-- {
			next = m[i](next)
		}
		return next
	}
}
