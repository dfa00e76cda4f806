package sandbox

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// codeTTL is how long an authorization code lives (§1.2: 120 seconds).
const codeTTL = 120 * time.Second

// resourceScopes lists the resource scopes of §1.5 and which of read and
// write each allows.
var resourceScopes = map[string]string{
	"tickets": "rw", "users": "rw", "auditlogs": "r", "organizations": "rw", "hc": "rw", "apps": "rw",
	"triggers": "rw", "automations": "rw", "targets": "rw", "webhooks": "rw", "macros": "rw",
	"requests": "rw", "satisfaction_ratings": "rw", "dynamic_content": "rw", "any_channel": "w",
	"web_widget": "w", "unrestricted": "rw",
}

// errInvalidScope reports a scope Zendesk does not know.
var errInvalidScope = errors.New("invalid scope")

// parseScopes splits a space-separated scope string and checks every scope
// against §1.5.
func parseScopes(scope string) ([]string, error) {
	fields := strings.Fields(scope)
	if len(fields) == 0 {
		return nil, fmt.Errorf("%w: empty", errInvalidScope)
	}
	var out []string
	for _, f := range fields {
		switch f {
		case "read", "write", "impersonate":
		default:
			res, mode, ok := strings.Cut(f, ":")
			allowed := resourceScopes[res]
			if !ok || allowed == "" || (mode != "read" && mode != "write") || !strings.Contains(allowed, mode[:1]) {
				return nil, fmt.Errorf("%w: %q", errInvalidScope, f)
			}
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

type authCode struct {
	code        string
	client      string
	redirectURI string
	scopes      []string
	userID      int64
	challenge   string
	expiresAt   time.Time
	used        bool
	tokenID     int64 // token issued from it, revoked if the code is replayed
}

type tokenRec struct {
	id               int64
	client           string
	userID           int64
	scopes           []string
	access, refresh  string
	createdAt        time.Time
	expiresAt        time.Time // zero: never
	refreshExpiresAt time.Time
	usedAt           time.Time
	revoked          bool // access and refresh both dead
	refreshDead      bool // refresh only dead
}

func (t *tokenRec) activeAt(now time.Time) bool {
	return !t.revoked && (t.expiresAt.IsZero() || now.Before(t.expiresAt))
}

func (t *tokenRec) hasScope(s string) bool { return slices.Contains(t.scopes, s) }

func (t *tokenRec) public() Token {
	return Token{ID: t.id, AccessToken: t.access, RefreshToken: t.refresh, Scope: strings.Join(t.scopes, " "),
		UserID: t.userID, ExpiresAt: t.expiresAt}
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
	return hex.EncodeToString(b)
}

func (s *Sandbox) issueLocked(client string, userID int64, scopes []string) *tokenRec {
	now := s.now()
	s.tokenSeq++
	t := &tokenRec{id: 10000 + s.tokenSeq, client: client, userID: userID, scopes: slices.Clone(scopes),
		access: randomToken(32), createdAt: now}
	if s.switches.ExpiringTokens {
		t.expiresAt = now.Add(s.accessTTL())
		t.refresh = randomToken(32)
		t.refreshExpiresAt = now.Add(s.refreshTTL())
		s.byRefresh[t.refresh] = t
	}
	s.tokens[t.id] = t
	s.byAccess[t.access] = t
	return t
}

func (s *Sandbox) accessTTL() time.Duration {
	if s.switches.AccessTokenTTL > 0 {
		return s.switches.AccessTokenTTL
	}
	return 30 * time.Minute
}

func (s *Sandbox) refreshTTL() time.Duration {
	if s.switches.RefreshTokenTTL > 0 {
		return s.switches.RefreshTokenTTL
	}
	return 30 * 24 * time.Hour
}

// authorizePage is the sign-in and consent page. One form carries both
// buttons so that a browser test can pick a user and press either.
var authorizePage = template.Must(template.New("authorize").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in to Zendesk (sandbox)</title>
<style>
body{margin:0;font:16px/1.5 system-ui,sans-serif;background:#eef2ee;color:#1f2a24}
main{max-width:520px;margin:3rem auto;background:#fff;border:1px solid #cfd9d2;border-radius:10px;padding:1.5rem 2rem}
h1{font-size:1.35rem;margin:0 0 .25rem}.sub{color:#5a6b60;margin:0 0 1.25rem;font-size:.9rem}
ul{padding-left:1.2rem}label{display:block;font-weight:600;margin:1rem 0 .3rem}
select{width:100%;font:inherit;padding:.45rem;border:1px solid #9fb3a6;border-radius:6px}
.buttons{display:flex;gap:.75rem;margin-top:1.25rem}
button{font:inherit;padding:.5rem 1.2rem;border-radius:6px;border:1px solid #9fb3a6;background:#fff;cursor:pointer}
button[value=allow]{background:#03363d;border-color:#03363d;color:#fff}
</style></head>
<body>
<main>
<h1>Sign in to Zendesk (sandbox)</h1>
<p class="sub">A stand-in Zendesk account running on this machine, for trying onbehalf out. No real data.</p>
<p><strong data-testid="client">{{.Client}}</strong> wants to access your account with these scopes:</p>
<ul data-testid="scopes">{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>
<form method="post" action="/oauth/authorizations/new">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<label for="user">Sign in as</label>
<select id="user" name="user" data-testid="user">
{{range .People}}<option value="{{.Email}}"{{if .Selected}} selected{{end}}>{{.Name}} — {{.Role}} ({{.Email}})</option>
{{end}}</select>
<div class="buttons">
<button type="submit" name="decision" value="allow" data-testid="allow">Allow</button>
<button type="submit" name="decision" value="deny" data-testid="deny">Deny</button>
</div>
</form>
</main>
</body></html>
`))

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>OAuth error</title></head>
<body><main><h1>Something went wrong</h1><p data-testid="error">{{.}}</p></main></body></html>
`))

type hiddenField struct{ Name, Value string }

type person struct {
	Name, Email, Role string
	Selected          bool
}

// maxPeopleOnPage bounds the sign-in list for generated accounts.
const maxPeopleOnPage = 200

func (s *Sandbox) showError(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_ = errorPage.Execute(w, msg)
}

func redirectWith(w http.ResponseWriter, r *http.Request, redirectURI string, params url.Values) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	q := u.Query()
	for k, vs := range params {
		if len(vs) > 0 && vs[0] != "" {
			q.Set(k, vs[0])
		}
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// handleAuthorize serves GET and POST /oauth/authorizations/new (§1.2).
func (s *Sandbox) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		s.showError(w, "Method not allowed.")
		return
	}
	var q url.Values
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			s.showError(w, "The form could not be read.")
			return
		}
		q = r.PostForm
	} else {
		q = r.URL.Query()
	}
	clientID, redirectURI, state := q.Get("client_id"), q.Get("redirect_uri"), q.Get("state")

	s.mu.Lock()
	c, ok := s.clients[clientID]
	var client Client
	if ok {
		client = c.Client
	}
	s.mu.Unlock()
	// A bad client or redirect URI must never cause a redirect: that would
	// make the sandbox an open redirector (RFC 6749 §4.1.2.1).
	if !ok {
		s.showError(w, "Invalid client_id: no OAuth client with that identifier.")
		return
	}
	if redirectURI == "" || !slices.Contains(client.RedirectURIs, redirectURI) {
		s.showError(w, "Invalid redirect_uri: it does not match a redirect URL of this client.")
		return
	}
	fail := func(code, desc string) {
		redirectWith(w, r, redirectURI, url.Values{"error": {code}, "error_description": {desc}, "state": {state}})
	}
	if q.Get("response_type") != "code" {
		fail("unsupported_response_type", "The authorization server does not support this response type.")
		return
	}
	scopes, err := parseScopes(q.Get("scope"))
	if err != nil {
		fail("invalid_scope", "The requested scope is invalid, unknown, or malformed.")
		return
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge != "" && method != "S256":
		// §1.2: only S256 is documented; plain is refused.
		fail("invalid_request", "code_challenge_method must be S256.")
		return
	case challenge == "" && client.Public:
		fail("invalid_request", "Public clients must use PKCE (code_challenge with S256).")
		return
	case challenge != "" && !validChallenge(challenge):
		fail("invalid_request", "code_challenge is malformed.")
		return
	}

	if r.Method == http.MethodGet {
		s.renderConsent(w, client, scopes, q)
		return
	}
	switch q.Get("decision") {
	case "allow":
	case "deny":
		fail("access_denied", "The resource owner or authorization server denied the request.")
		return
	default:
		s.showError(w, "Choose Allow or Deny.")
		return
	}
	s.mu.Lock()
	uid, ok := s.usersByEmail[strings.ToLower(q.Get("user"))]
	if !ok {
		s.mu.Unlock()
		s.showError(w, "No such user in this account.")
		return
	}
	code := &authCode{code: randomToken(20), client: clientID, redirectURI: redirectURI, scopes: scopes,
		userID: uid, challenge: challenge, expiresAt: s.now().Add(codeTTL)}
	s.codes[code.code] = code
	s.mu.Unlock()
	redirectWith(w, r, redirectURI, url.Values{"code": {code.code}, "state": {state}})
}

func validChallenge(c string) bool {
	// RFC 7636: 43–128 characters of the unreserved set.
	if len(c) < 43 || len(c) > 128 {
		return false
	}
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)) {
			return false
		}
	}
	return true
}

func (s *Sandbox) renderConsent(w http.ResponseWriter, c Client, scopes []string, q url.Values) {
	var hidden []hiddenField
	for _, k := range []string{"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method"} {
		if v := q.Get(k); v != "" {
			hidden = append(hidden, hiddenField{k, v})
		}
	}
	s.mu.Lock()
	var people []person
	selected := false
	for _, id := range s.userIDs {
		if len(people) >= maxPeopleOnPage {
			break
		}
		u := s.users[id]
		p := person{Name: u.Name, Email: u.Email, Role: u.Role}
		if !selected && u.Role == "admin" {
			p.Selected, selected = true, true
		}
		people = append(people, p)
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = authorizePage.Execute(w, struct {
		Client string
		Scopes []string
		Hidden []hiddenField
		People []person
	}{c.Identifier, scopes, hidden, people})
}

// tokenRequest is the union of the token endpoint's body fields (§1.3).
type tokenRequest struct {
	GrantType    string `json:"grant_type"`
	Code         string `json:"code"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	RedirectURI  string `json:"redirect_uri"`
	CodeVerifier string `json:"code_verifier"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	// ExpiresIn and RefreshExpiresIn are the lifetimes a client may ask
	// for (§1.3), in seconds; 0 means the default.
	ExpiresIn        int64 `json:"expires_in"`
	RefreshExpiresIn int64 `json:"refresh_token_expires_in"`
}

// checkTTLs applies the bounds of §1.3: expires_in in (300 s, 2 d) and below
// refresh_token_expires_in, which is in (7 d, 90 d).
func (req tokenRequest) checkTTLs() *oauthError {
	bad := func(d string) *oauthError { return &oauthError{http.StatusBadRequest, "invalid_request", d} }
	if req.ExpiresIn != 0 && (req.ExpiresIn <= 300 || req.ExpiresIn >= 172800) {
		return bad("expires_in must be more than 300 and less than 172800 seconds.")
	}
	if req.RefreshExpiresIn != 0 && (req.RefreshExpiresIn <= 604800 || req.RefreshExpiresIn >= 7776000) {
		return bad("refresh_token_expires_in must be more than 604800 and less than 7776000 seconds.")
	}
	if req.ExpiresIn != 0 && req.RefreshExpiresIn != 0 && req.ExpiresIn >= req.RefreshExpiresIn {
		return bad("expires_in must be less than refresh_token_expires_in.")
	}
	return nil
}

// applyTTLs sets the lifetimes the client asked for on an expiring
// token; legacy (non-expiring) tokens ignore them, as the switch decides.
func applyTTLs(t *tokenRec, req tokenRequest) {
	if t.refresh == "" {
		return
	}
	if req.ExpiresIn != 0 {
		t.expiresAt = t.createdAt.Add(time.Duration(req.ExpiresIn) * time.Second)
	}
	if req.RefreshExpiresIn != 0 {
		t.refreshExpiresAt = t.createdAt.Add(time.Duration(req.RefreshExpiresIn) * time.Second)
	}
}

type oauthError struct {
	status      int
	code, descr string
}

func (e *oauthError) Error() string { return e.code + ": " + e.descr }

var (
	errInvalidClient = &oauthError{http.StatusUnauthorized, "invalid_client", "The client identifier provided is invalid, the client failed to authenticate, the client did not include its credentials, provided multiple client credentials, or used unsupported credentials type."}
	errInvalidGrant  = &oauthError{http.StatusBadRequest, "invalid_grant", "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."}
)

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Zendesk OAuth"`)
	}
	writeJSON(w, e.status, map[string]any{"error": e.code, "error_description": e.descr})
}

// handleToken serves POST /oauth/tokens (§1.3).
func (s *Sandbox) handleToken(w http.ResponseWriter, r *http.Request, body []byte) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		writeOAuthError(w, &oauthError{http.StatusMethodNotAllowed, "invalid_request", "Use POST."})
		return
	}
	req, oe := s.decodeTokenRequest(r, body)
	if oe != nil {
		writeOAuthError(w, oe)
		return
	}
	s.mu.Lock()
	var t *tokenRec
	switch req.GrantType {
	case "authorization_code":
		t, oe = s.exchangeLocked(req)
		if oe == nil {
			s.stats.Exchanges++
		}
	case "refresh_token":
		t, oe = s.refreshLocked(req)
		if oe == nil {
			s.stats.Refreshes++
		}
	case "":
		oe = &oauthError{http.StatusBadRequest, "invalid_request", "The request is missing a required parameter: grant_type."}
	default:
		oe = &oauthError{http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server."}
	}
	var resp map[string]any
	status := http.StatusOK
	if oe == nil {
		resp = map[string]any{"access_token": t.access, "token_type": "bearer", "scope": strings.Join(t.scopes, " ")}
		if t.refresh != "" {
			resp["expires_in"] = int64(t.expiresAt.Sub(t.createdAt) / time.Second)
			resp["refresh_token"] = t.refresh
			resp["refresh_token_expires_in"] = int64(t.refreshExpiresAt.Sub(t.createdAt) / time.Second)
		}
		if s.switches.TokenStatusCreated {
			status = http.StatusCreated
		}
	}
	s.mu.Unlock()
	if oe != nil {
		writeOAuthError(w, oe)
		return
	}
	writeJSON(w, status, resp)
}

func (s *Sandbox) decodeTokenRequest(r *http.Request, body []byte) (tokenRequest, *oauthError) {
	var req tokenRequest
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	s.mu.Lock()
	jsonOnly := s.switches.TokenJSONOnly
	s.mu.Unlock()
	switch {
	case ct == "application/json" || (ct == "" && len(body) > 0 && body[0] == '{'):
		if err := json.Unmarshal(body, &req); err != nil {
			return req, &oauthError{http.StatusBadRequest, "invalid_request", "The request body is not valid JSON."}
		}
	case jsonOnly:
		// §1.3: the docs say the body "must be formatted as JSON".
		return req, &oauthError{http.StatusBadRequest, "invalid_request", "The request body must be JSON (Content-Type: application/json)."}
	case ct == "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return req, &oauthError{http.StatusBadRequest, "invalid_request", "The form body is malformed."}
		}
		req = tokenRequest{GrantType: v.Get("grant_type"), Code: v.Get("code"), ClientID: v.Get("client_id"),
			ClientSecret: v.Get("client_secret"), RedirectURI: v.Get("redirect_uri"), CodeVerifier: v.Get("code_verifier"),
			RefreshToken: v.Get("refresh_token"), Scope: v.Get("scope")}
		for name, dst := range map[string]*int64{"expires_in": &req.ExpiresIn, "refresh_token_expires_in": &req.RefreshExpiresIn} {
			if raw := v.Get(name); raw != "" {
				n, err := strconv.ParseInt(raw, 10, 64)
				if err != nil {
					return req, &oauthError{http.StatusBadRequest, "invalid_request", name + " must be a number of seconds."}
				}
				*dst = n
			}
		}
	default:
		return req, &oauthError{http.StatusBadRequest, "invalid_request", "Unsupported Content-Type."}
	}
	if user, pass, ok := r.BasicAuth(); ok {
		user, _ = url.QueryUnescape(user)
		pass, _ = url.QueryUnescape(pass)
		if (req.ClientID != "" && req.ClientID != user) || (req.ClientSecret != "" && req.ClientSecret != pass) {
			// RFC 6749 §2.3: a client must not use more than one
			// authentication method.
			return req, errInvalidClient
		}
		req.ClientID, req.ClientSecret = user, pass
	}
	if oe := req.checkTTLs(); oe != nil {
		return req, oe
	}
	return req, nil
}

// authClientLocked checks the client credentials. It reports whether a
// secret was presented and verified.
func (s *Sandbox) authClientLocked(req tokenRequest) (*clientRec, bool, *oauthError) {
	c, ok := s.clients[req.ClientID]
	if !ok {
		return nil, false, errInvalidClient
	}
	if req.ClientSecret == "" {
		return c, false, nil
	}
	if c.Secret == "" || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(req.ClientSecret)) != 1 {
		return nil, false, errInvalidClient
	}
	return c, true, nil
}

func (s *Sandbox) exchangeLocked(req tokenRequest) (*tokenRec, *oauthError) {
	c, secretOK, oe := s.authClientLocked(req)
	if oe != nil {
		return nil, oe
	}
	code, ok := s.codes[req.Code]
	if !ok || code.client != c.Identifier {
		return nil, errInvalidGrant
	}
	if code.used {
		// RFC 6749 §4.1.2: a replayed code revokes what it issued.
		if t, ok := s.tokens[code.tokenID]; ok {
			t.revoked = true
		}
		return nil, errInvalidGrant
	}
	// The code is spent by any attempt that names it with valid client
	// credentials, so a wrong verifier cannot be retried (no guessing).
	code.used = true
	if !s.now().Before(code.expiresAt) || code.redirectURI != req.RedirectURI {
		return nil, errInvalidGrant
	}
	pkceOK := false
	switch {
	case code.challenge != "":
		if req.CodeVerifier == "" || s256(req.CodeVerifier) != code.challenge {
			return nil, errInvalidGrant
		}
		pkceOK = true
	case req.CodeVerifier != "":
		// A verifier without a challenge is a PKCE downgrade attempt.
		return nil, errInvalidGrant
	}
	if !c.Public && !secretOK && !pkceOK {
		return nil, errInvalidClient
	}
	t := s.issueLocked(c.Identifier, code.userID, code.scopes)
	applyTTLs(t, req)
	code.tokenID = t.id
	return t, nil
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (s *Sandbox) refreshLocked(req tokenRequest) (*tokenRec, *oauthError) {
	c, secretOK, oe := s.authClientLocked(req)
	if oe != nil {
		return nil, oe
	}
	if !c.Public && !secretOK {
		return nil, errInvalidClient
	}
	old, ok := s.byRefresh[req.RefreshToken]
	if !ok || req.RefreshToken == "" || old.revoked || old.refreshDead ||
		!s.now().Before(old.refreshExpiresAt) || (old.client != "" && old.client != c.Identifier) {
		return nil, errInvalidGrant
	}
	scopes := old.scopes
	if req.Scope != "" {
		asked, err := parseScopes(req.Scope)
		if err != nil {
			return nil, &oauthError{http.StatusBadRequest, "invalid_scope", "The requested scope is invalid, unknown, or malformed."}
		}
		for _, a := range asked {
			if !slices.Contains(old.scopes, a) {
				return nil, &oauthError{http.StatusBadRequest, "invalid_scope", "The requested scope exceeds the scope granted."}
			}
		}
		scopes = asked
	}
	// §1.3: rotation — the old access and refresh tokens die at once.
	old.revoked = true
	t := s.issueLocked(c.Identifier, old.userID, scopes)
	if t.refresh == "" {
		// ExpiringTokens was switched off after this pair was issued; a
		// refreshed token still expires, as Zendesk's refresh flow does.
		t.expiresAt = t.createdAt.Add(s.accessTTL())
		t.refresh = randomToken(32)
		t.refreshExpiresAt = t.createdAt.Add(s.refreshTTL())
		s.byRefresh[t.refresh] = t
	}
	applyTTLs(t, req)
	return t, nil
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("sandbox: read body: %w", err)
	}
	return b, nil
}
