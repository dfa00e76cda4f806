package zendesk

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Client calls the Zendesk Support API of one account with one admin's
// token. A Client value is immutable: As returns a copy acting as someone
// else, so values can be shared freely between goroutines and two copies
// never see each other's acting user.
//
// The client retries only where Zendesk cannot have acted: a call refused
// with 401 because its token was replaced meanwhile is sent again with the
// new token (see TokenReloader), and a call whose pooled keep-alive
// connection was closed under it is sent once more if it was a read, or a
// write that never went out in full. Everything else is left to callers,
// who decide with Classify. It never follows redirects either: an API call
// that redirects is reported as ErrUnexpected, so the token and the acting
// user never travel elsewhere.
type Client struct {
	base       string // scheme://host[:port], no trailing slash
	hc         *http.Client
	ts         oauth2.TokenSource
	limiter    Limiter
	now        func() time.Time
	userAgent  string
	onBehalfOf string
	// writeTimeout bounds a write once it is sent; see send.
	writeTimeout time.Duration
	// idleConnTimeout is for the transport New builds; see
	// WithIdleConnTimeout.
	idleConnTimeout time.Duration
	// beforeWrite, when set, is asked immediately before a write goes on
	// the wire; see BeforeWrite.
	beforeWrite func(ctx context.Context) error
}

// DefaultWriteTimeout bounds how long a write may take once it has been
// sent, whatever the caller's deadline.
const DefaultWriteTimeout = 30 * time.Second

// WithWriteTimeout sets how long a write (POST, PUT, DELETE) may take once
// it is sent. A write in flight is not cut off by the caller's context: an
// abandoned write has an unknown outcome, which is what makes retries send
// things twice. Bulk workers set this below their job timeout.
func WithWriteTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.writeTimeout = d
		}
	}
}

// Option configures a Client in New.
type Option func(*Client)

// WithHTTPClient makes the client send its requests through hc (its
// Transport and Timeout are used; redirects are never followed regardless
// of hc.CheckRedirect). hc itself is not modified. If hc has no Transport,
// or Go's shared http.DefaultTransport, the client uses one from
// NewTransport instead, for the reason given there; a caller that wraps a
// transport (metrics) should wrap one from NewTransport.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// DefaultIdleConnTimeout is how long the client's transport keeps an idle
// keep-alive connection; see NewTransport.
const DefaultIdleConnTimeout = 4 * time.Second

// WithIdleConnTimeout sets how long the transport the client builds (see
// NewTransport) keeps an idle keep-alive connection; 0 or less keeps
// DefaultIdleConnTimeout. Set it below the idle timeout of the server or
// load balancer in front of Zendesk. It has no effect on a transport given
// with WithHTTPClient.
func WithIdleConnTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.idleConnTimeout = d
		}
	}
}

// NewTransport returns a transport for Zendesk calls: Go's default
// transport, except that a keep-alive connection idle for idle (0 or less
// means DefaultIdleConnTimeout) is closed.
//
// Servers and load balancers close keep-alive connections that stay idle
// beyond their own timeout (5 s is common, for example Node.js, uvicorn and
// Apache). Go's default transport keeps them for 90 s, so it may pick a
// pooled connection just as the server closes it. Go then retries a GET by
// itself, but not a POST or PUT; the client sends such a write again only
// if it had not gone out yet. Otherwise the write fails with no answer
// (ErrNetwork with NotSent false), and nobody can know whether Zendesk
// acted. Closing idle connections before the server does avoids that race:
// a connection is only reused while it is recent.
func NewTransport(idle time.Duration) *http.Transport {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	t.IdleConnTimeout = cmp.Or(max(idle, 0), DefaultIdleConnTimeout)
	return t
}

// WithLimiter makes the client wait on l before every request and report
// every response to it.
func WithLimiter(l Limiter) Option {
	return func(c *Client) { c.limiter = l }
}

// WithClock sets the clock used to interpret Retry-After dates when a
// response carries no Date header; tests use it.
func WithClock(now func() time.Time) Option {
	return func(c *Client) {
		if now != nil {
			c.now = now
		}
	}
}

// WithUserAgent sets the User-Agent header sent with every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// defaultTimeout bounds a call whose context has no deadline; Zendesk
// answers in well under a second, and a hung call must not hold a bulk
// worker forever.
const defaultTimeout = 60 * time.Second

// New returns a client for the Zendesk account at baseURL (for example
// https://acme.zendesk.com, or http://127.0.0.1:port for the sandbox),
// authenticating every call with a bearer token from ts. Wrap ts with
// oauth2.ReuseTokenSource (or a store-backed source) so tokens are cached and
// refreshed. baseURL must be https unless its host is loopback, because every
// call carries the admin's token.
func New(baseURL string, ts oauth2.TokenSource, opts ...Option) (*Client, error) {
	if ts == nil {
		return nil, errors.New("zendesk: new client: nil token source")
	}
	base, err := normalizeBaseURL(baseURL)
	if err != nil {
		return nil, fmt.Errorf("zendesk: new client: %w", err)
	}
	c := &Client{
		base:      base,
		ts:        ts,
		now:       time.Now,
		userAgent: "onbehalf-zendesk",
	}
	for _, o := range opts {
		o(c)
	}
	hc := http.Client{Timeout: defaultTimeout}
	if c.hc != nil {
		hc = *c.hc
	}
	if hc.Transport == nil || hc.Transport == http.DefaultTransport {
		hc.Transport = NewTransport(c.idleConnTimeout)
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	return c, nil
}

func normalizeBaseURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("base URL: %w", err)
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("base URL %q: want https://host", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return "", fmt.Errorf("base URL %q: want only a scheme and host", raw)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("base URL %q: http is only allowed for loopback hosts", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// As returns a copy of c that acts as the given end user (an email address
// or a numeric user id) by sending X-On-Behalf-Of on every call (§2). The
// empty string returns a copy acting as the token's owner. c is unchanged.
func (c *Client) As(user string) *Client {
	cp := *c
	cp.onBehalfOf = strings.TrimSpace(user)
	return &cp
}

// ErrWaitAgain, returned by a BeforeWrite check, sends the write back to the
// rate limiter instead of failing it: the check found a pause (a 429 seen
// elsewhere) begun while it ran.
var ErrWaitAgain = errors.New("zendesk: wait for the rate limit again")

// BeforeWrite returns a copy of c that calls check immediately before each
// write (POST, PUT, DELETE) goes on the wire: after the rate limiter's wait
// and the token fetch, when nothing stands between the check and the send.
// If check returns ErrWaitAgain the write waits for the limiter again and
// check is asked again (a client without a limiter fails the write instead); any other error means the write is not sent and the
// call returns that error (wrapped; errors.Is finds it). Bulk workers use
// it so that a run cancelled while a row waited in the throttle sends
// nothing more. c is unchanged; nil removes the check.
func (c *Client) BeforeWrite(check func(ctx context.Context) error) *Client {
	cp := *c
	cp.beforeWrite = check
	return &cp
}

// AsID is As for a numeric user id.
func (c *Client) AsID(id int64) *Client {
	return c.As(strconv.FormatInt(id, 10))
}

// ActingAs returns the user c acts as (email or id), or "" for the token's
// owner.
func (c *Client) ActingAs() string { return c.onBehalfOf }

// BaseURL returns the account's base URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// maxBody bounds how much of a response is read; the largest answer we ask
// for is 100 users or tickets.
const (
	maxBody      = 16 << 20
	maxErrorBody = 64 << 10
)

// call is one API request.
type call struct {
	method string
	path   string     // /api/v2/...
	query  url.Values // may be nil
	body   any        // JSON-encoded when not nil
}

// write reports whether the call may change something at Zendesk.
func (cl call) write() bool { return cl.method != http.MethodGet && cl.method != http.MethodHead }

// TokenReloader may be implemented by the TokenSource given to New.
//
// Zendesk rotates the token pair on every refresh, and the old access token
// stops working at once (zendesk-api.md §1.3). A request can therefore
// carry a token that a refresh elsewhere (another token source in this
// process, another replica) replaced while the request was on its way, and
// be refused with 401 although nothing is wrong. The client then asks
// ReloadToken for the token that replaced the refused one and sends the
// request again with it: a 401 means Zendesk did not act, so even a write
// may be sent again. A source that does not implement TokenReloader is
// asked Token instead.
type TokenReloader interface {
	// ReloadToken returns the token that replaced stale, which Zendesk has
	// just refused, or a token with stale's access token when nothing
	// replaced it: Zendesk's refusal then stands. It may wait, within ctx,
	// for a refresh under way to finish.
	ReloadToken(ctx context.Context, stale *oauth2.Token) (*oauth2.Token, error)
}

// maxTokenResends bounds how often one call is sent again with a replaced
// token; the token being replaced more often than that during one call
// means something else is wrong.
const maxTokenResends = 2

// do sends cl and decodes a 200/201 answer into out (unless out is nil).
// Every failure Zendesk or the network causes is an *Error; only a body that
// cannot be encoded, a BeforeWrite check or a limiter failing for a reason
// other than the context gives a plain error.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	resp, tok, err := c.exchange(ctx, cl)
	if err != nil {
		return err
	}
	defer closeBody(resp.Body)

	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated:
		if out == nil {
			return nil
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil {
			return c.networkError(cl, resp.StatusCode, err)
		}
		if err := json.Unmarshal(data, out); err != nil {
			return &Error{Kind: ErrUnexpected, Status: resp.StatusCode, Method: cl.method, Endpoint: cl.path,
				Description: "response is not the JSON Zendesk documents", cause: err}
		}
		return nil
	case http.StatusNoContent:
		return nil
	}
	return c.errorFromResponse(ctx, cl, resp, tok)
}

// exchange sends cl, and sends it again where Zendesk cannot have acted on
// it: after a 401 for a token that has been replaced since (see
// TokenReloader), and once when a pooled keep-alive connection failed under
// it (see Error.droppedIdle). A write that went out in full and got no
// answer is never sent again here: Zendesk may have acted on it.
// It returns the answer and the token it was given for.
func (c *Client) exchange(ctx context.Context, cl call) (*http.Response, *oauth2.Token, error) {
	var tok *oauth2.Token // nil: ask the token source
	resends, connRetried := 0, false
	for {
		resp, used, err := c.send(ctx, cl, c.onBehalfOf, tok)
		if err != nil {
			var e *Error
			if !connRetried && errors.As(err, &e) && e.droppedIdle(cl.write()) && ctx.Err() == nil {
				connRetried = true
				continue
			}
			return nil, nil, err
		}
		if resp.StatusCode != http.StatusUnauthorized || resends == maxTokenResends {
			return resp, used, nil
		}
		fresh, err := c.reloadToken(ctx, used)
		if err != nil {
			closeBody(resp.Body)
			return nil, nil, tokenSourceError(cl.method, cl.path, err)
		}
		if fresh.AccessToken == used.AccessToken {
			return resp, used, nil
		}
		closeBody(resp.Body)
		tok, resends = fresh, resends+1
	}
}

// reloadToken asks the token source for the token that replaced stale; see
// TokenReloader.
func (c *Client) reloadToken(ctx context.Context, stale *oauth2.Token) (*oauth2.Token, error) {
	var (
		tok *oauth2.Token
		err error
	)
	if r, ok := c.ts.(TokenReloader); ok {
		tok, err = r.ReloadToken(ctx, stale)
	} else {
		tok, err = c.ts.Token()
	}
	if err != nil {
		return nil, err
	}
	if tok == nil || tok.AccessToken == "" {
		return stale, nil
	}
	return tok, nil
}

// send waits for the limiter, sends the request with the token (tok, or
// one from the token source when tok is nil) and acting user, and reports
// the response to the limiter. It returns the token it used, so that error
// text can be scrubbed of it and a 401 can be judged against it. The caller
// closes the body.
func (c *Client) send(ctx context.Context, cl call, actingAs string, tok *oauth2.Token) (*http.Response, *oauth2.Token, error) {
	if strings.ContainsFunc(actingAs, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		// Without this the transport would refuse the header and the call
		// would look like a (retryable) network error.
		return nil, nil, &Error{Kind: ErrBadRequest, Method: cl.method, Endpoint: cl.path, NotSent: true,
			Description: "the acting user contains control characters"}
	}
	var body []byte
	if cl.body != nil {
		var err error
		body, err = json.Marshal(cl.body)
		if err != nil {
			return nil, nil, fmt.Errorf("zendesk: %s %s: encode body: %w", cl.method, cl.path, err)
		}
	}
	target := c.base + cl.path
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, c.notSentError(cl, err)
	}
	given := tok
	for {
		if c.limiter != nil {
			if err := c.limiter.Wait(ctx); err != nil {
				if isTransportError(err) {
					return nil, nil, c.notSentError(cl, err)
				}
				return nil, nil, fmt.Errorf("zendesk: %s %s: rate limiter: %w", cl.method, cl.path, err)
			}
		}
		// The token is fetched after the wait so that a long wait cannot
		// leave us holding a token that expired meanwhile.
		if given == nil {
			var err error
			tok, err = c.ts.Token()
			if err != nil {
				return nil, nil, tokenSourceError(cl.method, cl.path, err)
			}
			if tok == nil || tok.AccessToken == "" {
				return nil, nil, &Error{Kind: ErrTokenInvalid, Method: cl.method, Endpoint: cl.path, NotSent: true,
					Description: "the token source returned no access token"}
			}
		}
		// Fetching the token may have taken a while (a refresh); a 429
		// that arrived meanwhile pauses this request too (§4.2).
		if c.limiter != nil && c.limiter.Delay() > 0 {
			continue
		}
		if cl.write() && c.beforeWrite != nil {
			err := c.beforeWrite(ctx)
			// Without a limiter there is nothing to wait for: asking again
			// at once would spin, so the write fails instead.
			if errors.Is(err, ErrWaitAgain) && c.limiter != nil {
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("zendesk: %s %s: not sent: %w", cl.method, cl.path, err)
			}
		}
		break
	}
	write := cl.write()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	// Reads follow the caller's context. A write, once the wait is over
	// and it goes out, runs on its own deadline: cancelling it half-way
	// would leave Zendesk's answer unknown (it may have acted), so it is
	// allowed to finish and its answer is returned.
	reqCtx, cancel := ctx, context.CancelFunc(func() {})
	if write {
		reqCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), cmp.Or(c.writeTimeout, DefaultWriteTimeout))
	}
	trace := &connTrace{}
	reqCtx = httptrace.WithClientTrace(reqCtx, trace.hooks())
	req, err := http.NewRequestWithContext(reqCtx, cl.method, target, rd)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("zendesk: %s %s: build request: %w", cl.method, cl.path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if actingAs != "" {
		req.Header.Set("X-On-Behalf-Of", actingAs)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		cancel()
		e := c.networkError(cl, 0, err)
		e.conn = trace.info()
		e.NotSent = e.conn.traced && !e.conn.wrote && !e.conn.answered
		return nil, nil, e
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	if c.limiter != nil {
		c.limiter.Observe(parseRateInfo(resp.StatusCode, cl.path, resp.Header, c.now()))
	}
	return resp, tok, nil
}

// connTrace follows one request through the transport with
// net/http/httptrace, so that a transport failure can tell whether the
// request went out and on what connection. If the transport retries by
// itself, the connection is the last attempt's and the request counts as
// written if any attempt wrote it.
type connTrace struct {
	mu sync.Mutex
	c  connInfo
}

// connInfo is what a connTrace saw.
type connInfo struct {
	// traced: the transport asked for a connection, so it reports to
	// httptrace and the other fields can be believed.
	traced   bool
	reused   bool          // a pooled keep-alive connection was used
	idle     time.Duration // how long it had been idle in the pool
	wrote    bool          // the whole request was written
	answered bool          // a byte of the answer arrived
}

func (t *connTrace) hooks() *httptrace.ClientTrace {
	update := func(f func(*connInfo)) {
		t.mu.Lock()
		f(&t.c)
		t.mu.Unlock()
	}
	return &httptrace.ClientTrace{
		GetConn: func(string) {
			update(func(c *connInfo) { c.traced, c.reused, c.idle = true, false, 0 })
		},
		GotConn: func(info httptrace.GotConnInfo) {
			update(func(c *connInfo) { c.reused, c.idle = info.Reused, info.IdleTime })
		},
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				update(func(c *connInfo) { c.wrote = true })
			}
		},
		GotFirstResponseByte: func() { update(func(c *connInfo) { c.answered = true }) },
	}
}

func (t *connTrace) info() connInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.c
}

// cancelOnClose releases a request's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// networkError wraps a transport failure. A *url.Error is rebuilt without
// the query string (it may hold search terms or emails) but stays
// inspectable with errors.As, Timeout() and errors.Is(context.DeadlineExceeded).
func (c *Client) networkError(cl call, status int, err error) *Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: c.base + cl.path, Err: ue.Err}
	}
	return &Error{Kind: ErrNetwork, Status: status, Method: cl.method, Endpoint: cl.path, cause: err}
}

// notSentError is a network-kind failure (a context that ended) that
// struck before the request went out.
func (c *Client) notSentError(cl call, err error) *Error {
	e := c.networkError(cl, 0, err)
	e.NotSent = true
	return e
}

// errorFromResponse turns a non-success answer, given for tok, into an *Error.
func (c *Client) errorFromResponse(ctx context.Context, cl call, resp *http.Response, tok *oauth2.Token) *Error {
	token := tok.AccessToken
	e := &Error{Kind: kindForStatus(resp.StatusCode), Status: resp.StatusCode, Method: cl.method, Endpoint: cl.path}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err == nil {
		// A proxy or a debugging server may echo request headers; the
		// token must not reach logs or pages through our error text. The
		// raw body is scrubbed before parsing, which may cut long text.
		if len(token) >= 4 {
			data = bytes.ReplaceAll(data, []byte(token), []byte("[redacted]"))
		}
		parseErrorBody(e, resp.Header.Get("Content-Type"), data)
		e.redact(token)
	}
	switch e.Kind {
	case ErrRateLimited:
		info := parseRateInfo(resp.StatusCode, cl.path, resp.Header, c.now())
		e.RetryAfter = info.RetryAfter
		if e.RetryAfter == 0 {
			e.RetryAfter = info.Reset
		}
	case ErrUnavailable:
		// Only a 503 is Zendesk saying "come back later" (§4.2); other 5xx
		// are failures to back off from, whatever headers they carry.
		if resp.StatusCode == http.StatusServiceUnavailable {
			e.RetryAfter = parseRateInfo(resp.StatusCode, cl.path, resp.Header, c.now()).RetryAfter
		}
	case ErrForbidden:
		forbiddenHint(e, cl.method, c.onBehalfOf)
	case ErrTokenInvalid:
		if c.onBehalfOf != "" && c.tokenAlive(ctx, tok) {
			// §2: Zendesk answers an unknown X-On-Behalf-Of user with the
			// same 401 invalid_token as a dead token; the token just worked
			// without the header, so the user is the problem.
			e.Kind = ErrUnknownUser
		}
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		e.Description = "Zendesk answered with a redirect, which the client does not follow"
	}
	return e
}

// tokenAlive reports whether tok still works without X-On-Behalf-Of, by
// asking /api/v2/users/me. It must be the very token that was refused: a
// fresher one from the token source would work and turn a token replaced
// by a refresh into an "unknown user". Only a 401 counts as dead; if the
// probe fails for another reason we keep §2's reading of the original 401
// (unknown user).
func (c *Client) tokenAlive(ctx context.Context, tok *oauth2.Token) bool {
	resp, _, err := c.send(ctx, call{method: http.MethodGet, path: "/api/v2/users/me"}, "", tok)
	if err != nil {
		var e *Error
		return !(errors.As(err, &e) && e.Kind == ErrTokenInvalid)
	}
	defer closeBody(resp.Body)
	return resp.StatusCode != http.StatusUnauthorized
}

// closeBody drains a little of the body so the connection can be reused.
func closeBody(b io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(b, 64<<10))
	_ = b.Close()
}
