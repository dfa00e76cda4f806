package oauthflow

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// DefaultScopes returns the scopes asked for when Config.Scopes is empty: read to
// search users and check tickets, write to act, impersonate to act as end users
// with X-On-Behalf-Of (zendesk-api.md §1.5, §2; write does not imply read).
func DefaultScopes() []string { return []string{"read", "write", "impersonate"} }

// defaultTimeout bounds every call to Zendesk when Config.HTTPClient is nil.
const defaultTimeout = 20 * time.Second

// stateBytes is the entropy of a state value: 256 bits, twice the 128 bits
// promised in DESIGN.md (security promise 1).
const stateBytes = 32

// Config describes the OAuth client registered in one Zendesk account.
type Config struct {
	// BaseURL is the Zendesk account, e.g. https://acme.zendesk.com. It must be
	// https unless the host is loopback (the sandbox), and carry no path, query,
	// fragment or credentials: every Zendesk URL the Flow uses is built from it.
	BaseURL string
	// ClientID is the OAuth client's Identifier (not its numeric id, §1.1).
	ClientID string
	// ClientSecret is the confidential client's secret. It is optional: a public
	// client authenticates with PKCE alone, which the Flow always sends.
	ClientSecret string
	// RedirectURL is PUBLIC_URL + "/oauth/callback"; it must match one of the
	// client's registered redirect URLs exactly.
	RedirectURL string
	// Scopes are the scopes to ask for; empty means DefaultScopes().
	Scopes []string
	// HTTPClient sends the calls to Zendesk; nil means a client with a 20 s
	// timeout. The Flow never follows redirects with it (see New).
	HTTPClient *http.Client
	// Now is the clock used to turn expires_in into absolute times; nil means
	// time.Now.
	Now func() time.Time
}

// Flow runs the authorization-code flow with PKCE against one Zendesk account.
// It is immutable after New and safe for concurrent use.
type Flow struct {
	oauth        oauth2.Config
	base         string // scheme://host, no trailing slash
	tokenURL     string
	clientID     string
	clientSecret string
	redirectURL  string
	scope        string // space-separated, as sent
	client       *http.Client
	now          func() time.Time
}

// New validates cfg and returns a Flow. The authorize and token URLs are built
// from cfg.BaseURL alone and never taken from anything Zendesk (or a browser)
// sends back, so a login can never be steered to another server (the OAuth
// mix-up defence, DESIGN.md security promise 2).
func New(cfg Config) (*Flow, error) {
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("oauthflow: new: base URL: %w", err)
	}
	if strings.TrimSpace(cfg.ClientID) == "" {
		return nil, errors.New("oauthflow: new: empty client id")
	}
	if err := checkRedirectURL(cfg.RedirectURL); err != nil {
		return nil, fmt.Errorf("oauthflow: new: redirect URL: %w", err)
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = DefaultScopes()
	}
	for _, s := range scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return nil, fmt.Errorf("oauthflow: new: invalid scope %q", s)
		}
	}
	scopes = append([]string(nil), scopes...)

	// A copy of the caller's client that refuses redirects: a 307 from the
	// token endpoint would make net/http replay the body (code, verifier,
	// secret, refresh token) to wherever the Location points, and an API call
	// would carry the bearer token along. A redirect is reported as an
	// unexpected status instead.
	var client http.Client
	if cfg.HTTPClient != nil {
		client = *cfg.HTTPClient
	} else {
		client.Timeout = defaultTimeout
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	f := &Flow{
		base:         base,
		tokenURL:     base + "/oauth/tokens",
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		redirectURL:  cfg.RedirectURL,
		scope:        strings.Join(scopes, " "),
		client:       &client,
		now:          now,
	}
	f.oauth = oauth2.Config{
		ClientID:    cfg.ClientID,
		RedirectURL: cfg.RedirectURL,
		Scopes:      scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:  base + "/oauth/authorizations/new",
			TokenURL: f.tokenURL,
		},
	}
	return f, nil
}

// parseBaseURL returns scheme://host for a Zendesk account URL, refusing
// anything that would let the URL carry more than an origin.
func parseBaseURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parse: %w", err)
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return "", fmt.Errorf("%q is not an absolute URL with a host", raw)
	}
	if u.User != nil {
		return "", errors.New("must not contain credentials")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("%q must be an origin only (no path, query or fragment)", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return "", fmt.Errorf("%q must use https (http is allowed for loopback hosts only)", raw)
		}
	default:
		return "", fmt.Errorf("%q: scheme must be https", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

// checkRedirectURL accepts an absolute http(s) URL without a fragment
// (RFC 6749 §3.1.2). Zendesk itself insists on https except for localhost
// and 127.0.0.1 (§1.1); that is the OAuth client registration's business, so
// an http PUBLIC_URL behind a proxy is not refused here.
func checkRedirectURL(raw string) error {
	if raw == "" {
		return errors.New("empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("%q: scheme must be http or https", raw)
	}
	if u.Opaque != "" || u.Hostname() == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%q must be an absolute URL with a host and no fragment", raw)
	}
	return nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Attempt is one login attempt: the URL to send the browser to, and the two
// secrets the caller keeps in the pre-login session until the callback.
type Attempt struct {
	// URL is the Zendesk authorize URL carrying state and the S256 challenge.
	URL string
	// State is echoed back by Zendesk; compare it with StatesEqual.
	State string
	// Verifier is the PKCE code verifier to pass to Exchange. It must never
	// leave the server.
	Verifier string
}

// Begin starts a login: a fresh state (256 random bits, base64url) and a fresh
// PKCE verifier, and the authorize URL
// {base}/oauth/authorizations/new?response_type=code&client_id&redirect_uri&scope&state&code_challenge&code_challenge_method=S256
// (zendesk-api.md §1.2). The error is always nil today: crypto/rand cannot
// fail on supported platforms; it is kept so a future source can.
func (f *Flow) Begin() (Attempt, error) {
	var b [stateBytes]byte
	rand.Read(b[:]) // never fails since Go 1.24; it crashes the program instead
	state := base64.RawURLEncoding.EncodeToString(b[:])
	verifier := oauth2.GenerateVerifier()
	return Attempt{
		URL:      f.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)),
		State:    state,
		Verifier: verifier,
	}, nil
}

// StatesEqual reports whether the state that came back equals the one kept,
// in constant time. Both are hashed first so the comparison does not even
// leak their lengths; an empty state never matches.
func StatesEqual(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
