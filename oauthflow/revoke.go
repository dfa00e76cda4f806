package oauthflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// currentTokenPath is the token introspection and self-revocation endpoint
// (zendesk-api.md §1.6).
const currentTokenPath = "/api/v2/oauth/tokens/current.json"

// Revoke kills accessToken at Zendesk and confirms it is dead, for logout and
// for logins that are refused (DESIGN.md security promises 3 and 4). It learns
// the token's id (GET current.json), deletes it (DELETE current.json), then
// checks that the token now gets 401. Whether Zendesk honours DELETE on
// current.json is not certain (§1.6; the sandbox's RevokeCurrentIgnored), so
// if the token still works it is deleted by id and checked again. A token that
// is already dead counts as revoked. Revoke returns an error when the token
// may still be alive.
func (f *Flow) Revoke(ctx context.Context, accessToken string) error {
	if accessToken == "" {
		return fmt.Errorf("oauthflow: revoke token: empty access token: %w", ErrInvalidRequest)
	}
	status, body, err := f.api(ctx, http.MethodGet, currentTokenPath, accessToken)
	if err != nil {
		return fmt.Errorf("oauthflow: revoke token: look up: %w", err)
	}
	var id int64
	switch {
	case status == http.StatusUnauthorized:
		return nil
	case status == http.StatusOK:
		id = tokenID(body)
	case status == http.StatusForbidden:
		// The token authenticates but may not read (no read scope). Revoking
		// one's own token needs no scope, so go on without the id.
	default:
		return fmt.Errorf("oauthflow: revoke token: look up: %w", f.statusError(status, body, accessToken))
	}

	if _, _, err := f.api(ctx, http.MethodDelete, currentTokenPath, accessToken); err != nil {
		return fmt.Errorf("oauthflow: revoke token: delete current: %w", err)
	}
	// The DELETE's own status proves nothing (Zendesk may answer 204 and keep
	// the token): only a 401 for the token itself does.
	alive, err := f.alive(ctx, accessToken)
	if err != nil {
		return fmt.Errorf("oauthflow: revoke token: confirm: %w", err)
	}
	if !alive {
		return nil
	}
	if id == 0 {
		return errors.New("oauthflow: revoke token: token still active after DELETE current and its id is unknown")
	}

	path := "/api/v2/oauth/tokens/" + strconv.FormatInt(id, 10) + ".json"
	status, _, err = f.api(ctx, http.MethodDelete, path, accessToken)
	if err != nil {
		return fmt.Errorf("oauthflow: revoke token: delete token %d: %w", id, err)
	}
	if status == http.StatusUnauthorized {
		return nil // the first DELETE took effect late
	}
	alive, err = f.alive(ctx, accessToken)
	if err != nil {
		return fmt.Errorf("oauthflow: revoke token: confirm after delete %d: %w", id, err)
	}
	if alive {
		return fmt.Errorf("oauthflow: revoke token: token %d still active after delete by id (HTTP %d)", id, status)
	}
	return nil
}

// alive asks Zendesk whether accessToken still authenticates: 401 means dead;
// 200 (and 403, which comes after authentication) mean alive.
func (f *Flow) alive(ctx context.Context, accessToken string) (bool, error) {
	status, body, err := f.api(ctx, http.MethodGet, currentTokenPath, accessToken)
	if err != nil {
		return false, err
	}
	switch status {
	case http.StatusUnauthorized:
		return false, nil
	case http.StatusOK, http.StatusForbidden:
		return true, nil
	}
	return false, f.statusError(status, body, accessToken)
}

// api makes one bearer-authenticated call to {base}{path} and returns the
// status and the (bounded) body.
func (f *Flow) api(ctx context.Context, method, path, accessToken string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, f.base+path, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, nil, err // *url.Error names the URL only; the token is in a header
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, fmt.Errorf("read answer (HTTP %d): %w", resp.StatusCode, err)
	}
	return resp.StatusCode, body, nil
}

// statusError describes an unexpected answer without leaking the token.
func (f *Flow) statusError(status int, body []byte, accessToken string) *StatusError {
	return &StatusError{Status: status, Snippet: scrub(string(body), maxSnippetLen, accessToken, f.clientSecret)}
}

// tokenID reads token.id from GET current.json's answer; 0 when absent.
func tokenID(body []byte) int64 {
	var v struct {
		Token struct {
			ID json.Number `json:"id"`
		} `json:"token"`
	}
	if json.Unmarshal(body, &v) != nil {
		return 0
	}
	id, err := v.Token.ID.Int64()
	if err != nil || id <= 0 {
		return 0
	}
	return id
}
