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
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Client calls the Zendesk Support API of one account with one admin's
// token. A Client value is immutable: As returns a copy acting as someone
// else, so values can be shared freely between goroutines and two copies
// never see each other's acting user.
//
// The client never retries; callers decide with Classify. It never follows
// redirects either: an API call that redirects is reported as
// ErrUnexpected, so the token and the acting user never travel elsewhere.
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
// of hc.CheckRedirect). hc itself is not modified.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
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
		hc:        &http.Client{Timeout: defaultTimeout},
		ts:        ts,
		now:       time.Now,
		userAgent: "onbehalf-zendesk",
	}
	for _, o := range opts {
		o(c)
	}
	hc := *c.hc
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

// do sends cl and decodes a 200/201 answer into out (unless out is nil).
// Every failure Zendesk or the network causes is an *Error; only a body that
// cannot be encoded or a limiter failing for a reason other than the context
// gives a plain error.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	resp, token, err := c.send(ctx, cl, c.onBehalfOf)
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
	return c.errorFromResponse(ctx, cl, resp, token)
}

// send waits for the limiter, sends the request with the token and acting
// user, and reports the response to the limiter. It returns the access token
// it used so that error text can be scrubbed of it. The caller closes the
// body.
func (c *Client) send(ctx context.Context, cl call, actingAs string) (resp *http.Response, token string, err error) {
	if strings.ContainsFunc(actingAs, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		// Without this the transport would refuse the header and the call
		// would look like a (retryable) network error.
		return nil, "", &Error{Kind: ErrBadRequest, Method: cl.method, Endpoint: cl.path,
			Description: "the acting user contains control characters"}
	}
	var body []byte
	if cl.body != nil {
		var err error
		body, err = json.Marshal(cl.body)
		if err != nil {
			return nil, "", fmt.Errorf("zendesk: %s %s: encode body: %w", cl.method, cl.path, err)
		}
	}
	target := c.base + cl.path
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}
	if err := ctx.Err(); err != nil {
		return nil, "", c.networkError(cl, 0, err)
	}
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			if isTransportError(err) {
				return nil, "", c.networkError(cl, 0, err)
			}
			return nil, "", fmt.Errorf("zendesk: %s %s: rate limiter: %w", cl.method, cl.path, err)
		}
	}
	// The token is fetched after the wait so that a long wait cannot leave
	// us holding a token that expired meanwhile.
	tok, err := c.ts.Token()
	if err != nil {
		return nil, "", tokenSourceError(cl.method, cl.path, err)
	}
	if tok == nil || tok.AccessToken == "" {
		return nil, "", &Error{Kind: ErrTokenInvalid, Method: cl.method, Endpoint: cl.path,
			Description: "the token source returned no access token"}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	// Reads follow the caller's context. A write, once the wait is over
	// and it goes out, runs on its own deadline: cancelling it half-way
	// would leave Zendesk's answer unknown (it may have acted), so it is
	// allowed to finish and its answer is returned.
	reqCtx, cancel := ctx, context.CancelFunc(func() {})
	if cl.method != http.MethodGet && cl.method != http.MethodHead {
		reqCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), cmp.Or(c.writeTimeout, DefaultWriteTimeout))
	}
	req, err := http.NewRequestWithContext(reqCtx, cl.method, target, rd)
	if err != nil {
		cancel()
		return nil, "", fmt.Errorf("zendesk: %s %s: build request: %w", cl.method, cl.path, err)
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
	resp, err = c.hc.Do(req)
	if err != nil {
		cancel()
		return nil, "", c.networkError(cl, 0, err)
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	if c.limiter != nil {
		c.limiter.Observe(parseRateInfo(resp.StatusCode, cl.path, resp.Header, c.now()))
	}
	return resp, tok.AccessToken, nil
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

// errorFromResponse turns a non-success answer into an *Error.
func (c *Client) errorFromResponse(ctx context.Context, cl call, resp *http.Response, token string) *Error {
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
		if c.onBehalfOf != "" && c.tokenAlive(ctx) {
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

// tokenAlive reports whether the token still works without X-On-Behalf-Of,
// by asking /api/v2/users/me. Only a 401 counts as dead; if the probe fails
// for another reason we keep §2's reading of the original 401 (unknown user).
func (c *Client) tokenAlive(ctx context.Context) bool {
	resp, _, err := c.send(ctx, call{method: http.MethodGet, path: "/api/v2/users/me"}, "")
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
