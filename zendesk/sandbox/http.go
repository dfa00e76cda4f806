package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// route is one API endpoint. Wildcards ({id}) match digits only.
type route struct {
	method  string
	pattern string // normalized, as in Stats.Calls
	segs    []string
	// resource names the resource scope that also grants access (§1.5).
	resource string
	// staff marks endpoints that end users may not call (§3.3).
	staff bool
	// anon allows a call without a token (users/me, §1.6).
	anon bool
	// noScope skips the read/write check; the handler decides.
	noScope bool
	h       func(*call)
}

// call is one API request on its way through the sandbox.
type call struct {
	s      *Sandbox
	w      http.ResponseWriter
	r      *http.Request
	rt     *route
	body   []byte
	params []int64
	base   string

	tok           *tokenRec // nil when anonymous
	user          User      // the token's owner
	actor         User      // whom the call runs as
	impersonating bool

	ticketID int64 // the ticket a write touched, for Writes
}

func (s *Sandbox) routes() []*route {
	rs := []*route{
		{method: "GET", pattern: "/api/v2/users/me", resource: "users", anon: true, h: (*call).me},
		{method: "GET", pattern: "/api/v2/users/search", resource: "users", staff: true, h: (*call).searchUsers},
		{method: "GET", pattern: "/api/v2/users/autocomplete", resource: "users", staff: true, h: (*call).autocompleteUsers},
		{method: "GET", pattern: "/api/v2/users/show_many", resource: "users", staff: true, h: (*call).showManyUsers},
		{method: "GET", pattern: "/api/v2/users/{id}", resource: "users", h: (*call).showUser},
		{method: "GET", pattern: "/api/v2/users/{id}/requests", resource: "requests", staff: true, h: (*call).userRequests},
		{method: "GET", pattern: "/api/v2/tickets/show_many", resource: "tickets", staff: true, h: (*call).showManyTickets},
		{method: "GET", pattern: "/api/v2/tickets/{id}", resource: "tickets", staff: true, h: (*call).showTicket},
		{method: "POST", pattern: "/api/v2/tickets/{id}/satisfaction_rating", resource: "satisfaction_ratings", h: (*call).rateTicket},
		{method: "GET", pattern: "/api/v2/satisfaction_reasons", resource: "satisfaction_ratings", staff: true, h: (*call).listReasons},
		{method: "GET", pattern: "/api/v2/requests", resource: "requests", h: (*call).listRequests},
		{method: "GET", pattern: "/api/v2/requests/open", resource: "requests", h: (*call).listRequests},
		{method: "GET", pattern: "/api/v2/requests/solved", resource: "requests", h: (*call).listRequests},
		{method: "GET", pattern: "/api/v2/requests/ccd", resource: "requests", h: (*call).listRequests},
		{method: "POST", pattern: "/api/v2/requests", resource: "requests", h: (*call).createRequest},
		{method: "GET", pattern: "/api/v2/requests/{id}", resource: "requests", h: (*call).showRequest},
		{method: "PUT", pattern: "/api/v2/requests/{id}", resource: "requests", h: (*call).updateRequest},
		{method: "GET", pattern: "/api/v2/requests/{id}/comments", resource: "requests", h: (*call).listComments},
		{method: "GET", pattern: "/api/v2/oauth/tokens/current", h: (*call).currentToken},
		{method: "DELETE", pattern: "/api/v2/oauth/tokens/current", noScope: true, h: (*call).revokeCurrent},
		{method: "DELETE", pattern: "/api/v2/oauth/tokens/{id}", noScope: true, h: (*call).revokeByID},
	}
	for _, r := range rs {
		r.segs = strings.Split(strings.TrimPrefix(r.pattern, "/"), "/")
	}
	return rs
}

// match finds the route for method and path (".json" already dropped).
func (s *Sandbox) match(method string, segs []string) (*route, []int64) {
	for _, rt := range s.rts {
		if len(rt.segs) != len(segs) {
			continue
		}
		var params []int64
		ok := true
		for i, p := range rt.segs {
			if p == "{id}" {
				n, err := strconv.ParseInt(segs[i], 10, 64)
				if err != nil || n <= 0 {
					ok = false
					break
				}
				params = append(params, n)
			} else if p != segs[i] {
				ok = false
				break
			}
		}
		if ok && rt.method == method {
			return rt, params
		}
	}
	return nil, nil
}

// normalize turns a real path into a Stats.Calls key path: ".json" dropped
// and numeric segments replaced by {id}.
func normalize(path string) string {
	path = strings.TrimSuffix(path, ".json")
	segs := strings.Split(path, "/")
	for i, sg := range segs {
		if sg != "" && strings.Trim(sg, "0123456789") == "" {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

// ServeHTTP serves the OAuth endpoints and the Support API.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/oauth/authorizations/new":
		s.count(r.Method + " " + path)
		s.handleAuthorize(w, r)
	case path == "/oauth/tokens":
		s.count(r.Method + " " + path)
		body, err := readBody(r)
		if err != nil {
			writeOAuthError(w, &oauthError{http.StatusBadRequest, "invalid_request", "The body could not be read."})
			return
		}
		s.handleToken(w, r, body)
	case strings.HasPrefix(path, "/api/v2/"):
		s.serveAPI(w, r)
	default:
		s.count(r.Method + " " + normalize(path))
		invalidEndpoint(w)
	}
}

func (s *Sandbox) count(key string) {
	s.mu.Lock()
	s.stats.Calls[key]++
	s.mu.Unlock()
}

func (s *Sandbox) serveAPI(w http.ResponseWriter, r *http.Request) {
	hooks := s.currentHooks()
	// The body is read first: net/http watches for the client leaving
	// only once the body has been read, and a held call must notice that.
	body, bodyErr := readBody(r)
	if hooks.BeforeCall != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		hooks.BeforeCall(r)
		if r.Context().Err() != nil {
			// The client gave up while the call was held: it never
			// arrives, so a held write is never applied behind the
			// test's back. (Hold the answer with AfterWrite to have a
			// write applied whose client gave up.)
			return
		}
	}
	// Latency first and outside the lock: every API call pays it, as a
	// slow network would make it.
	s.mu.Lock()
	delay := s.faults.Latency
	if j := s.faults.Jitter; j > 0 {
		delay += time.Duration(s.jrng.Float64() * float64(j))
	}
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}

	path := strings.TrimSuffix(r.URL.Path, ".json")
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	rt, params := s.match(r.Method, segs)
	key := r.Method + " " + normalize(r.URL.Path)
	if rt != nil {
		key = rt.method + " " + rt.pattern
	}

	s.mu.Lock()
	s.stats.Calls[key]++
	ok, retry := s.takeLocked(w.Header())
	if !ok {
		s.stats.Throttled++
	}
	s.mu.Unlock()
	if !ok {
		tooMany(w, retry)
		return
	}
	if rt == nil {
		invalidEndpoint(w)
		return
	}

	if bodyErr != nil {
		badRequest(w, "InvalidBody", "The request body could not be read.")
		return
	}
	c := &call{s: s, w: w, r: r, rt: rt, body: body, params: params, base: "http://" + r.Host}
	if !c.authenticate() {
		return
	}
	if !s.injectFault(w) {
		return
	}
	if r.Method == http.MethodGet {
		rt.h(c)
		return
	}
	// The answer is kept until the write is recorded, so AfterWrite can
	// hold it or drop the connection with the write applied.
	buf := newBufferedWriter()
	c.w = buf
	if len(params) > 0 && (strings.HasPrefix(rt.pattern, "/api/v2/tickets/") || strings.HasPrefix(rt.pattern, "/api/v2/requests/")) {
		c.ticketID = params[0]
	}
	rt.h(c)
	wr := Write{Method: r.Method, Endpoint: key, Path: r.URL.Path, ActorID: c.actor.ID,
		TicketID: c.ticketID, Status: buf.status, Body: string(body), OnBehalfOf: r.Header.Get("X-On-Behalf-Of")}
	if c.tok != nil {
		wr.TokenUserID = c.tok.userID
	}
	s.mu.Lock()
	wr.Time = s.now()
	s.writes = append(s.writes, wr)
	drop := s.faults.DropAfterWriteRate > 0 && s.rng.Float64() < s.faults.DropAfterWriteRate
	if drop {
		s.stats.DroppedAfterWrite++
	}
	s.mu.Unlock()
	if hooks.AfterWrite != nil && hooks.AfterWrite(wr) {
		drop = true
	}
	if drop {
		dropConnection(w)
		return
	}
	buf.flush(w)
}

// takeLocked takes one token from the account's bucket and sets the
// rate-limit headers of §4.2. When the bucket is empty it reports how long
// until the next token.
func (s *Sandbox) takeLocked(h http.Header) (bool, time.Duration) {
	now := time.Now()
	perSec := float64(s.limit) / 60
	s.bucket = math.Min(s.cap, s.bucket+now.Sub(s.filled).Seconds()*perSec)
	s.filled = now
	ok := s.bucket >= 1
	if ok {
		s.bucket--
	}
	remaining := int(math.Floor(s.bucket))
	reset := int(math.Ceil((s.cap - s.bucket) / perSec))
	lim := strconv.Itoa(s.limit)
	h.Set("X-Rate-Limit", lim)
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(remaining))
	h.Set("ratelimit-limit", lim)
	h.Set("ratelimit-remaining", strconv.Itoa(remaining))
	h.Set("ratelimit-reset", strconv.Itoa(reset))
	if ok {
		return true, 0
	}
	return false, time.Duration((1 - s.bucket) / perSec * float64(time.Second))
}

// retryAfterSeconds renders d as whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10)
}

func tooMany(w http.ResponseWriter, retry time.Duration) {
	w.Header().Set("Retry-After", retryAfterSeconds(retry))
	writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": "TooManyRequests",
		"description": "You have exceeded the rate limit of this account. Retry after the time given in Retry-After."})
}

// injectFault applies the configured faults; it reports whether the call
// goes on to its handler. The RNG draws are the same in number for every
// call so that the sequence depends only on the seed and the call order.
func (s *Sandbox) injectFault(w http.ResponseWriter) bool {
	s.mu.Lock()
	f := s.faults
	retry := f.RetryAfter
	if retry <= 0 {
		retry = time.Second
	}
	kind := ""
	if s.burst > 0 {
		s.burst--
		kind = "429"
	} else {
		drop, r429, r503, r5xx, pick := s.rng.Float64(), s.rng.Float64(), s.rng.Float64(), s.rng.Float64(), s.rng.IntN(2)
		switch {
		case drop < f.DropRate:
			kind = "drop"
		case r429 < f.Rate429:
			kind = "429"
			s.burst = max(1, f.Burst429) - 1
		case r503 < f.Rate503:
			kind = "503"
		case r5xx < f.Rate5xx:
			kind = []string{"500", "502"}[pick]
		}
	}
	switch kind {
	case "drop":
		s.stats.Dropped++
	case "429":
		s.stats.Injected429++
	case "503":
		s.stats.Injected503++
	case "500", "502":
		s.stats.Injected5xx++
	}
	s.mu.Unlock()

	switch kind {
	case "":
		return true
	case "drop":
		dropConnection(w)
	case "429":
		tooMany(w, retry)
	case "503":
		w.Header().Set("Retry-After", retryAfterSeconds(retry))
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "ServiceUnavailable",
			"description": "The service is temporarily unavailable. Retry after the time given in Retry-After."})
	case "500":
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "InternalServerError",
			"description": "Something went wrong on our end."})
	case "502":
		// Gateways answer in HTML, not in Zendesk's JSON (§4.1).
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>\n"))
	}
	return false
}

// invalidTokenDesc is Zendesk's text for a bad bearer token (§1.7).
const invalidTokenDesc = "The access token provided is expired, revoked, malformed or invalid for other reasons."

func invalidToken(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="Zendesk::OAuth Bearer Token Authentication", error="invalid_token", error_description="`+invalidTokenDesc+`"`)
	writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_token", "error_description": invalidTokenDesc})
}

// authenticate resolves the token, the impersonated user and the scopes;
// it answers the call itself and reports false when the call must stop.
func (c *call) authenticate() bool {
	s := c.s
	authz := c.r.Header.Get("Authorization")
	scheme, raw, _ := strings.Cut(authz, " ")
	if authz == "" {
		if c.rt.anon {
			return true
		}
		writeJSON(c.w, http.StatusUnauthorized, map[string]any{"error": "Couldn't authenticate you"})
		return false
	}
	if !strings.EqualFold(scheme, "Bearer") {
		// Basic auth (API tokens) is not part of this sandbox (§4.1 shape).
		writeJSON(c.w, http.StatusUnauthorized, map[string]any{"error": "Couldn't authenticate you"})
		return false
	}
	raw = strings.TrimSpace(raw)

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	t, ok := s.byAccess[raw]
	var owner *User
	if ok {
		owner = s.users[t.userID]
	}
	if !ok || !t.activeAt(now) || owner == nil || !owner.Active || owner.Suspended {
		invalidToken(c.w)
		return false
	}
	t.usedAt = now
	c.tok, c.user, c.actor = t, *owner, *owner

	if obo := strings.TrimSpace(c.r.Header.Get("X-On-Behalf-Of")); obo != "" {
		// §2: only an admin's token with the impersonate scope may act for
		// someone else.
		if owner.Role != "admin" || !t.hasScope("impersonate") {
			forbidden(c.w)
			return false
		}
		target, found := s.lookupUserLocked(obo)
		if !found || !target.Active {
			// §2: an unknown user "fails as an invalid_token".
			invalidToken(c.w)
			return false
		}
		if target.Role != "end-user" || target.Suspended {
			forbidden(c.w)
			return false
		}
		c.actor, c.impersonating = *target, true
	}

	if !c.rt.noScope && !c.hasScopeFor(c.r.Method) {
		forbidden(c.w)
		return false
	}
	if c.rt.staff && c.actor.Role == "end-user" {
		forbidden(c.w)
		return false
	}
	return true
}

// hasScopeFor applies §1.5: GET needs read, writes need write; write does
// not imply read; a resource scope grants the same for its resource.
func (c *call) hasScopeFor(method string) bool {
	mode := "write"
	if method == http.MethodGet || method == http.MethodHead {
		mode = "read"
	}
	if c.tok.hasScope(mode) {
		return true
	}
	return c.rt.resource != "" && c.tok.hasScope(c.rt.resource+":"+mode)
}

func (s *Sandbox) lookupUserLocked(ref string) (*User, bool) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		u, ok := s.users[id]
		return u, ok
	}
	id, ok := s.usersByEmail[strings.ToLower(ref)]
	if !ok {
		return nil, false
	}
	return s.users[id], true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "sandbox: encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// forbiddenMessage is the §4.1 403 text.
const forbiddenMessage = "You do not have access to this page. Please contact the account owner of this help desk for further help."

func forbidden(w http.ResponseWriter) {
	writeJSON(w, http.StatusForbidden, map[string]any{"error": map[string]any{"title": "Forbidden", "message": forbiddenMessage}})
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]any{"error": "RecordNotFound", "description": "Not found"})
}

func invalidEndpoint(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]any{"error": "InvalidEndpoint", "description": "Not found"})
}

// invalid answers 422 RecordInvalid with one detail (§4.1).
func invalid(w http.ResponseWriter, field, errCode, desc string) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": "RecordInvalid", "description": "Record validation errors",
		"details": map[string]any{field: []map[string]any{{"description": desc, "error": errCode}}}})
}

func badRequest(w http.ResponseWriter, code, title string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []map[string]any{{"code": code, "title": title}}})
}
