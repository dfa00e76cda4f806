package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/onbehalf/onbehalf/static"
)

// routes lists every route of the app, so the whole surface is one screen.
// Every state change is a POST (security promise 5).
func (a *app) routes(e *echo.Echo) {
	e.GET("/", a.handleHome())
	e.GET("/login", a.handleLogin())
	e.GET("/oauth/callback", a.handleCallback())
	e.POST("/logout", a.handleLogout(), a.requireAdmin)

	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/static/*", echo.WrapHandler(staticFiles()), cacheStatic)
}

// staticFiles serves the embedded CSS and JS.
func staticFiles() http.Handler {
	return http.StripPrefix("/static/", http.FileServerFS(static.FS))
}

// cacheStatic lets browsers keep the small static files for an hour.
func cacheStatic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=3600")
		return next(c)
	}
}
