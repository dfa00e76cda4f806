package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuilder is a strings.Builder safe to write from one goroutine while
// another reads it.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// startRun runs the app as `go run .` would, on a free loopback port, and
// returns the URL it prints.
func startRun(t *testing.T, env map[string]string, args ...string) (string, *lockedBuilder, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"onbehalf"}, args...), mapEnv(env), pw, io.Discard)
		pw.Close()
		done <- err
	}()
	out := &lockedBuilder{}
	urlCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			out.WriteString(line + "\n")
			if u, ok := strings.CutPrefix(line, "Open "); ok {
				urlCh <- u
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v after cancel", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("run did not shut down within 20s")
		}
	})
	select {
	case u := <-urlCh:
		return u, out, done
	case err := <-done:
		done <- nil // let the cleanup see it has stopped
		t.Fatalf("run exited early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("run printed no URL within 30s")
	}
	return "", nil, nil
}

func TestRunStartsWithSandboxWhenNoZendeskConfigured(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	u, out, _ := startRun(t, map[string]string{"ADDR": "127.0.0.1:0", "DATA_DIR": dir})

	res, err := http.Get(u + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "Log in with Zendesk") || !strings.Contains(string(body), "sandbox") {
		t.Errorf("GET / = %d, want the login page with the sandbox hint; body %.300s", res.StatusCode, body)
	}
	if !strings.Contains(out.String(), "ada@example.com") {
		t.Errorf("start-up message does not say whom to sign in as:\n%s", out)
	}
	info, err := os.Stat(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatalf("no generated secret key: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("secret.key mode %v, want 0600", perm)
	}
	if _, err := os.Stat(filepath.Join(dir, "onbehalf.db")); err != nil {
		t.Errorf("no SQLite database in DATA_DIR: %v", err)
	}
}

func TestRunKeepsGeneratedKeyAcrossRestarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := config{DataDir: dir}
	first, err := secretKey(cfg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := secretKey(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) < 32 || string(first) != string(second) {
		t.Errorf("generated key %d bytes, reread equal: %v", len(first), string(first) == string(second))
	}
	short := t.TempDir()
	os.WriteFile(filepath.Join(short, "secret.key"), []byte("too-short\n"), 0o600)
	if _, err := secretKey(config{DataDir: short}); err == nil || !strings.Contains(err.Error(), "shorter than 32 bytes") {
		t.Errorf("short key file: err %v, want a clear refusal", err)
	}
}

func TestRunRefusesBadConfiguration(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"onbehalf", "--zendesk-rate-limit", "0"}, mapEnv(map[string]string{"SECRET_KEY": "short"}), io.Discard, io.Discard)
	if err == nil {
		t.Fatal("run started with an invalid configuration")
	}
	for _, want := range []string{"ZENDESK_RATE_LIMIT", "SECRET_KEY must be at least 32 bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ZENDESK_RATE_LIMIT": "400", "ADDR": ":9000"}
	c, err := loadConfig([]string{"--zendesk-rate-limit", "700"}, mapEnv(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.ZendeskRateLimit != 700 {
		t.Errorf("rate limit %d: a flag must override the environment", c.ZendeskRateLimit)
	}
	if c.Addr != ":9000" {
		t.Errorf("addr %q: the environment must override the default", c.Addr)
	}
	if c.DataDir != "./data" || strings.Join(c.ZendeskScopes, " ") != "read write impersonate" {
		t.Errorf("defaults not applied: %+v", c)
	}
	if !c.useSandbox() {
		t.Error("with no Zendesk configured the sandbox must be used")
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // "" means valid
	}{
		{"defaults", nil, ""},
		{"subdomain needs client id", map[string]string{"ZENDESK_SUBDOMAIN": "acme"}, "ZENDESK_CLIENT_ID is required"},
		{"subdomain ok", map[string]string{"ZENDESK_SUBDOMAIN": "acme", "ZENDESK_CLIENT_ID": "onbehalf"}, ""},
		{"bad subdomain", map[string]string{"ZENDESK_SUBDOMAIN": "acme.zendesk.com", "ZENDESK_CLIENT_ID": "x"}, "not a subdomain"},
		{"both url and subdomain", map[string]string{"ZENDESK_SUBDOMAIN": "acme", "ZENDESK_URL": "https://acme.zendesk.com", "ZENDESK_CLIENT_ID": "x"}, "not both"},
		{"http url refused", map[string]string{"ZENDESK_URL": "http://acme.zendesk.com", "ZENDESK_CLIENT_ID": "x"}, "must use https"},
		{"http loopback ok", map[string]string{"ZENDESK_URL": "http://127.0.0.1:9999", "ZENDESK_CLIENT_ID": "x"}, ""},
		{"url with path", map[string]string{"ZENDESK_URL": "https://acme.zendesk.com/api/v2", "ZENDESK_CLIENT_ID": "x"}, "base URL"},
		{"short secret", map[string]string{"SECRET_KEY": "abc"}, "at least 32 bytes"},
		{"bad rate limit", map[string]string{"ZENDESK_RATE_LIMIT": "lots"}, "whole number"},
		{"bad public url", map[string]string{"PUBLIC_URL": "onbehalf.example.com"}, "PUBLIC_URL"},
		{"bad database url", map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL"},
		{"bad addr", map[string]string{"ADDR": "8080"}, "ADDR"},
		{"bad log format", map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT"},
		{"rescue too eager", map[string]string{"BULK_RESCUE_AFTER": "500ms"}, "BULK_RESCUE_AFTER must be at least 2s"},
		{"job timeout too short", map[string]string{"BULK_JOB_TIMEOUT": "3s"}, "BULK_JOB_TIMEOUT must be at least 10s"},
		{"job timeout not a duration", map[string]string{"BULK_JOB_TIMEOUT": "soon"}, "BULK_JOB_TIMEOUT must be a duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadConfig(nil, mapEnv(tc.env), io.Discard)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestRunServesMetricsOnTheirOwnAddress(t *testing.T) {
	t.Parallel()
	u, out, _ := startRun(t, map[string]string{"ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir(), "METRICS_ADDR": "127.0.0.1:0"})
	var metricsURL string
	for _, line := range strings.Split(out.String(), "\n") {
		if m, ok := strings.CutPrefix(line, "Metrics on "); ok {
			metricsURL = m
		}
	}
	if metricsURL == "" {
		t.Fatalf("no metrics address printed:\n%s", out)
	}
	scrape := func() string {
		res, err := http.Get(metricsURL)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	const home = `onbehalf_http_requests_total{route="/",status="200"}`
	before := metricValue(scrape(), home)
	for i := 0; i < 3; i++ {
		res, err := http.Get(u + "/")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	body := scrape()
	if got := metricValue(body, home); got != before+3 {
		t.Errorf("%s = %v after 3 page views, want %v", home, got, before+3)
	}
	for _, want := range []string{`onbehalf_bulk_rows{state="done"} 0`, `onbehalf_queue_jobs{state="available"} 0`, `onbehalf_bulk_source_up 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if res, err := http.Get(u + "/metrics"); err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Error("metrics are served on the public address too")
		}
	}
}

// metricValue reads one sample's value from Prometheus text, 0 if absent.
func metricValue(body, series string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}
