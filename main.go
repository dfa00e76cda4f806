// Command onbehalf is a web app that lets a Zendesk admin act on behalf of end
// users: rate solved tickets, open requests, comment and mark solved, one at a
// time or in bulk from a CSV, with Zendesk recording each write as the end
// user's and onbehalf keeping its own audit trail.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/onbehalf/onbehalf/bulk"
	"github.com/onbehalf/onbehalf/handlers"
	"github.com/onbehalf/onbehalf/metrics"
	"github.com/onbehalf/onbehalf/oauthflow"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/views"
	"github.com/onbehalf/onbehalf/zendesk"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "onbehalf:", err)
		os.Exit(1)
	}
}

// run starts onbehalf and blocks until ctx is cancelled or SIGINT/SIGTERM
// arrives, then shuts down in reverse order of start: HTTP first (so no new
// work arrives), then the store, then the sandbox.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		args = args[1:]
	}
	cfg, err := loadConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.LogFormat, stderr)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create DATA_DIR %s: %w", cfg.DataDir, err)
	}
	secret, err := secretKey(cfg)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (set ADDR or --addr to a free address)", cfg.Addr, err)
	}
	defer ln.Close()
	publicURL := cfg.PublicURL
	if !cfg.publicURLSet {
		publicURL = derivePublicURL(ln.Addr())
	}
	pub, _ := url.Parse(publicURL)
	redirectURL := strings.TrimRight(publicURL, "/") + "/oauth/callback"

	// Metrics listen on their own address, so they are never exposed on the
	// public port. A nil *metrics.Metrics records nothing.
	var m *metrics.Metrics
	if cfg.MetricsAddr != "" {
		m = metrics.New()
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("listen on METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go msrv.Serve(mln)
		defer msrv.Close()
		fmt.Fprintf(stdout, "Metrics on http://%s/metrics\n", mln.Addr())
	}
	// One HTTP client for every Zendesk call, counted by endpoint and status.
	// Zendesk's transport closes idle connections sooner than Go's default,
	// so a connection a load balancer has closed is not picked for a write
	// (zendesk.NewTransport); the OAuth client too, as a refresh lost that
	// way may already have rotated the token pair.
	zendeskHTTP := &http.Client{Timeout: 60 * time.Second, Transport: m.Transport(zendesk.NewTransport(0))}

	zendeskURL := cfg.zendeskBaseURL()
	clientID, clientSecret := cfg.ZendeskClientID, cfg.ZendeskClientSecret
	var hint *views.SandboxHint
	if cfg.useSandbox() {
		sb, err := sandbox.Start(sandbox.Options{Seed: time.Now().UnixNano()})
		if err != nil {
			return fmt.Errorf("start sandbox Zendesk: %w", err)
		}
		defer sb.Close()
		clientID, clientSecret = "onbehalf-sandbox", randomToken()
		sb.RegisterClient(sandbox.Client{
			Identifier:   clientID,
			Secret:       clientSecret,
			RedirectURIs: []string{redirectURL},
		})
		zendeskURL = sb.URL
		hint = &views.SandboxHint{
			ZendeskURL: sb.URL,
			AdminName:  "Ada Admin",
			AdminEmail: sandbox.DemoAdminEmail,
			AgentEmail: sandbox.DemoAgentEmail,
			EndUser:    sandbox.DemoBeaEmail,
		}
	}

	dsn := cfg.DatabaseURL
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(cfg.DataDir, "onbehalf.db")
	}
	db, err := store.Open(ctx, dsn, store.Options{Logger: logger, SecretKey: secret})
	if err != nil {
		return fmt.Errorf("open database %s: %w", redactDSN(dsn), err)
	}
	defer db.Close()

	flow, err := oauthflow.New(oauthflow.Config{
		BaseURL:      zendeskURL,
		ClientID:     clientID,
		ClientSecret: clientSecret,
		RedirectURL:  redirectURL,
		Scopes:       cfg.ZendeskScopes,
		HTTPClient:   &http.Client{Timeout: 20 * time.Second, Transport: m.Transport(zendesk.NewTransport(0))},
	})
	if err != nil {
		return fmt.Errorf("oauth client: %w", err)
	}

	engine, err := bulk.NewEngine(ctx, bulk.Config{
		DB:         db,
		Logger:     logger,
		ZendeskURL: zendeskURL,
		Refresh:    handlers.RefreshFunc(flow),
		RateLimit:  cfg.ZendeskRateLimit,
		HTTPClient: zendeskHTTP,

		RescueStuckJobsAfter: cfg.BulkRescueAfter,
		JobTimeout:           cfg.BulkJobTimeout,
		// Sign-ins no session or unfinished run uses are revoked and
		// deleted; the same job deletes expired sessions.
		GrantSweep: bulk.GrantSweep{Revoke: flow.Revoke, Swept: m.GrantSwept},
	})
	if err != nil {
		return fmt.Errorf("start bulk engine: %w", err)
	}
	if err := engine.Start(ctx); err != nil {
		return fmt.Errorf("start bulk engine: %w", err)
	}
	m.SetThrottleSource(func() metrics.ThrottleSnapshot {
		s := engine.Throttle().Stats()
		return metrics.ThrottleSnapshot{Waits: s.Waits, Waited: s.Waited}
	})
	m.SetBulkSource(func(ctx context.Context) (metrics.BulkSnapshot, error) {
		rows, err := db.CountRowsByState(ctx)
		if err != nil {
			logger.Warn("metrics: count bulk rows", "err", err)
			return metrics.BulkSnapshot{}, err
		}
		jobs, err := db.CountJobsByState(ctx)
		if err != nil {
			logger.Warn("metrics: count queue jobs", "err", err)
			return metrics.BulkSnapshot{}, err
		}
		return metrics.BulkSnapshot{RowsByState: rows, JobsByState: jobs}, nil
	})

	handler, err := handlers.New(handlers.Config{
		Logger:     logger,
		DB:         db,
		Sessions:   db.SessionStore(store.SessionOptions{Secure: pub.Scheme == "https"}),
		OAuth:      flow,
		ZendeskURL: zendeskURL,
		PublicURL:  pub,
		Sandbox:    hint,
		Bulk:       engine,
		Ready:      db.Ready,
		HTTPClient: zendeskHTTP,
		Metrics:    m,
		RateLimit:  cfg.ZendeskRateLimit,

		MaxUploadBytes:     int64(cfg.BulkMaxUploadMB) << 20,
		LoginRatePerMinute: cfg.LoginRateLimit,
	})
	if err != nil {
		return err
	}

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute, // CSV uploads
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	// Live progress streams never go idle by themselves, so Shutdown would
	// wait for every viewer to leave; closing the handler ends them.
	srv.RegisterOnShutdown(handler.Close)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	printBanner(stdout, publicURL, ln.Addr().String(), zendeskURL, hint)
	logger.Info("listening", "addr", ln.Addr().String(), "public_url", publicURL, "zendesk", zendeskURL, "sandbox", hint != nil)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}

	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("http shutdown", "err", err)
	}
	// Workers stop after HTTP so no new run starts meanwhile; a row cut
	// off here is picked up again at the next start (rows are idempotent
	// or re-checked), then the store closes (deferred).
	if err := engine.Stop(shutdownCtx); err != nil {
		logger.Warn("bulk engine shutdown", "err", err)
	}
	return nil
}

// printBanner tells a person what to open; in sandbox mode, whom to sign in as.
func printBanner(w io.Writer, publicURL, addr, zendeskURL string, hint *views.SandboxHint) {
	fmt.Fprintf(w, "onbehalf listening on %s\n", addr)
	fmt.Fprintf(w, "Open %s\n", publicURL)
	if hint == nil {
		fmt.Fprintf(w, "Zendesk: %s\n", zendeskURL)
		return
	}
	fmt.Fprintf(w, "No Zendesk is configured, so onbehalf runs against its built-in sandbox Zendesk at %s.\n", zendeskURL)
	fmt.Fprintf(w, "Click \"Log in with Zendesk\", choose %s (%s, an admin) on the sandbox's sign-in page and click Allow.\n", hint.AdminName, hint.AdminEmail)
	fmt.Fprintf(w, "Then act as the end user %s. Signing in as %s (an agent) shows how non-admins are refused.\n", hint.EndUser, hint.AgentEmail)
}

func newLogger(format string, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// derivePublicURL is the default PUBLIC_URL: http on the port actually bound,
// with the host a local browser would use.
func derivePublicURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://localhost:8080"
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// secretKey returns SECRET_KEY, or the key kept in DATA_DIR/secret.key,
// creating it (32 random bytes, mode 0600) on first start so that sessions
// and stored tokens survive restarts without any set-up.
func secretKey(cfg config) ([]byte, error) {
	if cfg.SecretKey != "" {
		return []byte(cfg.SecretKey), nil
	}
	path := filepath.Join(cfg.DataDir, "secret.key")
	b, err := os.ReadFile(path)
	if err == nil {
		key := strings.TrimSpace(string(b))
		if len(key) < 32 {
			return nil, fmt.Errorf("%s holds a key shorter than 32 bytes: delete it to have a new one generated (signing everyone out) or set SECRET_KEY", path)
		}
		return []byte(key), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	key := randomToken()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return []byte(key), nil
}

// randomToken is 256 random bits, base64url without padding (43 bytes).
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
