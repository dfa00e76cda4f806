package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// config is everything onbehalf reads at start. Defaults are overridden by the
// environment, which is overridden by flags of the same name in kebab case
// (ZENDESK_RATE_LIMIT -> --zendesk-rate-limit). It is validated once, in
// loadConfig, so the rest of the program can trust it.
type config struct {
	ZendeskSubdomain    string
	ZendeskURL          string
	ZendeskClientID     string
	ZendeskClientSecret string
	ZendeskScopes       []string
	ZendeskRateLimit    int
	PublicURL           string
	SecretKey           string
	DatabaseURL         string
	DataDir             string
	Addr                string
	LogFormat           string
	Sandbox             bool
	MetricsAddr         string
	BulkRescueAfter     time.Duration
	BulkJobTimeout      time.Duration
	BulkMaxUploadMB     int
	LoginRateLimit      int
	ShutdownTimeout     time.Duration

	// publicURLSet records whether PUBLIC_URL was given; when it was not,
	// run derives it from the address it actually listens on, so that
	// `--addr 127.0.0.1:0` works without guessing a port.
	publicURLSet bool
}

// setting describes one configuration value: its environment name, its
// default and where it lands in config.
type setting struct {
	env   string
	def   string
	usage string
	set   func(c *config, v string) error
}

func settings() []setting {
	str := func(dst func(*config) *string) func(*config, string) error {
		return func(c *config, v string) error { *dst(c) = v; return nil }
	}
	return []setting{
		{"ZENDESK_SUBDOMAIN", "", "Zendesk subdomain: acme -> https://acme.zendesk.com", str(func(c *config) *string { return &c.ZendeskSubdomain })},
		{"ZENDESK_URL", "", "full Zendesk base URL instead of a subdomain (https unless the host is loopback)", str(func(c *config) *string { return &c.ZendeskURL })},
		{"ZENDESK_CLIENT_ID", "", "the OAuth client's Identifier (Admin Center > Apps and integrations > APIs > OAuth Clients)", str(func(c *config) *string { return &c.ZendeskClientID })},
		{"ZENDESK_CLIENT_SECRET", "", "the OAuth client's secret (leave empty for a public client; PKCE is always used)", str(func(c *config) *string { return &c.ZendeskClientSecret })},
		{"ZENDESK_SCOPES", "read write impersonate", "OAuth scopes requested at login, space-separated", func(c *config, v string) error {
			c.ZendeskScopes = strings.Fields(v)
			return nil
		}},
		{"ZENDESK_RATE_LIMIT", "200", "requests per minute the app allows itself per Zendesk account", func(c *config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("ZENDESK_RATE_LIMIT must be a whole number of requests per minute, got %q", v)
			}
			c.ZendeskRateLimit = n
			return nil
		}},
		{"PUBLIC_URL", "", "how browsers reach the app; the OAuth redirect URL is PUBLIC_URL + /oauth/callback (default http://localhost:<port>)", func(c *config, v string) error {
			c.PublicURL = v
			c.publicURLSet = v != ""
			return nil
		}},
		{"SECRET_KEY", "", "32+ bytes that sign cookies and encrypt tokens; generated into DATA_DIR when empty", str(func(c *config) *string { return &c.SecretKey })},
		{"DATABASE_URL", "", "sqlite:<file> or postgres://...; default: a SQLite file in DATA_DIR", str(func(c *config) *string { return &c.DatabaseURL })},
		{"DATA_DIR", "./data", "where the SQLite file and the generated key live", str(func(c *config) *string { return &c.DataDir })},
		{"ADDR", ":8080", "listen address", str(func(c *config) *string { return &c.Addr })},
		{"METRICS_ADDR", "", "listen address for Prometheus metrics at /metrics, e.g. :9090; empty: off", str(func(c *config) *string { return &c.MetricsAddr })},
		{"LOG_FORMAT", "text", "log format: text or json", str(func(c *config) *string { return &c.LogFormat })},
		{"SANDBOX", "false", "run against the built-in sandbox Zendesk even if a Zendesk is configured", func(c *config, v string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("SANDBOX must be true or false, got %q", v)
			}
			c.Sandbox = b
			return nil
		}},
		{"BULK_MAX_UPLOAD_MB", "20", "largest CSV upload accepted, in MB", func(c *config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("BULK_MAX_UPLOAD_MB must be a whole number of megabytes, got %q", v)
			}
			c.BulkMaxUploadMB = n
			return nil
		}},
		{"LOGIN_RATE_LIMIT", "20", "sign-in requests (/login and the OAuth callback) allowed per client address in a burst and per minute; behind a proxy all users share the proxy's address", func(c *config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 {
				return fmt.Errorf("LOGIN_RATE_LIMIT must be a whole number of requests per minute (1 or more), got %q", v)
			}
			c.LoginRateLimit = n
			return nil
		}},
		{"BULK_RESCUE_AFTER", "15s", "how long a replica may stop answering before the others take back the bulk rows it was working", func(c *config, v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("BULK_RESCUE_AFTER must be a duration such as 15s, got %q", v)
			}
			c.BulkRescueAfter = d
			return nil
		}},
		{"BULK_JOB_TIMEOUT", "2m", "how long one bulk row's work may take once its turn has come (waits for the rate limit are not counted)", func(c *config, v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("BULK_JOB_TIMEOUT must be a duration such as 2m, got %q", v)
			}
			c.BulkJobTimeout = d
			return nil
		}},
		{"SHUTDOWN_TIMEOUT", "15s", "how long shutdown waits for requests and jobs to finish", func(c *config, v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("SHUTDOWN_TIMEOUT must be a duration such as 15s, got %q", v)
			}
			c.ShutdownTimeout = d
			return nil
		}},
	}
}

// flagName turns ZENDESK_RATE_LIMIT into zendesk-rate-limit.
func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(env), "_", "-")
}

// loadConfig builds the config from defaults, then getenv, then args
// (without the program name), and validates it. Errors name the setting and
// say what a valid value looks like.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	all := settings()
	for _, s := range all {
		if err := s.set(&c, s.def); err != nil {
			return c, fmt.Errorf("config: default for %s: %w", s.env, err)
		}
	}
	for _, s := range all {
		if v := getenv(s.env); v != "" {
			if err := s.set(&c, v); err != nil {
				return c, err
			}
		}
	}

	fs := flag.NewFlagSet("onbehalf", flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, s := range all {
		s := s
		name := flagName(s.env)
		if s.env == "SANDBOX" {
			fs.BoolFunc(name, s.usage+" (env "+s.env+")", func(v string) error { return s.set(&c, v) })
			continue
		}
		fs.Func(name, s.usage+" (env "+s.env+")", func(v string) error { return s.set(&c, v) })
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (settings are flags such as --addr :8080)", fs.Arg(0))
	}
	return c, c.validate()
}

// zendeskConfigured reports whether a real Zendesk account was named.
func (c config) zendeskConfigured() bool {
	return c.ZendeskSubdomain != "" || c.ZendeskURL != ""
}

// useSandbox reports whether run starts the built-in sandbox Zendesk.
func (c config) useSandbox() bool {
	return c.Sandbox || !c.zendeskConfigured()
}

// zendeskBaseURL is the account's base URL, from ZENDESK_URL or the subdomain.
func (c config) zendeskBaseURL() string {
	if c.ZendeskURL != "" {
		return strings.TrimRight(c.ZendeskURL, "/")
	}
	if c.ZendeskSubdomain != "" {
		return "https://" + c.ZendeskSubdomain + ".zendesk.com"
	}
	return ""
}

func (c config) validate() error {
	var errs []error
	if c.ZendeskSubdomain != "" && c.ZendeskURL != "" {
		errs = append(errs, errors.New("set ZENDESK_SUBDOMAIN or ZENDESK_URL, not both"))
	}
	if s := c.ZendeskSubdomain; s != "" && !validSubdomain(s) {
		errs = append(errs, fmt.Errorf("ZENDESK_SUBDOMAIN %q is not a subdomain: give just the first label, e.g. acme for https://acme.zendesk.com", s))
	}
	if c.ZendeskURL != "" {
		if err := checkZendeskURL(c.ZendeskURL); err != nil {
			errs = append(errs, err)
		}
	}
	if c.zendeskConfigured() && !c.Sandbox && c.ZendeskClientID == "" {
		errs = append(errs, errors.New("ZENDESK_CLIENT_ID is required with a Zendesk account: register onbehalf as an OAuth client in Admin Center (see README) and pass its Identifier"))
	}
	if len(c.ZendeskScopes) == 0 {
		errs = append(errs, errors.New("ZENDESK_SCOPES is empty: use the default \"read write impersonate\""))
	}
	if c.ZendeskRateLimit < 1 || c.ZendeskRateLimit > 100000 {
		errs = append(errs, fmt.Errorf("ZENDESK_RATE_LIMIT must be between 1 and 100000 requests per minute, got %d (plans allow 200, 400, 700 or 2500)", c.ZendeskRateLimit))
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("PUBLIC_URL must be an absolute http(s) URL with no path, e.g. https://onbehalf.example.com, got %q", c.PublicURL))
		}
	}
	if c.SecretKey != "" && len(c.SecretKey) < 32 {
		errs = append(errs, fmt.Errorf("SECRET_KEY must be at least 32 bytes, got %d (leave it empty to have one generated in DATA_DIR)", len(c.SecretKey)))
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "sqlite:") && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		errs = append(errs, fmt.Errorf("DATABASE_URL must start with sqlite: or postgres://, got %q", redactDSN(c.DatabaseURL)))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("DATA_DIR must not be empty"))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("ADDR must be host:port or :port, got %q", c.Addr))
	}
	if c.MetricsAddr != "" {
		_, port, err := net.SplitHostPort(c.MetricsAddr)
		if err != nil || (c.MetricsAddr == c.Addr && port != "0") {
			errs = append(errs, fmt.Errorf("METRICS_ADDR must be host:port or :port, different from ADDR, got %q", c.MetricsAddr))
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("LOG_FORMAT must be text or json, got %q", c.LogFormat))
	}
	if c.BulkMaxUploadMB < 1 || c.BulkMaxUploadMB > 1024 {
		errs = append(errs, fmt.Errorf("BULK_MAX_UPLOAD_MB must be between 1 and 1024, got %d", c.BulkMaxUploadMB))
	}
	if c.BulkRescueAfter < 2*time.Second {
		errs = append(errs, fmt.Errorf("BULK_RESCUE_AFTER must be at least 2s, got %v", c.BulkRescueAfter))
	}
	if c.BulkJobTimeout < 10*time.Second {
		errs = append(errs, fmt.Errorf("BULK_JOB_TIMEOUT must be at least 10s, got %v", c.BulkJobTimeout))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("SHUTDOWN_TIMEOUT must be positive"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration:\n  %w", joinLines(errs))
	}
	return nil
}

// joinLines joins errors one per line, indented, for the start-up message.
func joinLines(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n  "))
}

func validSubdomain(s string) bool {
	if len(s) > 63 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case r == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return s != ""
}

// checkZendeskURL refuses anything but an https origin, except on loopback
// where the sandbox and tests run over plain http.
func checkZendeskURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("ZENDESK_URL must be a base URL such as https://acme.zendesk.com, got %q", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("ZENDESK_URL must use https (plain http is allowed only for loopback hosts), got %q", raw)
	default:
		return fmt.Errorf("ZENDESK_URL must be an https URL, got %q", raw)
	}
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// redactDSN hides a password in a database URL before it is printed.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	return u.Redacted()
}
