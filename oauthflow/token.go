package oauthflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// maxBody bounds what is read from any Zendesk answer.
const maxBody = 1 << 20

// Keys of the extra values on tokens returned by Exchange and Refresh, read
// with Token.Extra. GrantedScope and RefreshExpiry read them for you.
//
// Extra values live in an unexported field of oauth2.Token: they do not
// survive JSON encoding, so a store must save GrantedScope and RefreshExpiry
// beside the token if it needs them later.
const (
	// ExtraScope holds the granted scope as a space-separated string; absent
	// when Zendesk did not report one.
	ExtraScope = "scope"
	// ExtraRefreshToken holds the refresh token (also in Token.RefreshToken).
	ExtraRefreshToken = "refresh_token"
	// ExtraExpiresIn holds the access token's lifetime in seconds (int64).
	ExtraExpiresIn = "expires_in"
	// ExtraRefreshTokenExpiresIn holds the refresh token's lifetime in seconds
	// (int64), as Zendesk sent it (§1.3).
	ExtraRefreshTokenExpiresIn = "refresh_token_expires_in"
	// ExtraRefreshTokenExpiresAt holds the refresh token's expiry (time.Time),
	// computed from refresh_token_expires_in when the answer arrived.
	ExtraRefreshTokenExpiresAt = "refresh_token_expires_at"
)

// GrantedScope returns the space-separated scope Zendesk reported granting
// with t, or "" when it reported none (RFC 6749 §5.1: then it is the scope
// requested) or t did not come from this package.
func GrantedScope(t *oauth2.Token) string {
	if t == nil {
		return ""
	}
	s, _ := t.Extra(ExtraScope).(string)
	return s
}

// RefreshExpiry returns when t's refresh token expires, or the zero time when
// Zendesk gave no refresh_token_expires_in (legacy tokens, §1.4) or t did not
// come from this package.
func RefreshExpiry(t *oauth2.Token) time.Time {
	if t == nil {
		return time.Time{}
	}
	at, _ := t.Extra(ExtraRefreshTokenExpiresAt).(time.Time)
	return at
}

// Exchange trades the code from the callback and the attempt's PKCE verifier
// for a token (§1.3). The body is JSON, as Zendesk documents; golang.org/x/oauth2
// would send a form body, which Zendesk may refuse. Token.Expiry is zero when
// Zendesk sent no expires_in (legacy tokens never expire, §1.4); the refresh
// token, the granted scope and the refresh token's expiry are on the token
// (see GrantedScope, RefreshExpiry and the Extra* keys). OAuth refusals are
// *Error (errors.Is(err, ErrInvalidGrant), ...); other failures are
// *StatusError or transport errors.
func (f *Flow) Exchange(ctx context.Context, code, verifier string) (*oauth2.Token, error) {
	if code == "" || verifier == "" {
		return nil, fmt.Errorf("oauthflow: exchange code: empty code or verifier: %w", ErrInvalidRequest)
	}
	body := map[string]string{
		"grant_type":    "authorization_code",
		"code":          code,
		"client_id":     f.clientID,
		"redirect_uri":  f.redirectURL,
		"code_verifier": verifier,
		"scope":         f.scope,
	}
	if f.clientSecret != "" {
		body["client_secret"] = f.clientSecret
	}
	t, err := f.postToken(ctx, body, code, verifier)
	if err != nil {
		return nil, fmt.Errorf("oauthflow: exchange code: %w", err)
	}
	return t, nil
}

// Refresh trades a refresh token for a new pair (§1.3). Zendesk rotates: the
// old access and refresh tokens die at once, so the caller must store the new
// pair before using it. Should Zendesk not send a new refresh token, the old
// one is kept on the returned token (RFC 6749 §6). A used, expired or revoked
// refresh token is ErrInvalidGrant.
func (f *Flow) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	if refreshToken == "" {
		return nil, fmt.Errorf("oauthflow: refresh token: empty refresh token: %w", ErrInvalidRequest)
	}
	body := map[string]string{
		"grant_type":    "refresh_token",
		"refresh_token": refreshToken,
		"client_id":     f.clientID,
	}
	if f.clientSecret != "" {
		body["client_secret"] = f.clientSecret
	}
	t, err := f.postToken(ctx, body, refreshToken)
	if err != nil {
		return nil, fmt.Errorf("oauthflow: refresh token: %w", err)
	}
	if t.RefreshToken == "" {
		t.RefreshToken = refreshToken
	}
	return t, nil
}

// postToken sends body as JSON to the token endpoint and decodes the answer.
// secrets are the request's secret values besides the client secret, scrubbed
// from any text that reaches an error.
func (f *Flow) postToken(ctx context.Context, body map[string]string, secrets ...string) (*oauth2.Token, error) {
	secrets = append(secrets, f.clientSecret)
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.tokenURL, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err // *url.Error names the token URL only; secrets are in the body
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("read answer (HTTP %d): %w", resp.StatusCode, err)
	}
	received := f.now()

	var m map[string]any
	jsonErr := json.Unmarshal(raw, &m)
	if jsonErr == nil {
		if code, ok := m["error"].(string); ok && code != "" && resp.StatusCode < 500 {
			desc, _ := m["error_description"].(string)
			return nil, &Error{
				Code:        clean(code, maxCodeLen),
				Description: scrub(desc, maxDescriptionLen, secrets...),
				Status:      resp.StatusCode,
			}
		}
	}
	switch {
	case resp.StatusCode == http.StatusOK, resp.StatusCode == http.StatusCreated:
		// 201 is what Zendesk's docs show, 200 what its CLI expects (§1.3).
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil, &StatusError{Status: resp.StatusCode} // the body may hold a fresh token
	default:
		return nil, &StatusError{Status: resp.StatusCode, Snippet: scrub(string(raw), maxSnippetLen, secrets...)}
	}
	// From here on the body may hold a fresh token: it never goes into an error.
	if jsonErr != nil {
		return nil, fmt.Errorf("malformed token answer (HTTP %d, %d bytes, not JSON)", resp.StatusCode, len(raw))
	}
	return tokenFromJSON(m, received)
}

// tokenFromJSON builds a token from the token endpoint's JSON answer, taken to
// have arrived at received.
func tokenFromJSON(m map[string]any, received time.Time) (*oauth2.Token, error) {
	access, _ := m["access_token"].(string)
	if access == "" {
		return nil, errors.New("malformed token answer: no access_token")
	}
	tokenType, _ := m["token_type"].(string)
	if tokenType != "" && !strings.EqualFold(tokenType, "bearer") {
		return nil, fmt.Errorf("malformed token answer: token_type %q is not bearer", clean(tokenType, maxCodeLen))
	}
	refresh, _ := m["refresh_token"].(string)
	expiresIn, err := seconds(m, "expires_in")
	if err != nil {
		return nil, err
	}
	refreshExpiresIn, err := seconds(m, "refresh_token_expires_in")
	if err != nil {
		return nil, err
	}

	t := &oauth2.Token{
		AccessToken:  access,
		TokenType:    "Bearer",
		RefreshToken: refresh,
		ExpiresIn:    expiresIn,
	}
	extra := map[string]any{}
	if expiresIn > 0 {
		t.Expiry = received.Add(time.Duration(expiresIn) * time.Second)
		extra[ExtraExpiresIn] = expiresIn
	}
	if refresh != "" {
		extra[ExtraRefreshToken] = refresh
	}
	if refreshExpiresIn > 0 {
		extra[ExtraRefreshTokenExpiresIn] = refreshExpiresIn
		extra[ExtraRefreshTokenExpiresAt] = received.Add(time.Duration(refreshExpiresIn) * time.Second)
	}
	if s := scopeString(m["scope"]); s != "" {
		extra[ExtraScope] = s
	}
	return t.WithExtra(extra), nil
}

// maxLifetime caps lifetimes so that time arithmetic cannot overflow; Zendesk
// allows at most 90 days (§1.3), this allows about 30 years.
const maxLifetime = int64(1 << 30)

// seconds reads a lifetime in whole seconds that may come as a JSON number or
// a numeric string; absent or null is 0 (never expires).
func seconds(m map[string]any, key string) (int64, error) {
	var f float64
	switch v := m[key].(type) {
	case nil:
		return 0, nil
	case float64:
		f = v
	case string:
		p, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("malformed token answer: %s is not a number", key)
		}
		f = p
	default:
		return 0, fmt.Errorf("malformed token answer: %s is not a number", key)
	}
	if math.IsNaN(f) || f < 0 || f > float64(maxLifetime) {
		return 0, fmt.Errorf("malformed token answer: %s out of range", key)
	}
	return int64(f), nil
}

// scopeString accepts the documented space-separated string and, leniently, a
// JSON array of strings (the admin token API's shape, §1.5).
func scopeString(v any) string {
	switch s := v.(type) {
	case string:
		return strings.Join(strings.Fields(s), " ")
	case []any:
		parts := make([]string, 0, len(s))
		for _, p := range s {
			if ps, ok := p.(string); ok && ps != "" {
				parts = append(parts, ps)
			}
		}
		return strings.Join(parts, " ")
	}
	return ""
}
