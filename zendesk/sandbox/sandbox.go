package sandbox

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configure a Sandbox. The zero value is a usable Demo account with
// Zendesk's Enterprise rate limit and no faults.
type Options struct {
	// Seed seeds the fault RNG (math/rand/v2 PCG): for one sequence of calls
	// the injected faults are the same on every run.
	Seed int64
	// RateLimit is the account's requests per minute; 0 means 700.
	RateLimit int
	// RateBurst is the token-bucket capacity; 0 means max(1, RateLimit/60),
	// one second's worth.
	RateBurst int
	Switches  Switches
	Faults    Faults
	// Now is the clock for code and token expiry and for created_at; nil
	// means time.Now. Rate limiting and latency always use real time.
	Now func() time.Time
	// Data is the account's content; nil means Demo(). It is copied.
	Data *Data
	// Clients are the OAuth clients registered at start.
	Clients []Client
	// IdleTimeout, for Start, closes a keep-alive connection that stays
	// idle this long, as load balancers in front of real servers do; a
	// client that reuses such a connection just as it closes sees it drop.
	// 0 keeps idle connections open.
	IdleTimeout time.Duration
}

// Switches select among the plausible behaviours of points that
// zendesk-api.md marks UNCONFIRMED. The zero value is what the
// documentation states, or what zendesk-api.md judges most likely where it
// states nothing: ratings answered as an array, writes as unverified end
// users refused, impersonation honoured, cursor lists sorted as asked.
// Each switch turns on one other variant.
type Switches struct {
	// TokenJSONOnly makes POST /oauth/tokens refuse form bodies with 400
	// invalid_request (§1.3: the docs say JSON).
	TokenJSONOnly bool
	// TokenStatusCreated makes the token endpoint answer 201 instead of 200
	// (§1.3: the doc example shows 201).
	TokenStatusCreated bool
	// ExpiringTokens issues expires_in, refresh_token and
	// refresh_token_expires_in (§1.4); without it tokens never expire and
	// have no refresh token (legacy clients).
	ExpiringTokens bool
	// AccessTokenTTL is the access token lifetime; 0 means 30 minutes.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the refresh token lifetime; 0 means 30 days.
	RefreshTokenTTL time.Duration
	// RatingAsObject answers a rating as {"satisfaction_rating":{...}}, as
	// real servers likely do, instead of the one-element array that the
	// docs and the OAS show (§3.2).
	RatingAsObject bool
	// UnverifiedAllowed lets an unverified end user (or an admin acting as
	// one) rate, open and update requests, as the impersonation page says
	// (§2). Without it such writes are refused with 403, as the ratings and
	// Requests references say (§3.1, §3.2).
	UnverifiedAllowed bool
	// ImpersonationIgnoredOnCreate makes POST /api/v2/requests ignore
	// X-On-Behalf-Of: the request is recorded as the token owner's (§2
	// does not say what Zendesk does when it will not impersonate).
	ImpersonationIgnoredOnCreate bool
	// CursorIgnoresSortBy makes cursor-paged lists (page[size], page[after]
	// or page[before] present) ignore sort_by and sort_order while still
	// honouring the cursor-style sort ("-created_at"): §3.2 says only that
	// sort_by with page[size] on /api/v2/requests is unconfirmed.
	CursorIgnoresSortBy bool
	// CursorIgnoresSort makes cursor-paged lists ignore every sort
	// parameter (sort, sort_by and sort_order) and list oldest first, so
	// that a client must check dates instead of trusting the first page to
	// be the newest (§3.2).
	CursorIgnoresSort bool
	// LegacyCSATOff refuses POST .../satisfaction_rating with 403 (§5).
	LegacyCSATOff bool
	// RevokeCurrentIgnored makes DELETE /api/v2/oauth/tokens/current.json
	// answer 204 without revoking anything.
	RevokeCurrentIgnored bool
}

// Faults are injected into /api/v2 calls (never /oauth) after
// authentication and before the handler.
type Faults struct {
	// Latency is added to every API call, outside any lock.
	Latency time.Duration
	// Jitter adds a uniform [0, Jitter) on top of Latency.
	Jitter time.Duration
	// Rate429 is the probability that a call starts a 429 burst.
	Rate429 float64
	// Burst429 is the number of calls in a row answered 429; 0 means 1.
	Burst429 int
	// Rate503 is the probability of a 503 with Retry-After.
	Rate503 float64
	// Rate5xx is the probability of a 500 or 502 without Retry-After.
	Rate5xx float64
	// RetryAfter is sent with injected 429 and 503, rounded up to whole
	// seconds; 0 means 1s.
	RetryAfter time.Duration
	// DropRate is the probability that the connection is closed with no
	// response at all, before the call reaches its handler.
	DropRate float64
	// DropAfterWriteRate is the probability that a write, once handled and
	// recorded (applied, or refused with a 4xx), gets no answer: the
	// connection is closed instead. It draws from the fault RNG only for
	// writes, after the handler ran.
	DropAfterWriteRate float64
}

// Client is a registered OAuth client (§1.1). Identifier is the client_id.
// A Public client has no secret and must use PKCE.
type Client struct {
	Identifier   string
	Secret       string
	Public       bool
	RedirectURIs []string
}

// Token describes an OAuth access token the sandbox issued.
type Token struct {
	ID           int64
	AccessToken  string
	RefreshToken string // empty for non-expiring (legacy) tokens
	Scope        string
	UserID       int64
	ExpiresAt    time.Time // zero when the token never expires
}

// Stats count what the sandbox saw since start or the last ResetStats.
type Stats struct {
	// Calls counts requests by "METHOD /normalized/path": ids become {id}
	// and ".json" is dropped, e.g. "GET /api/v2/users/show_many" or
	// "POST /api/v2/tickets/{id}/satisfaction_rating".
	Calls map[string]int
	// Throttled counts 429s given by the rate limiter (not injected ones).
	Throttled   int
	Injected429 int
	Injected503 int
	Injected5xx int
	Dropped     int
	// DroppedAfterWrite counts writes applied whose answer was dropped
	// (Faults.DropAfterWriteRate; not the AfterWrite hook's drops).
	DroppedAfterWrite int
	// Refreshes counts successful refresh_token grants.
	Refreshes int
	// Exchanges counts successful authorization_code grants.
	Exchanges int
	// Revocations counts tokens revoked through the API.
	Revocations int
}

// Write is one POST, PUT or DELETE on /api/v2 that reached a handler.
type Write struct {
	Time        time.Time
	Method      string
	Endpoint    string // normalized as in Stats.Calls
	Path        string // the real path
	TokenUserID int64  // whose token made the call (the admin)
	ActorID     int64  // whom Zendesk recorded the write under (the end user when impersonating)
	TicketID    int64  // the ticket or request affected (the new id for creates)
	Status      int    // the HTTP status answered
	Body        string // the request body as sent
	OnBehalfOf  string // the X-On-Behalf-Of header as sent ("" when absent)
}

// Sandbox is an http.Handler that behaves like one Zendesk account: OAuth
// endpoints under /oauth and the Support API under /api/v2, per
// zendesk-api.md. It is safe for concurrent use.
type Sandbox struct {
	now func() time.Time

	mu       sync.Mutex
	switches Switches
	faults   Faults
	rng      *rand.Rand // fault decisions
	jrng     *rand.Rand // latency jitter, separate so faults do not depend on Jitter
	burst    int        // remaining calls of an injected 429 burst

	limit  int
	bucket float64 // tokens in the rate-limit bucket
	cap    float64
	filled time.Time // when bucket was last refilled (real time)

	clients   map[string]*clientRec
	clientSeq int64

	users        map[int64]*User
	userIDs      []int64 // sorted
	usersByEmail map[string]int64

	tickets       map[int64]*Ticket
	byRequester   map[int64][]int64
	byCollab      map[int64][]int64
	nextTicketID  int64
	nextCommentID int64
	nextRatingID  int64

	codes     map[string]*authCode
	tokens    map[int64]*tokenRec
	byAccess  map[string]*tokenRec
	byRefresh map[string]*tokenRec
	tokenSeq  int64

	stats  Stats
	writes []Write
	hooks  Hooks

	rts []*route
}

type clientRec struct {
	Client
	id int64
}

// New returns a Sandbox for opts.
func New(opts Options) *Sandbox {
	s := &Sandbox{
		now:          opts.Now,
		switches:     opts.Switches,
		faults:       opts.Faults,
		rng:          rand.New(rand.NewPCG(uint64(opts.Seed), 0xfa17)),
		jrng:         rand.New(rand.NewPCG(uint64(opts.Seed), 0x1a7e)),
		clients:      map[string]*clientRec{},
		users:        map[int64]*User{},
		usersByEmail: map[string]int64{},
		tickets:      map[int64]*Ticket{},
		byRequester:  map[int64][]int64{},
		byCollab:     map[int64][]int64{},
		codes:        map[string]*authCode{},
		tokens:       map[int64]*tokenRec{},
		byAccess:     map[string]*tokenRec{},
		byRefresh:    map[string]*tokenRec{},
		stats:        Stats{Calls: map[string]int{}},
		nextRatingID: 9000,
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.rts = s.routes()
	s.setRateLimitLocked(opts.RateLimit, opts.RateBurst)
	for _, c := range opts.Clients {
		s.registerLocked(c)
	}
	data := opts.Data
	if data == nil {
		data = Demo()
	}
	s.load(data)
	return s
}

func (s *Sandbox) load(d *Data) {
	for i := range d.Users {
		u := d.Users[i]
		s.users[u.ID] = &u
		s.userIDs = append(s.userIDs, u.ID)
		s.usersByEmail[strings.ToLower(u.Email)] = u.ID
	}
	slices.Sort(s.userIDs)
	s.nextTicketID = 100
	s.nextCommentID = 1
	// One backing array for all ticket copies keeps New fast and small for
	// 100,000-ticket accounts.
	store := make([]Ticket, len(d.Tickets))
	for i := range d.Tickets {
		t := &store[i]
		*t = cloneTicket(&d.Tickets[i])
		s.tickets[t.ID] = t
		s.index(t)
		s.nextTicketID = max(s.nextTicketID, t.ID)
		for _, c := range t.Comments {
			s.nextCommentID = max(s.nextCommentID, c.ID)
		}
		if t.Rating != nil {
			s.nextRatingID = max(s.nextRatingID, t.Rating.ID)
		}
	}
}

func cloneTicket(t *Ticket) Ticket {
	c := *t
	c.CollaboratorIDs = slices.Clone(t.CollaboratorIDs)
	c.Comments = slices.Clone(t.Comments)
	if t.Rating != nil {
		r := *t.Rating
		c.Rating = &r
	}
	return c
}

func (s *Sandbox) index(t *Ticket) {
	s.byRequester[t.RequesterID] = append(s.byRequester[t.RequesterID], t.ID)
	for _, id := range t.CollaboratorIDs {
		s.byCollab[id] = append(s.byCollab[id], t.ID)
	}
}

func (s *Sandbox) unindex(t *Ticket) {
	s.byRequester[t.RequesterID] = slices.DeleteFunc(s.byRequester[t.RequesterID], func(id int64) bool { return id == t.ID })
	for _, c := range t.CollaboratorIDs {
		s.byCollab[c] = slices.DeleteFunc(s.byCollab[c], func(id int64) bool { return id == t.ID })
	}
}

// Server is a Sandbox listening on a loopback port.
type Server struct {
	*Sandbox
	// URL is the base URL, http://127.0.0.1:port, with no trailing slash.
	URL string
	srv *http.Server
	ln  net.Listener
}

// Start serves a new Sandbox for opts on 127.0.0.1 at a free port.
func Start(opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sandbox: listen: %w", err)
	}
	sb := New(opts)
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: opts.IdleTimeout}
	// Serve only returns once Close is called.
	go func() { _ = srv.Serve(ln) }()
	return &Server{Sandbox: sb, URL: "http://" + ln.Addr().String(), srv: srv, ln: ln}, nil
}

// Close stops the server at once, closing open connections.
func (s *Server) Close() error {
	if err := s.srv.Close(); err != nil {
		return fmt.Errorf("sandbox: close: %w", err)
	}
	return nil
}

// RegisterClient registers an OAuth client, replacing one with the same
// Identifier.
func (s *Sandbox) RegisterClient(c Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.registerLocked(c)
}

func (s *Sandbox) registerLocked(c Client) {
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	if old, ok := s.clients[c.Identifier]; ok {
		old.Client = c
		return
	}
	s.clientSeq++
	s.clients[c.Identifier] = &clientRec{Client: c, id: 360000000000 + s.clientSeq}
}

// SetSwitches replaces the switches; it takes effect for the next request.
func (s *Sandbox) SetSwitches(sw Switches) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.switches = sw
}

// SetFaults replaces the faults; the fault RNG keeps its sequence and any
// 429 burst in progress is ended.
func (s *Sandbox) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.burst = 0
}

// SetRateLimit changes the account's rate limit (0 means 700 per minute and
// a burst of max(1, perMinute/60)) and refills the bucket.
func (s *Sandbox) SetRateLimit(perMinute, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setRateLimitLocked(perMinute, burst)
}

func (s *Sandbox) setRateLimitLocked(perMinute, burst int) {
	if perMinute <= 0 {
		perMinute = 700
	}
	if burst <= 0 {
		burst = max(1, perMinute/60)
	}
	s.limit = perMinute
	s.cap = float64(burst)
	s.bucket = s.cap
	s.filled = time.Now()
}

// IssueToken issues an access token for the user with that email, without
// the OAuth dance. scope is space-separated, e.g. "read write impersonate".
// The token follows the ExpiringTokens switch and belongs to the first
// registered client (any client may refresh it when none is registered).
func (s *Sandbox) IssueToken(email, scope string) (Token, error) {
	scopes, err := parseScopes(scope)
	if err != nil {
		return Token{}, fmt.Errorf("sandbox: issue token: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.usersByEmail[strings.ToLower(email)]
	if !ok {
		return Token{}, fmt.Errorf("sandbox: issue token: no user %q", email)
	}
	client := ""
	var first int64
	for _, c := range s.clients {
		if first == 0 || c.id < first {
			first, client = c.id, c.Identifier
		}
	}
	return s.issueLocked(client, id, scopes).public(), nil
}

// ExpireAccessToken makes the access token expired now; its refresh token
// stays valid.
func (s *Sandbox) ExpireAccessToken(accessToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.byAccess[accessToken]; ok {
		t.expiresAt = s.now()
	}
}

// RevokeRefreshToken revokes a refresh token, so the next refresh with it
// gets invalid_grant. The access token is left alone.
func (s *Sandbox) RevokeRefreshToken(refreshToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.byRefresh[refreshToken]; ok {
		t.refreshDead = true
	}
}

// TokenActive reports whether the access token would be accepted now.
func (s *Sandbox) TokenActive(accessToken string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.byAccess[accessToken]
	return ok && t.activeAt(s.now())
}

// UserByEmail returns a copy of the user with that email (case-insensitive).
func (s *Sandbox) UserByEmail(email string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.usersByEmail[strings.ToLower(email)]
	if !ok {
		return User{}, false
	}
	return *s.users[id], true
}

// UserByID returns a copy of the user with that id.
func (s *Sandbox) UserByID(id int64) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// TicketByID returns a deep copy of the ticket with that id.
func (s *Sandbox) TicketByID(id int64) (Ticket, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tickets[id]
	if !ok {
		return Ticket{}, false
	}
	return cloneTicket(t), true
}

// UpdateTicket lets a test change a ticket's state; f gets a copy and the
// result is stored (the ID cannot change). Unknown ids are ignored.
func (s *Sandbox) UpdateTicket(id int64, f func(*Ticket)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tickets[id]
	if !ok {
		return
	}
	c := cloneTicket(t)
	f(&c)
	c.ID = id
	s.unindex(t)
	*t = c
	s.index(t)
}

// UpdateUser lets a test change a user; f gets a copy and the result is
// stored (the ID cannot change). Unknown ids are ignored.
func (s *Sandbox) UpdateUser(id int64, f func(*User)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return
	}
	c := *u
	f(&c)
	c.ID = id
	delete(s.usersByEmail, strings.ToLower(u.Email))
	*u = c
	s.usersByEmail[strings.ToLower(u.Email)] = id
}

// Stats returns a copy of the counters.
func (s *Sandbox) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Calls = maps.Clone(s.stats.Calls)
	return st
}

// Writes returns a copy of every POST, PUT and DELETE on /api/v2 that
// reached a handler, in order.
func (s *Sandbox) Writes() []Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.writes)
}

// ResetStats clears Stats and Writes.
func (s *Sandbox) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{Calls: map[string]int{}}
	s.writes = nil
}
