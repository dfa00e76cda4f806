// Package handlers is onbehalf's HTTP layer: Echo routes, middleware, and one
// error handler. Handlers decode requests, call the domain packages and render
// views; echo.Context never leaves this package.
package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/onbehalf/onbehalf/bulk"
	"github.com/onbehalf/onbehalf/metrics"
	"github.com/onbehalf/onbehalf/oauthflow"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/views"
)

// Config is what the HTTP layer needs. Every field but Sandbox and
// HTTPClient is required.
type Config struct {
	Logger   *slog.Logger
	DB       *store.DB
	Sessions *store.SessionStore
	OAuth    *oauthflow.Flow
	// ZendeskURL is the account's base URL, fixed by configuration.
	ZendeskURL string
	// PublicURL is how browsers reach the app.
	PublicURL *url.URL
	// HTTPClient is used for Zendesk API calls; nil means a default with timeouts.
	HTTPClient *http.Client
	// Sandbox is set when the app runs against the built-in sandbox Zendesk.
	Sandbox *views.SandboxHint
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Ready reports readiness for /readyz; nil means the database's own check.
	Ready func(ctx context.Context) error
	// Bulk runs CSV uploads; required.
	Bulk *bulk.Engine
	// MaxUploadBytes bounds a CSV upload; 0 means bulk.DefaultMaxBytes.
	MaxUploadBytes int64
	// ProgressEvery is how often a run's progress is pushed; 0 means 1s.
	ProgressEvery time.Duration
	// Metrics counts requests by route and status; nil records nothing.
	Metrics *metrics.Metrics
	// RateLimit is ZENDESK_RATE_LIMIT (calls a minute), drawn on a run's
	// chart; 0 draws no limit.
	RateLimit int
	// LoginRatePerMinute is how many /login and /oauth/callback requests
	// one client address may make in a burst and per minute; 0 means 20.
	LoginRatePerMinute int
}

// app carries the dependencies the handler makers draw from.
type app struct {
	log        *slog.Logger
	db         *store.DB
	sessions   *store.SessionStore
	oauth      *oauthflow.Flow
	zendeskURL string
	publicURL  *url.URL
	hc         *http.Client
	sandbox    *views.SandboxHint
	now        func() time.Time
	ready      func(ctx context.Context) error

	bulk          *bulk.Engine
	maxUpload     int64
	progressEvery time.Duration
	// progress fans each run's live progress out to its viewers.
	progress *progressHub
	metrics  *metrics.Metrics
	// charts keeps finished runs' charts; rateLimit is drawn on them.
	charts *chartCache
	// reasons keeps the account's reasons for a bad rating (reasonsFor).
	reasons   *reasonsCache
	rateLimit int
	// loginLimit rate-limits sign-ins per client address.
	loginLimit *addrLimiter
}

// origin is the scheme and host of a URL, as CSP names a source.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// Server is onbehalf's HTTP surface, built by New.
type Server struct {
	h   http.Handler
	app *app
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }

// Close stops the readers behind live progress pages and ends their event
// streams, which would otherwise keep http.Server.Shutdown waiting for
// their viewers to leave; register it with http.Server.RegisterOnShutdown.
// A stream opened afterwards ends at once, and the browser reconnects (to
// the next process). Close is safe to call more than once.
func (s *Server) Close() { s.app.progress.close() }

// New builds the whole HTTP surface: the Echo router wrapped in
// net/http's cross-origin protection, which refuses cross-site POSTs before
// any handler runs (security promise 5, first layer). Close the Server when
// shutting down.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil || cfg.DB == nil || cfg.Sessions == nil || cfg.OAuth == nil || cfg.ZendeskURL == "" || cfg.PublicURL == nil || cfg.Bulk == nil {
		return nil, errors.New("handlers: Logger, DB, Sessions, OAuth, ZendeskURL, PublicURL and Bulk are required")
	}
	a := &app{
		log:        cfg.Logger,
		db:         cfg.DB,
		sessions:   cfg.Sessions,
		oauth:      cfg.OAuth,
		zendeskURL: cfg.ZendeskURL,
		publicURL:  cfg.PublicURL,
		hc:         cfg.HTTPClient,
		sandbox:    cfg.Sandbox,
		now:        cfg.Now,
		ready:      cfg.Ready,

		bulk:          cfg.Bulk,
		maxUpload:     cfg.MaxUploadBytes,
		progressEvery: cfg.ProgressEvery,
		metrics:       cfg.Metrics,
		charts:        newChartCache(),
		reasons:       newReasonsCache(),
		rateLimit:     cfg.RateLimit,
	}
	if a.maxUpload <= 0 {
		a.maxUpload = bulk.DefaultMaxBytes
	}
	if a.progressEvery <= 0 {
		a.progressEvery = time.Second
	}
	if a.ready == nil {
		a.ready = a.db.Ready
	}
	if a.hc == nil {
		a.hc = &http.Client{Timeout: 30 * time.Second}
	}
	if a.now == nil {
		a.now = time.Now
	}
	rate := cfg.LoginRatePerMinute
	if rate <= 0 {
		rate = defaultLoginRatePerMinute
	}
	a.loginLimit = newAddrLimiter(rate, a.now)
	a.progress = newProgressHub(a.readProgress, a.progressEvery, a.log)

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	// Use the TCP peer address; X-Forwarded-For is not trusted unless a
	// proxy is configured in front (not yet supported).
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = a.handleError
	e.Use(
		requestID(),
		a.accessLog(),
		middleware.Recover(),
		securityHeaders(a.publicURL.Scheme == "https", origin(a.zendeskURL)),
		a.checkHost(),
		a.withSession(),
		a.checkCSRF(),
	)
	a.routes(e)

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.log.Warn("cross-origin request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("This request came from another site, so onbehalf refused it. Open onbehalf directly and try again.\n"))
	}))
	return &Server{h: cop.Handler(e), app: a}, nil
}
