package zendesk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/onbehalf/onbehalf/zendesk"
)

const testToken = "tok-SECRET-0123456789abcdef"

// newTestClient serves h on loopback and returns a client for it.
func newTestClient(t *testing.T, h http.Handler, opts ...zendesk.Option) *zendesk.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return mustNew(t, srv.URL, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: testToken}), opts...)
}

func mustNew(t *testing.T, base string, ts oauth2.TokenSource, opts ...zendesk.Option) *zendesk.Client {
	t.Helper()
	c, err := zendesk.New(base, ts, opts...)
	if err != nil {
		t.Fatalf("zendesk.New(%q): %v", base, err)
	}
	return c
}

// mustZendeskError asserts err is a *zendesk.Error and returns it.
func mustZendeskError(t *testing.T, err error) *zendesk.Error {
	t.Helper()
	var ze *zendesk.Error
	if !errors.As(err, &ze) {
		t.Fatalf("error %v (%T) is not a *zendesk.Error", err, err)
	}
	return ze
}

// recordingLimiter counts Wait calls and keeps every RateInfo observed.
type recordingLimiter struct {
	mu    sync.Mutex
	waits int
	infos []zendesk.RateInfo
	err   error
}

func (l *recordingLimiter) Wait(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waits++
	return l.err
}

func (l *recordingLimiter) Delay() time.Duration { return 0 }

func (l *recordingLimiter) Observe(info zendesk.RateInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.infos = append(l.infos, info)
}

func (l *recordingLimiter) snapshot() (int, []zendesk.RateInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waits, append([]zendesk.RateInfo(nil), l.infos...)
}

const forbiddenBody = `{"error":{"title":"Forbidden","message":"You do not have access to this page. Please contact the account owner of this help desk for further help."}}`

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	type want struct {
		kind         zendesk.Kind
		status       int
		code, title  string
		description  string
		details      map[string][]zendesk.FieldError
		retryAfter   time.Duration
		missingScope string
	}
	tests := []struct {
		name     string
		write    bool   // CreateRequest instead of ShowUser
		actingAs string // X-On-Behalf-Of
		status   int
		ctype    string
		body     string
		header   map[string]string
		probe    int // status of the /users/me probe without the header
		want     want
	}{
		{
			name: "400 errors array", status: 400, ctype: "application/json",
			body: `{"errors":[{"code":"InvalidPaginationDepth","title":"Pagination requests using Offset Pagination are limited"}]}`,
			want: want{kind: zendesk.ErrBadRequest, status: 400, code: "InvalidPaginationDepth", title: "Pagination requests using Offset Pagination are limited"},
		},
		{
			name: "400 errors array with several items", status: 400, ctype: "application/json",
			body: `{"errors":[{"code":"A","title":"first"},{"code":"B","title":"second"}]}`,
			want: want{kind: zendesk.ErrBadRequest, status: 400, code: "A", title: "first",
				details: map[string][]zendesk.FieldError{"errors": {{Description: "second", Error: "B"}}}},
		},
		{
			name: "400 idempotency string shape", status: 400, ctype: "application/json",
			body: `{"error":"IdempotentRequestError","description":"Request parameters don't match the given idempotency key"}`,
			want: want{kind: zendesk.ErrBadRequest, status: 400, code: "IdempotentRequestError", description: "Request parameters don't match the given idempotency key"},
		},
		{
			name: "400 text/plain", status: 400, ctype: "text/plain; charset=utf-8",
			body: "Bad request:\n  ids too long\n",
			want: want{kind: zendesk.ErrBadRequest, status: 400, description: "Bad request: ids too long"},
		},
		{
			name: "401 invalid_token", status: 401, ctype: "application/json",
			header: map[string]string{"WWW-Authenticate": `Bearer realm="Zendesk::OAuth Bearer Token Authentication", error="invalid_token"`},
			body:   `{"error":"invalid_token","error_description":"The access token provided is expired, revoked, malformed or invalid for other reasons."}`,
			want: want{kind: zendesk.ErrTokenInvalid, status: 401, code: "invalid_token",
				description: "The access token provided is expired, revoked, malformed or invalid for other reasons."},
		},
		{
			name: "401 basic auth sentence", status: 401, ctype: "application/json",
			body: `{"error":"Couldn't authenticate you"}`,
			want: want{kind: zendesk.ErrTokenInvalid, status: 401, description: "Couldn't authenticate you"},
		},
		{
			name: "401 while impersonating, token alive", actingAs: "nobody@example.com", probe: 200, status: 401, ctype: "application/json",
			body: `{"error":"invalid_token","error_description":"x"}`,
			want: want{kind: zendesk.ErrUnknownUser, status: 401, code: "invalid_token", description: "x"},
		},
		{
			name: "401 while impersonating, token alive but lacks read", actingAs: "nobody@example.com", probe: 403, status: 401, ctype: "application/json",
			body: `{"error":"invalid_token","error_description":"x"}`,
			want: want{kind: zendesk.ErrUnknownUser, status: 401, code: "invalid_token", description: "x"},
		},
		{
			name: "401 while impersonating, token dead", actingAs: "bea@example.com", probe: 401, status: 401, ctype: "application/json",
			body: `{"error":"invalid_token","error_description":"x"}`,
			want: want{kind: zendesk.ErrTokenInvalid, status: 401, code: "invalid_token", description: "x"},
		},
		{
			name: "403 nested on read", status: 403, ctype: "application/json", body: forbiddenBody,
			want: want{kind: zendesk.ErrForbidden, status: 403, title: "Forbidden", missingScope: "read",
				description: "You do not have access to this page. Please contact the account owner of this help desk for further help."},
		},
		{
			name: "403 nested on write while impersonating", write: true, actingAs: "10", status: 403, ctype: "application/json", body: forbiddenBody,
			want: want{kind: zendesk.ErrForbidden, status: 403, title: "Forbidden", missingScope: "write",
				description: "You do not have access to this page. Please contact the account owner of this help desk for further help."},
		},
		{
			name: "403 empty body", write: true, status: 403,
			want: want{kind: zendesk.ErrForbidden, status: 403, missingScope: "write"},
		},
		{
			name: "404 RecordNotFound", status: 404, ctype: "application/json", body: `{"error":"RecordNotFound","description":"Not found"}`,
			want: want{kind: zendesk.ErrNotFound, status: 404, code: "RecordNotFound", description: "Not found"},
		},
		{
			name: "404 InvalidEndpoint", status: 404, ctype: "application/json", body: `{"error":"InvalidEndpoint","description":"Not found"}`,
			want: want{kind: zendesk.ErrNotFound, status: 404, code: "InvalidEndpoint", description: "Not found"},
		},
		{
			name: "422 RecordInvalid with details", write: true, status: 422, ctype: "application/json",
			body: `{"error":"RecordInvalid","description":"Record validation errors","details":{"status":[{"description":"Status: closed prevents ticket update"}],"base":[{"description":"Comment: Body required","error":"BlankValue"},"plain string"]}}`,
			want: want{kind: zendesk.ErrValidation, status: 422, code: "RecordInvalid", description: "Record validation errors",
				details: map[string][]zendesk.FieldError{
					"status": {{Description: "Status: closed prevents ticket update"}},
					"base":   {{Description: "Comment: Body required", Error: "BlankValue"}, {Description: "plain string"}},
				}},
		},
		{
			name: "429 Retry-After seconds", status: 429, ctype: "application/json", body: `{"error":"TooManyRequests"}`,
			header: map[string]string{"Retry-After": "7"},
			want:   want{kind: zendesk.ErrRateLimited, status: 429, code: "TooManyRequests", retryAfter: 7 * time.Second},
		},
		{
			name: "429 without Retry-After falls back to ratelimit-reset", status: 429, ctype: "text/plain", body: "Too Many Requests",
			header: map[string]string{"ratelimit-reset": "30"},
			want:   want{kind: zendesk.ErrRateLimited, status: 429, description: "Too Many Requests", retryAfter: 30 * time.Second},
		},
		{
			name: "503 Retry-After HTTP date", status: 503, ctype: "text/html", body: "<html><body>Maintenance</body></html>",
			header: map[string]string{"Date": "Wed, 21 Oct 2015 07:28:00 GMT", "Retry-After": "Wed, 21 Oct 2015 07:28:45 GMT"},
			want:   want{kind: zendesk.ErrUnavailable, status: 503, retryAfter: 45 * time.Second},
		},
		{
			name: "500 ignores Retry-After", status: 500, ctype: "application/json", body: `{"error":"InternalError","description":"Oops"}`,
			header: map[string]string{"Retry-After": "5"},
			want:   want{kind: zendesk.ErrUnavailable, status: 500, code: "InternalError", description: "Oops"},
		},
		{
			name: "502 html page", status: 502, ctype: "text/html", body: "<html>Bad gateway</html>",
			want: want{kind: zendesk.ErrUnavailable, status: 502},
		},
		{
			name: "409 conflict", write: true, status: 409, ctype: "application/json", body: `{"error":"Conflict","description":"busy"}`,
			want: want{kind: zendesk.ErrUnexpected, status: 409, code: "Conflict", description: "busy"},
		},
		{
			name: "redirect not followed", status: 302, header: map[string]string{"Location": "https://evil.example/steal"},
			want: want{kind: zendesk.ErrUnexpected, status: 302, description: "Zendesk answered with a redirect, which the client does not follow"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var probes atomic.Int32
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/api/v2/users/me" && r.Header.Get("X-On-Behalf-Of") == "" {
					probes.Add(1)
					w.WriteHeader(tt.probe)
					fmt.Fprint(w, `{"user":{"id":1,"role":"admin"}}`)
					return
				}
				if got := r.Header.Get("X-On-Behalf-Of"); got != tt.actingAs {
					t.Errorf("X-On-Behalf-Of = %q, want %q", got, tt.actingAs)
				}
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				if tt.ctype != "" {
					w.Header().Set("Content-Type", tt.ctype)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			c := newTestClient(t, h).As(tt.actingAs)
			var err error
			if tt.write {
				_, err = c.CreateRequest(t.Context(), zendesk.NewRequest{Subject: "s", Body: "b"})
			} else {
				_, err = c.ShowUser(t.Context(), 5)
			}
			ze := mustZendeskError(t, err)
			got := want{kind: ze.Kind, status: ze.Status, code: ze.Code, title: ze.Title, description: ze.Description,
				details: ze.Details, retryAfter: ze.RetryAfter, missingScope: ze.MissingScope}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("error fields (-want +got):\n%s", diff)
			}
			if !errors.Is(err, tt.want.kind) {
				t.Errorf("errors.Is(err, %v) = false", tt.want.kind)
			}
			for _, other := range allKinds {
				if other != tt.want.kind && errors.Is(err, other) {
					t.Errorf("errors.Is(err, %v) = true, want only %v", other, tt.want.kind)
				}
			}
			wantProbes := int32(0)
			if tt.probe != 0 {
				wantProbes = 1
			}
			if got := probes.Load(); got != wantProbes {
				t.Errorf("users/me probes = %d, want %d", got, wantProbes)
			}
			if ze.Kind == zendesk.ErrForbidden && ze.Hint == "" {
				t.Error("403 without a Hint")
			}
			wantMethod, wantPath := "GET", "/api/v2/users/5"
			if tt.write {
				wantMethod, wantPath = "POST", "/api/v2/requests"
			}
			if ze.Method != wantMethod || ze.Endpoint != wantPath {
				t.Errorf("Method, Endpoint = %q, %q; want %q, %q", ze.Method, ze.Endpoint, wantMethod, wantPath)
			}
			if !strings.Contains(err.Error(), wantMethod+" "+wantPath) {
				t.Errorf("Error() = %q, want it to name %s %s", err.Error(), wantMethod, wantPath)
			}
		})
	}
}

var allKinds = []zendesk.Kind{
	zendesk.ErrBadRequest, zendesk.ErrTokenInvalid, zendesk.ErrUnknownUser, zendesk.ErrForbidden, zendesk.ErrNotFound,
	zendesk.ErrValidation, zendesk.ErrRateLimited, zendesk.ErrUnavailable, zendesk.ErrNetwork, zendesk.ErrUnexpected,
}

func TestSuccessBodyNotJSONIsUnexpected(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html>login page</html>")
	}))
	_, err := c.ShowTicket(t.Context(), 1)
	if ze := mustZendeskError(t, err); ze.Kind != zendesk.ErrUnexpected || ze.Status != 200 {
		t.Errorf("got kind %v status %d, want unexpected 200", ze.Kind, ze.Status)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		want      zendesk.Transience
		wantWait  time.Duration
		retryable bool
	}{
		{"429 with Retry-After", &zendesk.Error{Kind: zendesk.ErrRateLimited, Status: 429, RetryAfter: 3 * time.Second}, zendesk.WaitAndRetry, 3 * time.Second, true},
		{"429 without Retry-After", &zendesk.Error{Kind: zendesk.ErrRateLimited, Status: 429}, zendesk.WaitAndRetry, zendesk.DefaultRetryAfter, true},
		{"503 with Retry-After", &zendesk.Error{Kind: zendesk.ErrUnavailable, Status: 503, RetryAfter: time.Second}, zendesk.WaitAndRetry, time.Second, true},
		{"503 without Retry-After", &zendesk.Error{Kind: zendesk.ErrUnavailable, Status: 503}, zendesk.BackoffAndRetry, 0, true},
		{"500", &zendesk.Error{Kind: zendesk.ErrUnavailable, Status: 500}, zendesk.BackoffAndRetry, 0, true},
		{"network", &zendesk.Error{Kind: zendesk.ErrNetwork}, zendesk.BackoffAndRetry, 0, true},
		{"wrapped network", fmt.Errorf("actions: rate: %w", &zendesk.Error{Kind: zendesk.ErrNetwork}), zendesk.BackoffAndRetry, 0, true},
		{"409", &zendesk.Error{Kind: zendesk.ErrUnexpected, Status: 409}, zendesk.BackoffAndRetry, 0, true},
		{"other unexpected", &zendesk.Error{Kind: zendesk.ErrUnexpected, Status: 200}, zendesk.Permanent, 0, false},
		{"422", &zendesk.Error{Kind: zendesk.ErrValidation, Status: 422}, zendesk.Permanent, 0, false},
		{"403", &zendesk.Error{Kind: zendesk.ErrForbidden, Status: 403}, zendesk.Permanent, 0, false},
		{"404", &zendesk.Error{Kind: zendesk.ErrNotFound, Status: 404}, zendesk.Permanent, 0, false},
		{"401", &zendesk.Error{Kind: zendesk.ErrTokenInvalid, Status: 401}, zendesk.Permanent, 0, false},
		{"unknown user", &zendesk.Error{Kind: zendesk.ErrUnknownUser, Status: 401}, zendesk.Permanent, 0, false},
		{"400", &zendesk.Error{Kind: zendesk.ErrBadRequest, Status: 400}, zendesk.Permanent, 0, false},
		{"foreign error", errors.New("boom"), zendesk.Permanent, 0, false},
		{"nil", nil, zendesk.Permanent, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, wait := zendesk.Classify(tt.err)
			if got != tt.want || wait != tt.wantWait {
				t.Errorf("Classify = %v, %v; want %v, %v", got, wait, tt.want, tt.wantWait)
			}
			if r := zendesk.IsRetryable(tt.err); r != tt.retryable {
				t.Errorf("IsRetryable = %v, want %v", r, tt.retryable)
			}
			d, ok := zendesk.RetryAfter(tt.err)
			var ze *zendesk.Error
			wantD := time.Duration(0)
			if errors.As(tt.err, &ze) {
				wantD = ze.RetryAfter
			}
			if d != wantD || ok != (wantD > 0) {
				t.Errorf("RetryAfter = %v, %v; want %v, %v", d, ok, wantD, wantD > 0)
			}
		})
	}
}

func TestRateInfoParsing(t *testing.T) {
	t.Parallel()
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		status int
		header map[string]string
		noDate bool
		want   zendesk.RateInfo
	}{
		{"absent", 200, nil, false, zendesk.RateInfo{Status: 200, Limit: -1, Remaining: -1}},
		{"x-rate-limit", 200, map[string]string{"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "699"}, false,
			zendesk.RateInfo{Status: 200, Limit: 700, Remaining: 699}},
		{"ratelimit-* only", 200, map[string]string{"ratelimit-limit": "400", "ratelimit-remaining": "0", "ratelimit-reset": "41"}, false,
			zendesk.RateInfo{Status: 200, Limit: 400, Remaining: 0, Reset: 41 * time.Second}},
		{"x-rate-limit wins", 200, map[string]string{"X-Rate-Limit": "700", "ratelimit-limit": "400", "X-Rate-Limit-Remaining": "5", "ratelimit-remaining": "3"}, false,
			zendesk.RateInfo{Status: 200, Limit: 700, Remaining: 5}},
		{"garbage ignored", 200, map[string]string{"X-Rate-Limit": "lots", "X-Rate-Limit-Remaining": "-3", "ratelimit-reset": "soon", "Retry-After": "never"}, false,
			zendesk.RateInfo{Status: 200, Limit: -1, Remaining: -1}},
		{"429 retry-after seconds", 429, map[string]string{"Retry-After": "12"}, false,
			zendesk.RateInfo{Status: 429, Limit: -1, Remaining: -1, RetryAfter: 12 * time.Second}},
		{"503 retry-after date against Date header", 503, map[string]string{"Date": "Sun, 01 Mar 2026 11:00:00 GMT", "Retry-After": "Sun, 01 Mar 2026 11:01:30 GMT"}, false,
			zendesk.RateInfo{Status: 503, Limit: -1, Remaining: -1, RetryAfter: 90 * time.Second}},
		{"retry-after date against clock without Date header", 503, map[string]string{"Retry-After": "Sun, 01 Mar 2026 12:00:20 GMT"}, true,
			zendesk.RateInfo{Status: 503, Limit: -1, Remaining: -1, RetryAfter: 20 * time.Second}},
		{"retry-after date in the past", 503, map[string]string{"Retry-After": "Sun, 01 Mar 2026 11:00:00 GMT"}, true,
			zendesk.RateInfo{Status: 503, Limit: -1, Remaining: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lim := &recordingLimiter{}
			c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				if tt.noDate {
					w.Header()["Date"] = nil
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, `{"ticket":{"id":9}}`)
			}), zendesk.WithLimiter(lim), zendesk.WithClock(func() time.Time { return clock }))
			_, _ = c.ShowTicket(t.Context(), 9)
			waits, infos := lim.snapshot()
			if waits != 1 || len(infos) != 1 {
				t.Fatalf("limiter saw %d waits and %d observations, want 1 and 1", waits, len(infos))
			}
			tt.want.Endpoint = "/api/v2/tickets/9"
			if diff := cmp.Diff(tt.want, infos[0]); diff != "" {
				t.Errorf("RateInfo (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLimiterErrorStopsTheCall(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	tests := []struct {
		name     string
		err      error
		wantKind zendesk.Kind // "" for a plain error
	}{
		{"deadline", context.DeadlineExceeded, zendesk.ErrNetwork},
		{"other", errors.New("limiter closed"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }),
				zendesk.WithLimiter(&recordingLimiter{err: tt.err}))
			_, err := c.Me(t.Context())
			if !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want it to wrap %v", err, tt.err)
			}
			var ze *zendesk.Error
			if tt.wantKind == "" && errors.As(err, &ze) {
				t.Errorf("err is a *zendesk.Error (%v), want a plain error", ze.Kind)
			}
			if tt.wantKind != "" && !errors.Is(err, tt.wantKind) {
				t.Errorf("err = %v, want kind %v", err, tt.wantKind)
			}
		})
	}
	t.Cleanup(func() {
		if n := calls.Load(); n != 0 {
			t.Errorf("server got %d calls after the limiter refused", n)
		}
	})
}

type failingTokenSource struct{ err error }

func (f failingTokenSource) Token() (*oauth2.Token, error) { return nil, f.err }

func TestTokenSourceErrors(t *testing.T) {
	t.Parallel()
	retrieve := func(status int, code string) error {
		return &oauth2.RetrieveError{
			Response:  &http.Response{StatusCode: status, Status: http.StatusText(status)},
			Body:      []byte(`{"error":"` + code + `","access_token":"` + testToken + `"}`),
			ErrorCode: code, ErrorDescription: "refresh said " + code,
		}
	}
	tests := []struct {
		name         string
		err          error
		want         zendesk.Kind
		wantRetrieve bool
	}{
		{"invalid_grant", retrieve(400, "invalid_grant"), zendesk.ErrTokenInvalid, true},
		{"wrapped invalid_grant", fmt.Errorf("store: refresh grant 3: %w", retrieve(400, "invalid_grant")), zendesk.ErrTokenInvalid, true},
		{"source wraps ErrTokenInvalid", fmt.Errorf("oauthflow: refresh: %w", zendesk.ErrTokenInvalid), zendesk.ErrTokenInvalid, false},
		{"invalid_client", retrieve(401, "invalid_client"), zendesk.ErrUnexpected, true},
		{"token endpoint 503", retrieve(503, ""), zendesk.ErrUnavailable, true},
		{"transport", &url.Error{Op: "Post", URL: "https://x/oauth/tokens", Err: context.DeadlineExceeded}, zendesk.ErrNetwork, false},
		{"other", errors.New("store is closed"), zendesk.ErrUnexpected, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
			t.Cleanup(srv.Close)
			c := mustNew(t, srv.URL, failingTokenSource{tt.err})
			_, err := c.As("bea@example.com").Me(t.Context())
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want kind %v", err, tt.want)
			}
			var re *oauth2.RetrieveError
			if got := errors.As(err, &re); got != tt.wantRetrieve {
				t.Errorf("errors.As(*oauth2.RetrieveError) = %v, want %v", got, tt.wantRetrieve)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("Error() contains the token: %q", err.Error())
			}
			if n := calls.Load(); n != 0 {
				t.Errorf("server got %d calls without a token", n)
			}
		})
	}
}
