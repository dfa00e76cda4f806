package oauthflow

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
)

// The OAuth error codes (RFC 6749 §4.1.2.1, §5.2) the app reacts to. Match
// them with errors.Is: every *Error is the sentinel of its Code.
var (
	// ErrAccessDenied means the person pressed Deny on Zendesk's consent page.
	ErrAccessDenied = errors.New("access_denied")
	// ErrInvalidGrant means the code or refresh token is expired, used,
	// revoked, or does not match the redirect URL or PKCE verifier (§1.7).
	ErrInvalidGrant = errors.New("invalid_grant")
	// ErrInvalidClient means Zendesk did not accept the client id or secret.
	ErrInvalidClient = errors.New("invalid_client")
	// ErrInvalidScope means a requested scope is unknown to Zendesk (§1.7).
	ErrInvalidScope = errors.New("invalid_scope")
	// ErrInvalidRequest means a parameter was missing or malformed.
	ErrInvalidRequest = errors.New("invalid_request")
)

// Error is an OAuth error answered by Zendesk, either on the token endpoint
// (JSON {"error","error_description"}) or on the redirect back to the app
// (query error and error_description, §1.2). Its text never holds a token,
// code, verifier or secret: descriptions are scrubbed of every secret the
// request carried and truncated.
type Error struct {
	// Code is the OAuth error code, e.g. "invalid_grant".
	Code string
	// Description is Zendesk's error_description, scrubbed and truncated. On
	// the callback it comes from the browser's query string, so treat it as
	// untrusted text.
	Description string
	// Status is the HTTP status of the token endpoint's answer; 0 for an
	// error carried by the callback.
	Status int
}

// Error returns the code, status and description.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("zendesk oauth error ")
	b.WriteString(e.Code)
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	return b.String()
}

// Is reports whether target is the sentinel for e.Code.
func (e *Error) Is(target error) bool {
	s := sentinel(e.Code)
	return s != nil && s == target
}

// sentinel maps an OAuth error code to its sentinel, nil for codes the app has
// no specific reaction to (unsupported_grant_type, server_error, ...).
func sentinel(code string) error {
	switch code {
	case "access_denied":
		return ErrAccessDenied
	case "invalid_grant":
		return ErrInvalidGrant
	case "invalid_client":
		return ErrInvalidClient
	case "invalid_scope":
		return ErrInvalidScope
	case "invalid_request":
		return ErrInvalidRequest
	}
	return nil
}

// StatusError is an answer from Zendesk that is not an OAuth error: a 5xx, a
// redirect, or a body that is not the JSON expected. Retrying may help when
// Status is 429 or 5xx.
type StatusError struct {
	// Status is the HTTP status code.
	Status int
	// Snippet is the start of the body, scrubbed of every secret the request
	// carried and truncated; empty when the body could hold a fresh token.
	Snippet string
}

// Error returns the status and the snippet.
func (e *StatusError) Error() string {
	if e.Snippet == "" {
		return fmt.Sprintf("unexpected HTTP status %d from zendesk", e.Status)
	}
	return fmt.Sprintf("unexpected HTTP status %d from zendesk: %q", e.Status, e.Snippet)
}

// CallbackError returns the error Zendesk put on the redirect to the callback
// (§1.2): nil when q has no error parameter, otherwise an *Error, which is
// ErrAccessDenied (errors.Is) when the person pressed Deny. The description is
// attacker-controllable (anyone can craft a callback link): it is stripped of
// control characters and truncated, and must still be escaped when shown.
func CallbackError(q url.Values) error {
	if !q.Has("error") {
		return nil
	}
	code := clean(q.Get("error"), maxCodeLen)
	if code == "" {
		code = "invalid_request"
	}
	return &Error{Code: code, Description: scrub(q.Get("error_description"), maxDescriptionLen)}
}

const (
	// minTokenLikeLen is the shortest run of token characters holding both a
	// letter and a digit that scrub treats as a secret it was not told about
	// (Zendesk tokens are 64 hex characters; codes and verifiers are long too).
	minTokenLikeLen   = 20
	maxCodeLen        = 64
	maxDescriptionLen = 200
	maxSnippetLen     = 120
	redacted          = "[redacted]"
)

// scrub removes every non-empty secret from s, and anything else that looks
// like a token (a server may echo a token the request did not carry, e.g. an
// earlier one), then cleans and truncates it. Scrubbing happens before
// truncation so that no prefix of a secret survives.
func scrub(s string, limit int, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	return clean(redactTokenLike(s), limit)
}

// redactTokenLike replaces each run of at least minTokenLikeLen token
// characters (base64, base64url, hex) that holds both a letter and a digit.
// Plain words and numbers survive; paths with digits may not, which is fine
// for error text.
func redactTokenLike(s string) string {
	var b strings.Builder
	start := -1
	flush := func(end int) {
		run := s[start:end]
		if len(run) >= minTokenLikeLen && strings.ContainsAny(run, "0123456789") &&
			strings.IndexFunc(run, unicode.IsLetter) >= 0 {
			b.WriteString(redacted)
		} else {
			b.WriteString(run)
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		isTok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' || c == '='
		switch {
		case isTok && start < 0:
			start = i
		case !isTok && start >= 0:
			flush(i)
			start = -1
			b.WriteByte(c)
		case !isTok:
			b.WriteByte(c)
		}
	}
	if start >= 0 {
		flush(len(s))
	}
	return b.String()
}

// clean keeps printable characters, folds whitespace runs into one space and
// cuts the result to limit runes (marking the cut with "...").
func clean(s string, limit int) string {
	var b strings.Builder
	n := 0
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if !unicode.IsPrint(r) {
			continue
		}
		if space {
			if n == limit {
				b.WriteString("...")
				return b.String()
			}
			b.WriteByte(' ')
			n++
			space = false
		}
		if n == limit {
			b.WriteString("...")
			return b.String()
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
