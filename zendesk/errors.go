package zendesk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// Kind is the class of a failed call. Each Kind is also a sentinel error, so
// callers branch with errors.Is(err, zendesk.ErrNotFound) or compare
// (*Error).Kind directly. Kinds are constants, so there is no package state.
type Kind string

// Error returns the kind as a message, which makes every Kind usable as a
// sentinel error.
func (k Kind) Error() string { return "zendesk: " + string(k) }

// The kinds of failure a call can end in.
const (
	// ErrBadRequest is a 400: Zendesk could not understand the request,
	// including the {"errors":[...]} shape (e.g. InvalidPaginationDepth, §3.4).
	ErrBadRequest Kind = "bad request"
	// ErrTokenInvalid means the access token is expired, revoked or malformed
	// (401 invalid_token, §1.7), or the TokenSource could not refresh it
	// (invalid_grant): the admin has to log in again.
	ErrTokenInvalid Kind = "token invalid"
	// ErrUnknownUser means Zendesk refused to act as the X-On-Behalf-Of user
	// because no such user exists; Zendesk says so with a 401 invalid_token
	// (§2), which the client tells apart from a dead token by probing
	// /api/v2/users/me without the header, with the very token that was
	// refused (a token replaced by a refresh meanwhile is not a dead one:
	// the call is sent again with the new token, see TokenReloader).
	ErrUnknownUser Kind = "unknown user"
	// ErrForbidden is a 403: a missing scope, a non-admin impersonating, a
	// target who is not an active end user, an unverified end user or legacy
	// CSAT being off (§1.5, §2, §3.2, §5). Zendesk's body does not say which.
	ErrForbidden Kind = "forbidden"
	// ErrNotFound is a 404 (RecordNotFound or InvalidEndpoint, §4.1).
	ErrNotFound Kind = "not found"
	// ErrValidation is a 422 RecordInvalid; Error.Details holds the per-field
	// reasons (§4.1).
	ErrValidation Kind = "validation failed"
	// ErrRateLimited is a 429; Error.RetryAfter says how long to wait (§4.2).
	ErrRateLimited Kind = "rate limited"
	// ErrUnavailable is a 503 (with RetryAfter when Zendesk sent Retry-After)
	// or any other 5xx (Status tells them apart).
	ErrUnavailable Kind = "unavailable"
	// ErrNetwork is a transport failure: refused or dropped connections, EOF,
	// timeouts and context deadlines. The original error stays reachable with
	// errors.As / errors.Is. Status is 0 unless the status line arrived and
	// the body did not; a 2xx Status then means a write took effect.
	// Error.NotSent tells a request that never went out (Zendesk cannot have
	// acted) from one whose outcome is unknown.
	ErrNetwork Kind = "network error"
	// ErrUnexpected is any other answer: an unexpected status (3xx, 409, ...)
	// or a success body that is not the JSON Zendesk documents.
	ErrUnexpected Kind = "unexpected response"
)

// FieldError is one reason Zendesk gave for refusing a field (the items of
// "details" in a 422 RecordInvalid body, §4.1).
type FieldError struct {
	Description string `json:"description"`
	Error       string `json:"error"`
}

// Error describes a failed Zendesk call. Its message names the method, the
// path (never the query string, which can hold search terms and emails) and
// what Zendesk said; it never contains the access token.
type Error struct {
	Kind   Kind
	Status int // HTTP status; 0 when no answer was received
	Method string
	// Endpoint is the request path without the query string.
	Endpoint string
	// Code is Zendesk's machine-readable error ("RecordInvalid",
	// "invalid_token", "InvalidPaginationDepth", ...).
	Code string
	// Title is the short human title of the nested or array shapes ("Forbidden").
	Title string
	// Description is Zendesk's human-readable explanation.
	Description string
	// Details holds the per-field reasons of a 422, keyed by field ("base",
	// "status", ...).
	Details map[string][]FieldError
	// RetryAfter is how long Zendesk asked us to wait (429, 503); 0 when unknown.
	RetryAfter time.Duration
	// MissingScope is, for a 403, the scope the call needed that the token may
	// lack: "read" for reads, "write" for writes (§1.5). It is a guess, since
	// Zendesk's 403 body does not say; Hint lists the other causes, including
	// a missing "impersonate" scope when acting as an end user.
	MissingScope string
	// Hint is a sentence for a person explaining the likely causes of a 403.
	Hint string
	// NotSent reports that the request never reached Zendesk, so Zendesk
	// cannot have acted on it: the call failed before a connection was
	// made, the request could not be written in full, or the context,
	// limiter or token source stopped it first. False means the request may
	// have reached Zendesk (or the client cannot tell): a write that failed
	// with ErrNetwork and NotSent false has an unknown outcome, and must be
	// checked at Zendesk before it is sent again.
	NotSent bool

	cause error
	conn  connInfo // the connection a network failure happened on
}

// Error returns a one-line description of the failure.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("zendesk: ")
	if e.Method != "" || e.Endpoint != "" {
		b.WriteString(e.Method)
		b.WriteString(" ")
		b.WriteString(e.Endpoint)
		b.WriteString(": ")
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, "%d ", e.Status)
	}
	b.WriteString(string(e.Kind))
	var said []string
	if e.Code != "" {
		said = append(said, e.Code)
	}
	if e.Title != "" && e.Title != e.Code {
		said = append(said, e.Title)
	}
	if e.Description != "" {
		said = append(said, e.Description)
	}
	if len(said) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(said, ": "))
	}
	if len(e.Details) > 0 {
		b.WriteString(" (")
		b.WriteString(formatDetails(e.Details))
		b.WriteString(")")
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, "; retry after %s", e.RetryAfter)
	}
	if e.Kind == ErrNetwork {
		b.WriteString(e.wireState())
	}
	if e.cause != nil {
		b.WriteString(": ")
		b.WriteString(e.cause.Error())
	}
	return b.String()
}

// wireState says how far a failed request got, for the message: whether it
// went out, and on what connection. Logs of "the connection failed" are
// then enough to tell a server closing an idle keep-alive connection from
// one that never answered.
func (e *Error) wireState() string {
	switch {
	case e.NotSent:
		return " (not sent)"
	case !e.conn.traced:
		return ""
	}
	var b strings.Builder
	b.WriteString(" (")
	switch {
	case e.conn.answered:
		b.WriteString("sent, answer cut short")
	case e.conn.wrote:
		b.WriteString("sent, no answer")
	}
	if e.conn.reused {
		fmt.Fprintf(&b, ", on a keep-alive connection reused after %s idle", e.conn.idle.Round(time.Millisecond))
	} else {
		b.WriteString(", on a new connection")
	}
	b.WriteString(")")
	return b.String()
}

// droppedIdle reports whether e is a pooled keep-alive connection failing
// under a request before any answer, which is how a server (or load
// balancer) closing an idle connection just as the client picks it looks,
// and whether sending the request again is safe: a read always is, a write
// only if it never went out in full (NotSent), as Zendesk cannot act on a
// request it did not get whole. A timeout is a slow server instead.
func (e *Error) droppedIdle(write bool) bool {
	if e.Kind != ErrNetwork || !e.conn.traced || !e.conn.reused || e.conn.answered || isTimeout(e.cause) {
		return false
	}
	return !write || e.NotSent
}

// Is reports whether target is the sentinel of e's kind.
func (e *Error) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

// Unwrap returns the underlying transport or token error, if any.
func (e *Error) Unwrap() error { return e.cause }

func formatDetails(d map[string][]FieldError) string {
	fields := make([]string, 0, len(d))
	for f := range d {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	var parts []string
	for _, f := range fields {
		for _, fe := range d[f] {
			msg := fe.Description
			if msg == "" {
				msg = fe.Error
			}
			parts = append(parts, f+": "+msg)
		}
	}
	return strings.Join(parts, "; ")
}

// IsRetryable reports whether the call may succeed if made again later:
// rate limiting, unavailability (any 5xx) and network failures.
func IsRetryable(err error) bool {
	t, _ := Classify(err)
	return t != Permanent
}

// RetryAfter returns how long Zendesk asked the caller to wait before trying
// again, and whether it said so at all.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

// Transience says how a caller (the bulk runner) should treat a failed call.
type Transience int

const (
	// Permanent failures will fail again: report them, do not retry.
	Permanent Transience = iota
	// WaitAndRetry failures (429, 503 with Retry-After) are Zendesk asking us
	// to slow down: wait the returned duration and retry without spending
	// one of the row's attempts.
	WaitAndRetry
	// BackoffAndRetry failures (network errors, other 5xx, 409 conflicts)
	// may pass: retry with back-off, spending an attempt.
	BackoffAndRetry
)

// String names the transience for logs.
func (t Transience) String() string {
	switch t {
	case WaitAndRetry:
		return "wait and retry"
	case BackoffAndRetry:
		return "back off and retry"
	}
	return "permanent"
}

// DefaultRetryAfter is the wait Classify suggests for a 429 that carries
// neither Retry-After nor ratelimit-reset; Zendesk's own Ruby client uses
// the same default (§4.2).
const DefaultRetryAfter = 10 * time.Second

// Classify tells how to treat err and, for WaitAndRetry, how long to wait.
// Errors that are not from this package are Permanent. A 503 without
// Retry-After is treated like any other 5xx (back-off), since Zendesk gave no
// hint of when it will be back.
func Classify(err error) (Transience, time.Duration) {
	var e *Error
	if !errors.As(err, &e) {
		return Permanent, 0
	}
	switch e.Kind {
	case ErrRateLimited:
		if e.RetryAfter > 0 {
			return WaitAndRetry, e.RetryAfter
		}
		return WaitAndRetry, DefaultRetryAfter
	case ErrUnavailable:
		if e.RetryAfter > 0 {
			return WaitAndRetry, e.RetryAfter
		}
		return BackoffAndRetry, 0
	case ErrNetwork:
		return BackoffAndRetry, 0
	case ErrUnexpected:
		// 409 is Zendesk's answer to concurrent updates of one ticket; the
		// same update usually succeeds a moment later.
		if e.Status == http.StatusConflict {
			return BackoffAndRetry, 0
		}
	}
	return Permanent, 0
}

// kindForStatus maps an HTTP status of a failed call to its kind. 401 is
// refined by the caller (ErrUnknownUser while impersonating).
func kindForStatus(status int) Kind {
	switch {
	case status == http.StatusBadRequest:
		return ErrBadRequest
	case status == http.StatusUnauthorized:
		return ErrTokenInvalid
	case status == http.StatusForbidden:
		return ErrForbidden
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusUnprocessableEntity:
		return ErrValidation
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status >= 500:
		return ErrUnavailable
	}
	return ErrUnexpected
}

// maxErrorText bounds how much of a text body lands in an error message.
const maxErrorText = 300

// parseErrorBody fills e's Code, Title, Description and Details from a body
// in any of the shapes of §4.1:
//
//	{"error":"RecordNotFound","description":"Not found"}
//	{"error":"invalid_token","error_description":"..."}
//	{"error":{"title":"Forbidden","message":"..."}}
//	{"error":"RecordInvalid","description":"...","details":{"status":[{"description":"..."}]}}
//	{"errors":[{"code":"InvalidPaginationDepth","title":"..."}]}
//	{"error":"Couldn't authenticate you"}
//	plain text
//
// Unknown JSON and HTML pages (proxies, maintenance) leave the fields empty:
// the status and kind still say what happened.
func parseErrorBody(e *Error, contentType string, body []byte) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return
	}
	mediaType, _, _ := mime.ParseMediaType(contentType)
	if body[0] == '{' {
		if parseErrorJSON(e, body) {
			return
		}
	}
	if mediaType == "text/html" || body[0] == '<' || body[0] == '{' || body[0] == '[' {
		return
	}
	e.Description = cleanText(string(body))
}

func parseErrorJSON(e *Error, body []byte) bool {
	var raw struct {
		Error            json.RawMessage `json:"error"`
		Description      string          `json:"description"`
		ErrorDescription string          `json:"error_description"`
		Message          string          `json:"message"`
		Details          json.RawMessage `json:"details"`
		Errors           json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return false
	}
	matched := false
	if len(raw.Error) > 0 && raw.Error[0] == '"' {
		var s string
		if json.Unmarshal(raw.Error, &s) == nil {
			// An identifier ("RecordInvalid") is a code; a sentence ("Couldn't
			// authenticate you", §1.7 basic auth) is a description.
			if strings.ContainsAny(s, " \t") {
				e.Description = cleanText(s)
			} else {
				e.Code = cleanText(s)
			}
			matched = true
		}
	} else if len(raw.Error) > 0 && raw.Error[0] == '{' {
		var nested struct {
			Title       string `json:"title"`
			Message     string `json:"message"`
			Description string `json:"description"`
			Code        string `json:"code"`
		}
		if json.Unmarshal(raw.Error, &nested) == nil {
			e.Title = cleanText(nested.Title)
			e.Code = cleanText(nested.Code)
			e.Description = cleanText(firstNonEmpty(nested.Message, nested.Description))
			matched = true
		}
	}
	if d := firstNonEmpty(raw.ErrorDescription, raw.Description, raw.Message); d != "" {
		if e.Description == "" {
			e.Description = cleanText(d)
		}
		matched = true
	}
	if len(raw.Errors) > 0 && raw.Errors[0] == '[' {
		var list []struct {
			Code   string `json:"code"`
			Title  string `json:"title"`
			Detail string `json:"detail"`
		}
		if json.Unmarshal(raw.Errors, &list) == nil && len(list) > 0 {
			e.Code = cleanText(list[0].Code)
			e.Title = cleanText(list[0].Title)
			e.Description = cleanText(list[0].Detail)
			for _, item := range list[1:] {
				e.addDetail("errors", FieldError{Description: cleanText(firstNonEmpty(item.Title, item.Detail)), Error: cleanText(item.Code)})
			}
			matched = true
		}
	}
	if len(raw.Details) > 0 && raw.Details[0] == '{' {
		parseDetails(e, raw.Details)
		matched = true
	}
	return matched
}

// parseDetails reads the "details" object of a 422. Zendesk documents lists
// of {description, error} objects; plain strings and single objects are
// accepted too so that an odd field does not lose the others.
func parseDetails(e *Error, data json.RawMessage) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil {
		return
	}
	for name, v := range fields {
		v = bytes.TrimSpace(v)
		if len(v) == 0 {
			continue
		}
		var items []json.RawMessage
		if v[0] == '[' {
			if json.Unmarshal(v, &items) != nil {
				continue
			}
		} else {
			items = []json.RawMessage{v}
		}
		for _, it := range items {
			it = bytes.TrimSpace(it)
			if len(it) == 0 {
				continue
			}
			var fe FieldError
			switch it[0] {
			case '{':
				if json.Unmarshal(it, &fe) != nil {
					continue
				}
			case '"':
				var s string
				if json.Unmarshal(it, &s) != nil {
					continue
				}
				fe.Description = s
			default:
				continue
			}
			fe.Description = cleanText(fe.Description)
			fe.Error = cleanText(fe.Error)
			e.addDetail(name, fe)
		}
	}
}

// redact replaces every occurrence of token in the text Zendesk sent.
func (e *Error) redact(token string) {
	if len(token) < 4 {
		return
	}
	r := strings.NewReplacer(token, "[redacted]")
	e.Code, e.Title, e.Description = r.Replace(e.Code), r.Replace(e.Title), r.Replace(e.Description)
	for f, list := range e.Details {
		for i := range list {
			list[i].Description = r.Replace(list[i].Description)
			list[i].Error = r.Replace(list[i].Error)
		}
		if clean := r.Replace(f); clean != f {
			delete(e.Details, f)
			e.Details[clean] = list
		}
	}
}

func (e *Error) addDetail(field string, fe FieldError) {
	if e.Details == nil {
		e.Details = make(map[string][]FieldError)
	}
	e.Details[field] = append(e.Details[field], fe)
}

// cleanText makes server text safe for a one-line log or page: control
// characters become spaces, runs of space collapse, and long text is cut.
func cleanText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxErrorText {
		cut := maxErrorText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// forbiddenHint fills the MissingScope guess and the Hint for a 403. The
// scope guess follows §1.5: reads need "read", writes need "write" ("write"
// does not imply "read"); acting as an end user also needs "impersonate".
func forbiddenHint(e *Error, method, actingAs string) {
	if method == http.MethodGet || method == http.MethodHead {
		e.MissingScope = "read"
	} else {
		e.MissingScope = "write"
	}
	if actingAs == "" {
		e.Hint = fmt.Sprintf("Zendesk refused this call. The token may lack the %q scope, or your Zendesk role may not allow it.", e.MissingScope)
		return
	}
	e.Hint = fmt.Sprintf("Zendesk refused to let you act as this user. Possible causes: the token lacks the %q or \"impersonate\" scope, "+
		"you are not a Zendesk admin, the user is an agent or admin, is suspended or has no verified email, "+
		"or the action is turned off in Zendesk (for example legacy satisfaction ratings).", e.MissingScope)
}

// tokenSourceError classifies a failure of the TokenSource. An
// oauth2.RetrieveError with invalid_grant, or any error wrapping
// ErrTokenInvalid, means the refresh token is dead (§1.3 rotation, §1.4
// expiry): the admin must log in again. Token endpoint 5xx and transport
// failures are transient; anything else is unexpected.
func tokenSourceError(method, endpoint string, err error) *Error {
	e := &Error{Kind: ErrUnexpected, Method: method, Endpoint: endpoint, NotSent: true, cause: err}
	var re *oauth2.RetrieveError
	switch {
	case errors.Is(err, ErrTokenInvalid):
		e.Kind = ErrTokenInvalid
	case errors.As(err, &re):
		// RetrieveError's own message may include the token endpoint's raw
		// body; keep only the code and description in ours.
		e.cause = &retrieveCause{re}
		e.Code = cleanText(re.ErrorCode)
		e.Description = cleanText(re.ErrorDescription)
		if re.Response != nil {
			e.Status = re.Response.StatusCode
		}
		switch {
		case re.ErrorCode == "invalid_grant":
			e.Kind = ErrTokenInvalid
		case e.Status >= 500:
			e.Kind = ErrUnavailable
		case e.Status == http.StatusTooManyRequests:
			e.Kind = ErrRateLimited
		}
		if e.Description == "" {
			e.Description = "the token endpoint refused to issue a token"
		}
	case isTransportError(err):
		e.Kind = ErrNetwork
	}
	return e
}

// retrieveCause keeps the oauth2.RetrieveError reachable with errors.As while
// giving it a message without the token endpoint's raw body.
type retrieveCause struct{ re *oauth2.RetrieveError }

func (r *retrieveCause) Error() string { return "token refresh failed" }
func (r *retrieveCause) Unwrap() error { return r.re }

func isTransportError(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne)
}

// isTimeout reports whether err is a deadline or a cancellation rather
// than a connection failing.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}
